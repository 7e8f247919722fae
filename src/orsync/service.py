"""``orsync run``: the long-running service that keeps the mirror fresh (SPEC §2, §4, §7).

One loop, in the main thread::

    open the store → READY=1 → [ lock → cycle → unlock → push → STATUS= → sleep ]*  → exit 0

Decisions worth knowing:

- **Stopping.** SIGTERM/SIGINT set a stop event and nothing else. A cycle in progress is aborted
  at the next *safe point* — between two pages of a full walk, or in a retry back-off sleep —
  by raising :class:`CycleInterrupted` out of ``run_cycle``; the cycle's single transaction is
  rolled back, so the store is exactly as before the cycle (``run_cycle`` records it as
  ``interrupted``). Nothing is ever raised inside a database statement or a commit: a signal that
  arrives during the commit lets it complete. Letting every cycle finish was rejected because a
  full reconciliation of a main-conference venue takes minutes and a failing network can keep a
  cycle retrying for up to ``RetryPolicy.max_total_s``, both beyond ``TimeoutStopSec=``. An
  incremental cycle (a couple of requests) has no page boundary to stop at and simply finishes.
- **Signals are never handled in a Python signal handler.** Taking any lock in one (even
  ``threading.Event.set``) can deadlock against the interrupted main thread. The handlers are
  no-ops; ``signal.set_wakeup_fd`` makes the interpreter write the signal number to a socket, and
  a small thread reads it and sets events / sends ``STOPPING=1`` and ``RELOADING=1`` at once.
- **SIGHUP** re-reads the config after the current cycle (never in the middle of one); a bad new
  config is logged and the running one kept; ``READY=1`` follows either way. A good reload runs a
  cycle right away. The source is rebuilt on reload (the password may have been rotated).
- **Failures** never end the service, with two exceptions at start-up: an invalid config exits
  2, and credentials or a venue rejected before the first successful cycle exit 4 (restarting
  cannot fix those and retrying a wrong password may lock the account; the units set
  ``RestartPreventExitStatus=2 4``). Store open failure exits 5. Everything else — unreachable
  API, refused (guard) cycles, a busy store, an access error after a good start, even an
  unexpected bug — is logged, recorded in the ``cycle`` table by ``run_cycle`` (so ``orsync
  status`` shows it), and retried after ``min(interval, 5·2^(n-1))`` seconds with jitter.
- **Watchdog.** ``WATCHDOG=1`` is sent from a thread while the loop shows progress: the main loop
  beats while sleeping, waiting for the lock, between pages and in retry sleeps, and every HTTP
  request counts too. A failing network is healthy (it retries and beats); a loop that shows no
  progress for ``stall_s`` (default ``max(180, 4 × openreview.timeout_s)``) is not, so systemd
  kills and restarts it.
- **Lock.** The writer lock is held only around ``run_cycle``: ``orsync pull --no-wait`` during a
  cycle exits 75 and between cycles succeeds. The push takes the lock itself afterwards.
- **Logs.** JSON lines on stdout (journald) unless stdout is a terminal; every event carries
  ``venue`` and ``cycle_id`` (``None`` outside cycles); exactly one ``event="cycle"`` summary
  per cycle. Every print of any library becomes a JSON event (``redirect_prints_to_log``).
"""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, cast

import structlog
from sqlalchemy import func, select

from orsync import ops
from orsync.config import Config, find_config, load_config
from orsync.errors import (
    EXIT_ACCESS,
    EXIT_OK,
    EXIT_STORE,
    EXIT_USAGE,
    AccessError,
    ConfigError,
    LockedError,
    OrsyncError,
    StoreError,
)
from orsync.lock import store_writer
from orsync.logs import LogFormat, configure_logging, get_logger, redirect_prints_to_log
from orsync.notify import Notifier, WatchdogPinger
from orsync.source import OpenReviewSource
from orsync.store import Store, open_store
from orsync.store.tables import CYCLE
from orsync.sync import CycleSummary, run_cycle

__all__ = ["CycleInterrupted", "Service", "backoff_s", "run_service"]

log = get_logger("orsync.service")

BACKOFF_BASE_S = 5.0
STALL_MIN_S = 180.0
LOCK_POLL_S = 1.0  # how long one attempt at the writer lock waits before checking for a stop
PUSH_LOCK_WAIT_S = 60.0
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class CycleInterrupted(KeyboardInterrupt):
    """Raised at a safe point of a cycle once a stop was requested; the cycle rolls back.

    A ``KeyboardInterrupt`` so that no ``except Exception`` on the way (tenacity, libraries)
    swallows it, and so that ``run_cycle`` records the cycle as ``interrupted``.
    """


def backoff_s(failures: int, interval_s: float, rng: random.Random | None = None) -> float:
    """Delay after ``failures`` failed cycles in a row: jittered, doubling, capped at the interval."""
    ceiling = min(interval_s, BACKOFF_BASE_S * 2 ** max(0, failures - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


def run_service(config_path: Path | None, *, log_format: str = "auto", verbosity: int = 0) -> int:
    """Run the service until SIGTERM/SIGINT; the exit code per SPEC §2."""
    fmt = cast(LogFormat, log_format if log_format in ("json", "console") else "auto")
    configure_logging(fmt, verbosity, stream=sys.stdout)
    with redirect_prints_to_log():
        return Service(config_path).run()


class _Fatal(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Outcome:
    ok: bool
    text: str
    interrupted: bool = False


class Service:
    """The state of one ``orsync run``: config, store, source, signals, health."""

    def __init__(
        self,
        config_path: Path | None,
        *,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.monotonic,
        stall_s: float | None = None,
    ) -> None:
        self.config_path = config_path
        self.notifier = notifier if notifier is not None else Notifier.from_environ()
        self._clock = clock
        self._stall_override = stall_s
        self.stall_s = stall_s if stall_s is not None else STALL_MIN_S
        self.config: Config | None = None
        self.path: Path | None = None
        self.store: Store | None = None
        self.source: OpenReviewSource | None = None
        self.stop_event = threading.Event()
        self._wake = threading.Event()  # cuts a sleep short (stop or reload)
        self._reload_requested = threading.Event()
        self._stopping_sent = False
        self._notify_lock = threading.Lock()
        self._last_beat = clock()
        self._seen_requests = -1
        self._good_start = False
        self._failures = 0
        self._cycles = 0
        self._last_ok: str | None = None

    # -- health ---------------------------------------------------------------------------------

    def beat(self) -> None:
        """The loop made progress."""
        self._last_beat = self._clock()

    def healthy(self) -> bool:
        """For the watchdog thread: has the loop shown progress within ``stall_s``?"""
        source = self.source
        if source is not None and source.requests != self._seen_requests:
            self._seen_requests = source.requests
            self.beat()
        return self._clock() - self._last_beat <= self.stall_s

    # -- signals --------------------------------------------------------------------------------

    def request_stop(self) -> None:
        with self._notify_lock:
            if not self._stopping_sent:
                self._stopping_sent = True
                self.notifier.stopping()
        self.stop_event.set()
        self._wake.set()

    def request_reload(self) -> None:
        self.notifier.reloading()
        self._reload_requested.set()
        self._wake.set()

    def _on_signal(self, signum: int) -> None:
        venue = self.config.openreview.venue_id if self.config is not None else None
        with structlog.contextvars.bound_contextvars(venue=venue, cycle_id=None):
            self._handle_signal(signum)

    def _handle_signal(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            log.info("SIGHUP: the configuration will be re-read after the current cycle")
            self.request_reload()
        elif signum in (signal.SIGTERM, signal.SIGINT):
            log.info("stop requested", signal=signal.Signals(signum).name)
            self.request_stop()

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """Route SIGTERM/SIGINT/SIGHUP to :meth:`_on_signal` in a thread (see module doc)."""
        if threading.current_thread() is not threading.main_thread():
            yield  # embedded in a thread (tests): the caller stops us via request_stop()
            return
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        reader.settimeout(None)

        def no_op(signum: int, frame: FrameType | None) -> None:
            pass  # the wakeup fd carries the signal; nothing may be done here (module doc)

        previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        previous = {sig: signal.signal(sig, no_op) for sig in _SIGNALS}

        def watch() -> None:
            while True:
                try:
                    data = reader.recv(64)
                except OSError:
                    return
                if not data:
                    return
                for signum in data:
                    if signum == 0:
                        return  # our own shutdown byte
                    self._on_signal(signum)

        thread = threading.Thread(target=watch, name="orsync-signals", daemon=True)
        thread.start()
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_fd)
            with contextlib.suppress(OSError):
                writer.send(b"\0")
            thread.join(2.0)
            reader.close()
            writer.close()

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> int:
        pinger = WatchdogPinger(self.notifier, self.healthy)
        pinger.start()
        structlog.contextvars.bind_contextvars(venue=None, cycle_id=None)
        try:
            with self._signals():
                try:
                    self._start()
                    return self._loop()
                except _Fatal as fatal:
                    return fatal.code
        finally:
            if not self._stopping_sent:
                self._stopping_sent = True
                self.notifier.stopping()
            pinger.stop()
            if self.store is not None:
                self.store.dispose()
            log.info("service stopped")
            self.notifier.close()
            structlog.contextvars.unbind_contextvars("venue", "cycle_id")

    def _start(self) -> None:
        try:
            self.path = find_config(self.config_path)
            config = load_config(self.path)
            structlog.contextvars.bind_contextvars(venue=config.openreview.venue_id)
            self.source = self._make_source(config)
        except ConfigError as exc:
            log.error("invalid configuration; not starting", error=exc.message)
            raise _Fatal(EXIT_USAGE) from None
        self._apply_config(config)
        try:
            self.store = open_store(config.store.url)
        except StoreError as exc:
            log.error("cannot open the store; not starting", error=exc.message)
            raise _Fatal(EXIT_STORE) from None
        log.info(
            "service started",
            store=self.store.describe(),
            interval_s=config.sync.interval_s,
            jitter_s=config.sync.jitter_s,
            full_every=config.sync.full_every,
            website=str(config.website.output_dir) if config.website else None,
            account=config.openreview.username or "guest",
        )
        self.notifier.ready(status="store open; first cycle starting")

    def _apply_config(self, config: Config) -> None:
        self.config = config
        if self._stall_override is None:
            self.stall_s = max(STALL_MIN_S, 4 * config.openreview.timeout_s)

    def _make_source(self, config: Config) -> OpenReviewSource:
        return ops.make_source(config, sleep=self._retry_sleep, on_retry=self._on_retry)

    def _loop(self) -> int:
        while not self.stop_event.is_set():
            if self._reload_requested.is_set():
                self._reload()
            outcome = self._cycle_and_push()
            if outcome.interrupted or self.stop_event.is_set():
                break
            assert self.config is not None
            sync = self.config.sync
            if outcome.ok:
                delay = sync.interval_s + random.uniform(0, sync.jitter_s)
            else:
                delay = backoff_s(self._failures, sync.interval_s)
            status = f"{outcome.text}; next cycle in {delay:.0f}s"
            if not outcome.ok and self._last_ok:
                status += f"; last success {self._last_ok}"
            self.notifier.status(status)
            self._sleep(delay)
        return EXIT_OK

    def _sleep(self, seconds: float) -> None:
        """Sleep between cycles; a stop or a reload request wakes it at once."""
        deadline = self._clock() + seconds
        self._wake.clear()
        if self.stop_event.is_set() or self._reload_requested.is_set():
            return
        while True:
            self.beat()
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            if self._wake.wait(min(remaining, self.stall_s / 4)):
                return

    def _retry_sleep(self, seconds: float) -> None:
        """The source's back-off sleep: interruptible, and a safe point to abort the cycle."""
        deadline = self._clock() + seconds
        while True:
            self.beat()
            if self.stop_event.is_set():
                raise CycleInterrupted()
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            self.stop_event.wait(min(remaining, self.stall_s / 4))

    def _on_retry(self, error: str, wait_s: float) -> None:
        self.beat()
        log.warning("OpenReview request failed; retrying", error=error, retry_in_s=round(wait_s, 2))

    def _progress(self, done: int, total: int | None) -> None:
        """Called by a full cycle after each page is applied: a safe point to stop."""
        self.beat()
        if self.stop_event.is_set():
            raise CycleInterrupted()

    # -- one cycle ------------------------------------------------------------------------------

    def _cycle_and_push(self) -> _Outcome:
        assert self.config is not None and self.store is not None and self.source is not None
        config, store, source = self.config, self.store, self.source
        with contextlib.ExitStack() as held:
            if not self._acquire(held, config, store):
                return _Outcome(False, "stopped while waiting for the writer lock", True)
            predicted = self._next_cycle_id(store)
            with structlog.contextvars.bound_contextvars(cycle_id=predicted):
                requests_before = source.requests
                started = time.monotonic()
                try:
                    summary = run_cycle(
                        store, source, ops.cycle_options(config, progress=self._progress)
                    )
                except CycleInterrupted:
                    held.close()
                    self._log_failed(store, predicted, source, requests_before, started, None)
                    return _Outcome(False, "stopped during a cycle (rolled back)", True)
                except Exception as exc:
                    held.close()
                    return self._failed(exc, store, predicted, source, requests_before, started)
        with structlog.contextvars.bound_contextvars(cycle_id=summary.cycle_id):
            self._log_summary(summary)
            self._good_start = True
            self._failures = 0
            self._cycles += 1
            self._last_ok = summary.started_at
            text = (
                f"cycle {summary.cycle_id} ok ({summary.mode}): {summary.created} created, "
                f"{summary.updated} updated, {summary.deleted} deleted, {summary.requests} "
                f"requests, {summary.duration_s:.1f}s; submissions: "
                + (", ".join(f"{n} {s}" for s, n in sorted(summary.by_status.items())) or "none")
            )
            if config.website is not None and not self.stop_event.is_set():
                text += self._push(config, summary.cycle_id)
        return _Outcome(True, text)

    def _acquire(self, held: contextlib.ExitStack, config: Config, store: Store) -> bool:
        announced = False
        while not self.stop_event.is_set():
            self.beat()
            try:
                held.enter_context(store_writer(store, wait_s=LOCK_POLL_S, command="run"))
                return True
            except LockedError as exc:
                if not announced:
                    log.info("waiting for the writer lock", holder=exc.message)
                    announced = True
        return False

    @staticmethod
    def _next_cycle_id(store: Store) -> int | None:
        # Under the writer lock only run_cycle inserts cycles, so this is the id it will get;
        # the summary event carries the real one either way.
        try:
            with store.connect() as conn:
                return int(conn.execute(select(func.max(CYCLE.c.id))).scalar() or 0) + 1
        except OrsyncError:
            return None

    def _failed(
        self,
        exc: Exception,
        store: Store,
        predicted: int | None,
        source: OpenReviewSource,
        requests_before: int,
        started: float,
    ) -> _Outcome:
        self._failures += 1
        message = exc.message if isinstance(exc, OrsyncError) else f"{type(exc).__name__}: {exc}"
        self._log_failed(store, predicted, source, requests_before, started, message)
        if isinstance(exc, AccessError) and not self._good_start:
            log.error(
                "OpenReview rejected the account or the venue before any successful cycle; "
                "not retrying (fix the config or the password, then restart)",
                error=message,
            )
            raise _Fatal(EXIT_ACCESS)
        if isinstance(exc, OrsyncError):
            log.warning("cycle failed; backing off", error=message, failures=self._failures)
        else:
            log.error(
                "cycle failed unexpectedly; backing off",
                failures=self._failures,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
        return _Outcome(False, f"cycle failed ({self._failures} in a row): {message}")

    def _log_failed(
        self,
        store: Store,
        predicted: int | None,
        source: OpenReviewSource,
        requests_before: int,
        started: float,
        message: str | None,
    ) -> None:
        """The one summary event of a cycle that raised, from what run_cycle recorded."""
        row: dict[str, Any] | None = None
        if predicted is not None:
            try:
                with store.connect() as conn:
                    found = conn.execute(
                        select(CYCLE).where(CYCLE.c.id >= predicted).order_by(CYCLE.c.id.desc())
                    ).first()
                row = dict(found._mapping) if found is not None else None
            except OrsyncError:
                row = None
        if row is None:  # the store failed before the cycle was even recorded
            row = {
                "id": None,
                "mode": None,
                "outcome": "interrupted" if message is None else "failed",
                "requests": source.requests - requests_before,
                "notes_seen": 0,
                "created": 0,
                "updated": 0,
                "deleted": 0,
                "duration_s": round(time.monotonic() - started, 3),
                "error": message,
            }
        with structlog.contextvars.bound_contextvars(cycle_id=row["id"]):
            log.log(
                20 if row["outcome"] == "interrupted" else 30,
                "cycle",
                mode=row["mode"],
                outcome=row["outcome"],
                requests=row["requests"],
                notes_seen=row["notes_seen"],
                created=row["created"],
                updated=row["updated"],
                deleted=row["deleted"],
                duration_s=row["duration_s"],
                error=row["error"] or message,
            )

    @staticmethod
    def _log_summary(summary: CycleSummary) -> None:
        log.info(
            "cycle", **summary.figures(), fallback=summary.fallback, submissions=summary.by_status
        )

    def _push(self, config: Config, cycle_id: int) -> str:
        from orsync import publish

        self.beat()
        try:
            result = publish.push(
                config,
                wait_s=PUSH_LOCK_WAIT_S,
                command="run",
                cycle_id=cycle_id,
                should_stop=self.stop_event.is_set,  # SIGTERM kills a running on_change hook
                tick=self.beat,
            )
        except OrsyncError as exc:
            log.warning("website push failed", error=exc.message)
            return f"; website push failed: {exc.message}"
        except Exception as exc:
            log.error(
                "website push failed unexpectedly", exc_info=(type(exc), exc, exc.__traceback__)
            )
            return f"; website push failed: {type(exc).__name__}"
        finally:
            self.beat()
        if result.changed:
            log.info("website updated", files=result.changed)
            return f"; website: wrote {', '.join(result.changed)}"
        return ""

    # -- reload ---------------------------------------------------------------------------------

    def _reload(self) -> None:
        self._reload_requested.clear()
        assert self.path is not None and self.config is not None
        old = self.config
        try:
            new = load_config(self.path)
            source = self._make_source(new)
        except ConfigError as exc:
            log.error("reload failed; keeping the running configuration", error=exc.message)
            self.notifier.ready(status=f"reload failed, running the previous config: {exc.message}")
            return
        store = self.store
        if new.store.url != old.store.url:
            try:
                store = open_store(new.store.url)
            except StoreError as exc:
                log.error("reload failed; keeping the running configuration", error=exc.message)
                self.notifier.ready(
                    status=f"reload failed, running the previous config: {exc.message}"
                )
                return
            if self.store is not None:
                self.store.dispose()
        changed = sorted(
            name
            for name in type(new).model_fields
            if name != "source" and getattr(new, name) != getattr(old, name)
        )
        self.store = store
        self.source = source
        self._apply_config(new)
        structlog.contextvars.bind_contextvars(venue=new.openreview.venue_id)
        log.info("configuration reloaded", path=str(self.path), changed=changed)
        self.notifier.ready(status="configuration reloaded")
