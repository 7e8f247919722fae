"""OpenReview access: the one module that talks to the API (through openreview-py).

openreview-py provides the session, its headers and the login. Its own retry layer is switched
off and replaced by one here, because the built-in one has no request timeout, honours any
``Retry-After`` without a cap, ``print``s every retry to stdout (which would break the service's
JSON-only output) and, once exhausted, raises ``JSONDecodeError`` instead of the server's error.
Stacking two layers would multiply attempts (8 × ours), so exactly one layer retries: this one.

Notes are read as raw JSON through the client's session rather than ``client.get_notes``:
orsync keeps every note's JSON verbatim (fields nobody planned for survive), and
``get_notes`` has no ``mintmdate`` for incremental reads.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
)

from orsync.errors import AccessError, ConfigError, UnreachableError

PAGE_SIZE = 1000
Note = dict[str, Any]


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


class MintmdateIgnored(Exception):
    """The server answered an incremental read with notes older than the bound it was given."""


class _TimeoutAdapter(HTTPAdapter):
    """Every request gets a timeout and is counted; retries are ours, not urllib3's."""

    def __init__(self, timeout_s: float, counter: Callable[[], None]) -> None:
        super().__init__(max_retries=0, pool_connections=2, pool_maxsize=4)
        self._timeout_s = timeout_s
        self._counter = counter

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout_s
        self._counter()
        return super().send(request, **kwargs)


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
        adapter = _TimeoutAdapter(timeout_s, self._count)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self._logged_in = False

    def _count(self) -> None:
        self.requests += 1

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

    def _retrying(self, fn: Callable[[], Any]) -> Any:
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts)
            | stop_after_delay(self.policy.max_total_s),
            wait=self._wait,
            retry=retry_if_exception_type(TransientError),
            before_sleep=self._before_sleep,
            sleep=self._sleep,
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
        try:
            session: requests.Session = self._client.session
            return session.request(
                method, self.baseurl + path, headers=self._client.headers, **kwargs
            )
        except requests.exceptions.Timeout:
            raise TransientError("request timed out") from None
        except requests.exceptions.ConnectionError as exc:
            reason = exc.args[0] if exc.args else exc
            text = str(reason)
            if (
                "Connection refused" in text
                or "Failed to resolve" in text
                or "Name or service" in text
            ):
                raise TransientError("connection refused or host unknown") from None
            raise TransientError("connection dropped") from None
        except requests.exceptions.RequestException as exc:
            raise TransientError(exc.__class__.__name__) from None

    def _check(self, response: requests.Response, what: str) -> Any:
        status = response.status_code
        if status == 429 or status >= 500:
            body = _error_body(response)
            raise TransientError(
                f"HTTP {status} {body.get('name', '')}".strip(), _retry_after(response)
            )
        if status >= 400:
            body = _error_body(response)
            name = str(body.get("name", "Error"))
            message = str(body.get("message", ""))[:200]
            if name == "TokenExpiredError" or (status == 401 and self._logged_in):
                raise _TokenExpired()
            raise _ApiError(status, name, message, what)
        try:
            return response.json()
        except ValueError:
            raise TransientError("truncated or non-JSON answer") from None

    def _get(
        self, path: str, params: Mapping[str, Any], what: str, *, missing_ok: bool = False
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
            return self._retrying(attempt)
        except _ApiError as exc:
            if missing_ok and exc.status == 404:
                return None
            raise exc.as_user_error() from None

    def _login(self) -> None:
        assert self.username is not None and self._password is not None

        def attempt() -> Any:
            response = self._send(
                "POST",
                "/login",
                json={"id": self.username, "password": self._password, "expiresIn": None},
            )
            return self._check(response, "login")

        try:
            body = self._retrying(attempt)
        except _ApiError as exc:
            raise AccessError(
                f"OpenReview rejected the login for {self.username}: {exc.message or exc.name}; "
                "check openreview.username and the password"
            ) from None
        token = body.get("token") if isinstance(body, dict) else None
        if not token:
            raise UnreachableError(
                f"OpenReview at {self.baseurl} answered the login without a token"
            )
        self._client.token = str(token)
        self._client.headers["Authorization"] = f"Bearer {token}"
        self._logged_in = True

    # -- public API --------------------------------------------------------------------------

    def connect(self) -> None:
        """Log in when an account is configured; guests need nothing."""
        if self.username is not None and not self._logged_in:
            if self._password is None:
                raise AccessError(f"no password for {self.username}")
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
        self, invitation: str, *, details: str = "replies", page_size: int = PAGE_SIZE
    ) -> Iterator[tuple[list[Note], int | None]]:
        """Every submission of ``invitation`` with its replies, one page at a time.

        Walks ``sort=id`` with ``after=<last id>`` as openreview-py does; yields each page and the
        total the server announced. Soft-deleted submissions come too (``trash``), with ``ddate``.
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
            body = self._get("/notes", params, f"submissions of {invitation}")
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
            ids = [n["id"] for n in notes if isinstance(n, dict) and isinstance(n.get("id"), str)]
            if not ids:
                raise UnreachableError("OpenReview answered a page of notes without ids")
            params = {k: v for k, v in params.items() if k != "count"}
            params["count"] = "false"
            params["after"] = ids[-1]

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
