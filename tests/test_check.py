"""`orsync check` changes nothing, agrees with `pull` and reports each problem it finds."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, Setup, run_cli, write_config
from helpers import accepted, day_config
from orsync.check import CHECK_NAMES
from orsync.config import load_config
from orsync.emulator import Emulator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


EXAMPLE_USERNAME = 'username = "chair@example.org"'


def _example_config(folder: Path, baseurl: str, username: str | None = None) -> Path:
    """A fresh copy of config.example.toml, as a chair makes one: aimed at ``baseurl``, with
    their account in place of the placeholder (the password comes from ``EXAMPLE_ENV``)."""
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    assert 'baseurl = "https://api2.openreview.net"' in text
    text = text.replace('baseurl = "https://api2.openreview.net"', f'baseurl = "{baseurl}"')
    # The example leads chairs to log in: the account line is set, as a placeholder.
    assert EXAMPLE_USERNAME in text
    if username is not None:
        text = text.replace(EXAMPLE_USERNAME, f'username = "{username}"')
    path = folder / "orsync.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _example_env(emu: Emulator | None) -> dict[str, str]:
    return {"ORSYNC_OPENREVIEW_PASSWORD": emu.chair_password if emu else "any-password"}


def _check_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    data = json.loads(result.stdout)
    assert set(data) == {"ok", "exit_code", "checks"}
    assert data["exit_code"] == result.returncode
    assert data["ok"] is (result.returncode == 0)
    for c in data["checks"]:
        assert set(c) == {"name", "ok", "detail", "exit_code", "warning"}
        assert (c["exit_code"] == 0) is c["ok"]
        assert not (c["warning"] and not c["ok"])  # a warning is a check that passed
    return data


def test_check_accepts_a_fresh_example_config_and_creates_nothing(
    tmp_path: Path, emulator: Emulator
) -> None:
    # Untouched but for the URL, the placeholder account has no password: check says where.
    _example_config(tmp_path, emulator.url)
    placeholder = run_cli("check", cwd=tmp_path)
    assert placeholder.returncode == 2, placeholder.stdout
    assert "openreview.username is set but no password was found" in placeholder.stdout
    _example_config(tmp_path, emulator.url, emulator.chair_username)
    env = _example_env(emulator)
    result = run_cli("check", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[1].rstrip(":") for line in lines] == list(CHECK_NAMES)
    assert "FAIL" not in result.stdout
    assert "orsync.db does not exist yet; `orsync pull` will create it" in result.stdout
    assert "site/static/orsync does not exist yet" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orsync.toml"]
    # What check promised, pull does: the store and site/static/orsync (with its parents) appear.
    pulled = run_cli("pull", cwd=tmp_path, env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "orsync.db").is_file() and (tmp_path / "site" / "static" / "orsync").is_dir()
    again = run_cli("check", cwd=tmp_path, env=env)
    assert again.returncode == 0 and "current schema" in again.stdout


def test_check_unreachable_server_still_reports_every_line(tmp_path: Path) -> None:
    _example_config(tmp_path, f"http://127.0.0.1:{_free_port()}")
    env = _example_env(None)
    result = run_cli("check", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 3, result.stderr
    data = _check_json(result)
    checks = {c["name"]: c for c in data["checks"] if not c.get("warning")}
    assert list(checks) == list(CHECK_NAMES)
    assert not checks["login"]["ok"] and "kept failing" in checks["login"]["detail"]
    assert not checks["venue"]["ok"] and "not checked" in checks["venue"]["detail"]
    assert checks["store"]["ok"] and checks["website"]["ok"] and checks["config"]["ok"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orsync.toml"]
    text = run_cli("check", cwd=tmp_path, env=env)
    assert text.returncode == 3 and len(text.stdout.splitlines()) == len(CHECK_NAMES)


def test_check_json_has_one_shape_on_success_and_failure(setup: Setup) -> None:
    ok = _check_json(setup.cli("check", "--json"))
    assert ok["ok"] and ok["exit_code"] == 0
    assert [c["name"] for c in ok["checks"]] == list(CHECK_NAMES)
    bad = write_config(setup.dir / "bad", setup.emu, password="wrong")
    failed = _check_json(run_cli("--config", str(bad), "check", "--json"))
    assert not failed["ok"] and failed["exit_code"] == 4
    assert [c["name"] for c in failed["checks"]] == list(CHECK_NAMES)
    broken = setup.dir / "broken.toml"
    broken.write_text("[openreview\n")
    result = run_cli("--config", str(broken), "check", "--json")
    assert result.returncode == 2
    data = _check_json(result)
    assert [c["name"] for c in data["checks"]] == ["config"]


def test_check_store_problems_match_pull(setup: Setup) -> None:
    # A folder that does not exist: pull refuses it, so check does.
    config = setup.config.read_text()
    missing = setup.config.with_name("missing.toml")
    missing.write_text(config.replace(str(setup.db), str(setup.dir / "nope" / "x.db")))
    result = run_cli("--config", str(missing), "check", "--json")
    assert result.returncode == 5
    store = {c["name"]: c for c in _check_json(result)["checks"] if not c.get("warning")}["store"]
    assert "does not exist; create it first" in store["detail"]
    # Another program's database: refused, and left alone.
    con = sqlite3.connect(setup.db)
    con.execute("CREATE TABLE papers (id INTEGER PRIMARY KEY, title TEXT)")
    con.commit()
    con.close()
    before = setup.db.read_bytes()
    result = setup.cli("check")
    assert result.returncode == 5 and "another program" in result.stdout
    assert setup.db.read_bytes() == before


def test_check_names_a_container_group(tmp_path: Path, emulator: Emulator) -> None:
    config = write_config(tmp_path, emulator, venue_id="ICLR.cc/2024/Workshop")
    result = run_cli("--config", str(config), "check")
    assert result.returncode == 4
    assert (
        "group of venues" in result.stdout
        and "orsync venues ICLR.cc/2024/Workshop/" in result.stdout
    )


def test_check_reports_each_problem(setup: Setup) -> None:
    ok = setup.cli("check")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "venue" in ok.stdout and "FAIL" not in ok.stdout
    bad = write_config(setup.dir / "bad", setup.emu, password="wrong")
    result = run_cli("--config", str(bad), "check", "--json")
    assert result.returncode == 4
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"] if not c.get("warning")}
    assert checks["config"]["ok"] and not checks["login"]["ok"] and checks["store"]["ok"]
    assert "rejected the login" in checks["login"]["detail"]


def _published(emu: Emulator) -> set[str]:
    """The forum ids the venue's form marks as previously published."""
    return {
        f
        for f, n in emu.venue.notes.items()
        if n.get("content", {}).get("previously_published", {}).get("value") == "Yes"
    }


def _checks(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in _check_json(result)["checks"] if not c.get("warning")}


def test_check_fails_on_what_the_push_fails_on(tmp_path: Path, emulator: Emulator) -> None:
    truth = accepted(emulator)
    first = min(s["number"] for f, s in truth.items() if f not in _published(emulator))
    s = Setup(emulator, tmp_path, day_config(tmp_path, emulator, [first]), tmp_path / "orsync.db")
    assert s.cli("pull").returncode in (0, 2)  # 2: the posters may report author clashes
    fine = _checks(s.cli("check", "--json"))
    assert fine["talks"]["ok"] and fine["day"]["ok"], fine
    assert s.cli("posters", "pin", str(first), "P2").returncode in (0, 2)
    # The talk moves into the lunch break and poster session P2, where its poster is pinned,
    # and the boards shrink below the accepted papers.
    text = s.config.read_text()
    talk = 'start = "2024-05-11T11:30:00+02:00"\nend = "2024-05-11T11:45:00+02:00"'
    assert text.count(talk) == 1
    text = text.replace(talk, talk.replace("11:30", "12:30").replace("11:45", "12:45"))
    s.config.write_text(text.replace("boards_per_session = 20", "boards_per_session = 5"))
    result = s.cli("check", "--json")
    assert result.returncode == 2
    day = _checks(result)["day"]
    assert not day["ok"] and day["exit_code"] == 2
    assert "contributed talk 12:30-12:45 (talks[1])" in day["detail"]
    assert "overlaps" in day["detail"]
    assert (
        f"#{first} is pinned to poster session P2 (12:00-14:00), which overlaps its talk"
        in (day["detail"])
    )
    assert f"{len(truth)} posters do not fit 4 sessions × 5 boards" in day["detail"]
    # program says the same, one problem each, and exits 2; the push fails on them.
    program = s.cli("program", "--json")
    assert program.returncode == 2
    problems = json.loads(program.stdout)["problems"]
    kinds = {p["kind"] for p in problems}
    assert {"schedule.overlap", "poster.pin_overlaps_talk", "poster.capacity"} <= kinds
    assert all(p["message"] in day["detail"] for p in problems if p["severity"] == "error")
    pushed = s.cli("push")
    assert pushed.returncode == 2
    assert "pinned to session 'P2', which overlaps its talk" in pushed.stderr


def test_check_fails_on_broken_talk_rules(tmp_path: Path, emulator: Emulator) -> None:
    truth = accepted(emulator)
    marked = sorted(s["number"] for f, s in truth.items() if f in _published(emulator))
    clean = sorted(s["number"] for f, s in truth.items() if f not in _published(emulator))
    assert marked and clean
    # A previously published paper as a talk, one paper in two slots, a value nobody answers.
    config = day_config(tmp_path, emulator, [marked[0], clean[0], clean[0]])
    text = config.read_text().replace('exclude_values = ["Yes"]', 'exclude_values = ["Yes", "Yup"]')
    config.write_text(text)
    s = Setup(emulator, tmp_path, config, tmp_path / "orsync.db")
    assert s.cli("pull", "--no-push").returncode == 0
    result = s.cli("check", "--json")
    assert result.returncode == 2
    talks = _checks(result)["talks"]
    assert not talks["ok"] and talks["exit_code"] == 2
    assert (
        f"talks[1] paper = {marked[0]}: #{marked[0]} is marked previously published"
        in (talks["detail"])
    )
    assert (
        f"#{clean[0]} has two contributed talks: talks[2] (11:45-12:00) and talks[3]"
        in (talks["detail"])
    )
    assert (
        "talk_selection.exclude_values 'Yup' matches no submission's previously_published"
        in (talks["detail"])
    )
    # A field the form does not have.
    config.write_text(
        text.replace('exclude_field = "previously_published"', 'exclude_field = "prior"')
    )
    result = s.cli("check", "--json")
    assert result.returncode == 2
    detail = _checks(result)["talks"]["detail"]
    assert "no submission has the field talk_selection.exclude_field = 'prior'" in detail


SLOT = 'kind = "invited"\nstart = "2024-05-11T09:00:00+02:00"\nend = "2024-05-11T10:00:00+02:00"\n'
SESSION = 'id = "P1"\nstart = "2024-05-11T10:00:00+02:00"\nend = "2024-05-11T11:00:00+02:00"\n'


@pytest.mark.parametrize(
    ("key", "toml"),
    [
        ("program.name", '[program]\nname = "BGPT 2024\\nX-INJECTED:1"'),
        ("program.location", '[program]\nlocation = "Hall\\tA"'),
        ("program.slots[0].title", f'[[program.slots]]\n{SLOT}title = "Keynote \\u202eevil"'),
        ("program.slots[0].speaker", f'[[program.slots]]\n{SLOT}title = "K"\nspeaker = "A\\rB"'),
        (
            "program.slots[0].location",
            f'[[program.slots]]\n{SLOT}title = "K"\nlocation = "A\\u2028B"',
        ),
        ("posters.sessions[0].name", f'[[posters.sessions]]\n{SESSION}name = "P\\u001b[2J"'),
    ],
)
def test_one_line_config_text_is_refused_with_its_key(
    tmp_path: Path, emulator: Emulator, key: str, toml: str
) -> None:
    """A name or title the site shows on one line (a calendar property, a heading) may not hold
    a line break or control character: refused by check and by the push with the key named,
    before any file is written (a newline in program.name used to fail every format)."""
    site = '[website]\noutput_dir = "site"\nformats = ["json", "yaml", "csv", "ics", "html"]\n'
    config = write_config(tmp_path, emulator, extra=site + toml)
    # The key as the config names it: its list index counted from 1, maybe the entry's title.
    pattern = re.escape(key).replace(r"\[0\]", r"\[1\](?: \(\"[^']*\"\))?")
    why = "must be one line, without line breaks or control characters"
    checked = run_cli("--config", str(config), "check")
    assert checked.returncode == 2, checked.stdout
    failed = [line for line in checked.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith("FAIL config: "), checked.stdout
    assert re.search(f"invalid value for '{pattern}': {why}$", failed[0]), failed[0]
    pushed = run_cli("--config", str(config), "pull")
    assert pushed.returncode == 2, pushed.stderr
    assert re.search(f"'{pattern}': {why}", pushed.stderr), pushed.stderr
    assert not (tmp_path / "site").exists() and not (tmp_path / "orsync.db").exists()


def test_check_warns_on_a_placeholder_title_close_to_the_day(
    tmp_path: Path, emulator: Emulator
) -> None:
    soon = datetime.now(UTC) + timedelta(days=3)
    slot = (
        "[[program.slots]]\nkind = 'invited'\ntitle = 'Invited talk 2'\n"
        f"start = '{soon.isoformat(timespec='seconds')}'\n"
        f"end = '{(soon + timedelta(minutes=30)).isoformat(timespec='seconds')}'\n"
    )
    config = write_config(tmp_path, emulator, extra="[program]\n" + slot)
    result = run_cli("--config", str(config), "check")
    assert result.returncode == 0, result.stdout
    assert "WARN day: program.slots[1] is still titled 'Invited talk 2'" in result.stdout
    # Further from the day than program.warn_days: not yet.
    config = write_config(tmp_path, emulator, extra="[program]\nwarn_days = 2\n" + slot)
    result = run_cli("--config", str(config), "check")
    assert result.returncode == 0 and "still titled" not in result.stdout


def test_the_example_config_is_the_bgpt_day_and_publishes_a_served_folder() -> None:
    """Six invited talks of 30 minutes, five contributed slots, four poster sessions, breaks;
    the files go to a folder a site generator serves (never Jekyll's unpublished `_data`)."""
    config = load_config(ROOT / "config.example.toml")
    invited = [s for s in config.program.slots if s.kind == "invited"]
    assert len(invited) == 6
    assert {s.end - s.start for s in invited} == {timedelta(minutes=30)}
    assert len(config.talks) == 5 and len(config.posters.sessions) == 4
    assert any(s.kind == "break" for s in config.program.slots)
    assert config.website is not None and "_data" not in config.website.output_dir.parts
