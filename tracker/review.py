"""Review actions: what a fact-checker does to claims, each change recorded in history.

Every action names the claims with the version the reviewer saw (`seen`: claim id ->
version). If anyone changed one of them in between, nothing is saved and `StaleEdit`
carries the newer state, instead of silently overwriting their work. Actions on several
claims (triage from the queue, a verdict for a cluster) run in one transaction and write
one history entry per claim they change. The dashboard and the CLI both call these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tracker.db import session_scope
from tracker.models import (
    CLAIM_STATUSES,
    Article,
    Claim,
    ReviewEvent,
    Source,
    SourceCreate,
    utcnow,
)
from tracker.people import NotAllowed, authorize, clean_name, enrol

__all__ = [
    "EVENT_WORDS",
    "NotAllowed",
    "StaleEdit",
    "add_source",
    "assign",
    "delete_claim",
    "dismiss",
    "edit_claim",
    "get_claim",
    "history",
    "remove_source",
    "restore",
    "set_status",
    "set_statuses",
    "sources",
    "status_words",
]

# How statuses and history events read to people (the database keeps the short codes).
EVENT_WORDS = {
    "status": "status changed",
    "edit": "edited",
    "source_added": "source added",
    "source_removed": "source removed",
    "assigned": "assigned",
    "unassigned": "unassigned",
    "dismissed": "dismissed as not check-worthy",
    "restored": "restored to the queue",
}
FINAL_STATUSES = ("checked", "disputed", "inconclusive")


def status_words(status: str) -> str:
    return status.replace("_", " ")


class StaleEdit(Exception):
    """Claims changed since the reviewer loaded them; `changed` holds their newer state
    (`current`: the first, for actions on one claim)."""

    def __init__(self, changed: list[Claim], missing: list[int] | None = None) -> None:
        self.changed = changed
        self.missing = missing or []
        self.current = changed[0] if changed else None
        parts = [
            f"claim {c.id} (now version {c.version}, {status_words(c.status)}"
            + (", dismissed" if c.dismissed else "")
            + ")"
            for c in changed
        ]
        parts += [f"claim {i} (deleted)" for i in self.missing]
        super().__init__(
            f"changed by someone else since you loaded it: {'; '.join(parts)}. "
            "Nothing was saved: look at the newer state and apply your change again"
        )


def get_claim(engine: Engine, claim_id: int) -> tuple[Claim, Article] | None:
    """A claim with its article, or None."""
    with Session(engine) as session:
        row = session.exec(
            select(Claim, Article)
            .join(Article, Article.id == Claim.article_id)
            .where(Claim.id == claim_id)
        ).first()
    return (row[0], row[1]) if row else None


# --- One change, applied to many claims at once --------------------------------------


def _lock(session: Session, ids: list[int]) -> list[Claim]:
    """The claims, read so that no one can change them before this transaction ends."""
    query = select(Claim).where(Claim.id.in_(ids)).order_by(Claim.id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    else:  # SQLite: take the write lock now, so the versions read below stay true
        session.exec(sa.text("UPDATE claim SET id = id WHERE 0"))
    return list(session.exec(query.execution_options(populate_existing=True)).all())


# A change to one claim: given the claim and the canonical name of who acts, the new
# column values and the history entry, or None when the claim is already so.
Change = Callable[[Claim, str], tuple[dict[str, Any], ReviewEvent] | None]
KEEP = object()  # review(assignee=KEEP): leave the assignment as it is


def _apply(
    engine: Engine,
    seen: dict[int, int],
    actor: str,
    changes: list[Change],
    *,
    assignee: object = KEEP,
    source: SourceCreate | None = None,
) -> list[Claim]:
    """Apply every change to every claim in `seen`, all or nothing: one transaction, one
    history entry per claim and kind of change, a new version only for claims that
    changed. Refused (StaleEdit) when any claim is not at the version in `seen`."""
    if not seen:
        raise ValueError("choose at least one claim")
    with session_scope(engine) as session:
        name = authorize(session, actor)
        if assignee is not KEEP:  # the person, enrolled now: they appear in the filters
            person = clean_name(assignee or "")  # type: ignore[arg-type]
            if assignee and not person:
                raise ValueError("the assignee's name has no visible character")
            changes = [*changes, _assignment(enrol(session, person).name if person else None)]
        claims = _lock(session, sorted(seen))
        found = {c.id for c in claims}
        changed = [c for c in claims if c.version != seen[c.id]]
        missing = [i for i in sorted(seen) if i not in found]
        if changed or missing:
            for claim in changed:
                session.expunge(claim)  # readable after the rollback
            raise StaleEdit(changed, missing)
        now = utcnow()
        for claim in claims:
            values: dict[str, Any] = {}
            for change in changes:
                result = change(claim, name)
                if result is None:
                    continue
                values.update(result[0])
                event = result[1]
                event.claim_id, event.actor, event.at = claim.id, name, now
                session.add(event)
            if values:
                values.update(version=claim.version + 1, updated_at=now)
                session.exec(sa.update(Claim).where(Claim.id == claim.id).values(**values))
            if source is not None:
                _add_source(session, claim, source, name, now)
        session.flush()
        session.expire_all()
        updated = list(session.exec(select(Claim).where(Claim.id.in_(sorted(seen)))).all())
        for claim in updated:
            session.expunge(claim)
        return updated


def review(
    engine: Engine,
    seen: dict[int, int],
    *,
    actor: str,
    status: str | None = None,
    note: str | None = None,
    assignee: object = KEEP,
    dismissed: bool | None = None,
    source: SourceCreate | None = None,
    why: str | None = None,
) -> list[Claim]:
    """Any of a status, an assignment (a name, or None for nobody), dismissal or its
    undoing, and a source, for all the claims in one transaction (`tracker review`, and
    each of the dashboard's actions through the functions below)."""
    changes: list[Change] = []
    if status is not None:
        changes.append(_status(status, note, why))
    if dismissed is not None:
        changes.append(_dismissal(dismissed, note))
    if not changes and assignee is KEEP and source is None:
        raise ValueError("nothing to do: give a status, an assignee, a dismissal or a source")
    return _apply(engine, seen, actor, changes, assignee=assignee, source=source)


def _status(status: str, note: str | None, why: str | None) -> Change:
    if status not in CLAIM_STATUSES:
        raise ValueError(f"unknown status {status!r}; use one of {', '.join(CLAIM_STATUSES)}")
    note = (note or "").strip() or None

    def change(claim: Claim, name: str):
        if claim.status == status and not note:
            return None
        event = ReviewEvent(
            action="status", field="status", from_value=claim.status, to_value=status,
            note=note or why,
        )  # fmt: skip
        values = {"status": status, "reviewed_by": name, "reviewed_at": utcnow()}
        return {**values, "review_note": note}, event

    return change


def _assignment(person: str | None) -> Change:
    def change(claim: Claim, _name: str):
        if claim.assignee == person:
            return None
        event = ReviewEvent(
            action="assigned" if person else "unassigned", field="assignee",
            from_value=claim.assignee, to_value=person,
        )  # fmt: skip
        return {"assignee": person}, event

    return change


def _dismissal(dismissed: bool, note: str | None) -> Change:
    def change(claim: Claim, _name: str):
        if claim.dismissed == dismissed:
            return None
        event = ReviewEvent(
            action="dismissed" if dismissed else "restored", field="dismissed",
            from_value=str(claim.dismissed).lower(), to_value=str(dismissed).lower(),
            note=(note or "").strip() or None,
        )  # fmt: skip
        return {"dismissed": dismissed}, event

    return change


def set_statuses(
    engine: Engine,
    seen: dict[int, int],
    status: str,
    *,
    actor: str,
    note: str | None = None,
    why: str | None = None,
) -> list[Claim]:
    """Give the claims a status (a verdict when checked, disputed or inconclusive); the
    claim keeps who gave it, when, and the note, for the queue's filters and exports. A
    claim already at `status` changes only when a note is given; `why` is the history note
    of the claims that change when the reviewer wrote none."""
    return review(engine, seen, actor=actor, status=status, note=note, why=why)


def set_status(
    engine: Engine,
    claim_id: int,
    status: str,
    *,
    actor: str,
    expected_version: int,
    note: str | None = None,
) -> Claim:
    """`set_statuses` for one claim."""
    (claim,) = set_statuses(engine, {claim_id: expected_version}, status, actor=actor, note=note)
    return claim


def assign(
    engine: Engine,
    seen: dict[int, int],
    assignee: str | None,
    *,
    actor: str,
    note: str | None = None,
) -> list[Claim]:
    """Give the claims to a person to check (None: to nobody)."""
    return review(engine, seen, actor=actor, assignee=assignee)


def dismiss(
    engine: Engine, seen: dict[int, int], *, actor: str, note: str | None = None
) -> list[Claim]:
    """Mark the claims not check-worthy: kept and counted, out of the default queue."""
    return review(engine, seen, actor=actor, dismissed=True, note=note)


def restore(
    engine: Engine, seen: dict[int, int], *, actor: str, note: str | None = None
) -> list[Claim]:
    """Bring dismissed claims back to the queue."""
    return review(engine, seen, actor=actor, dismissed=False, note=note)


def cluster_seen(engine: Engine, claim_id: int, seen: dict[int, int]) -> dict[int, int]:
    """`seen` for every claim in `claim_id`'s cluster now: a member the reviewer never saw
    (it joined meanwhile) gets version -1, so an action on the cluster is refused."""
    from tracker.matching import cluster_of

    return {member.id: seen.get(member.id, -1) for member in cluster_of(engine, claim_id)}


# --- Edits, evidence, deletion ---------------------------------------------------------


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
    with session_scope(engine) as session:
        name = authorize(session, actor)
        (claim,) = _lock(session, [claim_id]) or [None]
        if claim is None:
            raise LookupError(f"no claim with id {claim_id}")
        if claim.version != expected_version:
            session.expunge(claim)
            raise StaleEdit([claim])
        now = utcnow()
        for field, value in changes.items():
            if getattr(claim, field) != value:
                session.add(
                    ReviewEvent(
                        claim_id=claim_id, actor=name, at=now, action="edit", field=field,
                        from_value=getattr(claim, field), to_value=value, note=note or None,
                    )
                )  # fmt: skip
        session.exec(
            sa.update(Claim)
            .where(Claim.id == claim_id)
            .values(**changes, version=claim.version + 1, updated_at=now)
        )
        session.flush()
        session.expire_all()
        claim = session.get(Claim, claim_id)
        session.expunge(claim)
        return claim


def add_source(engine: Engine, claim_id: int, source: SourceCreate, *, actor: str) -> Source:
    """Evidence for a claim. It does not change the claim's version: an open verdict stays
    valid (a source conflicts with no one's edit)."""
    with session_scope(engine) as session:
        name = authorize(session, actor)
        claim = session.get(Claim, claim_id)
        if claim is None:
            raise LookupError(f"no claim with id {claim_id}")
        row = _add_source(session, claim, source, name, utcnow())
        session.flush()
        return row


def _add_source(session: Session, claim: Claim, source: SourceCreate, name: str, now) -> Source:
    _touch(session, claim)
    row = Source(
        claim_id=claim.id, url=str(source.url), title=source.title, stance=source.stance,
        note=source.note, added_by=name, added_at=now,
    )  # fmt: skip
    session.add(row)
    session.add(
        ReviewEvent(
            claim_id=claim.id, actor=name, at=now, action="source_added", to_value=row.url,
            note=source.note,
        )
    )  # fmt: skip
    return row


def remove_source(engine: Engine, source_id: int, *, actor: str) -> None:
    with session_scope(engine) as session:
        name = authorize(session, actor)
        source = session.get(Source, source_id)
        if source is None:
            raise LookupError(f"no source with id {source_id}")
        session.add(
            ReviewEvent(
                claim_id=source.claim_id,
                actor=name,
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


def delete_claim(engine: Engine, claim_id: int, *, actor: str) -> None:
    """Remove a claim with its sources and history (admins only)."""
    with session_scope(engine) as session:
        authorize(session, actor, needs="admin")
        claim = session.get(Claim, claim_id)
        if claim is None:
            raise LookupError(f"no claim with id {claim_id}")
        session.delete(claim)


def sources(engine: Engine, claim_id: int) -> list[Source]:
    with Session(engine) as session:
        query = select(Source).where(Source.claim_id == claim_id).order_by(Source.id)
        return list(session.exec(query).all())


def history(engine: Engine, claim_id: int) -> list[ReviewEvent]:
    with Session(engine) as session:
        query = select(ReviewEvent).where(ReviewEvent.claim_id == claim_id)
        return list(session.exec(query.order_by(ReviewEvent.at, ReviewEvent.id)).all())
