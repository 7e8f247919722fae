"""Network faults, kills at random moments, and readers during a pull."""

from __future__ import annotations

import contextlib
import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

from conftest import Setup, assert_mirror_equals_truth, run_cli, store_dump, write_config
from orsync.emulator import Emulator


def test_pull_survives_429_with_retry_after_and_5xx_burst(setup: Setup) -> None:
    emu = setup.emu
    # Six faults in a row hit one request: allow it more attempts than the default six.
    write_config(setup.dir, emu, retry_attempts=8)
    emu.faults.inject("429", times=2, retry_after=1)
    emu.faults.inject("503", times=2)
    emu.faults.inject("500", times=1)
    emu.faults.inject("drop", times=1)
    started = time.monotonic()
    result = setup.cli("pull", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["outcome"] == "ok"
    assert_mirror_equals_truth(setup.db, emu.truth("chair"))
    faulted = [r for r in emu.requests if r.fault]
    assert len(faulted) >= 6
    # Retry-After was honoured: two 429s of one second each.
    assert time.monotonic() - started >= 2.0
    # Each attempt is one request: no hidden second retry layer multiplying them.
    assert summary["requests"] == len(emu.requests)


def test_expired_token_is_renewed(setup: Setup) -> None:
    assert setup.cli("pull").returncode == 0
    setup.emu.faults.inject("expire_tokens", times=1)
    setup.emu.edit_content(next(iter(setup.emu.truth("chair")["submissions"])), title="Renewed")
    result = setup.cli("pull", "--json", "--full")
    assert result.returncode == 0, result.stderr
    assert_mirror_equals_truth(setup.db, setup.emu.truth("chair"))


def test_kill_9_at_random_moments_then_converges(tmp_path) -> None:
    """20+ kills mid-pull: every store stays intact and the next pull equals a clean run."""
    # A larger venue than the fixture's, so the write phase is long enough to be hit often.
    with Emulator(dataset="bgpt", seed=11, size=500) as emulator:
        clean_config = write_config(tmp_path / "clean", emulator)
        started = time.monotonic()
        assert (
            run_cli("--config", str(clean_config), "pull", "--full", process=True).returncode == 0
        )
        # Kills land within a whole pull's time as measured here (start-up included), so that
        # they hit a running pull on a fast machine as on a loaded one.
        pull_s = time.monotonic() - started
        reference = store_dump(tmp_path / "clean" / "orsync.db")
        index_sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
        with contextlib.closing(sqlite3.connect(tmp_path / "clean" / "orsync.db")) as con:
            indexes = con.execute(index_sql).fetchall()
        assert len(indexes) >= 5

        config = write_config(tmp_path / "killed", emulator)
        db = tmp_path / "killed" / "orsync.db"
        rng = random.Random(20240511)
        killed_mid_run = attempts = 0
        while killed_mid_run < 20:
            attempts += 1
            assert attempts <= 80, "pulls finished before the kill too often to test anything"
            emulator.faults.inject("slow", times=1, delay=rng.uniform(0.0, 0.5))
            spawned = time.monotonic()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "orsync",
                    "--config",
                    str(config),
                    "pull",
                    "--full",
                    "--no-push",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=rng.uniform(0.3, 1.0) * pull_s)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed_mid_run += 1
            else:
                # It finished first: pulls now take less than the measured one (once a pull
                # completes, the store holds every note and the next ones cost little; the
                # machine's load changes), so the next kills are timed by this pull's time.
                pull_s = time.monotonic() - spawned
            proc.wait(timeout=60)
            if db.exists():
                con = sqlite3.connect(db)
                assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",), (
                    f"attempt {attempts}"
                )
                # A first pull builds the indexes after its rows, in its transaction: a kill
                # before its commit leaves them as the migration made them.
                found = con.execute(index_sql).fetchall()
                assert found in ([], indexes), f"attempt {attempts}"
                con.close()
        emulator.faults.clear()
        final = run_cli("--config", str(config), "pull", "--full", "--json", process=True)
        assert final.returncode == 0, final.stderr
        assert store_dump(db) == reference
        with contextlib.closing(sqlite3.connect(db)) as con:
            assert con.execute(index_sql).fetchall() == indexes
        assert_mirror_equals_truth(db, emulator.truth("chair"))


def test_reader_is_not_blocked_and_sees_a_consistent_state(setup: Setup) -> None:
    """A reader holding a read transaction during a pull sees the before-state throughout."""
    assert setup.cli("pull").returncode == 0
    emu = setup.emu
    for forum in list(emu.truth("chair")["submissions"])[:30]:
        emu.edit_content(forum, title="Edited while a reader reads")
    emu.faults.inject("slow", times=2, delay=1.0)

    reader = sqlite3.connect(setup.db, timeout=0.1)  # a short timeout: blocking would fail fast
    reader.execute("BEGIN")
    before = reader.execute(
        "SELECT count(*), group_concat(title) FROM note WHERE kind='submission'"
    ).fetchone()
    results: list[subprocess.CompletedProcess[str]] = []
    # The writer is another process, as a running `orsync run` would be.
    thread = threading.Thread(
        target=lambda: results.append(setup.cli("pull", "--full", process=True))
    )
    thread.start()
    samples = 0
    while thread.is_alive():
        assert (
            reader.execute(
                "SELECT count(*), group_concat(title) FROM note WHERE kind='submission'"
            ).fetchone()
            == before
        )
        samples += 1
        time.sleep(0.05)
    thread.join()
    assert samples > 5
    assert results[0].returncode == 0, results[0].stderr
    reader.execute("COMMIT")
    after = reader.execute(
        "SELECT count(*) FROM note WHERE title = 'Edited while a reader reads'"
    ).fetchone()
    assert after == (30,)
    reader.close()
