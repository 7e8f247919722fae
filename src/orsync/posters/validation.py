"""The hard rules checked before any search: sessions, papers, pins, talks and capacity.

Each refusal is an AssignmentError whose one-line message says what the chairs should change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from orsync.posters.data import AssignmentError, PosterPaper, Session
from orsync.schedule import overlaps

INFEASIBLE = (
    "no poster assignment satisfies capacity, talks and pins together; "
    "raise posters.boards_per_session, unpin papers or move talks"
)


def check_sessions(sessions: Sequence[Session]) -> None:
    seen: set[str] = set()
    for s in sessions:
        if s.id in seen:
            raise AssignmentError(f"poster session id {s.id!r} appears twice; make ids unique")
        seen.add(s.id)
        if s.start.tzinfo is None or s.end.tzinfo is None:
            raise AssignmentError(f"poster session {s.id!r} needs times with a UTC offset")
        if s.end <= s.start:
            raise AssignmentError(f"poster session {s.id!r} ends before it starts; fix its times")


def check_papers(papers: Sequence[PosterPaper]) -> None:
    seen: set[str] = set()
    for p in papers:
        if p.forum_id in seen:
            raise AssignmentError(f"paper {p.forum_id!r} is listed twice")
        seen.add(p.forum_id)
        for talk in p.talks:
            if talk[0].tzinfo is None or talk[1].tzinfo is None:
                raise AssignmentError(
                    f"talk of paper {p.number} needs times with a UTC offset; fix [[talks]]"
                )


def allowed_sessions(
    papers: Sequence[PosterPaper], sessions: Sequence[Session], pins: Mapping[str, str]
) -> list[list[int]]:
    """Per paper, the session indices its talks and pin allow."""
    index = {s.id: k for k, s in enumerate(sessions)}
    allowed: list[list[int]] = []
    for p in papers:
        free = [k for k, s in enumerate(sessions) if not any(overlaps(t, s.span) for t in p.talks)]
        pin = pins.get(p.forum_id)
        if pin is not None:
            if pin not in index:
                raise AssignmentError(
                    f"paper {p.number} is pinned to unknown session {pin!r}; "
                    "unpin it or add that session to [[posters.sessions]]"
                )
            if index[pin] not in free:
                raise AssignmentError(
                    f"paper {p.number} is pinned to session {pin!r}, which overlaps its talk; "
                    "unpin it or move the talk"
                )
            free = [index[pin]]
        if not free:
            raise AssignmentError(
                f"every poster session overlaps a talk of paper {p.number}; "
                "move the talk or add a session"
            )
        allowed.append(free)
    return allowed


def check_capacity(
    papers: Sequence[PosterPaper],
    sessions: Sequence[Session],
    capacity: int | None,
    allowed: Sequence[Sequence[int]],
) -> None:
    if capacity is None:
        return
    if capacity < 1:
        raise AssignmentError("posters.boards_per_session must be at least 1")
    boards = capacity * len(sessions)
    if len(papers) > boards:
        needed = -(-len(papers) // max(len(sessions), 1))
        raise AssignmentError(
            f"{len(papers)} posters do not fit {len(sessions)} sessions × {capacity} boards "
            f"({len(papers) - boards} boards short); raise posters.boards_per_session to at "
            f"least {needed} or add a session"
        )
    forced: dict[int, int] = defaultdict(int)
    for choices in allowed:
        if len(choices) == 1:
            forced[choices[0]] += 1
    for k, count in sorted(forced.items()):
        if count > capacity:
            raise AssignmentError(
                f"{count} posters are pinned (or forced by talks) into session "
                f"{sessions[k].id!r}, which has {capacity} boards; unpin some or raise "
                "posters.boards_per_session"
            )
