"""Hosted files (SPEC §10): accepted papers' files copied into ``website.output_dir/files/``.

One stage of a pass, after the website push (``pipeline.stages``)::

    plan      (writer lock, one transaction) what the site should host: every field of
              ``website.files`` of every paper of the ``accepted_papers`` view whose field is
              public; rows of papers that left, new rows pending, a changed hash pending again
    download  (no lock) the due files, in batches of at most 50 ids (one zip each), paced by
              the attachments quota OpenReview announces; what does not fit waits for a
              later window; every answer checked before anything is kept
    commit    (writer lock) checked files renamed into ``files/``, rows updated
    republish the data files again when their links changed (``publish.push``)
    sweep     (writer lock) files no row names any more are removed, once the site no longer
              links them

A file's name is ``<number>-<field>-<hash8>.<ext>``: the hash comes from the field's value
(``/pdf/<40 hex>.pdf``), so a file is fetched again only when OpenReview's file changes, and the
bytes are never rewritten otherwise. The row keeps the file the site links until a newer one is
checked and in place.

Nothing here can delay, fail or roll back the metadata cycle: the cycle is committed before
the stage runs, a failed download is recorded on its row (attempts, last error, next attempt
with backoff) and tried again in a later pass, never in a loop.

Untrusted answers: the size limit (``website.file_max_mb``) is enforced while the bytes stream
(``source.download``) and while a zip member inflates; the type is checked from the bytes (a
PDF starts with ``%PDF-``; an HTML page is never a file); archive members are read one by one
(never ``extractall``) and kept only when their name is a plain name mapping to exactly one
paper asked for (``<note id>.<ext>``, or openreview-py's ``<number>_<field>.<ext>``): absolute
paths, ``..``, backslashes, duplicates, members nobody asked for, encrypted members and archive
bombs (declared size over the limit, an inflation ratio over ``MAX_RATIO``, more bytes than
declared) are refused and logged. Files are written to temporary files inside ``files/`` and
renamed into place: a partial download is never published, and no name from the server ever
becomes a path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, insert, select, update

from orsync.errors import AccessError, OrsyncError, RateLimitedError, UnreachableError
from orsync.files import STALE_TEMP_S, TEMP_PREFIX, fsync_dir
from orsync.logs import get_logger
from orsync.store import queries
from orsync.store.tables import HOSTED_FILE, NOTE

if TYPE_CHECKING:
    from orsync.config import Config
    from orsync.source import OpenReviewSource
    from orsync.store import Store

log = get_logger("orsync.files")

FILES_DIR = "files"
BATCH_MAX = 50  # OpenReview's limit of ids per /attachment?ids= request
MAX_RATIO = 100  # inflated/compressed beyond this (for members over RATIO_FLOOR): a bomb
RATIO_FLOOR = 1 << 20
MAX_MEMBERS_EXTRA = 10  # an archive may carry this many members beyond those asked for
BACKOFF_S = 60.0  # first wait after a failure; 4x each further failure, at most MAX_BACKOFF_S
MAX_BACKOFF_S = 24 * 3600.0
QUOTA_STATE = "files_quota"  # sync_state: the attachments quota as last announced (JSON)
_NAME = re.compile(r"^[A-Za-z0-9_-]+-[A-Za-z0-9_]+-[0-9a-f]{8}\.[a-z0-9]{1,8}$")
_HASH = re.compile(r"([0-9a-fA-F]{40})(?:\.[A-Za-z0-9]{1,8})?$")

# What a file of each extension starts with (offset, bytes): checked on the bytes received.
_MAGIC: dict[str, tuple[tuple[int, bytes], ...]] = {
    "pdf": ((0, b"%PDF-"),),
    "png": ((0, b"\x89PNG\r\n\x1a\n"),),
    "jpg": ((0, b"\xff\xd8\xff"),),
    "jpeg": ((0, b"\xff\xd8\xff"),),
    "gif": ((0, b"GIF87a"), (0, b"GIF89a")),
    "webp": ((8, b"WEBP"),),
    "zip": ((0, b"PK\x03\x04"), (0, b"PK\x05\x06")),
    "pptx": ((0, b"PK\x03\x04"),),
    "docx": ((0, b"PK\x03\x04"),),
    "odp": ((0, b"PK\x03\x04"),),
    "gz": ((0, b"\x1f\x8b"),),
    "tgz": ((0, b"\x1f\x8b"),),
    "mp4": ((4, b"ftyp"),),
    "mov": ((4, b"ftyp"),),
}


class Refused(Exception):
    """An answer that failed a check: never kept, the row is ``refused``."""


@dataclass(frozen=True)
class Wanted:
    forum_id: str
    number: int | None
    field: str
    value: str
    hash: str
    ext: str

    @property
    def name(self) -> str:
        stem = (
            str(self.number)
            if self.number is not None
            else re.sub(r"[^A-Za-z0-9_-]", "_", self.forum_id)
        )
        return f"{stem}-{self.field}-{self.hash[:8]}.{self.ext}"

    @property
    def label(self) -> str:
        return f"paper #{self.number if self.number is not None else self.forum_id} {self.field}"


@dataclass
class FilesResult:
    """What one files stage did."""

    downloaded: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    requests: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    window_opens_at: float | None = None  # the attachments quota is used up until then

    def as_dict(self) -> dict[str, Any]:
        return {
            "downloaded": self.downloaded,
            "refused_files": self.refused,
            "failed_files": self.failed,
            "removed": self.removed,
            "requests": self.requests,
            **self.counts,
            "window_opens_at": _iso(self.window_opens_at),
        }


def _iso(epoch_s: float | None) -> str | None:
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s).astimezone().isoformat(timespec="seconds")


# ------------------------------------------------------------------ what the site should host


def file_hash(value: str) -> str:
    """The hash OpenReview puts in a file's path, else one of the path itself."""
    found = _HASH.search(value)
    if found:
        return found.group(1).lower()
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:40]


def file_ext(field_name: str, value: str) -> str:
    if field_name == "pdf":
        return "pdf"
    ext = value.rpartition(".")[2].lower() if "." in value.rpartition("/")[2] else ""
    return ext if re.fullmatch(r"[a-z0-9]{1,8}", ext) else "bin"


def wanted_files(conn: Connection, fields: Sequence[str]) -> list[Wanted]:
    """Every listed field of every paper in ``accepted_papers`` (public data only) whose field
    everyone may read and whose value is a file path."""
    papers = queries.accepted_papers(conn)
    if not papers or not fields:
        return []
    numbers = {str(p["forum_id"]): p["number"] for p in papers}
    rows = conn.execute(
        select(NOTE.c.id, NOTE.c.raw, NOTE.c.public_fields).where(NOTE.c.id.in_(list(numbers)))
    )
    out = []
    for r in rows:
        try:
            content = json.loads(r.raw).get("content") or {}
            public = set(json.loads(r.public_fields or "[]"))
        except (ValueError, AttributeError):
            continue
        for name in fields:
            item = content.get(name) if isinstance(content, dict) else None
            value = item.get("value") if isinstance(item, dict) else None
            if name not in public or not isinstance(value, str) or not value.startswith("/"):
                continue
            number = numbers[str(r.id)]
            out.append(
                Wanted(
                    str(r.id),
                    int(number) if number is not None else None,
                    name,
                    value,
                    file_hash(value),
                    file_ext(name, value),
                )
            )
    out.sort(key=lambda w: (w.field, w.number is None, w.number or 0, w.forum_id))
    return out


def plan(conn: Connection, fields: Sequence[str], now: datetime) -> list[Wanted]:
    """Bring the rows in line with what the site should host; return the files due now."""
    wanted = {(w.forum_id, w.field): w for w in wanted_files(conn, fields)}
    rows = {(r.forum_id, r.field): r for r in conn.execute(select(HOSTED_FILE))}
    gone = [key for key in rows if key not in wanted]
    for forum_id, name in gone:
        conn.execute(
            delete(HOSTED_FILE).where(
                HOSTED_FILE.c.forum_id == forum_id, HOSTED_FILE.c.field == name
            )
        )
    due = []
    for key, w in wanted.items():
        row = rows.get(key)
        if row is None:
            conn.execute(
                insert(HOSTED_FILE).values(
                    forum_id=w.forum_id,
                    field=w.field,
                    number=w.number,
                    value=w.value,
                    hash=w.hash,
                    ext=w.ext,
                    status="pending",
                    attempts=0,
                    updated_at=now,
                )
            )
            due.append(w)
            continue
        if row.hash != w.hash or row.ext != w.ext:
            # A new file: pending again; the site keeps linking the previous one meanwhile.
            conn.execute(
                update(HOSTED_FILE)
                .where(HOSTED_FILE.c.forum_id == w.forum_id, HOSTED_FILE.c.field == w.field)
                .values(
                    value=w.value,
                    hash=w.hash,
                    ext=w.ext,
                    number=w.number,
                    status="pending",
                    attempts=0,
                    last_error=None,
                    next_attempt_at=None,
                    updated_at=now,
                )
            )
            due.append(w)
            continue
        if row.number != w.number:
            conn.execute(
                update(HOSTED_FILE)
                .where(HOSTED_FILE.c.forum_id == w.forum_id, HOSTED_FILE.c.field == w.field)
                .values(number=w.number)
            )
        if row.status != "current" and (row.next_attempt_at is None or row.next_attempt_at <= now):
            due.append(w)
    due.sort(key=lambda w: (w.field, w.number is None, w.number or 0, w.forum_id))
    return due


# ------------------------------------------------------------------ checking what came back


def check_type(ext: str, head: bytes) -> None:
    """Raise ``Refused`` unless ``head`` (the first bytes) is a file of type ``ext``."""
    start = head.lstrip()[:15].lower()
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        raise Refused(f"an HTML page, not a .{ext} file")
    magic = _MAGIC.get(ext)
    if magic is None:
        raise Refused(f"files of type .{ext} are not hosted (unknown type)")
    if not any(head[off : off + len(sig)] == sig for off, sig in magic):
        what = "a PDF (it does not start with %PDF-)" if ext == "pdf" else f"a .{ext} file"
        raise Refused(f"not {what}")


def safe_member_name(name: str) -> str | None:
    """The member's plain name, or None when it is a path that could leave ``files/``."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or ":" in name:
        return None
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return parts[-1] if len(parts) <= 2 else None


@contextlib.contextmanager
def _temp_in(folder: Path) -> Iterator[tuple[IO[bytes], Path]]:
    fd, name = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=".tmp")
    path = Path(name)
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield handle, path
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def _members(
    archive_path: Path, asked: Sequence[Wanted], folder: Path, max_bytes: int
) -> tuple[dict[str, Path], dict[str, str], list[str]]:
    """The usable members of a batch answer: (forum id → checked temp file, forum id → why its
    member was refused, problems with members nobody asked for). Raises ``zipfile.BadZipFile``
    when the archive itself is unusable."""
    by_key: dict[str, Wanted] = {}
    for w in asked:
        by_key[w.forum_id] = w
        if w.number is not None:
            by_key[f"{w.number}_{w.field}"] = w
    got: dict[str, Path] = {}
    refused: dict[str, str] = {}
    strays: list[str] = []
    with zipfile.ZipFile(archive_path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > len(asked) + MAX_MEMBERS_EXTRA:
            raise zipfile.BadZipFile(f"{len(infos)} members for {len(asked)} files asked")
        seen: dict[str, int] = {}
        mapped: list[tuple[zipfile.ZipInfo, Wanted | None, str | None]] = []
        for info in infos:
            plain = safe_member_name(info.filename)
            # A path is refused; its last part still says whose file it claims to be.
            last = plain or re.split(r"[\\/]", info.filename)[-1]
            target = by_key.get(last.rpartition(".")[0] or last)
            reason = None if plain else "a path, not a plain file name"
            if target is not None and plain:
                seen[target.forum_id] = seen.get(target.forum_id, 0) + 1
            mapped.append((info, target, reason))
        for info, target, reason in mapped:
            shown = repr(info.filename[:120])
            if target is None:
                strays.append(f"member {shown}: {reason or 'nobody asked for it'}")
                continue
            if reason is None and seen.get(target.forum_id, 0) > 1:
                reason = "the archive holds more than one file for this paper"
            if reason is None:
                try:
                    got[target.forum_id] = _extract(archive, info, target, folder, max_bytes)
                    continue
                except Refused as exc:
                    reason = str(exc)
            refused.setdefault(target.forum_id, f"archive member {shown}: {reason}")
            old = got.pop(target.forum_id, None)
            if old is not None:
                old.unlink(missing_ok=True)
    return got, refused, strays


def _extract(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, w: Wanted, folder: Path, max_bytes: int
) -> Path:
    if info.flag_bits & 0x1:
        raise Refused("encrypted")
    if info.file_size > max_bytes:
        raise Refused(f"declares {info.file_size} bytes, over website.file_max_mb")
    if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(1, info.compress_size):
        raise Refused(f"inflates {info.compress_size} bytes to {info.file_size} (an archive bomb)")
    limit = min(max_bytes, info.file_size)
    with _temp_in(folder) as (out, path):
        written = 0
        try:
            with archive.open(info) as member:
                while chunk := member.read(1 << 16):
                    written += len(chunk)
                    if written > limit:
                        raise Refused("inflates to more bytes than it declares")
                    out.write(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as exc:
            raise Refused(f"unreadable ({exc})") from None
        except Refused:
            raise
        out.flush()
        out.seek(0)
        check_type(w.ext, out.read(64))
        os.fsync(out.fileno())
    return path


# ------------------------------------------------------------------ the stage


@dataclass
class _Outcome:
    """What the downloads of one pass found, applied to the rows at commit."""

    ok: dict[tuple[str, str], tuple[Wanted, Path]] = field(default_factory=dict)
    refused: dict[tuple[str, str], tuple[Wanted, str]] = field(default_factory=dict)
    failed: dict[tuple[str, str], tuple[Wanted, str]] = field(default_factory=dict)


class _Quota:
    """How many more attachment requests this pass may make (None: not known yet)."""

    def __init__(
        self, source: OpenReviewSource, stored: dict[str, Any] | None, reserve: int
    ) -> None:
        self.source = source
        self.reserve = reserve
        self.remaining: int | None = None
        self.reset_at: float | None = None
        now = time.time()
        if stored and isinstance(stored.get("reset_at"), int | float) and stored["reset_at"] > now:
            self.remaining = int(stored.get("remaining", 0))
            self.reset_at = float(stored["reset_at"])

    def refresh(self) -> None:
        q = self.source.quota.get("attachments")
        if q is not None and q.reset_at is not None:
            self.remaining, self.reset_at = q.remaining, q.reset_at

    def left(self) -> int | None:
        """Requests this pass may still make; None when unknown (the first answer tells)."""
        if self.remaining is None or self.reset_at is None or time.time() >= self.reset_at:
            return None
        return max(0, self.remaining - self.reserve)

    def used_up(self, until: float) -> None:
        self.remaining, self.reset_at = 0, until

    def as_state(self) -> str | None:
        if self.remaining is None or self.reset_at is None:
            return None
        return json.dumps({"remaining": self.remaining, "reset_at": self.reset_at})


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(MAX_BACKOFF_S, BACKOFF_S * 4 ** max(0, attempts - 1)))


def _batches(due: Sequence[Wanted]) -> Iterator[list[Wanted]]:
    by_field: dict[str, list[Wanted]] = {}
    for w in due:
        by_field.setdefault(w.field, []).append(w)
    yield from by_field.values()


class _Downloader:
    def __init__(
        self,
        source: OpenReviewSource,
        folder: Path,
        max_bytes: int,
        quota: _Quota,
        result: FilesResult,
    ) -> None:
        self.source = source
        self.folder = folder
        self.max_bytes = max_bytes
        self.quota = quota
        self.result = result
        self.outcome = _Outcome()
        self.should_stop: Callable[[], bool] | None = None
        self.tick: Callable[[], None] | None = None

    def _may_request(self) -> bool:
        if self.tick is not None:
            self.tick()  # the service's watchdog: each bounded request is progress
        if self.should_stop is not None and self.should_stop():
            return False
        left = self.quota.left()
        return left is None or left >= 1

    def _request(self, params: dict[str, str], sink: IO[bytes], max_bytes: int, what: str) -> str:
        self.result.requests += 1
        try:
            return self.source.download(params, sink, max_bytes, what)
        finally:
            self.quota.refresh()

    def run(self, due: Sequence[Wanted]) -> None:
        for items in _batches(due):
            queue = list(items)
            while queue:
                if not self._may_request():
                    return
                left = self.quota.left()
                size = min(BATCH_MAX, len(queue))
                if left is not None:
                    # Should the server count a batch as its files, stay inside what is left.
                    size = min(size, max(1, left))
                batch, queue = queue[:size], queue[size:]
                try:
                    if len(batch) == 1:
                        self._one(batch[0])
                    else:
                        self._batch(batch)
                except RateLimitedError as exc:
                    self.quota.used_up(exc.resume_at)
                    return

    def _fail(self, w: Wanted, why: str) -> None:
        self.outcome.failed[(w.forum_id, w.field)] = (w, why)

    def _refuse(self, w: Wanted, why: str) -> None:
        log.warning("hosted file refused", paper=w.number, field=w.field, reason=why)
        self.outcome.refused[(w.forum_id, w.field)] = (w, why)

    def _one(self, w: Wanted) -> bool:
        """One file by ``/attachment?id=``; False when the answer was unusable."""
        what = f"the {w.field} file of {w.label}"
        with _temp_in(self.folder) as (sink, path):
            try:
                self._request({"id": w.forum_id, "name": w.field}, sink, self.max_bytes, what)
            except _too_large() as exc:
                self._refuse(w, f"larger than website.file_max_mb ({exc})")
                path.unlink(missing_ok=True)
                return False
            except (AccessError, UnreachableError) as exc:
                if isinstance(exc, RateLimitedError):
                    path.unlink(missing_ok=True)
                    raise
                self._fail(w, exc.message)
                path.unlink(missing_ok=True)
                return False
            sink.flush()
            sink.seek(0)
            try:
                check_type(w.ext, sink.read(64))
            except Refused as exc:
                self._refuse(w, str(exc))
                path.unlink(missing_ok=True)
                return False
            os.fsync(sink.fileno())
        self.outcome.ok[(w.forum_id, w.field)] = (w, path)
        return True

    def _batch(self, batch: list[Wanted]) -> None:
        field_name = batch[0].field
        ids = ",".join(w.forum_id for w in batch)
        what = f"the {field_name} files of {len(batch)} papers"
        usable = False
        got: dict[str, Path] = {}
        with _temp_in(self.folder) as (sink, path):
            try:
                self._request(
                    {"ids": ids, "name": field_name}, sink, self.max_bytes * len(batch), what
                )
                sink.flush()
                usable = True
            except _too_large():
                log.warning("hosted files: batch answer over the size limit", files=len(batch))
            except (AccessError, UnreachableError) as exc:
                if isinstance(exc, RateLimitedError):
                    path.unlink(missing_ok=True)
                    raise
                log.warning("hosted files: batch answer failed", error=exc.message)
            if usable:
                try:
                    got, refused, strays = _members(path, batch, self.folder, self.max_bytes)
                except (
                    zipfile.BadZipFile,
                    zipfile.LargeZipFile,
                    OSError,
                    EOFError,
                    ValueError,
                ) as exc:
                    log.warning(
                        "hosted files: batch answer is not a usable archive", error=str(exc)[:200]
                    )
                    usable = False
                else:
                    for line in strays:
                        log.warning("hosted files: archive member refused", member=line)
                    for w in batch:
                        if w.forum_id in got:
                            self.outcome.ok[(w.forum_id, w.field)] = (w, got[w.forum_id])
                        elif w.forum_id in refused:
                            self._refuse(w, refused[w.forum_id])
            path.unlink(missing_ok=True)
        # Fallback: one by one for the papers the batch did not bring (an unusable answer, or
        # a member missing); a file refused from the archive waits for a later pass. Two
        # failures in a row mean the server cannot give these now: the rest waits.
        rest = [
            w
            for w in batch
            if (w.forum_id, w.field) not in self.outcome.ok
            and (w.forum_id, w.field) not in self.outcome.refused
        ]
        failures = 0
        for i, w in enumerate(rest):
            if not self._may_request():
                return
            failures = 0 if self._one(w) else failures + 1
            if failures >= 2:
                for other in rest[i + 1 :]:
                    self._fail(other, "not tried: the downloads before it failed")
                return


def _too_large() -> type[Exception]:
    from orsync.source import FileTooLarge

    return FileTooLarge


def run_stage(
    config: Config,
    store: Store,
    source: OpenReviewSource,
    *,
    wait_s: float,
    command: str,
    republish: Any,
    site_current: bool = True,
    should_stop: Callable[[], bool] | None = None,
    tick: Callable[[], None] | None = None,
) -> FilesResult:
    """One pass of hosted files (see the module docstring). ``republish()`` rewrites the
    website data (raising when it cannot); ``site_current`` says whether the push before this
    stage succeeded: files are removed only once the site no longer links them."""
    from orsync.lock import store_writer
    from orsync.source import QUOTA_RESERVE

    site = config.website
    assert site is not None
    result = FilesResult()
    folder = site.output_dir / FILES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    max_bytes = int(site.file_max_mb * 1024 * 1024)
    now = datetime.now(UTC)
    with store_writer(store, wait_s=wait_s, command=f"{command} (files)"), store.begin() as conn:
        due = plan(conn, site.files, now)
        stored = queries.get_state(conn, QUOTA_STATE)
    quota = _Quota(source, json.loads(stored) if stored else None, QUOTA_RESERVE)
    downloader = _Downloader(source, folder, max_bytes, quota, result)
    downloader.should_stop, downloader.tick = should_stop, tick
    try:
        if due:
            downloader.run(due)
        outcome = downloader.outcome
        with (
            store_writer(store, wait_s=wait_s, command=f"{command} (files)"),
            store.begin() as conn,
        ):
            links_before = queries.hosted_links(conn)
            _commit(conn, folder, outcome, result, datetime.now(UTC))
            state = quota.as_state()
            if state is not None:
                queries.set_state(conn, QUOTA_STATE, state)
            links_after = queries.hosted_links(conn)
    finally:
        for _, path in downloader.outcome.ok.values():
            path.unlink(missing_ok=True)  # renamed into place at commit; leftovers only
    if quota.left() == 0 and quota.reset_at is not None:
        result.window_opens_at = quota.reset_at
    if site_current and links_after != links_before:
        republish()  # raises when it cannot: then nothing is removed either
    if site_current:
        with (
            store_writer(store, wait_s=wait_s, command=f"{command} (files)"),
            store.connect() as conn,
        ):
            result.removed = sweep(folder, set(_names(queries.hosted_links(conn))))
    with store.connect() as conn:
        result.counts = counts(conn)
    log.info(
        "hosted files",
        downloaded=len(result.downloaded),
        refused=len(result.refused),
        failed=len(result.failed),
        removed=len(result.removed),
        requests=result.requests,
        **{f"now_{k}": v for k, v in result.counts.items()},
    )
    return result


def _names(links: dict[str, dict[str, str]]) -> Iterator[str]:
    for per_field in links.values():
        for link in per_field.values():
            yield link.removeprefix(f"{FILES_DIR}/")


def _commit(
    conn: Connection, folder: Path, outcome: _Outcome, result: FilesResult, now: datetime
) -> None:
    rows = {(r.forum_id, r.field): r for r in conn.execute(select(HOSTED_FILE))}

    def where(key: tuple[str, str]) -> Any:
        return (HOSTED_FILE.c.forum_id == key[0]) & (HOSTED_FILE.c.field == key[1])

    for key, (w, path) in outcome.ok.items():
        row = rows.get(key)
        if row is None or row.hash != w.hash:
            continue  # the paper left, or its file changed again, while this one downloaded
        target = folder / w.name
        size = path.stat().st_size
        path.chmod(0o644)
        path.replace(target)
        conn.execute(
            update(HOSTED_FILE)
            .where(where(key))
            .values(
                status="current",
                file=w.name,
                file_hash=w.hash,
                size=size,
                attempts=0,
                last_error=None,
                next_attempt_at=None,
                updated_at=now,
            )
        )
        result.downloaded.append(w.name)
    for status, found, listed in (
        ("refused", outcome.refused, result.refused),
        ("pending", outcome.failed, result.failed),
    ):
        for key, (w, why) in found.items():
            row = rows.get(key)
            if row is None or row.hash != w.hash:
                continue
            attempts = int(row.attempts or 0) + 1
            conn.execute(
                update(HOSTED_FILE)
                .where(where(key))
                .values(
                    status=status,
                    attempts=attempts,
                    last_error=why[:500],
                    next_attempt_at=now + _backoff(attempts),
                    updated_at=now,
                )
            )
            listed.append(f"{w.label}: {why}")
    if outcome.ok:
        fsync_dir(folder)


def sweep(folder: Path, keep: set[str]) -> list[str]:
    """Remove the files orsync put in ``folder`` that no row names, and stale temporary files."""
    removed: list[str] = []
    cutoff = time.time() - STALE_TEMP_S
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return removed
    for path in entries:
        name = path.name
        with contextlib.suppress(OSError):
            if name.startswith(TEMP_PREFIX) and name.endswith(".tmp"):
                if path.lstat().st_mtime < cutoff:
                    path.unlink()
            elif _NAME.match(name) and name not in keep and not path.is_symlink():
                path.unlink()
                removed.append(name)
    return removed


# ------------------------------------------------------------------ status


def counts(conn: Connection) -> dict[str, int]:
    out = {"current": 0, "pending": 0, "refused": 0}
    for row in queries.hosted_files(conn):
        out[str(row["status"])] = out.get(str(row["status"]), 0) + 1
    return out


def status(conn: Connection, reserve: int = 3) -> dict[str, Any]:
    """What ``orsync status`` shows of hosted files (``reserve``: ``source.QUOTA_RESERVE``)."""
    rows = queries.hosted_files(conn)
    now = datetime.now(UTC)
    tally = {"current": 0, "pending": 0, "refused": 0}
    next_attempt: datetime | None = None
    refused = []
    for row in rows:
        tally[str(row["status"])] = tally.get(str(row["status"]), 0) + 1
        if row["status"] != "current":
            when = row["next_attempt_at"] or now
            next_attempt = when if next_attempt is None else min(next_attempt, when)
        if row["status"] == "refused":
            refused.append(
                {"number": row["number"], "field": row["field"], "error": row["last_error"]}
            )
    window = None
    stored = queries.get_state(conn, QUOTA_STATE)
    if stored:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            q = json.loads(stored)
            if q["reset_at"] > time.time() and q["remaining"] - reserve < 1:
                window = datetime.fromtimestamp(q["reset_at"], UTC)
    if next_attempt is not None and window is not None:
        next_attempt = max(next_attempt, window)
    return {
        **tally,
        "next_attempt_at": next_attempt.astimezone().isoformat(timespec="seconds")
        if next_attempt
        else None,
        "window_opens_at": window.astimezone().isoformat(timespec="seconds") if window else None,
        "refused_files": refused,
    }


def run_files_stage(
    config: Config,
    store: Store,
    source: OpenReviewSource,
    *,
    wait_s: float,
    command: str,
    republish: Any,
    site_current: bool,
    should_stop: Callable[[], bool] | None = None,
    tick: Callable[[], None] | None = None,
) -> FilesResult:
    """:func:`run_stage`, a folder that cannot be written said in one line."""
    try:
        return run_stage(
            config,
            store,
            source,
            wait_s=wait_s,
            command=command,
            republish=republish,
            site_current=site_current,
            should_stop=should_stop,
            tick=tick,
        )
    except OSError as exc:
        raise OrsyncError(
            f"hosted files: cannot write {exc.filename or 'website.output_dir'}: "
            f"{exc.strerror or type(exc).__name__}"
        ) from None
