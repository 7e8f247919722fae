"""Stage 1 without a solver: a greedy start, single-move repair, and a tabu search.

A good first solution makes CP-SAT's job improvement rather than discovery, guarantees an answer
even when the solver finds nothing within its budget at 2,000 papers, and — on the common
realistic workshop — is already provably optimal, so no model is built at all.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from orsync.posters.problem import Problem

# Rounds of single-paper repair moves after the greedy; each round is one pass over the papers.
IMPROVE_ROUNDS = 20
# The tabu search's budget: this many iterations per paper, and at most this share of the time
# left (at workshop scale the iteration cap ends it first).
LOCAL_SEARCH_ITERATIONS_PER_PAPER = 10
LOCAL_SEARCH_TIME_SHARE = 0.25
# Its fixed seed (deterministic answers), the shortest tabu tenure (plus a random part up to the
# number of conflicted papers), and how many iterations go between two looks at the clock.
LOCAL_SEARCH_SEED = 12345
TABU_TENURE_MIN = 7
CLOCK_CHECK_EVERY = 64


def greedy(pb: Problem, adj: Sequence[Sequence[int]]) -> list[int] | None:
    """A session per paper, one paper at a time; None at a dead end (not proof of infeasibility:
    CP-SAT decides that)."""
    n = len(pb.allowed)
    size = [0] * pb.n_sessions
    chosen = [-1] * n
    stay_first = pb.stay_first
    # Fixed papers first, then those with a home (stability), then the most constrained, most
    # connected papers.
    order = sorted(
        range(n),
        key=lambda i: (
            len(pb.allowed[i]) > 1,
            pb.home[i] is None,
            len(pb.allowed[i]),
            -len(adj[i]),
            i,
        ),
    )
    for i in order:
        options = [k for k in pb.allowed[i] if size[k] < pb.cap()]
        if not options:
            return None

        def cost(k: int, i: int = i) -> tuple[int, int, int, int]:
            clash = sum(1 for j in adj[i] if chosen[j] == k)
            away = 0 if pb.home[i] == k else 1
            if stay_first:
                return (away, clash, size[k], k)
            return (clash, away, size[k], k)

        chosen[i] = min(options, key=cost)
        size[chosen[i]] += 1
    return chosen


def improve(pb: Problem, adj: Sequence[Sequence[int]], chosen: list[int]) -> list[int]:
    """Single-paper moves that reduce clashes, leaving papers in their home session alone."""
    size = [chosen.count(k) for k in range(pb.n_sessions)]
    for _ in range(IMPROVE_ROUNDS):
        improved = False
        for i in range(len(chosen)):
            if chosen[i] == pb.home[i] or len(pb.allowed[i]) == 1:
                continue
            here = sum(1 for j in adj[i] if chosen[j] == chosen[i])
            for k in pb.allowed[i]:
                if here == 0:
                    break
                if (
                    k == chosen[i]
                    or size[k] >= pb.cap()
                    or (pb.home[i] is not None and pb.stay_first)
                ):
                    continue
                there = sum(1 for j in adj[i] if chosen[j] == k)
                if there < here:
                    size[chosen[i]] -= 1
                    size[k] += 1
                    chosen[i], here, improved = k, there, True
        if not improved:
            break
    return chosen


def local_search(
    pb: Problem, adj: Sequence[Sequence[int]], chosen: list[int], max_iter: int, deadline: float
) -> list[int]:
    """Tabu search over single moves and swaps; deterministic (fixed seed, iteration budget).

    Finds most of the clash reduction in a fraction of a second, so CP-SAT starts from a strong
    hint and spends its time on the bound. ``deadline`` (perf_counter) is only a safety net.
    """
    n, n_s, cap = len(chosen), pb.n_sessions, pb.cap()
    rng = random.Random(LOCAL_SEARCH_SEED)
    cur = list(chosen)
    cnt = [[0] * n_s for _ in range(n)]
    for i in range(n):
        for j in adj[i]:
            cnt[i][cur[j]] += 1
    size = [0] * n_s
    for k in cur:
        size[k] += 1
    neighbour_sets = [set(a) for a in adj]
    movable = [i for i in range(n) if len(pb.allowed[i]) > 1]
    allowed_sets = [set(a) for a in pb.allowed]

    def away(i: int, k: int) -> int:
        h = pb.home[i]
        return 0 if h is None or h == k else 1

    def paper_delta(i: int, b: int) -> int:
        a = cur[i]
        return pb.w_clash * (cnt[i][b] - cnt[i][a]) + pb.w_move * (away(i, b) - away(i, a))

    def spread(sz: Sequence[int]) -> int:
        return max(sz) - min(sz)

    def tenure(conflicted: int) -> int:
        return TABU_TENURE_MIN + rng.randrange(max(conflicted, 1))

    score = pb.score(cur)
    best, best_score = list(cur), score
    tabu: dict[tuple[int, int], int] = {}

    def apply(i: int, b: int) -> None:
        a = cur[i]
        for j in adj[i]:
            cnt[j][a] -= 1
            cnt[j][b] += 1
        cur[i] = b
        size[a] -= 1
        size[b] += 1

    for it in range(max_iter):
        if it % CLOCK_CHECK_EVERY == 0 and time.perf_counter() > deadline:
            break
        conflicted = [i for i in movable if cnt[i][cur[i]] > 0]
        if not conflicted:
            break
        # Best leaver per (from b, to a) for swaps into full sessions.
        leaver: dict[tuple[int, int], tuple[int, int]] = {}
        for j in movable:
            b = cur[j]
            for a in pb.allowed[j]:
                if a == b or size[b] < cap:
                    continue
                d = paper_delta(j, a)
                if tabu.get((j, a), -1) >= it:
                    continue
                key = (b, a)
                if key not in leaver or d < leaver[key][0]:
                    leaver[key] = (d, j)
        chosen_move: tuple[int, int, int, int] | None = None  # (delta, i, b, j or -1)
        ties = 0
        for i in conflicted:
            a = cur[i]
            for b in pb.allowed[i]:
                if b == a:
                    continue
                d_i = paper_delta(i, b)
                if size[b] < cap:
                    sz = list(size)
                    sz[a] -= 1
                    sz[b] += 1
                    d = d_i + spread(sz) - spread(size)
                    j = -1
                else:
                    pick = leaver.get((b, a))
                    if pick is None:
                        continue
                    d_j, j = pick
                    if j == i or a not in allowed_sets[j]:
                        continue
                    d = d_i + d_j - (2 * pb.w_clash if j in neighbour_sets[i] else 0)
                is_tabu = tabu.get((i, b), -1) >= it
                if is_tabu and score + d >= best_score:
                    continue
                if chosen_move is None or d < chosen_move[0]:
                    chosen_move, ties = (d, i, b, j), 1
                elif d == chosen_move[0]:
                    ties += 1
                    if rng.randrange(ties) == 0:
                        chosen_move = (d, i, b, j)
        if chosen_move is None:
            break
        d, i, b, j = chosen_move
        a = cur[i]
        apply(i, b)
        tabu[(i, a)] = it + tenure(len(conflicted))
        if j >= 0:
            apply(j, a)
            tabu[(j, b)] = it + tenure(len(conflicted))
        score += d
        if score < best_score:
            best, best_score = list(cur), score
    return best


def first_solution(pb: Problem, deadline: float) -> list[int] | None:
    """Greedy, repaired, then searched; None when the greedy hits a dead end."""
    adj = pb.neighbours()
    start = greedy(pb, adj)
    if start is None:
        return None
    start = improve(pb, adj, start)
    ls_deadline = time.perf_counter() + (deadline - time.perf_counter()) * LOCAL_SEARCH_TIME_SHARE
    max_iter = LOCAL_SEARCH_ITERATIONS_PER_PAPER * len(start)
    return local_search(pb, adj, start, max_iter, ls_deadline)
