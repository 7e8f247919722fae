"""The ``orsync`` command line: a thin layer over ``orsync.ops`` and friends (SPEC §2).

Every error a user can cause or meet ends here as one line on stderr and the documented exit
code; the traceback only with ``-v``.
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from orsync import __version__
from orsync.config import Config, find_config, load_config
from orsync.errors import OrsyncError, UsageError

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
err = Console(stderr=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)


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
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


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
    from orsync import ops

    g = _globals(ctx)
    config = g.config()
    wait = 0.0 if no_wait else wait_s
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
                bar.update(task, completed=done, total=total)

            summary = ops.pull(config, full=full, force=force, wait_s=wait, progress=progress)
    else:
        summary = ops.pull(config, full=full, force=force, wait_s=wait)
    pushed: list[str] | None = None
    if not no_push and config.website is not None:
        from orsync import publish

        pushed = publish.push(config).changed
    if as_json:
        data = summary.as_dict()
        if pushed is not None:
            data["pushed"] = pushed
        _print_json(data)
        return
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.by_status.items())) or "none"
    out.print(
        f"{summary.mode} cycle {summary.cycle_id}: {summary.created} created, {summary.updated} "
        f"updated, {summary.deleted} deleted in {summary.duration_s:.1f}s "
        f"({summary.requests} requests). Submissions: {counts}."
    )
    if summary.fallback:
        out.print(f"note: {summary.fallback}")
    if summary.malformed:
        out.print(
            f"warning: {summary.malformed} malformed notes (no id, or content not an object) were skipped"
        )
    if pushed:
        out.print(f"website: wrote {', '.join(pushed)}")


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
    from orsync import ops

    info = ops.status(_globals(ctx).config(), cycles=cycles)
    if as_json:
        _print_json(info)
        return
    out.print(f"venue {info['venue_id']}  store {info['store']}")
    subs = info["submissions"]
    out.print(
        "submissions: " + (", ".join(f"{n} {s}" for s, n in sorted(subs.items())) or "none yet")
    )
    out.print(
        "notes: " + (", ".join(f"{n} {k}" for k, n in sorted(info["notes"].items())) or "none")
    )
    if info["last_success"]:
        out.print(
            f"last successful cycle: {info['last_success']} ({info['seconds_since_success']:.0f}s ago)"
        )
    else:
        out.print("no successful cycle yet: run `orsync pull`")
    holder = info["lock_holder"]
    out.print(
        f"lock: held by pid {holder.get('pid')} ({holder.get('command')}) since {holder.get('since')}"
        if holder
        else "lock: free"
    )
    if info["cycles"]:
        table = Table(
            "cycle", "started", "mode", "outcome", "req", "seen", "+", "~", "-", "s", "error"
        )
        for c in info["cycles"]:
            table.add_row(
                str(c["id"]),
                c["started_at"] or "",
                c["mode"],
                c["outcome"],
                str(c["requests"]),
                str(c["notes_seen"]),
                str(c["created"]),
                str(c["updated"]),
                str(c["deleted"]),
                f"{c['duration_s']:.1f}" if c["duration_s"] is not None else "",
                (c["error"] or "")[:60],
            )
        out.print(table)


@app.command()
def changes(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", help="An ISO date/time, or a span back from now like 12h or 7d."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", help="At most this many, newest first.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """What changed in the venue: created / updated (which fields) / deleted notes, newest first."""
    from orsync import ops

    when = ops.parse_since(since) if since else None
    rows = ops.changes(_globals(ctx).config(), since=when, limit=limit)
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("no changes recorded" + (f" since {since}" if since else ""))
        return
    table = Table("when", "op", "kind", "paper", "note", "fields", "title")
    for r in rows:
        table.add_row(
            r["at"] or "",
            r["op"],
            r["kind"],
            f"#{r['number']}" if r["kind"] == "submission" and r["number"] else r["forum"],
            r["note_id"],
            ", ".join(r["fields"]),
            (r["title"] or "")[:50],
        )
    out.print(table)


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
        html.write_text(reports.render_html(data), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {html}: {exc.strerror}") from None
    if as_json:
        _print_json(data.as_dict())
        return
    subs = ", ".join(f"{n} {s}" for s, n in data.by_status.items()) or "none"
    out.print(f"{data.venue_id}: {subs}; {data.reviews} reviews")
    if data.completion is not None:
        out.print(
            f"review completion: {data.completion:.0%} of papers under review have "
            f"{reports.EXPECTED_REVIEWS}+ reviews; {len(data.missing_reviews)} have fewer"
        )
    if data.decisions:
        out.print("decisions: " + ", ".join(f"{n} {d}" for d, n in data.decisions.items()))
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
            out_file.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"cannot write --out {out_file}: {exc.strerror}; choose a path in an existing, "
                "writable folder"
            ) from None


# -- push / posters ----------------------------------------------------------------------------


@app.command()
def push(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print what was written as JSON.")
    ] = False,
) -> None:
    """Update the poster assignment and write the website data files from the store (no network)."""
    from orsync import publish

    config = _globals(ctx).config()
    result = publish.push(config)
    _report_push(result, config, as_json)


def _report_push(result: Any, config: Config, as_json: bool) -> None:
    clashes = result.assignment.clashes if result.assignment else []
    if as_json:
        _print_json(
            {
                "changed": result.changed,
                "clashes": [
                    {
                        "session": c.session_id,
                        "papers": list(c.forum_ids),
                        "authors": list(c.authors),
                    }
                    for c in clashes
                ],
            }
        )
        return
    if config.website is not None:
        where = config.website.output_dir
        out.print(
            f"website: wrote {', '.join(result.changed)} in {where}"
            if result.changed
            else f"website: {where} already up to date"
        )
    for c in clashes:
        out.print(
            f"warning: papers {c.forum_ids[0]} and {c.forum_ids[1]} share {', '.join(c.authors)} in session {c.session_id} (no clash-free assignment exists)"
        )


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
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Bring the assignment up to date (new papers get free boards; nobody else moves) and show it."""
    from orsync import publish

    config = _globals(ctx).config()
    if not config.posters.sessions:
        raise UsageError("no [[posters.sessions]] in the config; add the sessions first")
    result = publish.push(config, reoptimise=reoptimise)
    if not as_json:
        _report_push(result, config, False)
        if result.assignment is not None:
            a = result.assignment
            gap = f", gap {a.gap:.1%}" if a.gap is not None else ""
            out.print(
                f"assignment: {a.status}{gap}, {len(a.clashes)} author clashes, "
                f"{len(a.moved)} papers moved, solved in {a.solve_time_s:.2f}s"
            )
    _show_posters(config, as_json)


@posters_app.command("show")
def posters_show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """The poster sessions with each paper's board, as a table for chairs."""
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
            f"{r['session_id']} {names.get(r['session_id'], '')}".strip()
            if r["session_id"]
            else "-",
            str(r["board"] or "-"),
            f"#{r['number']}",
            (r["title"] or "")[:60],
            "oral" if r["presentation"] == "oral" else "",
            "yes" if r["pinned"] else "",
        )
    out.print(table)


@posters_app.command("pin")
def posters_pin(
    ctx: typer.Context,
    paper: Annotated[str, typer.Argument(help="Paper number or forum id.")],
    session: Annotated[str, typer.Argument(help="Session id, e.g. P2.")],
) -> None:
    """Fix a paper's session by hand; the pin survives every later cycle."""
    from orsync import publish

    forum_id = publish.pin(_globals(ctx).config(), paper, session)
    out.print(f"pinned {forum_id} to {session}")


@posters_app.command("unpin")
def posters_unpin(
    ctx: typer.Context, paper: Annotated[str, typer.Argument(help="Paper number or forum id.")]
) -> None:
    """Release a pin (the paper keeps its board until a rule forces a move)."""
    from orsync import publish

    forum_id = publish.unpin(_globals(ctx).config(), paper)
    out.print(f"unpinned {forum_id}")


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
            out.print(f"{'ok  ' if r.ok else 'FAIL'} {r.name}: {r.detail}", markup=False)
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
        out.print(f"{v.id}  ({kind}{': ' + v.title if v.title else ''})", markup=False)
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
    err.print(f"orsync: error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise SystemExit(code)


def main() -> None:
    verbose = any(a in ("-v", "--verbose", "-vv", "-vvv") for a in sys.argv[1:])
    try:
        # Typer handles usage errors itself (exit 2) and exits with SystemExit on success.
        app()
    except OrsyncError as exc:
        if verbose:
            traceback.print_exc()
        _fail(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        _fail(f"unexpected {exc.__class__.__name__}: {exc}; rerun with -v for the traceback", 1)
