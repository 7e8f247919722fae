"""Rows grouped into insert batches, each with only the columns it fills.

Pure (no database): the store's bulk writes (``store/bulk.py``) and a first pull's row builder,
which may run in a child process without SQLAlchemy (``mirror/fresh.py``), batch rows by this
one rule.

SQLite's cost of an insert grows with the number of parameters bound, and most notes fill half
the columns (a review has no abstract, a comment no rating, few notes a public PDF): leaving out
the columns a batch never fills stores the same rows in about half the time. Nothing is lost: a
column is left out only when no row of the batch holds anything but the value the database
gives a column an insert leaves out (NULL, or the false of a flag); an empty text or a zero in a
nullable column is a value, kept.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

Row = Mapping[str, Any]
# Per column that an insert may leave out, the value the database then stores (None or False).
LeftOut = Mapping[str, Any]


def filled(rows: Sequence[Row], left_out: LeftOut, order: Sequence[str] = ()) -> list[str]:
    """The keys of ``rows`` (which all have the same keys) to insert: each but those that
    every row leaves at its ``left_out`` value; in ``order`` (a table's columns, the order its
    insert statement binds them) when given, keys it lacks last."""
    first = rows[0]
    candidates: list[str] = []
    empties: list[Any] = []
    for key, value in first.items():
        if key in left_out and value is left_out[key]:
            candidates.append(key)
            empties.append(left_out[key])
    if not candidates:
        return _in_order(list(first), order)
    # The distinct value tuples of the candidate columns, made in C: a batch that leaves them
    # all empty gives one tuple, so the check costs one hash a row rather than one a value.
    get = itemgetter(*candidates)
    distinct = (
        set(map(get, rows)) if len(candidates) > 1 else {(value,) for value in map(get, rows)}
    )
    dropped = {
        key
        for key, empty, values in zip(candidates, empties, zip(*distinct, strict=True), strict=True)
        if all(value is empty for value in values)
    }
    return _in_order([key for key in first if key not in dropped], order)


def _in_order(keys: list[str], order: Sequence[str]) -> list[str]:
    if not order:
        return keys
    wanted, placed = set(keys), set(order)
    return [key for key in order if key in wanted] + [key for key in keys if key not in placed]


def insert_batches(
    rows: Sequence[Row], shape: str, left_out: LeftOut, order: Sequence[str] = ()
) -> Iterator[tuple[tuple[str, ...], list[tuple[Any, ...]]]]:
    """``rows`` as insert batches: the keys each batch fills (in ``order``, ``filled``) and its
    rows' values in that order.

    Rows are grouped by their ``shape`` key's value (a note's kind) and their number of keys,
    in the order met. A batch's keys are its first row's: a row with a key the others lack
    has a batch of its own, and one lacking a key the first has raises ``KeyError`` as its
    values are read, so no value is ever dropped unseen."""
    groups: dict[tuple[Hashable, int], list[Row]] = {}
    for row in rows:
        batch = (row[shape], len(row))
        group = groups.get(batch)
        if group is None:
            groups[batch] = [row]
        else:
            group.append(row)
    for group in groups.values():
        keys = filled(group, left_out, order)
        if len(keys) == 1:
            (key,) = keys
            yield (key,), [(row[key],) for row in group]
        else:
            yield tuple(keys), list(map(itemgetter(*keys), group))
