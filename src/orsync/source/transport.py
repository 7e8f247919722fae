"""One request to OpenReview and its answer: timeouts, the one retry layer, quota, challenges.

openreview-py's own retry layer is switched off and replaced by this one, because the built-in
one has no request timeout, honours any ``Retry-After`` without a cap, ``print``s every retry to
stdout (which would break the service's JSON-only output) and, once exhausted, raises
``JSONDecodeError`` instead of the server's error. Stacking two layers would multiply attempts
(8 × ours), so exactly one layer retries: this one.

Every answer, whether it comes to a client call or to a raw read, passes through one adapter
(:class:`_Adapter`) that times the request out, counts it, reads the rate-limit headers, and
classifies what must not reach a JSON parser: 5xx and short 429s (retried), a 429 whose reset
lies beyond the longest wait (:class:`RateLimitedError`, never retried), and OpenReview's
browser check for anonymous clients (an HTML "Verifying your browser" page with HTTP 200, or a
JSON 403 ``ChallengeRequiredError``: never retried, the account must log in).

Quota: the server announces what is left in its window on every answer. Before each request,
and before each further page of a full walk, a read stops when fewer than
``QUOTA_RESERVE`` requests would be left after the ones it still needs; it raises
:class:`RateLimitedError` with the reset time instead of being refused.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
)

from orsync import jsonio
from orsync.config import QUOTA_RESERVE
from orsync.errors import AccessError, RateLimitedError, UnreachableError, local_time
from orsync.source.bodies import (
    BODY_HEAD_MAX,
    JSON_MAX,
    BodyTooLarge,
    DeadlinePassed,
    challenge,
    consumed,
    error_body,
    head,
    keep,
    read_capped,
)
from orsync.source.deadline import HeaderDeadline, WatchedAdapter
from orsync.text import iso_local


@dataclass(frozen=True)
class Quota:
    """What the server said is left of one rate-limit bucket, as of request ``seq``."""

    bucket: str
    limit: int | None
    remaining: int
    reset_at: float | None  # epoch seconds
    seq: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "limit": self.limit,
            "remaining": self.remaining,
            "reset_at": iso_local(self.reset_at),
        }


def bucket_of(path: str) -> str:
    """The rate-limit bucket of an API path, as the server counts them."""
    if path.startswith("/notes"):
        return "notes"
    if path.startswith("/groups"):
        return "groups"
    if path.startswith(("/attachment", "/pdf")):
        return "attachments"
    return path.strip("/").split("/", 1)[0] or "other"


def header_int(value: str | None) -> int | None:
    """A header's number (``"12"``, ``"12.0"``), None when absent or not a number."""
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def quota_headers(
    headers: Mapping[str, str], now: float
) -> tuple[int, int | None, float | None] | None:
    """(remaining, limit, reset_at) from ``ratelimit-*`` (reset in seconds) or the older
    ``x-ratelimit-*`` (reset as epoch seconds)."""
    remaining = header_int(headers.get("ratelimit-remaining"))
    if remaining is not None:
        reset = header_int(headers.get("ratelimit-reset"))
        return (
            remaining,
            header_int(headers.get("ratelimit-limit")),
            (None if reset is None else now + reset),
        )
    remaining = header_int(headers.get("x-ratelimit-remaining"))
    if remaining is None:
        return None
    reset = header_int(headers.get("x-ratelimit-reset"))
    # Epoch seconds as recorded; a small number can only be a delay.
    reset_at = None if reset is None else float(reset) if reset > 1_000_000_000 else now + reset
    return remaining, header_int(headers.get("x-ratelimit-limit")), reset_at


_TRY_AGAIN = re.compile(
    r"try again in\s+(?:(?P<h>\d+)\s*hours?)?[\s,and]*(?:(?P<m>\d+)\s*minutes?)?"
    r"[\s,and]*(?:(?P<s>\d+)\s*seconds?)?",
    re.IGNORECASE,
)


def rate_limit_wait(
    response: requests.Response, body: Mapping[str, Any], now: float
) -> float | None:
    """Seconds until a 429's limit resets, from everything the server said; the latest wins."""
    waits: list[float] = []
    after = retry_after(response)
    if after is not None:
        waits.append(after)
    quota = quota_headers(response.headers, now)
    if quota is not None and quota[2] is not None:
        waits.append(quota[2] - now)
    details = body.get("details")
    reset_time = details.get("resetTime") if isinstance(details, dict) else None
    if isinstance(reset_time, str):
        with contextlib.suppress(ValueError):
            waits.append(
                datetime.fromisoformat(reset_time.replace("Z", "+00:00")).timestamp() - now
            )
    match = _TRY_AGAIN.search(str(body.get("message", "")))
    if match and any(match.group(g) for g in "hms"):
        h, m, sec = (int(match.group(g) or 0) for g in "hms")
        waits.append(h * 3600 + m * 60 + sec)
    return max(0.0, max(waits)) if waits else None


def retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


# ------------------------------------------------------------------ what an answer can be


class Challenged(Exception):
    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter; ``Retry-After`` honoured up to a cap."""

    attempts: int = 6
    initial_s: float = 1.0
    max_wait_s: float = 120.0
    max_total_s: float = 900.0


class TransientError(Exception):
    """A failure worth retrying: network trouble, 429, 5xx, a truncated body."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FileTooLarge(Exception):
    """A download grew past its size limit; nothing of it is kept."""


class WalkStopped(Exception):
    """A walk's reader asked it to stop (its ``stop`` event) while it waited to retry."""


class TokenExpired(Exception):
    pass


class ApiError(Exception):
    def __init__(self, status: int, name: str, message: str, what: str) -> None:
        super().__init__(f"{status} {name}: {message}")
        self.status = status
        self.name = name
        self.message = message
        self.what = what

    def as_user_error(self) -> Exception:
        if self.name == "ChallengeRequiredError":
            return AccessError(
                f"OpenReview asked for an anti-bot challenge while reading {self.what}; "
                "set openreview.username so orsync logs in"
            )
        if self.status == 404:
            return AccessError(f"{self.what} not found ({self.message}); check openreview.venue_id")
        if self.status in (401, 403):
            return AccessError(
                f"not allowed to read {self.what} ({self.name}: {self.message}); "
                "check the account's access"
            )
        return UnreachableError(
            f"OpenReview refused the request for {self.what}: {self.status} {self.name}: {self.message}"
        )


@contextlib.contextmanager
def network_faults() -> Iterator[None]:
    """``requests``' exceptions as retryable faults, whoever made the request."""
    try:
        yield
    except DeadlinePassed:
        raise TransientError("no complete answer within openreview.timeout_s") from None
    except requests.exceptions.Timeout:
        raise TransientError("request timed out") from None
    except requests.exceptions.ConnectionError as exc:
        reason = exc.args[0] if exc.args else exc
        text = str(reason)
        if "Connection refused" in text or "Failed to resolve" in text or "Name or service" in text:
            raise TransientError("connection refused or host unknown") from None
        raise TransientError("connection dropped") from None
    except requests.exceptions.RequestException as exc:
        raise TransientError(exc.__class__.__name__) from None


# ------------------------------------------------------------------ the session


class _Adapter(WatchedAdapter):
    """Every request gets a deadline for its whole answer (its headers watched by a
    ``HeaderDeadline``, its body read against the same deadline) and is counted, every answer
    inspected (redirect, quota, 429, 5xx, browser check) before any caller parses it, and a body
    read in full only up to ``JSON_MAX``; retries are ours, not urllib3's.

    The body is always streamed from the server: with ``stream=False`` requests would read it
    whole, so the adapter reads it itself (bounded) and hands it over as the content."""

    def __init__(
        self,
        timeout_s: float,
        counter: Callable[[], None],
        inspect: Callable[[requests.PreparedRequest, requests.Response], None],
    ) -> None:
        super().__init__(max_retries=0, pool_connections=2, pool_maxsize=4)
        self._timeout_s = timeout_s
        self._counter = counter
        self._inspect = inspect

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout_s
        streamed = bool(kwargs.get("stream"))
        kwargs["stream"] = True
        deadline = time.monotonic() + self._timeout_s
        self._counter()
        with HeaderDeadline(self._timeout_s) as headers:
            response = super().send(request, **kwargs)
        try:
            if headers.passed:  # they came as the timer shut the socket: the body cannot follow
                raise DeadlinePassed("no answer's headers before the deadline")
            refuse_redirect(request, response)
            ctype = response.headers.get("Content-Type", "").lower()
            if response.status_code >= 400 or "html" in ctype:
                # All that an error page or a browser check is read of, before its deadline.
                head(response, BODY_HEAD_MAX, deadline, self._timeout_s)
            self._inspect(request, response)
            if not streamed and not consumed(response):
                keep(response, read_capped(response, JSON_MAX, deadline, self._timeout_s))
        except BodyTooLarge:
            path = urlsplit(request.url or "").path
            raise UnreachableError(
                f"OpenReview's answer to {path} is larger than {JSON_MAX // (1 << 20)} MiB "
                "decoded, the most orsync reads of one answer (a page of 1,000 notes is about "
                "10 MB); refused"
            ) from None
        except BaseException:
            response.close()
            raise
        return response


def refuse_redirect(request: requests.PreparedRequest, response: requests.Response) -> None:
    """No redirect is followed: the answer must come from ``openreview.baseurl`` itself, and a
    redirect's target (another host, port or scheme) is never asked."""
    if 300 <= response.status_code < 400:
        target = response.headers.get("Location", "")[:200]
        path = urlsplit(request.url or "").path
        raise UnreachableError(
            f"OpenReview answered {path} with a redirect (HTTP {response.status_code}) to "
            f"{target!r}; orsync follows no redirects and did not fetch it: check "
            "openreview.baseurl"
        )


class Transport:
    """The requests of one session (openreview-py's, so its login shares them): counted,
    timed out, paced by the quota and retried here only."""

    def __init__(
        self,
        session: requests.Session,
        baseurl: str,
        *,
        account: str,
        timeout_s: float,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        on_retry: Callable[[str, float], None] | None,
    ) -> None:
        self.session = session
        self.baseurl = baseurl
        self.account = account
        self.policy = policy
        self._sleep = sleep
        self._on_retry = on_retry
        self.requests = 0
        self.quota: dict[str, Quota] = {}
        self._base_path = urlsplit(baseurl).path
        session.adapters.clear()
        adapter = _Adapter(timeout_s, self._count, self._inspect)
        session.mount("https://", adapter)
        session.mount("http://", adapter)

    def _count(self) -> None:
        self.requests += 1

    # -- what every answer says ----------------------------------------------------------------

    def _inspect(self, request: requests.PreparedRequest, response: requests.Response) -> None:
        path = urlsplit(request.url or "").path
        path = path.removeprefix(self._base_path) or "/"
        bucket = bucket_of(path)
        now = time.time()
        seen = quota_headers(response.headers, now)
        if seen is not None:
            remaining, limit, reset_at = seen
            self.quota[bucket] = Quota(bucket, limit, remaining, reset_at, self.requests)
        status = response.status_code
        if status == 429:
            body = error_body(response)
            wait = rate_limit_wait(response, body, now)
            if wait is not None and wait > self.policy.max_wait_s:
                raise self._limited(bucket, now + wait, body)
            raise TransientError(f"HTTP 429 {body.get('name', '')}".strip(), wait)
        if status >= 500:
            body = error_body(response)
            raise TransientError(
                f"HTTP {status} {body.get('name', '')}".strip(), retry_after(response)
            )
        how = challenge(response)
        if how is not None:
            raise Challenged(how)

    def _limited(self, bucket: str, reset_at: float, body: Mapping[str, Any]) -> RateLimitedError:
        details = body.get("details")
        used = details.get("used") if isinstance(details, dict) else None
        limit = details.get("limit") if isinstance(details, dict) else None
        figures = f" ({used} requests, limit {limit})" if used is not None and limit else ""
        minutes = max(1, math.ceil((reset_at - time.time()) / 60))
        return RateLimitedError(
            f"OpenReview's rate limit on {bucket} for {self.account} is used up{figures} and "
            f"resets at {local_time(reset_at)} (local time, in {minutes} min); orsync does not "
            "retry before then: try again after that time",
            reset_at,
        )

    def budget(self, bucket: str, needed: int) -> None:
        """Stop before a refusal: ``needed`` more requests must leave ``QUOTA_RESERVE``."""
        quota = self.quota.get(bucket)
        if quota is None or quota.reset_at is None or time.time() >= quota.reset_at:
            return
        if quota.remaining - needed >= QUOTA_RESERVE:
            return
        of = f" of {quota.limit}" if quota.limit is not None else ""
        raise RateLimitedError(
            f"OpenReview's rate limit on {bucket} for {self.account} is nearly used up "
            f"({quota.remaining}{of} requests left, {needed} still needed, {QUOTA_RESERVE} kept "
            f"in reserve); stopped before being refused, nothing was changed; the quota resets "
            f"at {local_time(quota.reset_at)} (local time): try again after that time",
            quota.reset_at,
            deferred=True,
        )

    def lowest_quota(self, since_request: int = 0) -> Quota | None:
        """The bucket with the fewest requests left among those seen after ``since_request``."""
        seen = [q for q in self.quota.values() if q.seq > since_request]
        return min(seen, key=lambda q: q.remaining) if seen else None

    # -- the retry layer ---------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return min(exc.retry_after, self.policy.max_wait_s)
        ceiling = min(
            self.policy.max_wait_s, self.policy.initial_s * 2 ** (state.attempt_number - 1)
        )
        return random.uniform(ceiling / 2, ceiling)

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        if self._on_retry is not None:
            self._on_retry(str(exc), wait)

    def retrying(self, fn: Callable[[], Any], stop: threading.Event | None = None) -> Any:
        def sleep(seconds: float) -> None:
            # A stopped walk ends its back-off within a second, whoever sleeps for it.
            assert stop is not None
            deadline = time.monotonic() + seconds
            while not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._sleep(min(left, 1.0))
            raise WalkStopped()

        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts)
            | stop_after_delay(self.policy.max_total_s),
            wait=self._wait,
            retry=retry_if_exception_type(TransientError),
            before_sleep=self._before_sleep,
            sleep=self._sleep if stop is None else sleep,
            reraise=True,
        )
        try:
            return retrying(fn)
        except TransientError as exc:
            raise UnreachableError(
                f"OpenReview at {self.baseurl} kept failing ({exc}) after "
                f"{self.policy.attempts} attempts; try again later or check openreview.baseurl"
            ) from None

    # -- requests ----------------------------------------------------------------------------

    def send(
        self, method: str, path: str, *, headers: Mapping[str, str], **kwargs: Any
    ) -> requests.Response:
        self.budget(bucket_of(path), 1)
        kwargs.setdefault("allow_redirects", False)
        with network_faults():
            return self.session.request(method, self.baseurl + path, headers=headers, **kwargs)

    def json_of(
        self,
        response: requests.Response,
        what: str,
        *,
        logged_in: bool,
        read: Callable[[bytes], Any] | None = None,
    ) -> Any:
        """The answer's JSON (``read`` from its bytes; ``jsonio.loads`` unless given), or the
        server's error (``TokenExpired`` when a login is due)."""
        status = response.status_code
        if status >= 400:
            body = error_body(response)
            name = str(body.get("name", "Error"))
            message = str(body.get("message", ""))[:200]
            if name == "TokenExpiredError" or (status == 401 and logged_in):
                raise TokenExpired()
            raise ApiError(status, name, message, what)
        ctype = response.headers.get("Content-Type", "")
        if "json" not in ctype.lower():
            raise TransientError(
                f"HTTP {status} answer that is not JSON (Content-Type {ctype or 'missing'})"
            )
        try:
            return (read or jsonio.loads)(response.content)
        except ValueError:
            raise TransientError("truncated JSON answer") from None
