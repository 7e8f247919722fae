"""Everyday reading commands against a pulled store: wall time and peak memory as ratios.

The baseline is ``python -c "import sqlalchemy"`` in the same run (the floor of any command that
reads the store), alternated with the commands so that a noisy machine hits both alike::

    .venv/bin/python bench/bench_commands.py [--runs 7]

Prints median wall time and peak RSS of each command, and each as a ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bytecode import ensure_bytecode


def _run(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    ensure_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo"
        subprocess.run(
            [sys.executable, "-m", "orsync", "demo", "--dir", str(demo)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        config = str(demo / "orsync.toml")
        commands = {
            "import sqlalchemy": [sys.executable, "-c", "import sqlalchemy"],
            "orsync status": [sys.executable, "-m", "orsync", "-c", config, "status"],
            "orsync changes": [sys.executable, "-m", "orsync", "-c", config, "changes"],
            "orsync posters show": [
                sys.executable,
                "-m",
                "orsync",
                "-c",
                config,
                "posters",
                "show",
            ],
            "orsync --help": [sys.executable, "-m", "orsync", "--help"],
        }
        walls: dict[str, list[float]] = {name: [] for name in commands}
        rss: dict[str, list[float]] = {name: [] for name in commands}
        for argv in commands.values():  # warm the page cache once
            _run(argv)
        for _ in range(args.runs):
            for name, argv in commands.items():
                wall, peak = _run(argv)
                walls[name].append(wall)
                rss[name].append(peak)
    base_wall = statistics.median(walls["import sqlalchemy"])
    base_rss = statistics.median(rss["import sqlalchemy"])
    print(f"{'command':<22} {'wall s':>7} {'× base':>7} {'peak MiB':>9} {'× base':>7}")
    for name in commands:
        wall, peak = statistics.median(walls[name]), statistics.median(rss[name])
        print(f"{name:<22} {wall:7.3f} {wall / base_wall:7.2f} {peak:9.1f} {peak / base_rss:7.2f}")
    print(f"(median of {args.runs} runs each, alternated; {resource.getpagesize()} B pages)")


if __name__ == "__main__":
    main()
