"""Moves of published posters (docs/workshop.md#moves-of-published-posters): where each paper
should start from, and why each one that the site already shows moved.

Two places per paper matter besides the one being computed: the place the site shows now
(``published``) and its ``home``, the place the chairs consented to (its first publication, a
pin, a deliberate re-optimisation). An automatic move (a talk now overlapping, capacity) leaves
the home as it was, so undoing the change that forced the move brings the paper back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import tzinfo

from orsync.posters.data import Move, Placement, PosterPaper, Session
from orsync.posters.validation import allowed_sessions
from orsync.schedule import overlaps

__all__ = ["CONSENTED", "explain_moves", "starting_places"]

# Causes of a move that the chairs asked for: the paper's new place becomes its home.
CONSENTED = frozenset({"pin", "reoptimise"})


def _allowed_ids(
    papers: Sequence[PosterPaper], sessions: Sequence[Session], pins: Mapping[str, str]
) -> dict[str, set[str]]:
    allowed = allowed_sessions(papers, sessions, pins)
    return {p.forum_id: {sessions[k].id for k in ks} for p, ks in zip(papers, allowed, strict=True)}


def starting_places(
    papers: Sequence[PosterPaper],
    sessions: Sequence[Session],
    capacity: int | None,
    pins: Mapping[str, str],
    published: Mapping[str, Placement],
    homes: Mapping[str, Placement],
) -> dict[str, Placement]:
    """The places the assignment keeps papers in: the published ones, except that a paper an
    automatic move took away from home goes back once home is allowed and free again.

    A home is free when no paper holds that board, or when its holder is itself going home:
    so a chain of moves undoes as a chain. Raises AssignmentError on a bad pin, as ``assign``.
    """
    present = {p.forum_id for p in papers}
    start = {f: place for f, place in published.items() if f in present}
    away = {f for f, home in homes.items() if f in start and start[f] != home}
    if not away:
        return start
    allowed = _allowed_ids(papers, sessions, pins)
    changed = True
    while changed:
        changed = False
        held = {place: fid for fid, place in start.items()}
        for fid in sorted(away):
            home = homes[fid]
            fits = capacity is None or home.board <= capacity
            if home.session_id not in allowed.get(fid, set()) or not fits or home in held:
                continue
            del held[start[fid]]
            start[fid] = home
            held[home] = fid
            away.discard(fid)
            changed = True
    return start


def explain_moves(
    papers: Sequence[PosterPaper],
    sessions: Sequence[Session],
    capacity: int | None,
    pins: Mapping[str, str],
    published: Mapping[str, Placement],
    homes: Mapping[str, Placement],
    placements: Mapping[str, Placement],
    zone: tzinfo,
    *,
    reoptimise: bool = False,
) -> list[Move]:
    """Each paper whose place differs from the published one, with the rule that moved it, in
    the order of the new places."""
    by_id = {s.id: s for s in sessions}
    keys = {p.forum_id: set(p.author_keys) for p in papers}
    numbers = {p.forum_id: p.number for p in papers}
    moves = []
    for p in papers:
        src, dst = published.get(p.forum_id), placements.get(p.forum_id)
        if src is None or dst is None or src == dst:
            continue
        session = by_id.get(src.session_id)
        pin = pins.get(p.forum_id)
        talks = [t for t in p.talks if session is not None and overlaps(t, session.span)]
        cause, reason = "room", f"{src.session_id} needed its board"
        # A pin that put it where it is now is the chairs' decision, whatever else changed.
        if pin is not None and pin != src.session_id and pin == dst.session_id:
            cause, reason = "pin", f"it is pinned to {pin}"
        elif session is None:
            cause, reason = "session_removed", f"session {src.session_id} is no longer configured"
        elif talks:
            when = talks[0][0].astimezone(zone).strftime("%H:%M")
            cause, reason = "talk", f"its talk at {when} overlaps {src.session_id}"
        elif capacity is not None and src.board > capacity:
            cause = "capacity"
            reason = f"board {src.board} is beyond posters.boards_per_session = {capacity}"
        elif homes.get(p.forum_id) == dst:
            cause = "restored"
            reason = f"{dst.session_id}/{dst.board} is its published place and the rule that moved it is gone"
        elif reoptimise:
            cause, reason = "reoptimise", "posters assign --reoptimise puts co-authors apart"
        else:
            mates = sorted(
                numbers[f]
                for f, place in placements.items()
                if f != p.forum_id
                and place.session_id == src.session_id
                and keys.get(f, set()) & keys[p.forum_id]
            )
            if mates:
                cause = "clash"
                reason = f"it would share an author with #{mates[0]} in {src.session_id}"
        moves.append(Move(p.forum_id, p.number, src, dst, cause, reason))
    return sorted(moves, key=lambda m: (m.target.session_id, m.target.board, m.forum_id))
