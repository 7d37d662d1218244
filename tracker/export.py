"""Exporting claims as JSONL or CSV, streamed in batches so memory stays flat.

The JSONL field names (`id`, `article_id`, `article_title`, `article_url`, `text`,
`quote`, `start`, `end`, `claimant`, `claim_type`, `checkworthiness`, `status`,
`sources`) are a public contract; fields may be added, never renamed. The review travels
with each claim: `rating`, `review_note` (the last verdict's note), `reviewed_by`,
`reviewed_at`, `assignee` and `dismissed` (not check-worthy).
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tracker.models import Article, Claim, Source
from tracker.queue import QueueFilter
from tracker.queue import where as filtered

FIELDS = [
    "id",
    "article_id",
    "article_title",
    "article_url",
    "outlet",
    "published_at",
    "text",
    "quote",
    "start",
    "end",
    "claimant",
    "claim_type",
    "checkworthiness",
    "offline_score",
    "status",
    "rating",
    "review_note",
    "reviewed_by",
    "reviewed_at",
    "assignee",
    "dismissed",
    "sources",
    "model",
    "prompt_hash",
    "created_at",
    "updated_at",
]
FORMATS = ("jsonl", "csv")
BATCH = 500


@dataclass
class ExportFilter:
    statuses: list[str] | None = None
    outlet: str | None = None
    since: datetime | None = None
    queue: QueueFilter | None = None  # the dashboard's whole review-queue filter


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def narrowed(query: Any, where: ExportFilter, dialect: str) -> Any:
    """`query` (over Claim joined to Article) limited to the claims `where` selects."""
    if where.statuses:
        query = query.where(Claim.status.in_(where.statuses))
    if where.outlet:
        query = query.where(Article.outlet == where.outlet)
    if where.queue:
        query = filtered(query, where.queue, dialect)
    if where.since:
        since = where.since.astimezone(UTC)  # a naive time is the user's local time
        query = query.where(Claim.updated_at >= since)
    return query


def iter_rows(engine: Engine, where: ExportFilter | None = None) -> Iterator[dict[str, Any]]:
    """Every matching claim as a plain dict, in id order, with its sources."""
    where = where or ExportFilter()
    last_id = 0
    with Session(engine) as session:
        while True:
            query = (
                select(Claim, Article)
                .join(Article, Article.id == Claim.article_id)
                .where(Claim.id > last_id)
                .order_by(Claim.id)
                .limit(BATCH)
            )
            batch = session.exec(narrowed(query, where, engine.dialect.name)).all()
            if not batch:
                return
            sources = defaultdict(list)
            ids = [claim.id for claim, _ in batch]
            for src in session.exec(
                select(Source).where(Source.claim_id.in_(ids)).order_by(Source.id)
            ):
                sources[src.claim_id].append(
                    {"url": src.url, "title": src.title, "stance": src.stance, "note": src.note}
                )
            for claim, article in batch:
                yield {
                    "id": claim.id,
                    "article_id": article.id,
                    "article_title": article.title,
                    "article_url": article.url,
                    "outlet": article.outlet,
                    "published_at": _iso(article.published_at),
                    "text": claim.text,
                    "quote": claim.quote,
                    "start": claim.quote_start,
                    "end": claim.quote_end,
                    "claimant": claim.claimant,
                    "claim_type": claim.claim_type,
                    "checkworthiness": claim.checkworthiness,
                    "offline_score": claim.offline_score,
                    "status": claim.status,
                    "rating": claim.rating,
                    "review_note": claim.review_note,
                    "reviewed_by": claim.reviewed_by,
                    "reviewed_at": _iso(claim.reviewed_at),
                    "assignee": claim.assignee,
                    "dismissed": bool(claim.dismissed),
                    "sources": sources.get(claim.id, []),
                    "model": claim.model,
                    "prompt_hash": claim.prompt_hash,
                    "created_at": _iso(claim.created_at),
                    "updated_at": _iso(claim.updated_at),
                }
            last_id = batch[-1][0].id
            session.expunge_all()


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-\d[\d.,]*%?")


def _cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text: article text is untrusted, and a cell
    starting with "=" (or "+", "-", "@") would otherwise run as a formula when the file is
    opened. Such cells get a leading "'"; a plain negative number like "-3%" is left alone.
    """
    if isinstance(value, list):
        value = json.dumps(value, ensure_ascii=False)
    if (
        isinstance(value, str)
        and value.startswith(_FORMULA_START)
        and not _PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def write_csv(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    writer = csv.DictWriter(out, fieldnames=FIELDS, extrasaction="ignore")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow({key: _cell(value) for key, value in row.items()})
        count += 1
    return count


def export(engine: Engine, fmt: str, out: IO[str], where: ExportFilter | None = None) -> int:
    """Write the claims in `fmt` to `out`; returns how many were written."""
    writers = {"jsonl": write_jsonl, "csv": write_csv}
    if fmt not in writers:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    return writers[fmt](iter_rows(engine, where), out)
