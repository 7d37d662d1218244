"""Repeat-claim alerts: a claim the desk has checked, or another organisation has
fact-checked, said again in an article the feeds brought in.

Raising: for every article from the feeds whose claims were stored since they were last
looked at (whoever extracted them: this process, or a worker), each claim's matches
(suggested or linked, tracker/matching.py) to a claim with a verdict (checked, disputed,
inconclusive; through its cluster when linked) and its prior fact-checks
(tracker/claimreview.py `prior_checks`, as the claim page shows them) become alerts. One
alert per article and matched claim or fact-check (`pair_key`, unique in the database), so
a second pass, a re-extraction or the same wire story from another outlet raises nothing
new. Only articles from the feeds raise alerts: importing an archive is not news.

Delivering: the dashboard's Repeats page, and `TRACKER_ALERT_WEBHOOK`: one JSON POST per
alert, Slack-compatible (`text`, with the untrusted parts escaped so that a claim cannot
mention @channel or forge a link) plus the structured fields. A failed POST is tried again
with back-off, up to `WEBHOOK_ATTEMPTS` times; a POST answered 2xx is never sent again. Each
attempt first takes the alert (a conditional UPDATE), so two `watch` processes never send
the same alert at once; after a failure the pass tries no more (a webhook that is down
would fail them all, a timeout each). The webhook URL is a secret: it is never stored,
printed, logged or put in an error message (errors are ours: "HTTP 500", "timed out").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from tracker.claimreview import REVIEWED, prior_checks, web_url
from tracker.config import Settings
from tracker.db import session_scope
from tracker.matching import conflict
from tracker.models import Alert, Article, Claim, ClaimMatch, FactCheck, FeedEntry, utcnow
from tracker.sanitize import scrub

WEBHOOK_ATTEMPTS = 8
WEBHOOK_FIRST_WAIT = 60.0  # seconds; doubles after each failure, up to WEBHOOK_MAX_WAIT
WEBHOOK_MAX_WAIT = 6 * 3600.0
WEBHOOK_TIMEOUT = 15.0
WEBHOOK_BATCH = 200  # alerts sent per pass at most; the rest wait for the next
MATCHED = ("suggested", "linked", "confirmed")


def claim_link(settings: Settings, claim_id: int | None) -> str | None:
    """The dashboard's page of a claim."""
    if claim_id is None:
        return None
    return f"{settings.dashboard_url.rstrip('/')}/claim?claim={claim_id}"


# --- Raising --------------------------------------------------------------------------------


@dataclass
class _Candidate:
    claim: Claim
    score: float
    how: str
    matched_claim: Claim | None = None
    fact_check: FactCheck | None = None


def raise_alerts(engine: Engine, settings: Settings, *, now: datetime | None = None) -> list[int]:
    """Alerts for the claims of feed articles extracted since their entries were last
    looked at; returns the new alerts' ids. An article whose claims a worker stored but
    has not yet compared with earlier claims waits for the next pass."""
    now = now or utcnow()
    with Session(engine) as session:
        articles = session.exec(
            select(Article.id)
            .join(FeedEntry, FeedEntry.article_id == Article.id)
            .where(
                Article.extraction_state == "extracted",
                sa.or_(
                    FeedEntry.alerts_checked_at.is_(None),
                    FeedEntry.alerts_checked_at < Article.extracted_at,
                ),
                ~sa.exists().where(  # its claims compared with earlier ones (match_pending)
                    Claim.article_id == Article.id, Claim.matched_at.is_(None)
                ),
            )
            .distinct()
            .order_by(Article.id)
        ).all()
    raised: list[int] = []
    for article_id in articles:
        raised += _raise_for_article(engine, settings, article_id, now)
    return raised


def _raise_for_article(
    engine: Engine, settings: Settings, article_id: int, now: datetime
) -> list[int]:
    with Session(engine) as session:
        article = session.get(Article, article_id)
        claims = session.exec(
            select(Claim).where(Claim.article_id == article_id).order_by(Claim.id)
        ).all()
        found = _matched_claims(session, claims, article_id)
    for claim in claims:
        for check, similarity in prior_checks(engine, claim.text):
            found.setdefault(f"a{article_id}:f{check.id}", []).append(
                _Candidate(claim, similarity / 100, "prior fact-check", fact_check=check)
            )
    raised = []
    state = "waiting" if settings.alert_webhook else "off"
    with session_scope(engine) as session:
        known = set(
            session.exec(select(Alert.pair_key).where(Alert.pair_key.in_(list(found)))).all()
        )
        for pair_key, candidates in found.items():
            if pair_key in known:
                continue
            best = max(candidates, key=lambda c: c.score)
            alert = _alert(session, settings, pair_key, article, best, state, now)
            try:
                with session.begin_nested():
                    session.add(alert)
                    session.flush()
            except IntegrityError:  # another watch raised it a moment ago
                continue
            raised.append(alert.id)
        session.exec(  # the extraction looked at, so that a later one is looked at again
            sa.update(FeedEntry)
            .where(FeedEntry.article_id == article_id)
            .values(alerts_checked_at=article.extracted_at)
        )
    return raised


def _matched_claims(
    session: Session, claims: list[Claim], article_id: int
) -> dict[str, list[_Candidate]]:
    """Matches of these claims to claims with a verdict: the matched claim itself, or for a
    link, the claims with a verdict in the cluster it joined."""
    by_id = {c.id: c for c in claims}
    if not by_id:
        return {}
    rows = session.exec(
        select(ClaimMatch, Claim)
        .join(Claim, Claim.id == ClaimMatch.other_id)
        .where(ClaimMatch.claim_id.in_(list(by_id)), ClaimMatch.state.in_(MATCHED))
    ).all()
    found: dict[str, list[_Candidate]] = {}
    for match, other in rows:
        targets = [other] if other.status in REVIEWED else []
        if not targets and match.state != "suggested" and other.cluster_id is not None:
            targets = session.exec(
                select(Claim)
                .where(
                    Claim.cluster_id == other.cluster_id,
                    Claim.status.in_(REVIEWED),
                    Claim.article_id != article_id,
                )
                .order_by(Claim.reviewed_at.desc(), Claim.id.desc())
                .limit(1)
            ).all()
        for target in targets:
            how = match.state if target.id == other.id else f"{match.state}, same cluster"
            found.setdefault(f"a{article_id}:c{target.id}", []).append(
                _Candidate(by_id[match.claim_id], match.score, how, matched_claim=target)
            )
    return found


def _alert(
    session: Session,
    settings: Settings,
    pair_key: str,
    article: Article,
    best: _Candidate,
    state: str,
    now: datetime,
) -> Alert:
    secrets = settings.secrets()
    claim = best.claim
    if best.matched_claim is not None:
        other = best.matched_claim
        matched_text = other.text
        verdict = other.status + (f" (rated {other.rating})" if other.rating else "")
        source = session.exec(
            select(Article.title, Article.outlet).where(Article.id == other.article_id)
        ).first()
        matched_source = " — ".join(filter(None, source or ())) or None
        matched_url = claim_link(settings, other.id)
        kind = "claim"
    else:
        check = best.fact_check
        matched_text = check.claim_reviewed
        verdict = check.rating or "no rating"
        matched_source = check.organisation
        matched_url = web_url(check.url)
        kind = "fact_check"
    return Alert(
        pair_key=pair_key,
        kind=kind,
        created_at=now,
        claim_id=claim.id,
        article_id=article.id,
        matched_claim_id=best.matched_claim.id if best.matched_claim else None,
        fact_check_id=best.fact_check.id if best.fact_check is not None else None,
        score=round(min(1.0, best.score), 4),
        how=best.how,
        caution=conflict(claim.text, matched_text),
        verdict=scrub(verdict, secrets)[:500],
        claim_text=scrub(claim.text, secrets),
        article_title=article.title,
        article_url=article.url,
        outlet=article.outlet,
        matched_text=scrub(matched_text, secrets),
        matched_source=matched_source,
        matched_url=matched_url,
        webhook_state=state,
        webhook_next_at=now if state == "waiting" else None,
    )


# --- Reading and acknowledging ---------------------------------------------------------------


def recent(
    engine: Engine, *, unacknowledged: bool = False, limit: int = 100, offset: int = 0
) -> list[Alert]:
    """Alerts, newest first."""
    with Session(engine) as session:
        query = select(Alert)
        if unacknowledged:
            query = query.where(Alert.acknowledged_at.is_(None))
        query = query.order_by(Alert.created_at.desc(), Alert.id.desc()).offset(offset)
        return list(session.exec(query.limit(limit)).all())


def counts(engine: Engine) -> dict[str, Any]:
    """Alerts raised and still to acknowledge, and the webhook's deliveries by state, with
    the last error (for `tracker stats`)."""
    with Session(engine) as session:
        total = session.exec(select(func.count()).select_from(Alert)).one()
        open_ = session.exec(
            select(func.count()).select_from(Alert).where(Alert.acknowledged_at.is_(None))
        ).one()
        states = dict(
            session.exec(
                select(Alert.webhook_state, func.count()).group_by(Alert.webhook_state)
            ).all()
        )
        last_error = session.exec(
            select(Alert.webhook_error)
            .where(Alert.webhook_error.is_not(None))
            .order_by(Alert.id.desc())
            .limit(1)
        ).first()
    return {
        "alerts": total,
        "unacknowledged": open_,
        "webhook": {s: states.get(s, 0) for s in ("sent", "waiting", "failed", "off")},
        "webhook_last_error": last_error,
    }


def acknowledge(engine: Engine, alert_id: int, *, actor: str) -> Alert:
    """Mark an alert as seen and handled (reviewers). Acknowledging twice keeps the first."""
    from tracker.people import authorize

    with session_scope(engine) as session:
        who = authorize(session, actor)
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise LookupError(f"no alert with id {alert_id}")
        if alert.acknowledged_at is None:
            alert.acknowledged_by, alert.acknowledged_at = who, utcnow()
            session.add(alert)
        session.flush()
        session.expunge(alert)
        return alert


# --- The webhook ------------------------------------------------------------------------------


def _slack_escape(text: str | None) -> str:
    """Untrusted text inside Slack's `text`: &, < and > escaped (Slack's own rule), so a
    claim cannot say <!channel> or make a link of its own."""
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(alert: Alert, settings: Settings) -> dict[str, Any]:
    """The JSON body sent for an alert: Slack's `text`, then the structured fields."""
    link = claim_link(settings, alert.claim_id)
    matched = "a published fact-check" if alert.kind == "fact_check" else "a claim the desk"
    verdict = _slack_escape(alert.verdict)
    by = f" by {_slack_escape(alert.matched_source)}" if alert.kind == "fact_check" else ""
    where = _slack_escape(alert.outlet or urlsplit(alert.article_url or "").hostname or "")
    lines = [
        f"Repeated claim ({alert.score:.2f}, {alert.how}): "
        f"“{_slack_escape(_short(alert.claim_text, 300))}”",
        f"In: {_slack_escape(_short(alert.article_title or 'untitled', 200))}"
        + (f" ({where})" if where else "")
        + (f" {_slack_escape(alert.article_url)}" if alert.article_url else ""),
        f"Matches {matched}{' rated' if alert.kind == 'fact_check' else ' marked'} "
        f"{verdict}{by}: “{_slack_escape(_short(alert.matched_text, 300))}”",
    ]
    if alert.caution:
        lines.append(f"Careful: {_slack_escape(alert.caution)}")
    if link:
        lines.append(f"<{link}|Open the claim>")
    return {
        "text": "\n".join(lines),
        "alert_id": alert.id,
        "pair_key": alert.pair_key,
        "kind": alert.kind,
        "created_at": _iso(alert.created_at),
        "score": alert.score,
        "how": alert.how,
        "caution": alert.caution,
        "claim": {"id": alert.claim_id, "text": alert.claim_text, "url": link},
        "article": {
            "id": alert.article_id,
            "title": alert.article_title,
            "url": alert.article_url,
            "outlet": alert.outlet,
        },
        "matched": {
            "kind": alert.kind,
            "claim_id": alert.matched_claim_id,
            "fact_check_id": alert.fact_check_id,
            "text": alert.matched_text,
            "verdict": alert.verdict,
            "source": alert.matched_source,
            "url": alert.matched_url,
        },
    }


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


@dataclass
class Delivery:
    sent: int = 0
    failed: int = 0  # attempts that failed this pass (tried again later, or given up)
    errors: list[str] = field(default_factory=list)


def webhook_wait(attempts: int) -> float:
    return min(WEBHOOK_FIRST_WAIT * 2 ** max(0, attempts - 1), WEBHOOK_MAX_WAIT)


def deliver(
    engine: Engine, settings: Settings, *, now: datetime | None = None, transport: Any = None
) -> Delivery:
    """POST every alert whose turn has come to the webhook; record what happened."""
    delivery = Delivery()
    if not settings.alert_webhook or not settings.alert_webhook.get_secret_value():
        return delivery

    url = settings.alert_webhook.get_secret_value()
    now = now or utcnow()
    with Session(engine) as session:
        due = session.exec(
            select(Alert.id)
            .where(
                Alert.webhook_state == "waiting",
                sa.or_(Alert.webhook_next_at.is_(None), Alert.webhook_next_at <= now),
            )
            .order_by(Alert.id)
            .limit(WEBHOOK_BATCH)
        ).all()
    if not due:
        return delivery
    headers = {"User-Agent": settings.user_agent}
    hide = _Hidden(settings.secrets())  # httpx2 logs each request's full URL at INFO
    logging.getLogger("httpx2").addFilter(hide)
    try:
        _send(engine, settings, due, url, headers, now, delivery, transport)
    finally:
        logging.getLogger("httpx2").removeFilter(hide)
    return delivery


class _Hidden(logging.Filter):
    """Scrubs the webhook's URL from the HTTP client's own log records."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                a if isinstance(a, int | float) else scrub(str(a), self.secrets)
                for a in record.args
            )
        record.msg = scrub(str(record.msg), self.secrets)
        return True


def _send(
    engine: Engine,
    settings: Settings,
    due: list[int],
    url: str,
    headers: dict[str, str],
    now: datetime,
    delivery: Delivery,
    transport: Any,
) -> None:
    import httpx2

    with httpx2.Client(
        timeout=WEBHOOK_TIMEOUT, follow_redirects=False, transport=transport
    ) as client:
        for alert_id in due:
            alert = _take(engine, alert_id, now)
            if alert is None:  # another watch took it
                continue
            error = _post(client, url, payload(alert, settings), alert, headers)
            _record(engine, alert, error, now, settings)
            if error is None:
                delivery.sent += 1
                continue
            delivery.failed += 1
            delivery.errors.append(error)
            break  # the webhook is down: the others wait for the next pass, untried


def _take(engine: Engine, alert_id: int, now: datetime) -> Alert | None:
    """Hold the alert for this attempt (its next turn moved on), unless someone else did."""
    with session_scope(engine) as session:
        taken = session.exec(
            sa.update(Alert)
            .where(
                Alert.id == alert_id,
                Alert.webhook_state == "waiting",
                sa.or_(Alert.webhook_next_at.is_(None), Alert.webhook_next_at <= now),
            )
            .values(webhook_next_at=now + timedelta(seconds=WEBHOOK_TIMEOUT * 4))
            .execution_options(synchronize_session=False)
        ).rowcount
        if not taken:
            return None
        alert = session.get(Alert, alert_id)
        session.expunge(alert)
        return alert


def _post(client: Any, url: str, body: dict, alert: Alert, headers: dict) -> str | None:
    """Send one alert; None when the webhook took it, else why not (never the URL)."""
    import httpx2

    try:
        response = client.post(
            url, json=body, headers={**headers, "Idempotency-Key": f"alert-{alert.pair_key}"}
        )
    except httpx2.TimeoutException:
        return f"no answer within {WEBHOOK_TIMEOUT:g} s"
    except httpx2.ConnectError:
        return "could not connect"
    except httpx2.HTTPError as exc:
        return f"the request failed ({type(exc).__name__})"
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


def _record(
    engine: Engine, alert: Alert, error: str | None, now: datetime, settings: Settings
) -> None:
    attempts = alert.webhook_attempts + 1
    if error is None:
        values = {"webhook_state": "sent", "webhook_sent_at": now, "webhook_error": None}
    else:
        given_up = attempts >= WEBHOOK_ATTEMPTS
        values = {
            "webhook_state": "failed" if given_up else "waiting",
            "webhook_error": scrub(error, settings.secrets()),
            "webhook_next_at": None
            if given_up
            else now + timedelta(seconds=webhook_wait(attempts)),
        }
    with session_scope(engine) as session:
        session.exec(
            sa.update(Alert)
            .where(Alert.id == alert.id)
            .values(webhook_attempts=attempts, **values)
            .execution_options(synchronize_session=False)
        )
