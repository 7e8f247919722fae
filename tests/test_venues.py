"""Finding the venue id: `orsync venues` lists the groups under a prefix, and a venue id that
names no venue is met with the close matches."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli, write_config
from helpers import one_line_error
from orsync.emulator import Emulator


def test_venues_lists_the_groups_under_a_prefix(tmp_path: Path, emulator: Emulator) -> None:
    config = write_config(tmp_path, emulator, venue_id="ICLR.cc/2024/Workshop/Unknown")
    listed = run_cli("--config", str(config), "venues", "ICLR.cc/2024/Workshop/")
    assert listed.returncode == 0, listed.stderr
    ids = [line.split()[0] for line in listed.stdout.splitlines()]
    assert emulator.venue_id in ids and "ICLR.cc/2024/Workshop/DMLR" in ids
    # Default prefix: beside the configured venue id; JSON for scripts.
    data = json.loads(run_cli("--config", str(config), "venues", "--json").stdout)
    assert data["prefix"] == "ICLR.cc/2024/Workshop/"
    assert {"id": emulator.venue_id, "title": "ICLR 2024 Workshop BGPT", "venue": True} in data[
        "groups"
    ]
    # A partial last segment filters; the container one level up is a group, not a venue.
    partial = run_cli("--config", str(config), "venues", "ICLR.cc/2024/Workshop/B")
    assert [line.split()[0] for line in partial.stdout.splitlines()] == [emulator.venue_id]
    up = json.loads(run_cli("--config", str(config), "venues", "ICLR.cc/2024/", "--json").stdout)
    assert up["groups"] == [{"id": "ICLR.cc/2024/Workshop", "title": None, "venue": False}]
    none = run_cli("--config", str(config), "venues", "NoSuch.cc/")
    assert none.returncode == 0 and "no groups under NoSuch.cc/" in none.stdout


def test_unknown_venue_suggests_close_matches(tmp_path: Path, emulator: Emulator) -> None:
    config = write_config(tmp_path, emulator, venue_id="ICLR.cc/2024/Workshop/BGTP")
    result = run_cli("--config", str(config), "pull")
    one_line_error(
        result,
        4,
        "did you mean ICLR.cc/2024/Workshop/BGPT?",
        "orsync venues ICLR.cc/2024/Workshop/",
    )
    checked = run_cli("--config", str(config), "check")
    assert checked.returncode == 4
    assert "FAIL venue: venue ICLR.cc/2024/Workshop/BGTP not found" in checked.stdout
    assert "did you mean ICLR.cc/2024/Workshop/BGPT?" in checked.stdout


def test_venues_with_the_wrong_case_suggests_the_right_one(
    tmp_path: Path, emulator: Emulator
) -> None:
    config = write_config(tmp_path, emulator)
    wrong = run_cli("--config", str(config), "venues", "iclr.cc/2024/workshop/")
    assert wrong.returncode == 0, wrong.stderr
    assert "did you mean ICLR.cc/2024/Workshop/?" in wrong.stdout
    partial = run_cli("--config", str(config), "venues", "iclr.cc/2024/Workshop/bg", "--json")
    assert json.loads(partial.stdout)["suggestion"] == "ICLR.cc/2024/Workshop/BG"
    none = json.loads(run_cli("--config", str(config), "venues", "NoSuch.cc/", "--json").stdout)
    assert none["groups"] == [] and none["suggestion"] is None
