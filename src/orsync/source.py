"""OpenReview access: the one module that talks to the API (through openreview-py).

openreview-py provides the session, its headers and the login: ``client.login_user`` is
OpenReview's official login path, where login changes ship (multi-factor, new flows), so
orsync logs in through it rather than posting ``/login`` itself. Its own retry layer is
switched off and replaced by one here, because the built-in one has no request timeout, honours
any ``Retry-After`` without a cap, ``print``s every retry to stdout (which would break the
service's JSON-only output) and, once exhausted, raises ``JSONDecodeError`` instead of the
server's error. Stacking two layers would multiply attempts (8 × ours), so exactly one layer
retries: this one.

Every answer, whether it comes to a client call or to a raw read, passes through one transport
(:class:`_Transport`) that times the request out, counts it, reads the rate-limit headers, and
classifies what must not reach a JSON parser: 5xx and short 429s (retried), a 429 whose reset
lies beyond the longest wait (:class:`RateLimitedError`, never retried), and OpenReview's
browser check for anonymous clients (an HTML "Verifying your browser" page with HTTP 200, or a
JSON 403 ``ChallengeRequiredError``: never retried, the account must log in).

Notes are read as raw JSON through the client's session rather than ``client.get_notes``:
orsync keeps every note's JSON verbatim (fields nobody planned for survive), and
``get_notes`` has no ``mintmdate`` for incremental reads. The venue group is read raw too:
``client.get_group`` returns a ``Group`` object whose JSON is rebuilt, not what the server sent.

Quota: the server announces what is left in its window on every answer. Before each request,
and before each further page of a full walk, a read stops when fewer than
``QUOTA_RESERVE`` requests would be left after the ones it still needs; it raises
:class:`RateLimitedError` with the reset time instead of being refused.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
)

from orsync.errors import (
    AccessError,
    ConfigError,
    RateLimitedError,
    UnreachableError,
    local_time,
)

PAGE_SIZE = 1000
# Requests of a rate-limit window orsync never spends: a cycle stops before it would leave
# fewer than this many (a chair's browser and `orsync check` share the account's quota).
QUOTA_RESERVE = 3
Note = dict[str, Any]


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
            "reset_at": _iso(self.reset_at),
        }


def _iso(epoch_s: float | None) -> str | None:
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s).astimezone().isoformat(timespec="seconds")


def bucket_of(path: str) -> str:
    """The rate-limit bucket of an API path, as the server counts them."""
    if path.startswith("/notes"):
        return "notes"
    if path.startswith("/groups"):
        return "groups"
    if path.startswith(("/attachment", "/pdf")):
        return "attachments"
    return path.strip("/").split("/", 1)[0] or "other"


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def _quota_headers(
    headers: Mapping[str, str], now: float
) -> tuple[int, int | None, float | None] | None:
    """(remaining, limit, reset_at) from ``ratelimit-*`` (reset in seconds) or the older
    ``x-ratelimit-*`` (reset as epoch seconds)."""
    remaining = _int(headers.get("ratelimit-remaining"))
    if remaining is not None:
        reset = _int(headers.get("ratelimit-reset"))
        return (
            remaining,
            _int(headers.get("ratelimit-limit")),
            (None if reset is None else now + reset),
        )
    remaining = _int(headers.get("x-ratelimit-remaining"))
    if remaining is None:
        return None
    reset = _int(headers.get("x-ratelimit-reset"))
    # Epoch seconds as recorded; a small number can only be a delay.
    reset_at = None if reset is None else float(reset) if reset > 1_000_000_000 else now + reset
    return remaining, _int(headers.get("x-ratelimit-limit")), reset_at


_TRY_AGAIN = re.compile(
    r"try again in\s+(?:(?P<h>\d+)\s*hours?)?[\s,and]*(?:(?P<m>\d+)\s*minutes?)?"
    r"[\s,and]*(?:(?P<s>\d+)\s*seconds?)?",
    re.IGNORECASE,
)


def _rate_limit_wait(
    response: requests.Response, body: Mapping[str, Any], now: float
) -> float | None:
    """Seconds until a 429's limit resets, from everything the server said; the latest wins."""
    waits: list[float] = []
    retry_after = _retry_after(response)
    if retry_after is not None:
        waits.append(retry_after)
    quota = _quota_headers(response.headers, now)
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


def _challenge(response: requests.Response) -> str | None:
    """How the answer asks for a browser check, or None: the recorded HTML page (any status),
    or the JSON 403 ``ChallengeRequiredError``."""
    ctype = response.headers.get("Content-Type", "").lower()
    if "html" in ctype:
        head = response.content[:20_000].lower()
        if b"verifying your browser" in head or b"turnstile" in head:
            return f'HTTP {response.status_code} with a "Verifying your browser" page'
        return None
    if (
        response.status_code == 403
        and "json" in ctype
        and _error_body(response).get("name") == "ChallengeRequiredError"
    ):
        return "403 ChallengeRequiredError"
    return None


class _Challenged(Exception):
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


class MintmdateIgnored(Exception):
    """The server answered an incremental read with notes older than the bound it was given."""


class _Transport(HTTPAdapter):
    """Every request gets a timeout and is counted, every answer inspected (quota, 429, 5xx,
    browser check) before any caller parses it; retries are ours, not urllib3's."""

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
        self._counter()
        response = super().send(request, **kwargs)
        self._inspect(request, response)
        return response


@contextlib.contextmanager
def _network_faults() -> Iterator[None]:
    """``requests``' exceptions as retryable faults, whoever made the request."""
    try:
        yield
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


@contextlib.contextmanager
def _without_client_env() -> Iterator[None]:
    # OpenReviewClient logs in with $OPENREVIEW_USERNAME/$OPENREVIEW_PASSWORD when given no
    # credentials; orsync's guest mode must stay a guest, and its password has its own sources.
    saved = {
        k: os.environ.pop(k)
        for k in ("OPENREVIEW_USERNAME", "OPENREVIEW_PASSWORD")
        if k in os.environ
    }
    try:
        yield
    finally:
        os.environ.update(saved)


API_V2_URL = "https://api2.openreview.net"
# OpenReview's API v1 hosts: openreview-py's v2 client refuses them, and orsync needs v2.
_V1_HOSTS = {
    "api.openreview.net": API_V2_URL,
    "devapi.openreview.net": "https://devapi2.openreview.net",
}
_SITE_HOSTS = {"openreview.net", "www.openreview.net"}


def _api_v2_url(baseurl: str) -> str:
    """``openreview.baseurl`` checked before any request: an http(s) URL of an API v2 server."""
    url = baseurl.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"openreview.baseurl {baseurl!r} is not an http(s) URL; use {API_V2_URL}")
    host = parts.hostname.lower()
    if host in _V1_HOSTS:
        raise ConfigError(
            f"openreview.baseurl {url} is OpenReview's API v1, which orsync cannot read; "
            f'set openreview.baseurl = "{_V1_HOSTS[host]}" (API v2)'
        )
    if host in _SITE_HOSTS:
        raise ConfigError(
            f"openreview.baseurl {url} is OpenReview's website, not its API; "
            f'set openreview.baseurl = "{API_V2_URL}"'
        )
    return url


# Every ASCII digit as "0", anything else as ".": a run of 19 digits is then a plain substring,
# which bytes.find locates at memory speed (a regular expression takes ten times as long).
_DIGITS_AS_ZEROS = bytes(ord("0") if chr(i) in "0123456789" else ord(".") for i in range(256))
_RUN = b"0" * 19


def _has_long_number(text: bytes) -> bool:
    """Whether a JSON text may hold a number of 19 digits or more: a digit run right after
    ``:``, ``,`` or ``[`` (and a minus sign, and blanks). A run inside a string that looks so
    only sends the page the slower, exact way; most runs (a hash in a PDF path) do not."""
    mapped = text.translate(_DIGITS_AS_ZEROS)
    start = mapped.find(_RUN)
    while start != -1:
        at = start - 1
        if at >= 0 and text[at] == ord("-"):
            at -= 1
        while at >= 0 and text[at] in b" \t\r\n":
            at -= 1
        if at >= 0 and text[at] in b":,[":
            return True
        end = start + len(_RUN)
        while end < len(mapped) and mapped[end] == ord("0"):
            end += 1
        start = mapped.find(_RUN, end)
    return False


def _error_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    return {"name": "Error", "message": (response.text or response.reason or "").strip()[:200]}


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class OpenReviewSource:
    """A venue on an OpenReview API v2 server, read as a guest or as a logged-in account."""

    def __init__(
        self,
        baseurl: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 30.0,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[str, float], None] | None = None,
    ) -> None:
        from openreview import OpenReviewException
        from openreview.api import OpenReviewClient

        self.baseurl = _api_v2_url(baseurl)
        self.username = username
        self._password = password
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._on_retry = on_retry
        self.requests = 0
        try:
            with _without_client_env():
                self._client = OpenReviewClient(baseurl=self.baseurl)
        except OpenReviewException as exc:
            raise ConfigError(
                f"openreview.baseurl {self.baseurl} was refused by openreview-py ({exc}); "
                f"set it to the API v2 URL, {API_V2_URL}"
            ) from None
        session: requests.Session = self._client.session
        session.adapters.clear()
        adapter = _Transport(timeout_s, self._count, self._inspect)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self._logged_in = False
        self._base_path = urlsplit(self.baseurl).path
        self.quota: dict[str, Quota] = {}

    def _count(self) -> None:
        self.requests += 1

    @property
    def account(self) -> str:
        return self.username or "guests from this address"

    # -- what every answer says ----------------------------------------------------------------

    def _inspect(self, request: requests.PreparedRequest, response: requests.Response) -> None:
        path = urlsplit(request.url or "").path
        path = path.removeprefix(self._base_path) or "/"
        bucket = bucket_of(path)
        now = time.time()
        seen = _quota_headers(response.headers, now)
        if seen is not None:
            remaining, limit, reset_at = seen
            self.quota[bucket] = Quota(bucket, limit, remaining, reset_at, self.requests)
        status = response.status_code
        if status == 429:
            body = _error_body(response)
            wait = _rate_limit_wait(response, body, now)
            if wait is not None and wait > self.policy.max_wait_s:
                raise self._limited(bucket, now + wait, body)
            raise TransientError(f"HTTP 429 {body.get('name', '')}".strip(), wait)
        if status >= 500:
            body = _error_body(response)
            raise TransientError(
                f"HTTP {status} {body.get('name', '')}".strip(), _retry_after(response)
            )
        how = _challenge(response)
        if how is not None:
            raise _Challenged(how)

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

    def _budget(self, bucket: str, needed: int) -> None:
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
        )

    def lowest_quota(self, since_request: int = 0) -> Quota | None:
        """The bucket with the fewest requests left among those seen after ``since_request``."""
        seen = [q for q in self.quota.values() if q.seq > since_request]
        return min(seen, key=lambda q: q.remaining) if seen else None

    def _challenge_error(self, how: str, what: str) -> AccessError:
        if self.username is None:
            return AccessError(
                f"OpenReview asks anonymous clients for a browser check (it answered {what} "
                f"with {how}), which orsync cannot pass; set openreview.username, and its "
                "password in openreview.password_file, the openreview-password credential or "
                "$ORSYNC_OPENREVIEW_PASSWORD, so orsync logs in"
            )
        return AccessError(
            f"OpenReview asked {self.username} for a browser check while reading {what} "
            f"({how}), which orsync cannot pass; sign in once at openreview.net in a browser "
            "with this account, then try again"
        )

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

    def _retrying(self, fn: Callable[[], Any], stop: threading.Event | None = None) -> Any:
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

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        self._budget(bucket_of(path), 1)
        with _network_faults():
            session: requests.Session = self._client.session
            return session.request(
                method, self.baseurl + path, headers=self._client.headers, **kwargs
            )

    def _check(self, response: requests.Response, what: str) -> Any:
        status = response.status_code
        if status >= 400:
            body = _error_body(response)
            name = str(body.get("name", "Error"))
            message = str(body.get("message", ""))[:200]
            if name == "TokenExpiredError" or (status == 401 and self._logged_in):
                raise _TokenExpired()
            raise _ApiError(status, name, message, what)
        ctype = response.headers.get("Content-Type", "")
        if "json" not in ctype.lower():
            raise TransientError(
                f"HTTP {status} answer that is not JSON (Content-Type {ctype or 'missing'})"
            )
        text = response.content
        # orjson parses a page of notes in a third of the standard library's time. It turns an
        # integer beyond 64 bits into a float, so a page with a number of 19 digits or more
        # goes through the standard library (exact), as does what orjson refuses (NaN, lone
        # surrogates, another encoding).
        if not _has_long_number(text):
            with contextlib.suppress(orjson.JSONDecodeError):
                return orjson.loads(text)
        try:
            return response.json()
        except ValueError:
            raise TransientError("truncated JSON answer") from None

    def _get(
        self,
        path: str,
        params: Mapping[str, Any],
        what: str,
        *,
        missing_ok: bool = False,
        stop: threading.Event | None = None,
    ) -> Any:
        def attempt() -> Any:
            try:
                return self._check(self._send("GET", path, params=dict(params)), what)
            except _TokenExpired:
                if not self._logged_in:
                    raise _ApiError(401, "TokenExpiredError", "token expired", what) from None
                # Renew and repeat at once: an expired token is not a server fault.
                self._login()
                return self._check(self._send("GET", path, params=dict(params)), what)

        try:
            return self._retrying(attempt, stop)
        except _ApiError as exc:
            if missing_ok and exc.status == 404:
                return None
            raise exc.as_user_error() from None
        except _Challenged as exc:
            raise self._challenge_error(exc.how, what) from None

    def _login(self) -> None:
        """Log in through openreview-py's ``login_user`` (OpenReview's own login path), with
        this module's transport and retry layer under it."""
        from openreview import OpenReviewException

        assert self.username is not None and self._password is not None

        def attempt() -> Any:
            try:
                with _network_faults():
                    return self._client.login_user(self.username, self._password)
            except OpenReviewException as exc:
                body = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
                raise _ApiError(
                    int(body.get("status") or 400),
                    str(body.get("name") or "Error"),
                    str(body.get("message") or exc)[:200],
                    "login",
                ) from None
            except (KeyError, TypeError, AttributeError):
                raise UnreachableError(
                    f"OpenReview at {self.baseurl} answered the login without a token"
                ) from None

        try:
            self._retrying(attempt)
        except _ApiError as exc:
            raise AccessError(
                f"OpenReview rejected the login for {self.username}: {exc.message or exc.name}; "
                "check openreview.username and the password"
            ) from None
        except _Challenged as exc:
            raise self._challenge_error(exc.how, "the login") from None
        if not self._client.token:
            raise UnreachableError(
                f"OpenReview at {self.baseurl} answered the login without a token"
            )
        self._logged_in = True

    # -- public API --------------------------------------------------------------------------

    def connect(self) -> None:
        """Log in when an account is configured; guests need nothing."""
        if self.username is not None and not self._logged_in:
            if self._password is None:
                raise AccessError(
                    f"no password for openreview.username {self.username}: put it in the file "
                    "named by openreview.password_file, the openreview-password credential or "
                    "$ORSYNC_OPENREVIEW_PASSWORD"
                )
            self._login()

    def venue_group(self, venue_id: str) -> dict[str, Any]:
        body = self._get("/groups", {"id": venue_id}, f"venue {venue_id}", missing_ok=True)
        groups = body.get("groups") if isinstance(body, dict) else None
        if not groups:
            raise AccessError(self._not_found(venue_id))
        group = groups[0]
        if not isinstance(group, dict):
            raise UnreachableError(f"OpenReview answered venue {venue_id} with an unexpected shape")
        return group

    def child_groups(self, parent: str) -> list[dict[str, Any]]:
        """The groups directly under ``parent`` that the account can see (``GET /groups?parent=``)."""
        body = self._get(
            "/groups",
            {"parent": parent, "limit": PAGE_SIZE},
            f"groups under {parent}",
            missing_ok=True,
        )
        groups = body.get("groups") if isinstance(body, dict) else None
        if not isinstance(groups, list):
            return []
        return [g for g in groups if isinstance(g, dict) and isinstance(g.get("id"), str)]

    def _not_found(self, venue_id: str) -> str:
        """A missing venue's message, with the close matches among its siblings."""
        parent, _, name = venue_id.rpartition("/")
        message = f"venue {venue_id} not found at {self.baseurl}"
        if not parent:
            return message + "; check openreview.venue_id"
        try:
            ids = [g["id"] for g in self.child_groups(parent)]
        except (AccessError, UnreachableError):
            ids = []
        # Compare last segments: the shared prefix would make every sibling look close.
        by_name = {i.rpartition("/")[2].lower(): i for i in ids}
        close = [by_name[m] for m in difflib.get_close_matches(name.lower(), by_name, n=3)]
        if close:
            message += " (did you mean " + " or ".join(close) + "?)"
        return (
            message
            + f"; check openreview.venue_id: `orsync venues {parent}/` lists the venues there"
        )

    def submission_pages(
        self,
        invitation: str,
        *,
        details: str = "replies",
        page_size: int = PAGE_SIZE,
        stop: threading.Event | None = None,
    ) -> Iterator[tuple[list[Note], int | None]]:
        """Every submission of ``invitation`` with its replies, one page at a time.

        Walks ``sort=id`` with ``after=<last id>`` as openreview-py does; yields each page and the
        total the server announced. Soft-deleted submissions come too (``trash``), with ``ddate``.
        Setting ``stop`` (from any thread) ends a retry back-off with :class:`WalkStopped`.
        """
        params: dict[str, Any] = {
            "invitation": invitation,
            "details": details,
            "sort": "id:asc",
            "limit": page_size,
            "trash": "true",
            "count": "true",
        }
        total: int | None = None
        seen = 0
        while True:
            body = self._get("/notes", params, f"submissions of {invitation}", stop=stop)
            notes = body.get("notes") if isinstance(body, dict) else None
            if not isinstance(notes, list):
                raise UnreachableError("OpenReview answered /notes without a notes list")
            if total is None and isinstance(body.get("count"), int):
                total = body["count"]
            if not notes:
                return
            seen += len(notes)
            yield notes, total
            if total is not None and seen >= total:
                return
            if total is not None:
                # The rest of the walk must fit in what the window has left.
                self._budget("notes", math.ceil((total - seen) / page_size))
            ids = [n["id"] for n in notes if isinstance(n, dict) and isinstance(n.get("id"), str)]
            if not ids:
                raise UnreachableError("OpenReview answered a page of notes without ids")
            params = {k: v for k, v in params.items() if k != "count"}
            params["count"] = "false"
            params["after"] = ids[-1]

    def content_fields(self, invitation: str, *, sample: int = 25) -> set[str] | None:
        """The content keys of a few submissions of ``invitation`` (for ``check``); None when
        there is none yet."""
        body = self._get(
            "/notes", {"invitation": invitation, "limit": sample}, f"submissions of {invitation}"
        )
        notes = body.get("notes") if isinstance(body, dict) else None
        if not isinstance(notes, list) or not notes:
            return None
        keys: set[str] = set()
        for note in notes:
            content = note.get("content") if isinstance(note, dict) else None
            if isinstance(content, dict):
                keys.update(str(k) for k in content)
        return keys

    def download(
        self, params: Mapping[str, str], sink: IO[bytes], max_bytes: int, what: str
    ) -> str:
        """One ``GET /attachment`` streamed into ``sink``; returns its Content-Type.

        Never retried here (a failed download waits for a later cycle, the quota is small):
        raises :class:`FileTooLarge` as soon as more than ``max_bytes`` arrive (or are
        announced), ``RateLimitedError`` before a request the attachments quota cannot spare
        or on a long 429, ``AccessError`` for a missing file, ``UnreachableError`` otherwise.
        """

        def attempt() -> str:
            response = self._send("GET", "/attachment", params=dict(params), stream=True)
            with contextlib.closing(response):
                if response.status_code >= 400:
                    self._check(response, what)  # raises the server's error
                announced = _int(response.headers.get("Content-Length"))
                if announced is not None and announced > max_bytes:
                    raise FileTooLarge(f"{what}: announced {announced} bytes")
                written = 0
                for chunk in response.iter_content(chunk_size=1 << 16):
                    written += len(chunk)
                    if written > max_bytes:
                        raise FileTooLarge(f"{what}: more than {max_bytes} bytes")
                    sink.write(chunk)
                return str(response.headers.get("Content-Type", ""))

        try:
            with _network_faults():
                try:
                    return attempt()
                except _TokenExpired:
                    if not self._logged_in:
                        raise _ApiError(401, "TokenExpiredError", "token expired", what) from None
                    self._login()
                    sink.seek(0)
                    sink.truncate()
                    return attempt()
        except _ApiError as exc:
            if exc.status == 404:
                raise AccessError(f"{what} not found ({exc.message})") from None
            raise exc.as_user_error() from None
        except _Challenged as exc:
            raise self._challenge_error(exc.how, what) from None
        except TransientError as exc:
            raise UnreachableError(f"{what}: {exc}; tried again in a later cycle") from None

    def changed_notes(
        self, domain: str, since_ms: int, *, page_size: int = PAGE_SIZE
    ) -> Iterator[list[Note]]:
        """Notes of the venue modified at or after ``since_ms``, oldest first, deleted ones too.

        Raises ``MintmdateIgnored`` when the answer shows the server did not apply the bound.
        """
        offset = 0
        while True:
            params = {
                "domain": domain,
                "mintmdate": since_ms,
                "sort": "tmdate:asc",
                "trash": "true",
                "limit": page_size,
                "offset": offset,
            }
            body = self._get("/notes", params, f"changes in {domain}")
            notes = body.get("notes") if isinstance(body, dict) else None
            if not isinstance(notes, list):
                raise UnreachableError("OpenReview answered /notes without a notes list")
            if any(_tmdate(n) < since_ms for n in notes):
                raise MintmdateIgnored()
            if notes:
                yield notes
            if len(notes) < page_size:
                return
            offset += len(notes)


def _tmdate(note: Any) -> int:
    value = note.get("tmdate") if isinstance(note, dict) else None
    # A note without a readable tmdate cannot prove the bound was honoured.
    return int(value) if isinstance(value, int | float) else -1


class _TokenExpired(Exception):
    pass


class _ApiError(Exception):
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
