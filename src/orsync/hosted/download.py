"""The due files fetched: in batches of at most ``BATCH_MAX`` ids (one zip each), paced by the
attachments quota OpenReview announces; what does not fit waits for a later window.

No lock is held while downloading. Every answer is checked (``archive``) before it is kept, as
a temporary file in ``files/`` that the commit renames into place; a failed download is only
recorded (its row waits for a later pass), never retried in a loop.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from orsync.errors import AccessError, RateLimitedError, UnreachableError
from orsync.hosted.archive import Refused, check_type, members, temp_in
from orsync.hosted.plan import Wanted
from orsync.logs import get_logger
from orsync.source import FileTooLarge, OpenReviewSource

log = get_logger("orsync.files")

BATCH_MAX = 50  # OpenReview's limit of ids per /attachment?ids= request
TICK_EVERY_S = 1.0  # the watchdog is told of progress at most this often while a file streams


class Stopped(Exception):
    """The service asked to stop while a file streamed: the file is left for a later pass."""


@dataclass
class Outcome:
    """What the downloads of one pass found, applied to the rows at commit."""

    ok: dict[tuple[str, str], tuple[Wanted, Path]] = field(default_factory=dict)
    refused: dict[tuple[str, str], tuple[Wanted, str]] = field(default_factory=dict)
    failed: dict[tuple[str, str], tuple[Wanted, str]] = field(default_factory=dict)


class Pacing:
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


def _batches(due: Sequence[Wanted]) -> Iterator[list[Wanted]]:
    by_field: dict[str, list[Wanted]] = {}
    for w in due:
        by_field.setdefault(w.field, []).append(w)
    yield from by_field.values()


class Downloader:
    """One pass's downloads: batches first, one by one for what a batch did not bring; stops
    when the quota, the service's stop or two failures in a row say so."""

    def __init__(
        self,
        source: OpenReviewSource,
        folder: Path,
        max_bytes: int,
        quota: Pacing,
    ) -> None:
        self.source = source
        self.folder = folder
        self.max_bytes = max_bytes
        self.quota = quota
        self.outcome = Outcome()
        self.requests = 0  # attachment requests sent, failed ones included
        self.should_stop: Callable[[], bool] | None = None
        self.tick: Callable[[], None] | None = None
        self._ticked = 0.0

    def _may_request(self) -> bool:
        if self.tick is not None:
            self.tick()  # the service's watchdog: each bounded request is progress
        if self.should_stop is not None and self.should_stop():
            return False
        left = self.quota.left()
        return left is None or left >= 1

    def _between_chunks(self) -> None:
        """Checked after every chunk of a file: the stop request, and the watchdog told."""
        if self.should_stop is not None and self.should_stop():
            raise Stopped()
        now = time.monotonic()
        if self.tick is not None and now - self._ticked >= TICK_EVERY_S:
            self._ticked = now
            self.tick()

    def _request(self, params: dict[str, str], sink: IO[bytes], max_bytes: int, what: str) -> str:
        self.requests += 1
        try:
            return self.source.download(params, sink, max_bytes, what, self._between_chunks)
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
                except Stopped:
                    log.info("hosted files: stopped while a file downloaded; it waits")
                    return

    def _fail(self, w: Wanted, why: str) -> None:
        self.outcome.failed[(w.forum_id, w.field)] = (w, why)

    def _refuse(self, w: Wanted, why: str) -> None:
        log.warning("hosted file refused", paper=w.number, field=w.field, reason=why)
        self.outcome.refused[(w.forum_id, w.field)] = (w, why)

    def _one(self, w: Wanted) -> bool:
        """One file by ``/attachment?id=``; False when the answer was unusable."""
        what = f"the {w.field} file of {w.label}"
        short = self._room(1)
        if short is not None:
            self._fail(w, short)
            return False
        with temp_in(self.folder) as (sink, path):
            try:
                self._request({"id": w.forum_id, "name": w.field}, sink, self.max_bytes, what)
            except FileTooLarge as exc:
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

    def _room(self, files: int) -> str | None:
        """None when the site's filesystem has room for what ``files`` files may need (a batch:
        its archive at its size cap, then its files as large again); else why not."""
        need = (2 if files > 1 else 1) * self.max_bytes * files
        free = shutil.disk_usage(self.folder).free
        if free >= need:
            return None
        return (
            f"not enough free space in {self.folder} ({free / 2**20:.0f} MiB free, "
            f"{files} file{'s' if files > 1 else ''} may need {need / 2**20:.0f} MiB at "
            "website.file_max_mb): free space on that filesystem"
        )

    def _batch(self, batch: list[Wanted]) -> None:
        short = self._room(len(batch))
        if short is None:
            self._archive(batch)
        else:
            # Skipped, not failed: one by one below, each file checked for its own room.
            log.warning("hosted files: batch skipped", files=len(batch), reason=short)
        self._rest_one_by_one(batch)

    def _archive(self, batch: list[Wanted]) -> None:
        """One batch request; its checked members into the outcome."""
        field_name = batch[0].field
        ids = ",".join(w.forum_id for w in batch)
        what = f"the {field_name} files of {len(batch)} papers"
        usable = False
        got: dict[str, Path] = {}
        with temp_in(self.folder) as (sink, path):
            try:
                self._request(
                    {"ids": ids, "name": field_name}, sink, self.max_bytes * len(batch), what
                )
                sink.flush()
                usable = True
            except FileTooLarge:
                log.warning("hosted files: batch answer over the size limit", files=len(batch))
            except (AccessError, UnreachableError) as exc:
                if isinstance(exc, RateLimitedError):
                    path.unlink(missing_ok=True)
                    raise
                log.warning("hosted files: batch answer failed", error=exc.message)
            if usable:
                try:
                    got, refused, strays = members(path, batch, self.folder, self.max_bytes)
                # Whatever reading it raised (MemoryError included): the archive is unusable.
                except Exception as exc:
                    log.warning(
                        "hosted files: batch answer is not a usable archive",
                        error=f"{type(exc).__name__}: {str(exc)[:200]}",
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

    def _rest_one_by_one(self, batch: list[Wanted]) -> None:
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
