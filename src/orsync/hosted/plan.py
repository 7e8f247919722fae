"""Which files each accepted paper should have on the site, and which of them are due now.

A file's name is ``<number>-<field>-<hash8>.<ext>``: the hash comes from the field's value
(``/pdf/<40 hex>.pdf``), so a file is fetched again only when OpenReview's file changes, and the
bytes are never rewritten otherwise. The row keeps the file the site links until a newer one is
checked and in place.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select, update

from orsync.files import HOSTED_DIR
from orsync.hosted.verify import retire
from orsync.store import queries
from orsync.store.tables import HOSTED_FILE, NOTE

FILES_DIR = HOSTED_DIR
_HASH = re.compile(r"([0-9a-fA-F]{40})(?:\.[A-Za-z0-9]{1,8})?$")


@dataclass(frozen=True)
class Wanted:
    forum_id: str
    number: int | None
    field: str
    value: str
    hash: str
    ext: str

    @property
    def name(self) -> str:
        stem = (
            str(self.number)
            if self.number is not None
            else re.sub(r"[^A-Za-z0-9_-]", "_", self.forum_id)
        )
        return f"{stem}-{self.field}-{self.hash[:8]}.{self.ext}"

    @property
    def label(self) -> str:
        return f"paper #{self.number if self.number is not None else self.forum_id} {self.field}"


def file_hash(value: str) -> str:
    """The hash OpenReview puts in a file's path, else one of the path itself."""
    found = _HASH.search(value)
    if found:
        return found.group(1).lower()
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:40]


def file_ext(field_name: str, value: str) -> str:
    if field_name == "pdf":
        return "pdf"
    ext = value.rpartition(".")[2].lower() if "." in value.rpartition("/")[2] else ""
    return ext if re.fullmatch(r"[a-z0-9]{1,8}", ext) else "bin"


def _loads(text: str) -> Any:
    """orjson where it can (every pass decodes each accepted paper's note: a third of json's
    time); json for what orjson refuses, an integer beyond 64 bits."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def wanted_files(conn: Connection, fields: Sequence[str]) -> list[Wanted]:
    """Every listed field of every paper in ``accepted_papers`` (public data only) whose field
    everyone may read and whose value is a file path."""
    numbers = queries.accepted_numbers(conn)
    if not numbers or not fields:
        return []
    rows = conn.execute(
        select(NOTE.c.id, NOTE.c.raw, NOTE.c.public_fields).where(NOTE.c.id.in_(list(numbers)))
    )
    out = []
    for r in rows:
        try:
            content = _loads(r.raw).get("content") or {}
            public = set(_loads(r.public_fields or "[]"))
        except (ValueError, AttributeError):
            continue
        for name in fields:
            item = content.get(name) if isinstance(content, dict) else None
            value = item.get("value") if isinstance(item, dict) else None
            if name not in public or not isinstance(value, str) or not value.startswith("/"):
                continue
            number = numbers[str(r.id)]
            out.append(
                Wanted(
                    str(r.id),
                    int(number) if number is not None else None,
                    name,
                    value,
                    file_hash(value),
                    file_ext(name, value),
                )
            )
    out.sort(key=lambda w: (w.field, w.number is None, w.number or 0, w.forum_id))
    return out


def plan(conn: Connection, fields: Sequence[str], now: datetime) -> list[Wanted]:
    """Bring the rows in line with what the site should host; return the files due now."""
    wanted = {(w.forum_id, w.field): w for w in wanted_files(conn, fields)}
    rows = {(r.forum_id, r.field): r for r in conn.execute(select(HOSTED_FILE))}
    gone = [key for key in rows if key not in wanted]
    # The files of papers that left stay until the site no longer links them: the sweep
    # removes them then, by these names.
    retire(conn, (str(rows[key].file) for key in gone if rows[key].file))
    for forum_id, name in gone:
        conn.execute(
            delete(HOSTED_FILE).where(
                HOSTED_FILE.c.forum_id == forum_id, HOSTED_FILE.c.field == name
            )
        )
    due = []
    for key, w in wanted.items():
        row = rows.get(key)
        if row is None:
            conn.execute(
                insert(HOSTED_FILE).values(
                    forum_id=w.forum_id,
                    field=w.field,
                    number=w.number,
                    value=w.value,
                    hash=w.hash,
                    ext=w.ext,
                    status="pending",
                    attempts=0,
                    updated_at=now,
                )
            )
            due.append(w)
            continue
        if row.hash != w.hash or row.ext != w.ext:
            # A new file: pending again; the site keeps linking the previous one meanwhile.
            conn.execute(
                update(HOSTED_FILE)
                .where(HOSTED_FILE.c.forum_id == w.forum_id, HOSTED_FILE.c.field == w.field)
                .values(
                    value=w.value,
                    hash=w.hash,
                    ext=w.ext,
                    number=w.number,
                    status="pending",
                    attempts=0,
                    last_error=None,
                    next_attempt_at=None,
                    updated_at=now,
                )
            )
            due.append(w)
            continue
        if row.number != w.number:
            conn.execute(
                update(HOSTED_FILE)
                .where(HOSTED_FILE.c.forum_id == w.forum_id, HOSTED_FILE.c.field == w.field)
                .values(number=w.number)
            )
        if row.status != "current" and (row.next_attempt_at is None or row.next_attempt_at <= now):
            due.append(w)
    due.sort(key=lambda w: (w.field, w.number is None, w.number or 0, w.forum_id))
    return due
