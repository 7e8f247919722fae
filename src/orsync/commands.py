"""The operations behind the commands: each CLI command calls one function here.

Library users (notebooks, the service loop, tests) call these too; nothing here prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from orsync import lock
from orsync.config import Config, read_password
from orsync.errors import UsageError
from orsync.logs import add_secret
from orsync.store import open_reader, queries
from orsync.store.queries import INTERRUPTED_ERROR, RATE_LIMITED_UNTIL

if TYPE_CHECKING:
    # Only a cycle needs these: reading commands (status, changes) never load the mirror.
    from orsync.source import OpenReviewSource
    from orsync.sync import CycleSummary, Progress


def make_source(config: Config, **kwargs: Any) -> OpenReviewSource:
    from orsync.source import OpenReviewSource, RetryPolicy

    password = read_password(config)
    if password:
        add_secret(password)
    return OpenReviewSource(
        config.openreview.baseurl,
        username=config.openreview.username,
        password=password,
        timeout_s=config.openreview.timeout_s,
        policy=kwargs.pop("policy", None)
        or RetryPolicy(
            attempts=config.openreview.retry_attempts,
            initial_s=config.openreview.retry_initial_s,
            max_wait_s=config.openreview.retry_max_wait_s,
        ),
        **kwargs,
    )


def pull(
    config: Config,
    *,
    full: bool = False,
    force: bool = False,
    wait_s: float = 600.0,
    progress: Progress | None = None,
    source: OpenReviewSource | None = None,
    on_wait: lock.OnWait | None = None,
) -> CycleSummary:
    """One sync cycle under the writer lock, without the push (for library use and tests;
    ``orsync pull`` runs the whole pass through ``pipeline.pull``)."""
    from orsync import pipeline

    options = pipeline.PassOptions(
        full=full, force=force, push=False, wait_s=wait_s, progress=progress, on_wait=on_wait
    )
    return pipeline.pull(config, options, source=source).cycle


def status(config: Config, *, cycles: int = 10) -> dict[str, Any]:
    """What the store holds, the last cycles, and who holds the lock."""
    files = None
    with open_reader(config.store.url) as store:
        # Who holds the lock is asked before and after reading: a cycle that ends between the
        # two reads must not be called interrupted, nor one that starts between them.
        holder_before = lock.store_holder(store)
        with store.connect() as conn:
            found = queries.status(conn, cycles=cycles)
            limited = queries.get_state(conn, RATE_LIMITED_UNTIL)
            if config.website is not None and config.website.files:
                from orsync import hosted

                files = hosted.status(conn)
        holder = lock.store_holder(store)
    recent = [_cycle_dict(row) for row in found.cycles]
    if holder is None and holder_before is None:
        # Nobody holds the writer lock, so a cycle or push still marked running was killed.
        for row in recent:
            if row["outcome"] == "running":
                row["outcome"] = "interrupted"
                row["error"] = row["error"] or INTERRUPTED_ERROR
    limited_until = None
    if limited:
        until = datetime.fromisoformat(limited)
        until = until if until.tzinfo else until.replace(tzinfo=UTC)
        if until > datetime.now(UTC):
            limited_until = until.astimezone().isoformat(timespec="seconds")
    push_info = _cycle_dict(found.last_push) if found.last_push is not None else None
    if (
        push_info is not None
        and holder is None
        and holder_before is None
        and push_info["outcome"] == "running"
    ):
        push_info["outcome"] = "interrupted"
    since = None
    last_ok = found.last_success
    if last_ok is not None:
        last_ok = last_ok if last_ok.tzinfo else last_ok.replace(tzinfo=UTC)
        since = round((datetime.now(UTC) - last_ok).total_seconds(), 1)
    return {
        "venue_id": config.openreview.venue_id,
        "store": store.describe(),
        "submissions": found.submissions,
        "decided_unreleased": found.decided_unreleased,
        "notes": found.notes,
        "tombstones": found.tombstones,
        "cycles": recent,
        "last_success": last_ok.isoformat(timespec="seconds") if last_ok else None,
        "seconds_since_success": since,
        "watermark_ms": found.watermark_ms,
        # Local ISO time until which OpenReview's rate limit holds cycles back, or None.
        "rate_limited_until": limited_until,
        "lock_holder": holder,
        "last_push": push_info,
        # Hosted files (SPEC §10), when website.files is set: current / pending / refused.
        "files": files,
    }


def _cycle_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("started_at", "finished_at", "quota_reset_at"):
        if out.get(key) is not None:
            out[key] = out[key].isoformat(timespec="seconds")
    return out


def parse_since(text: str) -> datetime:
    """``2024-05-01``, an ISO time, or a span back from now: ``30m``, ``12h``, ``7d``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if text and text[-1] in units and text[:-1].isdigit():
        try:
            return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
        except OverflowError:
            raise UsageError(
                f"--since {text!r} reaches before year 1; use a shorter span"
            ) from None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--since {text!r}: use an ISO date or time, or a span like 12h or 7d"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def changes(
    config: Config, *, since: datetime | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """What changed in the venue, newest first (SPEC §2 ``changes``)."""
    with open_reader(config.store.url) as store, store.connect() as conn:
        rows = queries.changes(conn, since=since, limit=limit)
    for row in rows:
        at = row["at"]
        row["at"] = at.isoformat(timespec="seconds") if at else None
    return rows
