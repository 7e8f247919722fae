"""Checked files into ``files/`` and their rows updated; files orsync wrote that no row links
any more swept.

A checked file is renamed into place (the site never sees half of one), its size and content
hash recorded; a refused or failed one is recorded on its row (attempts, last error, next
attempt with backoff) and tried again in a later pass. The sweep removes only names orsync
recorded writing (``hosted.verify``: retired names), never a file by the look of its name, and
runs only once the site no longer links what it removes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update

from orsync.files import STALE_TEMP_S, TEMP_PREFIX, fsync_dir
from orsync.hosted.download import Outcome
from orsync.hosted.plan import FILES_DIR
from orsync.hosted.verify import (
    content_hash,
    fingerprint,
    record_written,
    retire,
    retired,
    set_retired,
)
from orsync.store.tables import HOSTED_FILE

BACKOFF_S = 60.0  # first wait after a failure; 4x each further failure, at most MAX_BACKOFF_S
MAX_BACKOFF_S = 24 * 3600.0


@dataclass
class Committed:
    """What a commit put in place (file names) and recorded as refused or failed (why)."""

    downloaded: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(MAX_BACKOFF_S, BACKOFF_S * 4 ** max(0, attempts - 1)))


def linked_names(links: dict[str, dict[str, str]]) -> Iterator[str]:
    for per_field in links.values():
        for link in per_field.values():
            yield link.removeprefix(f"{FILES_DIR}/")


def commit(conn: Connection, folder: Path, outcome: Outcome, now: datetime) -> Committed:
    """Apply one pass's outcome to the rows (under the writer lock), files renamed into place."""
    result = Committed()
    rows = {(r.forum_id, r.field): r for r in conn.execute(select(HOSTED_FILE))}

    def where(key: tuple[str, str]) -> Any:
        return (HOSTED_FILE.c.forum_id == key[0]) & (HOSTED_FILE.c.field == key[1])

    written: dict[str, list[int]] = {}
    for key, (w, path) in outcome.ok.items():
        row = rows.get(key)
        if row is None or row.hash != w.hash:
            continue  # the paper left, or its file changed again, while this one downloaded
        target = folder / w.name
        digest = content_hash(path)
        # Public data, readable by whoever the folder lets through: the umask of a service
        # (0077) must not hide it from the web server.
        path.chmod(0o644)
        path.replace(target)
        st = target.stat()
        written[w.name] = fingerprint(st)
        if row.file and row.file != w.name:
            retire(conn, [str(row.file)])  # the previous version, linked until the republish
        conn.execute(
            update(HOSTED_FILE)
            .where(where(key))
            .values(
                status="current",
                file=w.name,
                file_hash=digest,
                size=st.st_size,
                attempts=0,
                last_error=None,
                next_attempt_at=None,
                updated_at=now,
            )
        )
        result.downloaded.append(w.name)
    for status, found, listed in (
        ("refused", outcome.refused, result.refused),
        ("pending", outcome.failed, result.failed),
    ):
        for key, (w, why) in found.items():
            row = rows.get(key)
            if row is None or row.hash != w.hash:
                continue
            attempts = int(row.attempts or 0) + 1
            conn.execute(
                update(HOSTED_FILE)
                .where(where(key))
                .values(
                    status=status,
                    attempts=attempts,
                    last_error=why[:500],
                    next_attempt_at=now + _backoff(attempts),
                    updated_at=now,
                )
            )
            listed.append(f"{w.label}: {why}")
    record_written(conn, folder, written)
    if outcome.ok:
        fsync_dir(folder)
    return result


def sweep(conn: Connection, folder: Path, keep: set[str]) -> list[str]:
    """Remove the files orsync wrote into ``folder`` and retired that ``keep`` (the names the
    site links) does not hold, and its own stale temporary files (under the writer lock)."""
    removed: list[str] = []
    waiting: list[str] = []
    for name in sorted(set(retired(conn))):
        if name in keep or "/" in name or name.startswith("."):
            continue  # linked again (the same file hosted anew): not to be removed
        path = folder / name
        try:
            if path.is_symlink() or not path.is_file():
                continue  # gone already, or not the plain file orsync wrote
            path.unlink()
            removed.append(name)
        except OSError:
            waiting.append(name)  # tried again next pass
    set_retired(conn, waiting)
    cutoff = time.time() - STALE_TEMP_S
    with contextlib.suppress(OSError):
        for path in folder.glob(f"{TEMP_PREFIX}*.tmp"):
            with contextlib.suppress(OSError):
                if path.lstat().st_mtime < cutoff:
                    path.unlink()
    return removed
