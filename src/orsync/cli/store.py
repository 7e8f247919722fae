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
    saw it). The first pull, which found every note already there, is one summary line; --json
    lists its notes too."""
    from orsync import commands as do

    when = do.parse_since(since) if since else None
    run = this_run(ctx)
    # A first pull records every note as created: a table of thousands helps nobody, so the
    # table says it in one line; scripts that want them all have --json.
    capped = limit is None and since is None and not as_json
    found = do.changes(
        run.config(),
        since=when,
        limit=CHANGES_SHOWN + 1 if capped else limit,
        apart=not as_json,
    )
    if as_json:  # every change, the first pull's too: scripts read the list as it is
        run.screen.json(found.rows)
    else:
        views.show_changes(run.screen, found, since=since, capped=capped)


@section.command()
def report(
    ctx: typer.Context,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Where to write the HTML page with charts (default: beside the store). Refused "
            "inside website.output_dir unless --force.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the figures as JSON instead of the summary.")
    ] = False,
    expected: Annotated[
        int,
        typer.Option(
            "--expected-reviews",
            min=1,
            help="Reviews each paper should have: what 'missing' counts against.",
        ),
    ] = 3,
    due: Annotated[
        str | None,
        typer.Option(
            "--due",
            help="The review deadline (an ISO date/time, UTC unless it says): reviews still "
            "missing after it are overdue.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write the page even inside website.output_dir.")
    ] = False,
) -> None:
    """Chairs' overview of the review process: every paper's review count and mean, the reviews
    missing and overdue, score distributions, decisions.

    "Missing" counts against --expected-reviews per paper under review (OpenReview's reviewer
    assignments are not mirrored); "overdue" needs --due, the review deadline (the review
    invitation's due date is not mirrored either)."""
    from orsync import commands as do

    run = this_run(ctx)
    deadline = do.parse_since(due, "--due") if due else None
    data = do.report(run.config(), html, force=force, expected_reviews=expected, due=deadline)
    if as_json:
        run.screen.json(data.as_dict())
    else:
        views.show_report(run.screen, data)


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
        Path | None,
        typer.Option(
            "--out",
            help="Write to this file instead of stdout (readable by you only; refused inside "
            "website.output_dir unless --force).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write --out even inside website.output_dir.")
    ] = False,
) -> None:
    """Dump papers, submissions or reviews from the store (no network)."""
    from orsync import commands as do

    text = do.export(this_run(ctx).config(), what.value, fmt.value, out_file, force=force)
    if out_file is None:
        sys.stdout.write(text)
