"""The Typer app, its global options, and the one place where an error becomes an exit code.

Every error a user can cause or meet ends here as one line on stderr and the documented exit
code (with ``--json``, also as a JSON object on stdout); the traceback only with ``-v``.
What a run needs (the options, the consoles) travels in the click context (``ctx.obj``), made
anew for each :func:`main`, so nothing of one run is left in the module for the next.
"""

from __future__ import annotations

import sys
import traceback
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from orsync import __version__
from orsync.cli import day, publish, store, sync, tools
from orsync.cli.context import Run, this_run
from orsync.cli.views import Screen
from orsync.errors import EXIT_INTERRUPTED, OrsyncError
from orsync.logs import configure_logging, restored_afterwards
from orsync.secrets import mask_text
from orsync.terminal import safe

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
# In the order ``orsync --help`` lists them: the commands, then the groups.
for module in (sync, store, publish, day, tools):
    app.add_typer(module.section)
app.add_typer(publish.posters_app, name="posters")
app.add_typer(publish.authors_app, name="authors")
app.add_typer(day.talks_app, name="talks")
app.add_typer(tools.emulator_app, name="emulator")


class LogFormat(StrEnum):
    json = "json"
    console = "console"


def _version(ctx: typer.Context, value: bool) -> None:
    if value:
        this_run(ctx).screen.out.print(f"orsync {__version__}")
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
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only warnings and errors: nothing on success.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    run = this_run(ctx)
    run.config_path = config
    run.verbosity = -1 if quiet else verbose
    run.screen.quiet = quiet
    run.log_format = log_format.value if log_format else "auto"
    configure_logging(run.log_format, run.verbosity)  # type: ignore[arg-type]


def _fail(screen: Screen, message: str, code: int) -> NoReturn:
    screen.err.print(f"orsync: error: {safe(mask_text(message))}", soft_wrap=True)
    raise SystemExit(code)


def _interrupt_in(exc: BaseException) -> KeyboardInterrupt | None:
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def _interrupted(
    screen: Screen, exc: KeyboardInterrupt, *, as_json: bool, verbose: bool
) -> NoReturn:
    """Ctrl-C: one line, exit 130, no traceback (``-v`` shows where it stopped)."""
    message = getattr(exc, "message", None) or "interrupted"
    if verbose:
        traceback.print_exception(exc)
    if as_json:
        screen.json({"ok": False, "error": message, "exit_code": EXIT_INTERRUPTED})
    _fail(screen, message, EXIT_INTERRUPTED)


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
    """``orsync``: one command, as a process runs it. Whatever the command set for the whole
    process (logging, the exception hooks, the secrets it read) is put back when it returns, so
    it can run again in the same process (a notebook, the test suite)."""
    with restored_afterwards():
        _main()


def _main() -> None:
    # New consoles for each run: a console reads the environment (COLUMNS, NO_COLOR, TERM) when
    # it is made. Their streams are sys.stdout/sys.stderr, looked up at each write.
    run = Run()
    screen = run.screen
    argv = _hoist_global_flags(sys.argv[1:])
    verbose = any(a in ("-v", "--verbose", "-vv", "-vvv") for a in argv)
    as_json = "--json" in argv
    try:
        # Typer handles usage errors itself (exit 2) and exits with SystemExit on success.
        app(args=argv, prog_name="orsync", obj=run)
    except OrsyncError as exc:
        if verbose:
            traceback.print_exc()
        if as_json:
            screen.json(
                {"ok": False, "error": exc.message, "exit_code": exc.exit_code, **exc.details}
            )
        _fail(screen, exc.message, exc.exit_code)
    except KeyboardInterrupt as exc:
        _interrupted(screen, exc, as_json=as_json, verbose=verbose)
    except SystemExit as exc:
        # Typer turns a Ctrl-C inside a command into a silent exit 130; the interrupt is in the
        # chain, and the user is owed the line saying what it left behind.
        interrupt = _interrupt_in(exc)
        if interrupt is None:
            raise
        _interrupted(screen, interrupt, as_json=as_json, verbose=verbose)
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        if as_json:
            screen.json(
                {"ok": False, "error": f"unexpected {exc.__class__.__name__}", "exit_code": 1}
            )
        _fail(
            screen,
            f"unexpected {exc.__class__.__name__}: {exc}; rerun with -v for the traceback",
            1,
        )
