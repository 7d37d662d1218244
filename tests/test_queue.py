"""The review queue's SQL: filters, full-text search, paging, counts (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session

from tracker.ingest import add_article
from tracker.models import ArticleCreate, Claim
from tracker.people import set_role
from tracker.queue import QueueFilter, next_claim, queue_page, status_counts
from tracker.review import NotAllowed, edit_claim, set_status


def _seed(engine) -> list[int]:
    ids = []
    for n, (outlet, published) in enumerate([("Gazette", "2024-03-01"), ("Wire", "2024-05-01")]):
        sentences = [
            f"Unemployment fell to 3.{n}% in May.",
            "Bridges cost $4m each.",
            "The mayor will resign next year.",
        ]
        text = " ".join(sentences)
        article, _ = add_article(
            engine, ArticleCreate(text=text, title=f"A{n}", outlet=outlet, published_at=published)
        )
        with Session(engine) as session:
            for i, (claim_text, kind) in enumerate(
                [
                    (f"Unemployment fell to 3.{n}% in May.", "statistic"),
                    ("Each bridge cost four million dollars.", "statistic"),
                    ("The mayor will resign next year.", "prediction"),
                ]
            ):
                start = text.index(sentences[i])
                claim = Claim(
                    article_id=article.id, text=claim_text, quote=sentences[i],
                    quote_start=start, quote_end=start + len(sentences[i]), claim_type=kind,
                    claimant="Mayor" if i == 2 else None, checkworthiness=0.9 - i * 0.3 - n * 0.05,
                )  # fmt: skip
                session.add(claim)
                session.flush()
                ids.append(claim.id)
            session.commit()
    return ids


def test_the_queue_is_sorted_by_checkworthiness_and_paged(engine):
    _seed(engine)
    first, total = queue_page(engine, QueueFilter(), page=0, page_size=4)
    second, _ = queue_page(engine, QueueFilter(), page=1, page_size=4)
    scores = [r.claim.checkworthiness for r in first + second]
    assert total == 6 and len(first) == 4 and len(second) == 2
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (QueueFilter(claim_types=("prediction",)), 2),
        (QueueFilter(claimant="Mayor"), 2),
        (QueueFilter(outlet="Wire"), 3),
        (QueueFilter(min_score=0.5), 4),
        (QueueFilter(max_score=0.4), 2),
        (QueueFilter(since=date(2024, 4, 1)), 3),
        (QueueFilter(until=date(2024, 4, 1)), 3),
        (QueueFilter(search="unemployment"), 2),
        (QueueFilter(search="bridge"), 2),  # stems and prefixes: "bridge" finds "bridges"
        (QueueFilter(search="resign mayor"), 2),
        (QueueFilter(search='"); DROP TABLE claim; --'), 0),
    ],
)
def test_filters_and_full_text_search(engine, flt, expected):
    _seed(engine)
    rows, total = queue_page(engine, flt)
    assert total == expected == len(rows)


def test_search_follows_edits(engine):
    ids = _seed(engine)
    assert queue_page(engine, QueueFilter(search="inflation"))[1] == 0
    edit_claim(engine, ids[0], actor="ana", expected_version=1, text="Inflation hit 9% in June.")
    assert queue_page(engine, QueueFilter(search="inflation"))[1] == 1


def test_status_counts_and_the_next_claim(engine):
    ids = _seed(engine)
    set_status(engine, ids[0], "checked", actor="ana", expected_version=1)
    flt = QueueFilter(statuses=("unreviewed",))
    assert status_counts(engine, flt) == {
        "unreviewed": 5, "in_progress": 0, "checked": 1, "disputed": 0, "inconclusive": 0,
        "dismissed": 0,
    }  # fmt: skip
    order = [r.claim.id for r in queue_page(engine, flt)[0]]
    assert next_claim(engine, flt, order[0]) == order[1]
    assert next_claim(engine, flt, order[-1]) is None
    assert next_claim(engine, flt, ids[0]) == order[0]  # a claim that left the queue


def test_filters_round_trip_through_the_url():
    flt = QueueFilter(statuses=("checked", "disputed"), outlet="Wire", min_score=0.5,
                      since=date(2024, 1, 2), search="bridge")  # fmt: skip
    params = flt.to_params()
    assert params == {
        "statuses": "checked,disputed", "outlet": "Wire", "since": "2024-01-02",
        "min_score": "0.5", "search": "bridge",
    }  # fmt: skip
    assert QueueFilter.from_params(params) == flt
    assert QueueFilter.from_params({"min_score": "lots", "article_id": "x"}) == QueueFilter()


def test_a_viewer_can_change_nothing_and_only_admins_grant_roles(engine, monkeypatch):
    ids = _seed(engine)
    monkeypatch.setenv("TRACKER_ADMINS", "root")
    from tracker.config import get_settings

    get_settings.cache_clear()
    set_role(engine, "vic", "viewer", actor="root")
    with pytest.raises(NotAllowed):
        set_status(engine, ids[0], "checked", actor="vic", expected_version=1)
    with pytest.raises(NotAllowed):
        set_role(engine, "vic", "admin", actor="ana")
    with Session(engine) as session:
        assert session.get(Claim, ids[0]).status == "unreviewed"


def test_export_takes_the_whole_queue_filter(engine):
    import io

    from tracker.export import ExportFilter, export

    _seed(engine)
    flt = QueueFilter(search="bridge", outlet="Wire")
    assert export(engine, "jsonl", io.StringIO(), ExportFilter(queue=flt)) == 1


@pytest.mark.parametrize("sort", ["checkworthiness", "newest", "updated", "article"])
def test_the_next_claim_is_found_deep_in_a_long_queue(engine, sort):
    """A busy newsroom's queue holds many thousands of claims; "Save and next" must follow
    the queue's order wherever the current claim is, ties in the sort key broken by id."""
    article, _ = add_article(engine, ArticleCreate(text="Shared text of many claims."))
    with Session(engine) as session:
        session.add_all(
            Claim(
                article_id=article.id,
                text=f"Claim {i}.",
                quote="Shared",
                quote_start=0,
                quote_end=6,
                checkworthiness=(i % 7) / 10,
            )
            for i in range(10_050)
        )
        session.commit()
    flt = QueueFilter()
    order = [r.claim.id for r in queue_page(engine, flt, sort=sort, page_size=20_000)[0]]
    assert len(order) == 10_050
    for position in (0, 4_321, 10_000, 10_048):
        assert next_claim(engine, flt, order[position], sort) == order[position + 1]
    assert next_claim(engine, flt, order[-1], sort) is None
