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
from orsync.store import models, open_reader, open_store, queries
from orsync.store.queries import POSTERS_HOMES, POSTERS_PUBLISHED
from orsync.store.tables import ASSIGNMENT, PIN, SESSION

__all__ = [
    "PinResult",
    "pin",
    "resolve_paper",
    "sessions_of",
    "show",
    "sync_sessions",
    "talk_problems",
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


def talk_problems(config: Config, papers: list[models.AcceptedPaper]) -> list[str]:
    """Talks whose paper is not an accepted paper in the store: said, never silently ignored."""
    problems = []
    for talk in sorted(schedule.Schedule.from_config(config).talks, key=lambda t: t.index):
        if talk.paper is None:
            continue
        if not any(talk.presents(p.number, p.forum_id) for p in papers):
            written = config.talks[talk.index].paper
            problems.append(
                f"talks[{talk.index}] paper = {written!r} is not an accepted paper in the store "
                f"(talk at {talk.start.isoformat(timespec='minutes')}); its poster is placed "
                "without regard to the talk: fix the paper number or forum id"
            )
    return problems


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
        open_store(config.store.url) as store,
        store_writer(store, wait_s=600.0, command="posters pin"),
        store.begin() as conn,
    ):
        forum_id, number = resolve_paper(conn, ref)
        was = queries.pin_of(conn, forum_id)
        conn.execute(delete(PIN).where(PIN.c.forum_id == forum_id))
        conn.execute(
            insert(PIN).values(
                forum_id=forum_id, session_id=session_id, pinned_at=datetime.now(UTC)
            )
        )
        sync_sessions(conn, config)
        assignment = update_assignment(conn, config)
    place = assignment.placements.get(forum_id) if assignment else None
    return PinResult(forum_id, number, session_id, was, place)


def unpin(config: Config, ref: str) -> PinResult:
    """Release a pin; ``was`` is None when the paper was not pinned (nothing changes then)."""
    with (
        open_store(config.store.url) as store,
        store_writer(store, wait_s=600.0, command="posters unpin"),
        store.begin() as conn,
    ):
        forum_id, number = resolve_paper(conn, ref)
        was = queries.pin_of(conn, forum_id)
        conn.execute(delete(PIN).where(PIN.c.forum_id == forum_id))
    return PinResult(forum_id, number, None, was)


def show(config: Config) -> list[dict[str, Any]]:
    """``posters show``: each paper's place, pin and talk times, by session, board and number.

    The store's values as they are (the terminal makes them safe); the talks are the
    configured ones, not the decision text: what the chairs set is what they see.
    """
    with open_reader(config.store.url) as store, store.connect() as conn:
        papers = models.accepted_papers(conn)
        pins = queries.pins(conn)
    day = schedule.Schedule.from_config(config)
    rows: list[dict[str, Any]] = [
        {
            "session_id": p.session_id,
            "board": p.board,
            "number": p.number,
            "forum_id": p.forum_id,
            "title": p.title,
            "presentation": p.presentation,
            "pinned": pins.get(p.forum_id),
            "talk": ", ".join(
                start.strftime("%H:%M") for start, _ in day.talk_spans(p.number, p.forum_id)
            )
            or None,
        }
        for p in papers
    ]
    order = {s.id: i for i, s in enumerate(config.posters.sessions)}
    rows.sort(
        key=lambda r: (order.get(r["session_id"], len(order)), r["board"] or 0, r["number"] or 0)
    )
    return rows
