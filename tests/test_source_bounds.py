"""Every answer of the API is bounded (docs/security.md#bounds): hostile answers served by the
emulator over real HTTP to ``orsync pull`` in a child process, whose peak memory and wall time
are measured. A browser-check or error body is read to 64 KiB at most (decoded), a JSON answer
to ``JSON_MAX``, every request has a wall-clock deadline of ``openreview.timeout_s`` (its
headers too, not only its body), and no redirect is followed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import write_config
from helpers import measured_cli, one_error_line
from orsync.emulator import Emulator

pytestmark = pytest.mark.timeout(300)

# A pull of this small venue peaks near 100 MiB; every hostile body below inflates to 1 GiB.
PEAK_MIB = 350
BOMB_MIB = 1024


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(dataset="bgpt", seed=5, size=20) as e:
        yield e


def test_a_gzip_bomb_page_fails_the_request_at_the_cap(tmp_path: Path, emu: Emulator) -> None:
    emu.faults.inject("gzip_bomb", 1, mb=BOMB_MIB)
    cfg = write_config(tmp_path, emu)
    done, peak, wall = measured_cli(cfg, "pull")
    assert done.returncode == 3, done.stderr
    line = one_error_line(done.stderr)
    assert "larger than 100 MiB decoded" in line, line
    assert peak < PEAK_MIB, f"peak {peak:.0f} MiB"
    assert wall < 60
    assert [r.fault for r in emu.requests if r.fault] == ["gzip_bomb"]  # refused, not retried


@pytest.mark.parametrize(
    ("status", "gzip", "code"),
    [(500, 1, 0), (400, 0, 3)],
    ids=["retried-5xx-gzip", "4xx-plain"],
)
def test_a_huge_error_body_is_read_to_64_kib(
    tmp_path: Path, emu: Emulator, status: int, gzip: int, code: int
) -> None:
    emu.faults.inject("big_error", 1, status=status, gzip=gzip, mb=BOMB_MIB)
    cfg = write_config(tmp_path, emu)
    done, peak, wall = measured_cli(cfg, "pull")
    assert done.returncode == code, done.stderr
    if code:
        assert f"{status} Error" in one_error_line(done.stderr)
    assert peak < PEAK_MIB, f"peak {peak:.0f} MiB"
    assert wall < 60


def test_a_body_that_dribbles_ends_at_the_deadline_and_is_retried(
    tmp_path: Path, emu: Emulator
) -> None:
    emu.faults.inject("slow_body", 1, byte_every=0.5)
    cfg = write_config(tmp_path, emu)  # timeout_s = 5
    done, _, wall = measured_cli(cfg, "pull", timeout=90)
    assert done.returncode == 0, done.stderr
    # One deadline of 5 s, a short back-off, then the normal pull (a few seconds here).
    assert wall < 30, wall
    # The emulator logs the slow answer once its writes fail on the closed connection.
    give_up = time.monotonic() + 10
    while not any(r.fault == "slow_body" for r in emu.requests) and time.monotonic() < give_up:
        time.sleep(0.1)
    assert [r.fault for r in emu.requests if r.fault] == ["slow_body"]


def test_headers_that_dribble_end_at_the_deadline_and_fail_after_the_retries(
    tmp_path: Path, emu: Emulator
) -> None:
    # One byte of the status line and headers a second: each read waits under timeout_s, so
    # only a deadline on the whole answer ends it.
    emu.faults.inject("slow_headers", 10, byte_every=1)
    cfg = write_config(tmp_path, emu, retry_attempts=3)
    cfg.write_text(cfg.read_text().replace("timeout_s = 5", "timeout_s = 3"))
    done, _, wall = measured_cli(cfg, "pull", timeout=60)
    assert done.returncode == 3, done.stderr
    line = one_error_line(done.stderr)
    assert "kept failing (no complete answer within openreview.timeout_s)" in line, line
    assert "after 3 attempts" in line, line
    # Three deadlines of 3 s and back-offs of a fraction of a second each.
    assert wall < 30, wall
    give_up = time.monotonic() + 10
    while len([r for r in emu.requests if r.fault]) < 3 and time.monotonic() < give_up:
        time.sleep(0.1)
    assert [r.fault for r in emu.requests if r.fault] == ["slow_headers"] * 3


def test_a_redirect_is_refused_and_its_target_never_asked(tmp_path: Path, emu: Emulator) -> None:
    with Emulator(dataset="bgpt", seed=5, size=20) as other:
        emu.faults.inject("redirect", 1, location=f"{other.url}/groups?id={other.venue_id}")
        cfg = write_config(tmp_path, emu, guest=True)
        done, _, _ = measured_cli(cfg, "pull")
        assert done.returncode == 3, done.stderr
        line = one_error_line(done.stderr)
        assert "redirect (HTTP 302)" in line and "follows no redirects" in line, line
        assert other.url in line
        assert other.requests == []
