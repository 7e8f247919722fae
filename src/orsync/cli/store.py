"""The reading commands: ``status``, ``changes``, ``report`` and ``export`` (no network)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from orsync.cli import views
from orsync.cli.context import this_run
from orsync.cli.views import CHANGES_SHOWN

section = typer.Typer()


@section.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    cycles: Annotated[int, typer.Option("--cycles", help="How many recent cycles to show.")] = 10,
) -> None:
    """Last cycles, what the store holds, the lock holder and the time since the last success.

    A cycle's outcome is ok, failed, refused (the max-delete guard), interrupted, running, or
    deferred: orsync stopped it itself to keep the rate limit's reserve, nothing failed, and it
    runs again after the reset time shown.
    """
    from orsync import commands as do

    run = this_run(ctx)
    info = do.status(run.config(), cycles=cycles)
    if as_json:
        run.screen.json(info.as_dict())
    else:
        views.show_status(run.screen, info)


@section.command()
def changes(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Changes made on OpenReview since: an ISO date/time, or a span back from now like 12h or 7d.",
        ),
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
    """What changed in the venue: created / updated (which fields whose value changed) / deleted
    notes, newest first, at OpenReview's time of the change (--json adds seen_at, when orsync
    saw it)."""
    from orsync import commands as do

    when = do.parse_since(since) if since else None
    run = this_run(ctx)
    # A first pull records every note as created: a table of thousands helps nobody, and
    # scripts that want them all have --json.
    capped = limit is None and since is None and not as_json
    rows = do.changes(run.config(), since=when, limit=CHANGES_SHOWN + 1 if capped else limit)
    if as_json:
        run.screen.json(rows)
    else:
        views.show_changes(run.screen, rows, since=since, capped=capped)


@section.command()
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
    from orsync import commands as do

    run = this_run(ctx)
    data = do.report(run.config(), html)
    if as_json:
        run.screen.json(data.as_dict())
    else:
        views.show_report(run.screen, data, html)


class What(StrEnum):
    papers = "papers"
    submissions = "submissions"
    reviews = "reviews"


class Format(StrEnum):
    json = "json"
    csv = "csv"
    yaml = "yaml"


@section.command()
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
    from orsync import commands as do

    text = do.export(this_run(ctx).config(), what.value, fmt.value, out_file)
    if out_file is None:
        sys.stdout.write(text)
