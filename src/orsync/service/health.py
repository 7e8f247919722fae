"""The service's health (for the systemd watchdog) and its back-off after failures.

Healthy means *progress*, not success: a failing network that keeps retrying is healthy; a loop
that shows no progress (no beat, no HTTP request) for ``stall_s`` is wedged, and the watchdog
lets systemd restart it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

BACKOFF_BASE_S = 5.0  # the first delay after a failed cycle; doubles per failure in a row
STALL_MIN_S = 180.0  # the shortest stall window; longer when requests may take longer
STALL_TIMEOUTS = 4  # a stall lasts this many request timeouts at least


def backoff_s(failures: int, interval_s: float, rng: random.Random | None = None) -> float:
    """Delay after ``failures`` failed cycles in a row: jittered, doubling, capped at the interval."""
    ceiling = min(interval_s, BACKOFF_BASE_S * 2 ** max(0, failures - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


def stall_for(timeout_s: float) -> float:
    return max(STALL_MIN_S, STALL_TIMEOUTS * timeout_s)


class Health:
    """When the loop last showed progress; requests sent count as progress too."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, stall_s: float = STALL_MIN_S):
        self.clock = clock
        self.stall_s = stall_s
        self._last_beat = clock()
        self._seen_requests = -1

    def beat(self) -> None:
        self._last_beat = self.clock()

    def healthy(self, requests: int | None = None) -> bool:
        if requests is not None and requests != self._seen_requests:
            self._seen_requests = requests
            self.beat()
        return self.clock() - self._last_beat <= self.stall_s
