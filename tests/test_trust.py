"""Nothing a chair does loses the published site, and no failure looks like success.

Each test walks one case through the CLI as a chair would: the CLI's entry point, the emulator
over HTTP, real files in real folders; a real process where it is killed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import Setup, run_cli, write_config
from helpers import one_error_line, website_config
from orsync.emulator import Emulator


def _papers(site_dir: Path) -> list[dict[str, object]]:
    return json.loads((site_dir / "papers.json").read_text(encoding="utf-8"))


@pytest.fixture
def site(tmp_path: Path, emulator: Emulator) -> Setup:
    truth = emulator.truth("chair")["submissions"]
    orals = sorted(s["number"] for s in truth.values() if s["presentation"] == "oral")
    config = website_config(tmp_path, emulator, orals)
    return Setup(emulator, tmp_path, config, tmp_path / "orsync.db")


def _relative_store(config: Path) -> None:
    text = config.read_text(encoding="utf-8")
    lines = [
        'url = "sqlite:///orsync.db"' if ln.startswith("url = ") else ln for ln in text.splitlines()
    ]
    config.write_text("\n".join(lines), encoding="utf-8")


def test_relative_store_url_follows_the_config_not_the_shell(site: Setup, tmp_path: Path) -> None:
    _relative_store(site.config)
    # The chair works in the venue's folder: pull, pin a poster-only paper away, push.
    first = run_cli("pull", cwd=site.dir)
    assert first.returncode == 0, first.stderr
    papers = _papers(site.dir / "site")
    poster = next(p for p in papers if p["presentation"] == "poster")
    here = poster["session"]["id"]  # type: ignore[index]
    other = next(s for s in ("P1", "P2", "P3", "P4") if s != here)
    pinned = run_cli("posters", "pin", str(poster["number"]), other, cwd=site.dir)
    assert pinned.returncode == 0, pinned.stderr
    assert f"pinned paper #{poster['number']} to {other}" in pinned.stdout
    # The pin is published at once (the site shows it without a separate push).
    moved = {p["id"]: p for p in _papers(site.dir / "site")}[poster["id"]]
    assert moved["session"]["id"] == other  # type: ignore[index]

    # Later, from the home folder, with the config given by path.
    home = tmp_path / "home"
    home.mkdir()
    again = run_cli("-c", str(site.config), "pull", cwd=home)
    assert again.returncode == 0, again.stderr
    assert not (home / "orsync.db").exists(), "a relative store.url followed the shell"
    after = {p["id"]: p for p in _papers(site.dir / "site")}
    assert after[poster["id"]]["session"]["id"] == other  # type: ignore[index]
    assert len(after) == len(papers)


def test_push_from_an_empty_store_is_refused(site: Setup, tmp_path: Path) -> None:
    assert site.cli("pull").returncode == 0
    before = (site.dir / "site" / "papers.json").read_bytes()
    published = len(json.loads(before))
    assert published > 10
    # Another config naming the same site but a store that was never pulled.
    other = tmp_path / "other"
    other.mkdir()
    text = site.config.read_text(encoding="utf-8")
    text = text.replace(str(site.dir / "orsync.db"), str(other / "orsync.db"))
    text = text.replace('output_dir = "site"', f'output_dir = "{site.dir / "site"}"')
    (other / "pw").write_text(site.emu.chair_password)
    config = other / "orsync.toml"
    config.write_text(text, encoding="utf-8")
    assert not (other / "orsync.db").exists()  # never pulled: push creates an empty store
    refused = run_cli("-c", str(config), "push")
    assert refused.returncode == 5, refused.stdout + refused.stderr
    line = one_error_line(refused.stderr)
    assert f"refusing to publish 0 papers over the {published}" in line
    assert "--force" in line and "store.url" in line
    assert (site.dir / "site" / "papers.json").read_bytes() == before
    # The refusal is recorded, so monitoring sees it.
    status = json.loads(run_cli("-c", str(config), "status", "--json").stdout)
    assert status["last_push"]["outcome"] == "refused"
    # --force is the way to publish it anyway.
    forced = run_cli("-c", str(config), "push", "--force")
    assert forced.returncode == 0, forced.stderr
    assert _papers(site.dir / "site") == []


def test_a_failed_push_shows_in_pull_and_status(site: Setup) -> None:
    # A file where the website folder should be: the cycle succeeds, the push cannot.
    (site.dir / "site").write_text("in the way", encoding="utf-8")
    result = site.cli("pull")
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_error_line(result.stderr)
    assert "website.output_dir" in line and "unexpected" not in line
    assert "cycle 1:" in result.stdout  # the cycle's own summary is still printed
    info = json.loads(site.cli("status", "--json").stdout)
    assert info["cycles"][0]["outcome"] == "ok"
    assert info["last_push"]["outcome"] == "failed"
    assert "website.output_dir" in info["last_push"]["error"]
    text = site.cli("status").stdout
    assert re.search(r"last push\s+failed at", text), text
    # With --json the failure is a JSON object on stdout too, with the cycle's summary.
    as_json = site.cli("pull", "--json")
    assert as_json.returncode == 2
    data = json.loads(as_json.stdout)
    assert data["ok"] is False and data["exit_code"] == 2
    assert data["cycle"]["outcome"] == "ok" and data["push"]["outcome"] == "failed"


def test_more_papers_than_boards_still_publishes_the_metadata(
    tmp_path: Path, emulator: Emulator
) -> None:
    config = website_config(tmp_path, emulator, [], boards=2)
    result = run_cli("--config", str(config), "pull")
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_error_line(result.stderr)
    assert "boards short" in line and "posters.boards_per_session" in line
    papers = _papers(tmp_path / "site")
    accepted = [
        s for s in emulator.truth("chair")["submissions"].values() if s["status"] == "accepted"
    ]
    assert len(papers) == len(accepted) > 8
    assert all(p["session"] is None for p in papers)


def test_talks_naming_no_accepted_paper_are_reported(tmp_path: Path, emulator: Emulator) -> None:
    subs = emulator.truth("chair")["submissions"]
    rejected = next(s["number"] for s in subs.values() if s["status"] == "rejected")
    forum, accepted = next((f, s) for f, s in subs.items() if s["status"] == "accepted")
    config = website_config(tmp_path, emulator, [accepted["number"], rejected, 99999])
    result = run_cli("--config", str(config), "pull")
    assert result.returncode == 0, result.stderr
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("warning: talks[")]
    assert len(warnings) == 2, result.stderr
    assert f"paper = {rejected}" in warnings[0] and "paper = 99999" in warnings[1]
    as_json = json.loads(run_cli("--config", str(config), "push", "--json").stdout)
    # The other warnings are the orals on OpenReview that have no talk here.
    assert len([w for w in as_json["warnings"] if w.startswith("talks[")]) == 2
    # check says it too, with the config's exit code.
    checked = run_cli("--config", str(config), "check", "--json")
    assert checked.returncode == 2, checked.stdout
    talks = next(c for c in json.loads(checked.stdout)["checks"] if c["name"] == "talks")
    assert not talks["ok"] and f"paper = {rejected}" in talks["detail"]
    assert "paper = 99999" in talks["detail"]  # every problem, not the first alone
    # posters show's talk column comes from [[talks]]: the configured talk's time.
    shown = json.loads(run_cli("--config", str(config), "posters", "show", "--json").stdout)
    talk = next(r for r in shown if r["forum_id"] == forum)
    assert talk["talk"] == "11:30"
    assert all(r["talk"] is None for r in shown if r["forum_id"] != forum)


def test_a_killed_cycle_shows_interrupted_and_the_next_closes_it(setup: Setup) -> None:
    assert setup.cli("pull").returncode == 0
    setup.emu.faults.inject("slow", times=10, delay=5.0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORSYNC_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "orsync", "--config", str(setup.config), "pull", "--full"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            info = json.loads(setup.cli("status", "--json").stdout)
            if info["cycles"][0]["id"] == 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the second cycle never started")
        assert info["cycles"][0]["outcome"] == "running"  # its writer is alive
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    setup.emu.faults.clear()
    info = json.loads(setup.cli("status", "--json").stdout)
    assert info["cycles"][0]["outcome"] == "interrupted"
    assert "interrupted" in setup.cli("status").stdout
    assert setup.cli("pull").returncode == 0
    con = sqlite3.connect(setup.db)
    try:
        outcomes = dict(con.execute("SELECT id, outcome FROM cycle").fetchall())
    finally:
        con.close()
    assert outcomes == {1: "ok", 2: "interrupted", 3: "ok"}


def test_dry_run_names_the_moves_and_changes_nothing(site: Setup) -> None:
    assert site.cli("pull").returncode == 0
    before = json.loads(site.cli("posters", "show", "--json").stdout)
    in_p4 = sorted(r["number"] for r in before if r["session_id"] == "P4")
    assert in_p4
    # Chairs drop the last session: its papers must move. Ask first.
    text = site.config.read_text(encoding="utf-8")
    cut = text.index('[[posters.sessions]]\nid = "P4"')
    end = text.index("[[", cut + 5)
    site.config.write_text(text[:cut] + text[end:], encoding="utf-8")
    dry = site.cli("posters", "assign", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    for number in in_p4:
        assert f"would move: #{number} P4/" in dry.stdout
    assert dry.stdout.count("because session P4 is no longer configured") == len(in_p4)
    assert "nothing was changed" in dry.stdout
    as_json = json.loads(site.cli("posters", "assign", "--dry-run", "--json").stdout)
    assert sorted(m["paper"] for m in as_json["moved"]) == in_p4
    assert as_json["dry_run"] is True and "clashes" in as_json
    after = json.loads(site.cli("posters", "show", "--json").stdout)
    assert after == before


def test_unpin_of_an_unpinned_paper_says_so(site: Setup) -> None:
    assert site.cli("pull").returncode == 0
    number = str(_papers(site.dir / "site")[0]["number"])
    result = site.cli("posters", "unpin", number)
    assert result.returncode == 0
    assert f"paper #{number} was not pinned" in result.stdout


def test_changes_name_the_paper_of_each_reply(setup: Setup) -> None:
    assert setup.cli("pull").returncode == 0
    forums = list(setup.emu.truth("chair")["submissions"])
    for forum in forums[:3]:
        setup.emu.add_review(forum)
        setup.emu.add_comment(forum)
    assert setup.cli("pull").returncode == 0
    rows = json.loads(setup.cli("changes", "--json").stdout)
    replies = [r for r in rows if r["kind"] != "submission"]
    assert replies and all(isinstance(r["number"], int) for r in replies)
    # The table: the newest five changes, one line each, every note named by its paper's number.
    newest = rows[:5]
    assert any(r["kind"] != "submission" for r in newest)
    table = setup.cli("changes", "--limit", "5", env={"COLUMNS": "250"}).stdout
    lines = [ln for ln in table.splitlines() if any(r["note_id"] in ln for r in rows)]
    assert len(lines) == 5, table
    for row, line in zip(newest, lines, strict=True):
        assert row["note_id"] in line and row["kind"] in line and row["op"] in line, line
        assert re.search(rf"(^|\s)#{row['number']}(\s|$)", line), line


def test_flags_after_the_subcommand_and_status_at_80_columns(setup: Setup) -> None:
    assert setup.cli("pull", "-q").returncode == 0
    result = setup.cli("status", "-v", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 80, result.stdout
    assert "last success" in result.stdout and "full" in result.stdout


def test_a_refused_pull_prints_its_summary_as_json(setup: Setup) -> None:
    assert setup.cli("pull").returncode == 0
    # Most submissions disappear from the answer: the guard refuses the cycle.
    truth = setup.emu.truth("chair")["submissions"]
    for forum in list(truth)[: len(truth) * 3 // 4]:
        setup.emu.delete_note(forum)
    result = setup.cli("pull", "--full", "--json")
    assert result.returncode == 3, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["exit_code"] == 3
    assert data["cycle"]["outcome"] == "refused" and data["cycle"]["mode"] == "full"
    assert "max_delete_fraction" in data["error"]


def test_a_config_relative_everything(tmp_path: Path, emulator: Emulator) -> None:
    """The store, the password file and the website folder all resolve against the config."""
    folder = tmp_path / "venue"
    config = write_config(folder, emulator, extra='[website]\noutput_dir = "site"')
    _relative_store(config)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_cli("-c", str(config), "pull", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert (folder / "orsync.db").is_file() and (folder / "site" / "papers.json").is_file()
    assert list(elsewhere.iterdir()) == []


def test_changes_table_shows_the_newest_and_says_how_to_see_more(setup: Setup) -> None:
    assert setup.cli("pull").returncode == 0
    forums = list(setup.emu.truth("chair")["submissions"])
    for forum in forums[:60]:
        setup.emu.edit_content(forum, abstract="Edited after the first pull.")
    assert setup.cli("pull").returncode == 0
    table = setup.cli("changes")
    assert table.returncode == 0
    assert "the newest 50 shown" in table.stdout
    every = json.loads(setup.cli("changes", "--json").stdout)
    assert len(every) > 110  # --json keeps every change, the first pull's too
    limited = setup.cli("changes", "--limit", "3")
    assert "newest" not in limited.stdout


def test_changes_after_the_first_pull_say_it_in_one_line_and_fit_80_columns(
    setup: Setup,
) -> None:
    assert setup.cli("pull").returncode == 0
    truth = setup.emu.truth("chair")
    kinds = Counter(r["kind"] for r in truth["replies"].values())
    table = setup.cli("changes", env={"COLUMNS": "80"})
    assert table.returncode == 0, table.stderr
    line = " ".join(table.stdout.split())  # one line, wrapped at 80 columns
    assert line.startswith(f"first pull: {len(truth['submissions'])} submissions, "), line
    assert f"{kinds['review']} reviews" in line and "created" not in line
    # A later change is a row, its time whole in one cell at 80 columns.
    forum = next(iter(truth["submissions"]))
    setup.emu.edit_content(forum, title="A title edited after the first pull")
    assert setup.cli("pull").returncode == 0
    table = setup.cli("changes", env={"COLUMNS": "80"})
    assert max(len(line) for line in table.stdout.splitlines()) <= 80, table.stdout
    row = next(line for line in table.stdout.splitlines() if forum in line)
    assert re.search(r"\b20\d\d-\d\d-\d\d \d\d:\d\d\b", row), table.stdout
    assert " updated " in row and "first pull: " in table.stdout


def _stored_tmdate(db: Path, note_id: str) -> str:
    from datetime import UTC, datetime

    with sqlite3.connect(db) as conn:
        (ms,) = conn.execute("SELECT tmdate FROM note WHERE id = ?", (note_id,)).fetchone()
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def test_changes_list_only_the_fields_whose_value_changed(setup: Setup) -> None:
    assert setup.cli("pull").returncode == 0
    truth = setup.emu.truth("chair")["submissions"]
    forum = next(f for f, s in truth.items() if s["status"] == "accepted" and s["decision"])
    setup.emu.edit_content(forum, abstract="A shorter abstract, edited by the authors.")
    assert setup.cli("pull").returncode == 0
    rows = json.loads(setup.cli("changes", "--json").stdout)
    mine = [r for r in rows if r["note_id"] == forum and r["op"] == "updated"]
    assert [r["fields"] for r in mine] == [["abstract"]]
    # OpenReview's time of the edit, and when orsync saw it.
    assert mine[0]["at"] == _stored_tmdate(setup.db, forum)
    cycles = json.loads(setup.cli("status", "--json").stdout)["cycles"]
    assert mine[0]["seen_at"] == cycles[0]["started_at"]


def test_camera_ready_changes_no_decision(tmp_path: Path) -> None:
    with Emulator(dataset="bgpt", seed=7, phase="decision") as emu:
        config = write_config(tmp_path, emu)
        assert run_cli("--config", str(config), "pull").returncode == 0
        emu.advance("camera_ready")
        assert run_cli("--config", str(config), "pull").returncode == 0
        rows = json.loads(run_cli("--config", str(config), "changes", "--json").stdout)
    revised = [r for r in rows if r["cycle"] == 2 and r["kind"] == "submission"]
    assert revised and all(r["op"] == "updated" for r in revised)
    assert all("pdf" in r["fields"] for r in revised)
    assert not [r for r in revised if {"decision", "status", "presentation"} & set(r["fields"])]
