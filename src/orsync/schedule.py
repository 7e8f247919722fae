"""The workshop day as plain typed data (docs/configuration.md, docs/workshop.md), built from the config.

Three kinds of slot make the day: poster sessions (``[[posters.sessions]]``), contributed talks
(``[[talks]]``, each with the paper it presents once chosen) and the rest of the programme
(``[[program.slots]]``: invited talks, breaks, opening, closing). Everything that reads the day —
the poster assignment, the website files, ``orsync program``, the calendar — takes it from here.

Deliberately light: it imports the config models only, never the solver, the website or the
store, so reading commands that show sessions or talks start fast.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Literal, TypeVar, get_args

from orsync.config import ProgramKind

if TYPE_CHECKING:
    from orsync.config import Config

__all__ = [
    "PROGRAM_KINDS",
    "ProgramSlot",
    "Schedule",
    "Session",
    "Slot",
    "SlotKind",
    "Span",
    "TalkSlot",
    "identity",
    "in_time_order",
    "overlapping_pairs",
    "overlaps",
]

SlotKind = Literal["poster", "contributed", "invited", "break", "opening", "closing", "other"]
PROGRAM_KINDS: tuple[str, ...] = get_args(ProgramKind)

Span = tuple[datetime, datetime]


def overlaps(a: Span, b: Span) -> bool:
    """Whether two time spans overlap. Half-open: a talk ending at 12:00 does not overlap a
    poster session starting at 12:00."""
    return a[0] < b[1] and b[0] < a[1]


@dataclass(frozen=True)
class Session:
    """A poster session; ``id`` is what ``posters pin`` takes and the website files carry."""

    id: str
    name: str
    start: datetime
    end: datetime

    @property
    def kind(self) -> SlotKind:
        return "poster"

    @property
    def title(self) -> str:
        return self.name

    @property
    def span(self) -> Span:
        return (self.start, self.end)


@dataclass(frozen=True)
class TalkSlot:
    """A contributed talk. ``paper`` is the reference as the config writes it (the number as
    text, or a forum id), None until the chairs choose the talk; ``index`` is its place in
    ``[[talks]]``, for messages that name the key."""

    start: datetime
    end: datetime
    paper: str | None = None
    index: int = 0
    speaker: str | None = None
    recording_url: str | None = None

    @property
    def kind(self) -> SlotKind:
        return "contributed"

    @property
    def title(self) -> str:
        return "Contributed talk"

    @property
    def span(self) -> Span:
        return (self.start, self.end)

    def presents(self, number: int | None, forum_id: str) -> bool:
        """Whether this slot is the talk of the paper with ``number`` / ``forum_id``."""
        if self.paper is None:
            return False
        return self.paper == forum_id or (number is not None and self.paper == str(number))


@dataclass(frozen=True)
class ProgramSlot:
    """Any other slot of the day: an invited talk, a break, the opening or the closing. ``id`` is
    the config's optional name for it (``[[program.slots]]`` ``id``)."""

    start: datetime
    end: datetime
    kind: ProgramKind
    title: str
    speaker: str | None = None
    affiliation: str | None = None
    abstract: str | None = None
    url: str | None = None
    location: str | None = None
    id: str | None = None
    recording_url: str | None = None

    @property
    def span(self) -> Span:
        return (self.start, self.end)


Slot = Session | TalkSlot | ProgramSlot

# Among slots starting and ending together, the order the day is read in.
_KIND_RANK: dict[str, int] = {
    "opening": 0,
    "invited": 1,
    "contributed": 2,
    "poster": 3,
    "break": 4,
    "other": 5,
    "closing": 6,
}


def _slot_key(slot: Slot) -> tuple[datetime, datetime, int, str, str]:
    ident = slot.id if isinstance(slot, Session | ProgramSlot) else ""
    ident = ident or ""
    if isinstance(slot, TalkSlot):
        ident = f"{slot.index:06d}"
    return (slot.start, slot.end, _KIND_RANK[slot.kind], slot.title, ident)


_S = TypeVar("_S", bound=Slot)

# What may go into a key as written: the same characters as a program slot's id.


def _when(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y%m%dT%H%M%SZ" if utc.second else "%Y%m%dT%H%MZ")


def identity(slot: Slot) -> str:
    """What names a slot for calendars and the page (``DaySlot.key``), before two slots that
    share it are told apart: a poster session's id (``poster-P1``), a program slot's configured
    ``id`` (``slot-keynote``), else the kind and the start in UTC (``break-20240511T0930Z``).

    Never a position: inserting or removing a slot must not turn another slot's calendar event
    into it. A slot named by its start becomes a new event when it moves; an ``id`` keeps it.
    Never a contributed talk's paper: the key is published (program.json, the calendar's UIDs,
    the page's anchors) whether or not the paper is, and a paper picked before the decisions are
    released must not show in public files through its talk's name.
    """
    if isinstance(slot, Session):
        return f"poster-{slot.id}"
    if isinstance(slot, ProgramSlot) and slot.id is not None:
        return f"slot-{slot.id}"
    return f"{slot.kind}-{_when(slot.start)}"


def in_time_order(slots: Iterable[_S]) -> list[_S]:
    """Slots by start, then end, then kind (opening first, closing last), then title or id."""
    return sorted(slots, key=_slot_key)


def overlapping_pairs(slots: Sequence[Slot]) -> list[tuple[Slot, Slot]]:
    """Every pair of slots whose times overlap, each pair in time order, pairs in time order."""
    ordered = in_time_order(slots)
    pairs: list[tuple[Slot, Slot]] = []
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if b.start >= a.end:
                break  # sorted by start: nothing later can overlap a
            if overlaps(a.span, b.span):
                pairs.append((a, b))
    return pairs


@dataclass(frozen=True)
class Schedule:
    """The day: each kind of slot in time order, and the event's name, room, zone and stream."""

    sessions: tuple[Session, ...] = ()
    talks: tuple[TalkSlot, ...] = ()
    program: tuple[ProgramSlot, ...] = ()
    timezone: str | None = None
    name: str | None = None
    location: str | None = None
    stream_url: str | None = None

    @classmethod
    def from_config(cls, config: Config) -> Schedule:
        sessions = [Session(s.id, s.name, s.start, s.end) for s in config.posters.sessions]
        talks = [
            TalkSlot(
                t.start,
                t.end,
                None if t.paper is None else str(t.paper),
                i,
                t.speaker,
                t.recording_url,
            )
            for i, t in enumerate(config.talks)
        ]
        program = [
            ProgramSlot(
                start=s.start,
                end=s.end,
                kind=s.kind,
                title=s.title,
                speaker=s.speaker,
                affiliation=s.affiliation,
                abstract=s.abstract,
                url=s.url,
                location=s.location,
                id=s.id,
                recording_url=s.recording_url,
            )
            for s in config.program.slots
        ]
        p = config.program
        return cls(
            sessions=tuple(in_time_order(sessions)),
            talks=tuple(in_time_order(talks)),
            program=tuple(in_time_order(program)),
            timezone=p.timezone,
            name=p.name,
            location=p.location,
            stream_url=p.stream_url,
        )

    # ------------------------------------------------------------------ the whole day

    def slots(self) -> list[Slot]:
        """Every slot of the day in time order."""
        return in_time_order([*self.sessions, *self.talks, *self.program])

    def keyed(self) -> list[tuple[str, Slot]]:
        """Every slot of the day in time order with its key (``identity``); slots that share
        one (two talks of a paper, two breaks starting together in different rooms) get
        ``-2``, ``-3`` after the first, so every key of the day is unique."""
        out: list[tuple[str, Slot]] = []
        used: set[str] = set()
        for slot in self.slots():
            base = key = identity(slot)
            n = 1
            while key in used:
                n += 1
                key = f"{base}-{n}"
            used.add(key)
            out.append((key, slot))
        return out

    def overlapping(self, slot: Slot) -> list[Slot]:
        """The other slots of the day whose times overlap ``slot``'s, in time order."""
        return [s for s in self.slots() if s != slot and overlaps(s.span, slot.span)]

    def overlapping_pairs(self) -> list[tuple[Slot, Slot]]:
        return overlapping_pairs(self.slots())

    def zone(self) -> tzinfo:
        """The venue's zone: ``program.timezone``, else the UTC offset of the first slot."""
        if self.timezone is not None:
            return zoneinfo.ZoneInfo(self.timezone)
        for slot in self.slots():
            if slot.start.tzinfo is not None:
                return slot.start.tzinfo
        return UTC

    # ------------------------------------------------------------------ poster sessions

    def session(self, session_id: str) -> Session | None:
        return next((s for s in self.sessions if s.id == session_id), None)

    # ------------------------------------------------------------------ contributed talks

    def talks_of(self, number: int | None, forum_id: str) -> tuple[TalkSlot, ...]:
        """The talk slots of one paper (the config may name it by number or by forum id)."""
        return tuple(t for t in self.talks if t.presents(number, forum_id))

    def talk_spans(self, number: int | None, forum_id: str) -> tuple[Span, ...]:
        """When the paper is on stage, for the poster rule "not during its own talk"."""
        return tuple(t.span for t in self.talks_of(number, forum_id))

    def talks_by_paper(self) -> dict[str, list[Span]]:
        """Talk spans keyed by the paper reference as written (number as text, or forum id)."""
        out: dict[str, list[Span]] = {}
        for t in sorted(self.talks, key=lambda t: t.index):
            if t.paper is not None:
                out.setdefault(t.paper, []).append(t.span)
        return out

    def open_talks(self) -> list[TalkSlot]:
        """Talk slots with no paper chosen yet."""
        return [t for t in self.talks if t.paper is None]
