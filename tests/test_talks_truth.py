"""The configured talks are the truth for the day (docs/workshop.md#talks-and-orals): each paper's
talk in every paper file, ``presentation`` derived from the talks (or from OpenReview's decision
with ``program.presentation_from = "decision"``), and a mismatch between the two said in
``check``, ``program`` and the push. And a pin that cannot hold is refused, never reported as
made."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import icalendar
import pytest
import yaml

from conftest import Setup
from helpers import accepted, at, day_config, website_config
from orsync.emulator import Emulator
from orsync.schedule import Schedule, TalkSlot
from orsync.site import PaperRecord, assemble

# The bgpt emulator (seed 7) decides "Accept (Oral)" for #6, 28, 51, 71 and 120. The chairs'
# shortlist keeps #6, 28 and 51, drops #71 and #120, and adds #22 and #38 (posters on OpenReview).
TALKS = [22, 6, 28, 38, 51]
ORALS = {6, 28, 51, 71, 120}
WARNINGS = [
    "#22 has a talk but OpenReview says poster",
    "#38 has a talk but OpenReview says poster",
    "#71 is an oral on OpenReview but has no talk",
    "#120 is an oral on OpenReview but has no talk",
]


def make_site(tmp_path: Path, emu: Emulator, presentation_from: str | None = None) -> Setup:
    extra = "" if presentation_from is None else f'presentation_from = "{presentation_from}"\n'
    config = day_config(tmp_path, emu, TALKS)
    if extra:
        text = config.read_text()
        config.write_text(text.replace("[program]\n", "[program]\n" + extra, 1))
    return Setup(emu, tmp_path, config, tmp_path / "orsync.db")


def by_number(items: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {p["number"]: p for p in items}


def page_badges(html: str, number: int) -> str:
    """The badges line of a paper's entry on index.html."""
    article = re.search(rf'<article class="paper" id="paper-{number}">(.*?)</article>', html, re.S)
    assert article, number
    badges = re.search(r'<p class="badges">(.*?)</p>', article.group(1), re.S)
    return badges.group(1) if badges else ""


def test_the_talks_decide_presentation_in_every_file_and_mismatches_are_said(
    tmp_path: Path, emulator: Emulator
) -> None:
    truth = accepted(emulator)
    assert {s["number"] for s in truth.values() if s["presentation"] == "oral"} == ORALS
    s = make_site(tmp_path, emulator)
    pulled = s.cli("pull")
    assert pulled.returncode == 0, pulled.stderr
    site = s.dir / "site"
    papers = by_number(json.loads((site / "papers.json").read_text()))
    program = json.loads((site / "program.json").read_text())
    talk_slots = {x["papers"][0]: x for x in program["slots"] if x["kind"] == "contributed"}
    uids = set(
        str(e["UID"])
        for e in icalendar.Calendar.from_ical((site / "schedule.ics").read_bytes()).walk("VEVENT")
    )
    html = (site / "index.html").read_text()
    for number, p in papers.items():
        if number in TALKS:
            assert p["presentation"] == "oral", number
            talk = p["talk"]
            slot = talk_slots[p["id"]]
            assert (talk["start"], talk["end"]) == (slot["start"], slot["end"])
            assert datetime.fromisoformat(talk["start"]).utcoffset() is not None
            assert any(uid.startswith(talk["slot"] + ".") for uid in uids), talk["slot"]
            start = datetime.fromisoformat(talk["start"]).strftime("%H:%M")
            badges = page_badges(html, number)
            assert ">Oral<" in badges and f"Talk {start}" in badges, badges
        else:
            assert p["presentation"] == "poster" and p["talk"] is None, number
            assert ">Oral<" not in page_badges(html, number)
    assert list(papers[22])[:13] == [
        "id", "number", "title", "authors", "keywords", "abstract", "tldr", "pdf_url",
        "forum_url", "decision", "presentation", "talk", "session",
    ]  # fmt: skip
    # Every paper file says the same.
    yml = by_number(yaml.safe_load((site / "papers.yml").read_text()))
    assert {n: (p["presentation"], p["talk"]) for n, p in yml.items()} == {
        n: (p["presentation"], p["talk"]) for n, p in papers.items()
    }
    rows = list(csv.DictReader(io.StringIO((site / "papers.csv").read_text())))
    header = (site / "papers.csv").read_text().splitlines()[0]
    assert header == (
        "UID,title,authors,abstract,keywords,sessions,pdf_url,presentation,board,"
        "talk_start,talk_end"
    )
    ids = {p["id"]: p for p in papers.values()}
    for row in rows:
        p = ids[row["UID"]]
        assert row["presentation"] == p["presentation"]
        assert (row["talk_start"], row["talk_end"]) == (
            (p["talk"]["start"], p["talk"]["end"]) if p["talk"] else ("", "")
        )
    posters = [
        q for session in json.loads((site / "posters.json").read_text()) for q in session["papers"]
    ]
    assert {q["number"]: q["talk"] for q in posters} == {n: p["talk"] for n, p in papers.items()}
    # The mismatches are warnings of the push, on the terminal and in --json.
    for line in WARNINGS:
        assert f"warning: {line}" in pulled.stderr
    pushed = s.cli("push", "--json")
    assert pushed.returncode == 0, pushed.stderr
    assert [w for w in json.loads(pushed.stdout)["warnings"] if w in WARNINGS] == WARNINGS
    # ... of `program`, which shows the day as the site does ...
    shown = s.cli("program")
    assert shown.returncode == 0 and all(line in shown.stdout for line in WARNINGS), shown.stdout
    day = json.loads(s.cli("program", "--json").stdout)
    assert day["warnings"] == WARNINGS
    # ... and of `check`: WARN lines, exit 0.
    checked = s.cli("check")
    assert checked.returncode == 0, checked.stdout
    for line in WARNINGS:
        assert f"WARN talks: {line}" in checked.stdout
    report = json.loads(s.cli("check", "--json").stdout)
    assert report["ok"] and report["exit_code"] == 0
    assert [c["detail"] for c in report["checks"] if c.get("warning")] == WARNINGS
    # ... and `status`, what a chair looks at on the day: the last push's warnings.
    status = json.loads(s.cli("status", "--json").stdout)
    assert [w for w in status["push_warnings"] if w in WARNINGS] == WARNINGS
    shown_status = s.cli("status", env={"COLUMNS": "200"}).stdout
    assert "push warned" in shown_status and WARNINGS[0] in shown_status


def test_presentation_from_decision_keeps_openreview_and_still_carries_the_talks(
    tmp_path: Path, emulator: Emulator
) -> None:
    s = make_site(tmp_path, emulator, "decision")
    pulled = s.cli("pull")
    assert pulled.returncode == 0, pulled.stderr
    papers = by_number(json.loads((s.dir / "site" / "papers.json").read_text()))
    for number, p in papers.items():
        assert p["presentation"] == ("oral" if number in ORALS else "poster"), number
        assert (p["talk"] is not None) == (number in TALKS), number
    html = (s.dir / "site" / "index.html").read_text()
    assert ">Oral<" in page_badges(html, 71) and "Talk" not in page_badges(html, 71)
    for line in WARNINGS:
        assert f"warning: {line}" in pulled.stderr
    assert json.loads(s.cli("program", "--json").stdout)["warnings"] == WARNINGS


def test_talks_that_match_the_orals_give_no_warning(tmp_path: Path, emulator: Emulator) -> None:
    s = Setup(
        emulator, tmp_path, day_config(tmp_path, emulator, sorted(ORALS)), tmp_path / "orsync.db"
    )
    pulled = s.cli("pull")
    assert pulled.returncode == 0 and "OpenReview" not in pulled.stderr, pulled.stderr
    assert json.loads(s.cli("program", "--json").stdout)["warnings"] == []
    assert "WARN" not in s.cli("check").stdout


@pytest.fixture
def overlapping(tmp_path: Path, emulator: Emulator) -> Setup:
    """A site whose first talk (#22) moved to 12:30, inside poster session P2 (12:00-14:00)."""
    config = website_config(tmp_path, emulator, TALKS)
    text = config.read_text()
    config.write_text(
        text.replace(f'start = "{at("11:30")}"', f'start = "{at("12:30")}"', 1).replace(
            f'end = "{at("11:45")}"', f'end = "{at("12:45")}"', 1
        )
    )
    return Setup(emulator, tmp_path, config, tmp_path / "orsync.db")


def test_a_pin_into_a_session_overlapping_the_talk_is_refused_and_not_stored(
    overlapping: Setup,
) -> None:
    s = overlapping
    assert s.cli("pull").returncode == 0
    before = (s.dir / "site" / "papers.json").read_bytes()
    refused = s.cli("posters", "pin", "22", "P2")
    assert refused.returncode == 2
    out = refused.stdout + refused.stderr
    assert "is pinned" not in out and "pinned paper" not in out, out
    assert "not pinned" in out and "P2" in out and "12:30" in out, out
    # What to do instead: the sessions it may be pinned to, or move the talk.
    assert "P1" in out and "move the talk" in out, out
    shown = json.loads(s.cli("posters", "show", "--json").stdout)
    assert not any(r["pinned"] for r in shown)
    assert (s.dir / "site" / "papers.json").read_bytes() == before
    # A pin that can hold still works.
    assert s.cli("posters", "pin", "22", "P3").returncode == 0


# -- who presents ----------------------------------------------------------------------------------


def with_speakers(config: Path, speakers: dict[int, str]) -> None:
    """Give the talks of these papers a `speaker` in the config."""
    text = config.read_text()
    for number, name in speakers.items():
        text = text.replace(
            f"paper = {number}\n", f"paper = {number}\nspeaker = {json.dumps(name)}\n", 1
        )
    config.write_text(text)


def test_a_talk_names_its_speaker_everywhere_and_check_warns_on_a_non_author(
    tmp_path: Path, emulator: Emulator
) -> None:
    s = make_site(tmp_path, emulator)
    truth = {t["number"]: t for t in accepted(emulator).values()}
    speaker = truth[TALKS[0]]["authors"][-1]
    assert speaker and speaker not in truth[TALKS[1]]["authors"]
    # The first talk's speaker written in other case; the second's not an author of its paper.
    with_speakers(s.config, {TALKS[0]: speaker.upper(), TALKS[1]: speaker})
    assert s.cli("pull").returncode == 0

    site = tmp_path / "site"
    program = json.loads((site / "program.json").read_text())
    talks = [x for x in program["slots"] if x["kind"] == "contributed"]
    assert [t.get("speaker") for t in talks] == [speaker.upper(), speaker, None, None, None]
    page = (site / "index.html").read_text()
    assert f"Speaker: {speaker.upper()}" in page
    cal = icalendar.Calendar.from_ical((site / "schedule.ics").read_bytes())
    described = [
        str(e["DESCRIPTION"])
        for e in cal.walk("VEVENT")
        if "Speaker:" in str(e.get("DESCRIPTION", ""))
    ]
    assert len(described) == 2 and f"Speaker: {speaker}" in "\n".join(described)
    assert f"speaker: {speaker.upper()}" in s.cli("program").stdout

    check = json.loads(s.cli("check", "--json").stdout)
    said = [c for c in check["checks"] if c.get("warning") and "speaker is not" in c["detail"]]
    assert len(said) == 1, check["checks"]
    assert f"talks[2] speaker is not an author of #{TALKS[1]}" in said[0]["detail"]
    assert speaker not in said[0]["detail"]  # the log names papers by number only


def test_the_speaker_of_a_talk_whose_paper_is_not_released_stays_off_the_site(
    tmp_path: Path,
) -> None:
    with Emulator(dataset="bgpt", seed=7, phase="review", hold_decisions=True) as emu:
        emu.advance("decision")
        truth = emu.truth("chair")["submissions"]
        decided = sorted(
            (
                t
                for t in truth.values()
                if t["status"] == "active" and (t["decision"] or "").startswith("Accept")
            ),
            key=lambda t: t["number"],
        )
        assert decided and not accepted(emu), "decisions must be held, not released"
        talk = decided[0]
        speaker = talk["authors"][0]
        config = day_config(tmp_path, emu, [talk["number"]])
        with_speakers(config, {talk["number"]: speaker})
        s = Setup(emu, tmp_path, config, tmp_path / "orsync.db")
        assert s.cli("pull").returncode == 0
        site = tmp_path / "site"
        files = {p.name: p.read_text() for p in site.iterdir() if p.is_file()}
        assert files and not [n for n, body in files.items() if speaker in body]
        check = json.loads(s.cli("check", "--json").stdout)
        assert not [c for c in check["checks"] if "speaker is not" in c["detail"]]  # an author

        assert emu.release_decisions() > 0
        assert s.cli("pull").returncode == 0
        program = json.loads((site / "program.json").read_text())
        first = next(x for x in program["slots"] if x["kind"] == "contributed")
        assert first["speaker"] == speaker
        assert f"Speaker: {speaker}" in (site / "index.html").read_text()


def test_an_accepted_paper_whose_authors_are_hidden_does_not_name_its_speaker() -> None:
    """Accepted and public, but its authors not (a venue that keeps them anonymous): the
    speaker would name one of them."""
    talk = TalkSlot(
        datetime.fromisoformat(at("11:30")),
        datetime.fromisoformat(at("11:45")),
        "7",
        0,
        "Ada Lovelace",
    )
    paper = PaperRecord(
        id="f7", number=7, title="T", authors=(), keywords=(), abstract=None, tldr=None,
        pdf_url=None, forum_url=None, decision="Accept", presentation="poster", session=None,
        board=None,
    )  # fmt: skip
    slot = assemble(Schedule(talks=(talk,)), [paper]).slots[0]
    assert slot.paper == paper and slot.speaker is None
    shown = assemble(Schedule(talks=(talk,)), [replace(paper, authors=("Ada Lovelace",))])
    assert shown.slots[0].speaker == "Ada Lovelace"
