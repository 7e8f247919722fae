"""The single-writer lock shared by ``pull`` and ``run`` (SPEC §4).

An advisory ``flock`` on a file beside the store: the kernel drops it when the holder dies, even
by ``kill -9``, so a crash never leaves a stale lock behind. The file also says who holds it.
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
from typing import IO, Any

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
