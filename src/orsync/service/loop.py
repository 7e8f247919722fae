"""The service's loop: start, cycle and push through the pipeline, report, sleep, reload.

See the package docstring for the decisions (stopping, signals, failures, watchdog, lock).
"""

from __future__ import annotations

import contextlib
import ctypes
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import structlog

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
    RateLimitedError,
    StoreError,
    local_time,
)
from orsync.lock import store_writer
from orsync.logs import LogFormat, configure_logging, get_logger
from orsync.notify import Notifier, WatchdogPinger
from orsync.pipeline import PassOptions, PassResult, make_source, run_pass
from orsync.prints import redirect_prints_to_log
from orsync.service.health import STALL_MIN_S, Health, backoff_s, stall_for
from orsync.service.signals import routed_signals
from orsync.source import OpenReviewSource
from orsync.store import Store
from orsync.store.binding import open_for
from orsync.sync import CycleSummary, summary_of

__all__ = ["CycleInterrupted", "Service", "run_service"]

log = get_logger("orsync.service")

LOCK_POLL_S = 1.0  # how long one attempt at the writer lock waits before checking for a stop
PUSH_LOCK_WAIT_S = 60.0
RATE_LIMIT_MARGIN_S = 1.0  # after the announced reset, before the jitter
RATE_LIMIT_JITTER_MAX_S = 60.0


def _trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; None elsewhere (musl, macOS)."""
    try:
        libc = ctypes.CDLL(None)
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_MALLOC_TRIM = _trim()


def _give_back_memory() -> None:
    """Before sleeping: the pages a cycle's push freed go back to the system. glibc keeps freed
    heap for reuse, so a service that rendered a site once would sit on that peak for weeks."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class CycleInterrupted(KeyboardInterrupt):
    """Raised at a safe point of a cycle once a stop was requested; the cycle rolls back.

    A ``KeyboardInterrupt`` so that no ``except Exception`` on the way (tenacity, libraries)
    swallows it, and so that ``run_cycle`` records the cycle as ``interrupted``.
    """


def run_service(config_path: Path | None, *, log_format: str = "auto", verbosity: int = 0) -> int:
    """Run the service until SIGTERM/SIGINT; the exit code per docs/cli.md."""
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
    delay_s: float | None = None  # the next cycle's delay when the server decides it


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
        self.health = Health(clock, stall_s if stall_s is not None else STALL_MIN_S)
        self.config: Config | None = None
        self.path: Path | None = None
        self.store: Store | None = None
        self.source: OpenReviewSource | None = None
        self.stop_event = threading.Event()
        self._wake = threading.Event()  # cuts a sleep short (stop or reload)
        self._reload_requested = threading.Event()
        self._stopping_sent = False
        self._notify_lock = threading.Lock()
        self._good_start = False
        self._failures = 0
        self._last_ok: str | None = None

    # -- health ---------------------------------------------------------------------------------

    def beat(self) -> None:
        """The loop made progress."""
        self.health.beat()

    def healthy(self) -> bool:
        """For the watchdog thread: has the loop shown progress within ``stall_s``?"""
        source = self.source
        return self.health.healthy(source.requests if source is not None else None)

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

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> int:
        pinger = WatchdogPinger(self.notifier, self.healthy)
        pinger.start()
        structlog.contextvars.bind_contextvars(venue=None, cycle_id=None)
        try:
            with routed_signals(self._on_signal):
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
            self.store = open_for(config)
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
            self.health.stall_s = stall_for(config.openreview.timeout_s)

    def _make_source(self, config: Config) -> OpenReviewSource:
        return make_source(config, sleep=self._retry_sleep, on_retry=self._on_retry)

    def _loop(self) -> int:
        while not self.stop_event.is_set():
            if self._reload_requested.is_set():
                self._reload()
            outcome = self._cycle_and_push()
            if outcome.interrupted or self.stop_event.is_set():
                break
            assert self.config is not None
            sync = self.config.sync
            if outcome.delay_s is not None:
                delay = outcome.delay_s
            elif outcome.ok:
                delay = sync.interval_s + random.uniform(0, sync.jitter_s)
            else:
                delay = backoff_s(self._failures, sync.interval_s)
            status = f"{outcome.text}; next cycle in {delay:.0f}s"
            if not outcome.ok and self._last_ok:
                status += f"; last success {self._last_ok}"
            self.notifier.status(status)
            _give_back_memory()
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
            if self._wake.wait(min(remaining, self.health.stall_s / 4)):
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
            self.stop_event.wait(min(remaining, self.health.stall_s / 4))

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
        options = PassOptions(
            command="run",
            wait_s=PUSH_LOCK_WAIT_S,
            progress=self._progress,
            should_stop=self.stop_event.is_set,  # SIGTERM kills a running on_change hook
            tick=self.beat,
        )
        try:
            result = run_pass(config, store, source, options, lock=lambda: self._writer_lock(store))
        except CycleInterrupted as exc:
            summary = summary_of(exc)
            if summary is None:
                return _Outcome(False, "stopped while waiting for the writer lock", True)
            self._log_failed(summary)
            return _Outcome(False, "stopped during a cycle (rolled back)", True)
        except Exception as exc:
            return self._failed(exc, summary_of(exc))
        summary = result.cycle
        with structlog.contextvars.bound_contextvars(cycle_id=summary.cycle_id):
            self._log_summary(summary)
            self._good_start = True
            self._failures = 0
            self._last_ok = summary.started_at
            text = summary.line(for_status=True) + self._stages_text(result)
        return _Outcome(True, text)

    @staticmethod
    def _stages_text(result: PassResult) -> str:
        """What the stages after the cycle did, for STATUS= and the log."""
        text = ""
        for failed in result.errors:
            if failed.cause is not None:
                cause = failed.cause
                log.error(
                    f"{failed.stage} failed unexpectedly",
                    exc_info=(type(cause), cause, cause.__traceback__),
                )
            else:
                log.warning(f"website {failed.stage} failed", error=failed.error.message)
            text += f"; website {failed.stage} failed: {failed.error.message}"
        if result.push is not None:
            # Said once, like the CLI: a new warning at warning level; the full list, which
            # `orsync status` keeps, at debug level on every pass.
            for line in result.push.new_warnings:
                log.warning("push warning", warning=line)
            log.debug("push warnings", warnings=result.push.problems + result.push.clash_lines())
        if result.push is not None and result.push.changed:
            log.info("website updated", files=result.push.changed)
            text += f"; website: wrote {', '.join(result.push.changed)}"
        if result.push is not None and result.push.on_change == "pending":
            log.info("website.on_change ran again", pending=result.push.on_change_was_pending)
            text += "; website: website.on_change ran again (it was pending)"
        return text

    @contextlib.contextmanager
    def _writer_lock(self, store: Store) -> Iterator[None]:
        """The writer lock, waited for in short tries so that a stop request ends the wait."""
        announced = False
        with contextlib.ExitStack() as held:
            while True:
                if self.stop_event.is_set():
                    raise CycleInterrupted()
                self.beat()
                try:
                    held.enter_context(store_writer(store, wait_s=LOCK_POLL_S, command="run"))
                    break
                except LockedError as exc:
                    if not announced:
                        log.info("waiting for the writer lock", holder=exc.message)
                        announced = True
            yield

    def _rate_limited(self, exc: RateLimitedError, summary: CycleSummary | None) -> _Outcome:
        """Sleep until the server's reset (plus jitter), not the usual backoff: each earlier
        request would be refused again and count against the same quota."""
        assert self.config is not None
        if summary is not None:
            self._log_failed(summary)
        jitter = random.uniform(0, min(self.config.sync.jitter_s, RATE_LIMIT_JITTER_MAX_S))
        delay = max(0.0, exc.resume_at - time.time()) + RATE_LIMIT_MARGIN_S + jitter
        until = local_time(exc.resume_at)
        log.log(
            20 if exc.deferred else 30,  # a deferral is orsync keeping its reserve: no failure
            "cycle deferred until the quota resets"
            if exc.deferred
            else "rate limited by OpenReview; no requests until the reset",
            error=exc.message,
            resume_at=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(exc.resume_at)),
            sleep_s=round(delay, 1),
        )
        if exc.deferred:
            cycle = f"cycle {summary.cycle_id}" if summary is not None else "the cycle"
            return _Outcome(
                False,
                f"{cycle} deferred until {until} (local time): OpenReview's quota is nearly "
                "used up and its reserve is kept",
                delay_s=delay,
            )
        cycle = f"cycle {summary.cycle_id} rolled back" if summary is not None else "no cycle"
        return _Outcome(
            False,
            f"rate limited by OpenReview until {until} (local time); {cycle}",
            delay_s=delay,
        )

    def _failed(self, exc: Exception, summary: CycleSummary | None) -> _Outcome:
        if isinstance(exc, RateLimitedError):
            return self._rate_limited(exc, summary)
        self._failures += 1
        message = exc.message if isinstance(exc, OrsyncError) else f"{type(exc).__name__}: {exc}"
        if summary is not None:
            self._log_failed(summary)
        else:  # the store failed before the cycle was even recorded
            log.warning("cycle", outcome="failed", error=message)
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

    @staticmethod
    def _log_failed(summary: CycleSummary) -> None:
        """The one summary event of a cycle that raised, from the summary it raised with."""
        with structlog.contextvars.bound_contextvars(cycle_id=summary.cycle_id):
            log.log(
                20 if summary.outcome in ("interrupted", "deferred") else 30,
                "cycle",
                **summary.figures(),
                error=summary.error,
            )

    @staticmethod
    def _log_summary(summary: CycleSummary) -> None:
        log.info(
            "cycle", **summary.figures(), fallback=summary.fallback, submissions=summary.by_status
        )

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
        # Another venue in the same store is refused here as a new store would be.
        if (new.store.url, new.openreview.venue_id) != (old.store.url, old.openreview.venue_id):
            try:
                store = open_for(new)
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
