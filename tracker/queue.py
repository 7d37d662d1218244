"""The review queue: filtered, sorted, paged in SQL, so a million claims cost one page.

Full-text search uses SQLite FTS5 (the `claim_fts` table, kept in step by triggers) or
PostgreSQL's text search (an expression index over text and quote); see migration 0003.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, func, select

from tracker import search as searching
from tracker.models import CLAIM_STATUSES, Article, Claim, Reviewer
from tracker.people import person_key

# Each sort is a list of (column, descending?) ending in a unique column, so that "the
# claim after this one" is well defined (see next_claim).
SORT_KEYS: dict[str, list[tuple[Any, bool]]] = {
    "checkworthiness": [(Claim.checkworthiness, True), (Claim.id, False)],
    "newest": [(Claim.created_at, True), (Claim.id, True)],
    "updated": [(Claim.updated_at, True), (Claim.id, True)],
    "article": [(Claim.article_id, False), (Claim.quote_start, False), (Claim.id, False)],
}
SORT_WORDS = {
    "checkworthiness": "most check-worthy first",
    "newest": "newest first",
    "updated": "recently changed first",
    "article": "in article order",
}
SORTS = {
    name: tuple(column.desc() if descending else column for column, descending in keys)
    for name, keys in SORT_KEYS.items()
}


NOBODY = "(nobody)"  # the assignee filter's value for claims assigned to no one
DISMISSED_CHOICES = ("hide", "only", "include")


@dataclass
class QueueFilter:
    """Which claims the queue shows. The same filter drives the dashboard's queue, "Save
    and next", Overview and Export, and `tracker claims` / `tracker export`."""

    statuses: tuple[str, ...] = ()
    claim_types: tuple[str, ...] = ()
    claimant: str | None = None
    outlet: str | None = None
    article_id: int | None = None
    since: date | None = None  # the article's publication date (else import date)
    until: date | None = None
    min_score: float = 0.0
    max_score: float = 1.0
    search: str | None = None
    one_per_cluster: bool = False  # show each cluster once, by its first claim
    assignee: str | None = None  # a person, or NOBODY
    reviewer: str | None = None  # who gave the last verdict
    dismissed: str = "hide"  # dismissed claims: hide, only, include

    def to_params(self) -> dict[str, str]:
        """The filter as URL query parameters (only what differs from the default)."""
        params = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value in (None, (), "") or value == f.default:
                continue
            params[f.name] = ",".join(value) if isinstance(value, tuple) else str(value)
        return params

    @classmethod
    def from_params(cls, params: dict[str, str]) -> QueueFilter:
        """The filter in URL query parameters; anything malformed is ignored, not fatal."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = params.get(f.name)
            if not raw:
                continue
            try:
                if f.name in ("statuses", "claim_types"):
                    values[f.name] = tuple(v for v in raw.split(",") if v)
                elif f.name == "article_id":
                    values[f.name] = int(raw)
                elif f.name in ("min_score", "max_score"):
                    values[f.name] = min(1.0, max(0.0, float(raw)))
                elif f.name in ("since", "until"):
                    values[f.name] = date.fromisoformat(raw)
                elif f.name == "one_per_cluster":
                    values[f.name] = raw.lower() in ("1", "true", "yes")
                elif f.name == "dismissed":
                    if raw in DISMISSED_CHOICES:
                        values[f.name] = raw
                else:
                    values[f.name] = raw
            except ValueError:
                continue
        return cls(**values)


def _order(sort: str) -> tuple:
    return SORTS.get(sort, SORTS["checkworthiness"])


def _person(column: Any, name: str) -> Any:
    """`column` names this person, however the filter spells them (Unicode case fold)."""
    same = select(Reviewer.name).where(Reviewer.name_key == person_key(name))
    return sa.or_(column == name, column.in_(same.scalar_subquery()))


def _search(query: Any, text: str, dialect: str) -> Any:
    """`query` narrowed to the claims the search box asks for (tracker/search.py)."""
    parsed = searching.parse(text)
    if parsed.empty:
        return query
    if dialect == "sqlite":
        keep, leave_out = searching.fts5(parsed)
        match = "SELECT rowid FROM claim_fts WHERE claim_fts MATCH :{}"
        if keep:
            query = query.where(sa.text(f"claim.id IN ({match.format('q')})").bindparams(q=keep))
        if leave_out:
            found = sa.text(f"claim.id NOT IN ({match.format('nq')})").bindparams(nq=leave_out)
            query = query.where(found)
    else:
        # The same expression as the GIN index of migration 0003, so the index is used;
        # OFFSET 0 keeps the planner from folding the search into a sort-order scan that
        # would compute every claim's vector (1.5-2 s at 100,000 claims, newest first).
        english = sa.literal_column("'english'::regconfig")
        document = func.to_tsvector(
            english, Claim.text.concat(sa.literal_column("' '")).concat(Claim.quote)
        )

        def hits(terms: list[list[searching.Term]]) -> Any:
            found = select(Claim.id).where(document.op("@@")(searching.tsquery(terms)))
            return found.offset(0).scalar_subquery()

        if parsed.all_of:
            query = query.where(Claim.id.in_(hits(parsed.all_of)))
        if parsed.none_of:
            query = query.where(Claim.id.not_in(hits([parsed.none_of])))
    both = Claim.text.concat(" ").concat(Claim.quote)
    return query.where(*searching.exact_numbers(parsed, both))


def where(query: Any, flt: QueueFilter, dialect: str, *, with_status: bool = True) -> Any:
    """`query` (over Claim joined to Article) narrowed to the claims `flt` selects."""
    if with_status and flt.statuses:
        query = query.where(Claim.status.in_(flt.statuses))
    if flt.claim_types:
        query = query.where(Claim.claim_type.in_(flt.claim_types))
    if flt.claimant:
        query = query.where(Claim.claimant == flt.claimant)
    if flt.outlet:
        query = query.where(Article.outlet == flt.outlet)
    if flt.article_id is not None:
        query = query.where(Claim.article_id == flt.article_id)
    day = func.coalesce(Article.published_at, Article.imported_at)
    if flt.since:
        query = query.where(day >= datetime.combine(flt.since, time.min))
    if flt.until:
        query = query.where(day <= datetime.combine(flt.until, time.max))
    if flt.min_score > 0:
        query = query.where(Claim.checkworthiness >= flt.min_score)
    if flt.max_score < 1:
        query = query.where(Claim.checkworthiness <= flt.max_score)
    if flt.one_per_cluster:
        # Each cluster once: by its first claim that the rest of the filter selects (not
        # its first claim, which may be dismissed, or not match the search).
        others = aliased(Claim)
        selected = where(
            select(Claim.id).join(Article, Article.id == Claim.article_id),
            replace(flt, one_per_cluster=False),
            dialect,
            with_status=with_status,
        ).correlate(None)
        earlier = select(others.id).where(
            others.cluster_id == Claim.cluster_id,
            others.id < Claim.id,
            others.id.in_(selected.scalar_subquery()),
        )
        query = query.where(sa.or_(Claim.cluster_id.is_(None), ~earlier.exists()))
    if flt.assignee == NOBODY:
        query = query.where(Claim.assignee.is_(None))
    elif flt.assignee:
        query = query.where(_person(Claim.assignee, flt.assignee))
    if flt.reviewer:
        query = query.where(_person(Claim.reviewed_by, flt.reviewer))
    if flt.dismissed == "hide":
        query = query.where(Claim.dismissed.is_(False))
    elif flt.dismissed == "only":
        query = query.where(Claim.dismissed.is_(True))
    if flt.search and re.search(r"\w", flt.search):
        query = _search(query, flt.search, dialect)
    return query


def _needs_article(flt: QueueFilter) -> bool:
    return bool(flt.outlet or flt.since or flt.until)


@dataclass
class QueueRow:
    claim: Claim
    article_title: str | None
    outlet: str | None


def page_rows(
    engine: Engine,
    flt: QueueFilter,
    *,
    page: int = 0,
    page_size: int = 50,
    sort: str = "checkworthiness",
) -> list[QueueRow]:
    """One page of the queue (`page` counts from 0), in the sort's order."""
    dialect = engine.dialect.name
    with Session(engine) as session:
        rows_query = select(Claim, Article.title, Article.outlet).join(
            Article, Article.id == Claim.article_id
        )
        order, first = _order(sort), page * page_size
        if _needs_article(flt):
            rows_query = where(rows_query, flt, dialect).order_by(*order)
            rows_query = rows_query.offset(first).limit(page_size)
        else:  # pick the page by claim's own indexes first, then join its 50 articles only
            page_ids = where(select(Claim.id), flt, dialect).order_by(*order)
            page_ids = page_ids.offset(first).limit(page_size)
            rows_query = rows_query.where(Claim.id.in_(page_ids)).order_by(*order)
        rows = session.exec(rows_query).all()
    return [QueueRow(c, title, outlet) for c, title, outlet in rows]


def queue_page(
    engine: Engine,
    flt: QueueFilter,
    *,
    page: int = 0,
    page_size: int = 50,
    sort: str = "checkworthiness",
) -> tuple[list[QueueRow], int]:
    """One page of the queue, and how many claims match in all."""
    rows = page_rows(engine, flt, page=page, page_size=page_size, sort=sort)
    return rows, count(engine, flt)


def total(counts: dict[str, int], flt: QueueFilter) -> int:
    """How many claims the filter selects, from its `status_counts` (no second query)."""
    return sum(counts[status] for status in (flt.statuses or CLAIM_STATUSES) if status in counts)


def status_counts(engine: Engine, flt: QueueFilter) -> dict[str, int]:
    """Claims per status under the filter's other conditions, and how many of them were
    dismissed ("dismissed", whatever the filter says about dismissed claims)."""
    with Session(engine) as session:
        query = select(Claim.status, Claim.dismissed, func.count()).select_from(Claim)
        if _needs_article(flt):
            query = query.join(Article, Article.id == Claim.article_id)
        every = replace(flt, dismissed="include")
        query = where(query, every, engine.dialect.name, with_status=False)
        rows = session.exec(query.group_by(Claim.status, Claim.dismissed)).all()
    counts = {status: 0 for status in CLAIM_STATUSES}
    counts["dismissed"] = 0
    for status, dismissed, n in rows:
        if dismissed:
            counts["dismissed"] += n
        if flt.dismissed == "include" or bool(dismissed) == (flt.dismissed == "only"):
            counts[status] = counts.get(status, 0) + n
    return counts


def count(engine: Engine, flt: QueueFilter) -> int:
    """How many claims the filter selects."""
    with Session(engine) as session:
        query = select(func.count()).select_from(Claim)
        if _needs_article(flt):
            query = query.join(Article, Article.id == Claim.article_id)
        return session.exec(where(query, flt, engine.dialect.name)).one()


def position(
    engine: Engine, flt: QueueFilter, claim_id: int, sort: str = "checkworthiness"
) -> int | None:
    """Where `claim_id` stands in the queue (0: first), or None when the filter leaves it
    out; "Back to queue" opens the page that holds it."""
    keys = SORT_KEYS.get(sort, SORT_KEYS["checkworthiness"])
    with Session(engine) as session:
        queue = select(Claim.id).join(Article, Article.id == Claim.article_id)
        queue = where(queue, flt, engine.dialect.name)
        if session.exec(queue.where(Claim.id == claim_id)).first() is None:
            return None
        current = session.exec(select(*[c for c, _ in keys]).where(Claim.id == claim_id)).one()
        before = []
        for depth, (column, descending) in enumerate(keys):
            ties = [key == value for (key, _), value in zip(keys[:depth], current, strict=False)]
            ahead = column > current[depth] if descending else column < current[depth]
            before.append(sa.and_(*ties, ahead))
        counted = (
            select(func.count()).select_from(Claim).join(Article, Article.id == Claim.article_id)
        )
        counted = where(counted, flt, engine.dialect.name).where(sa.or_(*before))
        return session.exec(counted).one()


def next_claim(
    engine: Engine, flt: QueueFilter, claim_id: int, sort: str = "checkworthiness"
) -> int | None:
    """The claim after `claim_id` in the queue's order (the first of the queue when
    `claim_id` is not in it); ask before acting on the claim, since the action may take it
    out of the filtered queue. A keyset search: as quick deep in the queue as at its top."""
    keys = SORT_KEYS.get(sort, SORT_KEYS["checkworthiness"])
    with Session(engine) as session:
        queue = select(Claim.id).join(Article, Article.id == Claim.article_id)
        queue = where(queue, flt, engine.dialect.name)
        base = queue.order_by(*_order(sort)).limit(1)
        current = session.exec(
            select(*[column for column, _ in keys]).where(Claim.id == claim_id)
        ).first()
        if current is None or session.exec(queue.where(Claim.id == claim_id)).first() is None:
            return session.exec(base).first()
        # The nearest claim after this one: first among those tied with it on every key but
        # the last, then on all but the last two, and so on (each one short index scan).
        for depth in range(len(keys) - 1, -1, -1):
            column, descending = keys[depth]
            ties = [key == value for (key, _), value in zip(keys[:depth], current, strict=False)]
            beyond = column < current[depth] if descending else column > current[depth]
            found = session.exec(base.where(*ties, beyond)).first()
            if found is not None:
                return found
        return None


def distinct_values(engine: Engine, column: Any, limit: int = 500) -> list[str]:
    """Known outlets or claimants, for filter choices (most frequent first)."""
    with Session(engine) as session:
        table = Article if column.class_ is Article else Claim
        query = (
            select(column, func.count())
            .select_from(table)
            .where(column.is_not(None))
            .group_by(column)
            .order_by(func.count().desc())
            .limit(limit)
        )
        return [value for value, _ in session.exec(query).all()]
