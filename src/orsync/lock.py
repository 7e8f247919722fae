"""The single-writer lock shared by ``pull``, ``run`` and ``push`` (docs/architecture.md#sync-semantics).

An advisory ``flock`` on a file beside the SQLite store: the kernel drops it when the holder
dies, even by ``kill -9``, so a crash never leaves a stale lock behind. The file also says who
holds it. It is 0600, never followed through a link nor truncated on open, and must be a regular
file owned by us: whoever can open it can hold it. A PostgreSQL store may be written from several
machines, where a local file proves nothing, so there the writer holds a session-level advisory
lock in the database itself (and no local file), which the server drops when the holder's
connection dies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orsync.store import Store

from orsync.errors import LockedError, StoreError
from orsync.files import PRIVATE_MODE

OnWait = Callable[[str], None]


def lock_path(store_url: str, sqlite_path: Path | None) -> Path | None:
    """The lock file of a store, or None where the database's own lock is the only one.

    SQLite: beside the store. PostgreSQL: None, its advisory lock (below) covers every machine,
    and a local file would add nothing but a place to plant a link. Other server databases: a
    file per store URL in a folder private to this user (never a shared one like /tmp).
    """
    if sqlite_path is not None:
        return sqlite_path.with_name(sqlite_path.name + ".lock")
    from sqlalchemy.engine import make_url

    if make_url(store_url).get_backend_name() == "postgresql":
        return None
    key = hashlib.sha256(store_url.encode()).hexdigest()[:16]
    return private_dir() / f"orsync-{key}.lock"


def private_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """A folder only this user can enter: the service's state directory, else the user's.

    ``$STATE_DIRECTORY`` (systemd), else ``$XDG_RUNTIME_DIR/orsync``, else
    ``$XDG_STATE_HOME/orsync`` (``~/.local/state/orsync``); created 0700.
    """
    state = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        base = Path(state)
    elif environ.get("XDG_RUNTIME_DIR"):
        base = Path(environ["XDG_RUNTIME_DIR"]) / "orsync"
    else:
        home = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        base = Path(home) / "orsync"
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = base.lstat()
    except OSError as exc:
        raise StoreError(f"cannot create the lock folder {base}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise StoreError(
            f"lock folder {base} is not a folder of yours that only you can write; fix or remove it"
        )
    return base


# O_NONBLOCK: a FIFO planted at the path must not hang the open (no effect on a regular file).
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def _open_lock(path: Path) -> int:
    """Open (creating 0600 if need be) the lock file for writing, safely.

    No ``O_TRUNC`` and ``O_NOFOLLOW``: a link planted at the path is neither followed nor its
    target truncated. What is found must be a regular file owned by us: a file someone else
    created there could be held by them to stall every sync.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, PRIVATE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StoreError(
                f"lock file {path} is a symbolic link; remove it (orsync never follows one)"
            ) from None
        raise StoreError(f"cannot create lock file {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(f"lock file {path} is not a regular file; remove it")
        if st.st_uid != os.geteuid():
            raise StoreError(
                f"lock file {path} belongs to another user (uid {st.st_uid}), who could hold it "
                "and stall every sync; remove it"
            )
        if stat.S_IMODE(st.st_mode) != PRIVATE_MODE:
            os.fchmod(fd, PRIVATE_MODE)  # an older orsync made it 0644
    except BaseException:
        os.close(fd)
        raise
    return fd


UNKNOWN_HOLDER = "a process orsync cannot identify"


def holder(path: Path | None) -> dict[str, Any] | None:
    """Who holds the lock now, or None when nobody does.

    A lock we cannot inspect (a file we may not open) or one held without saying who (not an
    orsync, or an orsync between taking the lock and writing its name) counts as held: the
    returned dict then has ``pid`` None and ``command`` saying so.
    """
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        # Another account's lock file: whether it is held cannot be told, so it counts as held.
        return {"pid": None, "command": f"{UNKNOWN_HOLDER} (cannot read {path}: {exc.strerror})"}
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return {"pid": None, "command": f"{UNKNOWN_HOLDER} ({path} is not a regular file)"}
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                info = json.loads(handle.read(65536) or "{}")
            except (OSError, ValueError):
                info = {}
            if not isinstance(info, dict) or "pid" not in info:
                return {"pid": None, "command": UNKNOWN_HOLDER}
            return info
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None


def describe_holder(info: dict[str, Any] | None) -> str:
    """The ``lock:`` line of ``orsync status``."""
    if not info:
        return "lock: free"
    if info.get("pid") is None and "application" in info:
        return f"lock: held by {info['application']} since {info.get('since')}"
    if info.get("pid") is None:
        return f"lock: held by {info.get('command') or UNKNOWN_HOLDER}"
    return f"lock: held by pid {info.get('pid')} ({info.get('command')}) since {info.get('since')}"


@contextlib.contextmanager
def writer_lock(
    path: Path, *, wait_s: float, command: str, on_wait: OnWait | None = None
) -> Iterator[None]:
    """Hold the writer lock; wait up to ``wait_s`` for it, then exit 75 (``LockedError``).

    ``on_wait`` hears once, with the holder's description, that the lock is taken and we wait.
    """
    fd = _open_lock(path)
    with os.fdopen(fd, "r+", encoding="utf-8") as handle:
        deadline = time.monotonic() + max(0.0, wait_s)
        delay = 0.05
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and on_wait is not None and time.monotonic() < deadline:
                    told = True
                    on_wait(describe_holder(holder(path)).removeprefix("lock: "))
                if time.monotonic() >= deadline:
                    info = holder(path) or {}
                    who = (
                        f" by pid {info['pid']} ({info.get('command', '?')})"
                        if info.get("pid") is not None
                        else f" by {info.get('command', UNKNOWN_HOLDER)}"
                    )
                    raise LockedError(
                        f"another sync holds the lock{who}; wait for it, or use --wait-s to wait longer"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        # Ours now (a regular file we own, under our flock): rewriting it is safe.
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
def _database_lock(
    store: Store, *, wait_s: float, command: str, on_wait: OnWait | None = None
) -> Iterator[None]:
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
        told = False
        while not conn.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}
        ).scalar():
            if not told and on_wait is not None and time.monotonic() < deadline:
                told = True
                on_wait(describe_holder(database_holder(store)).removeprefix("lock: "))
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
def store_writer(
    store: Store, *, wait_s: float, command: str, on_wait: OnWait | None = None
) -> Iterator[None]:
    """The one writer lock for a store: the local file, or on PostgreSQL the database's."""
    path = lock_path(store.url, store.sqlite_path)
    if path is None:
        with _database_lock(store, wait_s=wait_s, command=command, on_wait=on_wait):
            yield
        return
    with writer_lock(path, wait_s=wait_s, command=command, on_wait=on_wait):
        yield


def store_holder(store: Store) -> dict[str, Any] | None:
    return holder(lock_path(store.url, store.sqlite_path)) or database_holder(store)
