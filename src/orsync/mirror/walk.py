"""A full walk's pages, written into the store in the walk's order.

Into a store that held notes, each page is built knowing the store and written (``Mirror.apply``).
Into an empty one (a first pull), pages are built alone (``pages.build_alone``) by whoever is
free: the row builder's child process (``child.PageBuilder``) takes a page whenever it has
none, this process builds the others, and each is written in order, checked against what the
store holds by then (``Mirror.write_alone``). Building is two thirds of a first pull's work;
split so, it runs on two cores while this process also writes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from orsync import jsonio
from orsync.mirror.apply import Mirror
from orsync.mirror.child import PageBuilder
from orsync.mirror.pages import BuiltPage, page_notes
from orsync.source import Page

Progress = Callable[[int, int | None], None]


@dataclass
class _Slot:
    """A page on its way into the store: built here, or (``built`` None) at the child."""

    body: bytes
    built: BuiltPage | None
    submissions: int
    total: int | None

    def notes(self) -> Sequence[Any]:
        # Parsed again only to build a page again (a conflict, a child that failed): the
        # parsed page is five times its bytes, and is not kept for that rare case.
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

    def write(slot: _Slot) -> None:
        nonlocal done
        built = slot.built
        if built is None:
            assert builder is not None
            built = builder.receive()
        if built is None:  # the child failed: this page is built here, knowing the store
            mirror.apply(slot.notes())
        else:
            mirror.write_alone(built, slot.notes)
        done += slot.submissions
        if progress is not None:
            progress(done, slot.total)

    for page in pages:
        if not mirror.fresh:
            mirror.apply(page_notes(page.notes))
            done += len(page.notes)
            if progress is not None:
                progress(done, page.total)
            continue
        if builder is not None and builder.can_take():
            builder.send(page.body)
            slot = _Slot(page.body, None, len(page.notes), page.total)
        else:
            built = mirror.build_alone(page_notes(page.notes))
            slot = _Slot(page.body, built, len(page.notes), page.total)
        waiting.append(slot)
        del page, slot
        # Write what is ready, never waiting for the child while a page could be built here.
        while waiting and (
            waiting[0].built is not None or (builder is not None and builder.ready())
        ):
            write(waiting.popleft())
    while waiting:
        write(waiting.popleft())
