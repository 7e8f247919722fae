"""The venue a store belongs to (docs/configuration.md#store).

A store mirrors one venue. Pointed at another (``openreview.venue_id`` changed, ``store.url``
kept), an incremental cycle would find nothing new and the site would publish the old venue's
papers under the new name. So every command opens the store for its config through
:func:`open_for` (writers) or :func:`read_for` (readers), which refuse a store bound to another
venue (exit 5), and the first good cycle records the venue in ``sync_state``.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from orsync.config import Config
from orsync.errors import StoreError
from orsync.store import Store, open_reader, open_store, queries
from orsync.store.tables import NOTE

__all__ = ["bind_venue", "check_venue", "open_for", "read_for", "venue_mismatch"]


def open_for(config: Config) -> Store:
    """The store of ``config`` for a writing command: created and migrated as needed, refused
    when it belongs to another venue."""
    store = open_store(config.store.url)
    try:
        with store.connect() as conn:
            recorded, bound = _binding(conn)
        _refuse_other_venue(store, bound, config.openreview.venue_id)
        if recorded is None and bound is not None:
            # A store made before stores were bound holds this venue's submissions (checked
            # above): bound now, by the first writing command that opens it.
            with store.begin() as conn:
                bind_venue(conn, config.openreview.venue_id)
    except BaseException:
        store.dispose()
        raise
    return store


def read_for(config: Config) -> Store:
    """The store of ``config`` for a reading command (``open_reader``), refused when it belongs
    to another venue."""
    store = open_reader(config.store.url)
    try:
        with store.connect() as conn:
            _, bound = _binding(conn)
        _refuse_other_venue(store, bound, config.openreview.venue_id)
    except BaseException:
        store.dispose()
        raise
    return store


def _binding(conn: Connection) -> tuple[str | None, str | None]:
    """The venue id recorded in the store, and the venue it mirrors: the recorded one, else
    (a store made before the binding was recorded) the one its submissions belong to."""
    recorded = queries.get_state(conn, queries.VENUE_ID)
    return recorded, recorded if recorded is not None else _venue_of_submissions(conn)


def check_venue(conn: Connection, venue_id: str) -> None:
    """Refuse (exit 5) a store that mirrors another venue than ``venue_id``."""
    _, bound = _binding(conn)
    if bound is not None and bound != venue_id:
        raise StoreError(venue_mismatch(None, bound, venue_id))


def _venue_of_submissions(conn: Connection) -> str | None:
    # OpenReview names a venue's submission invitation under the venue: "<venue>/-/Submission".
    row = conn.execute(
        select(NOTE.c.invitation)
        .where(NOTE.c.kind == "submission", NOTE.c.invitation.like("%/-/%"))
        .limit(1)
    ).first()
    if row is None or row.invitation is None:
        return None
    return str(row.invitation).split("/-/", 1)[0]


def bind_venue(conn: Connection, venue_id: str) -> None:
    """Record (inside the caller's transaction) that the store mirrors ``venue_id``; refuse
    when it already mirrors another."""
    check_venue(conn, venue_id)
    if queries.get_state(conn, queries.VENUE_ID) is None:
        queries.set_state(conn, queries.VENUE_ID, venue_id)


def venue_mismatch(store: Store | None, bound: str, venue_id: str) -> str:
    """The one line that refuses a store of another venue, with the fix."""
    where = f"store {store.describe()}" if store is not None else "the store"
    return (
        f"{where} mirrors venue {bound}, not openreview.venue_id = {venue_id}; point store.url "
        f"at another store for {venue_id} (a new file: `orsync pull` fills it), or set "
        f"venue_id back to {bound}"
    )


def _refuse_other_venue(store: Store, bound: str | None, venue_id: str) -> None:
    if bound is not None and bound != venue_id:
        raise StoreError(venue_mismatch(store, bound, venue_id))
