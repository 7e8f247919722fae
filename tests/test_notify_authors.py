"""``orsync authors notify`` against the emulator over real HTTP: one notice per accepted, public
paper to its authors group, once per content, safe to repeat and to interrupt."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conftest import Setup, cli_environ
from helpers import accepted, website_config
from orsync.emulator import Emulator


def notify_site(folder: Path, emu: Emulator, extra: str = "") -> Setup:
    truth = emu.truth("chair")["submissions"]
    orals = sorted(s["number"] for s in truth.values() if s["presentation"] == "oral")
    config = website_config(folder, emu, orals)
    if extra:
        config.write_text(config.read_text() + "\n" + extra)
    return Setup(emu, folder, config, folder / "orsync.db")


@pytest.fixture
def site(tmp_path: Path, emulator: Emulator) -> Setup:
    s = notify_site(tmp_path, emulator)
    pulled = s.cli("pull")
    assert pulled.returncode == 0, pulled.stderr
    return s


def groups(emu: Emulator) -> Counter[str]:
    return Counter(g for m in emu.messages.sent for g in m["groups"])


def notify(site: Setup, *args: str) -> dict[str, Any]:
    done = site.cli("authors", "notify", "--json", *args)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def public_numbers(emu: Emulator) -> set[int]:
    return {s["number"] for s in accepted(emu).values() if s.get("title") is not None}


def test_dry_run_lists_every_paper_and_sends_nothing(site: Setup) -> None:
    shown = site.cli("authors", "notify")
    assert shown.returncode == 0, shown.stderr
    assert "pass --send" in shown.stdout
    listed = notify(site)
    assert site.emu.messages.sent == []
    assert not any(r.method == "POST" and r.path.startswith("/messages") for r in site.emu.requests)
    venue = site.emu.venue_id
    numbers = {n["number"] for n in listed["notices"]}
    assert numbers == public_numbers(site.emu)
    for n in listed["notices"]:
        assert n["recipients"] == f"{venue}/Submission{n['number']}/Authors"
        assert n["kind"] == "new"


def test_send_once_per_paper_with_its_place_then_nothing_more(site: Setup) -> None:
    papers = {p["number"]: p for p in json.loads((site.dir / "site" / "papers.json").read_text())}
    sent = notify(site, "--send")
    venue = site.emu.venue_id
    assert groups(site.emu) == Counter(f"{venue}/Submission{n}/Authors" for n in papers)
    assert len(sent["sent"]) == len(papers)
    for message in site.emu.messages.sent:
        number = int(message["groups"][0].split("/Submission")[1].split("/")[0])
        paper = papers[number]
        assert message["sender"] == site.emu.chair_username
        assert message["invitation"] == f"{venue}/-/Edit"
        assert paper["title"] in message["message"]
        assert paper["session"]["name"] in message["message"]
        assert f"board {paper['board']}" in message["message"]
        if paper["talk"] is not None:
            assert "contributed talk" in message["message"]
            assert paper["talk"]["start"][11:16] in message["message"]
    again = notify(site, "--send")
    assert again["sent"] == [] and again["told"] == len(papers)
    assert len(site.emu.messages.sent) == len(papers)
    shown = site.cli("status")
    assert f"{len(papers)} told, 0 pending an update, 0 failed" in shown.stdout
    status = site.cli("status", "--json")
    assert json.loads(status.stdout)["notices"] == {
        "told": len(papers),
        "pending_update": 0,
        "failed": 0,
    }


def test_moving_a_poster_sends_one_update_to_that_paper_only(site: Setup) -> None:
    notify(site, "--send")
    before = len(site.emu.messages.sent)
    papers = json.loads((site.dir / "site" / "papers.json").read_text())
    paper = next(p for p in papers if p["session"]["id"] == "P1")
    pinned = site.cli("posters", "pin", str(paper["number"]), "P3")
    assert pinned.returncode == 0, pinned.stderr
    status = json.loads(site.cli("status", "--json").stdout)
    assert status["notices"]["pending_update"] == 1
    update = notify(site, "--send")
    assert [n["number"] for n in update["notices"]] == [paper["number"]]
    assert update["notices"][0]["kind"] == "update"
    new = site.emu.messages.sent[before:]
    assert len(new) == 1
    assert new[0]["groups"] == [f"{site.emu.venue_id}/Submission{paper['number']}/Authors"]
    assert "Session P1 -> Session P3" in new[0]["message"]
    assert notify(site, "--send")["sent"] == []


@pytest.mark.parametrize("after", [0, 1], ids=["lost-request", "lost-answer"])
def test_a_fault_mid_run_then_a_rerun_leaves_one_message_per_paper(site: Setup, after: int) -> None:
    # A first run sends two notices; the next is cut off in the middle of the work: before
    # the server took its message, or after (its answer lost).
    config = site.config.read_text()
    site.config.write_text(config + "\n[authors_notice]\nmax_per_run = 2\n")
    assert len(notify(site, "--send")["sent"]) == 2
    site.config.write_text(config)
    site.emu.faults.apply_spec(f"drop@after={after}&path=/messages")
    cut = site.cli("authors", "notify", "--send")
    assert cut.returncode == 3
    assert "may have been sent" in cut.stderr
    assert len(site.emu.messages.sent) == 2 + after
    status = json.loads(site.cli("status", "--json").stdout)
    assert status["notices"]["failed"] == 1
    assert site.emu.faults.pending == []
    rerun = notify(site, "--send")
    assert len(rerun["confirmed"]) == after
    numbers = public_numbers(site.emu)
    assert groups(site.emu) == Counter(
        f"{site.emu.venue_id}/Submission{n}/Authors" for n in numbers
    )
    assert notify(site, "--send")["sent"] == []


def test_a_run_killed_after_the_send_sends_nothing_twice(site: Setup) -> None:
    notify(site, "--send")
    total = len(site.emu.messages.sent)
    # As a kill leaves it: the row says sending, the message is on OpenReview, for one paper;
    # for another the kill came before its request left.
    with sqlite3.connect(site.db) as db:
        ids = [r[0] for r in db.execute("SELECT forum_id FROM author_notice ORDER BY number")]
        db.execute("UPDATE author_notice SET status = 'sending' WHERE forum_id = ?", (ids[0],))
        db.execute(
            "UPDATE author_notice SET status = 'sending', sent_hash = NULL, sent_facts = NULL,"
            " subject = 'never sent' WHERE forum_id = ?",
            (ids[1],),
        )
    rerun = notify(site, "--send")
    assert rerun["confirmed"] == [ids[0]]
    assert rerun["sent"] == [ids[1]]
    assert len(site.emu.messages.sent) == total + 1


def test_a_real_kill_during_a_send_sends_nothing_twice(site: Setup) -> None:
    # The first message is held by the server for 3 s (then taken); the run is killed -9 while
    # it waits for the answer, its row already committed as sending.
    site.emu.faults.apply_spec("slow@delay=3&path=/messages")
    argv = [sys.executable, "-m", "orsync", "--config", str(site.config), "authors", "notify"]
    child = subprocess.Popen([*argv, "--send"], env=cli_environ(None))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(sqlite3.OperationalError), sqlite3.connect(site.db) as db:
                if db.execute(
                    "SELECT count(*) FROM author_notice WHERE status = 'sending'"
                ).fetchone()[0]:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("no send began")
        # The row is committed before the request goes: kill once the server holds it (its
        # slow rule taken), or a loaded machine kills a run that has sent nothing yet.
        while site.emu.faults.pending and time.monotonic() < deadline:
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    deadline = time.monotonic() + 10
    while not site.emu.messages.sent and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(site.emu.messages.sent) == 1, "the server took the message after the kill"
    rerun = notify(site, "--send")
    assert len(rerun["confirmed"]) == 1
    assert groups(site.emu) == Counter(
        f"{site.emu.venue_id}/Submission{n}/Authors" for n in public_numbers(site.emu)
    )


def test_an_unreleased_venue_sends_nothing(tmp_path: Path) -> None:
    with Emulator(dataset="bgpt", seed=7, phase="review") as emu:
        s = notify_site(tmp_path, emu)
        assert s.cli("pull").returncode == 0
        done = s.cli("authors", "notify", "--send")
        assert done.returncode == 0, done.stderr
        assert "nothing to tell" in done.stdout
        # Decided but held back: the chairs can read the decisions, the public cannot yet.
        emu.hold_decisions()
        emu.advance("decision")
        assert s.cli("pull").returncode == 0
        held = s.cli("authors", "notify", "--send")
        assert held.returncode == 0, held.stderr
        assert "nothing to tell" in held.stdout
        assert emu.messages.sent == []
        emu.release_decisions()
        assert s.cli("pull").returncode == 0
        assert notify(s, "--send")["sent"], "released: now the authors are told"
        assert emu.messages.sent


def test_an_account_that_is_no_chair_is_refused_clearly(site: Setup) -> None:
    text = site.config.read_text()
    site.config.write_text(text.replace(site.emu.chair_username, site.emu.member_username))
    done = site.cli("authors", "notify", "--send")
    assert done.returncode == 4, done.stderr
    assert "program chair" in done.stderr and "ForbiddenError" in done.stderr
    assert site.emu.messages.sent == []
    status = json.loads(site.cli("status", "--json").stdout)
    assert status["notices"]["failed"] == 1 and status["notices"]["told"] == 0


def test_max_per_run_paces_the_sends(tmp_path: Path, emulator: Emulator) -> None:
    s = notify_site(tmp_path, emulator, "[authors_notice]\nmax_per_run = 3\n")
    assert s.cli("pull").returncode == 0
    # OpenReview's rate limit refuses two sends (not taken): each is asked again, none doubled.
    emulator.faults.apply_spec("429x2@retry_after=0&path=/messages")
    first = notify(s, "--send")
    assert len(first["sent"]) == 3 and first["deferred"] > 0
    assert sum(r.status == 429 for r in emulator.requests) == 2
    second = notify(s, "--send")
    assert len(second["sent"]) == 3
    assert len(emulator.messages.sent) == 6
    assert max(groups(emulator).values()) == 1


def test_the_template_sees_only_public_fields_and_the_day(site: Setup) -> None:
    from orsync.config import load_config
    from orsync.publish import notices
    from orsync.store.binding import read_for

    secrets: list[str] = []
    for note in site.emu.venue.notes.values():
        if any("Review" in i for i in note.get("invitations", [])):
            for field in (note.get("content") or {}).values():
                value = field.get("value") if isinstance(field, dict) else None
                if isinstance(value, str) and len(value) > 12:
                    secrets.append(value)
            secrets.extend(note.get("signatures", []))
    assert secrets, "the venue has reviews to keep out"
    dump = "".join(f"{name}={{{{ {name} }}}}\n" for name in notices.VARIABLES)
    text = site.config.read_text()
    site.config.write_text(text + f"\n[authors_notice]\nbody = {json.dumps(dump)}\n")
    config = load_config(site.config)
    run = notices.NoticeRun(send=False)
    with read_for(config) as store, store.connect() as conn:
        due, records = notices.plan(config, conn, run)
    assert due
    zone = notices.schedule.Schedule.from_config(config).zone()
    for record in records:
        values = notices.variables(record, config, zone)
        assert tuple(values) == notices.VARIABLES
        for value in values.values():  # plain data only: no object to walk from
            inner = value.values() if isinstance(value, dict) else value
            items = inner if isinstance(value, dict | list) else [value]
            assert all(isinstance(v, str | int | None) for v in items), value
    for item in due:
        for name in notices.VARIABLES:
            assert f"{name}=" in item.message
        for secret in secrets:
            assert secret not in item.message
    # The sandbox: nothing of Python's reaches a template.
    with pytest.raises(Exception, match=r"authors_notice\.body"):
        notices.render("{{ title.__class__.__mro__ }}", {"title": "x"}, "body")


def test_a_template_naming_what_it_cannot_see_is_refused_before_sending(site: Setup) -> None:
    text = site.config.read_text()
    site.config.write_text(text + '\n[authors_notice]\nbody = "{{ title }}: {{ rating }}"\n')
    done = site.cli("authors", "notify", "--send")
    assert done.returncode == 2, done.stderr
    assert "authors_notice.body" in done.stderr and "'rating' is undefined" in done.stderr
    assert site.emu.messages.sent == []

    checked = site.cli("check")
    assert checked.returncode == 2
    assert "authors notice" in checked.stdout and "'rating' is undefined" in checked.stdout


def test_a_talk_notice_names_who_presents(tmp_path: Path, emulator: Emulator) -> None:
    """``[[talks]] speaker`` reaches the paper's own notice: its authors learn who presents."""
    site = notify_site(tmp_path, emulator)
    assert site.cli("pull").returncode == 0
    papers = json.loads((site.dir / "site" / "papers.json").read_text())
    talk = next(p for p in papers if p["talk"] and p["authors"])
    speaker = talk["authors"][-1]
    text = site.config.read_text()
    line = f"paper = {talk['number']}\n"
    site.config.write_text(text.replace(line, line + f"speaker = {json.dumps(speaker)}\n", 1))
    notices = {n["number"]: n for n in notify(site)["notices"]}
    assert f"presented by {speaker}" in notices[talk["number"]]["message"]
    others = [n for number, n in notices.items() if number != talk["number"]]
    assert others and not any("presented by" in n["message"] for n in others)
