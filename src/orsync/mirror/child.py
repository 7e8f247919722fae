"""A first pull's pages parsed and built in a child process (``python -m orsync.mirror``).

A first full pull is bound by its CPU: each page is parsed, its rows built (serialised, hashed,
typed) and written, and the interpreter's lock lets no two threads of one process do that work
at once. Here the child parses each page and builds its rows (``pages.build_parts``, the very
function this process runs when it builds a page itself) on another core, while this process
only downloads and writes.

The walk needs each page parsed before it can ask for the next (``after=<last id>``): the
child answers a page's paging at once (its ``count`` and its submissions' ids, the same
value the source reads from a page it parses itself: ``read_page``), from a thread of its own,
then builds the page's parts. Pages are built alone, knowing nothing of the store, and the
Mirror writes them in order, checking each (``BuiltPage.conflicts``).

The child gets the answer's bytes, never the session: no token, no password, no notify socket
reaches it (``children.helper_environ``), and what it answers is unpickled allowing only the
types a built page holds. Frames on both pipes are a length (8 bytes, big-endian) and a
payload. The child reads the ``PageRules``, then one page's bytes a frame; each answer frame
starts with a tag byte: a page's paging (``H``), then its parts (``P``, each a ``BuiltPage``),
then its end (``E``); or a one-word failure (``X``) after which it exits. It ignores Ctrl-C and
ends when its input closes, so it never outlives the pull: a killed parent closes the pipe too.

Whatever becomes of the child (it cannot start, it dies, it fails a page), the pull goes on: a
page it did not answer is parsed and built here. The child only ever saves time.
"""

from __future__ import annotations

import contextlib
import gc
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections import deque
from typing import IO, Any

from orsync import jsonio
from orsync.children import helper_environ
from orsync.mirror.pages import BuiltPage, PageRules, build_parts

__all__ = ["Builder", "PageBuilder", "child_main"]

_LENGTH = struct.Struct(">Q")
_HEAD, _PART, _END, _FAILED = b"H", b"P", b"E", b"X"
# What the child's pickles may name: a built page and the types of a row's values.
_ALLOWED = {
    ("orsync.mirror.pages", "BuiltPage"),
    ("datetime", "datetime"),
    ("datetime", "timezone"),
    ("datetime", "timedelta"),
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"a built page does not hold {module}.{name}")
        return super().find_class(module, name)


class _Buffer:
    """A received frame read by the unpickler in place (``io.BytesIO`` would copy it)."""

    def __init__(self, data: bytearray, start: int) -> None:
        self._view = memoryview(data)
        self._at = start

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


def _load(frame: bytearray) -> Any:
    """A frame's object (after its tag byte); ``ValueError`` when it is not one a child sends."""
    try:
        return _Unpickler(_Buffer(frame, 1)).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as exc:
        raise ValueError("an unreadable answer from the row builder") from exc


def _write_frame(out: IO[bytes], *parts: bytes) -> None:
    size = sum(len(part) for part in parts)
    for part in (_LENGTH.pack(size), *parts):
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


# A first page this small is parsed here to see whether the venue has more (a page of the
# BGPT workshop's 120 submissions with their replies is about 0.6 MB; ICLR's first, 10 MB).
SMALL_PAGE = 2 * 1024 * 1024
_GONE = bytearray(_FAILED)  # what a reader hands on once its child's output ends


class Builder:
    """One child process: a reader thread takes every frame off its output as it comes (so
    the child never waits on this process), pages' paging to one queue, their parts to
    another."""

    def __init__(self, proc: subprocess.Popen[bytes], pool: PageBuilder) -> None:
        self.proc = proc
        self.pool = pool
        self.heads: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self.parts: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self.pages = 0  # pages given and not yet answered whole
        self.gone = False
        self.closing = False  # its output's end is then no failure
        self.reader = threading.Thread(target=self._read, name="orsync-row-builder", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            while (frame := _read_frame(stdout)) is not None:
                (self.heads if frame[:1] == _HEAD else self.parts).put(frame)
                if frame[:1] == _FAILED:
                    break
        except (OSError, ValueError):
            pass
        if not self.closing:
            self.fail("the row builder ended early")
        self.heads.put(_GONE)
        self.parts.put(_GONE)

    def write(self, payload: bytes) -> bool:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            _write_frame(stdin, payload)
        except (OSError, ValueError):  # a closed pipe: the child is gone
            self.fail("the row builder stopped reading")
            return False
        return True

    def fail(self, why: str) -> None:
        self.gone = True
        self.pool._fail(why)
        with contextlib.suppress(OSError):
            self.proc.kill()

    def ready(self) -> bool:
        """Whether ``receive`` has something to give at once."""
        return not self.parts.empty()

    def receive(self) -> BuiltPage | bool:
        """The next part of the oldest page this child took; True once that page is complete,
        False once the child has failed (build the page here instead)."""
        frame = self.parts.get()
        tag = frame[:1]
        if tag == _PART:
            try:
                part = _load(frame)
            except ValueError as exc:
                self.fail(str(exc))
                return False
            if isinstance(part, BuiltPage):
                return part
        elif tag == _END:
            self.pages -= 1
            return True
        elif frame is not _GONE:
            with contextlib.suppress(ValueError):
                self.pool._fail(f"the row builder failed: {_load(frame)}")
        self.fail("the row builder ended early")
        return False

    def close(self) -> None:
        if self.pages:
            self.fail("the walk stopped")
        self.closing = True
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.fail("the row builder did not exit")
            self.proc.wait()
        self.reader.join()
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdout is not None:
                self.proc.stdout.close()


class PageBuilder:
    """This process's side: a few child processes, each parsing and building whole pages.

    The walk's thread hands each page's bytes to ``read_page`` (as the source's parser): a page
    goes to the child with the fewest pages in hand, which answers its paging at once (the
    children start with the first page, unless it is small and holds the whole venue). The
    thread that writes the store then ``claim``s each page a child took, in order, and
    ``receive``s its parts from that child.
    """

    def __init__(self, rules: PageRules, count: int) -> None:
        self._rules = rules
        self._count = count
        self._children: list[Builder] | None = None  # started with the second page
        self._failed: str | None = None
        self._lock = threading.Lock()
        self._taken: deque[tuple[bytes, Builder]] = deque()  # answered, not yet claimed

    def _start(self) -> list[Builder]:
        """``count`` running children given the walk's rules (fewer if some cannot start)."""
        children: list[Builder] = []
        setup = pickle.dumps(self._rules, protocol=pickle.HIGHEST_PROTOCOL)
        for _ in range(self._count):
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "orsync.mirror"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=helper_environ(),
                    bufsize=0,  # whole frames, written and read by this module
                )
            except OSError:
                self._fail("the row builder could not start")
                break
            child = Builder(proc, self)
            if child.write(setup):
                children.append(child)
        return children

    @property
    def failed(self) -> str | None:
        """Why a child stopped helping, once one has."""
        return self._failed

    def _fail(self, why: str) -> None:
        with self._lock:
            if self._failed is None:
                self._failed = why

    def read_page(self, body: bytes) -> Any:
        """A page's JSON as the walk reads it for its paging (``OpenReviewSource
        .submission_pages``): from a child, which then builds the page; or, when no child can
        take it, parsed here. ``ValueError`` when the bytes are not JSON.

        The children start with the first page, unless it is small enough to parse here at
        next to no cost (``SMALL_PAGE``) and holds the whole venue: a workshop never starts one.
        """
        if self._children is None:
            if len(body) <= SMALL_PAGE:
                answer = jsonio.loads(body)
                notes = answer.get("notes") if isinstance(answer, dict) else None
                count = answer.get("count") if isinstance(answer, dict) else None
                if not (isinstance(notes, list) and isinstance(count, int) and count > len(notes)):
                    self._children = []
                    return answer
            self._children = self._start()
        working = [c for c in self._children if not c.gone]
        if working:
            child = min(working, key=lambda c: c.pages)
            if child.write(body):
                child.pages += 1
                frame = child.heads.get()
                if frame is not _GONE:
                    paging = _load(frame)
                    if paging is None:
                        child.pages -= 1
                        raise ValueError("not JSON")
                    self._taken.append((body, child))
                    return paging
        return jsonio.loads(body)

    def claim(self, body: bytes) -> Builder | None:
        """The child that took this page (its parts are then to be ``receive``d from it)."""
        if self._taken and self._taken[0][0] is body:
            return self._taken.popleft()[1]
        return None

    def abandon(self, why: str) -> None:
        """Stop using the children: killed, so that nothing waits on them any more."""
        for child in self._children or []:
            child.fail(why)

    def close(self) -> None:
        """End the children: their input closed, they exit; one still busy is killed first."""
        for child in self._children or []:
            child.close()

    def __enter__(self) -> PageBuilder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _paging(answer: Any) -> Any:
    """What the walk reads of a parsed page: its count and each note's id (a note that is not
    an object with a string id as ``0``), so that the walk pages exactly as on the page."""
    if not isinstance(answer, dict):
        return {}
    notes = answer.get("notes")
    if isinstance(notes, list):
        notes = [
            {"id": note["id"]} if isinstance(note, dict) and isinstance(note.get("id"), str) else 0
            for note in notes
        ]
    return {"notes": notes, "count": answer.get("count")}


def child_main() -> int:
    """The child: for each page, its paging at once, then its parts, until the input ends."""
    # Ctrl-C reaches the whole process group; the parent decides, and closes the pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()  # pages and rows hold no reference cycles (``sync._cyclic_gc_paused``)
    source, out = sys.stdin.buffer, sys.stdout.buffer
    setup = _read_frame(source)
    if setup is None:
        return 0
    # From the parent that started this process, over its own pipe.
    rules: PageRules = pickle.loads(setup)  # noqa: S301

    def send(tag: bytes, answer: Any) -> None:
        _write_frame(out, tag, pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))

    try:
        while (body := _read_frame(source)) is not None:
            try:
                answer = jsonio.loads(body)
            except ValueError:
                send(_HEAD, None)  # not JSON: the parent asks again, nothing to build
                continue
            del body
            send(_HEAD, _paging(answer))
            notes = answer.get("notes") if isinstance(answer, dict) else None
            del answer
            for part in build_parts(notes if isinstance(notes, list) else [], rules):
                send(_PART, part)
                del part
            del notes
            send(_END, None)
    except OSError:  # the parent is gone
        return 0
    except Exception as exc:  # the parent builds the page itself; say only what failed
        with contextlib.suppress(OSError):
            send(_FAILED, type(exc).__name__)
        return 1
    return 0
