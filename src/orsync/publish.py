"""Push: keep the poster assignment current and write the website's data files (SPEC §6).

Reads only the store (never OpenReview) and only the ``accepted_papers`` view, so the website
gets the allowlisted public fields of accepted papers and nothing else.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, text, update

from orsync import posters, website
from orsync.config import Config
from orsync.errors import OrsyncError, UsageError
from orsync.lock import store_writer
from orsync.notify import Notifier
from orsync.ops import open_for_reading
from orsync.store import open_store
from orsync.store.models import PosterAssignment, PosterPin, PosterSession

SESSION = PosterSession.__table__  # type: ignore[attr-defined]
ASSIGNMENT = PosterAssignment.__table__  # type: ignore[attr-defined]
PIN = PosterPin.__table__  # type: ignore[attr-defined]
_SECRET_ENV = re.compile(r"passw|token|secret|credential|api_?key", re.IGNORECASE)


@dataclass
class PushResult:
    changed: list[str] = field(default_factory=list)
    assignment: posters.AssignmentResult | None = None


def child_environ(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment for ``website.on_change``: no secrets, no systemd notify socket."""
    env = Notifier.child_environ(environ)
    return {
        k: v for k, v in env.items() if not _SECRET_ENV.search(k) and k != "CREDENTIALS_DIRECTORY"
    }


def sessions_of(config: Config) -> list[posters.Session]:
    return [posters.Session(s.id, s.name, s.start, s.end) for s in config.posters.sessions]


def _sync_sessions(conn: Connection, config: Config) -> None:
    conn.execute(delete(SESSION))
    rows = [
        {
            "id": s.id,
            "name": s.name,
            "start": s.start.isoformat(),
            "end": s.end.isoformat(),
            "position": i,
        }
        for i, s in enumerate(config.posters.sessions)
    ]
    if rows:
        conn.execute(insert(SESSION), rows)


def accepted_rows(conn: Connection) -> list[dict[str, Any]]:
    rows = [
        dict(r._mapping)
        for r in conn.execute(text("SELECT * FROM accepted_papers ORDER BY number, forum_id"))
    ]
    for row in rows:
        for key in ("authors", "authorids", "keywords"):
            row[key] = json.loads(row[key]) if row.get(key) else []
    return rows


def _talks(
    by_paper: Mapping[str, list[tuple[datetime, datetime]]], row: Mapping[str, Any]
) -> tuple[tuple[datetime, datetime], ...]:
    """A paper's talk slots; the config may name it by number or by forum id."""
    return tuple(by_paper.get(str(row["number"]), []) + by_paper.get(str(row["forum_id"]), []))


def update_assignment(
    conn: Connection, config: Config, *, time_limit_s: float = 10.0, reoptimise: bool = False
) -> posters.AssignmentResult | None:
    """Place newly accepted papers, drop departed ones, keep everyone else where they were.

    With ``reoptimise`` everyone may move to reduce author clashes: for chairs, before announcing.
    """
    if not config.posters.sessions:
        return None
    rows = accepted_rows(conn)
    talks = config.talks_by_paper()
    papers = [
        posters.PosterPaper(
            forum_id=row["forum_id"],
            number=int(row["number"] or 0),
            author_keys=posters.author_keys(row["authors"], row["authorids"] or None),
            keywords=tuple(row["keywords"]),
            talks=_talks(talks, row),
        )
        for row in rows
    ]
    known_sessions = {s.id for s in config.posters.sessions}
    previous = {
        r.forum_id: posters.Placement(r.session_id, int(r.board))
        for r in conn.execute(select(ASSIGNMENT))
        if r.session_id in known_sessions
    }
    pins = {r.forum_id: r.session_id for r in conn.execute(select(PIN))}
    result = posters.assign(
        papers,
        sessions_of(config),
        config.posters.boards_per_session,
        previous,
        pins,
        time_limit_s=time_limit_s,
        reoptimise=reoptimise,
    )
    now = datetime.now(UTC)
    current = {r.forum_id: (r.session_id, int(r.board)) for r in conn.execute(select(ASSIGNMENT))}
    gone = [fid for fid in current if fid not in result.placements]
    if gone:
        conn.execute(delete(ASSIGNMENT).where(ASSIGNMENT.c.forum_id.in_(gone)))
    for fid, place in sorted(result.placements.items()):
        if fid not in current:
            conn.execute(
                insert(ASSIGNMENT).values(
                    forum_id=fid, session_id=place.session_id, board=place.board, assigned_at=now
                )
            )
        elif current[fid] != (place.session_id, place.board):
            conn.execute(
                update(ASSIGNMENT)
                .where(ASSIGNMENT.c.forum_id == fid)
                .values(session_id=place.session_id, board=place.board, assigned_at=now)
            )
    return result


def push(
    config: Config,
    *,
    wait_s: float = 600.0,
    reoptimise: bool = False,
    should_stop: Callable[[], bool] | None = None,
    tick: Callable[[], None] | None = None,
) -> PushResult:
    """Bring the poster assignment up to date and write the website files (SPEC §2 ``push``).

    ``should_stop`` and ``tick`` reach ``website.run_on_change`` (the service stopping, its
    heartbeat).
    """
    store = open_store(config.store.url)
    result = PushResult()
    try:
        with store_writer(store, wait_s=wait_s, command="push"):
            with store.begin() as conn:
                _sync_sessions(conn, config)
                result.assignment = update_assignment(conn, config, reoptimise=reoptimise)
            if config.website is None:
                return result
            with store.connect() as conn:
                rows = accepted_rows(conn)
    finally:
        store.dispose()
    files = website.render(rows, sessions_of(config), config.website.formats)
    out = config.website.output_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OrsyncError(f"cannot create website.output_dir {out}: {exc.strerror}") from None
    result.changed = website.write_atomically(out, files)
    if result.changed and config.website.on_change:
        website.run_on_change(
            config.website.on_change,
            child_environ(),
            out,
            config.website.on_change_timeout_s,
            should_stop=should_stop,
            tick=tick,
        )
    return result


def resolve_paper(conn: Connection, ref: str) -> tuple[str, int | None]:
    """A paper given as its number or forum id → (forum id, number)."""
    rows = accepted_rows(conn)
    for row in rows:
        if ref == row["forum_id"] or (ref.isdigit() and int(ref) == row["number"]):
            return str(row["forum_id"]), row["number"]
    raise UsageError(
        f"paper {ref!r} is not an accepted paper in the store; give its number or forum id"
    )


def pin(config: Config, ref: str, session_id: str) -> str:
    if session_id not in {s.id for s in config.posters.sessions}:
        known = ", ".join(s.id for s in config.posters.sessions) or "none configured"
        raise UsageError(f"unknown poster session {session_id!r} (sessions: {known})")
    store = open_store(config.store.url)
    try:
        with store_writer(store, wait_s=600.0, command="posters pin"), store.begin() as conn:
            forum_id, _ = resolve_paper(conn, ref)
            conn.execute(delete(PIN).where(PIN.c.forum_id == forum_id))
            conn.execute(
                insert(PIN).values(
                    forum_id=forum_id, session_id=session_id, pinned_at=datetime.now(UTC)
                )
            )
            _sync_sessions(conn, config)
            update_assignment(conn, config)
    finally:
        store.dispose()
    return forum_id


def unpin(config: Config, ref: str) -> str:
    store = open_store(config.store.url)
    try:
        with store_writer(store, wait_s=600.0, command="posters unpin"), store.begin() as conn:
            forum_id, _ = resolve_paper(conn, ref)
            conn.execute(delete(PIN).where(PIN.c.forum_id == forum_id))
    finally:
        store.dispose()
    return forum_id


def show(config: Config) -> list[dict[str, Any]]:
    store = open_for_reading(config)
    try:
        with store.connect() as conn:
            rows = accepted_rows(conn)
            pins = {r.forum_id: r.session_id for r in conn.execute(select(PIN))}
    finally:
        store.dispose()
    for row in rows:
        row["pinned"] = row["forum_id"] in pins
    order = {s.id: i for i, s in enumerate(config.posters.sessions)}
    rows.sort(
        key=lambda r: (order.get(r["session_id"], len(order)), r["board"] or 0, r["number"] or 0)
    )
    return rows
