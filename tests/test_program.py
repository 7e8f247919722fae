"""The workshop day as `orsync program` shows it, through the CLI against the emulator's BGPT
venue (docs/cli.md, docs/workshop.md)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Setup
from helpers import accepted, day_config
from orsync.emulator import Emulator


def test_program_lists_the_day_and_what_is_missing(tmp_path: Path, emulator: Emulator) -> None:
    truth = accepted(emulator)
    orals = sorted(s["number"] for s in truth.values() if s["presentation"] == "oral")[:2]
    s = Setup(emulator, tmp_path, day_config(tmp_path, emulator, orals), tmp_path / "orsync.db")
    assert s.cli("pull").returncode in (0, 2)  # 2: the posters may report author clashes
    r = s.cli("program", "--json")
    assert r.returncode == 0, r.stderr
    day = json.loads(r.stdout)
    assert day["timezone"] == "Europe/Vienna"
    starts = [(x["start"], x["end"]) for x in day["slots"]]
    assert starts == sorted(starts) and all(x.endswith("+02:00") for pair in starts for x in pair)
    kinds = [x["kind"] for x in day["slots"]]
    assert (
        kinds.count("invited") == 6
        and kinds.count("contributed") == 5
        and kinds.count("poster") == 4
    )
    assert kinds[0] == "opening" and kinds[-1] == "closing" and "break" in kinds
    posters = [x for x in day["slots"] if x["kind"] == "poster"]
    assert sum(len(x["papers"]) for x in posters) == len(truth)  # every accepted paper, once
    talks = [x for x in day["slots"] if x["kind"] == "contributed"]
    assert [t["papers"][0]["number"] for t in talks[:2]] == orals
    assert talks[0]["title"] == next(p["title"] for p in truth.values() if p["number"] == orals[0])
    assert all("papers" not in t for t in talks[2:])
    missing = day["missing"]
    assert sum("has no paper yet" in m for m in missing) == 3
    assert not any("overlaps" in m for m in missing)  # BGPT's breaks sit beside poster sessions
    text = s.cli("program")
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0].startswith("Bridging the Gap") and "08:55-09:10  opening" in text.stdout
    assert "missing (3):" in text.stdout and "(no paper yet)" in text.stdout


def test_program_says_what_clashes(tmp_path: Path, emulator: Emulator) -> None:
    extra = (
        '[[program.slots]]\nkind = "invited"\ntitle = "A keynote during lunch"\n'
        'start = "2024-05-11T12:30:00+02:00"\nend = "2024-05-11T13:00:00+02:00"\n'
    )
    s = Setup(
        emulator, tmp_path, day_config(tmp_path, emulator, [], extra=""), tmp_path / "orsync.db"
    )
    s.config.write_text(s.config.read_text() + "\n" + extra)
    assert s.cli("pull", "--no-push").returncode == 0
    r = s.cli("program", "--json")
    assert r.returncode == 2, r.stderr  # something is wrong, not merely missing
    day = json.loads(r.stdout)
    assert not any("overlaps" in m for m in day["missing"])
    clashes = [p for p in day["problems"] if p["kind"] == "schedule.overlap"]
    # The keynote clashes with the lunch break and poster session 2; lunch beside P2 is fine.
    assert len(clashes) == 2 and all("A keynote during lunch" in p["message"] for p in clashes)
    assert all(p["severity"] == "error" for p in clashes)
    assert any("no poster session yet" in m for m in day["missing"])  # --no-push: none assigned
    text = s.cli("program")
    assert text.returncode == 2 and "problems (2):" in text.stdout
    assert "overlaps invited 'A keynote during lunch' 12:30-13:00" in text.stdout


def test_program_says_which_talk_rules_are_broken(tmp_path: Path, emulator: Emulator) -> None:
    truth = accepted(emulator)
    published = {
        f
        for f, n in emulator.venue.notes.items()
        if n.get("content", {}).get("previously_published", {}).get("value") == "Yes"
    }
    marked = min(s["number"] for f, s in truth.items() if f in published)
    clean = min(s["number"] for f, s in truth.items() if f not in published)
    config = day_config(tmp_path, emulator, [marked, clean, clean])
    s = Setup(emulator, tmp_path, config, tmp_path / "orsync.db")
    assert s.cli("pull").returncode in (0, 2)  # 2: the posters may report author clashes
    r = s.cli("program", "--json")
    assert r.returncode == 2
    problems = json.loads(r.stdout)["problems"]
    assert [p["kind"] for p in problems] == ["talk.previously_published", "talk.duplicate"]
    text = s.cli("program").stdout
    assert f"  - error: talks[1] paper = {marked}: #{marked} is marked previously published" in text
