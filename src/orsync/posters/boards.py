"""Stage 2: board numbers within each session, without a solver.

Papers that stay in their session keep their board; the others fill the lowest free boards as a
greedy keyword-similarity chain, so related papers stand side by side. A board-level CP model
(papers × boards) would be ~500k booleans at 2,000 papers, for a soft criterion; the chain costs
milliseconds and is trivially deterministic.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from orsync.posters.authors import normalise_text
from orsync.posters.data import Placement, PosterPaper, Session

# Boards are numbered from this one up, as printed on the stands.
FIRST_BOARD = 1


def keyword_set(p: PosterPaper) -> frozenset[str]:
    return frozenset(normalise_text(k) for k in p.keywords if k.strip())


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two keyword sets; 0 when either has none."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def free_boards(taken: set[int], count: int) -> list[int]:
    """The ``count`` lowest free numbers: capacity is already guaranteed by stage 1 and the
    kept boards."""
    boards: list[int] = []
    board = FIRST_BOARD - 1
    while len(boards) < count:
        board += 1
        if board not in taken:
            boards.append(board)
    return boards


def chain(
    newcomers: list[int],
    boards: list[int],
    occupied: dict[int, int],
    kw: Sequence[frozenset[str]],
) -> None:
    """Fill ``boards`` in ascending order, each with the newcomer most similar to its neighbours.

    Ties (and papers related to nobody) go by paper order, so the chain is deterministic.
    """
    remaining = list(newcomers)  # already in paper order
    by_kw: dict[str, set[int]] = defaultdict(set)
    for i in remaining:
        for k in kw[i]:
            by_kw[k].add(i)
    left = set(remaining)
    for board in boards:
        neighbours = [occupied[b] for b in (board - 1, board + 1) if b in occupied]
        candidates: set[int] = set()
        for nb in neighbours:
            for k in kw[nb]:
                candidates |= by_kw[k] & left
        best, best_score = remaining[0], 0.0
        for i in sorted(candidates):
            score = sum(similarity(kw[i], kw[nb]) for nb in neighbours)
            if score > best_score:
                best, best_score = i, score
        occupied[board] = best
        remaining.remove(best)
        left.discard(best)


def number_boards(
    papers: Sequence[PosterPaper],
    sessions: Sequence[Session],
    chosen: Sequence[int],
    capacity: int | None,
    previous: Mapping[str, Placement],
) -> dict[str, Placement]:
    """A board per paper in its chosen session; keyed by forum id, in paper order."""
    kw = [keyword_set(p) for p in papers]
    members: dict[int, list[int]] = defaultdict(list)
    for i, k in enumerate(chosen):
        members[k].append(i)
    placements: dict[str, Placement] = {}
    for k, idx in sorted(members.items()):
        occupied: dict[int, int] = {}
        newcomers: list[int] = []
        for i in idx:
            prev = previous.get(papers[i].forum_id)
            if (
                prev is not None
                and prev.session_id == sessions[k].id
                and prev.board >= FIRST_BOARD
                and (capacity is None or prev.board <= capacity)
                and prev.board not in occupied
            ):
                occupied[prev.board] = i
            else:
                newcomers.append(i)
        chain(newcomers, free_boards(set(occupied), len(newcomers)), occupied, kw)
        for board, i in occupied.items():
            placements[papers[i].forum_id] = Placement(sessions[k].id, board)
    # Paper order, so callers iterating the mapping get a stable, readable sequence.
    return {p.forum_id: placements[p.forum_id] for p in papers}
