"""The ``orsync`` command line: thin commands over ``orsync.commands`` (docs/cli.md).

Each command parses its options, calls one function of :mod:`orsync.commands` and renders its
typed result (:mod:`orsync.cli.views`). The app, its global options and the error handling
are in :mod:`orsync.cli.app`; the commands live by theme in the other modules.
"""

from orsync.cli.app import app, main

__all__ = ["app", "main"]
