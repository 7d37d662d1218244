"""The desk's work on claims, in the library the dashboard and the CLI share (SQLite and
PostgreSQL): people and roles by folded name, triage on many claims at once, assignment,
dismissal, search syntax, and the history behind Overview."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from tests.browser import seed_desk
from tracker.export import ExportFilter, export
from tracker.models import Claim, Reviewer, ReviewEvent
from tracker.people import NotAllowed, people, person_key, role_of, set_role
from tracker.queue import NOBODY, QueueFilter, count, page_rows, position, status_counts
from tracker.review import StaleEdit, assign, dismiss, history, restore, set_statuses
from tracker.search import parse
from tracker.stats import backlog, reviews_per_day


@pytest.fixture
def desk(engine):
    return engine, seed_desk(engine)


@pytest.fixture
def admins(monkeypatch):
    from tracker.config import get_settings

    monkeypatch.setenv("TRACKER_ADMINS", "Root")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _versions(engine, ids) -> dict[int, int]:
    with Session(engine) as session:
        return {c.id: c.version for c in session.exec(select(Claim).where(Claim.id.in_(ids)))}


def _ids(engine, flt: QueueFilter, sort: str = "checkworthiness") -> list[int]:
    return [r.claim.id for r in page_rows(engine, flt, page_size=500, sort=sort)]


# --- People -----------------------------------------------------------------------------


def test_names_compare_by_unicode_case_folding(engine, admins):
    """A viewer named "Émile" stays a viewer however the name is typed: SQLite's lower()
    folds ASCII only, so the comparison is on a key computed in Python."""
    set_role(engine, "Émile", "viewer", actor="root")
    for spelling in ("émile", "ÉMILE", " Émile ", "E\u0301mile", "ÉMILE\u202e"):
        assert role_of(engine, spelling) == "viewer", spelling
    assert person_key("Straße") == person_key("STRASSE")
    article_ids = seed_desk(engine, per_article=1, articles=1)
    with pytest.raises(NotAllowed):
        set_statuses(engine, {article_ids[0]: 1}, "checked", actor="ÉMILE")
    with Session(engine) as session:
        assert sorted(session.exec(select(Reviewer.name)).all()) == [
            "root",
            "Émile",
        ]  # one row each


def test_admins_come_from_the_settings_until_an_admin_gives_another_role(engine, admins):
    assert role_of(engine, "ROOT") == "admin"
    assert role_of(engine, "someone") == "reviewer"
    set_role(engine, "root", "reviewer", actor="root")
    assert role_of(engine, "Root") == "reviewer"
    with pytest.raises(NotAllowed):
        set_role(engine, "someone", "admin", actor="root")


def test_people_lists_everyone_who_acted_with_role_and_last_activity(desk, admins):
    engine, ids = desk
    set_statuses(engine, {ids[0]: 1}, "checked", actor="Bea")
    assign(engine, {ids[1]: 1}, "Carl", actor="bea")  # Carl is enrolled by the assignment
    found = {p.name: p for p in people(engine)}
    assert set(found) == {"Bea", "Carl"}
    assert found["Bea"].actions == 2 and found["Bea"].last_active is not None
    assert (found["Carl"].role, found["Carl"].role_given, found["Carl"].actions) == (
        "reviewer", False, 0,
    )  # fmt: skip


# --- Triage -----------------------------------------------------------------------------


def test_a_status_for_many_claims_is_one_transaction_with_one_entry_each(desk):
    engine, ids = desk
    chosen = ids[:5]
    set_statuses(engine, _versions(engine, chosen), "disputed", actor="ana", note="Wrong year.")
    with Session(engine) as session:
        events = session.exec(select(ReviewEvent)).all()
        claims = session.exec(select(Claim).where(Claim.id.in_(chosen))).all()
    assert sorted(e.claim_id for e in events) == chosen
    assert {(c.status, c.version, c.reviewed_by, c.review_note) for c in claims} == {
        ("disputed", 2, "ana", "Wrong year.")
    }
    # Again, the same status without a note: nothing to record.
    set_statuses(engine, _versions(engine, chosen), "disputed", actor="ana")
    assert len(history(engine, chosen[0])) == 1


def test_a_triage_over_a_claim_changed_since_it_was_shown_changes_nothing(desk):
    engine, ids = desk
    shown = _versions(engine, ids[:3])
    set_statuses(engine, {ids[1]: 1}, "checked", actor="ben")  # meanwhile
    with pytest.raises(StaleEdit) as refused:
        dismiss(engine, shown, actor="ana")
    assert [c.id for c in refused.value.changed] == [ids[1]]
    assert "checked" in str(refused.value)
    assert not any(c.dismissed for c in _claims(engine, ids[:3]))
    with Session(engine) as session:
        session.exec(sa.delete(Claim).where(Claim.id == ids[2]))
        session.commit()
    with pytest.raises(StaleEdit) as refused:
        assign(engine, _versions(engine, ids[:2]) | {ids[2]: 1}, "ana", actor="ana")
    assert refused.value.missing == [ids[2]]


def test_dismissed_claims_leave_the_default_queue_are_counted_and_come_back(desk):
    engine, ids = desk
    everything = count(engine, QueueFilter())
    dismiss(engine, _versions(engine, ids[:4]), actor="ana", note="Not a factual claim.")
    assert count(engine, QueueFilter()) == everything - 4
    assert _ids(engine, QueueFilter(dismissed="only"), "newest") == sorted(ids[:4], reverse=True)
    assert count(engine, QueueFilter(dismissed="include")) == everything
    assert status_counts(engine, QueueFilter())["dismissed"] == 4
    assert status_counts(engine, QueueFilter())["unreviewed"] == everything - 4
    restore(engine, _versions(engine, ids[:1]), actor="ana")
    assert count(engine, QueueFilter()) == everything - 3
    actions = [e.action for e in history(engine, ids[0])]
    assert actions == ["dismissed", "restored"]
    out = io.StringIO()
    export(engine, "jsonl", out, ExportFilter())
    rows = {row["id"]: row for row in map(json.loads, out.getvalue().splitlines())}
    assert rows[ids[1]]["dismissed"] is True and rows[ids[0]]["dismissed"] is False


def test_assignment_filters_and_history(desk):
    engine, ids = desk
    assign(engine, _versions(engine, ids[:2]), "Émile", actor="ana")
    assign(engine, _versions(engine, ids[2:3]), "ÉMILE", actor="ana")  # the same person
    assert _ids(engine, QueueFilter(assignee="émile"), "newest") == sorted(ids[:3], reverse=True)
    assert count(engine, QueueFilter(assignee=NOBODY)) == len(ids) - 3
    assign(engine, _versions(engine, ids[:1]), None, actor="ana")
    assert [(e.action, e.from_value, e.to_value) for e in history(engine, ids[0])] == [
        ("assigned", None, "Émile"),
        ("unassigned", "Émile", None),
    ]
    set_statuses(engine, _versions(engine, ids[5:7]), "checked", actor="Bea")
    assert _ids(engine, QueueFilter(reviewer="BEA"), "newest") == sorted(ids[5:7], reverse=True)


def test_position_finds_a_claim_deep_in_the_queue(desk):
    engine, _ = desk
    flt = QueueFilter(claim_types=("statistic",))
    for sort in ("checkworthiness", "newest", "article"):
        order = _ids(engine, flt, sort)
        for where in (0, 37, len(order) - 1):
            assert position(engine, flt, order[where], sort) == where
    event = _ids(engine, QueueFilter(claim_types=("event",)))[0]
    assert position(engine, flt, event) is None


# --- Search -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("deficit", lambda t: "deficit" in t),
        ("defic", lambda t: "deficit" in t),  # a word's beginning
        ('"deficit figure"', lambda t: "deficit figure" in t),
        ('"figure deficit"', lambda t: False),  # a phrase, not two words
        ("deficit OR jobs", lambda t: "deficit" in t or "jobs" in t),
        ("figure -deficit -jobs", lambda t: "deficit" not in t and "jobs" not in t),
        ("3.1%", lambda t: " 3.1%" in t),  # not 31, 3.10, 13.1
        ("3.1% OR 4.2%", lambda t: " 3.1%" in t or " 4.2%" in t),
        ("jobs 3.1% OR 4.2%", lambda t: "jobs" in t and (" 3.1%" in t or " 4.2%" in t)),
        ("figure -3.1%", lambda t: " 3.1%" not in t),
        ("jobs deficit OR taxes", lambda t: "jobs" in t and ("deficit" in t or "taxes" in t)),
        ("2001", lambda t: "in 2001." in t),
        ('"district 4" OR "district 5"', lambda t: "district 4 " in t or "district 5 " in t),
        ('deficit "in 2000"', lambda t: "deficit" in t and "in 2000" in t),
        ('"unclosed phrase', lambda t: "unclosed phrase" in t),
        ("OR -", lambda t: True),  # nothing to search for: everything
        ('AND NOT NEAR * ^ " ( )', lambda t: False),  # FTS5 words taken as words, not syntax
    ],
)
def test_search_reads_phrases_or_exclusions_and_numbers_as_people_expect(desk, query, expected):
    engine, _ = desk
    found = {r.claim.text for r in page_rows(engine, QueueFilter(search=query), page_size=500)}
    with Session(engine) as session:
        every = set(session.exec(select(Claim.text)).all())
    wanted = {t for t in every if expected(t)}
    assert found == wanted


def test_the_search_parser_never_lets_syntax_through():
    parsed = parse('"a b" OR c -d -"e f" g* NEAR(x)')
    assert [[t.words for t in clause] for clause in parsed.all_of] == [
        [("a", "b"), ("c",)], [("g",)], [("NEAR", "x")],
    ]  # fmt: skip
    assert [t.words for t in parsed.none_of] == [("d",), ("e", "f")]


# --- History for Overview -----------------------------------------------------------------


def test_backlog_and_reviews_per_day_come_from_the_history(desk):
    engine, ids = desk
    day = datetime.now(UTC) - timedelta(days=3)
    with Session(engine) as session:  # the claims were found three days ago
        session.exec(sa.update(Claim).values(created_at=day))
        session.commit()
    set_statuses(engine, _versions(engine, ids[:3]), "checked", actor="ana")
    set_statuses(engine, _versions(engine, ids[3:4]), "in_progress", actor="ana")
    dismiss(engine, _versions(engine, ids[4:6]), actor="ana")
    series = backlog(engine, QueueFilter())
    assert series[0] == (day.date() - timedelta(days=1), 0)
    assert series[1] == (day.date(), len(ids))
    assert series[-1][1] == len(ids) - 3 - 2  # in progress still waits for a verdict
    assert series[-1][1] == count(engine, QueueFilter(statuses=("unreviewed", "in_progress")))
    reviews = {status: n for _, status, n in reviews_per_day(engine, QueueFilter())}
    assert reviews == {"checked": 3, "in_progress": 1}


def _claims(engine, ids) -> list[Claim]:
    with Session(engine) as session:
        return list(session.exec(select(Claim).where(Claim.id.in_(ids))).all())


def test_one_row_per_cluster_shows_the_first_member_the_filter_selects(desk):
    engine, ids = desk
    with Session(engine) as session:  # three claims say the same: one cluster
        session.exec(sa.update(Claim).where(Claim.id.in_(ids[:3])).values(cluster_id=ids[0]))
        session.commit()
    dismiss(engine, _versions(engine, ids[:1]), actor="ana")  # its first member
    flt = QueueFilter(one_per_cluster=True)
    shown = _ids(engine, flt, "newest")
    assert ids[1] in shown and ids[2] not in shown and ids[0] not in shown
    assert count(engine, flt) == len(ids) - 3 + 1
    only_third = QueueFilter(one_per_cluster=True, search=_claims(engine, ids[2:3])[0].text)
    assert ids[2] in _ids(engine, only_third)


def test_the_backlog_replays_each_claims_history_in_order(desk):
    """A claim dismissed on day 2 and checked on day 4 left the backlog on day 2."""
    engine, ids = desk
    start = (datetime.now(UTC) - timedelta(days=6)).replace(hour=12)
    with Session(engine) as session:
        session.exec(sa.update(Claim).values(created_at=start))
        session.exec(
            sa.update(Claim).where(Claim.id == ids[0]).values(dismissed=True, status="checked")
        )
        session.add_all([
            ReviewEvent(claim_id=ids[0], actor="ana", at=start + timedelta(days=2),
                        action="dismissed", field="dismissed", to_value="true"),
            ReviewEvent(claim_id=ids[0], actor="ana", at=start + timedelta(days=4),
                        action="status", field="status", from_value="unreviewed",
                        to_value="checked"),
        ])  # fmt: skip
        session.commit()
    series = dict(backlog(engine, QueueFilter()))
    day = start.date()
    assert series[day] == len(ids)
    assert series[day + timedelta(days=2)] == len(ids) - 1
    assert day + timedelta(days=4) not in series  # the verdict changed nothing: it was out
    assert series[max(series)] == len(ids) - 1
