"""The workshop day as assigned (``orsync program``, docs/workshop.md): the configured schedule joined with the
accepted papers — each contributed talk with its paper, each poster session with its papers by
board — and what is still missing. What is wrong (slots that clash, talk rules broken, posters
that cannot be placed) is not missing but a problem: ``orsync.rules`` finds it, for ``program``,
``check`` and the push alike, and ``program`` sets it on its ``Day``.

Public data only: the papers come from the ``accepted_papers`` view (as the push reads it), the
rest from the config, so the same ``Day`` feeds ``orsync program``, ``program.json``,
``schedule.ics`` and ``index.html``. The papers are the push's ``PaperRecord``s, cleaned once
(``site.records``); the config's texts are cleaned here with the same rule (``text.clean_text``).

What counts as missing:

- a contributed-talk slot with no paper;
- an accepted paper with no public abstract (abstracts go online at least a week ahead);
- accepted papers without a poster session while sessions are configured (run a push), and a
  poster session with no papers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any

from orsync import rules, schedule
from orsync.errors import EXIT_USAGE
from orsync.site.records import PaperRecord, TalkRef
from orsync.terminal import safe
from orsync.text import authors_text, clean_text, web_link

__all__ = ["Day", "DaySlot", "assemble", "describe", "presentation_mismatches", "with_talks"]

# Kinds streamed for remote attendees when ``program.stream_url`` is set (posters and breaks are
# in the room only).
STREAMED_KINDS = frozenset({"invited", "contributed", "opening", "closing", "other"})

# What each kind of slot is called on the day's public page and in its schedule files.
KIND_NAMES = {
    "invited": "Invited talk",
    "contributed": "Contributed talk",
    "poster": "Poster session",
    "break": "Break",
    "opening": "Opening",
    "closing": "Closing",
    "other": "Other",
}


def _paper_dict(paper: PaperRecord, *, board: bool) -> dict[str, Any]:
    """A paper as ``program --json`` lists it; a poster session's papers with their board."""
    out: dict[str, Any] = {"id": paper.id, "number": paper.number, "title": paper.title}
    out["authors"] = list(paper.authors)
    if board and paper.board is not None:
        out["board"] = paper.board
    return out


@dataclass(frozen=True)
class DaySlot:
    """One slot of the day. ``key`` names it for calendars, the page's anchors and
    ``program.json`` (``schedule.identity``: ``poster-P1``, ``slot-keynote``,
    ``contributed-20240511T0930Z``, ``break-20240511T1100Z``): never a position nor a paper, so
    adding or removing a slot leaves every other slot's key as it was."""

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
    papers: tuple[PaperRecord, ...] = ()  # a talk's paper; a poster session's papers by board
    talk_index: int | None = None  # a contributed talk's place in [[talks]]
    recording_url: str | None = None  # set after the day ([[program.slots]], [[talks]])

    @property
    def paper(self) -> PaperRecord | None:
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
    # Where the configured talks and OpenReview's decisions disagree (``with_talks``).
    warnings: list[str] = field(default_factory=list)
    # Set by ``orsync program`` only (the chairs' view), never by the push: the day's problems,
    # and the talks whose paper is decided accept but not released (absent from ``papers``).
    problems: list[rules.Problem] = field(default_factory=list)
    unreleased: dict[int, rules.KnownPaper] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """2 when something is wrong with the day (an error among the problems), else 0."""
        return EXIT_USAGE if any(p.severity == "error" for p in self.problems) else 0

    def unreleased_paper(self, slot: DaySlot) -> rules.KnownPaper | None:
        return None if slot.talk_index is None else self.unreleased.get(slot.talk_index)

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
                "id": s.key,
                "start": self.local(s.start).isoformat(),
                "end": self.local(s.end).isoformat(),
                "kind": s.kind,
                "title": s.title,
            }
            for key in ("speaker", "affiliation", "abstract", "url", "location", "recording_url"):
                value = getattr(s, key)
                if value is not None:
                    item[key] = value
            if s.session_id is not None:
                item["session"] = s.session_id
            if s.papers:
                item["papers"] = (
                    [_paper_dict(p, board=s.kind == "poster") for p in s.papers]
                    if details
                    else [p.id for p in s.papers]
                )
            decided = self.unreleased_paper(s) if details else None
            if decided is not None:
                item["decided"] = {
                    "id": decided.forum_id,
                    "number": decided.number,
                    "title": clean_text(decided.title),
                    "released": False,
                }
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
            out["warnings"] = list(self.warnings)
            out["problems"] = [p.as_dict() for p in self.problems]
        return out


def _offset_name(zone: tzinfo) -> str:
    offset = datetime(2000, 1, 1, tzinfo=zone).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _opt(value: str | None) -> str | None:
    return None if value is None else clean_text(value)


def _hm(day: Day, when: datetime) -> str:
    return day.local(when).strftime("%H:%M")


def assemble(day: schedule.Schedule, papers: Sequence[PaperRecord]) -> Day:
    """The day from the schedule and the accepted papers' records."""
    zone = day.zone()
    built = Day(
        name=_opt(day.name),
        location=_opt(day.location),
        timezone=day.timezone or _offset_name(zone),
        zone=zone,
        stream_url=day.stream_url,
        slots=[],
    )
    missing: list[str] = []
    for key, slot in day.keyed():
        kind = slot.kind
        if isinstance(slot, schedule.Session):
            placed = sorted(
                (p for p in papers if p.session_id == slot.id),
                key=lambda p: (p.board is None, p.board or 0, p.number or 0),
            )
            built.slots.append(
                DaySlot(
                    key=key,
                    kind=kind,
                    start=slot.start,
                    end=slot.end,
                    title=clean_text(slot.name),
                    session_id=clean_text(slot.id),
                    papers=tuple(placed),
                )
            )
            continue
        if isinstance(slot, schedule.TalkSlot):
            paper = talk_paper(slot, papers)
            when = f"{_hm(built, slot.start)}-{_hm(built, slot.end)}"
            if slot.paper is None:
                missing.append(
                    f"contributed talk {when} (talks[{slot.index + 1}]) has no paper yet: set its "
                    "paper (see `orsync talks suggest`)"
                )
            built.slots.append(
                DaySlot(
                    key=key,
                    kind=kind,
                    start=slot.start,
                    end=slot.end,
                    title=paper.title if paper is not None else "Contributed talk",
                    speaker=_speaker(slot, paper),
                    abstract=paper.public_abstract if paper is not None else None,
                    url=paper.forum_link if paper is not None else None,
                    papers=(paper,) if paper is not None else (),
                    talk_index=slot.index,
                    recording_url=web_link(slot.recording_url),
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
                recording_url=web_link(slot.recording_url),
            )
        )
    built.missing = missing + _paper_gaps(day, papers)
    return built


def _speaker(talk: schedule.TalkSlot, paper: PaperRecord | None) -> str | None:
    """Who presents, where the page may say it: only with a paper whose authors are public. A
    talk whose paper is hidden (not released, or its authors not public) would otherwise name
    an author of a paper that is still anonymous."""
    if paper is None or not paper.authors:
        return None
    return _opt(talk.speaker)


def with_talks(
    day: schedule.Schedule, records: Sequence[PaperRecord], presentation_from: str = "talks"
) -> tuple[list[PaperRecord], Day]:
    """The records as the site publishes them, and the day assembled from them.

    ``records`` hold OpenReview's presentation (``build_records``). Each gets its talk (the
    first in time order when the config gives it two), and with ``presentation_from =
    "talks"`` its presentation from it: a paper with a talk is an oral, every other a poster,
    so that no file shows an oral without a talk. A config with no ``[[talks]]`` slot does not
    plan the talks here: OpenReview's decision stays, and nothing is said. The day's
    ``warnings`` are the mismatches (``presentation_mismatches``), whichever side wins.
    """
    talks: dict[str, TalkRef] = {}
    if day.talks:
        # The talk's key is the calendar's: assembled here once, used as it is.
        plain = assemble(day, records)
        for slot in plain.slots:
            paper = slot.paper
            if paper is not None and paper.id not in talks:
                talks[paper.id] = TalkRef(
                    start=plain.local(slot.start).isoformat(),
                    end=plain.local(slot.end).isoformat(),
                    slot=slot.key,
                )
    warnings = presentation_mismatches(records, talks) if day.talks else []
    decide = presentation_from == "talks" and bool(day.talks)
    published = [
        replace(
            r,
            talk=talks.get(r.id),
            presentation=("oral" if r.id in talks else "poster") if decide else r.presentation,
        )
        for r in records
    ]
    built = assemble(day, published)
    built.warnings = warnings
    return published, built


def presentation_mismatches(
    records: Sequence[PaperRecord], talks: Mapping[str, object]
) -> list[str]:
    """Where the talks (``talks``: paper id → its talk) and OpenReview's decisions (the
    records' ``presentation``, as the store has it) disagree, by paper number."""
    out = []
    for r in sorted(records, key=lambda r: (r.number is None, r.number or 0, r.id)):
        oral = r.presentation == "oral"
        if r.id in talks and not oral:
            out.append(f"{r.label} has a talk but OpenReview says {r.presentation or 'nothing'}")
        elif oral and r.id not in talks:
            out.append(f"{r.label} is an oral on OpenReview but has no talk")
    return out


def talk_paper(talk: schedule.TalkSlot, papers: Sequence[PaperRecord]) -> PaperRecord | None:
    """The paper a contributed talk presents (the config names it by number or forum id), None
    when no accepted paper is that one. The last match wins, as the config's reference is
    looked up among all papers' numbers and ids at once."""
    found = None
    for p in papers:
        if talk.presents(p.number, p.id):
            found = p
    return found


def _numbers(papers: Sequence[PaperRecord], limit: int = 12) -> str:
    labels = [p.label for p in papers]
    more = f" and {len(labels) - limit} more" if len(labels) > limit else ""
    return ", ".join(labels[:limit]) + more


def _paper_gaps(day: schedule.Schedule, papers: Sequence[PaperRecord]) -> list[str]:
    out = []
    no_abstract = [p for p in papers if p.public_abstract is None]
    if no_abstract:
        n = len(no_abstract)
        out.append(
            f"{n} accepted paper{'s have' if n != 1 else ' has'} no public abstract for the "
            f"website: {_numbers(no_abstract)}"
        )
    if day.sessions and papers:
        unplaced = [p for p in papers if p.session is None]
        if unplaced:
            n = len(unplaced)
            out.append(
                f"{n} accepted paper{'s have' if n != 1 else ' has'} no poster session yet: "
                f"{_numbers(unplaced)} (run `orsync push`)"
            )
        used = {p.session_id for p in papers}
        for s in day.sessions:
            if s.id not in used:
                out.append(f"poster session {s.id} ({s.name}) has no papers")
    return out


def describe(day: Day) -> list[str]:
    """The day for a terminal: one line per slot, poster papers by board, then what is wrong
    and what is missing."""
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
            decided = day.unreleased_paper(s)
            if decided is not None:
                lines.append(f"{head}{decided.label} {safe(decided.title)} (decided, not released)")
            elif p is None:
                lines.append(head + "(no paper yet)")
            else:
                lines.append(f"{head}{p.label} {safe(p.title)}")
                lines.append(pad + safe(authors_text(p.authors)))
                if s.speaker:
                    lines.append(pad + "speaker: " + safe(s.speaker))
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
    if day.problems:
        lines.append(f"problems ({len(day.problems)}):")
        lines += [f"  - {p.severity}: {safe(p.message)}" for p in day.problems]
    if day.missing:
        lines.append(f"missing ({len(day.missing)}):")
        lines += [f"  - {safe(m)}" for m in day.missing]
    else:
        lines.append("nothing missing")
    if day.warnings:
        lines.append(f"talks and OpenReview's decisions disagree ({len(day.warnings)}):")
        lines += [f"  - {safe(w)}" for w in day.warnings]
    return lines
