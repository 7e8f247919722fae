"""The push: keep the poster assignment current and write the website's files (docs/site-files.md).

Reads only the store (never OpenReview) and only the ``accepted_papers`` view (through
``AcceptedPaper``), so the website gets the allowlisted public fields of accepted papers and
nothing else: each becomes one ``PaperRecord``, from which every format is rendered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, update

from orsync import posters, rules, schedule
from orsync.children import child_environ
from orsync.config import Config, WebsiteConfig
from orsync.errors import OrsyncError
from orsync.hosted.plan import FILES_DIR
from orsync.hosted.verify import check
from orsync.lock import store_writer
from orsync.logs import get_logger
from orsync.mirror.rows import web_base
from orsync.publish import digest, notices
from orsync.publish.assignment import sessions_of, sync_sessions, update_assignment
from orsync.publish.hook import OnChangeError, run_on_change
from orsync.publish.output import (
    PushError,
    PushRefused,
    format_error,
    published_ids,
    write_files,
    write_miniconf,
)
from orsync.publish.placements import record_published
from orsync.site import (
    Day,
    PaperRecord,
    build_records,
    calendar,
    miniconf,
    render,
    with_talks,
)
from orsync.store import Store, hosted_files, models, queries
from orsync.store.binding import open_for
from orsync.store.tables import PUSH, STATE

__all__ = [
    "PushError",
    "PushRefused",
    "PushResult",
    "calendar_state",
    "child_environ",
    "preview_assignment",
    "published_ids",
    "push",
]


@dataclass
class PushResult:
    changed: list[str] = field(default_factory=list)
    assignment: posters.AssignmentResult | None = None
    problems: list[str] = field(default_factory=list)
    papers: int | None = None
    numbers: dict[str, int | None] = field(default_factory=dict)
    pins: dict[str, str] = field(default_factory=dict)
    # website.on_change run by this push: "changed" (files changed) or "pending" (run again
    # because an earlier run failed); None when it did not run.
    on_change: str | None = None
    # The earlier failure a "pending" run made up for: since, attempts, error.
    on_change_was_pending: dict[str, Any] | None = None
    # Published posters that moved, with why (docs/workshop.md#moves-of-published-posters).
    moves: list[posters.Move] = field(default_factory=list)
    # The warnings the last push did not give: the only ones a pass says (``orsync status``
    # keeps the full list), so a clash that holds for weeks is not repeated on every pass.
    new_warnings: list[str] = field(default_factory=list)
    # False when nothing the push publishes from changed since the last one: no file rendered.
    rendered: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The push as ``--json`` prints it."""
        a = self.assignment
        return {
            "outcome": "ok",
            "changed": self.changed,
            "rendered": self.rendered,
            "on_change": self.on_change,
            "on_change_was_pending": self.on_change_was_pending,
            "papers": self.papers,
            "warnings": self.problems,
            "new_warnings": self.new_warnings,
            "clashes": [
                {
                    "session": c.session_id,
                    "papers": [self.numbers.get(f) for f in c.forum_ids],
                    "forum_ids": list(c.forum_ids),
                    "authors": list(c.authors),
                    "pinned": [f for f in c.forum_ids if f in self.pins],
                }
                for c in (a.clashes if a else [])
            ],
            "moved": [m.as_dict() for m in self.moves],
        }

    def clash_lines(self) -> list[str]:
        """Each author clash in words, papers by number, saying when a pin forced it."""
        lines = []
        for c in self.assignment.clashes if self.assignment else []:
            names = [f"#{self.numbers.get(f) or f}" for f in c.forum_ids]
            line = (
                f"papers {names[0]} and {names[1]} share {', '.join(c.authors)} in poster "
                f"session {c.session_id}"
            )
            pinned_here = [n for f, n in zip(c.forum_ids, names, strict=True) if f in self.pins]
            if pinned_here:
                line += f" (caused by the pin of {' and '.join(pinned_here)}: unpin to let it move)"
            else:
                line += " (no clash-free assignment exists)"
            lines.append(line)
        return lines

    def moved_lines(self) -> list[str]:
        """``#22 P2/10 → P1/18 because its talk at 12:30 overlaps P2``, one per move."""
        return [m.line() for m in self.moves]


log = get_logger("orsync.push")


def push(
    config: Config,
    *,
    wait_s: float = 600.0,
    reoptimise: bool = False,
    force: bool = False,
    command: str = "push",
    cycle_id: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    tick: Callable[[], None] | None = None,
    skip_unchanged: bool = False,
) -> PushResult:
    """Bring the poster assignment up to date and write the website files (docs/cli.md ``push``).

    Every push is recorded in the store with its outcome (``orsync status`` shows the last one).
    The metadata is published even when the posters cannot be placed; that problem is raised
    after the files are written. A push that would drop more than ``sync.max_delete_fraction``
    of the papers the site publishes now is refused unless ``force``. ``should_stop`` and
    ``tick`` reach ``hook.run_on_change`` (the service stopping, its heartbeat). With
    ``skip_unchanged`` (the pass after a cycle) a push whose inputs and files match the last
    one's digest renders nothing (``publish.digest``); ``reoptimise`` and ``force`` always work.
    """
    result = PushResult()
    with open_for(config) as store, store_writer(store, wait_s=wait_s, command=command):
        push_id = _record_start(store, command, cycle_id)
        try:
            hooks = _Hooks(should_stop, tick)
            _push_locked(
                store,
                config,
                result,
                reoptimise=reoptimise,
                force=force,
                hooks=hooks,
                command=command,
                skip_unchanged=skip_unchanged and not (reoptimise or force),
            )
        except BaseException as exc:
            refused = isinstance(exc, PushRefused)
            error = exc.message if isinstance(exc, OrsyncError) else type(exc).__name__
            _record_end(store, push_id, result, "refused" if refused else "failed", error)
            raise
        _record_end(store, push_id, result, "ok", None)
    return result


@dataclass(frozen=True)
class _Hooks:
    should_stop: Callable[[], bool] | None = None
    tick: Callable[[], None] | None = None


def _push_locked(
    store: Store,
    config: Config,
    result: PushResult,
    *,
    reoptimise: bool,
    force: bool,
    hooks: _Hooks,
    command: str,
    skip_unchanged: bool,
) -> None:
    site = config.website
    # Hosted files first: one found missing is unlinked, which the digest then sees.
    hosted_problems = _check_hosted(store, site) if site is not None and site.files else []
    if skip_unchanged and _unchanged(store, config, result):
        return
    with store.begin() as conn:
        digest.clear(conn)
    posters_error: posters.AssignmentError | None = None
    try:
        with store.begin() as conn:
            sync_sessions(conn, config)
            result.assignment = update_assignment(conn, config, reoptimise=reoptimise)
            result.moves = result.assignment.moves if result.assignment else []
    except posters.AssignmentError as exc:
        # The posters cannot be placed, but the papers' metadata must still reach the site:
        # keep the previous assignment and publish, then report the posters problem.
        posters_error = exc
        with store.begin() as conn:
            sync_sessions(conn, config)
    files: dict[str, dict[str, str | None]] | None = None
    result.problems.extend(hosted_problems)
    with store.connect() as conn:
        papers = models.accepted_papers(conn)
        result.pins = queries.pins(conn)
        problems = day_problems(conn, config, papers, result.pins)
        if config.website is not None and config.website.files:
            # Hosted files (docs/site-files.md#hosted-files): each listed field's local copy, null until it is hosted.
            links = hosted_files.hosted_links(conn)
            files = {
                p.forum_id: {
                    name: links.get(p.forum_id, {}).get(name) for name in config.website.files
                }
                for p in papers
            }
    # One set of records feeds every file and the day, so no two of them can disagree.
    records, day = with_talks(
        schedule.Schedule.from_config(config),
        build_records(papers, sessions_of(config), files),
        config.program.presentation_from,
    )
    result.problems = [*result.problems, *problems, *day.warnings]
    result.papers = len(papers)
    result.numbers = {p.forum_id: p.number for p in papers}
    warnings = [*result.problems, *result.clash_lines()]
    with store.begin() as conn:
        said = set(queries.push_warnings(conn))
        queries.set_state(conn, queries.PUSH_WARNINGS, json.dumps(warnings))
        notices.mark_due(conn, records)  # a move shows in `status` as an update owed
    result.new_warnings = [w for w in warnings if w not in said]
    if config.website is not None:
        # What these files show, kept once they are written: the next push's reference.
        shown = {
            p.forum_id: posters.Placement(p.session_id, p.board)
            for p in papers
            if p.session_id is not None and p.board is not None
        }
        published = _Published(shown, command)
        failed, names = _publish(
            store, config, config.website, records, day, result, published, force, hooks
        )
        if failed:
            raise format_error(failed, posters_error)
    if posters_error is not None:
        error = PushError(
            f"website data published without new poster places: {posters_error.message}"
        )
        error.details.update(posters_error.details)
        raise error
    if config.website is not None:
        with store.begin() as conn:
            digest.save(conn, config, config.website.output_dir, names, len(papers))


def _unchanged(store: Store, config: Config, result: PushResult) -> bool:
    """The last push's digest still holds: its papers and warnings, nothing rendered."""
    with store.connect() as conn:
        last = digest.unchanged(conn, config)
        if last is not None:
            result.problems = queries.push_warnings(conn)
            result.papers, result.rendered = last.papers, False
    return last is not None


@dataclass(frozen=True)
class _Published:
    places: dict[str, posters.Placement]
    command: str


def _check_hosted(store: Store, site: WebsiteConfig) -> list[str]:
    """The data files link only hosted files that are there, whole: one missing or altered
    (deleted by hand, a new ``website.output_dir``) is unlinked and due again for the files
    stage. What was found, in words."""
    folder = site.output_dir / FILES_DIR
    with store.begin() as conn:
        checked = check(conn, folder, datetime.now(UTC))
    lines = checked.missing + checked.altered
    if len(lines) > 3:
        return [
            f"{len(checked.missing)} hosted files missing and {len(checked.altered)} altered "
            f"in {folder}: not linked until they are fetched again"
        ]
    return [f"hosted file {line}: not linked until it is fetched again" for line in lines]


def day_problems(
    conn: Connection,
    config: Config,
    papers: Sequence[models.AcceptedPaper] | None = None,
    pins: Mapping[str, str] | None = None,
) -> list[str]:
    """What ``orsync check`` and ``orsync program`` say is wrong with the day, as the push's
    warnings (errors first): the same validation, so the three never disagree. The push still
    publishes the papers' metadata; the posters' own refusals fail it after that."""
    facts = rules.gather(conn, config, papers=papers, pins=pins)
    return [p.message for p in rules.validate(facts)]


def calendar_state(store: Store, config: Config, day: Day) -> dict[str, calendar.EventState]:
    """The calendar's per-event sequences after this push, saved in the store first.

    Saved before the files are written: a push that fails to write them leaves the state one
    step ahead, and the next push writes the same sequences (never a lower one).
    """
    with store.begin() as conn:
        stored = calendar.load_state(queries.get_state(conn, calendar.STATE_KEY))
        state = calendar.next_state(day, config.openreview.venue_id, stored, datetime.now(UTC))
        if state != stored:
            queries.set_state(conn, calendar.STATE_KEY, calendar.dump_state(state))
    return state


def _publish(
    store: Store,
    config: Config,
    site: WebsiteConfig,
    records: list[PaperRecord],
    day: Day,
    result: PushResult,
    places: _Published,
    force: bool,
    hooks: _Hooks,
) -> tuple[dict[str, Exception], list[str]]:
    """Write the formats that render (a failed one's files stay as they were) and run the hook;
    the formats that failed, by name, and the names of every file rendered (the digest's)."""
    out = site.output_dir
    published = published_ids(out)
    if published and not force:
        dropped = published - {r.id for r in records}
        if len(dropped) / len(published) > config.sync.max_delete_fraction:
            raise PushRefused(
                f"refusing to publish {len(records)} papers over the {len(published)} that {out} "
                f"publishes now ({len(dropped)} would go, more than sync.max_delete_fraction = "
                f"{config.sync.max_delete_fraction}); the store {store.describe()} looks "
                "empty or is not the one that made this site: check store.url, run `orsync "
                "pull`, or rerun with --force if the papers really went"
            )
    if "miniconf" in site.formats and site.miniconf_folder.resolve() == out.resolve():
        raise PushError(miniconf.OWN_FOLDER)
    state = calendar_state(store, config, day) if "ics" in site.formats else None
    failed: dict[str, Exception] = {}
    files = render(
        records,
        sessions_of(config),
        site.formats,
        day=day,
        venue_id=config.openreview.venue_id,
        calendar_state=state,
        failures=failed,
        openreview_site=web_base(config.openreview.baseurl),
    )
    for fmt, exc in failed.items():
        log.error("website format failed", format=fmt, error=f"{type(exc).__name__}: {exc}")
    result.changed = write_files(out, files, "website.output_dir", out)
    names = list(files)
    if "miniconf" in site.formats:
        changed, written = write_miniconf(site, out, records, day, failed)
        result.changed += changed
        names += written
    with store.begin() as conn:
        record_published(conn, places.places, result.moves, places.command)
    _run_hook(store, site, result, hooks)
    return failed, names


def _run_hook(store: Store, site: WebsiteConfig, result: PushResult, hooks: _Hooks) -> None:
    """website.on_change after files changed, or again after a run that failed: the files of a
    failed run are written, so the next push finds them unchanged, and only the record in the
    store (``ON_CHANGE_PENDING``) makes it deploy them."""
    with store.connect() as conn:
        pending = queries.on_change_pending(conn)
    if not site.on_change:
        if pending is not None:  # the hook was removed from the config: nothing is owed
            _set_pending(store, None)
        return
    if not result.changed and pending is None:
        return
    # Recorded before it runs: a push killed while its hook runs leaves it owed too.
    since = (pending or {}).get("since") or datetime.now(UTC).isoformat(timespec="seconds")
    attempts = int((pending or {}).get("attempts") or 0)
    owed = {"since": since, "attempts": attempts, "error": (pending or {}).get("error")}
    _set_pending(store, owed)
    result.on_change = "changed" if result.changed else "pending"
    result.on_change_was_pending = pending
    try:
        run_on_change(
            site.on_change,
            child_environ(),
            site.output_dir,
            site.on_change_timeout_s,
            should_stop=hooks.should_stop,
            tick=hooks.tick,
        )
    except OnChangeError as exc:
        _set_pending(store, {**owed, "attempts": attempts + 1, "error": exc.message})
        raise PushError(
            f"{exc.message} (the files are written; the next push, pull or run runs it again)"
        ) from None
    _set_pending(store, None)


def _set_pending(store: Store, owed: dict[str, Any] | None) -> None:
    with store.begin() as conn:
        if owed is None:
            conn.execute(delete(STATE).where(STATE.c.key == queries.ON_CHANGE_PENDING))
        else:
            queries.set_state(conn, queries.ON_CHANGE_PENDING, json.dumps(owed))


def _record_start(store: Store, command: str, cycle_id: int | None) -> int:
    with store.begin() as conn:
        inserted = conn.execute(
            insert(PUSH).values(
                command=command,
                cycle_id=cycle_id,
                started_at=datetime.now(UTC),
                outcome="running",
                changed="[]",
            )
        ).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def _record_end(
    store: Store, push_id: int, result: PushResult, outcome: str, error: str | None
) -> None:
    try:
        with store.begin() as conn:
            conn.execute(
                update(PUSH)
                .where(PUSH.c.id == push_id)
                .values(
                    finished_at=datetime.now(UTC),
                    outcome=outcome,
                    papers=result.papers,
                    changed=json.dumps(result.changed),
                    error=error,
                )
            )
    except OrsyncError:
        if error is None:
            raise
        # The store is failing too; the push's own error is the one to report.


def preview_assignment(config: Config, *, reoptimise: bool) -> PushResult:
    """What ``posters assign`` would do, computed under the lock and rolled back."""
    result = PushResult()
    with (
        open_for(config) as store,
        store_writer(store, wait_s=600.0, command="posters assign --dry-run"),
        store.connect() as conn,
        conn.begin() as tx,
    ):
        sync_sessions(conn, config)
        result.assignment = update_assignment(conn, config, reoptimise=reoptimise)
        result.moves = result.assignment.moves if result.assignment else []
        papers = models.accepted_papers(conn)
        result.pins = queries.pins(conn)
        result.problems = day_problems(conn, config, papers, result.pins)
        tx.rollback()
    result.numbers = {p.forum_id: p.number for p in papers}
    result.papers = len(papers)
    return result
