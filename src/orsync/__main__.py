"""The ``orsync`` command and ``python -m orsync``: the CLI, loaded without the cyclic collector.

Loading the CLI makes a few hundred thousand objects (typer, rich, pydantic's config models,
SQLAlchemy) that all live until the process ends. With the collector on, each collection walks
them again while the next ones are made, and the interpreter walks them once more at exit:
measured, about a quarter of a reading command's wall time (``bench/bench_commands.py``;
``orsync changes`` 2.0x -> 1.6x the bare ``import sqlalchemy``). So the collector is off while the
CLI loads, what was loaded is frozen (``gc.freeze``: kept, never scanned again) and collection
resumes for the command itself, since a pull or the service makes cyclic garbage for as long as
it runs. At exit the survivors are frozen too: every store is disposed and every file closed by
then (``with`` blocks, ``Store.dispose``), so the last collection would only walk them to free
memory the process is about to hand back.
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    try:
        from orsync.cli import main as cli_main
    finally:
        gc.freeze()
        gc.enable()
    try:
        cli_main()
    finally:
        gc.freeze()


if __name__ == "__main__":
    main()
