"""Every file the site links is there, whole: checked each pass against what was recorded, and
the only files orsync ever removes are the ones it recorded writing.

A row's ``file`` is the name in ``files/`` the data files link, ``size`` its bytes and
``file_hash`` the SHA-256 of its content (``sha256:<hex>``; rows written before orsync recorded
it hold OpenReview's path hash, replaced by the content's on the first check). Checking is a
``stat`` per file: the content is hashed only when the size and modification time differ from
the last check (kept in ``sync_state``, key ``hosted_checked``, for the folder they were seen
in). A file that is missing or altered is no longer linked and its row is due again.

Names orsync wrote and no row links any more (a paper that left, a file replaced by a newer
one, an altered file) wait in ``sync_state`` (key ``hosted_retired``) until the sweep removes
them, once the site no longer links them: a file orsync did not write is never removed,
whatever its name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update

from orsync.store import queries
from orsync.store.tables import HOSTED_FILE

CHECKED_KEY = "hosted_checked"  # {"folder": str, "files": {name: [size, mtime_ns]}}
RETIRED_KEY = "hosted_retired"  # [name, ...]
HASH_PREFIX = "sha256:"


@dataclass
class Checked:
    """What one check found: files the site linked that are gone or not what was written."""

    missing: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)


def content_hash(path: Path) -> str:
    """``sha256:<hex>`` of the file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return HASH_PREFIX + digest.hexdigest()


def fingerprint(st: Any) -> list[int]:
    return [int(st.st_size), int(st.st_mtime_ns)]


def _folder_key(folder: Path) -> str:
    return str(folder.absolute())


def load_checked(conn: Connection, folder: Path) -> dict[str, list[int]]:
    """Each file's size and modification time when its content last matched, for ``folder``."""
    stored = queries.get_state(conn, CHECKED_KEY)
    with contextlib.suppress(ValueError, TypeError, AttributeError, KeyError):
        data = json.loads(stored or "")
        if data["folder"] == _folder_key(folder):
            return {str(k): list(v) for k, v in data["files"].items()}
    return {}


def save_checked(conn: Connection, folder: Path, files: dict[str, list[int]]) -> None:
    data = {"folder": _folder_key(folder), "files": dict(sorted(files.items()))}
    text = json.dumps(data, separators=(",", ":"))
    if queries.get_state(conn, CHECKED_KEY) != text:
        queries.set_state(conn, CHECKED_KEY, text)


def retired(conn: Connection) -> list[str]:
    """Names orsync wrote into ``files/`` that no row links any more, not removed yet."""
    with contextlib.suppress(ValueError, TypeError):
        names = json.loads(queries.get_state(conn, RETIRED_KEY) or "[]")
        return [str(n) for n in names] if isinstance(names, list) else []
    return []


def set_retired(conn: Connection, names: Iterable[str]) -> None:
    text = json.dumps(sorted(set(names)))
    if queries.get_state(conn, RETIRED_KEY) != text:
        queries.set_state(conn, RETIRED_KEY, text)


def retire(conn: Connection, names: Iterable[str]) -> None:
    """Remember names orsync wrote and no longer links, for the sweep."""
    new = [n for n in names if n]
    if new:
        set_retired(conn, [*retired(conn), *new])


def _unreadable(exc: OSError) -> str:
    return f"unreadable ({exc.strerror or type(exc).__name__})"


def _verdict(row: Any, path: str, seen: list[int] | None) -> tuple[str | None, Any, str | None]:
    """(what is wrong with the row's file, or None; its stat; a content hash to record)."""
    try:
        st = os.lstat(path)  # a str, not a Path: every pass stats every hosted file
    except FileNotFoundError:
        return "missing", None, None
    except OSError as exc:
        return _unreadable(exc), None, None
    if not stat.S_ISREG(st.st_mode):
        return "not a plain file", st, None
    if row.size is not None and st.st_size != row.size:
        return "altered (another size)", st, None
    recorded = str(row.file_hash or "")
    if seen == fingerprint(st) and recorded.startswith(HASH_PREFIX):
        return None, st, None  # as it was when its content last matched: not read again
    try:
        digest = content_hash(Path(path))
    except OSError as exc:
        return _unreadable(exc), st, None
    if recorded.startswith(HASH_PREFIX):
        return ("altered (other content)" if digest != recorded else None), st, None
    # Written before orsync recorded content hashes: the size matched, so this content
    # becomes the one to check against.
    return None, st, digest


def check(conn: Connection, folder: Path, now: datetime) -> Checked:
    """Check every linked file in ``folder`` (under the writer lock, in a transaction).

    A missing or altered file stops being linked; a current row becomes pending and due now,
    so the files stage fetches it again within the quota. A row waiting for a newer file
    (pending or refused) keeps its state: only its old link goes.
    """
    found = Checked()
    seen = load_checked(conn, folder)
    kept: dict[str, list[int]] = {}
    altered_names = []
    t = HOSTED_FILE.c
    linked = select(t.forum_id, t.field, t.file, t.size, t.file_hash, t.status).where(
        t.file.is_not(None)
    )
    base = os.fspath(folder)
    for row in conn.execute(linked).all():
        name = str(row.file)
        why, st, digest = _verdict(row, f"{base}/{name}", seen.get(name))
        if why is None:
            kept[name] = fingerprint(st)
            if digest is not None:
                _set(conn, row, file_hash=digest)
            continue
        label = f"{name}: {why}"
        (found.missing if why == "missing" else found.altered).append(label)
        if why.startswith("altered"):
            altered_names.append(name)
        values: dict[str, Any] = {"file": None, "file_hash": None, "size": None, "updated_at": now}
        if row.status == "current":
            values.update(
                status="pending",
                attempts=0,
                last_error=f"the hosted copy was {why}",
                next_attempt_at=None,
            )
        _set(conn, row, **values)
    # Not orsync's bytes any more, but orsync's name: removed once unlinked, unless the next
    # download puts the file back first. A file that could not be read, or a link or folder
    # put in its place, is left where it is.
    retire(conn, altered_names)
    save_checked(conn, folder, kept)
    return found


def _set(conn: Connection, row: Any, **values: Any) -> None:
    conn.execute(
        update(HOSTED_FILE)
        .where(HOSTED_FILE.c.forum_id == row.forum_id, HOSTED_FILE.c.field == row.field)
        .values(**values)
    )


def record_written(conn: Connection, folder: Path, written: dict[str, list[int]]) -> None:
    """Note files just put in place (name → :func:`fingerprint`) as checked: the next check
    costs them a ``stat``, not a read."""
    if written:
        save_checked(conn, folder, {**load_checked(conn, folder), **written})
