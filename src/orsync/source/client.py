"""What orsync asks OpenReview: login, groups, notes page by page, attachments.

openreview-py provides the session, its headers and the login: ``client.login_user`` is
OpenReview's official login path, where login changes ship (multi-factor, new flows), so
orsync logs in through it rather than posting ``/login`` itself. Every request, the login's
too, goes through :class:`~orsync.source.transport.Transport` (timeouts, retries, quota).

Notes are read as raw JSON through the client's session rather than ``client.get_notes``:
orsync keeps every note's JSON verbatim (fields nobody planned for survive), and
``get_notes`` has no ``mintmdate`` for incremental reads. The venue group is read raw too:
``client.get_group`` returns a ``Group`` object whose JSON is rebuilt, not what the server sent.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, NamedTuple

from requests import Response, Session

from orsync.errors import AccessError, ConfigError, UnreachableError
from orsync.source.bodies import BodyTooLarge, DeadlinePassed, stream_into
from orsync.source.endpoint import API_V2_URL, api_v2_url, without_client_env
from orsync.source.transport import (
    ApiError,
    Challenged,
    FileTooLarge,
    Quota,
    RetryPolicy,
    TokenExpired,
    TransientError,
    Transport,
    header_int,
    network_faults,
)

PAGE_SIZE = 1000
# The slowest rate a download may average: a 50 MB file may take about 3 min 20 s.
DOWNLOAD_MIN_RATE = 256 * 1024
Note = dict[str, Any]


class Page(NamedTuple):
    """One page of submissions with their replies, the total the server announced, and the
    answer's bytes as they came (a first pull's row builders parse and build from them)."""

    notes: list[Note]
    total: int | None
    body: bytes


class MaybeSent(UnreachableError):
    """A message whose answer never came: the server may have taken it. Ask
    :meth:`OpenReviewSource.message_requests` before sending it again."""


class MintmdateIgnored(Exception):
    """The server answered an incremental read with notes older than the bound it was given."""


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

        self.baseurl = api_v2_url(baseurl)
        self.username = username
        self._password = password
        try:
            with without_client_env():
                self._client = OpenReviewClient(baseurl=self.baseurl)
        except OpenReviewException as exc:
            raise ConfigError(
                f"openreview.baseurl {self.baseurl} was refused by openreview-py ({exc}); "
                f"set it to the API v2 URL, {API_V2_URL}"
            ) from None
        session: Session = self._client.session
        self._transport = Transport(
            session,
            self.baseurl,
            account=self.account,
            timeout_s=timeout_s,
            policy=policy or RetryPolicy(),
            sleep=sleep,
            on_retry=on_retry,
        )
        self._timeout_s = timeout_s
        self._logged_in = False

    @property
    def account(self) -> str:
        return self.username or "guests from this address"

    @property
    def policy(self) -> RetryPolicy:
        return self._transport.policy

    @property
    def requests(self) -> int:
        """Requests sent so far, the login's included."""
        return self._transport.requests

    @property
    def quota(self) -> dict[str, Quota]:
        """What the server last said is left, by bucket."""
        return self._transport.quota

    def lowest_quota(self, since_request: int = 0) -> Quota | None:
        """The bucket with the fewest requests left among those seen after ``since_request``."""
        return self._transport.lowest_quota(since_request)

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

    # -- requests ----------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> Response:
        return self._transport.send(method, path, headers=self._client.headers, **kwargs)

    def _check(
        self, response: Response, what: str, read: Callable[[bytes], Any] | None = None
    ) -> Any:
        return self._transport.json_of(response, what, logged_in=self._logged_in, read=read)

    def _get(
        self,
        path: str,
        params: Mapping[str, Any],
        what: str,
        *,
        missing_ok: bool = False,
        stop: threading.Event | None = None,
        with_body: bool = False,
        read: Callable[[bytes], Any] | None = None,
    ) -> Any:
        """The answer's JSON (``read`` from its bytes; with them, ``with_body``)."""

        def answer() -> Any:
            response = self._send("GET", path, params=dict(params))
            parsed = self._check(response, what, read)
            return (parsed, response.content) if with_body else parsed

        def attempt() -> Any:
            try:
                return answer()
            except TokenExpired:
                if not self._logged_in:
                    raise ApiError(401, "TokenExpiredError", "token expired", what) from None
                # Renew and repeat at once: an expired token is not a server fault.
                self._login()
                return answer()

        try:
            return self._transport.retrying(attempt, stop)
        except ApiError as exc:
            if missing_ok and exc.status == 404:
                return None
            raise exc.as_user_error() from None
        except Challenged as exc:
            raise self._challenge_error(exc.how, what) from None

    def _login(self) -> None:
        """Log in through openreview-py's ``login_user`` (OpenReview's own login path), with
        orsync's transport and retry layer under it."""
        from openreview import OpenReviewException

        assert self.username is not None and self._password is not None

        def attempt() -> Any:
            try:
                with network_faults():
                    return self._client.login_user(self.username, self._password)
            except OpenReviewException as exc:
                body = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
                raise ApiError(
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
            self._transport.retrying(attempt)
        except ApiError as exc:
            raise AccessError(
                f"OpenReview rejected the login for {self.username}: {exc.message or exc.name}; "
                "check openreview.username and the password"
            ) from None
        except Challenged as exc:
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
        read: Callable[[bytes], Any] | None = None,
    ) -> Iterator[Page]:
        """Every submission of ``invitation`` with its replies, one page at a time.

        Walks ``sort=id`` with ``after=<last id>`` as openreview-py does; yields each page and the
        total the server announced. Soft-deleted submissions come too (``trash``), with ``ddate``.
        Setting ``stop`` (from any thread) ends a retry back-off with ``WalkStopped``. ``read``
        makes a page's JSON from its bytes when another parser does (a first pull's row
        builder, ``mirror/child.py``): the page's notes are then what it gives.
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
            body, raw = self._get(
                "/notes",
                params,
                f"submissions of {invitation}",
                stop=stop,
                with_body=True,
                read=read,
            )
            notes = body.get("notes") if isinstance(body, dict) else None
            if not isinstance(notes, list):
                raise UnreachableError("OpenReview answered /notes without a notes list")
            if total is None and isinstance(body.get("count"), int):
                total = body["count"]
            if not notes:
                return
            seen += len(notes)
            yield Page(notes, total, raw)
            del body, raw
            if total is not None and seen >= total:
                return
            if total is not None:
                # The rest of the walk must fit in what the window has left.
                self._transport.budget("notes", math.ceil((total - seen) / page_size))
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
        self,
        params: Mapping[str, str],
        sink: IO[bytes],
        max_bytes: int,
        what: str,
        between: Callable[[], None] | None = None,
    ) -> str:
        """One ``GET /attachment`` streamed into ``sink``; returns its Content-Type.

        Never retried here (a failed download waits for a later cycle, the quota is small):
        raises ``FileTooLarge`` as soon as more than ``max_bytes`` arrive (or are
        announced), ``RateLimitedError`` before a request the attachments quota cannot spare
        or on a long 429, ``AccessError`` for a missing file, ``UnreachableError`` otherwise,
        a redirect and a download that outlasts :meth:`download_deadline_s` included.
        ``between()`` runs after every chunk (the service's watchdog and stop: it may raise).
        """
        deadline_s = self.download_deadline_s(max_bytes)

        def attempt() -> str:
            deadline = time.monotonic() + deadline_s
            response = self._send("GET", "/attachment", params=dict(params), stream=True)
            with contextlib.closing(response):
                if response.status_code >= 400:
                    self._check(response, what)  # raises the server's error
                announced = header_int(response.headers.get("Content-Length"))
                if announced is not None and announced > max_bytes:
                    raise FileTooLarge(f"{what}: announced {announced} bytes")
                try:
                    stream_into(response, sink, max_bytes, deadline, self._timeout_s, between)
                except BodyTooLarge:
                    raise FileTooLarge(f"{what}: more than {max_bytes} bytes") from None
                except DeadlinePassed:
                    raise UnreachableError(
                        f"{what}: not complete within {deadline_s:.0f} s (openreview.timeout_s "
                        f"plus its size limit at {DOWNLOAD_MIN_RATE // 1024} KiB/s); tried "
                        "again in a later cycle"
                    ) from None
                return str(response.headers.get("Content-Type", ""))

        try:
            with network_faults():
                try:
                    return attempt()
                except TokenExpired:
                    if not self._logged_in:
                        raise ApiError(401, "TokenExpiredError", "token expired", what) from None
                    self._login()
                    sink.seek(0)
                    sink.truncate()
                    return attempt()
        except ApiError as exc:
            if exc.status == 404:
                raise AccessError(f"{what} not found ({exc.message})") from None
            raise exc.as_user_error() from None
        except Challenged as exc:
            raise self._challenge_error(exc.how, what) from None
        except TransientError as exc:
            raise UnreachableError(f"{what}: {exc}; tried again in a later cycle") from None

    def download_deadline_s(self, max_bytes: int) -> float:
        """The wall-clock limit of one download: ``openreview.timeout_s`` for the answer to
        start, plus its size limit at ``DOWNLOAD_MIN_RATE`` (a slow but real link)."""
        return self._timeout_s + max_bytes / DOWNLOAD_MIN_RATE

    def send_message(self, body: Mapping[str, Any], what: str) -> dict[str, Any]:
        """One message request (``POST /messages/requests``, openreview-py's ``post_message``:
        ``groups``, ``subject``, ``message``, ``invitation``, ``signature``); its answer.

        Never repeated blindly: a 429 (refused, so not taken) waits and is asked again, as the
        retry layer would; a dropped connection, a timeout or a 5xx raise :class:`MaybeSent`.
        """

        def attempt() -> Any:
            try:
                return self._check(self._send("POST", "/messages/requests", json=dict(body)), what)
            except TokenExpired:
                if not self._logged_in:
                    raise ApiError(401, "TokenExpiredError", "token expired", what) from None
                self._login()  # refused before it was looked at: sent again at once
                return self._check(self._send("POST", "/messages/requests", json=dict(body)), what)
            except TransientError as exc:
                if str(exc).startswith("HTTP 429"):
                    raise
                raise MaybeSent(
                    f"{what}: no answer ({exc}); it may have been sent, so the next run asks "
                    "OpenReview before sending it again"
                ) from None

        try:
            answer = self._transport.retrying(attempt)
        except ApiError as exc:
            if exc.status in (401, 403):
                raise AccessError(
                    f"OpenReview refused {what} for {self.account} ({exc.name}: {exc.message}); "
                    "messages to authors are sent by a program chair of the venue: set "
                    "openreview.username to a program chair's account"
                ) from None
            raise exc.as_user_error() from None
        return answer if isinstance(answer, dict) else {}

    def message_requests(self, invitation: str) -> list[dict[str, Any]]:
        """The message requests sent with ``invitation`` (``GET /messages/requests``)."""
        body = self._get(
            "/messages/requests", {"invitation": invitation}, f"messages of {invitation}"
        )
        found = body.get("requests") if isinstance(body, dict) else None
        return [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []

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
