"""Stage 1 as data: the sessions each paper may take, and the weighted objective to minimise.

``w_clash * clashes + w_move * (papers with a home not in it) + (largest - smallest session)``.
The weights make the sum lexicographic: each criterion outweighs everything after it, so the
order of the criteria is the order of the weights. Both the heuristics and the CP-SAT model
minimise this very score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orsync.posters.authors import Pair


def imbalance_ceiling(n_papers: int) -> int:
    """The largest possible session-size spread: every paper in one session."""
    return n_papers


def stable_weights(n_papers: int, variable_pairs: int) -> tuple[int, int]:
    """(w_clash, w_move) for the everyday push: staying first, then clashes, then balance.

    One clash outweighs any imbalance; one move outweighs every clash that can still vary.
    """
    w_clash = imbalance_ceiling(n_papers) + 1
    return w_clash, w_clash * (variable_pairs + 1)


def reoptimise_weights(n_papers: int) -> tuple[int, int]:
    """(w_clash, w_move) for a deliberate re-solve: clashes first, then moves, then balance.

    One move outweighs any imbalance; one clash outweighs every possible move (at most n).
    """
    w_move = imbalance_ceiling(n_papers) + 1
    return w_move * (n_papers + 1), w_move


@dataclass
class Problem:
    """A paper with a single allowed session is fixed; ``home`` is the session a paper should
    stay in when it can (its previous one)."""

    n_sessions: int
    capacity: int | None
    allowed: list[list[int]]
    home: list[int | None]
    pairs: list[Pair]
    groups: list[list[int]]
    w_clash: int
    w_move: int

    def neighbours(self) -> list[list[int]]:
        adj: list[list[int]] = [[] for _ in self.allowed]
        for pair in self.pairs:
            adj[pair.a].append(pair.b)
            adj[pair.b].append(pair.a)
        return adj

    def cap(self) -> int:
        return self.capacity if self.capacity is not None else len(self.allowed)

    @property
    def stay_first(self) -> bool:
        """Whether leaving home costs more than a clash (the stable mode)."""
        return self.w_move > self.w_clash

    def trivial_bound(self) -> float:
        """No clash, only unavoidable moves, and sizes differing by one only if n % sessions."""
        forced = sum(
            1 for i, k in enumerate(self.home) if k is not None and k not in self.allowed[i]
        )
        return float(self.w_move * forced + (1 if len(self.allowed) % self.n_sessions else 0))

    def score(self, chosen: Sequence[int]) -> float:
        """The solver's objective for ``chosen``, so it also holds for the heuristic answer."""
        sizes = [0] * self.n_sessions
        for k in chosen:
            sizes[k] += 1
        clashes = sum(1 for p in self.pairs if chosen[p.a] == chosen[p.b])
        moves = sum(1 for i, k in enumerate(self.home) if k is not None and chosen[i] != k)
        return float(self.w_clash * clashes + self.w_move * moves + max(sizes) - min(sizes))


@dataclass
class Solved:
    """Stage 1's answer: a session index per paper, and how good it is known to be."""

    chosen: list[int]
    optimal: bool
    objective: float
    bound: float | None
