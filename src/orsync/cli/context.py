"""What one run of the command line carries from its global options to its command."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from orsync.cli.views import Screen
from orsync.config import Config, find_config, load_config


@dataclass
class Run:
    """One run of the command line (``ctx.obj``): its global options and where it writes."""

    screen: Screen = field(default_factory=Screen)
    config_path: Path | None = None
    log_format: str = "auto"
    verbosity: int = 0

    def config(self) -> Config:
        return load_config(find_config(self.config_path))


def this_run(ctx: typer.Context) -> Run:
    obj = ctx.find_root().obj
    assert isinstance(obj, Run)
    return obj
