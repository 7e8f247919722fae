"""`orsync pull` against the emulator over HTTP, through the real openreview-py client."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import (
    Setup,
    assert_mirror_equals_truth,
    cli_environ,
    live_notes,
    run_cli,
    store_dump,
    write_config,
)
from helpers import one_error_line
from orsync.emulator import Emulator
from orsync.lock import writer_lock


def pull_json(setup: Setup, *args: str) -> dict[str, object]:
    result = setup.cli("pull", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_full_pull_equals_truth_and_second_pull_changes_nothing(setup: Setup) -> None:
    first = pull_json(setup)
    assert first["mode"] == "full" and first["outcome"] == "ok"
    assert first["created"] == len(setup.emu.truth("chair")["submissions"]) + len(
        setup.emu.truth("chair")["replies"]
    )
    assert_mirror_equals_truth(setup.db, setup.emu.truth("chair"))
    second = pull_json(setup)
    assert second["changes"] == 0 and second["mode"] == "incremental"
    third = pull_json(setup, "--full")
    assert third["changes"] == 0 and third["mode"] == "full"
    assert_mirror_equals_truth(setup.db, setup.emu.truth("chair"))


def test_ratings_are_numbers_with_text_kept(setup: Setup) -> None:
    pull_json(setup)
    reviews = [n for n in live_notes(setup.db).values() if n["kind"] == "review"]
    assert reviews
    assert all(isinstance(r["rating"], float) for r in reviews)
    texts = {r["rating_text"] for r in reviews}
    assert any(":" in t for t in texts), "string ratings from the form are kept as text"
    assert any(t.isdigit() for t in texts), "integer ratings too"


def test_views_follow_the_contract(setup: Setup) -> None:
    pull_json(setup)
    con = sqlite3.connect(setup.db)
    accepted = con.execute("SELECT * FROM accepted_papers").fetchall()
    columns = [d[0] for d in con.execute("SELECT * FROM accepted_papers").description]
    assert columns == [
        "forum_id",
        "number",
        "title",
        "authors",
        "authorids",
        "keywords",
        "abstract",
        "tldr",
        "pdf_url",
        "forum_url",
        "decision",
        "presentation",
        "session_id",
        "session_name",
        "session_start",
        "session_end",
        "board",
    ]
    truth = setup.emu.truth("chair")["submissions"]
    assert len(accepted) == sum(1 for s in truth.values() if s["status"] == "accepted")
    overview_cols = [d[0] for d in con.execute("SELECT * FROM submissions_overview").description]
    assert overview_cols == [
        "forum_id",
        "number",
        "title",
        "status",
        "decision",
        "review_count",
        "rating_mean",
        "rating_min",
        "rating_max",
        "confidence_mean",
        "deleted",
    ]
    counts = dict(con.execute("SELECT forum_id, review_count FROM submissions_overview").fetchall())
    replies = setup.emu.truth("chair")["replies"].values()
    for forum in truth:
        assert counts[forum] == sum(
            1 for r in replies if r["forum"] == forum and r["kind"] == "review"
        )


def _changes(setup: Setup) -> list[dict[str, object]]:
    result = setup.cli("changes", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_each_mutation_shows_in_next_pull_and_in_changes(setup: Setup) -> None:
    emu = setup.emu
    pull_json(setup)
    truth = emu.truth("chair")["submissions"]
    by_status: dict[str, list[str]] = {}
    for forum, sub in sorted(truth.items(), key=lambda kv: kv[1]["number"]):
        by_status.setdefault(sub["status"], []).append(forum)
    accepted, rejected = by_status["accepted"], by_status["rejected"]

    review_id = emu.add_review(accepted[0], rating=8)
    emu.edit_content(accepted[1], title="A New Title <script>alert(1)</script>")
    emu.flip_decision(rejected[0])
    emu.withdraw(accepted[2])
    emu.desk_reject(rejected[1])
    reply = next(r for r, v in emu.truth("chair")["replies"].items() if v["kind"] == "comment")
    emu.delete_note(reply)

    summary = pull_json(setup)
    assert summary["changes"] > 0
    assert_mirror_equals_truth(setup.db, emu.truth("chair"))
    changes = _changes(setup)
    latest = [c for c in changes if c["cycle"] == summary["cycle_id"]]

    def ops(note_id: str) -> list[tuple[object, list[str]]]:
        return [(c["op"], c["fields"]) for c in latest if c["note_id"] == note_id]  # type: ignore[misc]

    assert ("created", []) in ops(review_id)
    assert any(op == "updated" and "title" in fields for op, fields in ops(accepted[1]))
    assert any(op == "updated" and "status" in fields for op, fields in ops(rejected[0]))
    assert any(op == "updated" and "status" in fields for op, fields in ops(accepted[2]))
    assert any(op == "updated" and "status" in fields for op, fields in ops(rejected[1]))
    assert ("deleted", []) in ops(reply)
    decision_notes = [c for c in latest if c["kind"] == "decision" and c["forum"] == rejected[0]]
    assert decision_notes and "decision" in decision_notes[0]["fields"]
    # The tombstone stays, marked deleted.
    con = sqlite3.connect(setup.db)
    assert con.execute(
        "SELECT deleted, deleted_at IS NOT NULL FROM note WHERE id = ?", (reply,)
    ).fetchone() == (1, 1)
    # --since in the future shows nothing.
    result = setup.cli("changes", "--json", "--since", "2999-01-01")
    assert json.loads(result.stdout) == []


def test_full_pull_catches_notes_that_became_unreadable(setup: Setup) -> None:
    pull_json(setup)
    reply = next(r for r, v in setup.emu.truth("chair")["replies"].items() if v["kind"] == "review")
    setup.emu.hide_note(reply)  # chair still sees it: use a guest mirror below
    guest_dir = setup.dir / "guest"
    config = write_config(guest_dir, setup.emu, guest=True)
    from conftest import run_cli

    assert run_cli("--config", str(config), "pull", "--json").returncode == 0
    assert reply not in live_notes(guest_dir / "orsync.db")


def test_guest_mirror_holds_no_hidden_field_and_no_private_reply(
    tmp_path, emulator: Emulator
) -> None:
    from conftest import run_cli

    emulator.advance("review") if emulator.phase == "submission" else None
    config = write_config(tmp_path, emulator, guest=True)
    result = run_cli("--config", str(config), "pull", "--json")
    assert result.returncode == 0, result.stderr
    guest_truth = emulator.truth("guest")
    assert_mirror_equals_truth(tmp_path / "orsync.db", guest_truth)
    chair_truth = emulator.truth("chair")
    hidden_replies = set(chair_truth["replies"]) - set(guest_truth["replies"])
    assert hidden_replies, "the dataset has non-public replies"
    notes = live_notes(tmp_path / "orsync.db")
    assert not hidden_replies & set(notes)
    for forum, sub in guest_truth["submissions"].items():
        raw = json.loads(notes[forum]["raw"])
        if sub["authors"] is None:
            assert "authors" not in raw["content"] and "authorids" not in raw["content"]
            assert notes[forum]["authors"] is None  # absent, never empty


def test_guest_before_decisions_sees_no_author(tmp_path) -> None:
    from conftest import run_cli

    with Emulator(dataset="bgpt", seed=3, phase="review") as emu:
        config = write_config(tmp_path, emu, guest=True)
        assert run_cli("--config", str(config), "pull").returncode == 0
        notes = live_notes(tmp_path / "orsync.db")
        subs = [n for n in notes.values() if n["kind"] == "submission"]
        assert subs and all(n["authors"] is None and n["authorids"] is None for n in subs)
        assert all("authors" not in json.loads(n["raw"])["content"] for n in subs)
        assert_mirror_equals_truth(tmp_path / "orsync.db", emu.truth("guest"))


def test_max_delete_guard_refuses_and_changes_nothing(setup: Setup) -> None:
    pull_json(setup)
    before = live_notes(setup.db)
    truth = setup.emu.truth("chair")["submissions"]
    for forum in list(truth)[: int(len(truth) * 0.6)]:
        setup.emu.delete_note(forum)
    result = setup.cli("pull", "--full")
    assert result.returncode == 3
    assert "refusing to delete" in result.stderr and "Traceback" not in result.stderr
    assert live_notes(setup.db) == before
    status = json.loads(setup.cli("status", "--json").stdout)
    assert status["cycles"][0]["outcome"] == "refused"
    forced = setup.cli("pull", "--full", "--force")
    assert forced.returncode == 0, forced.stderr
    assert_mirror_equals_truth(setup.db, setup.emu.truth("chair"))


def test_status_and_export(setup: Setup) -> None:
    pull_json(setup)
    status = json.loads(setup.cli("status", "--json").stdout)
    assert status["cycles"][0]["outcome"] == "ok" and status["lock_holder"] is None
    assert sum(status["submissions"].values()) == len(setup.emu.truth("chair")["submissions"])
    human = setup.cli("status")
    assert human.returncode == 0 and "last success" in human.stdout
    for what in ("papers", "submissions", "reviews"):
        for fmt in ("json", "csv", "yaml"):
            result = setup.cli("export", "--what", what, "--format", fmt)
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip()
    papers = json.loads(setup.cli("export", "--what", "papers").stdout)
    assert {p["forum_id"] for p in papers} == {
        f for f, s in setup.emu.truth("chair")["submissions"].items() if s["status"] == "accepted"
    }


def test_numbers_beyond_64_bits_are_kept_exactly(setup: Setup) -> None:
    # A page is parsed by orjson unless it holds such a number: then by the standard library,
    # which keeps it an integer (orjson would make it a float, and the digest would move).
    forum = next(iter(setup.emu.truth("chair")["submissions"]))
    setup.emu.venue.edit_content(
        forum, big=123456789012345678901234567890, edge=2**64, neg=-(2**63) - 1
    )
    pull_json(setup)
    raw = json.loads(live_notes(setup.db)[forum]["raw"])
    assert raw["content"]["big"]["value"] == 123456789012345678901234567890
    assert raw["content"]["edge"]["value"] == 2**64
    assert raw["content"]["neg"]["value"] == -(2**63) - 1
    again = pull_json(setup, "--full")
    assert again["changes"] == 0, "the same note parsed again has the same digest"


def test_an_empty_answer_names_the_venue_first(setup: Setup) -> None:
    pull_json(setup)
    for forum in setup.emu.truth("chair")["submissions"]:
        setup.emu.delete_note(forum)
    result = setup.cli("pull", "--full")
    assert result.returncode == 3
    line = one_error_line(result.stderr)
    assert line.startswith(
        f"orsync: error: venue {setup.emu.venue_id} answered no submissions: refusing to delete"
    ), line
    assert "openreview.venue_id" in line


def test_ctrl_c_mid_pull_exits_130_with_one_line_and_rolls_back(setup: Setup) -> None:
    """SIGINT while a cycle waits on OpenReview: one line, exit 130, the store as it was."""
    assert setup.cli("pull").returncode == 0
    before = store_dump(setup.db)
    before_notes = live_notes(setup.db)
    for forum in list(setup.emu.truth("chair")["submissions"])[:10]:
        setup.emu.edit_content(forum, title="Edited before the interrupted pull")
    setup.emu.clear_requests()
    # The venue group answers after 2 s, the first page of notes after 8 more: the SIGINT,
    # 3 s after the group's answer (room for a loaded machine), lands while the cycle waits
    # for the page, its transaction open.
    setup.emu.faults.inject("slow", times=1, delay=2.0)
    setup.emu.faults.inject("slow", times=1, delay=8.0)
    proc = subprocess.Popen(
        [sys.executable, "-m", "orsync", "--config", str(setup.config), "pull", "--full"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_environ(None),
        # A chair's terminal delivers Ctrl-C; a test worker may have inherited SIGINT ignored,
        # which an exec keeps (the child would never see the signal).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    # The first slow answer, whichever request it went to (the venue group and the first page
    # may be asked at once); the other is then still 5 s from its answer.
    while not any(r.fault == "slow" for r in setup.emu.requests):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(3.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err + out
    assert err.strip().splitlines() == ["orsync: error: interrupted; the cycle was rolled back"]
    assert store_dump(setup.db) == before and live_notes(setup.db) == before_notes


def test_a_failed_first_pull_leaves_no_store_behind(tmp_path: Path, emulator: Emulator) -> None:
    """A rejected login or an unknown venue on the first pull leaves no empty store (nor its
    -wal, -shm and lock files); a store that existed before is untouched."""
    for name, kwargs in (
        ("login", {"password": "not-the-password"}),
        ("venue", {"venue_id": "ICLR.cc/2024/Workshop/Nope"}),
    ):
        folder = tmp_path / name
        config = write_config(folder, emulator, **kwargs)  # type: ignore[arg-type]
        result = run_cli("--config", str(config), "pull", process=True)
        assert result.returncode == 4, result.stderr
        assert sorted(p.name for p in folder.iterdir()) == ["orsync.toml", "pw"]
    # A store that exists (a good pull made it) stays, with every file, when a later pull fails.
    folder = tmp_path / "kept"
    config = write_config(folder, emulator)
    assert run_cli("--config", str(config), "pull").returncode == 0
    notes = live_notes(folder / "orsync.db")
    write_config(folder, emulator, password="not-the-password")
    assert run_cli("--config", str(config), "pull").returncode == 4
    assert live_notes(folder / "orsync.db") == notes


def test_a_failed_first_pull_keeps_the_files_while_another_writer_holds_the_lock(
    tmp_path: Path, emulator: Emulator
) -> None:
    """The files of a first pull are taken back only under the writer lock: another pull that
    holds it may be filling them."""
    config = write_config(tmp_path, emulator)
    db = tmp_path / "orsync.db"
    with writer_lock(db.with_name("orsync.db.lock"), wait_s=0, command="another pull"):
        result = run_cli("--config", str(config), "pull", "--no-wait", process=True)
        assert result.returncode == 75, result.stderr
        assert db.exists()
