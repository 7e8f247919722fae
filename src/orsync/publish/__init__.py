"""Publishing: the poster assignment (``assignment``), the push of the website's files
(``push``) and the ``on_change`` command run after it (``hook``)."""

from orsync.publish.assignment import (
    PinResult,
    pin,
    resolve_paper,
    sessions_of,
    sync_sessions,
    unpin,
    update_assignment,
)
from orsync.publish.hook import OnChangeError, OnChangeStopped, run_on_change
from orsync.publish.placements import AnnouncedConflict, Frozen, freeze
from orsync.publish.push import (
    PushError,
    PushRefused,
    PushResult,
    calendar_state,
    child_environ,
    preview_assignment,
    published_ids,
    push,
)

__all__ = [
    "AnnouncedConflict",
    "Frozen",
    "OnChangeError",
    "OnChangeStopped",
    "PinResult",
    "PushError",
    "PushRefused",
    "PushResult",
    "calendar_state",
    "child_environ",
    "freeze",
    "pin",
    "preview_assignment",
    "published_ids",
    "push",
    "resolve_paper",
    "run_on_change",
    "sessions_of",
    "sync_sessions",
    "unpin",
    "update_assignment",
]
