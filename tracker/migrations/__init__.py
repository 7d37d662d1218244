"""Alembic migrations. HEAD names the newest revision: bump it with every new one
(tests check it against the scripts), so opening a database that is up to date costs
one query instead of loading Alembic."""

HEAD = "0005"


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Full-text search objects are made by hand in migration 0003, not from the models,
    so autogenerate and the schema test leave them alone."""
    return not (name or "").startswith(
        ("claim_fts", "ix_claim_fts", "fact_check_fts", "ix_fact_check_fts")
    )
