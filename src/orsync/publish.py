"""Push: keep the poster assignment current and write the website's data files (SPEC §6).

Reads only the store (never OpenReview) and only the ``accepted_papers`` view, so the website
gets the allowlisted public fields of accepted papers and nothing else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from orsync import ics, posters, program, schedule, secrets, website
from orsync.config import Config, WebsiteConfig
from orsync.errors import EXIT_STORE, EXIT_USAGE, OrsyncError, UsageError
from orsync.lock import store_writer
from orsync.notify import Notifier
from orsync.store import Store, open_reader, open_store, queries
from orsync.store.tables import ASSIGNMENT, PIN, PUSH, SESSION


@dataclass
class PushResult:
    changed: list[str] = field(default_factory=list)
    assignment: posters.AssignmentResult | None = None
    problems: list[str] = field(default_factory=list)
    papers: int | None = None
    numbers: dict[str, int | None] = field(default_factory=dict)
    pins: dict[str, str] = field(default_factory=dict)

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
        if self.assignment is None:
            return []
        return [
            f"paper #{self.numbers.get(f) or f} moves to {p.session_id} board {p.board}"
            for f in self.assignment.moved
            for p in [self.assignment.placements[f]]
        ]


def child_environ(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment for ``website.on_change``: no secrets, no systemd notify socket."""
    return secrets.child_environ(Notifier.child_environ(environ))


def sessions_of(config: Config) -> list[schedule.Session]:
    """The poster sessions in time order."""
    return list(schedule.Schedule.from_config(config).sessions)


def _sync_sessions(conn: Connection, config: Config) -> None:
    conn.execute(delete(SESSION))
    rows = [
        {
            "id": s.id,
            "name": s.name,
            "start": s.start.isoformat(),
            "end": s.end.isoformat(),
            "position": i,
        }
        for i, s in enumerate(config.posters.sessions)
    ]
    if rows:
        conn.execute(insert(SESSION), rows)


def _talks(day: schedule.Schedule, row: Mapping[str, Any]) -> tuple[schedule.Span, ...]:
    """A paper's talk slots; the config may name it by number or by forum id."""
    return day.talk_spans(row["number"], str(row["forum_id"]))


def update_assignment(
    conn: Connection,
    config: Config,
    *,
    time_limit_s: float = posters.DEFAULT_TIME_LIMIT_S,
    reoptimise: bool = False,
) -> posters.AssignmentResult | None:
    """Place newly accepted papers, drop departed ones, keep everyone else where they were.

    With ``reoptimise`` everyone may move to reduce author clashes: for chairs, before announcing.
    """
    if not config.posters.sessions:
        return None
    rows = queries.accepted_papers(conn)
    day = schedule.Schedule.from_config(config)
    papers = [
        posters.PosterPaper(
            forum_id=row["forum_id"],
            number=int(row["number"] or 0),
            author_keys=posters.author_keys(row["authors"], row["authorids"] or None),
            keywords=tuple(row["keywords"]),
            talks=_talks(day, row),
        )
        for row in rows
    ]
    known_sessions = {s.id for s in config.posters.sessions}
    previous = {
        r.forum_id: posters.Placement(r.session_id, int(r.board))
        for r in conn.execute(select(ASSIGNMENT))
        if r.session_id in known_sessions
    }
    pins = queries.pins(conn)
    result = posters.assign(
        papers,
        list(day.sessions),
        config.posters.boards_per_session,
        previous,
        pins,
        time_limit_s=time_limit_s,
        reoptimise=reoptimise,
    )
    now = datetime.now(UTC)
    current = {r.forum_id: (r.session_id, int(r.board)) for r in conn.execute(select(ASSIGNMENT))}
    # Moves as the chairs see them: against the stored places, including papers whose session
    # was removed from the config (the solver treats those as new).
    result.moved = sorted(
        (
            fid
            for fid, place in result.placements.items()
            if fid in current and current[fid] != (place.session_id, place.board)
        ),
        key=lambda fid: (result.placements[fid].session_id, result.placements[fid].board),
    )
    gone = [fid for fid in current if fid not in result.placements]
    if gone:
        conn.execute(delete(ASSIGNMENT).where(ASSIGNMENT.c.forum_id.in_(gone)))
    for fid, place in sorted(result.placements.items()):
        if fid not in current:
            conn.execute(
                insert(ASSIGNMENT).values(
                    forum_id=fid, session_id=place.session_id, board=place.board, assigned_at=now
                )
            )
        elif current[fid] != (place.session_id, place.board):
            conn.execute(
                update(ASSIGNMENT)
                .where(ASSIGNMENT.c.forum_id == fid)
                .values(session_id=place.session_id, board=place.board, assigned_at=now)
            )
    return result


class PushError(OrsyncError):
    """The website push could not finish: an unusable output folder, a failed hook, posters."""

    exit_code = EXIT_USAGE


class PushRefused(OrsyncError):
    """The push would unpublish most of the site: the store looks empty or is the wrong one."""

    exit_code = EXIT_STORE


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
) -> PushResult:
    """Bring the poster assignment up to date and write the website files (SPEC §2 ``push``).

    Every push is recorded in the store with its outcome (``orsync status`` shows the last one).
    The metadata is published even when the posters cannot be placed; that problem is raised
    after the files are written. A push that would drop more than ``sync.max_delete_fraction``
    of the papers the site publishes now is refused unless ``force``. ``should_stop`` and
    ``tick`` reach ``website.run_on_change`` (the service stopping, its heartbeat).
    """
    store = open_store(config.store.url)
    result = PushResult()
    try:
        with store_writer(store, wait_s=wait_s, command=command):
            push_id = _record_start(store, command, cycle_id)
            try:
                hooks = _Hooks(should_stop, tick)
                _push_locked(store, config, result, reoptimise=reoptimise, force=force, hooks=hooks)
            except BaseException as exc:
                refused = isinstance(exc, PushRefused)
                error = exc.message if isinstance(exc, OrsyncError) else type(exc).__name__
                _record_end(store, push_id, result, "refused" if refused else "failed", error)
                raise
            _record_end(store, push_id, result, "ok", None)
    finally:
        store.dispose()
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
) -> None:
    posters_error: posters.AssignmentError | None = None
    try:
        with store.begin() as conn:
            _sync_sessions(conn, config)
            result.assignment = update_assignment(conn, config, reoptimise=reoptimise)
    except posters.AssignmentError as exc:
        # The posters cannot be placed, but the papers' metadata must still reach the site:
        # keep the previous assignment and publish, then report the posters problem.
        posters_error = exc
        with store.begin() as conn:
            _sync_sessions(conn, config)
    with store.connect() as conn:
        rows = queries.accepted_papers(conn)
        result.pins = queries.pins(conn)
        if config.website is not None and config.website.files:
            # Hosted files (SPEC §10): each listed field's local copy, null until it is hosted.
            links = queries.hosted_links(conn)
            for row in rows:
                mine = links.get(str(row["forum_id"]), {})
                row["files"] = {name: mine.get(name) for name in config.website.files}
    result.problems = talk_problems(config, rows)
    result.papers = len(rows)
    result.numbers = {str(r["forum_id"]): r["number"] for r in rows}
    if config.website is not None:
        _publish(store, config, config.website, rows, result, force=force, hooks=hooks)
    if posters_error is not None:
        raise PushError(
            f"website data published without new poster places: {posters_error.message}"
        )


def calendar_state(store: Store, config: Config, day: program.Day) -> dict[str, ics.EventState]:
    """The calendar's per-event sequences after this push, saved in the store first.

    Saved before the files are written: a push that fails to write them leaves the state one
    step ahead, and the next push writes the same sequences (never a lower one).
    """
    with store.begin() as conn:
        stored = ics.load_state(queries.get_state(conn, ics.STATE_KEY))
        state = ics.next_state(day, config.openreview.venue_id, stored, datetime.now(UTC))
        if state != stored:
            queries.set_state(conn, ics.STATE_KEY, ics.dump_state(state))
    return state


def _publish(
    store: Store,
    config: Config,
    site: WebsiteConfig,
    rows: list[dict[str, Any]],
    result: PushResult,
    *,
    force: bool,
    hooks: _Hooks,
) -> None:
    out = site.output_dir
    published = website.published_ids(out)
    if published and not force:
        dropped = published - {str(r["forum_id"]) for r in rows}
        if len(dropped) / len(published) > config.sync.max_delete_fraction:
            raise PushRefused(
                f"refusing to publish {len(rows)} papers over the {len(published)} that {out} "
                f"publishes now ({len(dropped)} would go, more than sync.max_delete_fraction = "
                f"{config.sync.max_delete_fraction}); the store {store.describe()} looks "
                "empty or is not the one that made this site: check store.url, run `orsync "
                "pull`, or rerun with --force if the papers really went"
            )
    day = program.assemble(schedule.Schedule.from_config(config), rows)
    calendar = calendar_state(store, config, day) if "ics" in site.formats else None
    files = website.render(
        rows,
        sessions_of(config),
        site.formats,
        day=day,
        venue_id=config.openreview.venue_id,
        calendar=calendar,
    )
    try:
        result.changed = website.write_atomically(out, files)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        where = exc.filename or out
        raise PushError(
            f"cannot write website.output_dir {out} ({where}: {reason}); make it a folder this "
            "user can write, or change website.output_dir"
        ) from None
    if result.changed and site.on_change:
        try:
            website.run_on_change(
                site.on_change,
                child_environ(),
                out,
                site.on_change_timeout_s,
                should_stop=hooks.should_stop,
                tick=hooks.tick,
            )
        except website.OnChangeError as exc:
            raise PushError(f"{exc.message} (the files are written)") from None


def talk_problems(config: Config, rows: list[dict[str, Any]]) -> list[str]:
    """Talks whose paper is not an accepted paper in the store: said, never silently ignored."""
    numbers = {str(r["number"]) for r in rows if r["number"] is not None}
    forums = {str(r["forum_id"]) for r in rows}
    problems = []
    for talk in sorted(schedule.Schedule.from_config(config).talks, key=lambda t: t.index):
        ref = talk.paper
        if ref is None:
            continue
        if ref not in numbers and ref not in forums:
            written = config.talks[talk.index].paper
            problems.append(
                f"talks[{talk.index}] paper = {written!r} is not an accepted paper in the store "
                f"(talk at {talk.start.isoformat(timespec='minutes')}); its poster is placed "
                "without regard to the talk: fix the paper number or forum id"
            )
    return problems


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


def resolve_paper(conn: Connection, ref: str) -> tuple[str, int | None]:
    """A paper given as its number or forum id → (forum id, number)."""
    rows = queries.accepted_papers(conn)
    for row in rows:
        if ref == row["forum_id"] or (ref.isdigit() and int(ref) == row["number"]):
            return str(row["forum_id"]), row["number"]
    raise UsageError(
        f"paper {ref!r} is not an accepted paper in the store; give its number or forum id"
    )


@dataclass
class PinResult:
    forum_id: str
    number: int | None
    session_id: str | None
    was: str | None  # the session it was pinned to before, if any
    place: posters.Placement | None = None


def pin(config: Config, ref: str, session_id: str) -> PinResult:
    """Pin a paper to a session; the assignment moves it there now (or the pin is refused)."""
    if session_id not in {s.id for s in config.posters.sessions}:
        known = ", ".join(s.id for s in config.posters.sessions) or "none configured"
        raise UsageError(f"unknown poster session {session_id!r} (sessions: {known})")
    with (
        open_store(config.store.url) as store,
        store_writer(store, wait_s=600.0, command="posters pin"),
        store.begin() as conn,
    ):
        forum_id, number = resolve_paper(conn, ref)
        was = conn.execute(select(PIN.c.session_id).where(PIN.c.forum_id == forum_id)).scalar()
        conn.execute(delete(PIN).where(PIN.c.forum_id == forum_id))
        conn.execute(
            insert(PIN).values(
                forum_id=forum_id, session_id=session_id, pinned_at=datetime.now(UTC)
            )
        )
        _sync_sessions(conn, config)
        assignment = update_assignment(conn, config)
    place = assignment.placements.get(forum_id) if assignment else None
    return PinResult(forum_id, number, session_id, was, place)


def unpin(config: Config, ref: str) -> PinResult:
    """Release a pin; ``was`` is None when the paper was not pinned (nothing changes then)."""
    with (
        open_store(config.store.url) as store,
        store_writer(store, wait_s=600.0, command="posters unpin"),
        store.begin() as conn,
    ):
        forum_id, number = resolve_paper(conn, ref)
        was = conn.execute(select(PIN.c.session_id).where(PIN.c.forum_id == forum_id)).scalar()
        conn.execute(delete(PIN).where(PIN.c.forum_id == forum_id))
    return PinResult(forum_id, number, None, was)


def preview_assignment(config: Config, *, reoptimise: bool) -> PushResult:
    """What ``posters assign`` would do, computed under the lock and rolled back."""
    store = open_store(config.store.url)
    result = PushResult()
    try:
        with (
            store_writer(store, wait_s=600.0, command="posters assign --dry-run"),
            store.connect() as conn,
            conn.begin() as tx,
        ):
            _sync_sessions(conn, config)
            result.assignment = update_assignment(conn, config, reoptimise=reoptimise)
            rows = queries.accepted_papers(conn)
            result.pins = queries.pins(conn)
            tx.rollback()
    finally:
        store.dispose()
    result.numbers = {str(r["forum_id"]): r["number"] for r in rows}
    result.problems = talk_problems(config, rows)
    result.papers = len(rows)
    return result


def show(config: Config) -> list[dict[str, Any]]:
    with open_reader(config.store.url) as store, store.connect() as conn:
        rows = queries.accepted_papers(conn)
        pins = queries.pins(conn)
    day = schedule.Schedule.from_config(config)
    for row in rows:
        row["pinned"] = pins.get(row["forum_id"])
        # The configured talks, not the decision text: what the chairs set is what they see.
        slots = _talks(day, row)
        row["talk"] = ", ".join(start.strftime("%H:%M") for start, _ in slots) or None
    order = {s.id: i for i, s in enumerate(config.posters.sessions)}
    rows.sort(
        key=lambda r: (order.get(r["session_id"], len(order)), r["board"] or 0, r["number"] or 0)
    )
    return rows
