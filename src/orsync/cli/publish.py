"""``orsync push`` and the poster sessions (``orsync posters``): what the website shows."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from orsync.cli import views
from orsync.cli.context import this_run
from orsync.errors import UnreachableError

section = typer.Typer()


class PaperChoice(StrEnum):
    a4 = "a4"
    letter = "letter"


authors_app = typer.Typer(
    help="Tell each accepted paper's authors where and when it presents, through OpenReview.",
    no_args_is_help=True,
)
posters_app = typer.Typer(
    help="Poster sessions: assign, show, pin and unpin papers, freeze the announced places.",
    no_args_is_help=True,
)


@section.command()
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
    from orsync import commands as do

    run = this_run(ctx)
    config = run.config()
    result = do.push(config, force=force)
    if as_json:
        run.screen.json(result.as_dict())
    else:
        views.show_push(run.screen, result, config)


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
    from orsync import commands as do

    run = this_run(ctx)
    screen = run.screen
    config = run.config()
    done = do.assign_posters(config, reoptimise=reoptimise, dry_run=dry_run)
    result = done.result
    if as_json:
        screen.json({**result.as_dict(), "dry_run": dry_run, **views.assignment_dict(result)})
        return
    if not dry_run:
        views.show_push(screen, result, config)
    else:
        for line in result.problems + result.clash_lines():
            screen.err.print(f"warning: {line}")
    views.show_assignment(screen, result, dry_run=dry_run)
    if done.posters is None:
        screen.out.print("dry run: nothing was changed")
        return
    views.show_posters(screen, done.posters.rows, config, [])


@posters_app.command("show")
def posters_show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """The poster sessions with each paper's board and its contributed talk, as a table."""
    from orsync import commands as do

    run = this_run(ctx)
    config = run.config()
    listing = do.posters(config)
    if as_json:  # the list of places, as before; the warnings are in `orsync status --json`
        run.screen.json(views.posters_json(listing.rows))
    else:
        views.show_posters(run.screen, listing.rows, config, listing.warnings)


@posters_app.command("signs")
def posters_signs(
    ctx: typer.Context,
    out: Annotated[
        Path,
        typer.Option("--out", help="The HTML file to write (outside website.output_dir)."),
    ],
    paper: Annotated[
        PaperChoice, typer.Option("--paper", help="The paper the signs are printed on.")
    ] = PaperChoice.a4,
    pdf: Annotated[
        bool,
        typer.Option(
            "--pdf", help="Print it to a PDF beside it (same name, .pdf) with headless Chromium."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print what was written as JSON.")
    ] = False,
) -> None:
    """Write the poster boards' signs: one printed page per board in use in each session
    (session, time, board number, title, authors), print CSS, no script."""
    from orsync import commands as do

    run = this_run(ctx)
    done = do.poster_signs(run.config(), out, paper=paper.value, pdf=pdf)
    if as_json:
        run.screen.json(done.as_dict())
    else:
        views.show_signs(run.screen, done)


@posters_app.command("pin")
def posters_pin(
    ctx: typer.Context,
    paper: Annotated[str, typer.Argument(help="Paper number or forum id.")],
    session: Annotated[str, typer.Argument(help="Session id, e.g. P2.")],
) -> None:
    """Fix a paper's session by hand and publish it; the pin survives every later cycle."""
    from orsync import commands as do

    run = this_run(ctx)
    screen = run.screen
    config = run.config()
    done = do.pin(config, paper, session)
    pin = done.pin
    where = f", board {pin.place.board}" if pin.place else ""
    before = f" (was pinned to {pin.was})" if pin.was and pin.was != session else ""
    screen.out.print(f"pinned paper #{pin.number} to {session}{where}{before}")
    done.raise_push_error()
    if done.push is None:
        screen.out.print("pinned; no [website] configured, so nothing to publish")
    else:
        views.show_push(screen, done.push, config)


@posters_app.command("freeze")
def posters_freeze(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was frozen as JSON.")] = False,
) -> None:
    """Record that the published poster places are announced: no push moves a poster by itself.

    Afterwards a change that would force a move (a talk overlapping its poster, a removed
    session) fails the push with exit 2 naming the fix; `orsync posters pin` still moves one.
    """
    from orsync import commands as do

    run = this_run(ctx)
    done = do.freeze_posters(run.config())
    if as_json:
        run.screen.json(done.as_dict())
        return
    views.show_frozen(run.screen, done)


@posters_app.command("unpin")
def posters_unpin(
    ctx: typer.Context, paper: Annotated[str, typer.Argument(help="Paper number or forum id.")]
) -> None:
    """Release a pin (the paper keeps its board until a rule forces a move)."""
    from orsync import commands as do

    run = this_run(ctx)
    done = do.unpin(run.config(), paper)
    if done.was is None:
        run.screen.out.print(f"paper #{done.number} was not pinned; nothing changed")
        return
    run.screen.out.print(
        f"unpinned paper #{done.number} (was pinned to {done.was}); it keeps its place until "
        "a rule forces a move"
    )


@authors_app.command("notify")
def authors_notify(
    ctx: typer.Context,
    send: Annotated[
        bool,
        typer.Option(
            "--send",
            help="Send the notices (as a program chair); without it, only show who would get what.",
        ),
    ] = False,
    wait_s: Annotated[
        float, typer.Option("--wait-s", help="With --send: seconds to wait for the writer lock.")
    ] = 600.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the notices (and what was sent) as JSON.")
    ] = False,
) -> None:
    """One message per accepted, public paper to its authors group: session, board, talk, files.

    Once per content: a paper already told is told again only when its session, board or talk
    changed, in an update that says what changed ([authors_notice] in the config).
    """
    from orsync import commands as do

    run = this_run(ctx)
    config = run.config()
    result = do.notify_authors(config, send=send, wait_s=wait_s)
    if as_json:
        run.screen.json(result.as_dict())
    else:
        views.show_notices(run.screen, result)
    if result.error is not None:
        raise UnreachableError(f"stopped: {result.error}")
