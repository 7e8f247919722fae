"""The day's rules: one validation of the talks, the schedule and the posters (docs/workshop.md).

``orsync check``, ``orsync program``, ``orsync talks suggest`` and every push run the same
:func:`validate` on the same :class:`DayFacts`, so what ``check`` passes the push does not fail
on, and what the push would do wrong ``check`` says first. Each answer is a :class:`Problem`
with a severity: an ``error`` makes ``check`` and ``program`` exit 2, a ``warning`` is said and
changes no exit code. A new kind of problem is one more function in ``RULES``.

The facts are what the chairs know, not only what is public: a paper decided accept but not
released counts as accepted here (marked ``released=False``), so talks can be picked before the
release. The site never reads these facts (it reads the ``accepted_papers`` view), and the
messages name papers by number, never by title or author: they reach the push's log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from sqlalchemy import Connection

from orsync import schedule
from orsync.config import Config, TalkSelectionConfig
from orsync.store import models, pool, queries
from orsync.text import name_key

__all__ = [
    "RULES",
    "DayFacts",
    "Exclusions",
    "KnownPaper",
    "Problem",
    "excluded_value",
    "exclusions",
    "field_values",
    "gather",
    "validate",
]

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the day. ``kind`` is ``<area>.<what>`` (``talk.duplicate``,
    ``schedule.overlap``, ``poster.capacity``, ...), for programs and for filtering by area."""

    kind: str
    severity: Severity
    message: str

    @property
    def area(self) -> str:
        return self.kind.partition(".")[0]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- the form's answers


def field_values(raw: str, name: str) -> list[str] | None:
    """The text values of ``content.<name>`` in a note's raw JSON, stripped and case-folded;
    None when the note has no such field."""
    try:
        content = json.loads(raw).get("content") or {}
    except (ValueError, AttributeError):
        return None
    if not isinstance(content, dict) or name not in content:
        return None
    value = content[name]
    if isinstance(value, dict):
        if "value" not in value:
            return None
        value = value["value"]
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if item is None:
            continue
        text = ("true" if item else "false") if isinstance(item, bool) else str(item)
        out.append(text.strip().casefold())
    return out


def _wanted(selection: TalkSelectionConfig) -> dict[str, str]:
    return {v.strip().casefold(): v.strip() for v in selection.exclude_values if v.strip()}


def excluded_value(values: Iterable[str] | None, selection: TalkSelectionConfig) -> str | None:
    """The configured ``exclude_values`` entry a paper's answer holds (the first by name), else
    None: such a paper was published before and is never a talk."""
    wanted = _wanted(selection)
    hit = sorted(wanted[v] for v in set(values or ()) & set(wanted))
    return hit[0] if hit else None


@dataclass(frozen=True)
class Exclusions:
    """What the submissions answer to ``talk_selection.exclude_field``."""

    field: str
    values: tuple[str, ...]  # exclude_values as configured (stripped)
    submissions: int  # live submissions in the store
    answered: int  # of them, those whose form has the field
    seen: tuple[str, ...]  # the distinct answers (case-folded), sorted
    marked: Mapping[str, str]  # forum id -> the exclude_values entry its answer holds


def exclusions(
    selection: TalkSelectionConfig, submissions: int, answers: Iterable[tuple[str, str]]
) -> Exclusions | None:
    """The exclusion facts from (forum id, raw JSON) pairs; None without ``exclude_field``."""
    name = selection.exclude_field
    if name is None:
        return None
    answered = 0
    seen: set[str] = set()
    marked: dict[str, str] = {}
    for forum_id, raw in answers:
        values = field_values(raw, name)
        if values is None:
            continue
        answered += 1
        seen.update(values)
        hit = excluded_value(values, selection)
        if hit is not None:
            marked[forum_id] = hit
    return Exclusions(
        field=name,
        values=tuple(_wanted(selection).values()),
        submissions=submissions,
        answered=answered,
        seen=tuple(sorted(seen)),
        marked=marked,
    )


# --------------------------------------------------------------------------- the facts


@dataclass(frozen=True)
class KnownPaper:
    """An accepted paper as the chairs know it: released (on the site), or decided accept and
    not released yet. ``session_id`` and ``board`` are its stored poster place, if any."""

    forum_id: str
    number: int | None
    title: str
    released: bool
    session_id: str | None = None
    board: int | None = None

    @property
    def label(self) -> str:
        return f"#{self.number}" if self.number is not None else self.forum_id


@dataclass(frozen=True)
class DayFacts:
    """Everything the rules look at. ``papers`` is None when there is no store to read yet:
    then only the rules of the config itself run."""

    day: schedule.Schedule
    talk_refs: tuple[object, ...]  # each [[talks]] paper as the config writes it
    boards_per_session: int | None = None
    papers: tuple[KnownPaper, ...] | None = None
    decided: tuple[pool.DecidedPaper, ...] = ()  # every unreleased decision
    pins: Mapping[str, str] = field(default_factory=dict)
    exclusions: Exclusions | None = None
    # Forum id -> its authors as the store holds them, for the talks that name a speaker.
    authors: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @classmethod
    def of_config(cls, config: Config) -> DayFacts:
        return cls(
            day=schedule.Schedule.from_config(config),
            talk_refs=tuple(t.paper for t in config.talks),
            boards_per_session=config.posters.boards_per_session,
        )

    def talk_paper(self, talk: schedule.TalkSlot) -> KnownPaper | None:
        found = None
        for p in self.papers or ():
            if talk.presents(p.number, p.forum_id):
                found = p
        return found

    def unreleased_talks(self) -> dict[int, KnownPaper]:
        """Talk index -> its paper, for the talks whose paper is decided but not released."""
        out = {}
        for talk in self.day.talks:
            paper = self.talk_paper(talk)
            if paper is not None and not paper.released:
                out[talk.index] = paper
        return out


def gather(
    conn: Connection | None,
    config: Config,
    *,
    papers: Sequence[models.AcceptedPaper] | None = None,
    pins: Mapping[str, str] | None = None,
) -> DayFacts:
    """The facts from the config and, when ``conn`` is given, the store. A caller that has
    read the accepted papers or the pins already (the push, ``program``) passes them, so the
    store is not read twice for them."""
    facts = DayFacts.of_config(config)
    if conn is None:
        return facts
    if papers is None:
        papers = models.accepted_papers(conn)
    known = [
        KnownPaper(p.forum_id, p.number, p.title or "", True, p.session_id, p.board) for p in papers
    ]
    decided = pool.decided_unreleased(conn)
    known += [KnownPaper(d.forum_id, d.number, d.title or "", False) for d in decided if d.accepts]
    spoken = {
        p.forum_id
        for t in facts.day.talks
        if t.speaker
        for p in known
        if t.presents(p.number, p.forum_id)
    }
    found = None
    name = config.talk_selection.exclude_field
    if name is not None:
        total, answers = pool.field_answers(conn, name)
        found = exclusions(config.talk_selection, total, answers)
    return replace(
        facts,
        papers=tuple(known),
        decided=tuple(decided),
        pins=dict(queries.pins(conn) if pins is None else pins),
        exclusions=found,
        authors=pool.author_names(conn, spoken),
    )


# --------------------------------------------------------------------------- the rules


def _hm(facts: DayFacts, span: schedule.Span) -> str:
    zone = facts.day.zone()
    return f"{span[0].astimezone(zone):%H:%M}-{span[1].astimezone(zone):%H:%M}"


def _talk_name(facts: DayFacts, talk: schedule.TalkSlot) -> str:
    return f"talks[{talk.index + 1}] ({_hm(facts, talk.span)})"


def _written(facts: DayFacts, talk: schedule.TalkSlot) -> str:
    ref = facts.talk_refs[talk.index] if talk.index < len(facts.talk_refs) else talk.paper
    return f"talks[{talk.index + 1}] paper = {ref!r}"


def _talk_papers(facts: DayFacts) -> list[Problem]:
    """Each talk's paper is an accepted (or decided accept) paper, given one talk, and not
    previously published."""
    if facts.papers is None:
        return []
    problems = []
    first: dict[str, schedule.TalkSlot] = {}
    for talk in sorted(facts.day.talks, key=lambda t: t.index):
        if talk.paper is None:
            continue
        paper = facts.talk_paper(talk)
        if paper is None:
            decided = next((d for d in facts.decided if talk.presents(d.number, d.forum_id)), None)
            why = (
                f"is decided {decided.decision!r} (not released), not an accepted paper"
                if decided is not None
                else "is not an accepted paper in the store"
            )
            problems.append(
                Problem(
                    "talk.not_accepted",
                    "error",
                    f"{_written(facts, talk)} {why} (talk at "
                    f"{talk.start.isoformat(timespec='minutes')}); its poster is placed without "
                    "regard to the talk: fix the paper number or forum id",
                )
            )
        key = paper.forum_id if paper is not None else talk.paper
        label = paper.label if paper is not None else repr(talk.paper)
        if key in first:
            problems.append(
                Problem(
                    "talk.duplicate",
                    "error",
                    f"{label} has two contributed talks: {_talk_name(facts, first[key])} and "
                    f"{_talk_name(facts, talk)}; set another paper for talks[{talk.index + 1}]",
                )
            )
        else:
            first[key] = talk
        marked = facts.exclusions.marked.get(paper.forum_id) if paper and facts.exclusions else None
        if paper is not None and facts.exclusions is not None and marked is not None:
            problems.append(
                Problem(
                    "talk.previously_published",
                    "error",
                    f"{_written(facts, talk)}: {paper.label} is marked previously published "
                    f"({facts.exclusions.field} = {marked!r}), and previously published papers "
                    "are not selected as talks; choose another paper (`orsync talks suggest`)",
                )
            )
    return problems


def _speakers(facts: DayFacts) -> list[Problem]:
    """A talk's speaker is one of its paper's authors as the store holds them (a warning: the
    chairs may know better). The message names nobody: it reaches the push's log."""
    problems = []
    for talk in sorted(facts.day.talks, key=lambda t: t.index):
        paper = facts.talk_paper(talk) if talk.speaker else None
        names = facts.authors.get(paper.forum_id, ()) if paper is not None else ()
        if talk.speaker and paper and names and name_key(talk.speaker) not in map(name_key, names):
            why = "write the name as the paper lists it, or set the talk's paper"
            message = f"talks[{talk.index + 1}] speaker is not an author of {paper.label}: {why}"
            problems.append(Problem("talk.speaker", "warning", message))
    return problems


def _talk_form(facts: DayFacts) -> list[Problem]:
    """``exclude_field`` is a field of the form and each ``exclude_values`` entry an answer."""
    found = facts.exclusions
    if found is None or found.submissions == 0:
        return []
    if found.answered == 0:
        return [
            Problem(
                "talk.exclude_field",
                "error",
                f"no submission has the field talk_selection.exclude_field = {found.field!r}: "
                "check its name against the submission form (previously published papers are "
                "not recognised until it is right)",
            )
        ]
    unmatched = [v for v in found.values if v.casefold() not in found.seen]
    if not unmatched:
        return []
    answers = ", ".join(repr(v) for v in found.seen[:12]) or "none"
    return [
        Problem(
            "talk.exclude_values",
            "error",
            f"talk_selection.exclude_values {', '.join(repr(v) for v in unmatched)} "
            f"match{'es' if len(unmatched) == 1 else ''} no submission's {found.field} (the "
            f"answers are {answers}): fix the values to the form's answers",
        )
    ]


def _allowed(a: schedule.Slot, b: schedule.Slot) -> bool:
    if {a.kind, b.kind} == {"break", "poster"}:
        return True  # coffee or lunch among the posters
    rooms = [s.location for s in (a, b) if isinstance(s, schedule.ProgramSlot)]
    return len(rooms) == 2 and None not in rooms and rooms[0] != rooms[1]


def _slot_name(facts: DayFacts, slot: schedule.Slot) -> str:
    when = _hm(facts, slot.span)
    if isinstance(slot, schedule.TalkSlot):
        return f"contributed talk {when} (talks[{slot.index + 1}])"
    if isinstance(slot, schedule.Session):
        return f"poster session {slot.id} {when}"
    return f"{slot.kind} {slot.title!r} {when}"


def _overlaps(facts: DayFacts) -> list[Problem]:
    """No two slots at once, but a break among the posters and slots in different rooms."""
    return [
        Problem(
            "schedule.overlap",
            "error",
            f"{_slot_name(facts, a)} overlaps {_slot_name(facts, b)}",
        )
        for a, b in facts.day.overlapping_pairs()
        if not _allowed(a, b)
    ]


def _talks_of(facts: DayFacts, paper: KnownPaper) -> list[schedule.TalkSlot]:
    return [t for t in facts.day.talks if t.presents(paper.number, paper.forum_id)]


def _clashing_talk(
    facts: DayFacts, paper: KnownPaper, session: schedule.Session
) -> schedule.TalkSlot | None:
    return next(
        (t for t in _talks_of(facts, paper) if schedule.overlaps(t.span, session.span)), None
    )


def _posters(facts: DayFacts) -> list[Problem]:
    """Pins name known sessions clear of the paper's talk; a placed poster is clear of its
    talk; every paper with a talk has a session its talk leaves free."""
    if facts.papers is None or not facts.day.sessions:
        return []
    sessions = {s.id: s for s in facts.day.sessions}
    problems = []
    for paper in facts.papers:
        pin = facts.pins.get(paper.forum_id)
        if pin is not None and pin not in sessions:
            problems.append(
                Problem(
                    "poster.pin_unknown_session",
                    "error",
                    f"{paper.label} is pinned to poster session {pin!r}, which is not in "
                    f"[[posters.sessions]]; `orsync posters unpin {paper.number}` or add it",
                )
            )
        elif pin is not None and (talk := _clashing_talk(facts, paper, sessions[pin])):
            problems.append(
                Problem(
                    "poster.pin_overlaps_talk",
                    "error",
                    f"{paper.label} is pinned to poster session {pin} "
                    f"({_hm(facts, sessions[pin].span)}), which overlaps its talk "
                    f"{_talk_name(facts, talk)}; `orsync posters unpin {paper.number}` or "
                    "move the talk",
                )
            )
        if _talks_of(facts, paper) and all(
            _clashing_talk(facts, paper, s) for s in facts.day.sessions
        ):
            problems.append(
                Problem(
                    "poster.no_session",
                    "error",
                    f"every poster session overlaps the talk of {paper.label}: move the talk "
                    "or add a poster session",
                )
            )
            continue
        placed = sessions.get(paper.session_id or "")
        if pin is None and placed is not None and (talk := _clashing_talk(facts, paper, placed)):
            problems.append(
                Problem(
                    "poster.talk_overlap",
                    "error",
                    f"the talk of {paper.label} {_talk_name(facts, talk)} overlaps its poster "
                    f"session {placed.id} (board {paper.board}), so the next push moves the "
                    "poster: move the talk, or pin the poster (`orsync posters pin`)",
                )
            )
    return problems + _capacity(facts, sessions)


def _capacity(facts: DayFacts, sessions: Mapping[str, schedule.Session]) -> list[Problem]:
    """Every accepted paper, released or not yet, has a board; no session is forced over."""
    capacity = facts.boards_per_session
    papers = facts.papers or ()
    if capacity is None or not papers:
        return []
    boards = capacity * len(sessions)
    problems = []
    if len(papers) > boards:
        waiting = sum(1 for p in papers if not p.released)
        unreleased = f" ({waiting} of them decided, not released)" if waiting else ""
        needed = -(-len(papers) // len(sessions))
        problems.append(
            Problem(
                "poster.capacity",
                "error",
                f"{len(papers)} posters{unreleased} do not fit {len(sessions)} sessions × "
                f"{capacity} boards ({len(papers) - boards} boards short); raise "
                f"posters.boards_per_session to at least {needed} or add a session",
            )
        )
    forced: dict[str, int] = {}
    for paper in papers:
        pin = facts.pins.get(paper.forum_id)
        free = (
            [pin]
            if pin is not None and pin in sessions
            else [s.id for s in sessions.values() if not _clashing_talk(facts, paper, s)]
        )
        if len(free) == 1:
            forced[free[0]] = forced.get(free[0], 0) + 1
    for sid, count in sorted(forced.items()):
        if count > capacity:
            problems.append(
                Problem(
                    "poster.capacity",
                    "error",
                    f"{count} posters are pinned (or forced by talks) into poster session "
                    f"{sid}, which has {capacity} boards; unpin some or raise "
                    "posters.boards_per_session",
                )
            )
    return problems


Rule = Callable[[DayFacts], list[Problem]]

RULES: tuple[Rule, ...] = (_talk_form, _talk_papers, _speakers, _overlaps, _posters)


def validate(facts: DayFacts, rules: Sequence[Rule] = RULES) -> list[Problem]:
    """Every problem of the day, errors first, each area in the rules' order."""
    found = [p for rule in rules for p in rule(facts)]
    return sorted(found, key=lambda p: p.severity != "error")
