"""The poster assignment as the push keeps it: the configured sessions mirrored into the store,
new papers placed, departed ones dropped, the chairs' pins (docs/site-files.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, update

from orsync import posters, schedule
from orsync.config import Config
from orsync.errors import UsageError
from orsync.lock import store_writer
from orsync.publish.placements import AnnouncedConflict, announced, load_places
from orsync.store import models, queries
from orsync.store.binding import open_for
from orsync.store.queries import POSTERS_HOMES, POSTERS_PUBLISHED
from orsync.store.tables import ASSIGNMENT, PIN, SESSION

__all__ = [
    "PinResult",
    "pin",
    "resolve_paper",
    "sessions_of",
    "sync_sessions",
    "unpin",
    "update_assignment",
]


def sessions_of(config: Config) -> list[schedule.Session]:
    """The poster sessions in time order."""
    return list(schedule.Schedule.from_config(config).sessions)


def sync_sessions(conn: Connection, config: Config) -> None:
    conn.execute(delete(SESSION))
    rows: list[dict[str, Any]] = [
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


def update_assignment(
    conn: Connection,
    config: Config,
    *,
    time_limit_s: float = posters.DEFAULT_TIME_LIMIT_S,
    reoptimise: bool = False,
) -> posters.AssignmentResult | None:
    """Place newly accepted papers, drop departed ones, keep everyone else where they were.

    With ``reoptimise`` everyone may move to reduce author clashes: for chairs, before announcing.
    Once announced, a move other than a pin's raises AnnouncedConflict and nothing changes.
    """
    if not config.posters.sessions:
        return None
    day = schedule.Schedule.from_config(config)
    papers = [
        posters.PosterPaper(
            forum_id=p.forum_id,
            number=int(p.number or 0),
            author_keys=posters.author_keys(p.authors, p.authorids or None),
            keywords=tuple(p.keywords),
            talks=day.talk_spans(p.number, p.forum_id),
        )
        for p in models.accepted_papers(conn)
    ]
    known_sessions = {s.id for s in config.posters.sessions}
    current = queries.poster_places(conn)
    # Stability is measured against what the site shows (else the stored places, before any
    # push wrote files), and a paper moved automatically goes back home once it may.
    published = {f: posters.Placement(s, b) for f, (s, b) in current.items()}
    published.update(load_places(conn, POSTERS_PUBLISHED))
    how = announced(conn, config)
    if how is not None and reoptimise:
        raise UsageError(
            f"the poster places are announced ({how}); --reoptimise would move announced "
            "posters: pin the papers that must move with `orsync posters pin`"
        )
    homes = {} if how is not None else load_places(conn, POSTERS_HOMES)
    pins = queries.pins(conn)
    sessions = list(day.sessions)
    capacity = config.posters.boards_per_session
    start = posters.starting_places(papers, sessions, capacity, pins, published, homes)
    previous = {f: p for f, p in start.items() if p.session_id in known_sessions}
    result = posters.assign(
        papers,
        sessions,
        capacity,
        previous,
        pins,
        time_limit_s=time_limit_s,
        reoptimise=reoptimise,
    )
    # Moves as the chairs see them: against the published places, including papers whose
    # session was removed from the config (the solver treats those as new).
    result.moves = posters.explain_moves(
        papers,
        sessions,
        capacity,
        pins,
        published,
        homes,
        result.placements,
        day.zone(),
        reoptimise=reoptimise,
    )
    result.moved = [m.forum_id for m in result.moves]
    if how is not None:
        # Announced: only the chairs' own pins move a poster; anything else is their call.
        conflicts = [m for m in result.moves if m.cause != "pin"]
        if conflicts:
            raise AnnouncedConflict(conflicts, how)
    now = datetime.now(UTC)
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


def resolve_paper(conn: Connection, ref: str) -> tuple[str, int | None]:
    """A paper given as its number or forum id → (forum id, number)."""
    for paper in models.accepted_papers(conn):
        if ref == paper.forum_id or (ref.isdigit() and int(ref) == paper.number):
            return paper.forum_id, paper.number
    raise UsageError(
        f"paper {ref!r} is not an accepted paper in the store; give its number or forum id"
    )


@dataclass
class PinResult:
    forum_id: str
    number: int | None
    session_id: str | None
    was: str | None  # the session it was pinned to before, if any
    place: posters.Placement | None = None


def pin(config: Config, ref: str, session_id: str) -> PinResult:
    """Pin a paper to a session; the assignment moves it there now (or the pin is refused)."""
    if session_id not in {s.id for s in config.posters.sessions}:
        known = ", ".join(s.id for s in config.posters.sessions) or "none configured"
        raise UsageError(f"unknown poster session {session_id!r} (sessions: {known})")
    with (
        open_for(config) as store,
        store_writer(store, wait_s=600.0, command="posters pin"),
        store.begin() as conn,
    ):
        forum_id, number = resolve_paper(conn, ref)
        _refuse_talk_overlap(config, forum_id, number, session_id)
        was = queries.pin_of(conn, forum_id)
        conn.execute(delete(PIN).where(PIN.c.forum_id == forum_id))
        conn.execute(
            insert(PIN).values(
                forum_id=forum_id, session_id=session_id, pinned_at=datetime.now(UTC)
            )
        )
        sync_sessions(conn, config)
        try:
            assignment = update_assignment(conn, config)
        except posters.AssignmentError as exc:
            # Raised inside the transaction: the pin is rolled back, so say it is not made.
            label = f"#{number}" if number is not None else forum_id
            raise UsageError(
                f"paper {label} is not pinned to {session_id} (nothing changed): {exc.message}"
            ) from None
    place = assignment.placements.get(forum_id) if assignment else None
    return PinResult(forum_id, number, session_id, was, place)


def _refuse_talk_overlap(
    config: Config, forum_id: str, number: int | None, session_id: str
) -> None:
    """A pin into a session overlapping the paper's own talk could never hold: refused before
    anything is stored, naming the sessions it may go to."""
    day = schedule.Schedule.from_config(config)
    session = day.session(session_id)
    talks = day.talks_of(number, forum_id)
    if session is None or not talks:
        return
    clashing = [t for t in talks if schedule.overlaps(t.span, session.span)]
    if not clashing:
        return
    zone = day.zone()

    def hm(when: datetime) -> str:
        return when.astimezone(zone).strftime("%H:%M")

    talk = clashing[0]
    free = [s.id for s in day.sessions if not any(schedule.overlaps(t.span, s.span) for t in talks)]
    instead = f"pin it to {' or '.join(free)}, or" if free else "no session is free of its talk:"
    label = f"#{number}" if number is not None else forum_id
    raise UsageError(
        f"paper {label} is not pinned: poster session {session_id} "
        f"({hm(session.start)}-{hm(session.end)}) overlaps its contributed talk "
        f"{hm(talk.start)}-{hm(talk.end)} (talks[{talk.index + 1}]); {instead} move the talk first"
    )


def unpin(config: Config, ref: str) -> PinResult:
    """Release a pin; ``was`` is None when the paper was not pinned (nothing changes then)."""
    with (
        open_for(config) as store,
        store_writer(store, wait_s=600.0, command="posters unpin"),
        store.begin() as conn,
    ):
        forum_id, number = resolve_paper(conn, ref)
        was = queries.pin_of(conn, forum_id)
        conn.execute(delete(PIN).where(PIN.c.forum_id == forum_id))
    return PinResult(forum_id, number, None, was)
