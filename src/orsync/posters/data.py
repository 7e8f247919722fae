"""The poster assignment's inputs and outputs, shared by every stage (no solver here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orsync.errors import EXIT_USAGE, OrsyncError
from orsync.schedule import Session

__all__ = [
    "AssignmentError",
    "AssignmentResult",
    "Clash",
    "Move",
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


@dataclass(frozen=True)
class Move:
    """One published poster that moves, and why (``cause`` a word, ``reason`` in words)."""

    forum_id: str
    number: int | None
    source: Placement
    target: Placement
    cause: str
    reason: str

    def line(self) -> str:
        """``#22 P2/10 → P1/18 because its talk at 12:30 overlaps P2``."""
        return (
            f"#{self.number if self.number is not None else self.forum_id} "
            f"{_at(self.source)} → {_at(self.target)} because {self.reason}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "paper": self.number,
            "forum_id": self.forum_id,
            "from": {"session": self.source.session_id, "board": self.source.board},
            "to": {"session": self.target.session_id, "board": self.target.board},
            "cause": self.cause,
            "reason": self.reason,
        }


def _at(place: Placement) -> str:
    return f"{place.session_id}/{place.board}"


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
    # The moves of published posters with their causes, filled by the caller that knows what
    # the site shows (``moved`` only compares with ``previous``).
    moves: list[Move] = field(default_factory=list)


class AssignmentError(OrsyncError):
    """No assignment satisfies the hard rules; the message says what to change."""

    exit_code = EXIT_USAGE
