"""People on the desk: who someone is (one person however they spell their name), what
they may do (their role), and who did what last (for the People page).

Names compare by Unicode case folding, computed here in Python and stored as
`reviewer.name_key`, because SQL's lower() differs by database (SQLite folds ASCII only,
so "ÉMILE" and "émile" would be two people with two roles).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from tracker.db import session_scope
from tracker.models import ROLES, Reviewer, ReviewEvent

RANK = {role: rank for rank, role in enumerate(ROLES)}  # viewer < reviewer < admin
MAX_NAME = 200
# Characters that show nothing, or change how the rest shows, so that "Vera" and "Vera"
# plus an invisible joiner would look alike and be two people: controls and formats (zero
# widths, soft hyphens, bidirectional overrides, tags), and the default-ignorable others.
_IGNORABLE = {"\u034f", "\u115f", "\u1160", "\u17b4", "\u17b5", "\u3164", "\uffa0"}


def _shows(ch: str) -> bool:
    if ch in _IGNORABLE or "\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef":
        return False
    return unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")


ROLES_HELP = (
    "Roles: viewers read, reviewers also give verdicts, assign and import, admins also "
    "delete claims, re-extract articles and give roles. Admins give roles on this page; "
    "names (with a login: e-mail addresses) listed in TRACKER_ADMINS are admins, everyone "
    "else starts with TRACKER_DEFAULT_ROLE."
)


class NotAllowed(PermissionError):
    """The person's role does not allow this action."""


def clean_name(name: str) -> str:
    """A name as typed, fit to store and show: no invisible or direction-changing
    characters, single spaces, NFC."""
    name = "".join(ch for ch in name or "" if _shows(ch))
    return unicodedata.normalize("NFC", " ".join(name.split()))[:MAX_NAME]


def person_key(name: str) -> str:
    """What makes two spellings one person: NFKC case folding of the cleaned name."""
    folded = unicodedata.normalize("NFKC", clean_name(name)).casefold()
    return unicodedata.normalize("NFKC", folded)


def _defaults(key: str) -> str:
    from tracker.config import get_settings

    settings = get_settings()
    admins = {person_key(name) for name in settings.admin_names}
    return "admin" if key in admins else settings.default_role


def _find(session: Session, name: str) -> Reviewer | None:
    return session.exec(select(Reviewer).where(Reviewer.name_key == person_key(name))).first()


def role_of(engine: Engine, name: str) -> str:
    """A person's role: as an admin set it, else admin when listed in TRACKER_ADMINS,
    else TRACKER_DEFAULT_ROLE."""
    with Session(engine) as session:
        row = _find(session, name)
    return row.role if row and row.role else _defaults(person_key(name))


def capped(role: str, default: str) -> str:
    """An unverified identity's role: at most the default role."""
    return role if RANK[role] <= RANK[default] else default


def canonical_name(engine: Engine, name: str) -> str:
    """How the desk already writes this person's name (their first spelling), or the
    cleaned name for someone new. Read only."""
    cleaned = clean_name(name)
    with Session(engine) as session:
        row = _find(session, cleaned)
    return row.name if row else cleaned


def enrol(session: Session, name: str) -> Reviewer:
    """The person named, made a row of the desk the first time (no role of their own)."""
    cleaned = clean_name(name)
    if not cleaned:
        raise ValueError("every change records who made it: give a name")
    row = _find(session, cleaned)
    if row is not None:
        return row
    try:
        with session.begin_nested():  # someone else may enrol the same person right now
            row = Reviewer(name=cleaned, name_key=person_key(cleaned))
            session.add(row)
    except IntegrityError:
        row = _find(session, cleaned)
        if row is None:  # a different person who first wrote this exact name otherwise
            raise
    return row


def authorize(session: Session, name: str, needs: str = "reviewer") -> str:
    """The canonical name of the person acting, checked against the role the action needs.
    Every library action calls this, so a viewer can change nothing whatever a page shows."""
    row = enrol(session, name)
    role = row.role or _defaults(row.name_key)
    if RANK[role] < RANK[needs]:
        raise NotAllowed(f"{row.name} may not do this: it needs the {needs} role")
    return row.name


def require(engine: Engine, name: str, needs: str = "reviewer") -> str:
    """Check that `name` may act with the role `needs` (NotAllowed otherwise); for
    actions outside this module's transactions, such as importing from the dashboard."""
    with session_scope(engine) as session:
        return authorize(session, name, needs)


def set_role(engine: Engine, name: str, role: str, *, actor: str) -> None:
    """Give `name` a role (admins only)."""
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}; use {', '.join(ROLES)}")
    with session_scope(engine) as session:
        authorize(session, actor, needs="admin")
        row = enrol(session, name)
        row.role = role
        session.add(row)


@dataclass
class Person:
    name: str
    role: str
    role_given: bool  # False: the role comes from TRACKER_ADMINS / TRACKER_DEFAULT_ROLE
    last_active: datetime | None
    actions: int


def people(engine: Engine) -> list[Person]:
    """Everyone on the desk, most recently active first: their role and last activity."""
    with Session(engine) as session:
        activity = (
            select(
                ReviewEvent.actor,
                func.max(ReviewEvent.at).label("last"),
                func.count().label("actions"),
            )
            .group_by(ReviewEvent.actor)
            .subquery()
        )
        rows = session.exec(
            select(Reviewer, activity.c.last, activity.c.actions).outerjoin(
                activity, activity.c.actor == Reviewer.name
            )
        ).all()
    found = [
        Person(
            name=row.name,
            role=row.role or _defaults(row.name_key),
            role_given=row.role is not None,
            last_active=last,
            actions=actions or 0,
        )
        for row, last, actions in rows
    ]
    return sorted(
        found, key=lambda p: p.last_active.timestamp() if p.last_active else 0.0, reverse=True
    )
