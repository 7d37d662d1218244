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
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from tracker.models import Article, utcnow

# The lease owner of a Batch API batch's articles: `batch-api:<batch id>` (tracker/apibatch.py).
BATCH_PREFIX = "batch-api:"

# Plain UPDATEs: the ORM would evaluate their WHERE clause on loaded articles in Python too,
# comparing SQLite's naive times with aware ones.
_PLAIN = {"synchronize_session": False}


def new_owner() -> str:
    """A name for this run: `host:pid:identity:token`. The identity (this boot of the
    kernel, the PID namespace and the process's start time, on Linux) tells a process of
    this very machine and container from one of another container with the same host name
    and perhaps the same pid (`docker --network host`), and from an earlier process that
    had the pid."""
    identity = _identity("self") or "-"
    return f"{socket.gethostname()}:{os.getpid()}:{identity}:{uuid.uuid4().hex[:12]}"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except (OSError, ValueError):
        return None


def _start_time(pid: str) -> str | None:
    """When process `pid` (or "self") started, in clock ticks since boot; None if there
    is no such process here."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return fields[19] if len(fields) > 19 else None


def _identity(pid: str) -> str | None:
    """boot id, PID namespace and start time of a process (`self`, or a pid) on Linux."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None
    start = _start_time(pid)
    if boot is None or start is None:
        return None
    return f"{boot.strip().replace('-', '')[:16]}.{namespace}.{start}"


def _free(
    owner: str | sa.BindParameter[str], now: datetime | sa.BindParameter[datetime]
) -> sa.ColumnElement[bool]:
    table = Article.__table__
    return sa.or_(
        table.c.lease_owner.is_(None),
        table.c.lease_owner == owner,
        table.c.lease_expires_at.is_(None),
        table.c.lease_expires_at < now,
    )


_TABLE = Article.__table__
_MOMENT = _TABLE.c.lease_expires_at.type
# Built once (this runs for every article): the lease taken if free, with bound values.
_TAKE = (
    sa.update(_TABLE)
    .where(
        _TABLE.c.id == sa.bindparam("article_id"),
        _free(sa.bindparam("owner"), sa.bindparam("now", type_=_MOMENT)),
    )
    .values(
        lease_owner=sa.bindparam("owner"),
        lease_expires_at=sa.bindparam("until", type_=_MOMENT),
        leased_at=sa.case(
            (_TABLE.c.lease_owner == sa.bindparam("owner"), _TABLE.c.leased_at),
            else_=sa.bindparam("now", type_=_MOMENT),
        ),
    )
)


def acquire(session: Session | Connection, article_id: int, owner: str, seconds: float) -> bool:
    """Take the article's lease for `owner`: True unless another live run holds it."""
    now = utcnow()
    until = now + timedelta(seconds=seconds)
    taken = session.execute(
        _TAKE, {"article_id": article_id, "owner": owner, "now": now, "until": until}
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
    """A lease held by a process of this machine (and this container) that has ended
    (killed, crashed), or whose pid another process has since taken. A holder named
    without an identity (an older version), or from another boot, PID namespace or host,
    is never taken for dead: its lease runs out instead."""
    parts = holder.split(":")
    if len(parts) != 4 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid, theirs = parts[1], parts[2]
    if int(pid) == os.getpid():
        return False  # this process: another of its threads (the dashboard) may hold it
    mine = _identity("self")
    if mine is None or theirs == "-":  # no /proc (not Linux): the pid alone, as before
        return mine is None and theirs == "-" and not _alive(int(pid))
    boot, namespace, started = theirs.split(".", 2) if theirs.count(".") == 2 else ("", "", "")
    my_boot, my_namespace, _ = mine.split(".", 2)
    if (boot, namespace) != (my_boot, my_namespace):
        return False  # another container, or another boot: its pids are not ours to judge
    return _start_time(pid) != started  # gone, or the pid is another process's now


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, someone else's
    return True


def release(session: Session | Connection, article_id: int, owner: str) -> None:
    """Give the lease back, if `owner` still holds it."""
    session.execute(
        sa.update(Article)
        .where(Article.id == article_id, Article.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None, leased_at=None),
        execution_options=_PLAIN,
    )


def given_back(owner: str | sa.BindParameter[str]) -> dict[str, sa.ColumnElement[Any]]:
    """The lease columns' values for an UPDATE of the article's row that also gives the
    lease back if `owner` still holds it: `release` without a write of its own."""
    table = Article.__table__
    held = table.c.lease_owner == owner
    return {
        name: sa.case((held, sa.null()), else_=table.c[name])
        for name in ("lease_owner", "lease_expires_at", "leased_at")
    }


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


def release_all(bind: Engine | Connection, owner: str) -> None:
    """Give back every lease `owner` still holds (the end of a run, or Ctrl-C); on a
    connection, in its transaction."""
    statement = (
        sa.update(Article)
        .where(Article.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None, leased_at=None)
    )
    if isinstance(bind, Connection):
        bind.execute(statement)
        return
    with bind.begin() as conn:
        conn.execute(statement)


def renew_all(engine: Engine, owner: str, seconds: float) -> None:
    """Extend every lease `owner` holds: the heartbeat of a run or a worker."""
    with engine.begin() as conn:
        conn.execute(
            sa.update(Article)
            .where(Article.lease_owner == owner)
            .values(lease_expires_at=utcnow() + timedelta(seconds=seconds))
        )
