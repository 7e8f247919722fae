"""How much of an answer orsync reads, and for how long: every body is read in bounded chunks.

requests reads a whole body into memory and urllib3 inflates a gzip body as far as it goes, so a
hostile or broken server could make one answer cost gigabytes (a 2 MB gzip body inflates past
2 GB) or keep it open for ever (one byte every few seconds never trips a per-read timeout). Here
every body is read with ``read1`` and ``decode_content``, which inflates at most one chunk at a
time, against a byte cap counted after decoding and a wall-clock deadline that also shortens the
socket's timeout, so no single read can outlast the deadline.

- ``BODY_HEAD_MAX``: what an error page or a browser check is read of (the rest is dropped).
- ``JSON_MAX``: the most one JSON answer may hold decoded. A page of 1,000 submissions with their
  replies at ICLR 2024's scale (the emulator's ``iclr`` dataset) is about 10.2 MB; the cap is ten
  times that.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

import orjson
import requests
import urllib3.exceptions

BODY_HEAD_MAX = 64 * 1024
JSON_MAX = 100 * 1024 * 1024
CHUNK = 64 * 1024
HEAD_WAIT_S = 30.0  # how long an error page may take when its request set no deadline


class DeadlinePassed(requests.exceptions.Timeout):
    """The whole answer did not arrive within its wall-clock deadline."""


class BodyTooLarge(Exception):
    """A body grew past its cap (counted decoded); what arrived is dropped."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


def _socket_of(response: requests.Response) -> socket.socket | None:
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def chunks(response: requests.Response, deadline: float, read_timeout_s: float) -> Iterator[bytes]:
    """The body's decoded bytes, at most ``CHUNK`` at a time, until ``deadline`` (monotonic).

    Each socket read waits at most ``read_timeout_s`` and never past the deadline.
    """
    raw: Any = response.raw
    sock = _socket_of(response)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlinePassed("no complete answer before the deadline")
        if sock is not None:
            try:
                sock.settimeout(max(0.01, min(read_timeout_s, left)))
            except OSError:
                sock = None
        try:
            data = raw.read1(CHUNK, decode_content=True)
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
            if time.monotonic() >= deadline:
                raise DeadlinePassed("no complete answer before the deadline") from None
            raise requests.exceptions.ReadTimeout("no data within the read timeout") from None
        except urllib3.exceptions.DecodeError as exc:
            raise requests.exceptions.ContentDecodingError(str(exc)[:200]) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise requests.exceptions.ConnectionError(str(exc)[:200]) from None
        if not data:
            return
        yield data


def read_capped(
    response: requests.Response, limit: int, deadline: float, read_timeout_s: float
) -> bytes:
    """The whole body, refused (``BodyTooLarge``, the connection closed) past ``limit`` bytes."""
    announced = _announced(response)
    encoded = response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
    if announced is not None and announced > limit and not encoded:
        response.close()
        raise BodyTooLarge(limit)
    body = bytearray()
    try:
        for data in chunks(response, deadline, read_timeout_s):
            body += data
            if len(body) > limit:
                raise BodyTooLarge(limit)
    except BaseException:
        response.close()
        raise
    return bytes(body)


def head(
    response: requests.Response,
    limit: int = BODY_HEAD_MAX,
    deadline: float | None = None,
    read_timeout_s: float = HEAD_WAIT_S,
) -> bytes:
    """At most ``limit`` decoded bytes of the body, kept as the response's content; a longer
    body is cut there and its connection closed (it cannot be reused with the rest unread)."""
    if consumed(response):
        return (response.content or b"")[:limit]
    if deadline is None:
        deadline = time.monotonic() + read_timeout_s
    body = bytearray()
    complete = False
    try:
        for data in chunks(response, deadline, read_timeout_s):
            body += data
            if len(body) >= limit:
                break
        else:
            complete = True
    except requests.exceptions.RequestException:
        pass  # an error page cut short is still what the server said first
    if not complete:
        response.close()
    return keep(response, bytes(body[:limit]))


def stream_into(
    response: requests.Response,
    sink: IO[bytes],
    limit: int,
    deadline: float,
    read_timeout_s: float,
    between: Callable[[], None] | None = None,
) -> int:
    """The body written to ``sink`` chunk by chunk; ``between`` runs after each chunk (it may
    raise to stop). Returns the bytes written."""
    written = 0
    # A body read already (the head of an HTML page, checked for a browser check) is what
    # there is of it: the rest was dropped with its connection.
    read = [response.content or b""] if consumed(response) else None
    for data in read or chunks(response, deadline, read_timeout_s):
        written += len(data)
        if written > limit:
            raise BodyTooLarge(limit)
        sink.write(data)
        if between is not None:
            between()
    return written


def consumed(response: requests.Response) -> bool:
    """Whether the body was read already (requests' content, or what ``keep`` left)."""
    return bool(getattr(response, "_content_consumed", False))


def keep(response: requests.Response, content: bytes) -> bytes:
    """``content`` as the response's whole content, as requests would have kept it."""
    response._content = content
    setattr(response, "_content_consumed", True)  # noqa: B010 - not in requests' type stubs
    return content


def _announced(response: requests.Response) -> int | None:
    try:
        value = int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def challenge(response: requests.Response) -> str | None:
    """How the answer asks for a browser check, or None: the recorded HTML page (any status),
    or the JSON 403 ``ChallengeRequiredError``. Reads at most ``BODY_HEAD_MAX`` of the body."""
    ctype = response.headers.get("Content-Type", "").lower()
    if "html" in ctype:
        page = head(response).lower()
        if b"verifying your browser" in page or b"turnstile" in page:
            return f'HTTP {response.status_code} with a "Verifying your browser" page'
        return None
    if (
        response.status_code == 403
        and "json" in ctype
        and error_body(response).get("name") == "ChallengeRequiredError"
    ):
        return "403 ChallengeRequiredError"
    return None


def error_body(response: requests.Response) -> dict[str, Any]:
    """An error answer's JSON (its first ``BODY_HEAD_MAX`` bytes), or its text as the message."""
    text = head(response)
    with contextlib.suppress(ValueError):
        body = orjson.loads(text)
        if isinstance(body, dict):
            return body
    message = text[:400].decode("utf-8", "replace").strip()[:200]
    return {"name": "Error", "message": message or response.reason or ""}
