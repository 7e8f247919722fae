"""A first pull's pages built in a child process (``python -m orsync.mirror``), on another core.

A first full pull is bound by one core: each page's rows are built (serialised, hashed, typed)
and then written, and the interpreter's lock lets no thread do the one while another does the
other. The child builds one page (``pages.build_alone``, the very function this process runs) while
this process builds or writes others (docs/benchmarks.md has the figures).

Pages are built alone (``pages.build_alone``: knowing nothing of the store or of other pages),
so the child and this process each build whichever page comes when they are free, and the
Mirror writes them in order, checking each (``BuiltPage.conflicts``).

The child gets the answer's bytes, never the session: no token, no password, no notify socket
reaches it (``children.helper_environ``), and its answers are unpickled allowing only the types
a built page holds. Frames on both pipes are a length (8 bytes, big-endian) and a payload:
the child reads the ``PageRules`` and then one page's bytes a frame, and answers each page, in
order, with its parts (``pages.build_parts``), each a ``BuiltPage``, and then ``None`` (or, at
any point, a one-word failure). It ignores Ctrl-C and ends when its
input closes, so it never outlives the pull: a killed parent closes the pipe too.

Whatever goes wrong with the child (it cannot start, it dies, it fails a page), the pull goes on
building the remaining pages in-process from the same notes: the child only ever saves time.
"""

from __future__ import annotations

import contextlib
import gc
import pickle
import queue
import select
import signal
import struct
import subprocess
import sys
import threading
from typing import IO, Any

from orsync import jsonio
from orsync.children import helper_environ
from orsync.mirror.pages import BuiltPage, PageRules, build_parts

__all__ = ["PageBuilder", "child_main"]

_LENGTH = struct.Struct(">Q")
# What a built page's pickle may name: the page itself and the types of a row's values.
_ALLOWED = {
    ("orsync.mirror.pages", "BuiltPage"),
    ("datetime", "datetime"),
    ("datetime", "timezone"),
    ("datetime", "timedelta"),
}


class _PageUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"a built page does not hold {module}.{name}")
        return super().find_class(module, name)


class _Buffer:
    """A received frame read by the unpickler in place (``io.BytesIO`` would copy it)."""

    def __init__(self, data: bytearray) -> None:
        self._view = memoryview(data)
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else min(self._at + size, len(self._view))
        chunk = bytes(self._view[self._at : end])
        self._at = end
        return chunk

    def readline(self) -> bytes:
        rest = self._view[self._at :].tobytes()
        end = rest.find(b"\n") + 1 or len(rest)
        self._at += end
        return rest[:end]


def _write_frame(out: IO[bytes], payload: bytes) -> None:
    for part in (_LENGTH.pack(len(payload)), payload):
        view = memoryview(part)
        while view:  # a raw pipe may take part of a write
            view = view[out.write(view) or 0 :]
    out.flush()


def _read_exactly(source: IO[bytes], size: int) -> bytearray | None:
    """``size`` bytes of ``source`` (a raw pipe gives a read what it has, often less); None at
    the end of the input."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = source.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            return None
        got += n
    return buffer


def _read_frame(source: IO[bytes]) -> bytearray | None:
    """The next frame's payload; None at the end of the input (a frame cut short too)."""
    head = _read_exactly(source, _LENGTH.size)
    if head is None:
        return None
    (size,) = _LENGTH.unpack(head)
    return _read_exactly(source, size)


# Pages the child holds at most: the one it builds and the next, waiting in its pipe, so that
# it never waits for this process to hand it one.
DEPTH = 2


class PageBuilder:
    """This process's side: pages go in (``send``), built pages come out (``receive``), in
    the same order, from one thread. A feeder thread writes the pages into the child's pipe:
    a page sent while the child builds another waits there, and the sender must not block
    on it (the child, answering, would wait for the sender to read: each on the other)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._failed: str | None = None
        self._lock = threading.Lock()
        self._sent = self._received = 0
        self._feed: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._feeder = threading.Thread(
            target=self._feed_child, name="orsync-row-builder-feed", daemon=True
        )
        self._feeder.start()

    @classmethod
    def start(cls, rules: PageRules) -> PageBuilder | None:
        """A running child given the walk's rules; None when none starts."""
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "orsync.mirror"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=helper_environ(),
                # Unbuffered: what ``ready`` sees waiting in the pipe is all there is.
                bufsize=0,
            )
        except OSError:
            return None
        builder = cls(proc)
        builder._feed.put(pickle.dumps(rules, protocol=pickle.HIGHEST_PROTOCOL))
        return builder

    def _feed_child(self) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        while (payload := self._feed.get()) is not None:
            try:
                _write_frame(stdin, payload)
            except (OSError, ValueError):  # a closed pipe: the child is gone
                self._fail("the row builder stopped reading")
                return

    def can_take(self) -> bool:
        """Whether to send the child a page now: it is working and holds fewer than DEPTH."""
        return self._failed is None and self._sent - self._received < DEPTH

    def ready(self) -> bool:
        """Whether ``receive`` has an answer to read at once (or will fail at once)."""
        if self._failed is not None:
            return True
        stdout = self._proc.stdout
        assert stdout is not None
        readable, _, _ = select.select([stdout], [], [], 0)
        return bool(readable)

    @property
    def failed(self) -> str | None:
        """Why the child stopped helping, once it has."""
        return self._failed

    def _fail(self, why: str) -> None:
        with self._lock:
            if self._failed is None:
                self._failed = why

    def send(self, body: bytes) -> None:
        """Give the child one page's bytes (``can_take``); never blocks."""
        if self._failed is None:
            self._feed.put(body)
            self._sent += 1

    def receive(self) -> BuiltPage | bool:
        """The next part of the oldest page sent (``pages.build_parts``); True once that page
        is complete, False once the child has failed (build the page here instead)."""
        if self._failed is not None:
            return False
        stdout = self._proc.stdout
        assert stdout is not None
        payload = _read_frame(stdout)
        if payload is None:
            self._fail("the row builder ended early")
            return False
        try:
            answer = _PageUnpickler(_Buffer(payload)).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError):
            answer = "an unreadable answer"
        if isinstance(answer, BuiltPage):
            return answer
        if answer is None:
            self._received += 1
            return True
        self._fail(f"the row builder failed: {answer}")
        return False

    def close(self) -> None:
        """End the child. One that answered every page waits for more: its input closed, it
        exits. Otherwise (the walk stopped early, the child failed) it is killed first: it may
        be blocked writing an answer nobody will read, and the walk's thread blocked feeding
        it, which the kill releases with a broken pipe."""
        if self._failed is not None or self._sent != self._received:
            self._proc.kill()  # a feeder blocked writing to it gets a broken pipe
        self._feed.put(None)
        self._feeder.join()
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError, ValueError):
                    pipe.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> PageBuilder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def child_main() -> int:
    """The child: build each page it is given, until its input ends."""
    # Ctrl-C reaches the whole process group; the parent decides, and closes the pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()  # pages and rows hold no reference cycles (``sync._cyclic_gc_paused``)
    source, out = sys.stdin.buffer, sys.stdout.buffer
    setup = _read_frame(source)
    if setup is None:
        return 0
    # From the parent that started this process, over its own pipe.
    rules = pickle.loads(setup)  # noqa: S301
    while (body := _read_frame(source)) is not None:
        try:
            answer = jsonio.loads(body)
            del body
            notes = answer.get("notes") if isinstance(answer, dict) else None
            if not isinstance(notes, list):
                raise ValueError("a page without a notes list")
            del answer
            for part in build_parts(notes, rules):
                _write_frame(out, pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL))
                del part
            del notes
            _write_frame(out, pickle.dumps(None))  # the page is complete
        except OSError:  # the parent is gone
            return 0
        except Exception as exc:  # the parent builds this page itself; say only what failed
            with contextlib.suppress(OSError):
                _write_frame(out, pickle.dumps(type(exc).__name__))
            return 1
    return 0
