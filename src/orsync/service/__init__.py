"""``orsync run``: the long-running service that keeps the mirror fresh (docs/cli.md, docs/architecture.md#sync-semantics, deploy/README.md).

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

from orsync.service.health import BACKOFF_BASE_S, STALL_MIN_S, Health, backoff_s
from orsync.service.loop import CycleInterrupted, Service, run_service

__all__ = [
    "BACKOFF_BASE_S",
    "STALL_MIN_S",
    "CycleInterrupted",
    "Health",
    "Service",
    "backoff_s",
    "run_service",
]
