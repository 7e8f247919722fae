"""Signals for the service, never handled in a Python signal handler.

Taking any lock in a handler (even ``threading.Event.set``) can deadlock against the interrupted
main thread. The handlers are no-ops; ``signal.set_wakeup_fd`` makes the interpreter write the
signal number to a socket, and a small thread reads it and calls back, outside any handler.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_SHUTDOWN = 0  # the byte our own exit writes to end the reader thread
_JOIN_S = 2.0


@contextlib.contextmanager
def routed_signals(on_signal: Callable[[int], None]) -> Iterator[None]:
    """Within the block, SIGTERM/SIGINT/SIGHUP call ``on_signal(signum)`` from a thread."""
    if threading.current_thread() is not threading.main_thread():
        yield  # embedded in a thread (tests): the caller stops the service itself
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    reader.settimeout(None)

    def no_op(signum: int, frame: FrameType | None) -> None:
        pass  # the wakeup fd carries the signal; nothing may be done here (module doc)

    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    previous = {sig: signal.signal(sig, no_op) for sig in SIGNALS}

    def watch() -> None:
        while True:
            try:
                data = reader.recv(64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum == _SHUTDOWN:
                    return
                on_signal(signum)

    thread = threading.Thread(target=watch, name="orsync-signals", daemon=True)
    thread.start()
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(previous_fd)
        with contextlib.suppress(OSError):
            writer.send(bytes([_SHUTDOWN]))
        thread.join(_JOIN_S)
        reader.close()
        writer.close()
