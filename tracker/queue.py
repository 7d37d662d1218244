"""The review queue: filtered, sorted, paged in SQL, so a million claims cost one page.

Full-text search uses SQLite FTS5 (the `claim_fts` table, kept in step by triggers) or
PostgreSQL's text search (an expression index over text and quote); see migration 0003.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from tracker.models import CLAIM_STATUSES, Article, Claim

# Each sort is a list of (column, descending?) ending in a unique column, so that "the
# claim after this one" is well defined (see next_claim).
SORT_KEYS: dict[str, list[tuple[Any, bool]]] = {
    "checkworthiness": [(Claim.checkworthiness, True), (Claim.id, False)],
    "newest": [(Claim.created_at, True), (Claim.id, True)],
    "updated": [(Claim.updated_at, True), (Claim.id, True)],
    "article": [(Claim.article_id, False), (Claim.quote_start, False), (Claim.id, False)],
}
SORTS = {
    name: tuple(column.desc() if descending else column for column, descending in keys)
    for name, keys in SORT_KEYS.items()
}


@dataclass
class QueueFilter:
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
                else:
                    values[f.name] = raw
            except ValueError:
                continue
        return cls(**values)


def _order(sort: str) -> tuple:
    return SORTS.get(sort, SORTS["checkworthiness"])


def _fts_query(text: str) -> str:
    """User words as an FTS5 query of quoted prefix terms (no operator injection)."""
    words = re.findall(r"\w+", text)
    return " ".join(f'"{w}"*' for w in words)


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
        query = query.where(sa.or_(Claim.cluster_id.is_(None), Claim.cluster_id == Claim.id))
    if flt.search and re.search(r"\w", flt.search):
        if dialect == "sqlite":
            matches = sa.text("claim.id IN (SELECT rowid FROM claim_fts WHERE claim_fts MATCH :q)")
            query = query.where(matches.bindparams(q=_fts_query(flt.search)))
        else:
            # The same expression as the GIN index of migration 0003, so the index is used.
            document = func.to_tsvector(
                sa.literal_column("'english'::regconfig"),
                Claim.text.concat(sa.literal_column("' '")).concat(Claim.quote),
            )
            tsquery = func.plainto_tsquery(sa.literal_column("'english'::regconfig"), flt.search)
            query = query.where(document.op("@@")(tsquery))
    return query


def _needs_article(flt: QueueFilter) -> bool:
    return bool(flt.outlet or flt.since or flt.until)


@dataclass
class QueueRow:
    claim: Claim
    article_title: str | None
    outlet: str | None


def queue_page(
    engine: Engine,
    flt: QueueFilter,
    *,
    page: int = 0,
    page_size: int = 50,
    sort: str = "checkworthiness",
) -> tuple[list[QueueRow], int]:
    """One page of the queue, and how many claims match in all."""
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
        count_query = select(func.count()).select_from(Claim)
        if _needs_article(flt):
            count_query = count_query.join(Article, Article.id == Claim.article_id)
        total = session.exec(where(count_query, flt, dialect)).one()
    return [QueueRow(c, title, outlet) for c, title, outlet in rows], total


def status_counts(engine: Engine, flt: QueueFilter) -> dict[str, int]:
    """Claims per status under the filter's other conditions."""
    with Session(engine) as session:
        query = select(Claim.status, func.count()).select_from(Claim)
        if _needs_article(flt):
            query = query.join(Article, Article.id == Claim.article_id)
        query = where(query, flt, engine.dialect.name, with_status=False).group_by(Claim.status)
        found = dict(session.exec(query).all())
    return {status: found.get(status, 0) for status in CLAIM_STATUSES}


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
