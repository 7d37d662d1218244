"""Alembic migrations. HEAD names the newest revision: bump it with every new one
(tests check it against the scripts), so opening a database that is up to date costs
one query instead of loading Alembic."""

HEAD = "0014"


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Full-text search objects are made by hand in migration 0003, not from the models,
    so autogenerate and the schema test leave them alone."""
    return not (name or "").startswith(
        ("claim_fts", "ix_claim_fts", "fact_check_fts", "ix_fact_check_fts")
    )


# Full-text search on SQLite: FTS5 tables kept in step with their tables by triggers. A
# table rebuild (Alembic's batch mode on SQLite) drops a table's triggers, so
# tracker.db.migrate re-creates any that are missing after every upgrade.
SQLITE_SEARCH_TRIGGERS = {
    "claim_fts_insert": "CREATE TRIGGER claim_fts_insert AFTER INSERT ON claim BEGIN "
    "INSERT INTO claim_fts(rowid, text, quote) VALUES (new.id, new.text, new.quote); END",
    "claim_fts_delete": "CREATE TRIGGER claim_fts_delete AFTER DELETE ON claim BEGIN "
    "INSERT INTO claim_fts(claim_fts, rowid, text, quote) "
    "VALUES ('delete', old.id, old.text, old.quote); END",
    "claim_fts_update": "CREATE TRIGGER claim_fts_update AFTER UPDATE OF text, quote ON claim "
    "BEGIN INSERT INTO claim_fts(claim_fts, rowid, text, quote) "
    "VALUES ('delete', old.id, old.text, old.quote); "
    "INSERT INTO claim_fts(rowid, text, quote) VALUES (new.id, new.text, new.quote); END",
    "fact_check_fts_insert": "CREATE TRIGGER fact_check_fts_insert AFTER INSERT ON fact_check "
    "BEGIN INSERT INTO fact_check_fts(rowid, claim_reviewed) "
    "VALUES (new.id, new.claim_reviewed); END",
    "fact_check_fts_delete": "CREATE TRIGGER fact_check_fts_delete AFTER DELETE ON fact_check "
    "BEGIN INSERT INTO fact_check_fts(fact_check_fts, rowid, claim_reviewed) "
    "VALUES ('delete', old.id, old.claim_reviewed); END",
    "fact_check_fts_update": "CREATE TRIGGER fact_check_fts_update AFTER UPDATE OF "
    "claim_reviewed ON fact_check BEGIN "
    "INSERT INTO fact_check_fts(fact_check_fts, rowid, claim_reviewed) "
    "VALUES ('delete', old.id, old.claim_reviewed); "
    "INSERT INTO fact_check_fts(rowid, claim_reviewed) VALUES (new.id, new.claim_reviewed); END",
}
