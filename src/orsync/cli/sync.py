"""``orsync pull`` and ``orsync run``: a sync cycle now, or the service that runs them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from orsync.cli import views
from orsync.cli.context import this_run
from orsync.terminal import safe

if TYPE_CHECKING:
    from orsync.pipeline import PassResult

section = typer.Typer()


@section.command()
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
    from orsync import commands as do

    run = this_run(ctx)
    screen = run.screen
    config = run.config()
    wait = 0.0 if no_wait else wait_s

    def pull_with(
        progress: Callable[[int, int | None], None] | None, on_wait: Callable[[str], None]
    ) -> PassResult:
        return do.pull(
            config,
            full=full,
            force=force,
            push=not no_push,
            wait_s=wait,
            progress=progress,
            on_wait=on_wait,
        )

    if sys.stderr.isatty() and not as_json and run.verbosity >= 0:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=screen.err,
            transient=True,
        ) as bar:
            task = bar.add_task("submissions", total=None)

            def progress(done: int, total: int | None) -> None:
                bar.update(task, description="submissions", completed=done, total=total)

            def waiting(holder: str) -> None:
                bar.update(task, description=f"waiting for the lock ({safe(holder)})")

            result = pull_with(progress, waiting)
    else:

        def tell(holder: str) -> None:
            if run.verbosity >= 0:
                screen.err.print(
                    f"waiting up to {wait:g}s (--wait-s) for the writer lock, {safe(holder)}"
                )

        result = pull_with(None, tell)
    data = result.cycle.as_dict()
    if not as_json:
        views.show_cycle(screen, result.cycle)
    if result.push is not None:
        data["pushed"] = result.push.changed
        data["push"] = result.push.as_dict()
        if not as_json:
            views.show_push(screen, result.push, config)
    if result.files is not None:
        data["files"] = result.files.as_dict()
        if not as_json:
            views.show_files(screen, result.files)
    result.raise_first_error()
    if as_json:
        screen.json(data)


@section.command()
def run(ctx: typer.Context) -> None:
    """The service: a sync cycle every sync.interval_s (with jitter) until SIGTERM/SIGINT.

    Speaks the systemd notify protocol (READY, STATUS, WATCHDOG, STOPPING); SIGHUP re-reads the
    config; transient faults back off and never stop it. See deploy/README.md.
    """
    # The service is the other edge beside the CLI, not a library function: it is called as
    # it is, not through orsync.commands (which sits below both).
    from orsync.service import run_service

    this = this_run(ctx)
    raise typer.Exit(
        run_service(this.config_path, log_format=this.log_format, verbosity=this.verbosity)
    )
