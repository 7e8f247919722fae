"""The poster assignment's inputs and outputs, shared by every stage (no solver here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orsync.errors import EXIT_USAGE, OrsyncError
from orsync.schedule import Session

__all__ = [
    "AssignmentError",
    "AssignmentResult",
    "Clash",
    "Placement",
    "PosterPaper",
    "Session",
]


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
