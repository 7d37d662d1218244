"""Counts for `tracker stats`: where the claims are and what is left to do."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from tracker.config import Settings
from tracker.models import (
    ENTRY_STATES,
    Article,
    Claim,
    ClaimMatch,
    FactCheck,
    Feed,
    FeedEntry,
    ModelCall,
    ReviewEvent,
)
from tracker.queue import QueueFilter, where


def _counts(session: Session, column: Any, *, join_article: bool = False, top: int | None = None):
    query = select(column, func.count()).select_from(Claim)
    if join_article:
        query = query.join(Article, Article.id == Claim.article_id)
    query = query.group_by(column).order_by(func.count().desc(), column)
    if top:
        query = query.limit(top)
    return {str(key) if key is not None else "(none)": n for key, n in session.exec(query)}


def collect(engine: Engine, settings: Settings, *, top: int = 10) -> dict[str, Any]:
    from tracker import workqueue

    queue = workqueue.state(engine, settings, top=top)
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
            "dismissed": session.exec(
                select(func.count()).select_from(Claim).where(Claim.dismissed.is_(True))
            ).one(),
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
            "queue": {
                "pending": queue.pending,
                "failed": queue.failed,
                "extracting": queue.extracting,
                "leased": [vars(held) for held in queue.leased],
                "workers": [worker.model_dump() for worker in queue.workers],
            },
            "failures": [
                {"article_id": i, "title": t, "source": s, "reason": e} for i, t, s, e in failures
            ],
            "monitoring": _monitoring(session, engine),
        }


def _monitoring(session: Session, engine: Engine) -> dict[str, Any]:
    """Feeds followed and failing, entries read, and the alerts with their webhook."""
    from tracker.alerts import counts

    feeds = session.exec(select(func.count()).select_from(Feed)).one()
    failing = session.exec(select(func.count()).select_from(Feed).where(Feed.failures > 0)).one()
    entries = dict(
        session.exec(select(FeedEntry.state, func.count()).group_by(FeedEntry.state)).all()
    )
    return {
        "feeds": feeds,
        "feeds_failing": failing,
        "entries": {state: entries.get(state, 0) for state in ENTRY_STATES},
        **counts(engine),
    }


def monitoring_lines(data: dict[str, Any]) -> list[str]:
    """The monitoring part of `tracker stats`, in words."""
    if not data["feeds"] and not data["alerts"]:
        return []
    entries = data["entries"]
    hook = data["webhook"]
    lines = [
        f"Monitoring: {data['feeds']} feeds ({data['feeds_failing']} failing), "
        f"{sum(entries.values())} entries ({entries['stored']} read, "
        f"{entries['pending']} to read, {entries['failed']} unreadable)",
        f"Repeat-claim alerts: {data['alerts']} ({data['unacknowledged']} not acknowledged); "
        f"webhook: {hook['sent']} sent, {hook['waiting']} waiting, {hook['failed']} failed",
    ]
    if data["webhook_last_error"] and (hook["waiting"] or hook["failed"]):
        lines.append(f"  last webhook error: {data['webhook_last_error']}")
    return lines


# --- The dashboard's Overview, under the queue's filter ------------------------------------

OPEN_STATUSES = ("unreviewed", "in_progress")


def _filtered(query: Any, flt: QueueFilter, engine: Engine) -> Any:
    return where(query.join(Article, Article.id == Claim.article_id), flt, engine.dialect.name)


def breakdown(engine: Engine, flt: QueueFilter, column: Any, top: int = 15) -> list[tuple]:
    """The filtered claims counted by `column` (outlet, claimant, ...), largest first."""
    with Session(engine) as session:
        query = _filtered(select(column, func.count()).select_from(Claim), flt, engine)
        query = query.group_by(column).order_by(func.count().desc(), column).limit(top)
        return [(key if key is not None else "(none)", n) for key, n in session.exec(query)]


def reviews_per_day(engine: Engine, flt: QueueFilter) -> list[tuple[date, str, int]]:
    """Status changes per day and the status given, from the history of the filtered
    claims (every change counts: a claim checked twice is two reviews)."""
    day = func.date(ReviewEvent.at)
    with Session(engine) as session:
        query = select(day, ReviewEvent.to_value, func.count()).select_from(ReviewEvent)
        query = query.join(Claim, Claim.id == ReviewEvent.claim_id)
        query = _filtered(query, replace(flt, statuses=()), engine)
        query = query.where(ReviewEvent.action == "status").group_by(day, ReviewEvent.to_value)
        return [(_day(d), status, n) for d, status, n in session.exec(query.order_by(day))]


def backlog(engine: Engine, flt: QueueFilter) -> list[tuple[date, int]]:
    """Claims waiting for a verdict (unreviewed or in progress, not dismissed) at the end
    of each day, rebuilt from the history: each claim's changes are replayed in order, so
    a claim dismissed on Monday and checked on Thursday left the backlog on Monday."""
    flt = replace(flt, statuses=(), dismissed="include")
    created_day = func.date(Claim.created_at)
    change: dict[date, int] = {}
    with Session(engine) as session:
        query = _filtered(select(created_day, func.count()).select_from(Claim), flt, engine)
        for day, n in session.exec(query.group_by(created_day)):
            change[_day(day)] = change.get(_day(day), 0) + n
        events = select(
            ReviewEvent.claim_id, ReviewEvent.at, ReviewEvent.action, ReviewEvent.to_value
        ).join(Claim, Claim.id == ReviewEvent.claim_id)
        events = _filtered(events, flt, engine).where(
            ReviewEvent.action.in_(("status", "dismissed", "restored"))
        )
        current, status, dismissed = None, "unreviewed", False
        for claim_id, at, action, value in session.exec(
            events.order_by(ReviewEvent.claim_id, ReviewEvent.at, ReviewEvent.id)
        ):
            if claim_id != current:  # every claim starts found: unreviewed, waiting
                current, status, dismissed = claim_id, "unreviewed", False
            waiting = status in OPEN_STATUSES and not dismissed
            if action == "status":
                status = value
            else:
                dismissed = action == "dismissed"
            step = (status in OPEN_STATUSES and not dismissed) - waiting
            if step:
                change[_day(at)] = change.get(_day(at), 0) + step
    if not change:
        return []
    days = sorted(change)
    series, open_now = [(days[0] - timedelta(days=1), 0)], 0  # from an empty desk
    for day in days:
        open_now += change[day]
        series.append((day, open_now))
    today = datetime.now(UTC).date()
    if days[-1] < today:  # nothing changed since: the backlog stands as it was
        series.append((today, open_now))
    return series


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
