"""The store's questions about hosted files (docs/site-files.md#hosted-files): what the site
holds, the rows by status, and what ``orsync status`` shows of them."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from orsync.config import QUOTA_RESERVE
from orsync.store.queries import FILES_QUOTA, as_dict, get_state
from orsync.store.tables import HOSTED_FILE

__all__ = ["hosted_counts", "hosted_files", "hosted_links", "hosted_status", "hosted_tally"]


def hosted_links(conn: Connection) -> dict[str, dict[str, str]]:
    """The files the site holds now: forum id → {field: "files/<name>"} (docs/site-files.md#hosted-files)."""
    links: dict[str, dict[str, str]] = {}
    query = select(HOSTED_FILE.c.forum_id, HOSTED_FILE.c.field, HOSTED_FILE.c.file).where(
        HOSTED_FILE.c.file.is_not(None)
    )
    for r in conn.execute(query):
        links.setdefault(str(r.forum_id), {})[str(r.field)] = f"files/{r.file}"
    return links


def hosted_files(conn: Connection) -> list[dict[str, Any]]:
    """Every hosted-file row, by paper number and field."""
    query = select(HOSTED_FILE).order_by(
        HOSTED_FILE.c.number, HOSTED_FILE.c.forum_id, HOSTED_FILE.c.field
    )
    return [as_dict(r) for r in conn.execute(query)]


def hosted_counts(conn: Connection) -> dict[str, int]:
    """``hosted_tally`` of every hosted-file row, counted by the database."""
    rows = conn.execute(select(HOSTED_FILE.c.status, func.count()).group_by(HOSTED_FILE.c.status))
    out = {"current": 0, "pending": 0, "refused": 0}
    out.update({str(status): int(n) for status, n in rows})
    return out


def hosted_tally(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Hosted-file rows by status: current, pending and refused always, any other as found."""
    out = {"current": 0, "pending": 0, "refused": 0}
    for row in rows:
        out[str(row["status"])] = out.get(str(row["status"]), 0) + 1
    return out


def hosted_status(
    conn: Connection,
    reserve: int = QUOTA_RESERVE,
    present: Callable[[str, int | None], bool] | None = None,
) -> dict[str, Any]:
    """What ``orsync status`` shows of hosted files: the tally, the next attempt (not before
    the attachments quota's window opens again) and each refused file. With ``present`` (file
    name, recorded size → whether ``files/`` holds it), a linked file that is not there is
    counted ``missing``, not current, and listed: the next pass fetches it again."""
    rows = hosted_files(conn)
    now = datetime.now(UTC)
    next_attempt: datetime | None = None
    refused = []
    missing = []
    tally = hosted_tally(rows)
    for row in rows:
        if row["status"] != "current":
            when = row["next_attempt_at"] or now
            next_attempt = when if next_attempt is None else min(next_attempt, when)
        if row["status"] == "refused":
            refused.append(
                {"number": row["number"], "field": row["field"], "error": row["last_error"]}
            )
        if present is not None and row["file"] and not present(str(row["file"]), row["size"]):
            missing.append({"number": row["number"], "field": row["field"], "file": row["file"]})
            if row["status"] == "current":
                tally["current"] -= 1
    if present is not None:
        tally["missing"] = len(missing)
        if missing:  # the next pass fetches them again
            next_attempt = now if next_attempt is None else min(next_attempt, now)
    window = None
    stored = get_state(conn, FILES_QUOTA)
    if stored:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            q = json.loads(stored)
            if q["reset_at"] > time.time() and q["remaining"] - reserve < 1:
                window = datetime.fromtimestamp(q["reset_at"], UTC)
    if next_attempt is not None and window is not None:
        next_attempt = max(next_attempt, window)
    return {
        **tally,
        "next_attempt_at": next_attempt.astimezone().isoformat(timespec="seconds")
        if next_attempt
        else None,
        "window_opens_at": window.astimezone().isoformat(timespec="seconds") if window else None,
        "refused_files": refused,
        **({"missing_files": missing} if present is not None else {}),
    }
