"""Errors that reach the user, each carrying the documented exit code (docs/cli.md#exit-codes)."""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_ACCESS = 4
EXIT_STORE = 5
EXIT_LOCKED = 75
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


class OrsyncError(Exception):
    """An error with a one-line message for the user and an exit code."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        # What the failed operation had to say besides its message (a cycle's summary, say),
        # for ``--json`` output: scripts get the same keys on failure as on success.
        self.details: dict[str, Any] = {}


class ConfigError(OrsyncError):
    exit_code = EXIT_USAGE


class UsageError(OrsyncError):
    """A command was given something it cannot use (an unknown session, paper, ...)."""

    exit_code = EXIT_USAGE


class UnreachableError(OrsyncError):
    """OpenReview could not be reached, or kept failing after retries."""

    exit_code = EXIT_UNREACHABLE


class GuardError(OrsyncError):
    """A cycle looked like a truncated answer and was refused (max-delete guard)."""

    exit_code = EXIT_UNREACHABLE


class AccessError(OrsyncError):
    """Credentials rejected, or the venue is missing or not readable."""

    exit_code = EXIT_ACCESS


class StoreError(OrsyncError):
    exit_code = EXIT_STORE


class LockedError(OrsyncError):
    exit_code = EXIT_LOCKED


class RateLimitedError(UnreachableError):
    """OpenReview's rate limit is used up (or about to be) until ``resume_at`` (epoch seconds).

    Not retried: waiting for the reset is the caller's choice (``pull`` exits, ``run`` sleeps).
    ``deferred``: orsync stopped itself before the server refused anything, keeping the reserve;
    nothing failed, the work waits for the reset.
    """

    def __init__(self, message: str, resume_at: float, *, deferred: bool = False) -> None:
        super().__init__(message)
        self.resume_at = resume_at
        self.deferred = deferred


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what it left behind for the user's one line (a cycle rolled back, say).

    A ``KeyboardInterrupt`` still, so no ``except Exception`` on the way swallows it.
    """

    def __init__(self, message: str = "interrupted") -> None:
        super().__init__(message)
        self.message = message


def local_time(epoch_s: float) -> str:
    """A moment as the user's wall clock shows it: ``15:59:25 CEST``, with the date when it is
    not today."""
    from datetime import datetime

    when = datetime.fromtimestamp(epoch_s).astimezone()
    today = datetime.now().astimezone().date()
    shown = f"{when:%H:%M:%S}" if when.date() == today else f"{when:%Y-%m-%d %H:%M:%S}"
    return f"{shown} {when.tzname() or when.strftime('%z')}".strip()
