"""CP-SAT in a child process (``python -m orsync.posters``), the problem and its answer as JSON
on pipes (docs/workshop.md#the-poster-assignment).

OR-Tools takes about 76 MiB once loaded and never gives it back; the service solves a model
only when the assignment cannot be proven optimal without one (a late accept that clashes,
say), then idles for hours. Solving in a child keeps OR-Tools out of the service: its memory
goes when the child exits. The child reads ``Problem`` and the hint, solves with the same
seed and the same wall-clock deadline (the child's start-up counts against it), and writes
``Solved``; the answer is the one ``solver.solve`` gives in the parent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from orsync.children import helper_environ
from orsync.posters.authors import Pair
from orsync.posters.data import AssignmentError
from orsync.posters.problem import Problem, Solved

__all__ = ["child_main", "solve_in_child"]

# Beyond the solver's own deadline: the child's start-up and OR-Tools' import.
GRACE_S = 30.0


def _problem_json(pb: Problem) -> dict[str, Any]:
    return {
        "n_sessions": pb.n_sessions,
        "capacity": pb.capacity,
        "allowed": pb.allowed,
        "home": pb.home,
        "pairs": [[p.a, p.b, list(p.authors)] for p in pb.pairs],
        "groups": pb.groups,
        "w_clash": pb.w_clash,
        "w_move": pb.w_move,
    }


def _problem_of(data: dict[str, Any]) -> Problem:
    return Problem(
        n_sessions=int(data["n_sessions"]),
        capacity=data["capacity"],
        allowed=[list(a) for a in data["allowed"]],
        home=list(data["home"]),
        pairs=[Pair(int(a), int(b), tuple(authors)) for a, b, authors in data["pairs"]],
        groups=[list(g) for g in data["groups"]],
        w_clash=int(data["w_clash"]),
        w_move=int(data["w_move"]),
    )


def solve_in_child(
    pb: Problem, start: list[int] | None, deadline: float, seed: int
) -> Solved | None:
    """``solver.solve`` run by a child process: same arguments (``deadline`` on this process's
    ``perf_counter``), same answer; None when proven infeasible."""
    left = deadline - time.perf_counter()
    request = {
        "problem": _problem_json(pb),
        "start": start,
        "deadline_unix": time.time() + left,
        "seed": seed,
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "orsync.posters"],
            input=json.dumps(request).encode(),
            capture_output=True,
            env=helper_environ(),
            timeout=max(left, 0.0) + GRACE_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AssignmentError("the poster solver did not answer in time") from None
    except OSError as exc:
        raise AssignmentError(f"cannot start the poster solver: {exc.strerror}") from None
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise AssignmentError(
            f"the poster solver failed (exit {done.returncode}): {tail[0][:300]}"
        ) from None
    if "error" in answer:
        raise AssignmentError(str(answer["error"]))
    solved = answer["solved"]
    if solved is None:
        return None
    return Solved(
        [int(k) for k in solved["chosen"]],
        bool(solved["optimal"]),
        float(solved["objective"]),
        None if solved["bound"] is None else float(solved["bound"]),
    )


def child_main() -> None:
    """The child: one request on stdin, one answer on stdout."""
    from orsync.posters import solver  # OR-Tools loads here, in the child only

    request = json.loads(sys.stdin.buffer.read())
    deadline = time.perf_counter() + (float(request["deadline_unix"]) - time.time())
    try:
        solved = solver.solve(
            _problem_of(request["problem"]), request["start"], deadline, int(request["seed"])
        )
    except AssignmentError as exc:
        answer: dict[str, Any] = {"error": exc.message}
    else:
        answer = {
            "solved": None
            if solved is None
            else {
                "chosen": solved.chosen,
                "optimal": solved.optimal,
                "objective": solved.objective,
                "bound": solved.bound,
            }
        }
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()
