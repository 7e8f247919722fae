"""A full walk's pages, written into the store in the walk's order.

Into a store that held notes, each page is built knowing the store and written (``Mirror.apply``).
Into an empty one (a first pull), the row builders' child processes (``child.PageBuilder``)
take turns parsing and building the pages alone (``pages.build_parts``) while this process
downloads the next and writes the parts it has received, in order, each checked against what
the store holds by then (``BuiltPage.conflicts``). Parsing and building are two thirds of a first
pull's work: so they run on other cores. A page no child took (none started, one failed) is
parsed and built here.

Measured and rejected: this process building pages too whenever a child was busy (no faster, a
third more memory: a page built here waits behind the child's, parsed and built).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from orsync import jsonio
from orsync.mirror.apply import Mirror
from orsync.mirror.child import Builder, PageBuilder
from orsync.mirror.pages import BuiltPage, build_parts, page_notes
from orsync.source import Page

Progress = Callable[[int, int | None], None]


@dataclass
class _Slot:
    """A page on its way into the store: its parts built here, or at ``child``."""

    body: bytes
    parts: list[BuiltPage] | None  # None: at ``child``
    child: Builder | None
    submissions: int
    total: int | None
    # Built again here, knowing the store, after a conflict: the child's parts are dropped.
    rebuilt: bool = False

    def notes(self) -> Sequence[Any]:
        # Parsed again only to build a page again (a conflict, a child that failed): the
        # parsed page is four times its bytes, and is not kept for that rare case.
        return page_notes(jsonio.loads(self.body)["notes"])


def write_pages(
    mirror: Mirror,
    pages: Iterable[Page],
    builder: PageBuilder | None = None,
    progress: Progress | None = None,
) -> None:
    """Write every page of a full walk, in order (``builder`` only into an empty store)."""
    done = 0
    waiting: deque[_Slot] = deque()

    def write(slot: _Slot, part: BuiltPage) -> None:
        if slot.rebuilt:
            return
        if part.conflicts(mirror.index):
            # The whole page, knowing the store: its parts written so far are unchanged.
            mirror.apply(slot.notes())
            slot.rebuilt = True
        else:
            mirror.apply_built(part)

    def advance(*, block: bool) -> bool:
        """Write the oldest page's parts that are ready (all, with ``block``); whether the
        page is written whole."""
        nonlocal done
        slot = waiting[0]
        if slot.parts is not None:
            for part in slot.parts:
                write(slot, part)
        else:
            child = slot.child
            assert child is not None
            while True:
                if not block and not child.ready():
                    return False
                answer = child.receive()
                if answer is True:
                    break
                if not isinstance(answer, BuiltPage):
                    # The child failed: the page is built here, knowing the store.
                    if not slot.rebuilt:
                        mirror.apply(slot.notes())
                    break
                write(slot, answer)
        waiting.popleft()
        done += slot.submissions
        if progress is not None:
            progress(done, slot.total)
        return True

    try:
        for page in pages:
            if not mirror.fresh:
                mirror.apply(page_notes(page.notes))
                done += len(page.notes)
                if progress is not None:
                    progress(done, page.total)
                continue
            child = builder.claim(page.body) if builder is not None else None
            parts = None if child is not None else list(build_parts(page.notes, mirror.rules()))
            waiting.append(_Slot(page.body, parts, child, len(page.notes), page.total))
            del page, parts, child
            # One page waits behind the one being written, while the next downloads.
            while len(waiting) > 1:
                advance(block=True)
            while waiting and advance(block=False):
                pass
        while waiting:
            advance(block=True)
    except BaseException:
        if builder is not None:
            # Nothing may wait on the child now: the walk's thread, blocked on a page's
            # paging, is released by its end.
            builder.abandon("the walk stopped")
        raise
