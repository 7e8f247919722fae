"""Under ``orsync run`` everything the process prints is a JSON line: lines written to
``sys.stdout``/``sys.stderr`` become log events (openreview-py ``print``s its retries)."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

from orsync.logs import get_logger

__all__ = ["redirect_prints_to_log"]


# Shared by the stdout and the stderr writer: a write made while either is emitting (the logging
# machinery printing, a failing handler reporting to sys.stderr) must bypass both.
_emitting = threading.local()


class _LogWriter(io.TextIOBase):
    """A text stream that turns each written line into a log event.

    The event's ``logger`` is the module that wrote (the caller of ``print``), so the journal says
    ``openreview.api.client`` rather than an anonymous "stdout".
    """

    routes_prints_to_log = True  # what orsync.logs looks for to find the real stream

    def __init__(self, original: TextIO, stream_name: str, level: int) -> None:
        super().__init__()
        self.original = original
        self._stream_name = stream_name
        self._level = level
        self._lock = threading.Lock()
        # Per thread, so that two threads printing at once do not splice their lines.
        self._pending: dict[int, tuple[str, str]] = {}

    # io.TextIOBase exposes these as read-only C descriptors, which typeshed declares as plain
    # attributes; properties are the only way to give them values.
    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return "backslashreplace"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        # C-level writers (faulthandler, a child given sys.stdout) get the real descriptor:
        # better unstructured output than a crash.
        return self.original.fileno()

    def write(self, s: str) -> int:
        if getattr(_emitting, "active", False):
            # Something inside the logging machinery printed (or a handler reported its own
            # failure to sys.stderr): send it straight out instead of recursing.
            return self.original.write(s)
        caller = sys._getframe(1).f_globals.get("__name__", "?")
        ident = threading.get_ident()
        with self._lock:
            _, buffered = self._pending.pop(ident, (caller, ""))
            text = buffered + s
            *lines, rest = text.split("\n")
            if rest:
                self._pending[ident] = (caller, rest)
        for line in lines:
            self._emit(caller, line)
        if len(rest) > 65536:  # a newline-less flood must not grow without bound
            self._flush_thread(ident)
        return len(s)

    def _flush_thread(self, ident: int) -> None:
        with self._lock:
            caller, rest = self._pending.pop(ident, ("?", ""))
        self._emit(caller, rest)

    def close_pending(self) -> None:
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for caller, rest in pending:
            self._emit(caller, rest)

    def _emit(self, caller: str, line: str) -> None:
        line = line.rstrip("\r")
        if not line.strip():
            return
        _emitting.active = True
        try:
            get_logger(caller).log(self._level, line, stream=self._stream_name)
        finally:
            _emitting.active = False


@contextlib.contextmanager
def redirect_prints_to_log(*, stdout: bool = True, stderr: bool = True) -> Iterator[None]:
    """Within the block, lines written to ``sys.stdout``/``sys.stderr`` become log events.

    For ``orsync run``, where everything the process prints must be a JSON line: openreview-py
    ``print``s its retry messages, and any library may. Each line becomes an event whose
    ``event`` is the text, ``logger`` the printing module, ``stream`` ``stdout`` (level info) or
    ``stderr`` (level warning); the usual redaction applies. Call :func:`configure_logging`
    first. Only Python-level writes are caught: output a C extension writes to file descriptor 1
    or 2 bypasses ``sys.stdout``. Not for commands that write data to stdout (``export``).
    """
    saved_out, saved_err = sys.stdout, sys.stderr
    writers: list[_LogWriter] = []
    if stdout:
        w = _LogWriter(saved_out, "stdout", logging.INFO)
        writers.append(w)
        sys.stdout = w
    if stderr:
        w = _LogWriter(saved_err, "stderr", logging.WARNING)
        writers.append(w)
        sys.stderr = w
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved_out, saved_err
        for w in writers:
            w.close_pending()
