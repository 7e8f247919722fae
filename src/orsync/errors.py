"""Errors that reach the user, each carrying the documented exit code (SPEC §2)."""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_ACCESS = 4
EXIT_STORE = 5
EXIT_LOCKED = 75


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
