"""What the live API does to clients beyond faults: rate limits per window, and the browser
check it puts in front of guests (see "Recorded from the live service" in the API notes).

Rate limits
    A bucket (``notes`` for ``/notes*``, ``groups`` for ``/groups``, ``attachments`` for
    ``/attachment`` and ``/pdf``) allows ``limit`` requests per ``window_s`` seconds to each
    reader (a user id, or ``guest``). The window starts with the reader's first request in it,
    so a test can make "an hour" last a few seconds. Every answer on a limited path carries
    ``ratelimit-policy: L;w=W``, ``ratelimit-limit``, ``ratelimit-remaining``, ``ratelimit-reset``
    (seconds until the window resets) and the older ``x-ratelimit-limit/-remaining/-reset``
    (reset as epoch seconds). A request past the limit answers 429 with the recorded body
    (``details.resetTime``, "Please try again in N minutes and M seconds") and no ``Retry-After``.

Browser check
    ``html``: a guest's request answers HTTP 200 with the "Verifying your browser" page
    (``text/html``), as recorded; ``json``: 403 ``ChallengeRequiredError``. Logged-in readers
    and ``POST /login`` are never challenged.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

BUCKETS = ("notes", "groups", "attachments")
CHALLENGES = ("html", "json")

CHALLENGE_HTML = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Verifying your browser | OpenReview</title>
<script src="https://challenges.cloudflare.com/turnstile/v0/api.js" async defer></script>
</head><body><main>
<h1>Verifying your browser</h1>
<p>OpenReview is checking that you are not a robot. This will only take a moment.</p>
<div class="cf-turnstile" data-sitekey="0x4AAAAAAA-emulated" data-callback="onVerified"></div>
</main></body></html>
"""

CHALLENGE_MESSAGE = "Please complete the challenge to continue"


def bucket_of(path: str) -> str | None:
    if path.startswith("/notes"):
        return "notes"
    if path.startswith("/groups"):
        return "groups"
    if path.startswith(("/attachment", "/pdf")):
        return "attachments"
    return None


@dataclass
class _Window:
    started: float
    used: int = 0


@dataclass(frozen=True)
class Verdict:
    """The outcome of counting one request: its headers, and the 429 body when refused."""

    headers: dict[str, str]
    refused: dict[str, Any] | None = None


class RateLimits:
    """Per-bucket, per-reader fixed windows. Thread-safe; empty (no limits) by default."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policy: dict[str, tuple[int, float]] = {}
        self._windows: dict[tuple[str, str], _Window] = {}

    def set(self, bucket: str, limit: int | None, window_s: float = 3600.0) -> None:
        """Limit ``bucket`` to ``limit`` requests per ``window_s`` seconds (None: no limit)."""
        if bucket not in BUCKETS:
            raise ValueError(f"unknown bucket {bucket!r}; buckets: {', '.join(BUCKETS)}")
        with self._lock:
            if limit is None:
                self._policy.pop(bucket, None)
            else:
                if limit < 0 or window_s <= 0:
                    raise ValueError("limit must be >= 0 and window_s > 0")
                self._policy[bucket] = (int(limit), float(window_s))
            for key in [k for k in self._windows if k[0] == bucket]:
                del self._windows[key]

    @property
    def policies(self) -> dict[str, tuple[int, float]]:
        with self._lock:
            return dict(self._policy)

    def count(self, path: str, reader: str, req_id: str) -> Verdict:
        bucket = bucket_of(path)
        with self._lock:
            policy = self._policy.get(bucket) if bucket else None
            if bucket is None or policy is None:
                return Verdict({})
            limit, window_s = policy
            now = time.time()
            window = self._windows.get((bucket, reader))
            if window is None or now >= window.started + window_s:
                window = self._windows[(bucket, reader)] = _Window(now)
            window.used += 1
            used = window.used
            reset_at = window.started + window_s
        left = max(0.0, reset_at - now)
        headers = {
            "ratelimit-policy": f"{limit};w={_whole(window_s)}",
            "ratelimit-limit": str(limit),
            "ratelimit-remaining": str(max(0, limit - used)),
            "ratelimit-reset": str(math.ceil(left)),
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(0, limit - used)),
            "x-ratelimit-reset": str(math.ceil(reset_at)),
        }
        if used <= limit:
            return Verdict(headers)
        minutes, seconds = divmod(math.ceil(left), 60)
        reset = datetime.fromtimestamp(reset_at, UTC).isoformat(timespec="milliseconds")
        body = {
            "name": "RateLimitError",
            "message": (
                f"Too many requests: You have made {used} requests, surpassing the limit of "
                f"{limit} requests. Please try again in {minutes} minutes and {seconds} seconds "
                f"({req_id})"
            ),
            "status": 429,
            "details": {
                "limit": limit,
                "remaining": 0,
                "resetTime": reset.replace("+00:00", "Z"),
                "used": used,
                "current": used,
                "reqId": req_id,
            },
        }
        return Verdict(headers, body)


def _whole(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
