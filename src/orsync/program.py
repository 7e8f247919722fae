"""The workshop day as assigned (SPEC §2 ``program``, §9): the configured schedule joined with the
accepted papers — each contributed talk with its paper, each poster session with its papers by
board — and what is still missing.

Public data only: the papers come from the ``accepted_papers`` view (as the push reads it), the
rest from the config, so the same ``Day`` feeds ``orsync program``, ``program.json``,
``schedule.ics`` and ``index.html``. Every text taken from the store is cleaned like the other
website files (``website.clean_text``).

What counts as missing:

- a contributed-talk slot with no paper, or with a paper that is not an accepted paper;
- an accepted paper with no public abstract (abstracts go online at least a week ahead);
- accepted papers without a poster session while sessions are configured (run a push), and a
  poster session with no papers;
- two slots at the same time, except a break beside a poster session (coffee or lunch among the
  posters) and two slots the config puts in different rooms (``location``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from orsync import schedule
from orsync.config import Config
from orsync.store import open_reader
from orsync.website import clean_text

__all__ = ["Day", "DaySlot", "PaperRef", "assemble", "build", "describe"]

# Kinds streamed for remote attendees when ``program.stream_url`` is set (posters and breaks are
# in the room only).
STREAMED_KINDS = frozenset({"invited", "contributed", "opening", "closing", "other"})


@dataclass(frozen=True)
class PaperRef:
    """The public face of an accepted paper, as the day shows it."""

    id: str
    number: int | None
    title: str
    authors: tuple[str, ...]
    abstract: str | None
    forum_url: str | None
    board: int | None = None

    @property
    def label(self) -> str:
        return f"#{self.number}" if self.number is not None else self.id

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "number": self.number, "title": self.title}
        out["authors"] = list(self.authors)
        if self.board is not None:
            out["board"] = self.board
        return out


@dataclass(frozen=True)
class DaySlot:
    """One slot of the day. ``key`` names it for calendars (``invited-2``, ``poster-P1``): the
    same slot keeps it when its title, its times or its paper change."""

    key: str
    kind: str
    start: datetime
    end: datetime
    title: str
    speaker: str | None = None
    affiliation: str | None = None
    abstract: str | None = None
    url: str | None = None
    location: str | None = None
    session_id: str | None = None  # poster sessions
    papers: tuple[PaperRef, ...] = ()  # a talk's paper; a poster session's papers by board

    @property
    def paper(self) -> PaperRef | None:
        return self.papers[0] if self.kind == "contributed" and self.papers else None


@dataclass
class Day:
    name: str | None
    location: str | None
    timezone: str  # the IANA name, else the UTC offset ("+02:00")
    zone: tzinfo
    stream_url: str | None
    slots: list[DaySlot]
    missing: list[str] = field(default_factory=list)

    def local(self, when: datetime) -> datetime:
        return when.astimezone(self.zone)

    def streamed(self, slot: DaySlot) -> bool:
        return self.stream_url is not None and slot.kind in STREAMED_KINDS

    def as_dict(self, *, details: bool = True) -> dict[str, Any]:
        """The day as data (``program.json`` without ``details``; ``program --json`` with
        them: each paper's number, title and authors, and what is missing)."""
        slots = []
        for s in self.slots:
            item: dict[str, Any] = {
                "start": self.local(s.start).isoformat(),
                "end": self.local(s.end).isoformat(),
                "kind": s.kind,
                "title": s.title,
            }
            for key in ("speaker", "affiliation", "abstract", "url", "location"):
                value = getattr(s, key)
                if value is not None:
                    item[key] = value
            if s.session_id is not None:
                item["session"] = s.session_id
            if s.papers:
                item["papers"] = (
                    [p.as_dict() for p in s.papers] if details else [p.id for p in s.papers]
                )
            if self.streamed(s):
                item["stream_url"] = self.stream_url
            slots.append(item)
        out: dict[str, Any] = {
            "name": self.name,
            "location": self.location,
            "timezone": self.timezone,
            "stream_url": self.stream_url,
            "slots": slots,
        }
        if details:
            out["missing"] = list(self.missing)
        return out


def _offset_name(zone: tzinfo) -> str:
    offset = datetime(2000, 1, 1, tzinfo=zone).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _ref(row: Mapping[str, Any], *, board: bool = False) -> PaperRef:
    abstract = row.get("abstract")
    return PaperRef(
        id=clean_text(row["forum_id"]),
        number=row.get("number"),
        title=clean_text(row.get("title")),
        authors=tuple(clean_text(a) for a in row.get("authors") or ()),
        abstract=clean_text(abstract) if abstract is not None and str(abstract).strip() else None,
        forum_url=_link(row.get("forum_url")),
        board=row.get("board") if board else None,
    )


def _link(value: object) -> str | None:
    """An http(s) link, else None: only such links become hrefs on the page or in a calendar."""
    if not isinstance(value, str):
        return None
    text = clean_text(value).strip()
    return text if text.startswith(("https://", "http://")) and " " not in text else None


def _opt(value: str | None) -> str | None:
    return None if value is None else clean_text(value)


def _hm(day: Day, when: datetime) -> str:
    return day.local(when).strftime("%H:%M")


def assemble(day: schedule.Schedule, rows: Sequence[Mapping[str, Any]]) -> Day:
    """The day from the schedule and the ``accepted_papers`` rows (lists decoded)."""
    zone = day.zone()
    built = Day(
        name=_opt(day.name),
        location=_opt(day.location),
        timezone=day.timezone or _offset_name(zone),
        zone=zone,
        stream_url=day.stream_url,
        slots=[],
    )
    by_ref: dict[str, Mapping[str, Any]] = {}
    for r in rows:
        by_ref[str(r["forum_id"])] = r
        if r.get("number") is not None:
            by_ref[str(r["number"])] = r
    ordinals: dict[str, int] = {}
    missing: list[str] = []
    for slot in day.slots():
        kind = slot.kind
        if isinstance(slot, schedule.Session):
            papers = sorted(
                (r for r in rows if r.get("session_id") == slot.id),
                key=lambda r: (r.get("board") is None, r.get("board") or 0, r.get("number") or 0),
            )
            built.slots.append(
                DaySlot(
                    key=f"poster-{slot.id}",
                    kind=kind,
                    start=slot.start,
                    end=slot.end,
                    title=clean_text(slot.name),
                    session_id=clean_text(slot.id),
                    papers=tuple(_ref(r, board=True) for r in papers),
                )
            )
            continue
        ordinals[kind] = ordinals.get(kind, 0) + 1
        key = f"{kind}-{ordinals[kind]}"
        if isinstance(slot, schedule.TalkSlot):
            row: Mapping[str, Any] | None = None
            if slot.paper is not None:
                row = by_ref.get(slot.paper)
            when = f"{_hm(built, slot.start)}-{_hm(built, slot.end)}"
            if slot.paper is None:
                missing.append(
                    f"contributed talk {when} (talks[{slot.index}]) has no paper yet: set its "
                    "paper (see `orsync talks suggest`)"
                )
            elif row is None:
                missing.append(
                    f"contributed talk {when} (talks[{slot.index}]): paper {slot.paper!r} is not "
                    "an accepted paper in the store"
                )
            ref = _ref(row) if row is not None else None
            built.slots.append(
                DaySlot(
                    key=key,
                    kind=kind,
                    start=slot.start,
                    end=slot.end,
                    title=ref.title if ref is not None else "Contributed talk",
                    abstract=ref.abstract if ref is not None else None,
                    url=ref.forum_url if ref is not None else None,
                    papers=(ref,) if ref is not None else (),
                )
            )
            continue
        built.slots.append(
            DaySlot(
                key=key,
                kind=kind,
                start=slot.start,
                end=slot.end,
                title=clean_text(slot.title),
                speaker=_opt(slot.speaker),
                affiliation=_opt(slot.affiliation),
                abstract=_opt(slot.abstract),
                url=slot.url,
                location=_opt(slot.location),
            )
        )
    built.missing = missing + _paper_gaps(day, rows) + _clashes(built, day)
    return built


def _numbers(rows: Sequence[Mapping[str, Any]], limit: int = 12) -> str:
    labels = [
        f"#{r['number']}" if r.get("number") is not None else str(r["forum_id"]) for r in rows
    ]
    more = f" and {len(labels) - limit} more" if len(labels) > limit else ""
    return ", ".join(labels[:limit]) + more


def _paper_gaps(day: schedule.Schedule, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    out = []
    no_abstract = [r for r in rows if not (r.get("abstract") or "").strip()]
    if no_abstract:
        n = len(no_abstract)
        out.append(
            f"{n} accepted paper{'s have' if n != 1 else ' has'} no public abstract for the "
            f"website: {_numbers(no_abstract)}"
        )
    if day.sessions and rows:
        unplaced = [r for r in rows if r.get("session_id") is None]
        if unplaced:
            n = len(unplaced)
            out.append(
                f"{n} accepted paper{'s have' if n != 1 else ' has'} no poster session yet: "
                f"{_numbers(unplaced)} (run `orsync push`)"
            )
        used = {r.get("session_id") for r in rows}
        for s in day.sessions:
            if s.id not in used:
                out.append(f"poster session {s.id} ({s.name}) has no papers")
    return out


def _allowed(a: schedule.Slot, b: schedule.Slot) -> bool:
    if {a.kind, b.kind} == {"break", "poster"}:
        return True  # coffee or lunch among the posters
    rooms = [s.location for s in (a, b) if isinstance(s, schedule.ProgramSlot)]
    return len(rooms) == 2 and None not in rooms and rooms[0] != rooms[1]


def _name(day: Day, slot: schedule.Slot) -> str:
    when = f"{_hm(day, slot.start)}-{_hm(day, slot.end)}"
    if isinstance(slot, schedule.TalkSlot):
        return f"contributed talk {when} (talks[{slot.index}])"
    if isinstance(slot, schedule.Session):
        return f"poster session {slot.id} {when}"
    return f"{slot.kind} {slot.title!r} {when}"


def _clashes(built: Day, day: schedule.Schedule) -> list[str]:
    return [
        f"{_name(built, a)} overlaps {_name(built, b)}"
        for a, b in day.overlapping_pairs()
        if not _allowed(a, b)
    ]


def build(config: Config) -> Day:
    """The configured day with the store's accepted papers (read-only)."""
    from orsync.store import queries

    with open_reader(config.store.url) as store, store.connect() as conn:
        rows = queries.accepted_papers(conn)
    return assemble(schedule.Schedule.from_config(config), rows)


def describe(day: Day) -> list[str]:
    """The day for a terminal: one line per slot, poster papers by board, then what is missing."""
    from orsync.terminal import safe

    lines = []
    if day.name:
        lines.append(safe(day.name))
    facts = [safe(day.location)] if day.location else []
    zone = f"times in {day.timezone}"
    if day.slots and day.timezone[:1] not in ("+", "-"):
        zone += f" (UTC{day.local(day.slots[0].start).isoformat()[-6:]})"
    facts.append(zone)
    lines.append(", ".join(facts))
    if day.stream_url:
        lines.append(f"live stream: {safe(day.stream_url)}")
    if not day.slots:
        lines.append("no slots configured: add [[program.slots]], [[talks]], [[posters.sessions]]")
    date = None
    for s in day.slots:
        local = day.local(s.start)
        if local.date() != date:
            date = local.date()
            lines += ["", local.strftime("%A %d %B %Y")]
        head = f"{_hm(day, s.start)}-{_hm(day, s.end)}  {s.kind:<11}  "
        pad = " " * len(head)
        if s.kind == "contributed":
            p = s.paper
            if p is None:
                lines.append(head + "(no paper yet)")
            else:
                lines.append(f"{head}{p.label} {safe(p.title)}")
                lines.append(pad + safe(", ".join(p.authors)))
        elif s.kind == "poster":
            lines.append(f"{head}{safe(s.title)} ({safe(s.session_id)}): {len(s.papers)} papers")
            for p in s.papers:
                lines.append(f"{pad}board {p.board or '-':>3}  {p.label} {safe(p.title)}")
        else:
            who = ", ".join(safe(x) for x in (s.speaker, s.affiliation) if x)
            lines.append(head + safe(s.title) + (f" ({who})" if who else ""))
            if s.location:
                lines.append(pad + "room: " + safe(s.location))
    lines.append("")
    if day.missing:
        lines.append(f"missing ({len(day.missing)}):")
        lines += [f"  - {safe(m)}" for m in day.missing]
    else:
        lines.append("nothing missing")
    return lines
