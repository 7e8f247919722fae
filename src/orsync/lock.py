"""The single-writer lock shared by ``pull``, ``run`` and ``push`` (SPEC §4).

An advisory ``flock`` on a file beside the store: the kernel drops it when the holder dies, even
by ``kill -9``, so a crash never leaves a stale lock behind. The file also says who holds it.
A PostgreSQL store may be written from several machines, where a local file proves nothing, so
there the writer also holds a session-level advisory lock in the database itself, which the
server drops when the holder's connection dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orsync.store import Store

from orsync.errors import LockedError, StoreError


def lock_path(store_url: str, sqlite_path: Path | None) -> Path:
    if sqlite_path is not None:
        return sqlite_path.with_name(sqlite_path.name + ".lock")
    # Server databases: one lock per store URL on this machine.
    key = hashlib.sha256(store_url.encode()).hexdigest()[:16]
    base = Path(os.environ.get("STATE_DIRECTORY", tempfile.gettempdir()))
    return base / f"orsync-{key}.lock"


def holder(path: Path) -> dict[str, Any] | None:
    """Who holds the lock now, or None when nobody does."""
    try:
        handle = path.open("r+")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                info = json.loads(path.read_text() or "{}")
            except (OSError, ValueError):
                info = {}
            return info if isinstance(info, dict) else {}
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None


@contextlib.contextmanager
def writer_lock(path: Path, *, wait_s: float, command: str) -> Iterator[None]:
    """Hold the writer lock; wait up to ``wait_s`` for it, then exit 75 (``LockedError``)."""
    try:
        handle: IO[str] = path.open("a+")
    except OSError as exc:
        raise StoreError(f"cannot create lock file {path}: {exc.strerror}") from None
    with handle:
        deadline = time.monotonic() + max(0.0, wait_s)
        delay = 0.05
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    info = holder(path) or {}
                    who = (
                        f" by pid {info['pid']} ({info.get('command', '?')})"
                        if "pid" in info
                        else ""
                    )
                    raise LockedError(
                        f"another sync holds the lock{who}; wait for it, or use --wait-s to wait longer"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "command": command,
                    "since": datetime.now(UTC).isoformat(timespec="seconds"),
                    "argv0": Path(sys.argv[0]).name,
                }
            )
        )
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


# Any fixed 64-bit number; it only has to be the same for every orsync writing one database.
ADVISORY_KEY = 0x6F7273796E63  # "orsync"


@contextlib.contextmanager
def _database_lock(store: Store, *, wait_s: float, command: str) -> Iterator[None]:
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        conn = store.engine.connect()
    except SQLAlchemyError as exc:
        raise StoreError(f"store {store.describe()}: cannot connect for the writer lock") from exc
    try:
        label = f"orsync {command} on {socket.gethostname()} pid {os.getpid()}"
        conn.exec_driver_sql(
            "SELECT set_config('application_name', %(label)s, false)", {"label": label[:63]}
        )
        deadline = time.monotonic() + max(0.0, wait_s)
        while not conn.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}
        ).scalar():
            if time.monotonic() >= deadline:
                who = database_holder(store)
                by = f" by {who['application']}" if who and who.get("application") else ""
                raise LockedError(
                    f"another sync holds the store's lock{by}; wait for it, or use --wait-s to wait longer"
                )
            time.sleep(0.5)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
            conn.commit()
    finally:
        conn.close()


def database_holder(store: Store) -> dict[str, Any] | None:
    """Who holds the PostgreSQL advisory lock, from any machine, or None."""
    from sqlalchemy import text

    if store.engine.dialect.name != "postgresql":
        return None
    with store.engine.connect() as conn:
        # A bigint advisory key shows in pg_locks as classid (high 32 bits) and objid (low).
        row = conn.execute(
            text(
                "SELECT a.pid, a.application_name, host(a.client_addr), a.backend_start "
                "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.classid = :high AND l.objid = :low"
            ),
            {"high": ADVISORY_KEY >> 32, "low": ADVISORY_KEY & 0xFFFFFFFF},
        ).first()
    if row is None:
        return None
    return {"database_pid": row[0], "application": row[1], "client": row[2], "since": str(row[3])}


@contextlib.contextmanager
def store_writer(store: Store, *, wait_s: float, command: str) -> Iterator[None]:
    """The one writer lock for a store: the local file, and on PostgreSQL the database's too."""
    started = time.monotonic()
    with writer_lock(lock_path(store.url, store.sqlite_path), wait_s=wait_s, command=command):
        if store.engine.dialect.name != "postgresql":
            yield
            return
        left = max(0.0, wait_s - (time.monotonic() - started))
        with _database_lock(store, wait_s=left, command=command):
            yield


def store_holder(store: Store) -> dict[str, Any] | None:
    return holder(lock_path(store.url, store.sqlite_path)) or database_holder(store)
