"""What the live API does to unattended clients, as recorded: a browser check for guests and
rate limits that reset in an hour. orsync recognises both, never retries them, and says when to
try again (``pull``) or waits until then (``run``), changing nothing in the store meanwhile."""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from conftest import Setup, assert_mirror_equals_truth, run_cli, store_dump, write_config
from helpers import PASSWORD, NotifySocket, ServiceProcess, config_for, orsync, start
from orsync.emulator import Emulator

pytestmark = pytest.mark.timeout(180)

ZONE = "Asia/Kathmandu"  # +05:45: a local time no UTC time could be mistaken for


def _login(e: Emulator) -> str:
    r = requests.post(
        e.url + "/login",
        json={"id": e.chair_username, "password": e.chair_password, "expiresIn": None},
        timeout=10,
    )
    r.raise_for_status()
    return str(r.json()["token"])


def spend_notes_quota(e: Emulator, times: int) -> requests.Response:
    """Another client of the chair's account (a browser, a script) reads notes ``times`` times."""
    token = _login(e)
    answer: requests.Response | None = None
    for _ in range(times):
        answer = requests.get(
            e.url + "/notes",
            params={"id": "none", "limit": 1},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    assert answer is not None
    return answer


def local_times(epoch: int, zone: str | None = ZONE, spread: int = 2) -> list[str]:
    """``epoch`` (give or take the rounding of the reset) on the wall clock of ``zone``
    (None: this machine's)."""
    tz = ZoneInfo(zone) if zone else None
    return [f"{datetime.fromtimestamp(epoch + d, tz):%H:%M:%S}" for d in range(-spread, spread + 1)]


def log_of(e: Emulator) -> list[Any]:
    """The emulator's request log, once the last answer's entry is written (it is logged just
    after the answer is sent)."""
    time.sleep(0.2)
    return e.requests


def refused(e: Emulator) -> list[Any]:
    return [r for r in log_of(e) if r.fault in ("ratelimit", "challenge") or r.status == 429]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """A small venue whose chair has the service tests' password (their config files use it)."""
    with Emulator(dataset="bgpt", seed=5, size=30, password=PASSWORD) as e:
        yield e


# -- the browser check ----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["html", "json"])
def test_guest_behind_the_browser_check_is_told_to_log_in(
    tmp_path: Path, emulator: Emulator, variant: str
) -> None:
    emulator.set_challenge(variant)
    config = write_config(tmp_path, emulator, guest=True)
    started = time.monotonic()
    result = run_cli("--config", str(config), "pull")
    took = time.monotonic() - started
    assert result.returncode == 4, result.stderr
    assert took < 5, took
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "asks anonymous clients for a browser check" in lines[0]
    assert "set openreview.username" in lines[0] and "password" in lines[0]
    assert "try again later" not in lines[0] and "kept failing" not in lines[0]
    # One request, answered with the check; nothing asked again.
    assert [(r.path, r.fault) for r in log_of(emulator)] == [("/groups", "challenge")]

    emulator.clear_requests()
    check = run_cli("--config", str(config), "check")
    assert check.returncode == 4, check.stdout
    assert "asks anonymous clients for a browser check" in check.stdout
    assert "set openreview.username" in check.stdout
    assert len(log_of(emulator)) == 1
    # Logged in, the same venue reads fine.
    chair = write_config(tmp_path / "chair", emulator)
    assert run_cli("--config", str(chair), "pull").returncode == 0


# -- an hour-long 429 -----------------------------------------------------------------------------


def test_pull_meeting_an_hour_long_limit_exits_at_once_naming_the_local_time(
    setup: Setup,
) -> None:
    venue = setup.emu
    assert setup.cli("pull").returncode == 0
    forum = next(iter(venue.truth("chair")["submissions"]))
    venue.edit_content(forum, title="Changed while the quota is used up")
    before = store_dump(setup.db)

    venue.set_rate_limit("notes", 1, window_s=3600)
    spent = spend_notes_quota(venue, 1)  # the account's last request of this hour
    reset_epoch = int(spent.headers["x-ratelimit-reset"])
    log_of(venue)  # that request is logged before the log is cleared
    venue.clear_requests()

    started = time.monotonic()
    result = setup.cli("pull", "--full", env={"TZ": ZONE})
    took = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    assert took < 5, took
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert "rate limit on notes" in line and "used up" in line
    assert any(t in line for t in local_times(reset_epoch)), (line, local_times(reset_epoch))
    assert "+0545" in line or "+05" in line
    assert len(refused(venue)) == 1
    assert log_of(venue)[-1].status == 429  # nothing after the refusal
    assert store_dump(setup.db) == before

    # status names the time too, and the cycle keeps the quota it saw.
    status = setup.cli("status", "--json", env={"TZ": ZONE})
    info = json.loads(status.stdout)
    assert info["rate_limited_until"] is not None
    assert info["rate_limited_until"].endswith("+05:45")
    last = info["cycles"][0]
    assert last["outcome"] == "failed" and last["quota_remaining"] == 0
    assert "rate limit" in last["error"]
    assert last["quota_reset_at"] is not None
    text = setup.cli("status", env={"TZ": ZONE})
    assert "rate limit" in text.stdout
    assert any(t in text.stdout for t in local_times(reset_epoch))


# -- run under a limit ----------------------------------------------------------------------------


def test_run_sleeps_until_the_reset_keeps_the_watchdog_fed_then_converges(
    tmp_path: Path,
    emu: Emulator,
    notify_socket: NotifySocket,
    services: list[ServiceProcess],
) -> None:
    window_s = 8.0  # stands for OpenReview's hour
    emu.set_rate_limit("notes", 2, window_s=window_s)
    spent = spend_notes_quota(emu, 2)
    reset_epoch = int(spent.headers["x-ratelimit-reset"])  # rounded up
    rng_forum = next(iter(emu.truth("chair")["submissions"]))
    emu.edit_content(rng_forum, title="Edited before the service started")
    emu.clear_requests()
    cfg = config_for(tmp_path, emu, sync={"interval_s": 300, "jitter_s": 0.5})
    db = tmp_path / "orsync.db"
    wall_minus_mono = time.time() - time.monotonic()

    svc = start(services, cfg, notify_socket, watchdog_usec=1_000_000)
    notify_socket.wait(
        lambda: bool(notify_socket.with_prefix("STATUS=rate limited by OpenReview until")),
        30,
        "STATUS= naming the rate limit",
    )
    status_line = notify_socket.with_prefix("STATUS=rate limited")[0][1]
    assert any(t in status_line for t in local_times(reset_epoch, None)), status_line
    assert "next cycle in" in status_line

    # While it sleeps, `orsync status` names the time.
    shown = orsync(cfg, "status")
    assert shown.returncode == 0, shown.stderr
    assert "rate limit" in shown.stdout
    assert any(t in shown.stdout for t in local_times(reset_epoch, None)), shown.stdout
    info = json.loads(orsync(cfg, "status", "--json").stdout)
    assert info["rate_limited_until"] is not None
    assert info["cycles"][0]["outcome"] == "failed"
    assert "rate limit" in info["cycles"][0]["error"]

    svc.wait_event(lambda e: e["event"] == "cycle" and e["outcome"] == "ok", 40, "a good cycle")
    log = emu.requests
    refusals = [r for r in log if r.status == 429]
    assert len(refusals) == 1, [(r.path, r.status) for r in log]
    t_refused = refusals[0].time
    after = [r for r in log if r.time > t_refused]
    assert after, "no request after the reset"
    # Nothing was asked between the refusal and the reset (x-ratelimit-reset is rounded up).
    assert min(r.time for r in after) >= reset_epoch - 1.0, (t_refused, after[0], reset_epoch)
    assert all(r.status == 200 for r in after)

    # The watchdog was fed all along the sleep: pings every ~0.5 s, no gap near 1 s.
    pings = [t + wall_minus_mono for t, _ in notify_socket.having("WATCHDOG=1")]
    during = [t for t in pings if t_refused <= t <= min(r.time for r in after)]
    span = min(r.time for r in after) - t_refused
    assert len(during) >= span / 1.0, (len(during), span)
    gaps = [b - a for a, b in itertools.pairwise(during)]
    assert gaps and max(gaps) < 0.95, gaps

    # STATUS= follows the cycle's log event once the pass's stages are done.
    notify_socket.wait(
        lambda: any(" ok (full)" in m for _, m in notify_socket.with_prefix("STATUS=cycle")),
        30,
        "a STATUS= for the good cycle",
    )
    assert_mirror_equals_truth(db, emu.truth("chair"))
    cycles = (
        sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        .execute(
            "SELECT outcome, quota_remaining, error LIKE '%rate limit%' FROM cycle ORDER BY id"
        )
        .fetchall()
    )
    assert cycles == [("failed", 0, 1), ("ok", 1, None)], cycles
    ok_event = next(e for _, e in svc.cycle_events() if e["outcome"] == "ok")
    assert ok_event["quota_remaining"] == 1 and ok_event["quota_reset_at"]
    assert svc.stop() == 0


# -- a quota too low for the cycle ----------------------------------------------------------------


def test_low_quota_stops_a_full_cycle_before_refusal_and_the_next_one_completes(
    tmp_path: Path,
) -> None:
    # Over 1000 submissions: a full walk takes two pages, so the cycle is cut between them.
    with Emulator(dataset="bgpt", seed=3, size=1100) as venue:
        config = write_config(tmp_path, venue)
        db = tmp_path / "orsync.db"
        assert run_cli("--config", str(config), "pull", "--full").returncode == 0
        for forum in list(venue.truth("chair")["submissions"])[:5]:
            venue.edit_content(forum, title="Edited while the quota runs low")
        before = store_dump(db)

        window_s = 20.0
        venue.set_rate_limit("notes", 5, window_s=window_s)
        spent = spend_notes_quota(venue, 1)  # 4 left: one page, then 3 = the reserve
        reset_epoch = int(spent.headers["x-ratelimit-reset"])
        log_of(venue)  # that request is logged before the log is cleared
        venue.clear_requests()
        result = run_cli("--config", str(config), "pull", "--full", env={"TZ": ZONE})
        assert result.returncode == 3, result.stderr
        line = result.stderr.strip()
        assert "nearly used up" in line and "stopped before being refused" in line
        assert any(t in line for t in local_times(reset_epoch)), line
        assert refused(venue) == []
        assert [r.path for r in log_of(venue)].count("/notes") == 1  # the second page not asked
        assert store_dump(db) == before  # the first page was rolled back with the cycle
        # Nothing failed: the cycle is deferred, and status says until when, not as a failure.
        info = json.loads(run_cli("--config", str(config), "status", "--json").stdout)
        assert info["cycles"][0]["outcome"] == "deferred", info["cycles"][0]
        assert info["rate_limited_until"] is not None
        shown = run_cli("--config", str(config), "status", env={"TZ": ZONE}).stdout
        line = next(
            t for t in shown.splitlines() if t.startswith(f"cycle {info['cycles'][0]['id']}")
        )
        assert "deferred until" in line and "nothing failed" in line, line
        assert any(t in line for t in local_times(reset_epoch)), line

        time.sleep(max(0.0, reset_epoch - time.time()) + 0.5)
        again = run_cli("--config", str(config), "pull", "--full", "--json")
        assert again.returncode == 0, again.stderr
        summary = json.loads(again.stdout)
        assert summary["outcome"] == "ok" and summary["quota_remaining"] == 3
        assert refused(venue) == []
        assert_mirror_equals_truth(db, venue.truth("chair"))


# -- the emulator reproduces what was recorded ------------------------------------------------


def test_emulator_answers_like_the_recordings(emulator: Emulator) -> None:
    emulator.set_rate_limit("notes", 2, window_s=3600)
    emulator.set_rate_limit("attachments", 1, window_s=3600)
    token = _login(emulator)
    auth = {"Authorization": f"Bearer {token}"}
    first = requests.get(emulator.url + "/notes", params={"limit": 1}, headers=auth, timeout=10)
    assert first.headers["ratelimit-policy"] == "2;w=3600"
    assert first.headers["ratelimit-remaining"] == "1"
    assert 3590 <= int(first.headers["ratelimit-reset"]) <= 3600
    assert abs(int(first.headers["x-ratelimit-reset"]) - (time.time() + 3600)) < 5
    requests.get(emulator.url + "/notes", params={"limit": 1}, headers=auth, timeout=10)
    third = requests.get(emulator.url + "/notes", params={"limit": 1}, headers=auth, timeout=10)
    assert third.status_code == 429 and "Retry-After" not in third.headers
    body = third.json()
    assert body["name"] == "RateLimitError" and body["details"]["limit"] == 2
    assert body["details"]["resetTime"].endswith("Z") and body["details"]["remaining"] == 0
    assert (
        "Please try again in 59 minutes and" in body["message"] or "60 minutes" in body["message"]
    )
    # Attachments are counted apart from notes; groups are not limited here.
    note = next(iter(emulator.truth("chair")["submissions"]))
    pdf = requests.get(
        emulator.url + "/attachment", params={"id": note, "name": "pdf"}, headers=auth, timeout=10
    )
    assert pdf.status_code == 200 and pdf.headers["ratelimit-limit"] == "1"
    again = requests.get(
        emulator.url + "/attachment", params={"id": note, "name": "pdf"}, headers=auth, timeout=10
    )
    assert again.status_code == 429
    groups = requests.get(emulator.url + "/groups", params={"id": emulator.venue_id}, timeout=10)
    assert groups.status_code == 200 and "ratelimit-limit" not in groups.headers
    emulator.set_challenge("html")
    page = requests.get(emulator.url + "/groups", params={"id": emulator.venue_id}, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Verifying your browser" in page.text
    log = log_of(emulator)
    assert [r.fault for r in log][-1] == "challenge"
    assert sum(1 for r in log if r.fault == "ratelimit") == 2


def test_run_defers_a_cycle_that_would_spend_the_reserve_without_counting_a_failure(
    tmp_path: Path, notify_socket: NotifySocket, services: list[ServiceProcess]
) -> None:
    # Over 1000 submissions: the first full walk takes two pages; the quota leaves one.
    with Emulator(dataset="bgpt", seed=3, size=1100, password=PASSWORD) as venue:
        window_s = 15.0
        venue.set_rate_limit("notes", 5, window_s=window_s)
        spent = spend_notes_quota(venue, 1)  # 4 left: one page, then 3 = the reserve
        reset_epoch = int(spent.headers["x-ratelimit-reset"])
        cfg = config_for(tmp_path, venue, sync={"interval_s": 300, "jitter_s": 0.5})
        svc = start(services, cfg, notify_socket, watchdog_usec=1_000_000)
        svc.wait_event(lambda e: e["event"] == "cycle", 40, "the first cycle")
        (_, event), *_ = svc.cycle_events()
        # Logged as information, not as a warning: nothing failed.
        assert event["outcome"] == "deferred" and event["level"] == "info", (event, svc.lines[-8:])
        notify_socket.wait(
            lambda: bool(notify_socket.with_prefix("STATUS=cycle 1 deferred until")),
            20,
            "STATUS= naming the deferral",
        )
        line = notify_socket.with_prefix("STATUS=cycle 1 deferred until")[0][1]
        assert any(t in line for t in local_times(reset_epoch, None)), line
        assert "failed" not in line and "next cycle in" in line
        assert not any(
            e["level"] in ("warning", "error") and e["logger"] == "orsync.service"
            for _, e in svc.events()
        ), [e for _, e in svc.events() if e["level"] in ("warning", "error")]
        shown = orsync(cfg, "status")
        assert "cycle 1 deferred until" in shown.stdout, shown.stdout
        # After the reset the next cycle completes; the deferral was never a failure to back
        # off from.
        svc.wait_event(lambda e: e["event"] == "cycle" and e["outcome"] == "ok", 60, "a good cycle")
        assert refused(venue) == []
        assert svc.stop() == 0
