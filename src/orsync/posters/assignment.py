"""``assign``: the poster assignment end to end (docs/workshop.md#the-poster-assignment).

Stage 1 chooses a session per paper, lexicographically:
  (a) minimise the number of paper pairs that share an author *and* a session (zero whenever
      feasible, otherwise the proven minimum when the solver finishes in time);
  (b) with (a) fixed, minimise moves of previously placed papers, then session-size imbalance
      (the stable mode puts staying before (a); see ``stability``).
The heuristics (``heuristics``) answer first; CP-SAT (``solver``, imported only then) runs when
their answer is not provably optimal. Stage 2 (``boards``) numbers the boards.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from orsync.posters.authors import Pair, shared_author_pairs
from orsync.posters.boards import number_boards
from orsync.posters.data import (
    AssignmentError,
    AssignmentResult,
    Clash,
    Placement,
    PosterPaper,
    Session,
)
from orsync.posters.heuristics import first_solution
from orsync.posters.problem import Problem, Solved
from orsync.posters.remote import solve_in_child
from orsync.posters.stability import reoptimise_problem, shortcut_ok, stable_problem, valid_boards
from orsync.posters.validation import (
    INFEASIBLE,
    allowed_sessions,
    check_capacity,
    check_papers,
    check_sessions,
)

# The whole assignment's wall-clock budget when the caller names none, and the least it gets.
DEFAULT_TIME_LIMIT_S = 10.0
MIN_TIME_LIMIT_S = 0.1


def choose_sessions(pb: Problem, deadline: float, seed: int) -> Solved | None:
    """Sessions per paper by ``deadline`` (perf_counter); None when the hard rules cannot hold."""
    start = first_solution(pb, deadline)
    if start is not None and pb.score(start) <= pb.trivial_bound():
        # No clash, no avoidable move, sessions as even as they can be: nothing to prove. This
        # is the common realistic workshop, where the search would only confirm it.
        return Solved(start, True, pb.score(start), pb.score(start))
    # OR-Tools loads in a child process that exits after the solve (``remote``).
    return solve_in_child(pb, start, deadline, seed)


def clashes_of(
    papers: Sequence[PosterPaper], pairs: Sequence[Pair], placements: Mapping[str, Placement]
) -> list[Clash]:
    out = []
    for pair in pairs:
        a, b = papers[pair.a], papers[pair.b]
        sa = placements[a.forum_id].session_id
        if sa == placements[b.forum_id].session_id:
            out.append(Clash(sa, (a.forum_id, b.forum_id), pair.authors))
    return out


def assign(
    papers: Sequence[PosterPaper],
    sessions: Sequence[Session],
    capacity: int | None,
    previous: Mapping[str, Placement],
    pins: Mapping[str, str],
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    seed: int = 0,
    *,
    reoptimise: bool = False,
) -> AssignmentResult:
    """Place every paper in one session on one board (docs/workshop.md#the-poster-assignment); see the module docstring.

    By default a paper in ``previous`` keeps its session and board unless a hard rule forces a
    move (its session is gone, a pin or its talk says otherwise, or capacity shrank below its
    board); only new and forced papers are placed, by clashes with everyone, then balance.
    ``reoptimise=True`` re-solves everything with clashes first, then moves, then balance.

    ``previous`` entries for papers no longer given are ignored (their boards stay empty), and so
    are pins for such papers. ``time_limit_s`` caps the solver's wall-clock and deterministic
    time. Raises AssignmentError when the hard rules cannot hold.
    """
    started = time.perf_counter()
    check_sessions(sessions)
    check_papers(papers)
    if papers and not sessions:
        raise AssignmentError("no poster sessions configured; add [[posters.sessions]]")
    # Canonical order, so the result does not depend on how the caller listed things.
    papers = sorted(papers, key=lambda p: (p.number, p.forum_id))
    sessions = sorted(sessions, key=lambda s: (s.start, s.end, s.id))
    allowed = allowed_sessions(papers, sessions, pins)
    check_capacity(papers, sessions, capacity, allowed)
    if not papers:
        return AssignmentResult(
            {}, [], [], "optimal", 0.0, time.perf_counter() - started, None, None
        )

    index = {s.id: k for k, s in enumerate(sessions)}
    prev = [
        index.get(previous[p.forum_id].session_id) if p.forum_id in previous else None
        for p in papers
    ]
    pairs, groups = shared_author_pairs(papers)
    keep = valid_boards(papers, prev, allowed, capacity, previous)
    n_s = len(sessions)

    if not reoptimise and shortcut_ok(papers, previous, keep):
        # The everyday push: nothing new, nothing forced. No model; clashes by a scan.
        placements = {p.forum_id: previous[p.forum_id] for p in papers}
        chosen = [k for k in prev if k is not None]
        pb = stable_problem(n_s, capacity, allowed, prev, keep, pairs, groups, free_all=False)
        return AssignmentResult(
            placements=placements,
            clashes=clashes_of(papers, pairs, placements),
            moved=[],
            status="optimal",
            objective=pb.score(chosen),
            solve_time_s=time.perf_counter() - started,
            bound=None,
            gap=None,
        )

    deadline = started + max(time_limit_s, MIN_TIME_LIMIT_S)
    if reoptimise:
        pb = reoptimise_problem(n_s, capacity, allowed, prev, pairs, groups)
        solved = choose_sessions(pb, deadline, seed)
    else:
        pb = stable_problem(n_s, capacity, allowed, prev, keep, pairs, groups, free_all=False)
        solved = choose_sessions(pb, deadline, seed)
        if solved is None:
            # Fixing every kept paper leaves no room for the rest (talks, pins): move the fewest.
            pb = stable_problem(n_s, capacity, allowed, prev, keep, pairs, groups, free_all=True)
            solved = choose_sessions(pb, deadline, seed)
    if solved is None:
        raise AssignmentError(INFEASIBLE)
    placements = number_boards(papers, sessions, solved.chosen, capacity, previous)
    moved = [
        p.forum_id
        for p in papers
        if p.forum_id in previous and placements[p.forum_id] != previous[p.forum_id]
    ]
    gap = None
    if solved.bound is not None:
        gap = max(solved.objective - solved.bound, 0.0) / max(abs(solved.objective), 1.0)
    return AssignmentResult(
        placements=placements,
        clashes=clashes_of(papers, pairs, placements),
        moved=moved,
        status="optimal" if solved.optimal else "feasible",
        objective=solved.objective,
        solve_time_s=time.perf_counter() - started,
        bound=solved.bound,
        gap=gap,
    )
