"""One sync cycle: fetch from the source, apply to the store atomically, record the figures.

A full cycle walks every submission with its replies and tombstones whatever the source no
longer returns. An incremental cycle asks only for notes modified since the last watermark and
falls back to a full one when the server shows it ignored the bound (docs/architecture.md#sync-semantics).
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from sqlalchemy import Connection, Index, delete, insert, update

from orsync.errors import GuardError, Interrupted, OrsyncError, RateLimitedError
from orsync.logs import get_logger
from orsync.mirror.apply import Mirror
from orsync.mirror.child import PageBuilder
from orsync.mirror.rows import web_base
from orsync.mirror.walk import write_pages
from orsync.source import MintmdateIgnored
from orsync.store import Store
from orsync.store.binding import bind_venue, check_venue
from orsync.store.queries import (
    INTERRUPTED_ERROR,
    RATE_LIMITED_UNTIL,
    get_state,
    set_state,
    submissions_by_status,
)
from orsync.store.tables import CHANGE, CYCLE, NOTE, STATE
from orsync.venue import VenueSettings, well_formed

if TYPE_CHECKING:
    from orsync.source import OpenReviewSource

log = get_logger("orsync.sync")

# Re-read a margin before the watermark: a note committed late with an earlier tmdate is
# still caught, and notes read twice are recognised by their digest.
WATERMARK_OVERLAP_MS = 60_000

Progress = Callable[[int, int | None], None]
T = TypeVar("T")


@dataclass
class CycleOptions:
    venue_id: str
    baseurl: str
    full: bool = False
    force: bool = False
    full_every: int = 12
    max_delete_fraction: float = 0.5
    progress: Progress | None = None


@dataclass
class CycleSummary:
    cycle_id: int
    mode: str
    outcome: str
    started_at: str
    duration_s: float
    requests: int
    notes_seen: int
    created: int
    updated: int
    deleted: int
    malformed: int = 0
    fallback: str | None = None
    error: str | None = None
    by_status: dict[str, int] = field(default_factory=dict)
    # The rate-limit bucket with the fewest requests left seen in the cycle (local ISO time).
    quota_remaining: int | None = None
    quota_reset_at: str | None = None
    # Set when the cycle stopped for the rate limit: when to try again (local ISO time).
    rate_limited_until: str | None = None

    @property
    def changes(self) -> int:
        return self.created + self.updated + self.deleted

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "changes": self.changes}

    def line(self, *, for_status: bool = False) -> str:
        """The cycle in one line: as ``orsync pull`` prints it, or (``for_status``) as the
        service puts a good cycle in ``STATUS=`` and its log."""
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.by_status.items())) or "none"
        if for_status:
            return (
                f"cycle {self.cycle_id} ok ({self.mode}): {self.created} created, "
                f"{self.updated} updated, {self.deleted} deleted, {self.requests} "
                f"requests, {self.duration_s:.1f}s; submissions: {counts}"
            )
        return (
            f"{self.mode} cycle {self.cycle_id}: {self.created} created, {self.updated} "
            f"updated, {self.deleted} deleted in {self.duration_s:.1f}s "
            f"({self.requests} requests). Submissions: {counts}."
        )

    def figures(self) -> dict[str, Any]:
        """What a cycle is judged by: kept in the ``cycle`` table and logged once per cycle."""
        return {
            "mode": self.mode,
            "outcome": self.outcome,
            "requests": self.requests,
            "notes_seen": self.notes_seen,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "duration_s": self.duration_s,
            "quota_remaining": self.quota_remaining,
            "quota_reset_at": self.quota_reset_at,
        }


_SUMMARY_ATTR = "orsync_cycle_summary"


def attach_summary(exc: BaseException, summary: CycleSummary) -> None:
    """A failed cycle raises with its summary, so nobody re-reads the store to learn it."""
    with contextlib.suppress(AttributeError):  # exceptions without a __dict__ (rare builtins)
        setattr(exc, _SUMMARY_ATTR, summary)
    if isinstance(exc, OrsyncError):
        exc.details.setdefault("cycle", summary.as_dict())


def summary_of(exc: BaseException) -> CycleSummary | None:
    """The summary of the cycle that raised ``exc``, if a cycle was recorded at all."""
    found = getattr(exc, _SUMMARY_ATTR, None)
    return found if isinstance(found, CycleSummary) else None


def run_cycle(store: Store, source: OpenReviewSource, options: CycleOptions) -> CycleSummary:
    """Run one cycle; on failure the store is unchanged, the failure is recorded, and the
    exception carries the cycle's summary (``summary_of``)."""
    # Only a cycle needs the client (openreview-py, requests); readers of this module do not.

    started = datetime.now(UTC)
    clock = time.monotonic()
    requests_before = source.requests
    with store.begin() as conn:
        # Before anything is fetched: a store of another venue is refused (exit 5) even when
        # the caller opened it for an earlier config (the service re-reading its own).
        check_venue(conn, options.venue_id)
        watermark = get_state(conn, "watermark_ms")
        since_full = int(get_state(conn, "cycles_since_full") or 0)
        # A migration that needs every forum recomputed asks for a full cycle.
        required = get_state(conn, "full_required")
        full = (
            options.full
            or watermark is None
            or required is not None
            or since_full + 1 >= options.full_every
        )
        # Under the writer lock no other cycle runs: a row still "running" is one whose
        # process died (kill -9, power cut) and never closed it.
        conn.execute(
            update(CYCLE)
            .where(CYCLE.c.outcome == "running")
            .values(outcome="interrupted", error=INTERRUPTED_ERROR)
        )
        inserted = conn.execute(
            insert(CYCLE).values(started_at=started, mode="full" if full else "incremental")
        ).inserted_primary_key
        assert inserted is not None
        cycle_id = int(inserted[0])
    summary = CycleSummary(
        cycle_id=cycle_id,
        mode="full" if full else "incremental",
        outcome="running",
        started_at=started.isoformat(timespec="seconds"),
        duration_s=0.0,
        requests=0,
        notes_seen=0,
        created=0,
        updated=0,
        deleted=0,
    )
    # Every log event of the cycle carries its id: the real one, known from here on.
    with structlog.contextvars.bound_contextvars(cycle_id=cycle_id):
        try:
            source.connect()
            settings = VenueSettings.from_group(source.venue_group(options.venue_id))
            with store.begin() as conn:
                mirror = Mirror(conn, cycle_id, settings, web_base(options.baseurl), now=started)
                if full:
                    mirror.load_index()
                else:
                    assert watermark is not None
                    try:
                        _incremental(mirror, source, options, int(watermark))
                    except MintmdateIgnored:
                        summary.fallback = "the server ignored mintmdate; ran a full cycle"
                        full = True
                        summary.mode = "full"
                        mirror = Mirror(
                            conn, cycle_id, settings, web_base(options.baseurl), now=started
                        )
                        mirror.load_index()
                if full:
                    _full(mirror, source, options, settings)
                set_state(conn, "cycles_since_full", "0" if full else str(since_full + 1))
                if full:
                    conn.execute(delete(STATE).where(STATE.c.key == "full_required"))
                if mirror.max_tmdate:
                    previous = int(watermark or 0)
                    set_state(conn, "watermark_ms", str(max(previous, mirror.max_tmdate)))
                elif watermark is None:
                    set_state(conn, "watermark_ms", "0")
                summary.created = mirror.counts.created
                summary.updated = mirror.counts.updated
                summary.deleted = mirror.counts.deleted
                summary.notes_seen = mirror.counts.seen
                summary.malformed = mirror.counts.malformed
                summary.by_status = submissions_by_status(conn)
                summary.outcome = "ok"
                bind_venue(conn, options.venue_id)
                conn.execute(delete(STATE).where(STATE.c.key == RATE_LIMITED_UNTIL))
                _finish(conn, summary, source, requests_before, clock)
        except BaseException as exc:
            summary.outcome = "refused" if isinstance(exc, GuardError) else "failed"
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                summary.outcome = "interrupted"
            summary.error = exc.message if isinstance(exc, OrsyncError) else exc.__class__.__name__
            until = None
            if isinstance(exc, RateLimitedError):
                # Stopped by orsync itself to keep the reserve: deferred, not failed. Either
                # way the error text names the time and the sync_state key keeps it.
                if exc.deferred:
                    summary.outcome = "deferred"
                until = datetime.fromtimestamp(exc.resume_at, UTC)
                summary.rate_limited_until = until.astimezone().isoformat(timespec="seconds")
            try:
                with store.begin() as conn:
                    if until is not None:
                        set_state(conn, RATE_LIMITED_UNTIL, until.isoformat(timespec="seconds"))
                    _finish(conn, summary, source, requests_before, clock)
            except OrsyncError:
                pass  # the store itself is failing; the original error is the one to report
            attach_summary(exc, summary)
            if type(exc) is KeyboardInterrupt:
                # Ctrl-C (the service's own stop is a subclass and stays what it is): the
                # transaction is rolled back by now, which is what the user needs to hear.
                raise Interrupted("interrupted; the cycle was rolled back") from exc
            raise
    return summary


def _finish(
    conn: Connection,
    summary: CycleSummary,
    source: OpenReviewSource,
    requests_before: int,
    clock: float,
) -> None:
    summary.requests = source.requests - requests_before
    summary.duration_s = round(time.monotonic() - clock, 3)
    quota = source.lowest_quota(requests_before)
    reset_at = None
    if quota is not None:
        summary.quota_remaining = quota.remaining
        if quota.reset_at is not None:
            reset_at = datetime.fromtimestamp(quota.reset_at, UTC)
            summary.quota_reset_at = reset_at.astimezone().isoformat(timespec="seconds")
    conn.execute(
        update(CYCLE)
        .where(CYCLE.c.id == summary.cycle_id)
        .values(
            **{**summary.figures(), "quota_reset_at": reset_at},
            finished_at=datetime.now(UTC),
            error=summary.error,
        )
    )


def _guard(mirror: Mirror, doomed: int, options: CycleOptions) -> None:
    known = mirror.live_at_start
    if options.force or known == 0:
        return
    if doomed / known > options.max_delete_fraction:
        # The venue first: an empty answer most often means the config names another venue
        # (or one the account cannot read), not that the papers went.
        answer = (
            f"venue {options.venue_id} answered no submissions"
            if doomed >= known
            else f"venue {options.venue_id} answered without {doomed} of its submissions"
        )
        raise GuardError(
            f"{answer}: refusing to delete {doomed} of {known} known submissions "
            f"(more than sync.max_delete_fraction = {options.max_delete_fraction}); the answer "
            "looks empty or truncated, nothing was changed. Check openreview.venue_id and the "
            "account's access, or rerun with --force if it is real"
        )


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection during a full walk.

    Parsing a page and building its rows makes millions of objects that stay alive a while;
    the collector would traverse them again and again (it more than doubles the time to parse
    a page) and find nothing: JSON values and rows hold no reference cycles. Reference counting
    still frees every page once stored; the few cycles a walk makes wait until it ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def read_ahead(walk: Callable[[threading.Event], Iterator[T]]) -> Iterator[Iterator[T]]:
    """The items of ``walk``, each fetched in one background thread while the previous one is
    used: a full cycle stores a page while the next one downloads.

    Bounded: one worker, one item ahead (the worker fetches the next page only once the
    current one has been taken), so at most two pages live at a time, as without it. The
    worker runs in the caller's context (the cycle's log fields), and whatever it raises —
    an unreachable server, the rate limit, ``CycleInterrupted`` from the service's retry
    sleep — is raised to the caller at the page it stopped at. Leaving the block in any way
    (the last page, an error, a stop between pages) sets ``walk``'s stop event, which ends a
    retry back-off at once, and waits for the worker: at most the request in flight (bounded
    by ``openreview.timeout_s``), so nothing is left reading the session after the cycle.
    """
    stop = threading.Event()
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)
    items = walk(stop)

    def work() -> None:
        try:
            for item in items:
                box.put((False, item))
                del item  # the taker owns it now
                box.join()  # one item ahead: wait until it was taken
                if stop.is_set():
                    return
            box.put((True, None))
        except BaseException as exc:
            box.put((True, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def taken() -> Iterator[T]:
        while True:
            done, item = box.get()
            box.task_done()
            if done:
                if item is not None:
                    raise item
                return
            yield item
            del item

    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(work,), name="orsync-read-ahead")
    worker.daemon = True
    worker.start()
    try:
        yield taken()
    finally:
        stop.set()
        # The worker puts at most one more item after seeing nothing taken: take it.
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                box.get(timeout=0.05)
                box.task_done()
        worker.join()


def _full(
    mirror: Mirror, source: OpenReviewSource, options: CycleOptions, settings: VenueSettings
) -> None:
    invitation = settings.submission_invitation
    deferred = _defer_indexes(mirror)
    # Into an empty store child processes parse and build the pages (``mirror/walk.py``).
    builders = row_builders()
    builder = PageBuilder(mirror.rules(), builders) if mirror.fresh and builders else None
    read = builder.read_page if builder is not None else None
    # The worker only downloads (and, without the children, parses: orjson, one call a page).
    # Building rows stays out of it: Python work in the worker would hold the GIL against
    # every row the store writes (sqlite3 takes it back after each row), which measured slower
    # than no read-ahead at all.
    with (
        builder if builder is not None else contextlib.nullcontext(),
        _cyclic_gc_paused(),
        read_ahead(lambda stop: source.submission_pages(invitation, stop=stop, read=read)) as pages,
    ):
        write_pages(mirror, pages, builder, options.progress)
    if builder is not None and builder.failed:
        log.warning("rows built in-process", reason=builder.failed)
    mirror.record_created()  # before the indexes: its rows are sorted into them once too
    for index in deferred:
        index.create(mirror.conn)
    unseen = mirror.unseen()
    doomed = sum(1 for i in unseen if i in mirror.submission_ids)
    # Submissions that came back with a ddate count as deletions too.
    _guard(mirror, doomed + mirror.counts.deleted_submissions, options)
    mirror.tombstone(unseen)


def row_builders() -> int:
    """How many child processes build a first pull's rows: two where this process may use two
    cores or more (the children take turns by page, this process writes: measured fastest on
    two cores, docs/benchmarks.md), none on one core, where they would only add their copying."""
    # The cores this process may run on (Linux); elsewhere, the machine's.
    affinity = getattr(os, "sched_getaffinity", None)
    cores = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    return 2 if cores >= 2 else 0


def _defer_indexes(mirror: Mirror) -> list[Index]:
    """Into an empty store, the notes' and changes' secondary indexes are dropped and built
    once after the last page: sorting 100,000 keys once beats updating the indexes row by row
    (8% of a first pull's CPU at ICLR scale). Inside the cycle's transaction, like the rows:
    a pull killed before its commit leaves the store as it was, indexes included."""
    if not mirror.fresh:
        return []
    indexes = sorted((i for t in (NOTE, CHANGE) for i in t.indexes), key=lambda i: str(i.name))
    for index in indexes:
        index.drop(mirror.conn)
    return indexes


def _is_venue_submission(mirror: Mirror, note: dict[str, Any]) -> bool:
    invitations = note.get("invitations")
    return (
        mirror.kind_of(note) == "submission"
        and isinstance(invitations, list)
        and mirror.settings.submission_invitation in invitations
    )


def _incremental(
    mirror: Mirror, source: OpenReviewSource, options: CycleOptions, watermark: int
) -> None:
    since = max(0, watermark - WATERMARK_OVERLAP_MS)
    for answer in source.changed_notes(options.venue_id, since):
        page = [n for n in answer if well_formed(n)]
        mirror.counts.malformed += len(answer) - len(page)
        mirror.prefetch(str(n.get("forum")) for n in page)
        # Only what a full cycle would mirror: the venue's submissions, and replies to them.
        submissions = {str(n["id"]) for n in page if _is_venue_submission(mirror, n)}
        wanted = [
            n
            for n in page
            if str(n["id"]) in submissions
            or mirror.knows_submission(str(n.get("forum")))
            or str(n.get("forum")) in submissions
        ]
        mirror.apply(wanted)
    _guard(mirror, mirror.counts.deleted_submissions, options)
