"""One pass of orsync's job: a sync cycle, then the stages that publish from the store.

``orsync pull``, ``orsync run`` and ``orsync demo`` all go through :func:`run_pass`::

    cycle (under the writer lock) → push: posters, then the website files → hosted files

:func:`stages` is the one place where a later stage is added (hosted files, the program): it
gets the cycle's summary and the pass's options, and records what it did in the result.

A cycle that fails raises, carrying its summary (``sync.summary_of``). A stage that fails after
a good cycle does not undo the cycle: its error is kept in the result, and each caller says it in
its own way (``pull`` exits with the error's code after printing the cycle; the service puts it in
``STATUS=`` and goes on).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orsync.config import Config
from orsync.errors import OrsyncError
from orsync.lock import lock_path, store_writer, writer_lock
from orsync.password import read_password
from orsync.source import OpenReviewSource, RetryPolicy
from orsync.store import never_synced, sqlite_files, sqlite_path_of
from orsync.store.binding import open_for
from orsync.sync import CycleOptions, CycleSummary, Progress, run_cycle

if TYPE_CHECKING:
    from orsync.hosted import FilesResult
    from orsync.lock import OnWait
    from orsync.publish import PushResult
    from orsync.source import OpenReviewSource
    from orsync.store import Store

LockFactory = Callable[[], AbstractContextManager[None]]


@dataclass
class PassOptions:
    full: bool = False
    force: bool = False
    push: bool = True
    command: str = "pull"
    wait_s: float = 600.0
    progress: Progress | None = None
    on_wait: OnWait | None = None
    # The service's stop request and heartbeat, for stages that run long (on_change hooks).
    should_stop: Callable[[], bool] | None = None
    tick: Callable[[], None] | None = None
    # Set by run_pass for the stages that need them (hosted files).
    store: Store | None = None
    source: OpenReviewSource | None = None


@dataclass
class StageError:
    stage: str
    error: OrsyncError
    cause: BaseException | None = None  # an unexpected exception behind ``error``


@dataclass
class PassResult:
    cycle: CycleSummary
    push: PushResult | None = None
    files: FilesResult | None = None
    errors: list[StageError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_first_error(self) -> None:
        """For one-shot callers: the first stage's failure, with what the pass did as details."""
        if not self.errors:
            return
        failed = self.errors[0]
        failed.error.details.setdefault("cycle", self.cycle.as_dict())
        failed.error.details[failed.stage] = {"outcome": "failed", "error": failed.error.message}
        raise failed.error


Stage = Callable[[Config, PassResult, PassOptions], None]


def _push_stage(config: Config, result: PassResult, options: PassOptions) -> None:
    # A stage's work is loaded when the stage runs (docs/architecture.md#the-layer-rule): a
    # ``pull --no-push`` never loads the renderers, the read models or the solver's plumbing.
    from orsync import publish

    result.push = publish.push(
        config,
        wait_s=options.wait_s,
        force=options.force,
        command=options.command,
        cycle_id=result.cycle.cycle_id,
        should_stop=options.should_stop,
        tick=options.tick,
        skip_unchanged=True,
    )


def _files_stage(config: Config, result: PassResult, options: PassOptions) -> None:
    """Hosted files (docs/site-files.md#hosted-files), after the push: the metadata never waits for a download. When
    files arrive or go, the website data is written again to link them."""

    from orsync import hosted  # when the stage runs, as ``_push_stage``

    assert options.store is not None and options.source is not None
    site_current = result.push is not None

    def republish() -> None:
        first, result.push = result.push, None
        _push_stage(config, result, replace(options, command=f"{options.command} (files)"))
        if first is not None and result.push is not None:
            result.push.changed = sorted({*first.changed, *result.push.changed})
            if result.push.on_change is None:  # the pass ran it, in its first push
                result.push.on_change = first.on_change
                result.push.on_change_was_pending = first.on_change_was_pending
            result.push.moves = first.moves + result.push.moves
            result.push.new_warnings = [
                *first.new_warnings,
                *(w for w in result.push.new_warnings if w not in first.new_warnings),
            ]

    result.files = hosted.run_files_stage(
        config,
        options.store,
        options.source,
        wait_s=options.wait_s,
        command=options.command,
        republish=republish,
        site_current=site_current,
        should_stop=options.should_stop,
        tick=options.tick,
    )


def stages(config: Config, options: PassOptions) -> list[tuple[str, Stage]]:
    """The stages after the cycle, in order. A new stage (hosted files, the program) goes here."""
    out: list[tuple[str, Stage]] = []
    if options.push and config.website is not None:
        out.append(("push", _push_stage))
        if config.website.files:
            out.append(("files", _files_stage))
    return out


def cycle_options(config: Config, options: PassOptions) -> CycleOptions:
    return CycleOptions(
        venue_id=config.openreview.venue_id,
        baseurl=config.openreview.baseurl,
        full=options.full,
        force=options.force,
        full_every=config.sync.full_every,
        max_delete_fraction=config.sync.max_delete_fraction,
        progress=options.progress,
    )


def run_pass(
    config: Config,
    store: Store,
    source: OpenReviewSource,
    options: PassOptions,
    *,
    lock: LockFactory | None = None,
) -> PassResult:
    """The cycle under the writer lock, then every stage; see the module docstring.

    ``lock`` makes the writer lock (the service waits for it in its own, stoppable way);
    by default the store's lock, waiting ``options.wait_s``.
    """

    def default_lock() -> AbstractContextManager[None]:
        return store_writer(
            store, wait_s=options.wait_s, command=options.command, on_wait=options.on_wait
        )

    with (lock or default_lock)():
        summary = run_cycle(store, source, cycle_options(config, options))
    result = PassResult(summary)
    options = replace(options, store=store, source=source)
    for name, stage in stages(config, options):
        if options.should_stop is not None and options.should_stop():
            break
        try:
            stage(config, result, options)
        except OrsyncError as exc:
            result.errors.append(StageError(name, exc))
        except Exception as exc:  # a bug in a stage must not undo the good cycle
            wrapped = OrsyncError(f"unexpected {type(exc).__name__}: {exc}; rerun with -v")
            result.errors.append(StageError(name, wrapped, exc))
    return result


def make_source(config: Config, **kwargs: Any) -> OpenReviewSource:
    """The OpenReview client of ``config``: its account (the password read here, and so
    registered with the secret filter before any request) and its retry policy."""

    return OpenReviewSource(
        config.openreview.baseurl,
        username=config.openreview.username,
        password=read_password(config),
        timeout_s=config.openreview.timeout_s,
        policy=kwargs.pop("policy", None)
        or RetryPolicy(
            attempts=config.openreview.retry_attempts,
            initial_s=config.openreview.retry_initial_s,
            max_wait_s=config.openreview.retry_max_wait_s,
        ),
        **kwargs,
    )


@contextlib.contextmanager
def opened(
    config: Config, source: OpenReviewSource | None = None
) -> Iterator[tuple[Store, OpenReviewSource]]:
    """The store and the source of a one-shot pass, closed afterwards."""

    source = source or make_source(config)
    with open_for(config) as store:
        yield store, source


def pull(
    config: Config, options: PassOptions, *, source: OpenReviewSource | None = None
) -> PassResult:
    """``orsync pull`` and the demo: one pass with a store opened for it.

    A first pull that fails (a rejected login, an unreachable venue) takes away the SQLite
    files it made: an empty store left behind would look like a mirror to the next command.
    A store that existed before is never touched."""
    made = _files_not_there(config.store.url)
    try:
        with opened(config, source) as (store, src):
            return run_pass(config, store, src, options)
    except BaseException:
        if made:
            _take_back(config.store.url, made)
        raise


def _take_back(store_url: str, made: list[Path]) -> None:
    """Remove the store files a failed first pull made, under the writer lock taken without
    waiting: a pull of another process that holds it, or has synced into the store since, keeps
    them."""
    database = made[0]
    lock_file = lock_path(store_url, database)
    if lock_file is None:
        return
    with (
        contextlib.suppress(OrsyncError, OSError),
        writer_lock(lock_file, wait_s=0, command="pull (taking back an empty store)"),
    ):
        if not never_synced(database):
            return
        for path in made:
            path.unlink(missing_ok=True)


def _files_not_there(store_url: str) -> list[Path]:
    """The files of a SQLite store that do not exist yet, the database first; none when the
    database itself exists (or the store is not SQLite)."""
    path = sqlite_path_of(store_url)
    if path is None or path.exists():
        return []
    lock = lock_path(store_url, path)
    files = [*sqlite_files(path), *([lock] if lock is not None else [])]
    return [f for f in files if not f.exists()]
