"""Storage on SQLite and PostgreSQL: schema, constraints, review actions, export."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, SQLModel, select

from tracker.db import alembic_config, create_db_engine, migrate
from tracker.export import ExportFilter, _cell, export
from tracker.ingest import add_article
from tracker.migrations import HEAD, include_name
from tracker.models import Article, ArticleCreate, Claim, ReviewEvent, Source, SourceCreate
from tracker.review import StaleEdit, add_source, edit_claim, history, remove_source, set_status

TEXT = "The mayor said unemployment fell to 3.1% in May.\n\n=SUM(A1) is not a formula here."


def _article_with_claims(engine, n: int = 2, text: str = TEXT, **meta) -> tuple[int, list[int]]:
    article, _ = add_article(engine, ArticleCreate(text=text, title="Jobs report", **meta))
    with Session(engine) as session:
        claims = [
            Claim(
                article_id=article.id,
                text=f"Unemployment fell to 3.1% in May (claim {i}).",
                quote="unemployment fell to 3.1% in May",
                quote_start=15,
                quote_end=47,
                claimant="Mayor",
                claim_type="statistic",
                checkworthiness=0.9 - i / 10,
            )
            for i in range(n)
        ]
        session.add_all(claims)
        session.commit()
        return article.id, [c.id for c in claims]


def test_migrations_build_exactly_the_models_schema(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": include_name}
        )
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_head_names_the_newest_migration(engine):
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config(engine)).get_current_head() == HEAD


def test_migrations_downgrade_and_upgrade_again(engine):
    command.downgrade(alembic_config(engine), "base")
    assert "claim" not in sa.inspect(engine).get_table_names()
    migrate(engine, "head")
    assert {"article", "claim", "source", "review_event", "model_call"} <= set(
        sa.inspect(engine).get_table_names()
    )


def test_the_same_text_is_stored_once(engine):
    first, new = add_article(engine, ArticleCreate(text="Prices rose 4% last year.\n"))
    again, new_again = add_article(engine, ArticleCreate(text="  Prices rose 4% last year.  "))
    assert (new, new_again) == (True, False)
    assert again.id == first.id


def test_blank_article_is_refused():
    with pytest.raises(ValidationError, match="no text"):
        ArticleCreate(text=" \n\t ")


@pytest.mark.parametrize(
    ("column", "value"),
    [("status", "approved"), ("claim_type", "rumour"), ("checkworthiness", 1.5)],
)
def test_database_refuses_values_outside_the_constraints(engine, column, value):
    _, (claim_id, _) = _article_with_claims(engine)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(sa.update(Claim).where(Claim.id == claim_id).values({column: value}))


def test_deleting_an_article_deletes_its_claims_and_their_history(engine):
    article_id, (claim_id, _) = _article_with_claims(engine)
    set_status(engine, claim_id, "in_progress", actor="ana", expected_version=1)
    with engine.begin() as conn:
        conn.execute(sa.delete(Article).where(Article.id == article_id))
    with Session(engine) as session:
        assert session.exec(select(Claim)).all() == []
        assert session.exec(select(ReviewEvent)).all() == []


def test_status_change_is_saved_with_its_history(engine):
    _, (claim_id, _) = _article_with_claims(engine)
    claim = set_status(
        engine, claim_id, "disputed", actor="ana", expected_version=1, note="BLS says 3.4%"
    )
    assert (claim.status, claim.version) == ("disputed", 2)
    claim = set_status(engine, claim_id, "checked", actor="ben", expected_version=2)
    events = history(engine, claim_id)
    assert [(e.actor, e.from_value, e.to_value, e.note) for e in events] == [
        ("ana", "unreviewed", "disputed", "BLS says 3.4%"),
        ("ben", "disputed", "checked", None),
    ]


def test_a_stale_edit_is_refused_and_shows_the_newer_state(engine):
    _, (claim_id, _) = _article_with_claims(engine)
    set_status(engine, claim_id, "checked", actor="ana", expected_version=1)
    with pytest.raises(StaleEdit) as refused:
        set_status(engine, claim_id, "disputed", actor="ben", expected_version=1)
    assert refused.value.current.status == "checked"
    assert refused.value.current.version == 2
    assert "changed by someone else" in str(refused.value)
    with Session(engine) as session:
        assert session.get(Claim, claim_id).status == "checked"
    assert len(history(engine, claim_id)) == 1


def test_edits_record_each_changed_field(engine):
    _, (claim_id, _) = _article_with_claims(engine)
    claim = edit_claim(
        engine,
        claim_id,
        actor="ana",
        expected_version=1,
        text="Unemployment fell to 3.1% in May 2024.",
        claimant="Mayor Jane Doe",
    )
    assert claim.claimant == "Mayor Jane Doe" and claim.version == 2
    fields = {(e.field, e.from_value, e.to_value) for e in history(engine, claim_id)}
    assert ("claimant", "Mayor", "Mayor Jane Doe") in fields and len(fields) == 2
    with pytest.raises(ValueError, match="cannot edit"):
        edit_claim(engine, claim_id, actor="ana", expected_version=2, status="checked")


def test_every_change_needs_a_reviewer_name(engine):
    _, (claim_id, _) = _article_with_claims(engine)
    with pytest.raises(ValueError, match="who made it"):
        set_status(engine, claim_id, "checked", actor="  ", expected_version=1)


def test_history_cannot_be_rewritten(engine):
    _, (claim_id, _) = _article_with_claims(engine)
    set_status(engine, claim_id, "checked", actor="ana", expected_version=1)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.update(ReviewEvent).values(actor="mallory"))


def test_sources_are_added_and_removed_with_history(engine):
    _, (claim_id, _) = _article_with_claims(engine)
    source = add_source(
        engine,
        claim_id,
        SourceCreate(url="https://www.bls.gov/lau/", title="BLS LAUS", stance="refutes"),
        actor="ana",
    )
    assert source.added_by == "ana" and source.stance == "refutes"
    remove_source(engine, source.id, actor="ben")
    with Session(engine) as session:
        assert session.exec(select(Source)).all() == []
    assert [e.action for e in history(engine, claim_id)] == ["source_added", "source_removed"]


def test_new_or_removed_evidence_counts_as_a_change_for_export_since(engine):
    """An incremental sync (`tracker export --since`) must pick up a claim whose sources
    changed, even if its verdict did not."""
    _, (claim_id, _) = _article_with_claims(engine)
    since = datetime.now(UTC)
    assert export(engine, "jsonl", io.StringIO(), ExportFilter(since=since)) == 0
    source = add_source(engine, claim_id, SourceCreate(url="https://bls.gov/"), actor="ana")
    out = io.StringIO()
    assert export(engine, "jsonl", out, ExportFilter(since=since)) == 1
    assert json.loads(out.getvalue())["sources"][0]["url"] == "https://bls.gov/"
    later = datetime.now(UTC)
    remove_source(engine, source.id, actor="ana")
    assert export(engine, "jsonl", io.StringIO(), ExportFilter(since=later)) == 1
    with Session(engine) as session:
        assert session.get(Claim, claim_id).version == 1  # an open verdict stays valid


@pytest.mark.parametrize("url", ["javascript:alert(1)", "not a url", "ftp://example.org/x"])
def test_source_urls_must_be_web_addresses(url):
    with pytest.raises(ValidationError):
        SourceCreate(url=url)


def test_jsonl_export_carries_the_public_fields(engine):
    article_id, (first, second) = _article_with_claims(
        engine, url="https://example.org/jobs", outlet="Daily"
    )
    add_source(engine, first, SourceCreate(url="https://bls.gov/", note="table 3"), actor="ana")
    out = io.StringIO()
    assert export(engine, "jsonl", out) == 2
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert rows[0]["id"] == first and rows[1]["id"] == second
    assert {
        "id", "article_id", "article_title", "article_url", "text", "quote", "start", "end",
        "claimant", "claim_type", "checkworthiness", "status", "sources",
    } <= rows[0].keys()  # fmt: skip
    assert (
        rows[0]["article_id"] == article_id and rows[0]["article_url"] == "https://example.org/jobs"
    )
    assert TEXT[rows[0]["start"] : rows[0]["end"]] == rows[0]["quote"]
    assert rows[0]["sources"] == [
        {"url": "https://bls.gov/", "title": None, "stance": "context", "note": "table 3"}
    ]
    assert rows[1]["sources"] == []


def test_export_filters_by_status_and_outlet(engine):
    _, (first, _) = _article_with_claims(engine, outlet="Daily")
    _article_with_claims(
        engine, text="A different article: taxes rose 12% in May.", outlet="Weekly"
    )
    set_status(engine, first, "checked", actor="ana", expected_version=1)
    out = io.StringIO()
    assert export(engine, "jsonl", out, ExportFilter(statuses=["checked"])) == 1
    assert export(engine, "jsonl", io.StringIO(), ExportFilter(outlet="Weekly")) == 2


def test_csv_export_cannot_smuggle_spreadsheet_formulas(engine):
    article, _ = add_article(engine, ArticleCreate(text=TEXT))
    with Session(engine) as session:
        session.add(
            Claim(
                article_id=article.id,
                text='=HYPERLINK("http://evil.example","click")',
                quote="=SUM(A1) is not a formula here.",
                quote_start=TEXT.index("=SUM"),
                quote_end=len(TEXT),
                checkworthiness=0.5,
            )
        )
        session.commit()
    out = io.StringIO()
    export(engine, "csv", out)
    (row,) = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["text"].startswith("'=HYPERLINK") and row["quote"].startswith("'=SUM")
    assert row["sources"] == "[]"
    assert _cell("-3%") == "-3%" and _cell("-2+3+cmd") == "'-2+3+cmd"


def test_export_since_reads_a_naive_time_as_local_time(engine, monkeypatch):
    _article_with_claims(engine, n=1)
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        a_minute_ago = datetime.now() - timedelta(minutes=1)  # naive, Tokyo time
        assert export(engine, "jsonl", io.StringIO(), ExportFilter(since=a_minute_ago)) == 1
        in_a_minute = datetime.now() + timedelta(minutes=1)
        assert export(engine, "jsonl", io.StringIO(), ExportFilter(since=in_a_minute)) == 0
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_home_relative_sqlite_url_works(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    engine = create_db_engine("sqlite:///~/tracker-data/t.db")
    migrate(engine)
    assert (tmp_path / "tracker-data" / "t.db").exists()


def test_migrating_down_and_up_keeps_history_and_search(engine):
    from tracker.queue import QueueFilter, queue_page

    _, (claim_id, _) = _article_with_claims(engine)
    set_status(engine, claim_id, "checked", actor="ana", expected_version=1)
    add_source(engine, claim_id, SourceCreate(url="https://bls.gov/"), actor="ana")
    command.downgrade(alembic_config(engine), "0004")  # rebuilds the claim table on SQLite
    migrate(engine)
    assert len(history(engine, claim_id)) == 2  # nothing cascaded away
    _article_with_claims(engine, n=1, text="Another text: inflation hit 9% in June.")
    assert queue_page(engine, QueueFilter(search="unemployment"))[1] == 3  # search still works


def test_a_deleted_claims_id_is_never_given_to_another(engine):
    _article_id, ids = _article_with_claims(engine, n=2)
    with engine.begin() as conn:
        conn.execute(sa.delete(Claim).where(Claim.id == ids[-1]))
    _, (new_id,) = _article_with_claims(engine, n=1, text="Another article entirely, about rents.")
    assert new_id > ids[-1]


def test_a_publication_time_with_a_zone_is_stored_as_utc(engine):
    when = "2026-11-01T10:00:00+05:00"
    article, _ = add_article(engine, ArticleCreate(text="Taxes rose 4%.", published_at=when))
    with Session(engine) as session:
        stored = session.get(Article, article.id).published_at
    assert stored.replace(tzinfo=None) == datetime(2026, 11, 1, 5, 0)
    assert stored.tzinfo is None or stored.utcoffset() == timedelta(0)
