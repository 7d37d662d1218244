"""Review actions: what a fact-checker does to a claim, each recorded in its history.

Edits to the claim itself carry the version the reviewer saw; if someone saved the claim
in between, the edit is refused with `StaleEdit` (holding the newer claim) instead of
silently overwriting their work.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tracker.db import session_scope
from tracker.models import (
    CLAIM_STATUSES,
    Claim,
    Reviewer,
    ReviewEvent,
    Source,
    SourceCreate,
    utcnow,
)


class StaleEdit(Exception):
    """The claim changed since the reviewer loaded it; `current` is the newer state."""

    def __init__(self, current: Claim) -> None:
        super().__init__(
            f"claim {current.id} was changed by someone else (now version {current.version}, "
            f"status {current.status!r}); reload it and apply your change again"
        )
        self.current = current


class NotAllowed(PermissionError):
    """The person's role does not allow this action."""


_RANK = {"viewer": 0, "reviewer": 1, "admin": 2}


def role_of(engine: Engine, name: str) -> str:
    """A person's role: as set by an admin, else admin when listed in TRACKER_ADMINS,
    else TRACKER_DEFAULT_ROLE (reviewer unless configured otherwise)."""
    from tracker.config import get_settings

    key = name.strip().casefold()
    with Session(engine) as session:
        stored = session.exec(
            select(Reviewer.role).where(sa.func.lower(Reviewer.name) == key)
        ).first()
    if stored:
        return stored
    settings = get_settings()
    return "admin" if key in settings.admin_names else settings.default_role


def capped(role: str, default: str) -> str:
    """An unverified identity's role: at most the default role."""
    return role if _RANK[role] <= _RANK[default] else default


def _actor(actor: str, engine: Engine | None = None, needs: str = "reviewer") -> str:
    actor = (actor or "").strip()
    if not actor:
        raise ValueError("every change records who made it: give a reviewer name")
    if engine is not None and _RANK[role_of(engine, actor)] < _RANK[needs]:
        raise NotAllowed(f"{actor} may not do this: it needs the {needs} role")
    return actor


def set_role(engine: Engine, name: str, role: str, *, actor: str) -> None:
    """Give `name` a role (admins only)."""
    actor = _actor(actor, engine, needs="admin")
    if role not in _RANK:
        raise ValueError(f"unknown role {role!r}; use viewer, reviewer or admin")
    with session_scope(engine) as session:
        row = session.exec(
            select(Reviewer).where(sa.func.lower(Reviewer.name) == name.strip().casefold())
        ).first()
        row = row or Reviewer(name=name.strip())
        row.role = role
        session.add(row)


def delete_claim(engine: Engine, claim_id: int, *, actor: str) -> None:
    """Remove a claim with its sources and history (admins only)."""
    _actor(actor, engine, needs="admin")
    with session_scope(engine) as session:
        claim = session.get(Claim, claim_id)
        if claim is None:
            raise LookupError(f"no claim with id {claim_id}")
        session.delete(claim)


def _update_claim(
    session: Session, claim_id: int, expected_version: int, values: dict[str, Any]
) -> Claim:
    """Apply `values` only if the claim is still at `expected_version`."""
    result = session.exec(
        sa.update(Claim)
        .where(Claim.id == claim_id, Claim.version == expected_version)
        .values(**values, version=Claim.version + 1, updated_at=utcnow())
    )
    if result.rowcount != 1:
        current = session.get(Claim, claim_id, populate_existing=True)
        if current is None:
            raise LookupError(f"no claim with id {claim_id}")
        session.expunge(current)  # stays readable after the rollback
        raise StaleEdit(current)
    session.expire_all()
    return session.get(Claim, claim_id)


def set_status(
    engine: Engine,
    claim_id: int,
    status: str,
    *,
    actor: str,
    expected_version: int,
    note: str | None = None,
) -> Claim:
    with session_scope(engine) as session:
        return apply_status(
            session, engine, claim_id, status, actor=actor,
            expected_version=expected_version, note=note,
        )  # fmt: skip


def apply_status(
    session: Session,
    engine: Engine,
    claim_id: int,
    status: str,
    *,
    actor: str,
    expected_version: int,
    note: str | None = None,
) -> Claim:
    """`set_status` inside the caller's transaction (for verdicts on several claims)."""
    if status not in CLAIM_STATUSES:
        raise ValueError(f"unknown status {status!r}; use one of {', '.join(CLAIM_STATUSES)}")
    actor = _actor(actor, engine)
    before = session.get(Claim, claim_id, populate_existing=True)
    old = before.status if before else None
    claim = _update_claim(session, claim_id, expected_version, {"status": status})
    session.add(
        ReviewEvent(
            claim_id=claim_id,
            actor=actor,
            action="status",
            field="status",
            from_value=old,
            to_value=status,
            note=note or None,
        )
    )
    return claim


def edit_claim(
    engine: Engine,
    claim_id: int,
    *,
    actor: str,
    expected_version: int,
    note: str | None = None,
    **changes: str | None,
) -> Claim:
    """Correct the claim's text or claimant, or give the reviewer's rating text (published
    in ClaimReview); every changed field is one history event."""
    allowed = {"text", "claimant", "rating"}
    if unknown := set(changes) - allowed:
        raise ValueError(
            f"cannot edit {', '.join(sorted(unknown))}; editable: text, claimant, rating"
        )
    if "text" in changes and not (changes["text"] or "").strip():
        raise ValueError("the claim text cannot be empty")
    actor = _actor(actor, engine)
    with session_scope(engine) as session:
        before = session.get(Claim, claim_id)
        if before is None:
            raise LookupError(f"no claim with id {claim_id}")
        old = {field: getattr(before, field) for field in changes}
        claim = _update_claim(session, claim_id, expected_version, changes)
        for field, value in changes.items():
            if old[field] != value:
                session.add(
                    ReviewEvent(
                        claim_id=claim_id,
                        actor=actor,
                        action="edit",
                        field=field,
                        from_value=old[field],
                        to_value=value,
                        note=note or None,
                    )
                )
        return claim


def add_source(engine: Engine, claim_id: int, source: SourceCreate, *, actor: str) -> Source:
    actor = _actor(actor, engine)
    with session_scope(engine) as session:
        claim = session.get(Claim, claim_id)
        if claim is None:
            raise LookupError(f"no claim with id {claim_id}")
        _touch(session, claim)
        row = Source(
            claim_id=claim_id,
            url=str(source.url),
            title=source.title,
            stance=source.stance,
            note=source.note,
            added_by=actor,
        )
        session.add(row)
        session.add(
            ReviewEvent(
                claim_id=claim_id,
                actor=actor,
                action="source_added",
                to_value=row.url,
                note=source.note,
            )
        )
        session.flush()
        return row


def remove_source(engine: Engine, source_id: int, *, actor: str) -> None:
    actor = _actor(actor, engine)
    with session_scope(engine) as session:
        source = session.get(Source, source_id)
        if source is None:
            raise LookupError(f"no source with id {source_id}")
        session.add(
            ReviewEvent(
                claim_id=source.claim_id,
                actor=actor,
                action="source_removed",
                from_value=source.url,
            )
        )
        session.delete(source)
        claim = session.get(Claim, source.claim_id)
        if claim is not None:
            _touch(session, claim)


def _touch(session: Session, claim: Claim) -> None:
    """New or removed evidence changes the claim for `export --since` (an incremental
    sync must pick it up), though not its version: a reviewer's open verdict stays valid."""
    claim.updated_at = utcnow()
    session.add(claim)


def sources(engine: Engine, claim_id: int) -> list[Source]:
    with Session(engine) as session:
        query = select(Source).where(Source.claim_id == claim_id).order_by(Source.id)
        return list(session.exec(query).all())


def history(engine: Engine, claim_id: int) -> list[ReviewEvent]:
    with Session(engine) as session:
        query = select(ReviewEvent).where(ReviewEvent.claim_id == claim_id)
        return list(session.exec(query.order_by(ReviewEvent.at, ReviewEvent.id)).all())
