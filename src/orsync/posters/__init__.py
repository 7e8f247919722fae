"""Poster assignment (docs/workshop.md#the-poster-assignment): every accepted paper gets a session and a board.

Modules, in the order the work happens:
- ``data``: the inputs and outputs (PosterPaper, Placement, Clash, AssignmentResult, the error);
- ``authors``: author identity keys and the paper pairs they link;
- ``validation``: the hard rules checked up front (sessions, pins, talks, capacity);
- ``problem``: stage 1 as data, and the weights that make its objective lexicographic;
- ``stability``: what an announced paper may keep, and the stable and reoptimising problems;
- ``moves``: where each published paper starts from, and why each one that moves moved;
- ``heuristics``: greedy, repair and tabu search (the answer when it is provably optimal);
- ``solver``: the CP-SAT model — the only module importing OR-Tools, loaded on first solve;
- ``boards``: stage 2, board numbers by a keyword-similarity chain;
- ``assignment``: ``assign``, tying them together.

Importing this package does not load OR-Tools.
"""

from __future__ import annotations

from orsync.posters.assignment import DEFAULT_TIME_LIMIT_S, assign
from orsync.posters.authors import author_keys
from orsync.posters.data import (
    AssignmentError,
    AssignmentResult,
    Clash,
    Move,
    Placement,
    PosterPaper,
    Session,
)
from orsync.posters.moves import CONSENTED, explain_moves, starting_places

__all__ = [
    "CONSENTED",
    "DEFAULT_TIME_LIMIT_S",
    "AssignmentError",
    "AssignmentResult",
    "Clash",
    "Move",
    "Placement",
    "PosterPaper",
    "Session",
    "assign",
    "author_keys",
    "explain_moves",
    "starting_places",
]
