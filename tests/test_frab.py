"""The day for conference apps (docs/site-files.md): schedule.xml and schedule.json written by real
pushes of BGPT's day and validated against the official c3voc schemas (tests/data/frab/), and the
recordings added after the day, in every format."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import icalendar
import jsonschema
import pytest
import xmlschema

from conftest import Setup
from helpers import accepted, day_config
from orsync import site
from orsync.emulator import Emulator
from orsync.schedule import ProgramSlot, Schedule, Session
from site_helpers import at, record

DATA = Path(__file__).parent / "data" / "frab"
FORMATS = '["json", "ics", "html", "frab"]'
# A title as hostile as text gets: markup, entities, quotes, a CDATA end, an XML noncharacter.
HOSTILE = "<b>x</b> & \"q\" 'a' ]]> &amp; <![CDATA[y]]> \ufffe end"
REGISTRATION = """
[[program.slots]]
kind = "break"
title = "Registration"
start = "2024-05-11T08:20:00+02:00"
end = "2024-05-11T08:50:00+02:00"
"""
RECORDING = "https://example.org/bgpt/recordings/talk-1"
TALK_RECORDING = "https://example.org/bgpt/recordings/contributed-1"


@pytest.fixture(scope="module")
def xsd() -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(DATA / "schedule.xml.xsd")


@pytest.fixture(scope="module")
def json_validator() -> jsonschema.Draft6Validator:
    schema = json.loads((DATA / "schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft6Validator.check_schema(schema)
    return jsonschema.Draft6Validator(
        schema, format_checker=jsonschema.Draft6Validator.FORMAT_CHECKER
    )


@pytest.fixture
def frab_site(tmp_path: Path, emulator: Emulator) -> Setup:
    truth = accepted(emulator)
    orals = sorted(s["number"] for s in truth.values() if s["presentation"] == "oral")[:2]
    config = day_config(tmp_path, emulator, orals, formats=FORMATS)
    return Setup(emulator, tmp_path, config, tmp_path / "orsync.db")


def files(s: Setup) -> tuple[bytes, bytes]:
    site = s.dir / "site"
    return (site / "schedule.xml").read_bytes(), (site / "schedule.json").read_bytes()


def validate(
    s: Setup, xsd: xmlschema.XMLSchema10, json_validator: jsonschema.Draft6Validator
) -> tuple[ET.Element, dict[str, Any]]:
    """Both files, checked against the official schemas, parsed."""
    xml_bytes, json_bytes = files(s)
    xsd.validate(xml_bytes.decode("utf-8"))
    doc = json.loads(json_bytes)
    errors = [f"{list(e.path)}: {e.message}" for e in json_validator.iter_errors(doc)]
    assert not errors
    # orsync's own file, validated above; no DTD or entity in it to expand.
    return ET.fromstring(xml_bytes), doc  # noqa: S314


def json_events(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for day in doc["schedule"]["conference"]["days"]
        for room in day["rooms"].values()
        for e in room
    ]


def xml_events(root: ET.Element) -> list[ET.Element]:
    return root.findall("./day/room/event")


def test_bgpt_day_is_valid_for_the_apps_and_byte_stable(
    frab_site: Setup, xsd: xmlschema.XMLSchema10, json_validator: jsonschema.Draft6Validator
) -> None:
    s = frab_site
    assert s.cli("pull").returncode == 0
    root, doc = validate(s, xsd, json_validator)
    conf = doc["schedule"]["conference"]
    assert conf["acronym"] == "bgpt" and conf["title"].startswith("Bridging the Gap")
    assert conf["time_zone_name"] == "Europe/Vienna" and conf["daysCount"] == 1
    assert [r["name"] for r in conf["rooms"]] == ["Messe Wien Exhibition & Congress Center, Vienna"]
    events = json_events(doc)
    types = [e["type"] for e in events]
    assert types.count("Invited talk") == 6 and types.count("Contributed talk") == 5
    assert types.count("Poster session") == 4 and types.count("Break") == 3
    assert [e["date"] for e in events] == sorted(e["date"] for e in events)
    # The same events in both files, each with a real UUID.
    xml = xml_events(root)
    assert [(e.get("guid"), int(e.get("id", "0"))) for e in xml] == [
        (e["guid"], e["id"]) for e in events
    ]
    assert [e.findtext("title") for e in xml] == [e["title"] for e in events]
    assert all(str(uuid.UUID(e["guid"])) == e["guid"] for e in events)
    # The program's ids and the events agree one to one.
    program = json.loads((s.dir / "site" / "program.json").read_text())
    assert len(program["slots"]) == len(events)
    # Contributed talks: their paper's title, authors as persons, forum and PDF links.
    truth = accepted(s.emu)
    talks = [e for e in events if e["type"] == "Contributed talk" and e["persons"]]
    assert len(talks) == 2
    for talk in talks:
        (paper,) = [p for p in truth.values() if p["title"] == talk["title"]]
        assert [p["name"] for p in talk["persons"]] == paper["authors"]
        assert {x["title"] for x in talk["links"]} == {"OpenReview", "PDF"}
    # Poster sessions link every accepted paper once, with its board.
    posters = [x for e in events if e["type"] == "Poster session" for x in e["links"]]
    assert sorted(x["url"].rpartition("=")[2] for x in posters) == sorted(truth)
    assert all(x["title"].startswith("Board ") for x in posters)
    # Nothing changed: a push and a pull write nothing.
    first = files(s)
    r = s.cli("push")
    assert r.returncode == 0 and "already up to date" in r.stdout
    assert s.cli("pull").returncode == 0
    assert files(s) == first


def test_hostile_titles_stay_data(
    frab_site: Setup, xsd: xmlschema.XMLSchema10, json_validator: jsonschema.Draft6Validator
) -> None:
    s = frab_site
    truth = accepted(s.emu)
    talk_paper = min(
        (f for f, p in truth.items() if p["presentation"] == "oral"),
        key=lambda f: truth[f]["number"],
    )
    s.emu.edit_content(talk_paper, title=HOSTILE, authors=['<i>Eve</i> & "Mallory"'])
    text = s.config.read_text()
    s.config.write_text(
        text.replace(
            'title = "Invited talk 1"',
            "title = " + json.dumps(HOSTILE.replace("\ufffe", "")) + '\nspeaker = "<script>"',
        )
    )
    assert s.cli("pull").returncode == 0
    root, doc = validate(s, xsd, json_validator)
    events = json_events(doc)
    xml = {e.get("guid"): e for e in xml_events(root)}
    # U+FFFE cannot be in an XML file: both files show U+FFFD in its place.
    shown = HOSTILE.replace("\ufffe", "\ufffd")
    hostile = [e for e in events if e["title"] in (shown, HOSTILE.replace("\ufffe", ""))]
    assert len(hostile) == 2  # the talk's paper and the invited talk, word for word
    for e in hostile:
        assert xml[e["guid"]].findtext("title") == e["title"]
        assert [p.text for p in xml[e["guid"]].iter("person")] == [p["name"] for p in e["persons"]]
    assert {p["name"] for e in hostile for p in e["persons"]} == {
        "<script>",
        '<i>Eve</i> & "Mallory"',
    }
    raw_xml, raw_json = files(s)
    assert b"<b>" not in raw_xml and b"<script>" not in raw_xml
    assert b"<" not in raw_json  # written as \u003c, like every JSON file of the site


def test_an_inserted_slot_changes_no_other_event(
    frab_site: Setup, xsd: xmlschema.XMLSchema10, json_validator: jsonschema.Draft6Validator
) -> None:
    s = frab_site
    assert s.cli("pull").returncode == 0
    _, before = validate(s, xsd, json_validator)
    s.config.write_text(s.config.read_text() + REGISTRATION)
    assert s.cli("push").returncode == 0
    _, after = validate(s, xsd, json_validator)
    old = {e["guid"]: e for e in json_events(before)}
    new = {e["guid"]: e for e in json_events(after)}
    (added,) = set(new) - set(old)
    assert new[added]["title"] == "Registration"
    assert {g: new[g] for g in old} == old  # every other event as it was, its id too
    assert before["schedule"]["version"] != after["schedule"]["version"]


def test_recording_added_after_the_day_is_in_every_format(
    frab_site: Setup, xsd: xmlschema.XMLSchema10, json_validator: jsonschema.Draft6Validator
) -> None:
    s = frab_site
    assert s.cli("pull").returncode == 0
    _, before = validate(s, xsd, json_validator)
    text = s.config.read_text()
    text = text.replace(
        'title = "Invited talk 1"', f'title = "Invited talk 1"\nrecording_url = "{RECORDING}"'
    )
    first_talk = 'start = "2024-05-11T11:30:00+02:00"'
    assert text.count(first_talk) == 1
    text = text.replace(first_talk, f'recording_url = "{TALK_RECORDING}"\n{first_talk}')
    s.config.write_text(text)
    r = s.cli("push", "--json")
    assert r.returncode == 0, r.stderr
    changed = json.loads(r.stdout)["changed"]
    assert set(changed) == {
        "index.html",
        "program.json",
        "schedule.ics",
        "schedule.json",
        "schedule.xml",
    }
    root, doc = validate(s, xsd, json_validator)
    site = s.dir / "site"
    for url in (RECORDING, TALK_RECORDING):
        page = (site / "index.html").read_text()
        assert f'<a href="{url}" rel="noopener noreferrer">Recording</a>' in page
        program = json.loads((site / "program.json").read_text())
        assert [x["kind"] for x in program["slots"] if x.get("recording_url") == url]
        cal = icalendar.Calendar.from_ical((site / "schedule.ics").read_bytes())
        assert [
            e for e in cal.walk("VEVENT") if f"Recording: {url}" in str(e.get("DESCRIPTION", ""))
        ]
        (event,) = [
            e
            for e in json_events(doc)
            if {"url": url, "title": "Recording", "type": "media"} in e["links"]
        ]
        (node,) = [e for e in xml_events(root) if e.findtext("recording/link") == url]
        assert node.get("guid") == event["guid"]
        assert node.find("links/link[@type='media']") is not None
    # The talks keep their events: the same guids as before the day.
    assert {e["guid"] for e in json_events(doc)} == {e["guid"] for e in json_events(before)}


def test_recording_url_follows_the_link_rule(frab_site: Setup) -> None:
    s = frab_site
    text = s.config.read_text()
    slot = text.replace(
        'title = "Invited talk 2"',
        'title = "Invited talk 2"\nrecording_url = "javascript:alert(1)"',
    )
    first_talk = 'start = "2024-05-11T11:30:00+02:00"'
    talk = text.replace(first_talk, f'recording_url = "https://x y"\n{first_talk}')
    for config, key in (
        (slot, 'program.slots[3] ("Invited talk 2").recording_url'),
        (talk, "talks[1].recording_url"),
    ):
        s.config.write_text(config)
        r = s.cli("check")
        out = r.stdout + r.stderr
        assert r.returncode == 2 and key in out, out
        assert "must be an http:// or https:// link" in out or "must not contain spaces" in out


def test_odd_names_still_make_valid_files(
    xsd: xmlschema.XMLSchema10, json_validator: jsonschema.Draft6Validator
) -> None:
    """A short venue id, session ids that differ only in case or by what a slug cannot hold,
    an offset instead of a zone, a slot in its own room: still valid, ids and slugs unique."""
    sessions = (
        Session("P1", "Upper", at("10:00"), at("11:00")),
        Session("p1", "Lower", at("10:00"), at("11:00")),
        Session("p 1<", "Odd", at("11:00"), at("12:00")),
    )
    desk = ProgramSlot(at("08:00"), at("08:30"), "other", "Desk", location="Foyer & <hall>")
    day = site.assemble(Schedule(sessions=sessions, program=(desk,)), [record(1)])
    out = site.render([record(1)], list(sessions), ["frab"], day=day, venue_id="X.cc/2025/ML")
    xsd.validate(out["schedule.xml"].decode("utf-8"))
    doc = json.loads(out["schedule.json"])
    assert not [e.message for e in json_validator.iter_errors(doc)]
    conf = doc["schedule"]["conference"]
    assert conf["acronym"] == "ml_2025" and "time_zone_name" not in conf
    assert [r["name"] for r in conf["rooms"]] == ["Foyer & <hall>", "Main room"]
    events = json_events(doc)
    assert len({e["slug"] for e in events}) == len({e["id"] for e in events}) == 4
