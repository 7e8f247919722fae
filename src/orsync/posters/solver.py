"""The CP-SAT model of stage 1. The only module that imports OR-Tools: the package loads it
when a model is actually solved, so commands that only read the assignment never pay for it.

Model: ``x[p,s]`` only for the sessions a paper's talks and pin allow, exactly one per paper;
``y[pair]`` ≥ both papers in one session; session sizes within capacity with their max and min;
per-author pigeonhole cuts so the LP bound is useful; value precedence over interchangeable
sessions. Objective: ``Problem.score``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations, pairwise

from ortools.sat.python import cp_model

from orsync.posters.authors import min_pairs
from orsync.posters.data import AssignmentError
from orsync.posters.problem import Problem, Solved

# One worker and a deterministic-time limit give the same answer on every run: the parallel
# portfolio's answer depends on thread timing.
SOLVER_WORKERS = 1
# The least time the solver is given, even when the caller's budget is already spent.
MIN_SOLVE_TIME_S = 0.05


def symmetric_classes(pb: Problem) -> list[list[int]]:
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


def canonical(chosen: list[int], classes: Sequence[Sequence[int]]) -> list[int]:
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


def build_model(pb: Problem, classes: Sequence[Sequence[int]]) -> _Model:
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
        bound = min_pairs(len(members), reach)
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
    # The wall-clock limit is the caller's budget itself; when it fires before the deterministic
    # one, the answer may vary between runs.
    params.num_workers = SOLVER_WORKERS
    params.random_seed = seed
    params.max_deterministic_time = max(time_limit_s, MIN_SOLVE_TIME_S)
    params.max_time_in_seconds = max(time_limit_s, MIN_SOLVE_TIME_S)
    return solver


def solve(pb: Problem, start: list[int] | None, deadline: float, seed: int) -> Solved | None:
    """Sessions per paper from CP-SAT by ``deadline`` (perf_counter), hinted with ``start``;
    None when proven infeasible."""
    classes = symmetric_classes(pb)
    if start is not None:
        start = canonical(start, classes)
    built = build_model(pb, classes)
    time_limit_s = max(deadline - time.perf_counter(), MIN_SOLVE_TIME_S)
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
        return Solved(start, False, pb.score(start), bound)
    chosen = [next(k for k, v in sorted(xi.items()) if solver.boolean_value(v)) for xi in built.x]
    optimal = status == cp_model.OPTIMAL
    objective = pb.score(chosen)
    return Solved(chosen, optimal, objective, objective if optimal else bound)
