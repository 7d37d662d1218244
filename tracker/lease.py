"""Who is extracting an article: a lease on its row, taken before the model is asked.

Two imports of the same files (two colleagues, or the CLI and the dashboard) must not pay
for the same article twice. Before the model call, a run takes the article's lease (its
`lease_owner` and `lease_expires_at` columns) with one conditional UPDATE; another run finds
it held and moves on. A lease lasts `TRACKER_WORKER_LEASE` seconds and is renewed while the
extraction runs, so a run that died frees its articles when the lease runs out, or at once
when the owner was a process on this machine that no longer exists (a killed import is
resumed by running it again). The columns are what a worker queue (`SELECT ... FOR UPDATE
SKIP LOCKED` over pending articles whose lease is free) builds on.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from tracker.models import Article, utcnow

# Plain UPDATEs: the ORM would evaluate their WHERE clause on loaded articles in Python too,
# comparing SQLite's naive times with aware ones.
_PLAIN = {"synchronize_session": False}


def new_owner() -> str:
    """A name for this run: host, process id and a random part (`host:pid:token`)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _free(owner: str, now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        Article.lease_owner.is_(None),
        Article.lease_owner == owner,
        Article.lease_expires_at.is_(None),
        Article.lease_expires_at < now,
    )


def acquire(session: Session | Connection, article_id: int, owner: str, seconds: float) -> bool:
    """Take the article's lease for `owner`: True unless another live run holds it."""
    now = utcnow()
    until = now + timedelta(seconds=seconds)
    since = sa.case((Article.lease_owner == owner, Article.leased_at), else_=now)
    taken = session.execute(
        sa.update(Article)
        .where(Article.id == article_id, _free(owner, now))
        .values(lease_owner=owner, lease_expires_at=until, leased_at=since),
        execution_options=_PLAIN,
    ).rowcount
    if taken:
        return True
    holder = session.execute(
        sa.select(Article.lease_owner).where(Article.id == article_id)
    ).scalar_one_or_none()
    if holder is None or not _dead(holder):
        return False
    return bool(
        session.execute(
            sa.update(Article)
            .where(Article.id == article_id, Article.lease_owner == holder)
            .values(lease_owner=owner, lease_expires_at=until, leased_at=now),
            execution_options=_PLAIN,
        ).rowcount
    )


def _dead(holder: str) -> bool:
    """A lease held by a process of this machine that has ended (killed, crashed)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # this process: another of its threads (the dashboard) may hold it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


def release(session: Session | Connection, article_id: int, owner: str) -> None:
    """Give the lease back, if `owner` still holds it."""
    session.execute(
        sa.update(Article)
        .where(Article.id == article_id, Article.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None, leased_at=None),
        execution_options=_PLAIN,
    )


def renew(engine: Engine, article_ids: Iterable[int], owner: str, seconds: float) -> None:
    """Extend the leases `owner` holds on these articles (a long extraction keeps them)."""
    ids = list(article_ids)
    if not ids:
        return
    with engine.begin() as conn:
        conn.execute(
            sa.update(Article)
            .where(Article.id.in_(ids), Article.lease_owner == owner)
            .values(lease_expires_at=utcnow() + timedelta(seconds=seconds))
        )


def release_all(engine: Engine, owner: str) -> None:
    """Give back every lease `owner` still holds (the end of a run, or Ctrl-C)."""
    with engine.begin() as conn:
        conn.execute(
            sa.update(Article)
            .where(Article.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None, leased_at=None)
        )


def renew_all(engine: Engine, owner: str, seconds: float) -> None:
    """Extend every lease `owner` holds: the heartbeat of a run or a worker."""
    with engine.begin() as conn:
        conn.execute(
            sa.update(Article)
            .where(Article.lease_owner == owner)
            .values(lease_expires_at=utcnow() + timedelta(seconds=seconds))
        )
