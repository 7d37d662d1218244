"""Counts for `tracker stats`: where the claims are and what is left to do."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from tracker.models import Article, Claim, ClaimMatch, FactCheck, ModelCall


def _counts(session: Session, column: Any, *, join_article: bool = False, top: int | None = None):
    query = select(column, func.count()).select_from(Claim)
    if join_article:
        query = query.join(Article, Article.id == Claim.article_id)
    query = query.group_by(column).order_by(func.count().desc(), column)
    if top:
        query = query.limit(top)
    return {str(key) if key is not None else "(none)": n for key, n in session.exec(query)}


def collect(engine: Engine, *, top: int = 10) -> dict[str, Any]:
    with Session(engine) as session:
        states = dict(
            session.exec(
                select(Article.extraction_state, func.count()).group_by(Article.extraction_state)
            ).all()
        )
        failures = session.exec(
            select(Article.id, Article.title, Article.source_path, Article.extraction_error)
            .where(Article.extraction_state == "failed")
            .order_by(Article.id)
            .limit(top)
        ).all()
        tokens = session.exec(
            select(
                sa.func.coalesce(func.sum(ModelCall.prompt_tokens), 0),
                sa.func.coalesce(func.sum(ModelCall.completion_tokens), 0),
            )
        ).one()
        return {
            "articles": sum(states.values()),
            "extraction": {s: states.get(s, 0) for s in ("extracted", "pending", "failed")},
            "claims": session.exec(select(func.count()).select_from(Claim)).one(),
            "by_status": _counts(session, Claim.status),
            "by_claim_type": _counts(session, Claim.claim_type),
            "by_outlet": _counts(session, Article.outlet, join_article=True, top=top),
            "by_claimant": _counts(session, Claim.claimant, top=top),
            "matches": dict(
                session.exec(
                    select(ClaimMatch.state, func.count()).group_by(ClaimMatch.state)
                ).all()
            ),
            "fact_checks": session.exec(select(func.count()).select_from(FactCheck)).one(),
            "tokens": {"prompt": int(tokens[0]), "completion": int(tokens[1])},
            "failures": [
                {"article_id": i, "title": t, "source": s, "reason": e} for i, t, s, e in failures
            ],
        }
