"""Poster assignment (SPEC §6.2): sessions by CP-SAT, boards by a deterministic second stage.

Stage 1 chooses a session per paper with CP-SAT, lexicographically:
  (a) minimise the number of paper pairs that share an author *and* a session (zero whenever
      feasible, otherwise the proven minimum when the solver finishes in time);
  (b) with (a) fixed, minimise moves of previously placed papers, then session-size imbalance.
Stage 2 numbers boards without a solver: papers that stay in their session keep their board, and
the others fill the free boards as a greedy keyword-similarity chain. A board-level CP model
(papers × boards) would be ~500k booleans at 2,000 papers, for a soft criterion; the chain costs
milliseconds and is trivially deterministic.
"""

from __future__ import annotations

import random
import re
import time
import unicodedata
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations, pairwise

from ortools.sat.python import cp_model

from orsync.errors import EXIT_USAGE, OrsyncError

__all__ = [
    "AssignmentError",
    "AssignmentResult",
    "Clash",
    "Placement",
    "PosterPaper",
    "Session",
    "assign",
    "author_keys",
]


@dataclass(frozen=True)
class Session:
    id: str
    name: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class PosterPaper:
    forum_id: str
    number: int
    author_keys: tuple[str, ...]
    keywords: tuple[str, ...]
    talks: tuple[tuple[datetime, datetime], ...] = ()


@dataclass(frozen=True)
class Placement:
    session_id: str
    board: int


@dataclass(frozen=True)
class Clash:
    session_id: str
    forum_ids: tuple[str, str]
    authors: tuple[str, ...]


@dataclass
class AssignmentResult:
    placements: dict[str, Placement]
    clashes: list[Clash]
    moved: list[str]
    status: str
    objective: float
    solve_time_s: float
    # CP-SAT's best bound on ``objective`` and the relative gap (objective - bound) / objective
    # when a solver ran; None for the no-change shortcut, which builds no model.
    bound: float | None = None
    gap: float | None = None


class AssignmentError(OrsyncError):
    """No assignment satisfies the hard rules; the message says what to change."""

    exit_code = EXIT_USAGE


# --------------------------------------------------------------------------- author keys

_WS = re.compile(r"\s+")


def _normalise_name(name: str) -> str:
    # NFKD splits "é" into "e" + combining accent so the accent can be dropped; NFKC afterwards
    # folds compatibility forms (full-width letters, ligatures) the same way for every spelling.
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _WS.sub(" ", unicodedata.normalize("NFKC", stripped).casefold()).strip()


def author_keys(authors: Sequence[str], authorids: Sequence[str] | None) -> tuple[str, ...]:
    """One identity key per author: the profile id (``~Name1``) when known, else the name.

    Emails are not used as identities: the same person signs with several addresses, and an
    email is private data that has no business in a clash report.
    """
    ids = list(authorids or [])
    keys: list[str] = []
    for i, name in enumerate(authors):
        aid = ids[i].strip() if i < len(ids) and ids[i] else ""
        key = aid if aid.startswith("~") else _normalise_name(name)
        if key and key not in keys:
            keys.append(key)
    return tuple(keys)


# --------------------------------------------------------------------------- validation


def _overlaps(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    # Half-open intervals: a talk ending at 12:00 does not overlap a session starting at 12:00.
    return a[0] < b[1] and b[0] < a[1]


def _check_sessions(sessions: Sequence[Session]) -> None:
    seen: set[str] = set()
    for s in sessions:
        if s.id in seen:
            raise AssignmentError(f"poster session id {s.id!r} appears twice; make ids unique")
        seen.add(s.id)
        if s.start.tzinfo is None or s.end.tzinfo is None:
            raise AssignmentError(f"poster session {s.id!r} needs times with a UTC offset")
        if s.end <= s.start:
            raise AssignmentError(f"poster session {s.id!r} ends before it starts; fix its times")


def _check_papers(papers: Sequence[PosterPaper]) -> None:
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


def _allowed_sessions(
    papers: Sequence[PosterPaper], sessions: Sequence[Session], pins: Mapping[str, str]
) -> list[list[int]]:
    """Per paper, the session indices its talks and pin allow."""
    index = {s.id: k for k, s in enumerate(sessions)}
    allowed: list[list[int]] = []
    for p in papers:
        free = [
            k
            for k, s in enumerate(sessions)
            if not any(_overlaps(t, (s.start, s.end)) for t in p.talks)
        ]
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


def _check_capacity(
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


# --------------------------------------------------------------------------- stage 1: sessions

_INFEASIBLE = (
    "no poster assignment satisfies capacity, talks and pins together; "
    "raise posters.boards_per_session, unpin papers or move talks"
)


@dataclass(frozen=True)
class _Pair:
    a: int
    b: int
    authors: tuple[str, ...]


def _shared_author_pairs(papers: Sequence[PosterPaper]) -> tuple[list[_Pair], list[list[int]]]:
    """Paper pairs sharing an author, and per author the papers they are on (for cuts)."""
    by_author: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(papers):
        for key in p.author_keys:
            by_author[key].append(i)
    shared: dict[tuple[int, int], list[str]] = defaultdict(list)
    groups: list[list[int]] = []
    for key in sorted(by_author):
        members = sorted(set(by_author[key]))
        if len(members) < 2:
            continue
        groups.append(members)
        for a, b in combinations(members, 2):
            shared[(a, b)].append(key)
    pairs = [_Pair(a, b, tuple(sorted(keys))) for (a, b), keys in sorted(shared.items())]
    return pairs, groups


def _min_pairs(n: int, k: int) -> int:
    """Fewest same-session pairs when n papers of one author spread over k sessions."""
    q, r = divmod(n, k)
    return r * (q + 1) * q // 2 + (k - r) * q * (q - 1) // 2


@dataclass
class _Problem:
    """Stage 1 as data: the allowed sessions per paper and a weighted lexicographic objective.

    ``w_clash * clashes + w_move * (papers with a home not in it) + (largest - smallest session)``.
    A paper with a single allowed session is fixed; ``home`` is the session a paper should stay
    in when it can (its previous one). The weights order the criteria: reoptimising puts clashes
    first, the stable mode puts staying first.
    """

    n_sessions: int
    capacity: int | None
    allowed: list[list[int]]
    home: list[int | None]
    pairs: list[_Pair]
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


# A good first solution makes CP-SAT's job improvement rather than discovery, and guarantees an
# answer even when the solver finds nothing within its budget at 2,000 papers.


def _greedy(pb: _Problem, adj: Sequence[Sequence[int]]) -> list[int] | None:
    n = len(pb.allowed)
    size = [0] * pb.n_sessions
    chosen = [-1] * n
    stay_first = pb.w_move > pb.w_clash
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
            return None  # a dead end for the greedy, not proof of infeasibility: CP-SAT decides

        def cost(k: int, i: int = i) -> tuple[int, int, int, int]:
            clash = sum(1 for j in adj[i] if chosen[j] == k)
            away = 0 if pb.home[i] == k else 1
            if stay_first:
                return (away, clash, size[k], k)
            return (clash, away, size[k], k)

        chosen[i] = min(options, key=cost)
        size[chosen[i]] += 1
    return chosen


def _improve(pb: _Problem, adj: Sequence[Sequence[int]], chosen: list[int]) -> list[int]:
    """Single-paper moves that reduce clashes, leaving papers in their home session alone."""
    size = [chosen.count(k) for k in range(pb.n_sessions)]
    for _ in range(20):
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
                    or (pb.home[i] is not None and pb.w_move > pb.w_clash)
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


def _local_search(
    pb: _Problem, adj: Sequence[Sequence[int]], chosen: list[int], max_iter: int, deadline: float
) -> list[int]:
    """Tabu search over single moves and swaps; deterministic (fixed seed, iteration budget).

    Finds most of the clash reduction in a fraction of a second, so CP-SAT starts from a strong
    hint and spends its time on the bound. ``deadline`` (perf_counter) is only a safety net.
    """
    n, n_s, cap = len(chosen), pb.n_sessions, pb.cap()
    rng = random.Random(12345)
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
        if it % 64 == 0 and time.perf_counter() > deadline:
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
        tabu[(i, a)] = it + 7 + rng.randrange(max(len(conflicted), 1))
        if j >= 0:
            apply(j, a)
            tabu[(j, b)] = it + 7 + rng.randrange(max(len(conflicted), 1))
        score += d
        if score < best_score:
            best, best_score = list(cur), score
    return best


def _symmetric_classes(pb: _Problem) -> list[list[int]]:
    """Groups of interchangeable sessions: same papers allowed, nobody's home.

    Capacity is one number for all sessions, so swapping two such sessions in any assignment
    gives another one with the same objective; only one of each orbit needs searching.
    """
    homes = {k for k in pb.home if k is not None}
    signature: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for k in range(pb.n_sessions):
        if k in homes:
            continue
        sig = tuple(i for i, allowed in enumerate(pb.allowed) if k in allowed)
        signature[sig].append(k)
    return [ks for sig, ks in sorted(signature.items(), key=lambda e: e[1]) if len(ks) > 1 and sig]


def _canonical(pb: _Problem, chosen: list[int], classes: Sequence[Sequence[int]]) -> list[int]:
    """Relabel the sessions of each class in order of their smallest paper (value precedence)."""
    out = list(chosen)
    for ks in classes:
        members = set(ks)
        order: list[int] = []
        for k in chosen:
            if k in members and k not in order:
                order.append(k)
        order += [k for k in ks if k not in order]
        relabel = dict(zip(order, ks, strict=True))
        out = [relabel.get(k, k) for k in out]
    return out


@dataclass
class _Model:
    model: cp_model.CpModel
    x: list[dict[int, cp_model.IntVar]]


def _build_model(pb: _Problem, classes: Sequence[Sequence[int]]) -> _Model:
    m = cp_model.CpModel()
    n = len(pb.allowed)
    x = [{k: m.new_bool_var(f"x{i}_{k}") for k in pb.allowed[i]} for i in range(n)]
    for xi in x:
        m.add_exactly_one(xi.values())

    sizes = []
    for k in range(pb.n_sessions):
        size = m.new_int_var(0, min(n, pb.cap()), f"size{k}")
        m.add(size == sum(xi[k] for xi in x if k in xi))
        sizes.append(size)
    hi = m.new_int_var(0, n, "hi")
    lo = m.new_int_var(0, n, "lo")
    m.add_max_equality(hi, sizes)
    m.add_min_equality(lo, sizes)

    y: dict[tuple[int, int], cp_model.IntVar] = {}
    for pair in pb.pairs:
        common = sorted(set(pb.allowed[pair.a]) & set(pb.allowed[pair.b]))
        if not common:
            continue
        yv = m.new_bool_var(f"y{pair.a}_{pair.b}")
        y[(pair.a, pair.b)] = yv
        for k in common:
            m.add_bool_or([x[pair.a][k].Not(), x[pair.b][k].Not(), yv])
    # The pair clauses alone have a useless LP bound (x = 1/k everywhere gives y = 0). Per author
    # and session, the pairs inside are at least T(c) = c(c-1)/2 for c = that author's papers
    # there; T is convex, so its secant lines t*c - t(t+1)/2 are exact at integers and give the
    # LP the pigeonhole bound at the root and a bound that tightens as the search fixes papers.
    for g, members in enumerate(pb.groups):
        group_y = [y[p] for p in combinations(members, 2) if p in y]
        if not group_y:
            continue
        reach = len(set().union(*(pb.allowed[i] for i in members)))
        bound = _min_pairs(len(members), reach)
        if bound:
            m.add(sum(group_y) >= bound)
        if len(members) < 3:
            continue  # for two papers the cut is the pair clause itself
        parts = []
        for k in range(pb.n_sessions):
            here = [x[i][k] for i in members if k in x[i]]
            if len(here) < 3:
                # up to two papers: T(c) is c - 1 clipped at 0, the clause already says so
                if len(here) == 2:
                    parts.append(here[0] + here[1] - 1)
                continue
            t_var = m.new_int_var(0, len(here) * (len(here) - 1) // 2, f"t{g}_{k}")
            count = sum(here)
            # Only the two lines around an even spread: all c - 1 lines made the 65-paper bench
            # 3x slower for the same bound at 150.
            q = len(members) // max(reach, 1)
            for t in (q, q + 1):
                if not 1 <= t < len(here):
                    continue
                m.add(t_var >= t * count - t * (t + 1) // 2)
            parts.append(t_var)
        if parts:
            m.add(sum(group_y) >= sum(parts))

    # Interchangeable sessions: the session holding the first eligible paper comes first in its
    # class, and so on (value precedence), which cuts the k! relabelings of every solution.
    for ks in classes:
        eligible = [i for i in range(n) if ks[0] in x[i]]
        for k_prev, k_next in pairwise(ks):
            seen: cp_model.IntVar | None = None
            for i in eligible:
                if seen is None:
                    m.add(x[i][k_next] == 0)
                else:
                    m.add_implication(x[i][k_next], seen)
                nxt = m.new_bool_var(f"seen{k_prev}_{i}")
                if seen is None:
                    m.add(nxt == x[i][k_prev])
                else:
                    m.add_max_equality(nxt, [seen, x[i][k_prev]])
                seen = nxt

    moves = sum(1 - x[i][k] if k in x[i] else 1 for i, k in enumerate(pb.home) if k is not None)
    m.minimize(pb.w_clash * sum(y.values()) + pb.w_move * moves + (hi - lo))
    return _Model(m, x)


def _solver(time_limit_s: float, seed: int) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    params = solver.parameters
    # One worker and a deterministic-time limit give the same answer on every run: the parallel
    # portfolio's answer depends on thread timing. The wall-clock limit is the caller's budget
    # itself; when it fires before the deterministic one, the answer may vary between runs.
    params.num_workers = 1
    params.random_seed = seed
    params.max_deterministic_time = max(time_limit_s, 0.05)
    params.max_time_in_seconds = max(time_limit_s, 0.05)
    return solver


@dataclass
class _Solved:
    chosen: list[int]
    optimal: bool
    objective: float
    bound: float | None


def _choose_sessions(pb: _Problem, deadline: float, seed: int) -> _Solved | None:
    """Sessions per paper by ``deadline`` (perf_counter); None when the hard rules cannot hold."""
    adj = pb.neighbours()
    greedy = _greedy(pb, adj)
    start = _improve(pb, adj, greedy) if greedy is not None else None
    if start is not None:
        # A quarter of the budget at most; at workshop scale the iteration cap ends it first.
        ls_deadline = time.perf_counter() + (deadline - time.perf_counter()) / 4
        start = _local_search(pb, adj, start, 10 * len(start), ls_deadline)
    if start is not None and pb.score(start) <= pb.trivial_bound():
        # No clash, no avoidable move, sessions as even as they can be: nothing to prove. This
        # is the common realistic workshop, where the search would only confirm it.
        return _Solved(start, True, pb.score(start), pb.score(start))
    classes = _symmetric_classes(pb)
    if start is not None:
        start = _canonical(pb, start, classes)
    built = _build_model(pb, classes)
    time_limit_s = max(deadline - time.perf_counter(), 0.05)
    if start is not None:
        for xi, k in zip(built.x, start, strict=True):
            for kk, var in xi.items():
                built.model.add_hint(var, kk == k)
    solver = _solver(time_limit_s, seed)
    status = solver.solve(built.model)
    if status == cp_model.INFEASIBLE:
        return None
    bound = float(solver.best_objective_bound)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        if start is None:
            raise AssignmentError(
                f"no poster assignment found within {time_limit_s:g} s; raise the time limit"
            )
        return _Solved(start, False, pb.score(start), bound)
    chosen = [next(k for k, v in sorted(xi.items()) if solver.boolean_value(v)) for xi in built.x]
    optimal = status == cp_model.OPTIMAL
    objective = pb.score(chosen)
    return _Solved(chosen, optimal, objective, objective if optimal else bound)


# --------------------------------------------------------------------------- stage 2: boards


def _keyword_set(p: PosterPaper) -> frozenset[str]:
    return frozenset(_WS.sub(" ", k.casefold()).strip() for k in p.keywords if k.strip())


def _similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _free_boards(taken: set[int], count: int) -> list[int]:
    # The lowest free numbers: capacity is already guaranteed by stage 1 and the kept boards.
    boards: list[int] = []
    board = 0
    while len(boards) < count:
        board += 1
        if board not in taken:
            boards.append(board)
    return boards


def _chain(
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
            score = sum(_similarity(kw[i], kw[nb]) for nb in neighbours)
            if score > best_score:
                best, best_score = i, score
        occupied[board] = best
        remaining.remove(best)
        left.discard(best)


def _number_boards(
    papers: Sequence[PosterPaper],
    sessions: Sequence[Session],
    chosen: Sequence[int],
    capacity: int | None,
    previous: Mapping[str, Placement],
) -> dict[str, Placement]:
    kw = [_keyword_set(p) for p in papers]
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
                and prev.board >= 1
                and (capacity is None or prev.board <= capacity)
                and prev.board not in occupied
            ):
                occupied[prev.board] = i
            else:
                newcomers.append(i)
        _chain(newcomers, _free_boards(set(occupied), len(newcomers)), occupied, kw)
        for board, i in occupied.items():
            placements[papers[i].forum_id] = Placement(sessions[k].id, board)
    # Paper order, so callers iterating the mapping get a stable, readable sequence.
    return {p.forum_id: placements[p.forum_id] for p in papers}


# --------------------------------------------------------------------------- result


def _clashes(
    papers: Sequence[PosterPaper], pairs: Sequence[_Pair], placements: Mapping[str, Placement]
) -> list[Clash]:
    out = []
    for pair in pairs:
        a, b = papers[pair.a], papers[pair.b]
        sa = placements[a.forum_id].session_id
        if sa == placements[b.forum_id].session_id:
            out.append(Clash(sa, (a.forum_id, b.forum_id), pair.authors))
    return out


def _valid_boards(
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


def _stable_problem(
    n_sessions: int,
    capacity: int | None,
    allowed: list[list[int]],
    prev: list[int | None],
    keep: list[bool],
    pairs: list[_Pair],
    groups: list[list[int]],
    *,
    free_all: bool,
) -> _Problem:
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
    w_clash = n + 1  # one clash outweighs any imbalance (at most n)
    w_move = w_clash * (variable_pairs + 1)  # one move outweighs every clash that can vary
    return _Problem(n_sessions, capacity, allowed_now, home, pairs, groups, w_clash, w_move)


def _shortcut_ok(
    papers: Sequence[PosterPaper], previous: Mapping[str, Placement], keep: Sequence[bool]
) -> bool:
    return all(p.forum_id in previous for p in papers) and all(keep)


def assign(
    papers: Sequence[PosterPaper],
    sessions: Sequence[Session],
    capacity: int | None,
    previous: Mapping[str, Placement],
    pins: Mapping[str, str],
    time_limit_s: float = 10.0,
    seed: int = 0,
    *,
    reoptimise: bool = False,
) -> AssignmentResult:
    """Place every paper in one session on one board (SPEC §6.2); see the module docstring.

    By default a paper in ``previous`` keeps its session and board unless a hard rule forces a
    move (its session is gone, a pin or its talk says otherwise, or capacity shrank below its
    board); only new and forced papers are placed, by clashes with everyone, then balance.
    ``reoptimise=True`` re-solves everything with clashes first, then moves, then balance.

    ``previous`` entries for papers no longer given are ignored (their boards stay empty), and so
    are pins for such papers. ``time_limit_s`` caps the solver's wall-clock and deterministic
    time. Raises AssignmentError when the hard rules cannot hold.
    """
    started = time.perf_counter()
    _check_sessions(sessions)
    _check_papers(papers)
    if papers and not sessions:
        raise AssignmentError("no poster sessions configured; add [[posters.sessions]]")
    # Canonical order, so the result does not depend on how the caller listed things.
    papers = sorted(papers, key=lambda p: (p.number, p.forum_id))
    sessions = sorted(sessions, key=lambda s: (s.start, s.end, s.id))
    allowed = _allowed_sessions(papers, sessions, pins)
    _check_capacity(papers, sessions, capacity, allowed)
    if not papers:
        return AssignmentResult(
            {}, [], [], "optimal", 0.0, time.perf_counter() - started, None, None
        )

    index = {s.id: k for k, s in enumerate(sessions)}
    prev = [
        index.get(previous[p.forum_id].session_id) if p.forum_id in previous else None
        for p in papers
    ]
    pairs, groups = _shared_author_pairs(papers)
    keep = _valid_boards(papers, prev, allowed, capacity, previous)
    n_s = len(sessions)

    if not reoptimise and _shortcut_ok(papers, previous, keep):
        # The everyday push: nothing new, nothing forced. No model; clashes by a scan.
        placements = {p.forum_id: previous[p.forum_id] for p in papers}
        chosen = [k for k in prev if k is not None]
        pb = _stable_problem(n_s, capacity, allowed, prev, keep, pairs, groups, free_all=False)
        return AssignmentResult(
            placements=placements,
            clashes=_clashes(papers, pairs, placements),
            moved=[],
            status="optimal",
            objective=pb.score(chosen),
            solve_time_s=time.perf_counter() - started,
            bound=None,
            gap=None,
        )

    deadline = started + max(time_limit_s, 0.1)
    if reoptimise:
        n = len(papers)
        pb = _Problem(n_s, capacity, allowed, list(prev), pairs, groups, (n + 1) ** 2, n + 1)
        solved = _choose_sessions(pb, deadline, seed)
    else:
        pb = _stable_problem(n_s, capacity, allowed, prev, keep, pairs, groups, free_all=False)
        solved = _choose_sessions(pb, deadline, seed)
        if solved is None:
            # Fixing every kept paper leaves no room for the rest (talks, pins): move the fewest.
            pb = _stable_problem(n_s, capacity, allowed, prev, keep, pairs, groups, free_all=True)
            solved = _choose_sessions(pb, deadline, seed)
    if solved is None:
        raise AssignmentError(_INFEASIBLE)
    placements = _number_boards(papers, sessions, solved.chosen, capacity, previous)
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
        clashes=_clashes(papers, pairs, placements),
        moved=moved,
        status="optimal" if solved.optimal else "feasible",
        objective=solved.objective,
        solve_time_s=time.perf_counter() - started,
        bound=solved.bound,
        gap=gap,
    )
