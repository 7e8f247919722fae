"""``orsync run`` as systemd runs it: a real subprocess, a real AF_UNIX notify socket, real HTTP.

The emulator runs in the test process (so the test can inject faults, mutate the venue and read
the ground truth); the service, ``orsync pull`` and ``orsync status`` run as subprocesses with
captured stdout/stderr, every line of which is searched for the password.
"""

from __future__ import annotations

import itertools
import json
import random
import signal
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import (
    OUTPUTS,
    PASSWORD,
    NotifySocket,
    ServiceProcess,
    config_for,
    orsync,
    start,
    write_service_config,
)
from orsync.emulator import Emulator
from orsync.service import BACKOFF_BASE_S, Service, backoff_s

pytestmark = pytest.mark.timeout(120)


# -- helpers --------------------------------------------------------------------------------------


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(dataset="bgpt", seed=5, size=30, password=PASSWORD) as e:
        yield e


@pytest.fixture(autouse=True)
def _password_never_printed() -> Iterator[None]:
    """After each test, in any order: nothing it captured holds the password."""
    seen = len(OUTPUTS)
    yield
    assert not any(PASSWORD in text for text in OUTPUTS[seen:])


def db_rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def wait_db(
    db: Path,
    sql: str,
    params: tuple[Any, ...],
    pred: Callable[[list[tuple[Any, ...]]], bool],
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    rows: list[tuple[Any, ...]] = []
    while time.monotonic() < deadline:
        if db.exists():
            try:
                rows = db_rows(db, sql, params)
            except sqlite3.OperationalError:
                rows = []
            if pred(rows):
                return
        time.sleep(0.03)
    raise AssertionError(f"timed out on {sql}: {rows}")


def mirror_of(db: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    subs = {
        r[0]: (r[1], r[2])
        for r in db_rows(
            db, "SELECT id, status, decision FROM note WHERE kind='submission' AND NOT deleted"
        )
    }
    replies = {
        r[0]: (r[1], r[2] if r[1] == "review" else None)
        for r in db_rows(
            db, "SELECT id, kind, rating FROM note WHERE kind!='submission' AND NOT deleted"
        )
    }
    return subs, replies


def truth_of(emu: Emulator) -> tuple[dict[str, Any], dict[str, Any]]:
    t = emu.truth("chair")
    subs = {k: (v["status"], v["decision"]) for k, v in t["submissions"].items()}
    replies = {
        k: (v["kind"], v["rating"] if v["kind"] == "review" else None)
        for k, v in t["replies"].items()
    }
    return subs, replies


def assert_mirror_equals_truth(db: Path, emu: Emulator) -> None:
    m_subs, m_replies = mirror_of(db)
    t_subs, t_replies = truth_of(emu)
    assert m_subs == t_subs
    assert m_replies == t_replies


# -- 1. lifecycle ------------------------------------------------------------------------------------


def test_ready_status_watchdog_and_sigterm_mid_cycle(
    tmp_path: Path, emu: Emulator, notify_socket: NotifySocket, services: list[ServiceProcess]
) -> None:
    # Every cycle full, so a stop lands on a page boundary and the cycle is rolled back.
    cfg = config_for(tmp_path, emu, sync={"full_every": 1})
    db = tmp_path / "orsync.db"
    emu.faults.inject("slow", times=1, delay=1.0)  # the first cycle lasts >= 1 s
    svc = start(services, cfg, notify_socket, watchdog_usec=1_000_000)

    notify_socket.wait(lambda: bool(notify_socket.having("READY=1")), 20, "READY=1")
    t_ready = notify_socket.having("READY=1")[0][0]
    t_first_cycle = svc.wait_event(lambda e: e["event"] == "cycle", 20, "the first cycle")
    assert t_ready < t_first_cycle - 0.5, "READY=1 is sent once the store is open, before cycling"
    notify_socket.wait(lambda: len(notify_socket.with_prefix("STATUS=cycle")) >= 3, 20, "STATUS")
    status = notify_socket.with_prefix("STATUS=cycle")[-1][1]
    assert " ok (full)" in status and "next cycle in" in status

    # WATCHDOG_USEC = 1 s: a ping every 0.5 s while healthy.
    time.sleep(2.2)
    pings = [t for t, _ in notify_socket.having("WATCHDOG=1")]
    recent = [t for t in pings if t >= pings[-1] - 2.0]
    assert 2 <= len(recent) <= 6, recent
    # What systemd needs: a ping before each WATCHDOG_USEC runs out (not a precise cadence,
    # which a loaded machine cannot promise).
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) < 1.0, gaps

    # Mutate, then make the next cycle slow and stop the service in the middle of it.
    rng = random.Random(3)
    for _ in range(6):
        emu.random_mutation(rng)
    # Long enough that the cycle is still running after the lock check below, however loaded
    # the machine (each slow answer still ends well within the 8 s the stop may take).
    emu.faults.inject("slow", times=3, delay=3.0)
    last_before = db_rows(db, "SELECT max(id) FROM cycle")[0][0]
    wait_db(
        db,
        "SELECT outcome FROM cycle WHERE id > ? ORDER BY id DESC LIMIT 1",
        (last_before,),
        lambda rows: bool(rows) and rows[0][0] == "running",
        20,
    )
    # The writer lock is held during the cycle: another pull gives up at once with 75.
    busy = orsync(cfg, "pull", "--no-wait")
    assert busy.returncode == 75, busy.stderr
    assert "another sync holds the lock" in busy.stderr
    assert len(notify_socket.having("STOPPING=1")) == 0
    t_term = time.monotonic()
    rc = svc.stop(signal.SIGTERM)
    assert rc == 0
    assert time.monotonic() - t_term < 8
    notify_socket.wait(lambda: bool(notify_socket.having("STOPPING=1")), 2, "STOPPING=1")

    events = svc.check_output()
    rows = db_rows(db, "SELECT id, outcome, mode FROM cycle ORDER BY id")
    assert rows[-1][1] == "interrupted", rows[-3:]
    assert all(outcome != "running" for _, outcome, _ in rows)
    # Exactly one summary event per cycle, carrying that cycle's id and figures.
    cycles = [e for e in events if e["event"] == "cycle"]
    assert [e["cycle_id"] for e in cycles] == [r[0] for r in rows]
    assert [e["outcome"] for e in cycles] == [r[1] for r in rows]
    for e in cycles:
        assert {
            "mode",
            "outcome",
            "requests",
            "notes_seen",
            "created",
            "updated",
            "deleted",
            "duration_s",
        } <= set(e)

    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
    emu.faults.clear()
    after = orsync(cfg, "pull", "--json")
    assert after.returncode == 0, after.stderr
    assert_mirror_equals_truth(db, emu)


# -- 2. lock between cycles, SIGHUP, stop while sleeping ---------------------------------------------


def test_lock_between_cycles_reload_and_stop_while_sleeping(
    tmp_path: Path, emu: Emulator, notify_socket: NotifySocket, services: list[ServiceProcess]
) -> None:
    cfg = config_for(tmp_path, emu, sync={"interval_s": 60, "jitter_s": 0})
    good = cfg.read_text()
    svc = start(services, cfg, notify_socket)
    notify_socket.wait(lambda: bool(notify_socket.with_prefix("STATUS=cycle")), 20, "a cycle")

    # Between cycles the lock is free: a manual pull runs at once.
    free = orsync(cfg, "pull", "--no-wait", "--no-push")
    assert free.returncode == 0, free.stderr

    # A broken config on SIGHUP: logged, the old one kept, READY again.
    cfg.write_text(good + "\n[sync]\nbogus_key = 1\n")
    svc.proc.send_signal(signal.SIGHUP)
    notify_socket.wait(lambda: bool(notify_socket.having("RELOADING=1")), 10, "RELOADING=1")
    notify_socket.wait(lambda: len(notify_socket.having("READY=1")) >= 2, 10, "READY after reload")
    assert "reload failed" in notify_socket.having("READY=1")[-1][1]
    svc.wait_event(lambda e: e["event"].startswith("reload failed"), 10, "the reload error")
    assert svc.proc.poll() is None

    # A good new config: applied, READY, and a cycle right away (despite interval_s = 60).
    n_cycles = len(svc.cycle_events())
    cfg.write_text(good.replace("jitter_s = 0", "jitter_s = 0.5"))
    svc.proc.send_signal(signal.SIGHUP)
    notify_socket.wait(lambda: len(notify_socket.having("READY=1")) >= 3, 10, "READY after reload")
    svc.wait_event(
        lambda e: e["event"] == "configuration reloaded" and e["changed"] == ["sync"], 10, "reload"
    )
    notify_socket.wait(lambda: len(svc.cycle_events()) > n_cycles, 10, "a cycle after reload")

    # SIGTERM while sleeping (60 s interval) wakes the sleep: a prompt, clean exit.
    time.sleep(0.3)
    t_term = time.monotonic()
    assert svc.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t_term < 3
    assert notify_socket.having("STOPPING=1")
    svc.check_output()


# -- 3. fault storm ----------------------------------------------------------------------------------


STORM: list[tuple[str, dict[str, float | str]]] = [
    ("429", {"retry_after": 1}),
    ("500", {}),
    ("502", {}),
    ("503", {}),
    ("drop", {}),
    ("slow", {"delay": 2.5}),  # beyond timeout_s = 2: a timeout
    ("slow", {"delay": 0.3}),
    ("429", {"retry_after": 1, "path": "/login"}),
    ("500", {"path": "/login"}),
]


def test_fault_storm_service_survives_and_converges(
    tmp_path: Path, emu: Emulator, notify_socket: NotifySocket, services: list[ServiceProcess]
) -> None:
    cfg = config_for(
        tmp_path,
        emu,
        sync={"interval_s": 0.2, "jitter_s": 0.1, "full_every": 3},
        # The storm's 429s (Retry-After: 1) are short waits the retry layer takes; a reset
        # beyond retry_max_wait_s is a rate limit waited out instead (test_live_api).
        openreview={"retry_attempts": 2, "retry_max_wait_s": 1.5},
    )
    db = tmp_path / "orsync.db"
    svc = start(services, cfg, notify_socket, watchdog_usec=2_000_000)
    notify_socket.wait(lambda: bool(notify_socket.with_prefix("STATUS=cycle")), 20, "a cycle")

    rng = random.Random(11)
    storm_end = time.monotonic() + 8
    while time.monotonic() < storm_end:
        kind, params = rng.choice(STORM)
        emu.faults.inject(kind, times=rng.randint(1, 4), **params)
        if rng.random() < 0.3:
            emu.faults.inject("expire_tokens")
        for _ in range(rng.randint(0, 2)):
            emu.random_mutation(rng)
        time.sleep(rng.uniform(0.05, 0.4))
        assert svc.proc.poll() is None, "the service died in the storm"
    emu.faults.clear()
    after_storm = db_rows(db, "SELECT max(id) FROM cycle")[0][0]
    # A full cycle that started after the storm (and the last mutation) must match exactly.
    wait_db(
        db,
        "SELECT id FROM cycle WHERE id > ? AND mode='full' AND outcome='ok'",
        (after_storm,),
        bool,
        30,
    )
    assert svc.proc.poll() is None
    assert_mirror_equals_truth(db, emu)

    status = orsync(cfg, "status", "--json", "--cycles", "1000")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    outcomes = [c["outcome"] for c in info["cycles"]]
    assert "failed" in outcomes and "ok" in outcomes, outcomes
    failed = [c for c in info["cycles"] if c["outcome"] == "failed"]
    assert all(c["error"] for c in failed)
    assert info["seconds_since_success"] is not None and info["seconds_since_success"] < 30
    # The operator's view lists the failures too.
    table = orsync(cfg, "status", "--cycles", "1000")
    assert "failed" in table.stdout

    # Failures were logged (with the back-off) and announced in STATUS=.
    assert notify_socket.with_prefix("STATUS=cycle failed")
    assert svc.stop() == 0
    events = svc.check_output()
    assert any(e["event"] == "cycle failed; backing off" for e in events)
    retries = [e for e in events if e["event"] == "OpenReview request failed; retrying"]
    assert retries
    # Events inside a cycle carry that cycle's id, the one `orsync status` shows.
    cycle_ids = {e["cycle_id"] for e in events if e["event"] == "cycle"}
    assert all(e["cycle_id"] in cycle_ids for e in retries)
    # The watchdog kept pinging through the storm: failing network is still a live loop.
    pings = [t for t, _ in notify_socket.having("WATCHDOG=1")]
    assert max(b - a for a, b in itertools.pairwise(pings)) < 2.0


# -- 4. start-up failures and the password -----------------------------------------------------------


def test_bad_config_exits_2(tmp_path: Path, emu: Emulator, services: list[ServiceProcess]) -> None:
    cfg = config_for(tmp_path, emu, sync={"no_such_key": 1})
    svc = start(services, cfg, None)
    assert svc.proc.wait(20) == 2
    svc.stop()
    events = svc.check_output()
    assert any("no_such_key" in e.get("error", "") for e in events)


def test_wrong_password_at_first_login_exits_4(
    tmp_path: Path, notify_socket: NotifySocket, services: list[ServiceProcess]
) -> None:
    with Emulator(dataset="bgpt", seed=5, size=10, password="the-right-one") as other:
        cfg = config_for(tmp_path, other)  # sends PASSWORD, which is wrong here
        svc = start(services, cfg, notify_socket)
        assert svc.proc.wait(20) == 4
        svc.stop()
        events = svc.check_output()
        assert any(e["event"] == "cycle" and e["outcome"] == "failed" for e in events)
        assert notify_socket.having("READY=1") and notify_socket.having("STOPPING=1")
        pulled = orsync(cfg, "pull")
        assert pulled.returncode == 4
        assert "rejected the login" in pulled.stderr
        status = json.loads(orsync(cfg, "status", "--json").stdout)
        assert [c["outcome"] for c in status["cycles"]] == ["failed", "failed"]


def test_unreachable_api_keeps_running_and_reports(
    tmp_path: Path, notify_socket: NotifySocket, services: list[ServiceProcess]
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = write_service_config(
        tmp_path,
        f"http://127.0.0.1:{port}",
        "ICLR.cc/2024/Workshop/BGPT",
        "chair@example.org",
        sync={"interval_s": 0.3},
    )
    svc = start(services, cfg, notify_socket, watchdog_usec=1_000_000)
    notify_socket.wait(
        lambda: len(notify_socket.with_prefix("STATUS=cycle failed")) >= 3, 30, "failures"
    )
    assert svc.proc.poll() is None
    info = json.loads(orsync(cfg, "status", "--json").stdout)
    finished = [c for c in info["cycles"] if c["outcome"] != "running"]  # one may be under way
    assert len(finished) >= 3 and all(c["outcome"] == "failed" for c in finished)
    assert all("kept failing" in c["error"] for c in finished)
    assert info["last_success"] is None
    pulled = orsync(cfg, "pull")
    assert pulled.returncode == 3
    assert len(notify_socket.having("WATCHDOG=1")) >= 2
    assert svc.stop() == 0
    svc.check_output()


def test_a_failed_push_shows_in_status_and_notify(
    tmp_path: Path, emu: Emulator, notify_socket: NotifySocket, services: list[ServiceProcess]
) -> None:
    cfg = config_for(tmp_path, emu, sync={"interval_s": 0.3})
    (tmp_path / "site").write_text("a file in the way of the website folder")
    cfg.write_text(cfg.read_text() + '[website]\noutput_dir = "site"\n')
    svc = start(services, cfg, notify_socket)
    notify_socket.wait(
        lambda: any("website push failed" in m for _, m in notify_socket.with_prefix("STATUS=")),
        30,
        "a STATUS= naming the failed push",
    )
    status = next(m for _, m in notify_socket.with_prefix("STATUS=") if "website push" in m)
    assert "website.output_dir" in status and "ok" in status  # the cycle itself was fine
    assert svc.stop() == 0  # cycles follow each other fast: read the last push once it is still
    info = json.loads(orsync(cfg, "status", "--json").stdout)
    assert info["last_push"]["outcome"] == "failed"
    assert info["last_push"]["command"] == "run" and info["last_push"]["cycle_id"] >= 1


# -- 5. in-process units: back-off and watchdog health -----------------------------------------------


def test_backoff_is_bounded_jittered_and_doubling() -> None:
    """After failed cycles in a row the service waits 2.5-5 s, then 5-10 s, 10-20 s, ...: each
    delay drawn from the upper half of a ceiling that starts at 5 s and doubles, the ceiling never
    above the sync interval."""
    assert BACKOFF_BASE_S == 5.0
    rng = random.Random(1)
    # failures in a row -> the ceiling, with sync.interval_s = 300
    ceilings = {1: 5, 2: 10, 3: 20, 4: 40, 5: 80, 6: 160, 7: 300, 8: 300, 11: 300, 50: 300}
    means = {}
    for failures, ceiling in ceilings.items():
        delays = [backoff_s(failures, 300, rng) for _ in range(400)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (failures, min(delays))
        # Jittered across the whole half: services that failed together do not retry together.
        assert min(delays) < ceiling * 0.55 and max(delays) > ceiling * 0.95
        assert len(set(delays)) == len(delays)
        means[failures] = sum(delays) / len(delays)
    # Doubling: each uncapped step waits about twice as long on average (3/4 of the ceiling).
    for failures in range(1, 6):
        assert 1.8 < means[failures + 1] / means[failures] < 2.2
    assert means[1] == pytest.approx(3.75, rel=0.05) and means[7] == pytest.approx(225, rel=0.05)
    # A zero count waits like the first failure; a short interval caps even the first delay.
    assert all(2.5 <= backoff_s(0, 300, rng) <= 5 for _ in range(50))
    assert all(0.25 <= backoff_s(50, 0.5, rng) <= 0.5 for _ in range(50))
    assert all(0.5 <= backoff_s(1, 1.0, rng) <= 1.0 for _ in range(50))
    # The same seed, the same delays; no generator given, the module's own (still bounded).
    once, again = random.Random(7), random.Random(7)
    assert [backoff_s(n, 300, once) for n in (1, 2, 3)] == [
        backoff_s(n, 300, again) for n in (1, 2, 3)
    ]
    assert all(10 <= backoff_s(3, 300) <= 20 for _ in range(50))


def test_health_means_progress_not_success(tmp_path: Path) -> None:
    now = [1000.0]
    svc = Service(tmp_path / "none.toml", clock=lambda: now[0], stall_s=60)
    assert svc.healthy()
    now[0] += 59
    assert svc.healthy()
    now[0] += 2
    assert not svc.healthy(), "no beat for longer than stall_s: a wedged loop"

    class FakeSource:
        requests = 0

    svc.source = FakeSource()  # type: ignore[assignment]
    FakeSource.requests = 5  # an HTTP request went out (even a failing one): progress
    assert svc.healthy()
    now[0] += 61
    assert not svc.healthy()
    svc.beat()
    assert svc.healthy()
