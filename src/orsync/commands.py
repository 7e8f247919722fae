"""The operations behind the commands: each CLI command calls one function here.

Library users (notebooks, tests) call these too; nothing here prints. Most delegate to the
module that does the work and exist so that the CLI has one door; they import it when called,
so that a reading command (``status``, ``changes``) never loads the cycle, the solver or the
renderers it does not use.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orsync import lock
from orsync.config import Config
from orsync.errors import OrsyncError, UsageError
from orsync.files import inside, sqlite_file, write_private
from orsync.password import register_password
from orsync.schedule import Schedule
from orsync.status import CycleRow as CycleRow
from orsync.status import PushRow as PushRow
from orsync.status import Status as Status
from orsync.status import iso_times
from orsync.status import status as status
from orsync.store import queries
from orsync.store.binding import read_for

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
        rows = [iso_times(r) for r in found]
    if first is None:
        return Changes(rows)
    return Changes(
        rows, iso_times({"cycle": first[0], "started_at": first[1], "created": first[2]})
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
