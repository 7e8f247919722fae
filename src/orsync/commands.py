"""The operations behind the commands: each CLI command calls one function here.

Library users (notebooks, tests) call these too; nothing here prints. Most delegate to the
module that does the work and exist so that the CLI has one door; they import it when called,
so that a reading command (``status``, ``changes``) never loads the cycle, the solver or the
renderers it does not use.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orsync import lock
from orsync.config import Config, register_password
from orsync.errors import OrsyncError, UsageError
from orsync.files import HOSTED_DIR, holds, inside, sqlite_file, write_private
from orsync.schedule import Schedule
from orsync.store import hosted_files, queries
from orsync.store.binding import read_for
from orsync.store.queries import (
    INTERRUPTED_ERROR,
    POSTERS_ANNOUNCED,
    POSTERS_MOVES,
    RATE_LIMITED_UNTIL,
)

if TYPE_CHECKING:
    from orsync.check import CheckReport, VenueList
    from orsync.demo import EmulatorPhase
    from orsync.pipeline import PassResult
    from orsync.publish import Frozen, PinResult, PushResult
    from orsync.publish.notices import NoticeRun
    from orsync.publish.signs import Signs
    from orsync.report import Report
    from orsync.site import Day
    from orsync.source import OpenReviewSource
    from orsync.sync import Progress
    from orsync.talks import Shortlist


def pull(
    config: Config,
    *,
    full: bool = False,
    force: bool = False,
    push: bool = True,
    wait_s: float = 600.0,
    progress: Progress | None = None,
    on_wait: lock.OnWait | None = None,
    source: OpenReviewSource | None = None,
) -> PassResult:
    """One pass: a sync cycle under the writer lock, then (with ``push``) the website stages."""
    from orsync import pipeline

    options = pipeline.PassOptions(
        full=full, force=force, push=push, wait_s=wait_s, progress=progress, on_wait=on_wait
    )
    return pipeline.pull(config, options, source=source)


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
        return cls(**_iso_times(row))

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
        return cls(**_iso_times(row))

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


def _iso_times(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("started_at", "finished_at", "quota_reset_at", "at", "seen_at"):
        if out.get(key) is not None:
            out[key] = out[key].isoformat(timespec="seconds")
    return out


def parse_since(text: str, option: str = "--since") -> datetime:
    """``2024-05-01``, an ISO time, or a span back from now: ``30m``, ``12h``, ``7d``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if text and text[-1] in units and text[:-1].isdigit():
        try:
            return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
        except OverflowError:
            raise UsageError(
                f"{option} {text!r} reaches before year 1; use a shorter span"
            ) from None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{option} {text!r}: use an ISO date or time, or a span like 12h or 7d"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass
class Changes:
    """``changes``, newest first; with ``first_pull`` the first pull's own are counted there."""

    rows: list[dict[str, Any]]
    first_pull: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"changes": self.rows, "first_pull": self.first_pull}


def changes(
    config: Config, *, since: datetime | None = None, limit: int | None = None, apart: bool = False
) -> Changes:
    """What changed in the venue, newest first (docs/cli.md ``changes``)."""
    with read_for(config) as store, store.connect() as conn:
        first = queries.first_pull(conn) if apart else None
        found = queries.changes(conn, since=since, limit=limit, after_cycle=first and first[0])
        rows = [_iso_times(r) for r in found]
    if first is None:
        return Changes(rows)
    return Changes(
        rows, _iso_times({"cycle": first[0], "started_at": first[1], "created": first[2]})
    )


REPORT_NAME = "orsync-report.html"


def report(
    config: Config,
    html: Path | None = None,
    *,
    force: bool = False,
    expected_reviews: int = 3,
    due: datetime | None = None,
) -> Report:
    """The chairs' review overview, its HTML page written to ``html`` (owner-only: reviews);
    by default beside the SQLite store (else the config file), never the shell's folder."""
    from orsync import report as reports

    if html is None:
        store = sqlite_file(config.store.url)
        beside = store if store is not None else config.source
        html = beside.absolute().with_name(REPORT_NAME) if beside is not None else Path(REPORT_NAME)
    _outside_site(config, html, "--html", force)
    data = reports.build(config, expected_reviews=expected_reviews, due=due)
    try:
        write_private(html, reports.render_html(data))
    except OSError as exc:
        raise UsageError(f"cannot write {html}: {exc.strerror}") from None
    return replace(data, html=str(html))


def export(
    config: Config, what: str, fmt: str, out: Path | None = None, *, force: bool = False
) -> str:
    """Papers, submissions or reviews as text; written to ``out`` (owner-only) when given."""
    from orsync.export import export as render

    if out is not None:
        _outside_site(config, out, "--out", force)
    text = render(config, what, fmt)
    if out is not None:
        try:
            write_private(out, text)  # reviews: owner-only, whatever the umask
        except OSError as exc:
            raise UsageError(
                f"cannot write --out {out}: {exc.strerror}; choose a path in an existing, "
                "writable folder"
            ) from None
    return text


def _outside_site(config: Config, path: Path, option: str, force: bool) -> None:
    """A chairs' file is not written where the site is published from, unless forced
    (docs/security.md#confidential-files)."""
    site = config.website.output_dir if config.website is not None else None
    if site is not None and not force and inside(path, site):
        raise UsageError(
            f"{option} {path} is inside website.output_dir {site}, which is published: what "
            "only the chairs may read would be too; write it elsewhere, or pass --force"
        )


def push(config: Config, *, force: bool = False) -> PushResult:
    """The poster assignment brought up to date and the website files written (no network)."""
    from orsync import publish

    register_password(config)  # an on_change hook that echoes it must not show it
    return publish.push(config, force=force)


@dataclass
class Assigned:
    """What ``posters assign`` did (or would do), and the sessions afterwards (not on a dry run)."""

    result: PushResult
    posters: Posters | None


def assign_posters(config: Config, *, reoptimise: bool = False, dry_run: bool = False) -> Assigned:
    """Bring the assignment up to date (and publish it), or only compute it with ``dry_run``."""
    from orsync import publish

    if not config.posters.sessions:
        raise UsageError("no [[posters.sessions]] in the config; add the sessions first")
    if dry_run:
        return Assigned(publish.preview_assignment(config, reoptimise=reoptimise), None)
    register_password(config)  # an on_change hook that echoes it must not show it
    result = publish.push(config, reoptimise=reoptimise, command="posters assign")
    return Assigned(result, posters(config))


@dataclass
class Posters:
    """``posters show``: the places, and the last push's warnings (clashes among them), all."""

    rows: list[dict[str, Any]]
    warnings: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"posters": self.rows, "warnings": self.warnings}


def posters(config: Config) -> Posters:
    """``posters show``: each accepted paper's place, pin and talk times, by session, board and
    number, and the last push's warnings.

    The store's values as they are (the terminal makes them safe); the talks are the
    configured ones, not the decision text: what the chairs set is what they see.
    """
    with read_for(config) as store, store.connect() as conn:
        papers = queries.poster_listing(conn)
        pins = queries.pins(conn)
        warnings = queries.push_warnings(conn)
    day = Schedule.from_config(config)
    rows: list[dict[str, Any]] = [
        {
            "session_id": p.session_id,
            "board": p.board,
            "number": p.number,
            "forum_id": p.forum_id,
            "title": p.title,
            "authors": queries.json_list(p.authors),  # None: not public yet
            "presentation": p.presentation,
            "pinned": pins.get(p.forum_id),
            "talk": ", ".join(
                start.strftime("%H:%M") for start, _ in day.talk_spans(p.number, p.forum_id)
            )
            or None,
        }
        for p in papers
    ]
    order = {s.id: i for i, s in enumerate(config.posters.sessions)}
    rows.sort(
        key=lambda r: (order.get(r["session_id"], len(order)), r["board"] or 0, r["number"] or 0)
    )
    return Posters(rows, warnings)


@dataclass
class Pinned:
    """A pin and the push after it; a failed push is kept so the pin is reported first."""

    pin: PinResult
    push: PushResult | None = None
    push_error: OrsyncError | None = None

    def raise_push_error(self) -> None:
        if self.push_error is not None:
            raise self.push_error


def pin(config: Config, paper: str, session: str) -> Pinned:
    """Pin a paper to a session, then publish when [website] is configured."""
    from orsync import publish

    done = Pinned(publish.pin(config, paper, session))
    if config.website is not None:
        register_password(config)  # an on_change hook that echoes it must not show it
        try:
            done.push = publish.push(config, command="posters pin")
        except OrsyncError as exc:
            done.push_error = exc
    return done


def notify_authors(config: Config, *, send: bool = False, wait_s: float = 600.0) -> NoticeRun:
    """Each accepted paper's notice (docs/workshop.md#telling-the-authors): listed, or with
    ``send`` sent through OpenReview as a program chair, once per content."""
    from orsync.pipeline import make_source
    from orsync.publish import notices

    source = None
    if send:
        source = make_source(config)
        source.connect()
    return notices.notify(config, source, wait_s=wait_s)


def freeze_posters(config: Config) -> Frozen:
    """Record that the published poster places are announced: no automatic move from now on."""
    from orsync import publish

    return publish.freeze(config)


def unpin(config: Config, paper: str) -> PinResult:
    """Release a pin; the paper keeps its board until a rule forces a move."""
    from orsync import publish

    return publish.unpin(config, paper)


def poster_signs(config: Config, out: Path, *, paper: str = "a4", pdf: bool = False) -> Signs:
    """The board signs' page (one printed page per board in use), and its PDF with ``pdf``."""
    from orsync.publish.signs import print_signs

    return print_signs(config, out, paper="letter" if paper == "letter" else "a4", pdf=pdf)


def suggest_talks(config: Config, count: int | None = None) -> Shortlist:
    """The contributed-talk shortlist (advice for the chairs; confidential)."""
    from orsync import talks

    return talks.suggest(config, count)


def program(config: Config) -> Day:
    """The workshop day in time order, with what is wrong and what is still missing (read-only).

    The chairs' view: a talk whose paper is decided accept but not released shows that paper,
    marked; the site's ``program.json`` shows the talk without it until the release.
    """
    # The site renderers and the read models load jinja2 and SQLModel: only this command needs
    # them, so reading commands (status) do not pay for them at start-up.
    from orsync import rules, schedule, site
    from orsync.store import models

    with read_for(config) as store, store.connect() as conn:
        papers = models.accepted_papers(conn)
        facts = rules.gather(conn, config, papers=papers)
    day = schedule.Schedule.from_config(config)
    records = site.build_records(papers, list(day.sessions))
    built = site.with_talks(day, records, config.program.presentation_from)[1]
    built.problems = rules.validate(facts)
    built.unreleased = facts.unreleased_talks()
    return built


def check(config_path: Path | None) -> CheckReport:
    """Every check of ``orsync check``, from the config file to the output folder."""
    from orsync.check import run_checks

    return run_checks(config_path)


def venues(config: Config, prefix: str | None = None) -> VenueList:
    """The prefix used and the venue groups under it that the account can read."""
    from orsync.check import find_venues

    return find_venues(config, prefix)


def emulator(**options: Any) -> None:
    """Serve the bundled emulator until SIGINT/SIGTERM (see ``orsync.emulator.serve_forever``)."""
    from orsync.emulator import serve_forever

    serve_forever(**options)


def emulator_advance(port: int, to: str | None = None) -> EmulatorPhase:
    """Move a running emulator to ``to``, or its next phase (``orsync.demo.advance``)."""
    from orsync.demo import advance

    return advance(port, to)


def demo(folder: Path, *, size: int | None = None, verbosity: int = 0) -> Iterator[str]:
    """The tour against the bundled emulator; yields lines for the user."""
    from orsync.demo import run_demo

    return run_demo(folder, size=size, verbosity=verbosity)
