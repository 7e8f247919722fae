"""Saving notes into the store, kept apart from fetching them (``orsync.source``) and from the
cycle's control flow (``sync.py``).

``rows`` (a note as a row), ``decisions`` (what each submission shows) and ``pages`` (a page as
batches of rows) are pure: no store, no HTTP, no SQLAlchemy, so a first pull's row builder
(``child``, run as ``python -m orsync.mirror``) imports them without the rest. ``apply`` holds
the ``Mirror``, which writes built pages into the store within the cycle's transaction.
"""

from orsync.mirror.rows import (
    PUBLIC_FLAGS,
    RawNote,
    canonical_json,
    changed_fields,
    digest,
    note_row,
    web_base,
)

__all__ = [
    "PUBLIC_FLAGS",
    "RawNote",
    "canonical_json",
    "changed_fields",
    "digest",
    "note_row",
    "web_base",
]
