"""Write ``docs/cli.md``, the command reference, from the Typer app itself.

Run ``.venv/bin/python docs/gen_cli.py`` after adding or changing a command or an option, and
commit the page: ``tests/test_docs.py`` fails while the committed page differs from what this
writes, so nothing reaches users undocumented. ``--check`` only compares (exit 1 on a difference).

The text is click's own (usage, help, each option's help record with its default), so the page
says exactly what ``--help`` says; only the layout is Markdown.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from orsync import errors
from orsync.cli import app

Command = TyperCommand | TyperGroup

PAGE = Path(__file__).resolve().with_name("cli.md")

# Wide enough that click never wraps a usage line: a wrap point would depend on nothing but this.
_NO_WRAP = 10_000

_HEAD = """\
# Command reference

Generated from the code by `docs/gen_cli.py`; do not edit by hand (a test compares the two).
What the commands are for: [the README](../README.md#commands); the configuration they read:
[configuration.md](configuration.md). `-v`/`--verbose` and `-q`/`--quiet` may also follow the
command.
"""

# How the commands speak: the hand-written part of the page, kept beside the generator.
_OUTPUT = [
    "## Output",
    "",
    "What a command did goes to stdout, warnings (`warning: ...`) and errors to stderr; `--json` "
    "prints one JSON document on stdout instead.",
    "",
    "- **Warnings are said once.** A push's warnings (the day's problems, talks and orals that "
    "disagree, hosted files unlinked, papers that share an author in a poster session) are kept "
    "in the store; `pull`, `push`, `posters assign` and `posters pin` print only those the last "
    "push did not give, and one line on stdout counting the ones that still hold. A warning "
    "that goes away and comes back is said again. `orsync status` and `orsync posters show` list "
    "every warning of the last push; `--json` of a push carries `warnings` (all) and "
    "`new_warnings`.",
    "- **`-q` prints nothing on success**: a pull, push or pin says nothing of what it did, only "
    "new warnings and errors (a second `pull -q` on an unchanged venue prints nothing at all). "
    "Reading commands (`status`, `changes`, `report`, `program`, ...) print what they were "
    "asked for.",
    "- **Under `orsync run`** every line is a JSON log line: a new warning is logged once at "
    "level `warning` (`push warning`), the full list at level `debug` on every pass (`-v`).",
    "",
]

# What each exit code means to a caller (a script, systemd). Every code orsync.errors declares
# must be here: a new one fails the generator, and so the docs test, until it is explained.
EXIT_CODES = {
    errors.EXIT_OK: "done",
    1: "an unexpected error: a bug in orsync (rerun with `-v` for the traceback, and report it)",
    errors.EXIT_USAGE: (
        "bad usage or config; also a website push that failed after a good cycle "
        "(`website.output_dir` not writable, `website.on_change` failed or timed out, the posters "
        "do not fit the boards, a website format could not be rendered): the cycle is kept, the "
        "files are written when they could be, and `orsync status` shows the push"
    ),
    errors.EXIT_UNREACHABLE: (
        "OpenReview unreachable or failing after retries, or its rate limit resets later than "
        "`openreview.retry_max_wait_s` (the message names the local time to try again); also a "
        "cycle refused by the max-delete guard"
    ),
    errors.EXIT_ACCESS: (
        "credentials rejected (or none given where OpenReview demands a login), or the venue not "
        "readable"
    ),
    errors.EXIT_STORE: (
        "store error (unreadable, not writable, written by a newer orsync, or mirroring another "
        "venue than `openreview.venue_id`: point `store.url` at another store); also a push refused "
        "because it would take more than `sync.max_delete_fraction` of the papers off the site "
        "(check `store.url`, or `--force`)"
    ),
    errors.EXIT_LOCKED: "another sync holds the lock (`--no-wait`, or `--wait-s` ran out)",
    errors.EXIT_INTERRUPTED: (
        "interrupted (Ctrl-C): one line, no traceback; a cycle in progress was rolled back, "
        "the store as it was before"
    ),
}


def _exit_codes() -> list[str]:
    declared = {value for name, value in vars(errors).items() if name.startswith("EXIT_")}
    unexplained = sorted(declared - set(EXIT_CODES))
    if unexplained:
        raise ValueError(f"exit codes {unexplained} of orsync.errors have no meaning in gen_cli.py")
    rows = [f"| `{code}` | {EXIT_CODES[code]} |" for code in sorted(EXIT_CODES)]
    intro = (
        "An error is one line on stderr saying what, where and what to do; `-v` adds the "
        "traceback. With `--json`, a failure also prints "
        '`{"ok": false, "error": ..., "exit_code": ...}` on stdout.'
    )
    return ["## Exit codes", "", intro, "", "| code | meaning |", "|---|---|", *rows, ""]


def _cell(text: str) -> str:
    """Text for one Markdown table cell: a ``|`` would end the cell, a newline the row."""
    return " ".join(text.replace("|", "\\|").split())


def _context(command: Command, name: str, parent: typer.Context | None) -> typer.Context:
    return typer.Context(
        command, info_name=name, parent=parent, terminal_width=_NO_WRAP, max_content_width=_NO_WRAP
    )


def _usage(command: Command, ctx: typer.Context) -> str:
    formatter = ctx.make_formatter()
    command.format_usage(ctx, formatter)
    return formatter.getvalue().strip().removeprefix("Usage:").strip()


def _params(command: Command, ctx: typer.Context) -> list[str]:
    rows = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        rows.append(f"| `{_cell(names)}` | {_cell(help_text)} |")
    if not rows:
        return []
    return ["| option | meaning |", "|---|---|", *rows, ""]


def _section(command: Command, ctx: typer.Context) -> list[str]:
    lines = [f"## {ctx.command_path}", "", "```", _usage(command, ctx), "```", ""]
    if command.help:
        lines += [inspect.cleandoc(command.help), ""]
    lines += _params(command, ctx)
    if isinstance(command, TyperGroup):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if not isinstance(sub, TyperCommand | TyperGroup) or sub.hidden:
                continue
            lines += _section(sub, _context(sub, name, ctx))
    return lines


def render() -> str:
    """The whole page, deterministic: the same code gives the same bytes."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    sections = _section(root, _context(root, "orsync", None))
    return "\n".join([_HEAD, *_OUTPUT, *_exit_codes(), *sections]).rstrip("\n") + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} is out of date: run python docs/gen_cli.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
