"""The systemd notify protocol (sd_notify(3)), without libsystemd.

`orsync run` is a ``Type=notify`` service: systemd considers it started only once it sends
``READY=1``, shows ``STATUS=`` in ``systemctl status``, and kills and restarts it when the
``WATCHDOG=1`` keep-alives stop. Outside systemd (``NOTIFY_SOCKET`` unset) every call is a no-op,
so callers never need to check where they run.

Delivery is best effort by design: a notification that cannot be sent must never take the
service down, so every send returns ``False`` on failure instead of raising or logging (logging
from here could recurse if a log sink ever reported through the notifier).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

from orsync.secrets import mask_text

__all__ = ["Notifier", "WatchdogPinger"]

# Variables systemd passes to the main process only; a child that inherits them could
# impersonate the service (READY/STOPPING) or confuse the watchdog, hence child_environ().
_SERVICE_MANAGER_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")

# Bounded so that a stuck receiver (full socket queue) cannot block a cycle or the watchdog
# thread indefinitely; sd_notify datagrams are tiny, so a healthy manager answers in microseconds.
_SEND_TIMEOUT_S = 1.0


def _socket_address(value: str) -> str | None:
    """Turn a NOTIFY_SOCKET value into an address for AF_UNIX sendto, or None if unusable."""
    if value.startswith("@"):
        # Abstract namespace: the leading '@' stands for the NUL byte (survives chroot).
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    # Other forms (e.g. systemd >= 253's "vsock:CID:PORT") are for VMs, not for orsync.
    return None


def _single_line(text: str) -> str:
    # The protocol is newline-separated KEY=VALUE; a newline in free text (an error message in
    # STATUS=) would otherwise let that text inject e.g. "READY=1" or "STOPPING=1".
    # STATUS= is world-readable (`systemctl status`): secrets masked like in the log.
    return mask_text(" ".join(text.splitlines()))


class Notifier:
    """Sends state changes to the service manager over ``$NOTIFY_SOCKET``.

    Thread-safe: the watchdog thread and the service loop share one instance.
    """

    def __init__(self, address: str | None, watchdog_interval_s: float | None = None) -> None:
        self.address = address
        # Half of WATCHDOG_USEC, as sd_watchdog_enabled(3) recommends, so that one late ping
        # (a slow GC pause, a busy machine) does not get the service killed.
        self.watchdog_interval_s = watchdog_interval_s
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        """Build from ``NOTIFY_SOCKET`` / ``WATCHDOG_USEC`` / ``WATCHDOG_PID``.

        A missing or unusable ``NOTIFY_SOCKET`` gives a no-op notifier. The watchdog interval is
        only honoured when ``WATCHDOG_PID`` is unset or names this process: otherwise the variables
        were meant for an ancestor and merely leaked into our environment.
        """
        raw = environ.get("NOTIFY_SOCKET", "")
        address = _socket_address(raw) if raw else None
        return cls(address, _watchdog_interval(environ))

    @staticmethod
    def child_environ(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
        """A copy of *environ* without the variables only the main process may use.

        Pass it as ``env=`` to subprocesses (e.g. ``website.on_change``): with ``NotifyAccess=main``
        systemd would ignore their messages anyway, but a child must not believe it is the service.
        """
        return {k: v for k, v in environ.items() if k not in _SERVICE_MANAGER_VARS}

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields as one datagram. True if the manager got it."""
        if self.address is None:
            return False
        payload = "\n".join(fields).encode("utf-8", "replace")
        with self._lock:
            try:
                if self._sock is None:
                    # Python sockets are non-inheritable (close-on-exec) by default, so children
                    # never get this descriptor.
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    sock.settimeout(_SEND_TIMEOUT_S)
                    self._sock = sock
                self._sock.sendto(payload, self.address)
            except OSError:
                # Includes timeouts and a vanished socket (manager restarted): drop the socket so
                # the next call starts afresh rather than reusing a possibly broken one.
                self._drop_socket()
                return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: startup (or a reload) finished; systemd stops waiting for us."""
        fields = ["READY=1"]
        if status is not None:
            fields.append("STATUS=" + _single_line(status))
        return self.send(*fields)

    def status(self, text: str) -> bool:
        """``STATUS=``: one line shown by ``systemctl status``."""
        return self.send("STATUS=" + _single_line(text))

    def stopping(self) -> bool:
        """``STOPPING=1``: shutdown began (after SIGTERM), so a slow stop is not a hang."""
        return self.send("STOPPING=1")

    def reloading(self) -> bool:
        """``RELOADING=1`` for a SIGHUP re-read; send :meth:`ready` once the reload is done.

        MONOTONIC_USEC lets systemd (``Type=notify-reload``, v253+) tell this reload apart from a
        stale one; older managers ignore the field.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: we are alive; resets systemd's ``WatchdogSec=`` timer."""
        return self.send("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        """``EXTEND_TIMEOUT_USEC=``: ask for more time in the current start/stop phase.

        Useful while a cycle in progress is finished after SIGTERM and threatens to outlast
        ``TimeoutStopSec=``.
        """
        return self.send(f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1_000_000))}")

    def close(self) -> None:
        with self._lock:
            self._drop_socket()

    def _drop_socket(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __repr__(self) -> str:
        return (
            f"Notifier(address={self.address!r}, watchdog_interval_s={self.watchdog_interval_s!r})"
        )


def _watchdog_interval(environ: Mapping[str, str]) -> float | None:
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid is not None and pid.strip() != "":
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 2 / 1_000_000


class WatchdogPinger:
    """Sends ``WATCHDOG=1`` every ``notifier.watchdog_interval_s`` while ``healthy()`` is true.

    Pinging from a thread decouples liveness from cycle length (a full reconciliation can take
    longer than ``WatchdogSec=``). The *healthy* callback is what keeps the watchdog meaningful:
    the service loop should report unhealthy when it is wedged (e.g. no progress for a long
    time), and systemd then kills and restarts it. A raising callback counts as unhealthy.
    Without a watchdog interval, :meth:`start` does nothing.
    """

    def __init__(self, notifier: Notifier, healthy: Callable[[], bool]) -> None:
        self._notifier = notifier
        self._healthy = healthy
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        interval = self._notifier.watchdog_interval_s
        if interval is None or self.running:
            return
        self._stop.clear()
        # Daemon: a pinger must never keep a dying process alive (that would defeat the watchdog).
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="orsync-watchdog", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self, interval: float) -> None:
        # Scheduled against the monotonic clock so a slow send or health check does not make
        # pings drift later and later.
        next_at = time.monotonic()
        while True:
            if self._is_healthy():
                self._notifier.watchdog()
            next_at += interval
            now = time.monotonic()
            if next_at < now:
                # We fell behind (suspend, stopped process, slow health check): ping once now
                # and resync, instead of bursting through every missed slot.
                next_at = now
            if self._stop.wait(next_at - now):
                return

    def _is_healthy(self) -> bool:
        try:
            return bool(self._healthy())
        except Exception:
            return False
