"""The ``orsync`` command line: a thin layer over ``orsync.commands`` and friends (SPEC §2).

Every error a user can cause or meet ends here as one line on stderr and the documented exit
code; the traceback only with ``-v``.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.table import Table

from orsync import __version__
from orsync.config import Config, find_config, load_config
from orsync.errors import OrsyncError, UsageError
from orsync.files import write_private
from orsync.terminal import console, json_text, safe

app = typer.Typer(
    name="orsync",
    help=(
        "Mirror an OpenReview venue into a local store and publish what its website needs.\n\n"
        "Start with `orsync demo` (no account, no config: it runs against a bundled emulator), "
        "then copy config.example.toml to orsync.toml and run `orsync check` and `orsync pull`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
# Text from the store or the venue is the authors': it goes through `safe` (one line, control and
# bidi characters made visible) and the consoles never interpret markup (orsync.terminal).
err = console(stderr=True, soft_wrap=True)
out = console(soft_wrap=True)


CHANGES_SHOWN = 50  # rows of `orsync changes` without --limit / --since


class LogFormat(StrEnum):
    json = "json"
    console = "console"


@dataclass
class Globals:
    config_path: Path | None
    log_format: str
    verbosity: int

    def config(self) -> Config:
        return load_config(find_config(self.config_path))


def _globals(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    assert isinstance(obj, Globals)
    return obj


def _version(value: bool) -> None:
    if value:
        out.print(f"orsync {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Config file (else $ORSYNC_CONFIG, ./orsync.toml, /etc/orsync/orsync.toml).",
            show_default=False,
        ),
    ] = None,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(
            "--log-format",
            help="Log lines as json or console (default: console on a terminal, json otherwise).",
        ),
    ] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More detail; tracebacks on errors.")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    from orsync.logs import configure_logging

    verbosity = -1 if quiet else verbose
    fmt = log_format.value if log_format else "auto"
    ctx.obj = Globals(config, fmt, verbosity)
    configure_logging(fmt, verbosity)  # type: ignore[arg-type]


def _print_json(data: Any) -> None:
    sys.stdout.write(json_text(data) + "\n")


# -- pull ------------------------------------------------------------------------------------


@app.command()
def pull(
    ctx: typer.Context,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Walk the whole venue (catches deletions and notes that became unreadable).",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Apply even if the cycle would delete more than sync.max_delete_fraction of the submissions.",
        ),
    ] = False,
    no_push: Annotated[
        bool, typer.Option("--no-push", help="Skip the website push after the pull.")
    ] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Exit 75 at once if another sync holds the lock.")
    ] = False,
    wait_s: Annotated[
        float, typer.Option("--wait-s", help="How long to wait for the lock.")
    ] = 600.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the cycle summary as one JSON object.")
    ] = False,
) -> None:
    """Run one sync cycle now, then push the website data if [website] is configured."""
    from orsync import pipeline

    g = _globals(ctx)
    config = g.config()
    wait = 0.0 if no_wait else wait_s
    options = pipeline.PassOptions(full=full, force=force, push=not no_push, wait_s=wait)
    show_bar = sys.stderr.isatty() and not as_json and g.verbosity >= 0
    if show_bar:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("submissions", total=None)

            def progress(done: int, total: int | None) -> None:
                bar.update(task, description="submissions", completed=done, total=total)

            def waiting(holder: str) -> None:
                bar.update(task, description=f"waiting for the lock ({safe(holder)})")

            options.progress, options.on_wait = progress, waiting
            result = pipeline.pull(config, options)
    else:

        def tell(holder: str) -> None:
            if g.verbosity >= 0:
                err.print(f"waiting up to {wait:g}s (--wait-s) for the writer lock, {safe(holder)}")

        options.on_wait = tell
        result = pipeline.pull(config, options)
    data = result.cycle.as_dict()
    if not as_json:
        _print_cycle(result.cycle)
    if result.push is not None:
        data["pushed"] = result.push.changed
        data["push"] = _push_dict(result.push)
        if not as_json:
            _report_push(result.push, config)
    if result.files is not None:
        data["files"] = result.files.as_dict()
        if not as_json:
            _report_files(result.files)
    result.raise_first_error()
    if as_json:
        _print_json(data)


def _report_files(files: Any) -> None:
    """One line on the hosted files (SPEC §10), and each refused file on its own."""
    c = files.counts
    line = (
        f"files: {len(files.downloaded)} downloaded, {len(files.removed)} removed in "
        f"{files.requests} requests; {c.get('current', 0)} current, {c.get('pending', 0)} "
        f"pending, {c.get('refused', 0)} refused"
    )
    if files.window_opens_at is not None:
        from orsync.errors import local_time

        line += f"; more after {local_time(files.window_opens_at)} (download quota)"
    out.print(line)
    for what in files.refused:
        err.print(f"warning: refused {safe(what)}")


def _print_cycle(summary: Any) -> None:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.by_status.items())) or "none"
    out.print(
        f"{summary.mode} cycle {summary.cycle_id}: {summary.created} created, {summary.updated} "
        f"updated, {summary.deleted} deleted in {summary.duration_s:.1f}s "
        f"({summary.requests} requests). Submissions: {counts}."
    )
    if summary.fallback:
        out.print(f"note: {safe(summary.fallback)}")
    if summary.malformed:
        out.print(
            f"warning: {summary.malformed} malformed notes (no id, or content not an object) were skipped"
        )


@app.command()
def run(ctx: typer.Context) -> None:
    """The service: a sync cycle every sync.interval_s (with jitter) until SIGTERM/SIGINT.

    Speaks the systemd notify protocol (READY, STATUS, WATCHDOG, STOPPING); SIGHUP re-reads the
    config; transient faults back off and never stop it. See deploy/README.md.
    """
    from orsync.service import run_service

    g = _globals(ctx)
    raise typer.Exit(run_service(g.config_path, log_format=g.log_format, verbosity=g.verbosity))


# -- status / changes / export ------------------------------------------------------------------


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    cycles: Annotated[int, typer.Option("--cycles", help="How many recent cycles to show.")] = 10,
) -> None:
    """Last cycles, what the store holds, the lock holder and the time since the last success."""
    from orsync import commands

    info = commands.status(_globals(ctx).config(), cycles=cycles)
    if as_json:
        _print_json(info)
        return
    # A grid that folds long values, so the summary reads well at 80 columns.
    facts = Table.grid(padding=(0, 2))
    facts.add_column(no_wrap=True)
    facts.add_column(overflow="fold")
    facts.add_row("venue", info["venue_id"])
    facts.add_row("store", info["store"])
    subs = info["submissions"]
    facts.add_row(
        "submissions", ", ".join(f"{n} {s}" for s, n in sorted(subs.items())) or "none yet"
    )
    facts.add_row(
        "notes", ", ".join(f"{n} {k}" for k, n in sorted(info["notes"].items())) or "none"
    )
    facts.add_row(
        "last success",
        f"{info['last_success']} ({info['seconds_since_success']:.0f}s ago)"
        if info["last_success"]
        else "none yet: run `orsync pull`",
    )
    unreleased = info["decided_unreleased"]
    if any(unreleased.values()):
        facts.add_row(
            "decided",
            ", ".join(f"{n} {k}" for k, n in unreleased.items() if n)
            + " (not released yet: never published)",
        )
    if info.get("rate_limited_until"):
        from datetime import datetime

        from orsync.errors import local_time

        until = datetime.fromisoformat(info["rate_limited_until"]).timestamp()
        facts.add_row(
            "rate limit",
            f"OpenReview's rate limit holds cycles back until {local_time(until)} (local time)",
        )
    from orsync.lock import describe_holder

    facts.add_row("lock", describe_holder(info["lock_holder"]).removeprefix("lock: "))
    push_info = info.get("last_push")
    if push_info is not None:
        when = push_info["finished_at"] or push_info["started_at"]
        line = f"{push_info['outcome']} at {when} ({push_info['command']})"
        if push_info["outcome"] == "ok":
            changed = push_info["changed"]
            line += f", {push_info['papers']} papers" + (
                f", wrote {', '.join(changed)}" if changed else ", files unchanged"
            )
        elif push_info["error"]:
            line += f": {push_info['error']}"
        facts.add_row("last push", line)
    hosted = info.get("files")
    if hosted is not None:
        line = (
            f"{hosted['current']} current, {hosted['pending']} pending, {hosted['refused']} refused"
        )
        if hosted["next_attempt_at"]:
            line += f"; next download {hosted['next_attempt_at']}"
        if hosted["window_opens_at"]:
            line += f" (download quota used up until {hosted['window_opens_at']})"
        facts.add_row("files", line)
        for r in hosted["refused_files"][:10]:
            facts.add_row("", f"refused #{r['number']} {r['field']}: {safe(r['error'] or '')}")
    out.print(facts)
    if info["cycles"]:
        # Fits 80 columns: the counts share one column and errors go on lines of their own.
        table = Table("cycle", "started (UTC)", "mode", "outcome", "req", "+ ~ -", "s")
        failures = []
        for c in info["cycles"]:
            table.add_row(
                str(c["id"]),
                (c["started_at"] or "").replace("T", " ")[:19],
                c["mode"],
                c["outcome"],
                str(c["requests"]),
                f"{c['created']} {c['updated']} {c['deleted']}",
                f"{c['duration_s']:.1f}" if c["duration_s"] is not None else "",
            )
            if c["error"]:
                failures.append(f"cycle {c['id']} {c['outcome']}: {c['error']}")
        out.print(table)
        for line in failures:
            out.print(line)


@app.command()
def changes(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", help="An ISO date/time, or a span back from now like 12h or 7d."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            help=f"At most this many, newest first (the table shows {CHANGES_SHOWN} unless "
            "--limit or --since is given; --json gives all).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """What changed in the venue: created / updated (which fields) / deleted notes, newest first."""
    from orsync import commands

    when = commands.parse_since(since) if since else None
    # A first pull records every note as created: a table of thousands helps nobody, and
    # scripts that want them all have --json.
    capped = limit is None and since is None and not as_json
    rows = commands.changes(
        _globals(ctx).config(), since=when, limit=CHANGES_SHOWN + 1 if capped else limit
    )
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("no changes recorded" + (f" since {since}" if since else ""))
        return
    more = capped and len(rows) > CHANGES_SHOWN
    rows = rows[:CHANGES_SHOWN] if more else rows
    table = Table("when", "op", "kind", "paper", "note", "fields", "title")
    for r in rows:
        table.add_row(
            r["at"] or "",
            r["op"],
            r["kind"],
            f"#{r['number']}" if r["number"] is not None else safe(r["forum"]),
            safe(r["note_id"]),
            safe(", ".join(r["fields"])),
            safe((r["title"] or "")[:50]),
        )
    out.print(table)
    if more:
        out.print(
            f"(the newest {CHANGES_SHOWN} shown; --since 7d or --limit N for others, --json for all)"
        )


@app.command()
def report(
    ctx: typer.Context,
    html: Annotated[
        Path, typer.Option("--html", help="Where to write the HTML page with charts.")
    ] = Path("orsync-report.html"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the figures as JSON instead of the summary.")
    ] = False,
) -> None:
    """Chairs' overview of the review process: completion, score distributions, decisions."""
    from orsync import report as reports

    data = reports.build(_globals(ctx).config())
    try:
        write_private(html, reports.render_html(data))  # reviews: owner-only
    except OSError as exc:
        raise UsageError(f"cannot write {html}: {exc.strerror}") from None
    if as_json:
        _print_json(data.as_dict())
        return
    subs = ", ".join(f"{n} {s}" for s, n in data.by_status.items()) or "none"
    out.print(f"{safe(data.venue_id)}: {safe(subs)}; {data.reviews} reviews")
    if data.completion is not None:
        out.print(
            f"review completion: {data.completion:.0%} of papers under review have "
            f"{reports.EXPECTED_REVIEWS}+ reviews; {len(data.missing_reviews)} have fewer"
        )
        by_count: dict[int, list[str]] = {}
        for m in data.missing_reviews:
            by_count.setdefault(m["reviews"], []).append(f"#{m['number']}")
        for count, papers in sorted(by_count.items()):
            out.print(f"  {count} reviews: {' '.join(papers)}")
    if data.decisions:
        out.print("decisions: " + safe(", ".join(f"{n} {d}" for d, n in data.decisions.items())))
    if data.rating_histogram:
        peak = max(data.rating_histogram.values())
        out.print("ratings:")
        for label, count in data.rating_histogram.items():
            out.print(f"  {label:>3} {'#' * round(30 * count / peak)} {count}")
    out.print(f"HTML report with charts: {html}")


class What(StrEnum):
    papers = "papers"
    submissions = "submissions"
    reviews = "reviews"


class Format(StrEnum):
    json = "json"
    csv = "csv"
    yaml = "yaml"


@app.command()
def export(
    ctx: typer.Context,
    what: Annotated[
        What, typer.Option("--what", help="accepted papers, all submissions, or reviews")
    ] = What.papers,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.json,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Dump papers, submissions or reviews from the store (no network)."""
    from orsync.export import export as run_export

    text = run_export(_globals(ctx).config(), what.value, fmt.value)
    if out_file is None:
        sys.stdout.write(text)
    else:
        try:
            write_private(out_file, text)  # reviews: owner-only, whatever the umask
        except OSError as exc:
            raise UsageError(
                f"cannot write --out {out_file}: {exc.strerror}; choose a path in an existing, "
                "writable folder"
            ) from None


# -- push / posters ----------------------------------------------------------------------------


@app.command()
def push(
    ctx: typer.Context,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Publish even if more than sync.max_delete_fraction of the papers on the site would go.",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print what was written as JSON.")
    ] = False,
) -> None:
    """Update the poster assignment and write the website data files from the store (no network).

    Refuses (exit 5) to replace the site with a store that would drop more than
    sync.max_delete_fraction of the papers it publishes now, unless --force.
    """
    from orsync import publish

    config = _globals(ctx).config()
    result = publish.push(config, force=force)
    if as_json:
        _print_json(_push_dict(result))
    else:
        _report_push(result, config)


def _push_dict(result: Any) -> dict[str, Any]:
    a = result.assignment
    return {
        "outcome": "ok",
        "changed": result.changed,
        "papers": result.papers,
        "warnings": result.problems,
        "clashes": [
            {
                "session": c.session_id,
                "papers": [result.numbers.get(f) for f in c.forum_ids],
                "forum_ids": list(c.forum_ids),
                "authors": list(c.authors),
                "pinned": [f for f in c.forum_ids if f in result.pins],
            }
            for c in (a.clashes if a else [])
        ],
        "moved": [
            {
                "paper": result.numbers.get(f),
                "forum_id": f,
                "session": a.placements[f].session_id,
                "board": a.placements[f].board,
            }
            for f in (a.moved if a else [])
        ],
    }


def _report_push(result: Any, config: Config) -> None:
    if config.website is not None:
        where = config.website.output_dir
        out.print(
            f"website: wrote {', '.join(result.changed)} in {where}"
            if result.changed
            else f"website: {where} already up to date"
        )
    for line in result.problems + result.clash_lines():
        err.print(f"warning: {safe(line)}")


posters_app = typer.Typer(
    help="Poster sessions: assign, show, pin and unpin papers.", no_args_is_help=True
)
app.add_typer(posters_app, name="posters")


@posters_app.command("assign")
def posters_assign(
    ctx: typer.Context,
    reoptimise: Annotated[
        bool,
        typer.Option(
            "--reoptimise",
            help="Let every paper move to reduce author clashes (before announcing; "
            "afterwards papers only move when a hard rule forces it).",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show which papers would move; change nothing."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the moves, clashes and warnings as JSON.")
    ] = False,
) -> None:
    """Bring the assignment up to date (new papers get free boards; nobody else moves) and show it.

    With [website] configured the files are written too, like `orsync push`.
    """
    from orsync import publish

    config = _globals(ctx).config()
    if not config.posters.sessions:
        raise UsageError("no [[posters.sessions]] in the config; add the sessions first")
    if dry_run:
        result = publish.preview_assignment(config, reoptimise=reoptimise)
    else:
        result = publish.push(config, reoptimise=reoptimise, command="posters assign")
    if as_json:
        _print_json({**_push_dict(result), "dry_run": dry_run, **_assignment_dict(result)})
        return
    if not dry_run:
        _report_push(result, config)
    else:
        for line in result.problems + result.clash_lines():
            err.print(f"warning: {line}")
    a = result.assignment
    if a is not None:
        gap = f", gap {a.gap:.1%}" if a.gap is not None else ""
        verb = "would move" if dry_run else "moved"
        out.print(
            f"assignment: {a.status}{gap}, {len(a.clashes)} author clashes, "
            f"{len(a.moved)} papers {verb}, solved in {a.solve_time_s:.2f}s"
        )
        for line in result.moved_lines():
            out.print(("would: " if dry_run else "") + line)
    if dry_run:
        out.print("dry run: nothing was changed")
        return
    _show_posters(config, False)


def _assignment_dict(result: Any) -> dict[str, Any]:
    a = result.assignment
    if a is None:
        return {"status": None}
    return {"status": a.status, "gap": a.gap, "solve_time_s": round(a.solve_time_s, 3)}


@posters_app.command("show")
def posters_show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """The poster sessions with each paper's board and its contributed talk, as a table."""
    _show_posters(_globals(ctx).config(), as_json)


def _show_posters(config: Config, as_json: bool) -> None:
    from orsync import publish

    rows = publish.show(config)
    if as_json:
        _print_json(
            [
                {
                    k: r[k]
                    for k in (
                        "session_id",
                        "board",
                        "number",
                        "forum_id",
                        "title",
                        "presentation",
                        "pinned",
                        "talk",
                    )
                }
                for r in rows
            ]
        )
        return
    table = Table("session", "board", "paper", "title", "talk", "pinned")
    names = {s.id: s.name for s in config.posters.sessions}
    for r in rows:
        table.add_row(
            safe(f"{r['session_id']} {names.get(r['session_id'], '')}".strip())
            if r["session_id"]
            else "-",
            str(r["board"] or "-"),
            f"#{r['number']}",
            safe((r["title"] or "")[:60]),
            r["talk"] or "",
            safe(r["pinned"]),
        )
    out.print(table)


def _publish_after_pin(config: Config, what: str) -> None:
    from orsync import publish

    if config.website is None:
        out.print(f"{what}; no [website] configured, so nothing to publish")
        return
    result = publish.push(config, command="posters pin")
    _report_push(result, config)


@posters_app.command("pin")
def posters_pin(
    ctx: typer.Context,
    paper: Annotated[str, typer.Argument(help="Paper number or forum id.")],
    session: Annotated[str, typer.Argument(help="Session id, e.g. P2.")],
) -> None:
    """Fix a paper's session by hand and publish it; the pin survives every later cycle."""
    from orsync import publish

    config = _globals(ctx).config()
    done = publish.pin(config, paper, session)
    where = f", board {done.place.board}" if done.place else ""
    before = f" (was pinned to {done.was})" if done.was and done.was != session else ""
    out.print(f"pinned paper #{done.number} to {session}{where}{before}")
    _publish_after_pin(config, "pinned")


@posters_app.command("unpin")
def posters_unpin(
    ctx: typer.Context, paper: Annotated[str, typer.Argument(help="Paper number or forum id.")]
) -> None:
    """Release a pin (the paper keeps its board until a rule forces a move)."""
    from orsync import publish

    config = _globals(ctx).config()
    done = publish.unpin(config, paper)
    if done.was is None:
        out.print(f"paper #{done.number} was not pinned; nothing changed")
        return
    out.print(
        f"unpinned paper #{done.number} (was pinned to {done.was}); it keeps its place until "
        "a rule forces a move"
    )


# -- the workshop day ---------------------------------------------------------------------------

talks_app = typer.Typer(
    help="Contributed talks: the shortlist by review scores and topic diversity.",
    no_args_is_help=True,
)
app.add_typer(talks_app, name="talks")


@talks_app.command("suggest")
def talks_suggest(
    ctx: typer.Context,
    count: Annotated[
        int | None,
        typer.Option(
            "--count", min=1, help="How many talks (default: the [[talks]] slots, else 5)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the shortlist as JSON.")] = False,
) -> None:
    """The contributed-talk shortlist: ranked by review scores, distinct topics, previously
    published papers and papers with too few reviews left out. Advice only (confidential: it
    shows ratings); chairs confirm a talk by setting [[talks]] paper."""
    from orsync import talks

    shortlist = talks.suggest(_globals(ctx).config(), count)
    if as_json:
        _print_json(shortlist.as_dict())
        return
    for line in talks.describe(shortlist):
        out.print(line)


@app.command()
def program(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the day as JSON.")] = False,
) -> None:
    """The day in time order (talks, poster sessions with their papers, breaks) and what is
    still missing: talk slots with no paper, papers with no abstract, clashing slots."""
    from orsync import program as day

    built = day.build(_globals(ctx).config())
    if as_json:
        _print_json(built.as_dict())
        return
    for line in day.describe(built):
        out.print(line)


# -- check -----------------------------------------------------------------------------------


@app.command()
def check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Validate the config, reach the API, log in, read the venue, and test the store and output folder."""
    from orsync.check import run_checks

    report = run_checks(_globals(ctx).config_path)
    if as_json:
        _print_json(report.as_dict())
    else:
        for r in report.checks:
            out.print(f"{'ok  ' if r.ok else 'FAIL'} {r.name}: {safe(r.detail)}")
    raise typer.Exit(report.exit_code)


@app.command()
def venues(
    ctx: typer.Context,
    prefix: Annotated[
        str | None,
        typer.Argument(help="e.g. ICLR.cc/2024/Workshop/ (default: beside openreview.venue_id)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the venue groups under a prefix that the account can read, to find the venue id."""
    from orsync.check import find_venues

    used, found = find_venues(_globals(ctx).config(), prefix)
    if as_json:
        _print_json({"prefix": used, "groups": [v.as_dict() for v in found]})
        return
    for v in found:
        kind = "venue" if v.venue else "group"
        out.print(f"{v.id}  ({kind}{': ' + v.title if v.title else ''})")
    if not found:
        out.print(f"no groups under {used} that this account can read; try a shorter prefix")


# -- emulator / demo ---------------------------------------------------------------------------


@app.command()
def emulator(
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on; loopback only unless --allow-remote."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0 picks a free one).")] = 8765,
    dataset: Annotated[
        str, typer.Option("--dataset", help="bgpt (a workshop) or iclr (main-conference scale).")
    ] = "bgpt",
    seed: Annotated[int, typer.Option("--seed", help="Random seed for the synthetic venue.")] = 1,
    size: Annotated[
        int | None, typer.Option("--size", help="Number of submissions (overrides the dataset's).")
    ] = None,
    phase: Annotated[
        str, typer.Option("--phase", help="submission, review, decision or camera_ready.")
    ] = "camera_ready",
    faults: Annotated[
        str | None,
        typer.Option("--faults", help="Faults to inject, e.g. '429x3@retry_after=1,500x5,drop'."),
    ] = None,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow a --host other machines can reach (the login is public: see the banner).",
        ),
    ] = False,
) -> None:
    """Serve a synthetic OpenReview API v2 venue over HTTP, for rehearsals and tests."""
    from orsync.emulator import serve_forever

    serve_forever(
        host=host,
        port=port,
        dataset=dataset,
        seed=seed,
        size=size,
        phase=phase,
        faults=faults,
        allow_remote=allow_remote,
    )


@app.command()
def demo(
    ctx: typer.Context,
    folder: Annotated[
        Path, typer.Option("--dir", help="Where to put the demo's store, config and website files.")
    ] = Path("orsync-demo"),
    size: Annotated[
        int | None, typer.Option("--size", help="Number of submissions in the synthetic venue.")
    ] = None,
) -> None:
    """The tour: start the emulator, pull the BGPT venue, assign posters, write the website files."""
    from orsync.demo import run_demo

    for line in run_demo(folder, size=size, verbosity=_globals(ctx).verbosity):
        out.print(line)


# -- entry point -----------------------------------------------------------------------------


def _fail(message: str, code: int) -> NoReturn:
    from orsync.secrets import mask_text

    err.print(f"orsync: error: {safe(mask_text(message))}", soft_wrap=True)
    raise SystemExit(code)


_GLOBAL_FLAGS = ("-v", "-vv", "-vvv", "--verbose", "-q", "--quiet")


def _hoist_global_flags(argv: list[str]) -> list[str]:
    """Accept -v/-q after the subcommand too (`orsync pull -v`), where people type them."""
    flags = [a for a in argv if a in _GLOBAL_FLAGS]
    if "--" in argv:
        flags = [a for a in argv[: argv.index("--")] if a in _GLOBAL_FLAGS]
    rest = list(argv)
    for flag in flags:
        rest.remove(flag)
    return flags + rest


def main() -> None:
    global err, out
    # New consoles for each call: a console reads the environment (COLUMNS, NO_COLOR, TERM) when
    # it is made, and main() may run more than once in a process (the test suite calls it in
    # process). Their streams are sys.stdout/sys.stderr, looked up at each write.
    err, out = console(stderr=True, soft_wrap=True), console(soft_wrap=True)
    argv = _hoist_global_flags(sys.argv[1:])
    verbose = any(a in ("-v", "--verbose", "-vv", "-vvv") for a in argv)
    as_json = "--json" in argv
    try:
        # Typer handles usage errors itself (exit 2) and exits with SystemExit on success.
        app(args=argv, prog_name="orsync")
    except OrsyncError as exc:
        if verbose:
            traceback.print_exc()
        if as_json:
            _print_json(
                {"ok": False, "error": exc.message, "exit_code": exc.exit_code, **exc.details}
            )
        _fail(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        if as_json:
            _print_json(
                {"ok": False, "error": f"unexpected {exc.__class__.__name__}", "exit_code": 1}
            )
        _fail(f"unexpected {exc.__class__.__name__}: {exc}; rerun with -v for the traceback", 1)
