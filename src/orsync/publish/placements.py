"""The poster places as published (docs/workshop.md#moves-of-published-posters): what the site
shows, each paper's home, the announcement, and the last moves, kept in ``sync_state``."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from orsync import posters
from orsync.config import Config
from orsync.errors import UsageError
from orsync.lock import store_writer
from orsync.logs import get_logger
from orsync.store import queries
from orsync.store.binding import open_for
from orsync.store.queries import (
    POSTERS_ANNOUNCED,
    POSTERS_HOMES,
    POSTERS_MOVES,
    POSTERS_PUBLISHED,
)

__all__ = [
    "AnnouncedConflict",
    "Frozen",
    "announced",
    "freeze",
    "load_places",
    "record_published",
]

log = get_logger("orsync.posters")


def load_places(conn: Connection, key: str) -> dict[str, posters.Placement]:
    """One stored map of places; empty when absent or unreadable (the table then decides)."""
    try:
        data = json.loads(queries.get_state(conn, key) or "{}")
        return {str(f): posters.Placement(str(s), int(b)) for f, (s, b) in data.items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def _save_places(conn: Connection, key: str, places: Mapping[str, posters.Placement]) -> None:
    data = {f: [p.session_id, p.board] for f, p in sorted(places.items())}
    queries.set_state(conn, key, json.dumps(data, sort_keys=True))


def announced(conn: Connection, config: Config) -> str | None:
    """How the places were announced (``posters freeze`` at a time, or the config); None if not."""
    when = queries.get_state(conn, POSTERS_ANNOUNCED)
    if when:
        return f"orsync posters freeze at {when}"
    if config.posters.announced:
        return "posters.announced = true"
    return None


def record_published(
    conn: Connection,
    shown: Mapping[str, posters.Placement],
    moves: Sequence[posters.Move],
    command: str,
) -> None:
    """After the files are written: what they show, the homes, and the moves (logged too).

    A paper's first published place is its home; so is a place the chairs chose (a pin, a
    re-optimisation). An automatic move leaves the home where it was.
    """
    homes = load_places(conn, POSTERS_HOMES)
    chosen = {m.forum_id for m in moves if m.cause in posters.CONSENTED}
    homes = {f: place if f not in homes or f in chosen else homes[f] for f, place in shown.items()}
    _save_places(conn, POSTERS_PUBLISHED, shown)
    _save_places(conn, POSTERS_HOMES, homes)
    if moves:
        at = datetime.now(UTC).isoformat(timespec="seconds")
        record = {
            "at": at,
            "command": command,
            "moves": [m.as_dict() for m in moves],
            "lines": [m.line() for m in moves],
        }
        queries.set_state(conn, POSTERS_MOVES, json.dumps(record))
    for m in moves:
        log.info(
            "poster moved",
            paper=m.number,
            forum_id=m.forum_id,
            source=f"{m.source.session_id}/{m.source.board}",
            target=f"{m.target.session_id}/{m.target.board}",
            cause=m.cause,
            reason=m.reason,
        )


def _fix(m: posters.Move) -> str:
    pin = (
        f"pin #{m.number} to another session with orsync posters pin {m.number} "
        f"{m.target.session_id}"
    )
    if m.cause == "talk":
        return f"move the talk, or {pin}"
    if m.cause == "session_removed":
        return f"configure session {m.source.session_id} again, or {pin}"
    if m.cause == "capacity":
        return f"raise posters.boards_per_session to at least {m.source.board}, or {pin}"
    return f"make room (raise posters.boards_per_session, or undo the pin that fills it), or {pin}"


class AnnouncedConflict(posters.AssignmentError):
    """A hard rule would move an announced poster; nothing moves, the chairs decide."""

    def __init__(self, conflicts: Sequence[posters.Move], how: str) -> None:
        self.conflicts = list(conflicts)
        parts = [
            f"#{m.number} cannot stay at {m.source.session_id}/{m.source.board}: {m.reason} "
            f"({_fix(m)})"
            for m in self.conflicts
        ]
        super().__init__(
            f"the poster places are announced ({how}), so no poster moved: " + "; ".join(parts)
        )
        self.details["conflicts"] = [m.as_dict() for m in self.conflicts]


@dataclass
class Frozen:
    """What ``orsync posters freeze`` froze."""

    announced_at: str
    already: bool
    places: int
    sessions: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "announced_at": self.announced_at,
            "already": self.already,
            "places": self.places,
            "sessions": self.sessions,
        }


def freeze(config: Config) -> Frozen:
    """Record that the published places are announced: from now on no automatic move."""
    with (
        open_for(config) as store,
        store_writer(store, wait_s=600.0, command="posters freeze"),
        store.begin() as conn,
    ):
        table = {f: posters.Placement(s, b) for f, (s, b) in queries.poster_places(conn).items()}
        shown = {**table, **load_places(conn, POSTERS_PUBLISHED)}
        if not shown:
            raise UsageError(
                "no poster places to freeze yet; run `orsync push` (or `orsync posters assign`) "
                "first"
            )
        when = queries.get_state(conn, POSTERS_ANNOUNCED)
        already = bool(when)
        if not when:
            when = datetime.now(UTC).isoformat(timespec="seconds")
            queries.set_state(conn, POSTERS_ANNOUNCED, when)
            # The announced places are the homes from now on: nothing goes back elsewhere.
            _save_places(conn, POSTERS_HOMES, shown)
    counts = Counter(p.session_id for p in shown.values())
    return Frozen(when, already, len(shown), dict(sorted(counts.items())))
