"""The source's one retry layer (orsync.source) against the emulator over loopback HTTP: how long
it waits before each retry, and when it stops. Its sleeps are recorded, not slept."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orsync.emulator import Emulator
from orsync.errors import RateLimitedError, UnreachableError
from orsync.source import OpenReviewSource, RetryPolicy


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(dataset="bgpt", seed=3, size=5) as e:
        yield e


@pytest.fixture(autouse=True)
def _no_faults_left(emu: Emulator) -> Iterator[None]:
    emu.faults.clear()
    yield
    emu.faults.clear()


def source(emu: Emulator, slept: list[float], **policy: float) -> OpenReviewSource:
    """A guest source whose sleeps are recorded; the default policy unless ``policy`` says."""
    src = OpenReviewSource(
        emu.url,
        policy=RetryPolicy(**policy),
        sleep=slept.append,
    )
    src.connect()
    return src


def test_retry_after_is_honoured_to_the_second(emu: Emulator) -> None:
    slept: list[float] = []
    emu.faults.inject("429", times=2, retry_after=7)
    group = source(emu, slept).venue_group(emu.venue_id)
    assert group["id"] == emu.venue_id
    assert slept == [7.0, 7.0]


def test_a_retry_after_beyond_the_longest_wait_is_not_retried(emu: Emulator) -> None:
    slept: list[float] = []
    emu.faults.inject("429", times=1, retry_after=30)
    src = source(emu, slept, max_wait_s=10)
    with pytest.raises(RateLimitedError, match="does not retry before then"):
        src.venue_group(emu.venue_id)
    assert slept == []  # refused at once: the wait is reported, never slept through


def test_without_retry_after_the_wait_doubles_with_jitter_up_to_the_cap(emu: Emulator) -> None:
    # Five server errors, six attempts: a 1 s first ceiling doubling to 2, 4, then the 5 s cap;
    # each wait jittered between half its ceiling and the ceiling.
    ceilings = [1.0, 2.0, 4.0, 5.0, 5.0]
    runs: list[list[float]] = []
    for _ in range(8):
        slept: list[float] = []
        emu.faults.inject("503", times=5)
        source(emu, slept, initial_s=1, max_wait_s=5).venue_group(emu.venue_id)
        assert len(slept) == 5
        assert all(c / 2 <= s <= c for s, c in zip(slept, ceilings, strict=True)), slept
        runs.append(slept)
    assert len({tuple(r) for r in runs}) == len(runs)  # jittered: no two runs alike


def test_the_attempts_are_bounded(emu: Emulator) -> None:
    slept: list[float] = []
    emu.faults.inject("500", times=10)
    with pytest.raises(UnreachableError, match="kept failing"):
        source(emu, slept, attempts=3, initial_s=0.5).venue_group(emu.venue_id)
    assert len(slept) == 2  # three attempts, two waits between them
    assert emu.faults.pending[0].remaining == 7
