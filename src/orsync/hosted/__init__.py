"""Hosted files (docs/site-files.md#hosted-files): accepted papers' files copied into ``website.output_dir/files/``.

One stage of a pass, after the website push (``pipeline.stages``)::

    check     (writer lock) every linked file is in ``files/`` with its recorded size and
              content hash; a missing or altered one is no longer linked and is due again
              (``hosted.verify``)
    plan      (writer lock, one transaction) what the site should host: every field of
              ``website.files`` of every paper of the ``accepted_papers`` view whose field is
              public; rows of papers that left, new rows pending, a changed hash pending again
              (``hosted.plan``)
    download  (no lock) the due files, in batches of at most 50 ids (one zip each), paced by
              the attachments quota OpenReview announces; what does not fit waits for a
              later window; every answer checked before anything is kept (``hosted.download``,
              ``hosted.archive``)
    commit    (writer lock) checked files renamed into ``files/``, rows updated
              (``hosted.commit``)
    republish the data files again when their links changed (``publish.push``)
    sweep     (writer lock) files orsync wrote that no row links any more are removed, once
              the site no longer links them; no other file, whatever its name
              (``hosted.commit``)

Nothing here can delay, fail or roll back the metadata cycle: the cycle is committed before
the stage runs, a failed download is recorded on its row (attempts, last error, next attempt
with backoff) and tried again in a later pass, never in a loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from orsync.errors import OrsyncError
from orsync.files import ensure_site_dir, no_space
from orsync.hosted.commit import commit, linked_names, sweep
from orsync.hosted.download import Downloader, Pacing
from orsync.hosted.plan import FILES_DIR, plan
from orsync.hosted.verify import check
from orsync.lock import store_writer
from orsync.logs import get_logger
from orsync.source import QUOTA_RESERVE, OpenReviewSource
from orsync.store import hosted_files, queries
from orsync.store.hosted_files import hosted_status as status
from orsync.text import iso_local

if TYPE_CHECKING:
    from orsync.config import Config
    from orsync.store import Store

__all__ = ["FILES_DIR", "FilesResult", "run_files_stage", "run_stage", "status"]

log = get_logger("orsync.files")


@dataclass
class FilesResult:
    """What one files stage did."""

    downloaded: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    requests: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    window_opens_at: float | None = None  # the attachments quota is used up until then

    def as_dict(self) -> dict[str, Any]:
        return {
            "downloaded": self.downloaded,
            "refused_files": self.refused,
            "failed_files": self.failed,
            "removed": self.removed,
            "requests": self.requests,
            **self.counts,
            "window_opens_at": iso_local(self.window_opens_at),
        }


def run_stage(
    config: Config,
    store: Store,
    source: OpenReviewSource,
    *,
    wait_s: float,
    command: str,
    republish: Any,
    site_current: bool = True,
    should_stop: Callable[[], bool] | None = None,
    tick: Callable[[], None] | None = None,
) -> FilesResult:
    """One pass of hosted files (see the module docstring). ``republish()`` rewrites the
    website data (raising when it cannot); ``site_current`` says whether the push before this
    stage succeeded: files are removed only once the site no longer links them."""
    site = config.website
    assert site is not None
    result = FilesResult()
    folder = site.output_dir / FILES_DIR
    if ensure_site_dir(folder, site.output_dir):
        log.info(
            "hosted files: folder made or opened to the site folder's readers", folder=str(folder)
        )
    max_bytes = int(site.file_max_mb * 1024 * 1024)
    now = datetime.now(UTC)
    with store_writer(store, wait_s=wait_s, command=f"{command} (files)"), store.begin() as conn:
        checked = check(conn, folder, now)
        due = plan(conn, site.files, now)
        stored = queries.get_state(conn, queries.FILES_QUOTA)
    for line in checked.missing + checked.altered:
        log.warning("hosted file to fetch again", file=line)
    quota = Pacing(source, json.loads(stored) if stored else None, QUOTA_RESERVE)
    downloader = Downloader(source, folder, max_bytes, quota)
    downloader.should_stop, downloader.tick = should_stop, tick
    aborted: BaseException | None = None
    try:
        try:
            if due:
                downloader.run(due)
        except Exception as exc:
            # What the pass learnt before it stopped is still committed: the checked files
            # go into place and the files it did not finish are recorded with their attempt.
            aborted = exc
            why = f"the files stage stopped: {type(exc).__name__}: {str(exc)[:200]}"
            for w in due:
                key = (w.forum_id, w.field)
                if not any(
                    key in found
                    for found in (
                        downloader.outcome.ok,
                        downloader.outcome.refused,
                        downloader.outcome.failed,
                    )
                ):
                    downloader.outcome.failed[key] = (w, why)
        outcome = downloader.outcome
        with (
            store_writer(store, wait_s=wait_s, command=f"{command} (files)"),
            store.begin() as conn,
        ):
            links_before = hosted_files.hosted_links(conn)
            committed = commit(conn, folder, outcome, datetime.now(UTC))
            state = quota.as_state()
            if state is not None:
                queries.set_state(conn, queries.FILES_QUOTA, state)
            links_after = hosted_files.hosted_links(conn)
    finally:
        result.requests = downloader.requests
        for _, path in downloader.outcome.ok.values():
            path.unlink(missing_ok=True)  # renamed into place at commit; leftovers only
    result.downloaded, result.refused, result.failed = (
        committed.downloaded,
        committed.refused,
        committed.failed,
    )
    if quota.left() == 0 and quota.reset_at is not None:
        result.window_opens_at = quota.reset_at
    # A file the check unlinked is still linked by the site when it went after the push.
    unlinked = bool(checked.missing or checked.altered)
    if site_current and (links_after != links_before or unlinked):
        republish()  # raises when it cannot: then nothing is removed either
    if aborted is not None:  # raised after the republish: the site links what was put in place
        full = (
            no_space(aborted, folder, max_bytes * len(committed.failed))
            if isinstance(aborted, OSError)
            else None
        )
        if full is not None:
            raise OrsyncError(f"hosted files: cannot write website.output_dir: {full}") from None
        raise aborted
    if site_current:
        with (
            store_writer(store, wait_s=wait_s, command=f"{command} (files)"),
            store.begin() as conn,
        ):
            result.removed = sweep(conn, folder, set(linked_names(hosted_files.hosted_links(conn))))
    with store.connect() as conn:
        result.counts = hosted_files.hosted_counts(conn)
    log.info(
        "hosted files",
        downloaded=len(result.downloaded),
        refused=len(result.refused),
        failed=len(result.failed),
        removed=len(result.removed),
        requests=result.requests,
        **{f"now_{k}": v for k, v in result.counts.items()},
    )
    return result


def run_files_stage(
    config: Config,
    store: Store,
    source: OpenReviewSource,
    *,
    wait_s: float,
    command: str,
    republish: Any,
    site_current: bool,
    should_stop: Callable[[], bool] | None = None,
    tick: Callable[[], None] | None = None,
) -> FilesResult:
    """:func:`run_stage`, a folder that cannot be written said in one line."""
    try:
        return run_stage(
            config,
            store,
            source,
            wait_s=wait_s,
            command=command,
            republish=republish,
            site_current=site_current,
            should_stop=should_stop,
            tick=tick,
        )
    except OSError as exc:
        full = (
            no_space(exc, config.website.output_dir / FILES_DIR, None) if config.website else None
        )
        if full is not None:
            raise OrsyncError(f"hosted files: cannot write website.output_dir: {full}") from None
        raise OrsyncError(
            f"hosted files: cannot write {exc.filename or 'website.output_dir'}: "
            f"{exc.strerror or type(exc).__name__}"
        ) from None
