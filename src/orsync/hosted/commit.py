"""Checked files into ``files/`` and their rows updated; files no row names any more swept.

A checked file is renamed into place (the site never sees half of one); a refused or failed
one is recorded on its row (attempts, last error, next attempt with backoff) and tried again in
a later pass. The sweep runs only once the site no longer links what it removes.
"""

from __future__ import annotations

import contextlib
import re
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
from orsync.store.tables import HOSTED_FILE

BACKOFF_S = 60.0  # first wait after a failure; 4x each further failure, at most MAX_BACKOFF_S
MAX_BACKOFF_S = 24 * 3600.0
_NAME = re.compile(r"^[A-Za-z0-9_-]+-[A-Za-z0-9_]+-[0-9a-f]{8}\.[a-z0-9]{1,8}$")


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

    for key, (w, path) in outcome.ok.items():
        row = rows.get(key)
        if row is None or row.hash != w.hash:
            continue  # the paper left, or its file changed again, while this one downloaded
        target = folder / w.name
        size = path.stat().st_size
        path.chmod(0o644)
        path.replace(target)
        conn.execute(
            update(HOSTED_FILE)
            .where(where(key))
            .values(
                status="current",
                file=w.name,
                file_hash=w.hash,
                size=size,
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
    if outcome.ok:
        fsync_dir(folder)
    return result


def sweep(folder: Path, keep: set[str]) -> list[str]:
    """Remove the files orsync put in ``folder`` that no row names, and stale temporary files."""
    removed: list[str] = []
    cutoff = time.time() - STALE_TEMP_S
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return removed
    for path in entries:
        name = path.name
        with contextlib.suppress(OSError):
            if name.startswith(TEMP_PREFIX) and name.endswith(".tmp"):
                if path.lstat().st_mtime < cutoff:
                    path.unlink()
            elif _NAME.match(name) and name not in keep and not path.is_symlink():
                path.unlink()
                removed.append(name)
    return removed
