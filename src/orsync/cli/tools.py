"""Setting up and trying out: ``check``, ``venues``, ``emulator`` and ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orsync.cli.context import this_run
from orsync.terminal import safe

section = typer.Typer()


@section.command()
def check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Validate the config, reach the API, log in, read the venue, test the store and output
    folder, and run the day's rules as program and push do (talks, clashes, pins, boards).

    Where a talk and OpenReview's decision disagree (a talk for a poster, an oral with no talk)
    it says so in a WARN line; the exit code stays 0 for that."""
    from orsync import commands as do

    run = this_run(ctx)
    report = do.check(run.config_path)
    if as_json:
        run.screen.json(report.as_dict())
    else:
        for r in report.checks:
            mark = "FAIL" if not r.ok else "WARN" if r.warning else "ok  "
            run.screen.out.print(f"{mark} {r.name}: {safe(r.detail)}")
    raise typer.Exit(report.exit_code)


@section.command()
def venues(
    ctx: typer.Context,
    prefix: Annotated[
        str | None,
        typer.Argument(help="e.g. ICLR.cc/2024/Workshop/ (default: beside openreview.venue_id)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the venue groups under a prefix that the account can read, to find the venue id."""
    from orsync import commands as do

    run = this_run(ctx)
    found = do.venues(run.config(), prefix)
    if as_json:
        run.screen.json(found.as_dict())
        return
    for v in found.groups:
        kind = "venue" if v.venue else "group"
        run.screen.out.print(f"{v.id}  ({kind}{': ' + v.title if v.title else ''})")
    if found.groups:
        return
    if found.suggestion is not None:
        run.screen.out.print(
            f"no groups under {safe(found.prefix)}; ids are case-sensitive: did you mean "
            f"{safe(found.suggestion)}? (orsync venues {safe(found.suggestion)})"
        )
    else:
        run.screen.out.print(
            f"no groups under {safe(found.prefix)} that this account can read; try a shorter prefix"
        )


emulator_app = typer.Typer(
    help=(
        "Serve a synthetic OpenReview API v2 venue over HTTP, for rehearsals and tests.\n\n"
        "The venue moves through the phases submission, review, decision and camera_ready "
        "(--phase picks the first). To rehearse the weeks ahead, advance a running emulator from "
        "another shell: `orsync emulator advance --port 8765` (the next phase) or "
        "`orsync emulator advance --port 8765 --to decision`, then `orsync pull`."
    ),
    invoke_without_command=True,
)


@emulator_app.callback()
def emulator(
    ctx: typer.Context,
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
        str,
        typer.Option(
            "--phase", help="The phase to start in: submission, review, decision or camera_ready."
        ),
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
    if ctx.invoked_subcommand is not None:
        return
    from orsync import commands as do

    do.emulator(
        host=host,
        port=port,
        dataset=dataset,
        seed=seed,
        size=size,
        phase=phase,
        faults=faults,
        allow_remote=allow_remote,
    )


@emulator_app.command()
def advance(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", help="The running emulator's port.")] = 8765,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", help="submission, review, decision or camera_ready (default: the next phase)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Move a running emulator to its next phase (or --to PHASE), for rehearsals: reviews
    arrive, decisions are released, camera-ready versions come in. Phases go forward only."""
    from orsync import commands as do

    run = this_run(ctx)
    moved = do.emulator_advance(port, to)
    if as_json:
        run.screen.json(moved.as_dict())
    elif moved.before == moved.phase:
        run.screen.out.print(f"the emulator at {moved.url} is already at {moved.phase}")
    else:
        run.screen.out.print(f"the emulator at {moved.url}: {moved.before} -> {moved.phase}")


@section.command()
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
    from orsync import commands as do

    run = this_run(ctx)
    for line in do.demo(folder, size=size, verbosity=run.verbosity):
        run.screen.out.print(line)
