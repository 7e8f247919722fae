"""HTTP front of the emulator: routing, auth, OpenReview error bodies, faults, request log.

Served API (the subset orsync and openreview-py use)::

    POST /login                    {"id","password","expiresIn"} -> {"token","user":{...}}
    GET  /groups?id=V | ?parent=P | ?prefix=P
    GET  /notes?...                filters, paging, sort, details, select, trash, mintmdate
    GET  /notes/edits?note.id=X
    GET  /attachment?id=X&name=pdf
    GET  /attachment?ids=X,Y,...&name=pdf   (at most 50: one zip, a member <id>.<ext> each;
                                             a single id answers the file itself)
    POST /messages/requests        (and POST /messages) {"groups","subject","message",
                                   "invitation"?,...}: a program chair's message (messages.py)
    GET  /messages/requests?id=X | ?invitation=I

Control surface for an emulator running in another process (answered only to loopback clients,
never logged, never faulted)::

    GET  /_emulator/info                    {"url","venue_id","chair_username","phase"}
    GET  /_emulator/truth?reader=guest      ground truth (reader: guest | chair)
    GET  /_emulator/requests                request log as a JSON list
    GET  /_emulator/messages                the message requests accepted, oldest first
    POST /_emulator/clear_requests
    POST /_emulator/advance   {"phase": "decision"}
    POST /_emulator/mutate    {"op": "withdraw", "forum": "..."}; ops and their fields:
         add_submission | add_review {forum, rating?} | add_comment {forum, replyto?, public?}
         | edit_content {note, fields:{...}} | set_decision {forum, decision, release?}
         | hold_decisions {hold?} (decisions posted from then on are unreleased: chairs only,
           venueid unchanged) | release_decisions | set_readers {note, readers?, nonreaders?,
           field?} (any JSON, malformed included)
         | flip_decision {forum} | withdraw {forum} | desk_reject {forum}
         | delete_note {note} | hide_note {note} | random {seed}
         -> {"result": <id, description or null>}
    POST /_emulator/faults    {"kind":"429","times":3,"params":{"retry_after":1}}
                              or {"spec": "429x3,drop"} or {"clear": true}
    POST /_emulator/limits    {"bucket": "notes", "limit": 36, "window_s": 3600} (limit null:
                              none) and/or {"challenge_guests": "html" | "json" | null}

Rate limits and the browser check for guests are described in :mod:`orsync.emulator.limits`;
refused requests are in the request log like every other (``fault`` ``ratelimit`` or
``challenge``).

Auth: no ``Authorization`` header is a guest. The chair logs in with ``chair_username`` (or
the profile id ``~Program_Chair1``) and the emulator's password (default ``chair-password``);
``member_username`` logs in with the same password as an account that is no chair (it reads
what guests read, and may not send messages). A
token lives ``min(expiresIn, token_ttl_s)`` seconds; an expired or unknown token answers 401
``TokenExpiredError`` (a restarted emulator forgets its tokens, which a client must survive).
"""

from __future__ import annotations

import base64
import bz2
import contextlib
import errno
import functools
import io
import ipaddress
import json
import math
import random
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import warnings
import zipfile
import zlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from orsync.emulator.dataset import DATASETS, PHASES
from orsync.emulator.faults import FaultPlan, FaultRule, parse_fault_spec
from orsync.emulator.limits import CHALLENGE_HTML, CHALLENGE_MESSAGE, CHALLENGES, RateLimits
from orsync.emulator.messages import Messages
from orsync.emulator.venue import ApiError, Reader, Venue

CHAIR_PROFILE_ID = "~Program_Chair1"
MEMBER_PROFILE_ID = "~Venue_Member1"
DEFAULT_PASSWORD = "chair-password"  # noqa: S105 - a fixture credential of a local fake server
MAX_TOKEN_TTL_S = 7 * 24 * 3600


@dataclass
class RequestRecord:
    time: float
    method: str
    path: str
    query: dict[str, str]
    status: int  # 0 when the connection was dropped without a response
    reader: str  # "guest" or the user id
    fault: str | None


@dataclass
class _Token:
    user_id: str
    expires_at: float
    seq: int


class _Auth:
    def __init__(self, ttl_s: float) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        self._seq = 0
        self._expired_upto = 0
        self.ttl_s = ttl_s

    def issue(self, user_id: str, expires_in: float | None) -> tuple[str, float]:
        ttl = self.ttl_s if expires_in is None else min(expires_in, self.ttl_s, MAX_TOKEN_TTL_S)
        with self._lock:
            self._seq += 1
            now = time.time()
            # JWT-shaped so openreview-py can decode it when handed `token=`; never verified.
            payload = {
                "user": {"id": user_id, "profile": {"id": CHAIR_PROFILE_ID}},
                "iat": int(now),
                "exp": int(now + ttl),
                "jti": secrets.token_hex(8),
            }
            token = (
                ".".join(
                    base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
                    for part in ({"alg": "HS256", "typ": "JWT"}, payload)
                )
                + "."
                + secrets.token_urlsafe(24)
            )
            self._tokens[token] = _Token(user_id, now + ttl, self._seq)
            return token, ttl

    def expire_all(self) -> None:
        with self._lock:
            self._expired_upto = self._seq

    def check(self, token: str) -> tuple[str | None, bool]:
        """(user id or None when unknown, valid?)."""
        with self._lock:
            t = self._tokens.get(token)
            if t is None:
                return None, False
            valid = t.seq > self._expired_upto and time.time() < t.expires_at
            return t.user_id, valid


class _ReqIds:
    def __init__(self) -> None:
        self._n = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._n += 1
            return f"{datetime.now(UTC):%Y-%m-%d}-{self._n}"


def _resolves_to_loopback(host: str) -> bool | None:
    """True if every address ``host`` names is loopback, False if any is not, None if it names
    none (unknown host name)."""
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return None
    return all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos) if infos else None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: Emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanished (killed mid-request, as the kill tests do) is normal here.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


_GATEWAY_HTML = {
    502: b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n",
    503: b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
    b"<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
}


FILE_ANSWERS = ("html", "hostile_zip", "no_batch")

NOT_A_FILE_HTML = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Error | OpenReview</title></head>
<body><h1>Something went wrong</h1><p>Please sign in to download this file.</p></body></html>
"""

BOMB_BYTES = 40 * 1024 * 1024  # what the bomb member inflates to (a few dozen KB compressed)


def hostile_zip(venue: Venue, reader: Reader, ids: list[str], name: str) -> bytes:
    """A batch answer that tries what a hostile or broken server could: the first asked id's
    member named ``../../<id>.pdf``, the second's an absolute path, the third's twice, the
    fourth's a bomb (a PDF header, then tens of MB of zeros), plus members nobody asked for
    (``stranger.pdf``, a Windows path); the other ids get their real files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, nid in enumerate(ids):
            try:
                data = venue.attachment(reader, nid, name)
            except ApiError:
                continue
            if i == 0:
                archive.writestr(f"../../{nid}.pdf", data)
            elif i == 1:
                archive.writestr(f"/tmp/{nid}.pdf", data)  # noqa: S108 - an absolute member name
            elif i == 2:
                archive.writestr(f"{nid}.pdf", data)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # the duplicate is the point
                    archive.writestr(f"{nid}.pdf", b"%PDF-1.4\n% the other copy\n")
            elif i == 3:
                bomb = zipfile.ZipInfo(f"{nid}.pdf")
                bomb.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(bomb, "w", force_zip64=True) as member:
                    member.write(b"%PDF-1.4\n")
                    zeros = bytes(1024 * 1024)
                    for _ in range(BOMB_BYTES // len(zeros)):
                        member.write(zeros)
            else:
                archive.writestr(f"{nid}.pdf", data)
        archive.writestr("stranger.pdf", b"%PDF-1.4\n% nobody asked for me\n")
        archive.writestr("..\\..\\evil.pdf", b"%PDF-1.4\n% a Windows path\n")
    return buffer.getvalue()


HOSTILE_KINDS = frozenset({"slow_body", "slow_headers", "redirect", "big_error", "gzip_bomb"})
_GZIP_BLOCK = 16 * 1024 * 1024  # zeros per gzip member of a bomb; members repeat it


def _gzip(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip member
    return packer.compress(data) + packer.flush()


@functools.lru_cache(maxsize=8)
def _inflating(prefix: bytes, mb: int, suffix: bytes) -> bytes:
    """``prefix`` + ``mb`` MiB of ``0`` + ``suffix``, gzip-encoded as concatenated members (a
    gzip stream may hold several, and every HTTP client inflates them all), so a body of a few MB
    that inflates to gigabytes is built in well under a second."""
    total = mb * 1024 * 1024
    block = _gzip(b"0" * _GZIP_BLOCK)
    rest = _gzip(b"0" * (total % _GZIP_BLOCK))
    return _gzip(prefix) + block * (total // _GZIP_BLOCK) + rest + _gzip(suffix)


def hostile_answer(handler: _Handler, fault: FaultRule) -> int | None:
    """The answer of a hostile fault kind (module doc of :mod:`orsync.emulator.faults`); its
    status, or None when the request goes on to be answered normally (``slow_body``,
    ``slow_headers``)."""
    if fault.kind == "slow_headers":
        handler._header_dribble = max(0.0, fault.number("byte_every", 1.0))
        return None
    if fault.kind == "slow_body":
        handler._dribble = (
            max(0.0, fault.number("byte_every", 1.0)),
            max(1, int(fault.number("bytes", 1.0))),
        )
        return None
    if fault.kind == "redirect":
        handler.send_response(302)
        handler.send_header("Location", str(fault.params.get("location", "/")))
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        return 302
    mb = max(1, int(fault.number("mb", 64.0 if fault.kind == "big_error" else 1024.0)))
    if fault.kind == "big_error":
        status = int(fault.number("status", 500.0))
        prefix = b'{"name":"Error","status":%d,"message":"' % status
        gzipped = fault.number("gzip", 1.0) != 0
    else:
        status = 200
        prefix = b'{"count":0,"notes":[],"pad":"'
        gzipped = True
    suffix = b'"}'
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json; charset=utf-8")
    if gzipped:
        body = _inflating(prefix, mb, suffix)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        return status
    handler.send_header("Content-Length", str(len(prefix) + mb * 1024 * 1024 + len(suffix)))
    handler.end_headers()
    handler.wfile.write(prefix)
    block = b"x" * (1024 * 1024)
    for _ in range(mb):
        handler.wfile.write(block)
    handler.wfile.write(suffix)
    return status


BATCH_FAULTS = frozenset({"bzip2", "lzma", "huge_directory"})


@functools.lru_cache(maxsize=8)
def bomb_member(method: str, inflate_mb: int) -> bytes:
    """A PDF header and ``inflate_mb`` MiB of zeros, compressed as a zip member of ``method``
    (cached: compressing takes seconds, so a test may build it ahead of the request)."""
    packer: Any = (
        bz2.BZ2Compressor(9) if method == "bzip2" else zipfile.LZMACompressor()  # type: ignore[attr-defined]
    )
    out = [packer.compress(b"%PDF-1.4\n")]
    zeros = bytes(1 << 20)
    for _ in range(inflate_mb):
        out.append(packer.compress(zeros))
    out.append(packer.flush())
    return b"".join(out)


def _zip(
    entries: list[tuple[str, int, bytes, int, int]], extra_directory: tuple[bytes, int] = (b"", 0)
) -> bytes:
    """A zip archive written by hand, so that it can lie: each entry is (name, method,
    compressed bytes, crc, declared size); ``extra_directory`` is (central directory bytes put
    before the real entries', how many entries they are)."""
    body = io.BytesIO()
    directory = [extra_directory[0]]
    for name, method, data, crc, size in entries:
        raw = name.encode()
        offset = body.tell()
        body.write(
            struct.pack(
                "<4s5H3L2H", b"PK\x03\x04", 63, 0, method, 0, 0, crc, len(data), size, len(raw), 0
            )
        )
        body.write(raw + data)
        directory.append(
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                63,
                63,
                0,
                method,
                0,
                0,
                crc,
                len(data),
                size,
                len(raw),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + raw
        )
    count = extra_directory[1] + len(entries)
    start = body.tell()
    cd = b"".join(directory)
    body.write(cd)
    if count > 0xFFFF:
        zip64_at = body.tell()
        body.write(
            struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(cd), start)
        )
        body.write(struct.pack("<4sLQL", b"PK\x06\x07", 0, zip64_at, 1))
    small = min(count, 0xFFFF)
    body.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, small, small, len(cd), start, 0))
    return body.getvalue()


def hostile_batch(
    venue: Venue, reader: Reader, ids: list[str], name: str, fault: FaultRule
) -> bytes:
    """The batch answer of a fault of :data:`BATCH_FAULTS` (see :mod:`.faults`)."""
    entries: list[tuple[str, int, bytes, int, int]] = []
    hostile = int(fault.number("members", 1))
    for i, nid in enumerate(ids):
        try:
            data = venue.attachment(reader, nid, name)
        except ApiError:
            continue
        member = f"{nid}.pdf"
        if fault.kind in ("bzip2", "lzma") and i < hostile:
            method = zipfile.ZIP_BZIP2 if fault.kind == "bzip2" else zipfile.ZIP_LZMA
            bomb = bomb_member(fault.kind, int(fault.number("inflate_mb", 256)))
            entries.append((member, method, bomb, zlib.crc32(data), len(data)))
            continue
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        packed = packer.compress(data) + packer.flush()
        entries.append((member, zipfile.ZIP_DEFLATED, packed, zlib.crc32(data), len(data)))
    if fault.kind != "huge_directory":
        return _zip(entries)
    # One stray entry, repeated: cheap to build, and a reader that parses the directory pays
    # for every copy.
    stray = b"stray.pdf"
    one = (
        struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(stray), 0, 0, 0, 0, 0, 0
        )
        + stray
    )
    count = int(fault.number("entries", 1_000_000))
    return _zip(entries, (one * count, count))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    _limit_headers: dict[str, str] = {}  # noqa: RUF012 - replaced per request, never mutated
    _dribble: tuple[float, int] | None = None  # slow_body: (seconds, bytes) per write
    _header_dribble: float | None = None  # slow_headers: seconds per byte
    _swallow = False  # drop@after=1: the request is handled, its answer never sent
    _user: str | None = None  # the logged-in account, None for a guest
    _body = b""

    def log_message(self, format: str, *args: Any) -> None:
        return  # the request log replaces stderr chatter

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- plumbing

    def flush_headers(self) -> None:
        if self._header_dribble is None:
            super().flush_headers()
            return
        head = b"".join(getattr(self, "_headers_buffer", []))
        self._headers_buffer: list[bytes] = []
        for at in range(len(head)):
            self.wfile.write(head[at : at + 1])
            self.wfile.flush()
            time.sleep(self._header_dribble)

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str = "application/json; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        if self._swallow:
            self._drop()
            return
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in {**self._limit_headers, **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            if self._dribble is None:
                self.wfile.write(body)
                return
            every, size = self._dribble
            for at in range(0, len(body), size):
                self.wfile.write(body[at : at + size])
                self.wfile.flush()
                time.sleep(every)

    def _error(self, err: ApiError, headers: dict[str, str] | None = None) -> int:
        details = dict(err.details)
        details.setdefault("reqId", self.server.emulator._req_ids.next())
        body = {"name": err.name, "message": err.message, "status": err.status, "details": details}
        self._send(err.status, json.dumps(body).encode(), headers=headers)
        return err.status

    def _read_json(self) -> dict[str, Any]:
        raw = self._body
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            raise ApiError(400, "ValidationError", "Body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "ValidationError", "Body must be a JSON object")
        return data

    def _dispatch(self, method: str) -> None:
        emu = self.server.emulator
        self._limit_headers = {}
        self._dribble = None
        self._header_dribble = None
        self._swallow = False
        self._user = None
        # Read whole before any answer: a fault answered early must not leave a body in the
        # kept-alive connection, where it would be taken for the next request.
        length = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if path.startswith("/_emulator"):
            self._control(method, path, query)
            return
        reader_name = "guest"
        reader: Reader = "guest"
        status = 500
        fault: FaultRule | None = None
        refusal: str | None = None
        try:
            fault = emu.faults.take(path)
            if fault is not None and fault.kind in HOSTILE_KINDS:
                answered = hostile_answer(self, fault)
                if answered is not None:
                    status = answered
                    return
            elif fault is not None:
                if fault.kind == "drop" and fault.number("after", 0) <= 0:
                    status = 0
                    self._drop()
                    return
                # drop@after=1: the request takes effect, then the connection is cut (a send
                # whose answer was lost: the client cannot know it went through).
                self._swallow = fault.kind == "drop"
                if fault.kind == "slow":
                    time.sleep(max(0.0, fault.number("delay", 1.0)))
                elif fault.kind == "429":
                    status = self._rate_limited(fault)
                    return
                elif fault.kind == "500":
                    status = self._error(ApiError(500, "Error", "Internal Server Error"))
                    return
                elif fault.kind in ("502", "503"):
                    code = int(fault.kind)
                    status = code
                    self._send(code, _GATEWAY_HTML[code], "text/html")
                    return
            auth = self.headers.get("Authorization")
            if auth and path != "/login":
                token = auth.removeprefix("Bearer ").strip()
                user, valid = emu._auth.check(token)
                reader_name = user or "guest"
                if not valid:
                    status = self._error(
                        ApiError(
                            401, "TokenExpiredError", "Token has expired. Please log in again."
                        )
                    )
                    return
                self._user = user
                reader = "chair" if user == emu.chair_username else "guest"
            elif path != "/login" and emu.challenge_guests is not None:
                refusal = "challenge"
                status = self._challenge(emu.challenge_guests)
                return
            if path != "/login":
                verdict = emu.limits.count(path, reader_name, emu._req_ids.next())
                self._limit_headers = verdict.headers
                if verdict.refused is not None:
                    refusal = "ratelimit"
                    status = 429
                    self._send(429, json.dumps(verdict.refused).encode())
                    return
            if fault is not None and fault.kind in BATCH_FAULTS and "ids" in query:
                ids = [i for i in query["ids"].split(",") if i]
                body = hostile_batch(emu._venue, reader, ids, query.get("name", "pdf"), fault)
                self._send(200, body, "application/zip")
                status = 200
            else:
                status = self._route(method, path, query, reader)
        except ApiError as err:
            status = self._error(err)
        except (BrokenPipeError, ConnectionResetError):
            status = 0
        finally:
            if self._swallow:
                status = 0
            emu._log(
                RequestRecord(
                    time.time(),
                    method,
                    path,
                    query,
                    status,
                    reader_name,
                    fault.kind if fault else refusal,
                )
            )

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _challenge(self, kind: str) -> int:
        if kind == "json":
            return self._error(ApiError(403, "ChallengeRequiredError", CHALLENGE_MESSAGE))
        self._send(200, CHALLENGE_HTML, "text/html; charset=utf-8")
        return 200

    def _rate_limited(self, fault: FaultRule) -> int:
        retry = max(0, math.ceil(fault.number("retry_after", 1.0)))
        reset = datetime.now(UTC) + timedelta(seconds=retry)
        err = ApiError(
            429,
            "RateLimitError",
            "Too many requests, please try again later.",
            {
                "limit": 100,
                "remaining": 0,
                "resetTime": reset.isoformat(timespec="milliseconds"),
                "used": 101,
                "current": 101,
            },
        )
        return self._error(err, headers={"Retry-After": str(retry)})

    def _route(self, method: str, path: str, query: dict[str, str], reader: Reader) -> int:
        emu = self.server.emulator
        venue = emu._venue
        if method == "POST" and path == "/login":
            return self._login()
        if method == "GET" and path == "/groups":
            if "id" in query:
                self._send(200, venue.group_json(query["id"]))
            elif "parent" in query or "prefix" in query:
                self._send(200, venue.groups_json(query.get("parent"), query.get("prefix")))
            else:
                raise ApiError(
                    400, "ValidationError", "id, parent or prefix is required", {"path": "id"}
                )
            return 200
        if method == "GET" and path == "/notes":
            self._send(200, venue.list_notes(reader, query))
            return 200
        if method == "GET" and path == "/notes/edits":
            self._send(200, venue.edits(reader, query))
            return 200
        if method == "GET" and path == "/attachment":
            name = query.get("name", "pdf")
            if emu.file_answer == "html":
                self._send(200, NOT_A_FILE_HTML, "text/html; charset=utf-8")
                return 200
            if "ids" in query:
                ids = [i for i in query["ids"].split(",") if i]
                if len(ids) == 1:  # as openreview-py notes: one id answers the file itself
                    self._send(200, venue.attachment(reader, ids[0], name), "application/pdf")
                    return 200
                if emu.file_answer == "no_batch":
                    raise ApiError(
                        400, "ValidationError", "ids is not allowed here", {"path": "ids"}
                    )
                if emu.file_answer == "hostile_zip":
                    body = hostile_zip(venue, reader, ids, name)
                else:
                    body = venue.attachments_zip(reader, ids, name)
                self._send(200, body, "application/zip")
                return 200
            body = venue.attachment(reader, query.get("id", ""), name)
            self._send(200, body, "application/pdf")
            return 200
        if method == "POST" and path in ("/messages", "/messages/requests"):
            with venue.lock:
                numbers = {rec.number for rec in venue.subs.values()}
            sent = emu.messages.post(self._read_json(), self._user, emu.chair_username, numbers)
            self._send(200, json.dumps(sent).encode())
            return 200
        if method == "GET" and path == "/messages/requests":
            found = emu.messages.requests(query, self._user, emu.chair_username)
            self._send(200, json.dumps(found).encode())
            return 200
        raise ApiError(404, "NotFoundError", f"Not Found: {method} {path}", {"path": path})

    def _login(self) -> int:
        emu = self.server.emulator
        body = self._read_json()
        user = body.get("id")
        password = body.get("password")
        if not user:
            raise ApiError(400, "Error", "Email is missing")
        if not password:
            raise ApiError(400, "Error", "Password is missing")
        known = (emu.chair_username, CHAIR_PROFILE_ID, emu.member_username)
        if user not in known or not secrets.compare_digest(str(password), emu.chair_password):
            raise ApiError(400, "Error", "Invalid username or password")
        account = emu.member_username if user == emu.member_username else emu.chair_username
        profile = MEMBER_PROFILE_ID if account == emu.member_username else CHAIR_PROFILE_ID
        expires = body.get("expiresIn")
        token, _ = emu._auth.issue(account, float(expires) if expires else None)
        resp = {
            "token": token,
            "user": {
                "id": account,
                "profile": {"id": profile, "usernames": [profile], "preferredEmail": account},
            },
        }
        self._send(200, json.dumps(resp).encode())
        return 200

    # -- control surface

    def _control(self, method: str, path: str, query: dict[str, str]) -> None:
        if not _is_loopback(self.client_address[0]):
            self._error(ApiError(404, "NotFoundError", f"Not Found: {method} {path}"))
            return
        emu = self.server.emulator
        try:
            result = self._control_route(emu, method, path, query)
        except ApiError as err:
            self._error(err)
            return
        except (KeyError, ValueError, TypeError) as exc:
            self._error(ApiError(400, "ValidationError", str(exc)))
            return
        self._send(200, json.dumps(result, ensure_ascii=False).encode())

    def _control_route(self, emu: Emulator, method: str, path: str, query: dict[str, str]) -> Any:
        sub = path.removeprefix("/_emulator")
        if method == "GET" and sub == "/info":
            return {
                "url": emu.url,
                "venue_id": emu.venue_id,
                "chair_username": emu.chair_username,
                "phase": emu.phase,
            }
        if method == "GET" and sub == "/truth":
            return emu.truth(query.get("reader", "guest"))
        if method == "GET" and sub == "/requests":
            return [asdict(r) for r in emu.requests]
        if method == "GET" and sub == "/messages":
            return emu.messages.sent
        if method == "POST" and sub == "/clear_requests":
            emu.clear_requests()
            return {"ok": True}
        body = self._read_json() if method == "POST" else {}
        if method == "POST" and sub == "/advance":
            emu.advance(str(body["phase"]))
            return {"phase": emu.phase}
        if method == "POST" and sub == "/mutate":
            return {"result": emu._mutate(body)}
        if method == "POST" and sub == "/limits":
            if "bucket" in body:
                limit = body.get("limit")
                emu.limits.set(
                    str(body["bucket"]),
                    None if limit is None else int(limit),
                    float(body.get("window_s", 3600)),
                )
            if "challenge_guests" in body:
                emu.set_challenge(body["challenge_guests"])
            return {"limits": emu.limits.policies, "challenge_guests": emu.challenge_guests}
        if method == "POST" and sub == "/faults":
            if body.get("clear"):
                emu.faults.clear()
            if "spec" in body:
                emu.faults.apply_spec(str(body["spec"]))
            if "kind" in body:
                emu.faults.inject(
                    str(body["kind"]), int(body.get("times", 1)), **dict(body.get("params") or {})
                )
            return {"pending": [asdict(r) for r in emu.faults.pending]}
        raise ApiError(404, "NotFoundError", f"Not Found: {method} {path}")


class Emulator:
    """A synthetic OpenReview API v2 venue served over real HTTP on a background thread."""

    def __init__(
        self,
        dataset: str = "bgpt",
        seed: int = 1,
        size: int | None = None,
        phase: str = "camera_ready",
        password: str = DEFAULT_PASSWORD,
        token_ttl_s: float = 3600,
        honour_mintmdate: bool = True,
        hold_decisions: bool = False,
        challenge_guests: str | None = None,
        page_cap: int | None = None,
    ) -> None:
        self._venue = Venue(dataset, seed, size, phase, honour_mintmdate, hold_decisions)
        self._venue.page_cap = page_cap
        self.challenge_guests: str | None = None
        self.set_challenge(challenge_guests)
        self.limits = RateLimits()
        self.file_answer: str | None = None
        self.venue_id = self._venue.venue_id
        self.chair_username = f"program.chair@{dataset}.example.org"
        self.member_username = f"member@{dataset}.example.org"
        self.messages = Messages(self.venue_id)
        self.chair_password = password
        self._auth = _Auth(token_ttl_s)
        self._req_ids = _ReqIds()
        self.faults = FaultPlan(on_expire_tokens=self._auth.expire_all)
        self._log_lock = threading.Lock()
        self._requests: list[RequestRecord] = []
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- lifecycle

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._server is not None:
            return self.url
        server = _HTTPServer((host, port), _Handler)
        server.emulator = self
        self._server = server
        bound_host, bound_port = server.server_address[:2]
        shown = bound_host if isinstance(bound_host, str) else host
        if shown in ("0.0.0.0", "::"):  # noqa: S104 - only formatting the URL
            shown = "127.0.0.1"
        self.url = f"http://{shown}:{bound_port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="orsync-emulator",
            daemon=True,
        )
        self._thread.start()
        return self.url

    @property
    def listening(self) -> tuple[str, int]:
        """The address the socket is bound to (``0.0.0.0`` stays ``0.0.0.0``, unlike ``url``)."""
        assert self._server is not None, "not started"
        bound_host, bound_port = self._server.server_address[:2]
        return str(bound_host), int(bound_port)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def set_challenge(self, kind: str | None) -> None:
        """Put the browser check in front of guests: ``html`` (200 "Verifying your browser"
        page, as recorded), ``json`` (403 ``ChallengeRequiredError``), or None (off)."""
        if kind is not None and kind not in CHALLENGES:
            raise ValueError(f"challenge_guests must be one of {CHALLENGES} or None, not {kind!r}")
        self.challenge_guests = kind

    def set_file_answer(self, kind: str | None) -> None:
        """How file downloads are answered: normally (None), with an HTML page and HTTP 200
        (``html``: a login or error page where a file was expected), or, for batches, with a
        hostile archive (``hostile_zip``: see :func:`hostile_zip`), or refused with a 400
        (``no_batch``: files come one by one only)."""
        if kind not in (None, *FILE_ANSWERS):
            raise ValueError(f"unknown file answer {kind!r}; one of {', '.join(FILE_ANSWERS)}")
        self.file_answer = kind

    def set_file(self, note_id: str, name: str, data: bytes | None) -> None:
        """Serve ``data`` as note ``note_id``'s ``name`` file (None: the generated PDF again)."""
        with self._venue.lock:
            if data is None:
                self._venue.file_overrides.pop((note_id, name), None)
            else:
                self._venue.file_overrides[(note_id, name)] = data

    def set_rate_limit(self, bucket: str, limit: int | None, window_s: float = 3600.0) -> None:
        """``limit`` requests per ``window_s`` seconds per reader in ``bucket`` (``notes``,
        ``groups``, ``attachments``); None removes the limit. See :mod:`.limits`."""
        self.limits.set(bucket, limit, window_s)

    # -- observation

    @property
    def phase(self) -> str:
        return self._venue.phase

    @property
    def venue(self) -> Venue:
        return self._venue

    def truth(self, reader: str = "chair") -> dict[str, Any]:
        return self._venue.truth(reader)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._log_lock:
            self._requests.clear()

    def _log(self, rec: RequestRecord) -> None:
        with self._log_lock:
            self._requests.append(rec)

    # -- mutations (delegated; the venue holds the lock)

    def advance(self, phase: str) -> None:
        self._venue.advance(phase)

    def add_submission(self, note_id: str | None = None) -> str:
        return self._venue.add_submission(note_id)

    def add_review(self, forum_id: str, rating: int | str | None = None) -> str:
        return self._venue.add_review(forum_id, rating)

    def add_comment(self, forum_id: str, replyto: str | None = None, public: bool = True) -> str:
        return self._venue.add_comment(forum_id, replyto, public)

    def edit_content(self, note_id: str, **fields: Any) -> None:
        self._venue.edit_content(note_id, **fields)

    def set_decision(self, forum_id: str, decision: str, release: bool = True) -> str:
        return self._venue.set_decision(forum_id, decision, release)

    def hold_decisions(self, hold: bool = True) -> None:
        """From now on, decisions of the decision phase are posted unreleased (chairs only)."""
        with self._venue.lock:
            self._venue.hold_decisions = hold

    def release_decisions(self) -> int:
        return self._venue.release_decisions()

    def set_readers(
        self, note_id: str, readers: Any = None, nonreaders: Any = None, field: str | None = None
    ) -> None:
        self._venue.set_readers(note_id, readers, nonreaders, field)

    def flip_decision(self, forum_id: str) -> str:
        return self._venue.flip_decision(forum_id)

    def withdraw(self, forum_id: str) -> str:
        return self._venue.withdraw(forum_id)

    def desk_reject(self, forum_id: str) -> str:
        return self._venue.desk_reject(forum_id)

    def delete_note(self, note_id: str) -> None:
        self._venue.delete_note(note_id)

    def hide_note(self, note_id: str) -> None:
        self._venue.hide_note(note_id)

    def random_mutation(self, rng: random.Random) -> str:
        return self._venue.random_mutation(rng)

    def _mutate(self, body: dict[str, Any]) -> Any:
        op = str(body.get("op"))
        if op == "add_submission":
            return self.add_submission()
        if op == "add_review":
            return self.add_review(body["forum"], body.get("rating"))
        if op == "add_comment":
            return self.add_comment(
                body["forum"], body.get("replyto"), bool(body.get("public", True))
            )
        if op == "edit_content":
            self.edit_content(body["note"], **dict(body.get("fields") or {}))
            return None
        if op == "set_decision":
            return self.set_decision(
                body["forum"], str(body["decision"]), bool(body.get("release", True))
            )
        if op == "hold_decisions":
            self.hold_decisions(bool(body.get("hold", True)))
            return None
        if op == "release_decisions":
            return self.release_decisions()
        if op == "set_readers":
            self.set_readers(
                body["note"], body.get("readers"), body.get("nonreaders"), body.get("field")
            )
            return None
        if op == "flip_decision":
            return self.flip_decision(body["forum"])
        if op == "withdraw":
            return self.withdraw(body["forum"])
        if op == "desk_reject":
            return self.desk_reject(body["forum"])
        if op == "delete_note":
            self.delete_note(body["note"])
            return None
        if op == "hide_note":
            self.hide_note(body["note"])
            return None
        if op == "random":
            return self.random_mutation(random.Random(body.get("seed")))
        raise ApiError(400, "ValidationError", f"unknown op {op!r}")


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 0,
    dataset: str = "bgpt",
    seed: int = 1,
    size: int | None = None,
    phase: str = "camera_ready",
    password: str | None = None,
    faults: str | None = None,
    token_ttl_s: float = 3600,
    allow_remote: bool = False,
) -> None:
    """Run an emulator until SIGINT/SIGTERM, after a banner saying where and how to log in.

    The banner's first line stays machine-readable: ``orsync emulator: URL venue=V chair=USER``.
    Bad options raise ``UsageError`` (exit 2, one line) before anything listens. The login is
    public (documented username and password), so a host other machines can reach is refused
    unless ``allow_remote``.
    """
    from orsync.errors import UsageError

    if dataset not in DATASETS:
        raise UsageError(f"--dataset {dataset!r} is unknown; choose one of {', '.join(DATASETS)}")
    if phase not in PHASES:
        raise UsageError(f"--phase {phase!r} is unknown; choose one of {', '.join(PHASES)}")
    if size is not None and size < 1:
        raise UsageError(f"--size {size}: give at least 1 submission")
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a port; use 1-65535, or 0 for a free one")
    specs = None
    if faults:
        try:
            specs = parse_fault_spec(faults)
        except ValueError as exc:
            raise UsageError(f"--faults {faults!r}: {exc}") from None
    loopback = _resolves_to_loopback(host)
    if loopback is None:
        raise UsageError(
            f"--host {host!r} is not an IPv4 address or known host name; use 127.0.0.1"
        )
    if not loopback and not allow_remote:
        raise UsageError(
            f"--host {host} lets other machines connect, and the emulator's login is public; "
            "use 127.0.0.1, or pass --allow-remote if that is what you want"
        )
    emu = Emulator(
        dataset=dataset,
        seed=seed,
        size=size,
        phase=phase,
        password=password if password is not None else DEFAULT_PASSWORD,
        token_ttl_s=token_ttl_s,
    )
    for spec in specs or []:
        emu.faults.inject(spec.kind, spec.times, **spec.params)
    try:
        url = emu.start(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {port} on {host} is in use (another emulator?); pick another --port, "
                "or --port 0 for a free one"
            ) from None
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound_host, bound_port = emu.listening
    secret = (
        f"password {DEFAULT_PASSWORD!r} (the emulator's fixed demo password, published in its "
        "documentation: not a secret)"
        if password is None
        else "the password passed to serve_forever"
    )
    where = (
        f"listening on {bound_host}:{bound_port}, loopback only: other machines cannot connect"
        if loopback
        else f"listening on {bound_host}:{bound_port}, reachable from other machines "
        f"(--allow-remote): anyone who can reach it can log in with the public password"
    )
    print(f"orsync emulator: {url} venue={emu.venue_id} chair={emu.chair_username}", flush=True)
    print(f"  log in as {emu.chair_username} with {secret}; guests need no login", flush=True)
    print(f"  {where}", flush=True)
    print(
        f'  orsync.toml: [openreview] baseurl = "{url}", venue_id = "{emu.venue_id}", '
        f'username = "{emu.chair_username}", password_file = a file holding the password',
        flush=True,
    )
    print("  stop it with Ctrl-C (or SIGTERM)", flush=True)
    stop = threading.Event()

    def _handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _handle)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
