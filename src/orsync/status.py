"""``orsync status``: what the store holds, the last cycles and pushes, who holds the lock, the
hosted files, the poster announcement and the authors' notices (docs/cli.md#status).

A reading command: it never creates, migrates or alters the store, and loads neither the cycle
nor the solver nor the renderers.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from orsync import lock
from orsync.config import Config
from orsync.files import HOSTED_DIR, holds
from orsync.store import hosted_files, queries
from orsync.store.binding import read_for
from orsync.store.queries import (
    INTERRUPTED_ERROR,
    POSTERS_ANNOUNCED,
    POSTERS_MOVES,
    RATE_LIMITED_UNTIL,
)

__all__ = ["CycleRow", "PushRow", "Status", "iso_times", "status"]


def iso_times(row: Mapping[str, Any]) -> dict[str, Any]:
    """A store row with its times as ISO 8601 text, as ``--json`` prints them."""
    out = dict(row)
    for key in ("started_at", "finished_at", "quota_reset_at", "at", "seen_at"):
        if out.get(key) is not None:
            out[key] = out[key].isoformat(timespec="seconds")
    return out


@dataclass(frozen=True)
class CycleRow:
    """One cycle as ``orsync status`` shows it; the fields in the ``cycle`` table's order."""

    id: int
    started_at: str | None
    finished_at: str | None
    mode: str
    outcome: str
    requests: int
    notes_seen: int
    created: int
    updated: int
    deleted: int
    duration_s: float | None
    error: str | None
    quota_remaining: int | None
    quota_reset_at: str | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> CycleRow:
        return cls(**iso_times(row))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PushRow:
    """The last website push as ``orsync status`` shows it; the ``push`` table's order."""

    id: int
    cycle_id: int | None
    command: str
    started_at: str | None
    finished_at: str | None
    outcome: str
    papers: int | None
    changed: list[str]
    error: str | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> PushRow:
        return cls(**iso_times(row))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Status:
    """What ``orsync status`` reports; :meth:`as_dict` is its ``--json`` object."""

    venue_id: str
    store: str
    submissions: dict[str, int]
    decided_unreleased: dict[str, int]
    notes: dict[str, int]
    tombstones: int
    cycles: list[CycleRow]
    last_success: str | None
    seconds_since_success: float | None
    watermark_ms: int | None
    # Local ISO time until which OpenReview's rate limit holds cycles back, or None.
    rate_limited_until: str | None
    lock_holder: dict[str, Any] | None
    last_push: PushRow | None
    # Hosted files (docs/site-files.md#hosted-files), when website.files is set: current / pending / refused.
    files: dict[str, Any] | None
    # A website.on_change owed to the site since a failed run (since, attempts, error), or None.
    on_change_pending: dict[str, Any] | None = None
    # The last push's warnings: talks and orals that disagree, the day's problems, files unlinked.
    push_warnings: list[str] = field(default_factory=list)
    # With poster sessions: whether the places are announced, and the last moves of published
    # posters (docs/workshop.md#moves-of-published-posters).
    posters: dict[str, Any] | None = None
    # The authors' notices: told / pending_update / failed (None: none sent or tried yet).
    notices: dict[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "venue_id": self.venue_id,
            "store": self.store,
            "submissions": self.submissions,
            "decided_unreleased": self.decided_unreleased,
            "notes": self.notes,
            "tombstones": self.tombstones,
            "cycles": [c.as_dict() for c in self.cycles],
            "last_success": self.last_success,
            "seconds_since_success": self.seconds_since_success,
            "watermark_ms": self.watermark_ms,
            "rate_limited_until": self.rate_limited_until,
            "lock_holder": self.lock_holder,
            "last_push": self.last_push.as_dict() if self.last_push is not None else None,
            "files": self.files,
            "on_change_pending": self.on_change_pending,
            "push_warnings": list(self.push_warnings),
            "posters": self.posters,
            "notices": self.notices,
        }

    def describe_lock(self) -> str:
        """Who holds the writer lock, in words (``lock: free`` when nobody does)."""
        return lock.describe_holder(self.lock_holder)


def status(config: Config, *, cycles: int = 10) -> Status:
    """What the store holds, the last cycles, and who holds the lock."""
    files = None
    with read_for(config) as store:
        # Who holds the lock is asked before and after reading: a cycle that ends between the
        # two reads must not be called interrupted, nor one that starts between them.
        holder_before = lock.store_holder(store)
        with store.connect() as conn:
            found = queries.status(conn, cycles=cycles)
            limited = queries.get_state(conn, RATE_LIMITED_UNTIL)
            hook_pending = queries.on_change_pending(conn)
            warned = queries.push_warnings(conn)
            if config.website is not None and config.website.files:
                # Looked at, not checked by content (a reading command reads no file whole):
                # a linked file that is not there is missing, whatever its row says.
                folder = config.website.output_dir / HOSTED_DIR
                files = hosted_files.hosted_status(
                    conn, present=lambda name, size: holds(folder / name, size)
                )
            poster_info = _poster_status(conn, config)
            told = queries.notice_counts(conn)
        holder = lock.store_holder(store)
    # Nobody holds the writer lock, so a cycle or push still marked running was killed.
    unheld = holder is None and holder_before is None
    recent = []
    for row in found.cycles:
        cycle = CycleRow.of(row)
        if unheld and cycle.outcome == "running":
            cycle = replace(cycle, outcome="interrupted", error=cycle.error or INTERRUPTED_ERROR)
        recent.append(cycle)
    limited_until = None
    if limited:
        until = datetime.fromisoformat(limited)
        until = until if until.tzinfo else until.replace(tzinfo=UTC)
        if until > datetime.now(UTC):
            limited_until = until.astimezone().isoformat(timespec="seconds")
    push_info = PushRow.of(found.last_push) if found.last_push is not None else None
    if push_info is not None and unheld and push_info.outcome == "running":
        push_info = replace(push_info, outcome="interrupted")
    since = None
    last_ok = found.last_success
    if last_ok is not None:
        last_ok = last_ok if last_ok.tzinfo else last_ok.replace(tzinfo=UTC)
        since = round((datetime.now(UTC) - last_ok).total_seconds(), 1)
    return Status(
        venue_id=config.openreview.venue_id,
        store=store.describe(),
        submissions=found.submissions,
        decided_unreleased=found.decided_unreleased,
        notes=found.notes,
        tombstones=found.tombstones,
        cycles=recent,
        last_success=last_ok.isoformat(timespec="seconds") if last_ok else None,
        seconds_since_success=since,
        watermark_ms=found.watermark_ms,
        rate_limited_until=limited_until,
        lock_holder=holder,
        last_push=push_info,
        files=files,
        on_change_pending=hook_pending,
        push_warnings=warned,
        posters=poster_info,
        notices=told,
    )


def _poster_status(conn: Any, config: Config) -> dict[str, Any] | None:
    if not config.posters.sessions:
        return None
    frozen_at = queries.get_state(conn, POSTERS_ANNOUNCED)
    moves = None
    with contextlib.suppress(ValueError, TypeError):
        moves = json.loads(queries.get_state(conn, POSTERS_MOVES) or "null")
    return {
        "announced": bool(frozen_at) or config.posters.announced,
        "announced_at": frozen_at,
        "announced_by": "freeze" if frozen_at else "config" if config.posters.announced else None,
        "last_moves": moves,
    }
