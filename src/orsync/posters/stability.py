"""Stability (docs/workshop.md#the-poster-assignment): an announced paper keeps its session and board unless a hard rule
forces a move; late accepts fill the free boards."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orsync.posters.authors import Pair
from orsync.posters.data import Placement, PosterPaper
from orsync.posters.problem import Problem, reoptimise_weights, stable_weights


def valid_boards(
    papers: Sequence[PosterPaper],
    prev: Sequence[int | None],
    allowed: Sequence[Sequence[int]],
    capacity: int | None,
    previous: Mapping[str, Placement],
) -> list[bool]:
    """Per paper: may it keep its previous session *and* board under today's hard rules?

    The session must still exist and be allowed (pins, talks); the board must be within
    capacity and not claimed by an earlier paper (a corrupt store) — so the kept papers of a
    session never exceed its capacity.
    """
    taken: set[tuple[int, int]] = set()
    keep: list[bool] = []
    for i, p in enumerate(papers):
        k = prev[i]
        ok = False
        if k is not None and k in allowed[i]:
            board = previous[p.forum_id].board
            if board >= 1 and (capacity is None or board <= capacity) and (k, board) not in taken:
                taken.add((k, board))
                ok = True
        keep.append(ok)
    return keep


def stable_problem(
    n_sessions: int,
    capacity: int | None,
    allowed: list[list[int]],
    prev: list[int | None],
    keep: list[bool],
    pairs: list[Pair],
    groups: list[list[int]],
    *,
    free_all: bool,
) -> Problem:
    """Stability first: kept papers are fixed; the rest place by clashes, then balance.

    A paper that may keep its session but not its board (capacity shrank below its board, or a
    duplicate board) has that session as home, and leaving it outweighs every clash, so exactly
    the overflow leaves. ``free_all`` (the fallback when fixing the kept papers is infeasible)
    makes every kept paper merely prefer its home, so the fewest move.
    """
    n = len(allowed)
    home: list[int | None] = [None] * n
    allowed_now: list[list[int]] = []
    for i in range(n):
        k = prev[i]
        if keep[i] and not free_all:
            allowed_now.append([k] if k is not None else allowed[i])
            continue
        allowed_now.append(allowed[i])
        if k is not None and k in allowed[i]:
            home[i] = k
    fixed = [len(a) == 1 for a in allowed_now]
    variable_pairs = sum(1 for p in pairs if not (fixed[p.a] and fixed[p.b]))
    w_clash, w_move = stable_weights(n, variable_pairs)
    return Problem(n_sessions, capacity, allowed_now, home, pairs, groups, w_clash, w_move)


def reoptimise_problem(
    n_sessions: int,
    capacity: int | None,
    allowed: list[list[int]],
    prev: list[int | None],
    pairs: list[Pair],
    groups: list[list[int]],
) -> Problem:
    """Everyone may move: clashes first, then the fewest moves, then balance."""
    w_clash, w_move = reoptimise_weights(len(allowed))
    return Problem(n_sessions, capacity, allowed, list(prev), pairs, groups, w_clash, w_move)


def shortcut_ok(
    papers: Sequence[PosterPaper], previous: Mapping[str, Placement], keep: Sequence[bool]
) -> bool:
    """Nothing new and nothing forced: the previous assignment stands as it is."""
    return all(p.forum_id in previous for p in papers) and all(keep)
