"""The workshop day: ``orsync program`` and the contributed talks (``orsync talks``)."""

from __future__ import annotations

from typing import Annotated

import typer

from orsync.cli.context import this_run

section = typer.Typer()
talks_app = typer.Typer(
    help="Contributed talks: the shortlist by review scores and topic diversity.",
    no_args_is_help=True,
)


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
    from orsync import commands as do
    from orsync.talks import describe

    run = this_run(ctx)
    shortlist = do.suggest_talks(run.config(), count)
    if as_json:
        run.screen.json(shortlist.as_dict())
        return
    for line in describe(shortlist):
        run.screen.out.print(line)


@section.command()
def program(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the day as JSON.")] = False,
) -> None:
    """The day in time order (talks, poster sessions with their papers, breaks), what is wrong
    (clashing slots, broken talk rules, posters that cannot be placed: exit 2), what is still
    missing (talk slots with no paper, papers with no abstract), and the papers whose talk and
    OpenReview's decision disagree (an oral with no talk, a talk for a poster)."""
    from orsync import commands as do
    from orsync.site import describe

    run = this_run(ctx)
    day = do.program(run.config())
    if as_json:
        run.screen.json(day.as_dict())
    else:
        for line in describe(day):
            run.screen.out.print(line)
    if day.exit_code:
        raise typer.Exit(day.exit_code)
