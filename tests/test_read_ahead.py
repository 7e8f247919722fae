"""The full walk's hot path: one serialisation per note, and the page read ahead in a thread."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orsync.mirror import canonical_json, digest
from orsync.sync import read_ahead

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    max_leaves=30,
)


@given(st.dictionaries(st.text(), JSON))
def test_the_one_serialisation_is_the_standard_librarys(note: dict[str, Any]) -> None:
    # Integers beyond 64 bits, NUL, U+2028, any text: byte for byte what json writes,
    # so stores made before keep their digests.
    want = json.dumps(note, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert canonical_json(note) == want
    assert len(digest(note)) == 32


def test_read_ahead_yields_every_item_in_order_one_ahead() -> None:
    fetched: list[int] = []

    def walk(stop: threading.Event) -> Iterator[int]:
        for i in range(5):
            fetched.append(i)
            yield i

    with read_ahead(walk) as items:
        got = []
        for item in items:
            time.sleep(0.02)
            # The worker is at most one item ahead of the taker.
            assert len(fetched) <= item + 2
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_read_ahead_raises_the_walks_error_at_its_page() -> None:
    def walk(stop: threading.Event) -> Iterator[int]:
        yield 1
        raise KeyboardInterrupt  # what the service's CycleInterrupted is

    got = []
    with pytest.raises(KeyboardInterrupt), read_ahead(walk) as items:
        got.extend(items)
    assert got == [1]


def test_leaving_early_stops_and_joins_the_worker() -> None:
    closed = threading.Event()

    def walk(stop: threading.Event) -> Iterator[int]:
        try:
            i = 0
            while not stop.is_set():
                yield i
                i += 1
        finally:
            closed.set()

    before = threading.active_count()
    with pytest.raises(RuntimeError), read_ahead(walk) as items:
        for item in items:
            if item == 2:
                raise RuntimeError("the store failed")
    assert closed.is_set()
    assert threading.active_count() == before
