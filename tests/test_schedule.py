"""The day's schedule (docs/configuration.md, docs/workshop.md): slots in time order, overlaps, talks by paper, config keys."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zoneinfo
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from orsync.config import parse_config
from orsync.errors import ConfigError
from orsync.schedule import (
    ProgramSlot,
    Schedule,
    Session,
    TalkSlot,
    in_time_order,
    overlapping_pairs,
    overlaps,
)

ROOT = Path(__file__).resolve().parent.parent
TZ = timezone(timedelta(hours=2))


def at(h: int, m: int) -> datetime:
    return datetime(2024, 5, 11, h, m, tzinfo=TZ)


def iso(h: int, m: int) -> str:
    return at(h, m).isoformat()


def config(**extra: Any) -> dict[str, Any]:
    return {"openreview": {"venue_id": "V"}, **extra}


def day_config() -> dict[str, Any]:
    # Written out of order on purpose: the schedule orders it.
    return config(
        posters={
            "sessions": [
                {"id": "P2", "name": "Posters 2", "start": iso(12, 0), "end": iso(14, 0)},
                {"id": "P1", "name": "Posters 1", "start": iso(10, 10), "end": iso(11, 0)},
            ]
        },
        talks=[
            {"paper": 42, "start": iso(11, 45), "end": iso(12, 0)},
            {"paper": "AbCdEf", "start": iso(11, 30), "end": iso(11, 45)},
            {"start": iso(15, 0), "end": iso(15, 15)},
        ],
        program={
            "name": "BGPT",
            "location": "Vienna",
            "timezone": "Europe/Vienna",
            "stream_url": "https://example.org/live",
            "slots": [
                {"kind": "closing", "title": "Closing", "start": iso(17, 55), "end": iso(18, 0)},
                {
                    "kind": "invited",
                    "title": "Keynote",
                    "speaker": "Ada Lovelace",
                    "affiliation": "Analytical Engines",
                    "url": "https://example.org/ada",
                    "start": iso(9, 0),
                    "end": iso(9, 35),
                },
                {"kind": "opening", "title": "Welcome", "start": iso(8, 50), "end": iso(9, 0)},
                {"kind": "break", "title": "Coffee", "start": iso(10, 10), "end": iso(10, 30)},
            ],
        },
    )


def test_every_slot_in_time_order_whatever_the_config_order() -> None:
    day = Schedule.from_config(parse_config(day_config()))
    assert [s.title for s in day.slots()] == [
        "Welcome",
        "Keynote",
        "Coffee",
        "Posters 1",
        "Contributed talk",
        "Contributed talk",
        "Posters 2",
        "Contributed talk",
        "Closing",
    ]
    assert [s.kind for s in day.slots()][:4] == ["opening", "invited", "break", "poster"]
    assert [s.id for s in day.sessions] == ["P1", "P2"]
    assert [t.paper for t in day.talks] == ["AbCdEf", "42", None]
    assert [t.index for t in day.talks] == [1, 0, 2]  # their place in [[talks]], for messages
    keynote = day.program[1]
    assert (keynote.speaker, keynote.affiliation, keynote.url) == (
        "Ada Lovelace",
        "Analytical Engines",
        "https://example.org/ada",
    )
    assert (day.name, day.location, day.stream_url) == (
        "BGPT",
        "Vienna",
        "https://example.org/live",
    )
    assert day.zone() == zoneinfo.ZoneInfo("Europe/Vienna")


def test_ties_read_opening_first_and_closing_last() -> None:
    slots = [
        ProgramSlot(at(9, 0), at(9, 30), "closing", "Bye"),
        ProgramSlot(at(9, 0), at(9, 30), "other", "Misc"),
        TalkSlot(at(9, 0), at(9, 30), "7", 0),
        Session("P1", "Posters", at(9, 0), at(9, 30)),
        ProgramSlot(at(9, 0), at(9, 30), "invited", "Keynote"),
        ProgramSlot(at(9, 0), at(9, 30), "opening", "Hello"),
        ProgramSlot(at(8, 0), at(10, 0), "break", "Early"),
    ]
    assert [s.kind for s in in_time_order(slots)] == [
        "break",
        "opening",
        "invited",
        "contributed",
        "poster",
        "other",
        "closing",
    ]
    # Times with different offsets compare as instants.
    utc = ProgramSlot(datetime(2024, 5, 11, 6, 0, tzinfo=UTC), at(8, 30), "other", "UTC")
    assert in_time_order([slots[-1], utc])[0] is utc


def test_overlap_is_half_open() -> None:
    assert overlaps((at(10, 0), at(11, 0)), (at(10, 30), at(11, 30)))
    assert overlaps((at(10, 0), at(11, 0)), (at(10, 15), at(10, 45)))  # inside
    assert not overlaps((at(10, 0), at(11, 0)), (at(11, 0), at(12, 0)))  # back to back
    assert not overlaps((at(11, 0), at(12, 0)), (at(10, 0), at(11, 0)))
    # An instant in another offset: 09:00 UTC is 11:00 at +02:00.
    utc_eleven = datetime(2024, 5, 11, 9, 0, tzinfo=UTC)
    assert not overlaps((at(10, 0), at(11, 0)), (utc_eleven, at(12, 0)))


def test_overlapping_slots_of_the_day() -> None:
    day = Schedule.from_config(parse_config(day_config()))
    pairs = [(a.title, b.title) for a, b in day.overlapping_pairs()]
    assert pairs == [("Coffee", "Posters 1")]
    p1 = day.session("P1")
    assert p1 is not None
    assert [s.title for s in day.overlapping(p1)] == ["Coffee"]
    many = [
        ProgramSlot(at(9, 0), at(12, 0), "other", "Long"),
        ProgramSlot(at(9, 30), at(10, 0), "other", "A"),
        ProgramSlot(at(10, 0), at(10, 30), "other", "B"),
        ProgramSlot(at(12, 0), at(13, 0), "other", "After"),
    ]
    assert [(a.title, b.title) for a, b in overlapping_pairs(many)] == [
        ("Long", "A"),
        ("Long", "B"),
    ]


def test_talks_of_a_paper_by_number_or_forum_id() -> None:
    day = Schedule.from_config(parse_config(day_config()))
    assert day.talk_spans(42, "Zz") == ((at(11, 45), at(12, 0)),)
    assert day.talk_spans(7, "AbCdEf") == ((at(11, 30), at(11, 45)),)
    assert day.talk_spans(7, "Zz") == ()
    assert day.talk_spans(None, "Zz") == ()
    assert [t.start for t in day.talks_of(42, "AbCdEf")] == [at(11, 30), at(11, 45)]
    assert [t.index for t in day.open_talks()] == [2]
    assert day.talks_by_paper() == {
        "42": [(at(11, 45), at(12, 0))],
        "AbCdEf": [(at(11, 30), at(11, 45))],
    }


def test_zone_defaults_to_the_offset_of_the_times() -> None:
    day = Schedule.from_config(
        parse_config(config(talks=[{"start": iso(9, 0), "end": iso(9, 15)}]))
    )
    assert day.zone().utcoffset(None) == timedelta(hours=2)
    assert Schedule().zone() == UTC
    assert Schedule().slots() == []


def _slot(**over: Any) -> dict[str, Any]:
    return {"kind": "invited", "title": "Talk", "start": iso(9, 0), "end": iso(9, 30), **over}


@pytest.mark.parametrize(
    ("program", "key"),
    [
        ({"slots": [_slot(), _slot(kind="keynote")]}, 'program.slots[2] ("Talk").kind'),
        ({"slots": [_slot(end=iso(8, 0))]}, 'program.slots[1] ("Talk")'),
        ({"slots": [_slot(start="2024-05-11T09:00:00")]}, 'program.slots[1] ("Talk").start'),
        ({"slots": [_slot(title="  ")]}, "program.slots[1].title"),
        ({"slots": [_slot(url="javascript:alert(1)")]}, 'program.slots[1] ("Talk").url'),
        ({"slots": [_slot(speeker="Ada")]}, 'program.slots[1] ("Talk").speeker'),
        (
            {"slots": [{"kind": "break", "start": iso(9, 0), "end": iso(9, 30)}]},
            "program.slots[1].title",
        ),
        ({"timezone": "Europe/Viena"}, "program.timezone"),
        ({"timezone": "Europe"}, "program.timezone"),
        ({"timezone": "+02:00"}, "program.timezone"),
        ({"timezone": "../../etc/passwd"}, "program.timezone"),
        ({"stream_url": "file:///etc/passwd"}, "program.stream_url"),
        ({"venue": "Vienna"}, "program.venue"),
    ],
)
def test_a_bad_program_key_is_an_error_naming_it(program: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(config(program=program))
    # Named as the file reads it: lists count from 1, an entry by its title.
    assert key in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_the_example_config_describes_the_bgpt_day() -> None:
    with (ROOT / "config.example.toml").open("rb") as fh:
        cfg = parse_config(tomllib.load(fh))
    day = Schedule.from_config(cfg)
    kinds = [s.kind for s in day.slots()]
    assert kinds.count("invited") == 6
    assert kinds.count("contributed") == 5
    assert kinds.count("poster") == 4
    assert kinds[0] == "opening" and kinds[-1] == "closing"
    assert "break" in kinds
    assert day.timezone == "Europe/Vienna"
    assert day.location is not None and "Vienna" in day.location
    # Posters never overlap a talk slot; breaks may run during a poster session.
    for a, b in day.overlapping_pairs():
        assert {a.kind, b.kind} == {"break", "poster"}, (a, b)


def test_reading_modules_do_not_load_the_solver() -> None:
    code = (
        "import sys\n"
        "import orsync.cli, orsync.schedule, orsync.posters, orsync.site, orsync.publish\n"
        "import orsync.export, orsync.report\n"
        "print(sorted(m for m in sys.modules if m.startswith('ortools')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout
