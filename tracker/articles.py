"""Articles as the desk browses them: the latest ones with their claim counts, and an
article's text cut into the stretches its claims quote (for highlighting in place)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from tracker.models import Article, Claim


@dataclass
class ArticleRow:
    id: int
    title: str | None
    outlet: str | None
    state: str
    claims: int
    error: str | None
    imported_at: datetime


def recent(engine: Engine, *, limit: int = 500, outlet: str | None = None) -> list[ArticleRow]:
    """The latest articles first, with how many claims each has."""
    with Session(engine) as session:
        query = select(Article).order_by(Article.id.desc()).limit(limit)
        if outlet:
            query = query.where(Article.outlet == outlet)
        articles = session.exec(query).all()
        ids = [a.id for a in articles]
        counts = dict(
            session.exec(
                select(Claim.article_id, func.count())
                .where(Claim.article_id.in_(ids))
                .group_by(Claim.article_id)
            ).all()
        )
    return [
        ArticleRow(
            a.id,
            a.title,
            a.outlet,
            a.extraction_state,
            counts.get(a.id, 0),
            a.extraction_error,
            a.imported_at,
        )
        for a in articles
    ]


def get(engine: Engine, article_id: int) -> tuple[Article, list[Claim]] | None:
    """An article and its claims in reading order, or None."""
    with Session(engine) as session:
        article = session.get(Article, article_id)
        if article is None:
            return None
        claims = session.exec(
            select(Claim)
            .where(Claim.article_id == article_id)
            .order_by(Claim.quote_start, Claim.id)
        ).all()
        return article, list(claims)


@dataclass
class Stretch:
    """A run of the article's text and the claims that quote all of it (none: plain)."""

    text: str
    claims: list[Claim]


def stretches(text: str, claims: list[Claim]) -> list[Stretch]:
    """The text cut wherever a quote starts or ends, each piece with the claims quoting it,
    so overlapping quotes highlight as one and still lead to each of their claims. One
    sweep over the cuts in text order (an article can have thousands of claims)."""
    starts: dict[int, list[Claim]] = {}
    ends: dict[int, list[Claim]] = {}
    cuts = {0, len(text)}
    for claim in claims:
        start, end = max(0, claim.quote_start), min(len(text), claim.quote_end)
        if start >= end:
            continue
        starts.setdefault(start, []).append(claim)
        ends.setdefault(end, []).append(claim)
        cuts.update((start, end))
    points = sorted(cuts)
    pieces: list[Stretch] = []
    covering: dict[int, Claim] = {}  # the claims whose quote spans the current piece
    for start, end in itertools.pairwise(points):
        for claim in ends.get(start, []):
            covering.pop(id(claim), None)
        for claim in starts.get(start, []):
            covering[id(claim)] = claim
        these = sorted(covering.values(), key=lambda c: (c.quote_start, c.id or 0))
        if pieces and not these and not pieces[-1].claims:
            pieces[-1].text += text[start:end]
        else:
            pieces.append(Stretch(text[start:end], these))
    return pieces
