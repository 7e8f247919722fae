"""Resident memory of the service at rest: ``.venv/bin/python bench/bench_idle.py [--cycles 1000]
[--src DIR ...]``.

``orsync run`` mirrors the BGPT emulator venue (its config: config.example.toml's website,
sessions, talks and program; ``sync.interval_s`` 0.01, no jitter, so quiet cycles follow each
other), and its ``VmRSS`` is read from ``/proc/PID/status`` once the first ``--warm`` cycles
are done (the first push placed the posters) and again after ``--cycles`` more, all quiet.
With ``--existing`` the store is made by ``orsync pull`` first, as after a restart: the
service then does not migrate it (alembic, 14 MiB, is loaded only to migrate). Each ``--src`` (an orsync checkout's ``src``, e.g. an older commit's ``git worktree``) runs the
same steps with ``PYTHONPATH`` set to it, one after the other, each against a new store.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _emulator import Emu, bgpt_config


def write_config(folder: Path, emu: Emu) -> Path:
    return bgpt_config(folder, emu, sync="interval_s = 0.01\njitter_s = 0\n")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cycles(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return int(con.execute("SELECT count(*) FROM cycle").fetchone()[0])
    except sqlite3.Error:
        return 0


def wait_cycles(db: Path, proc: subprocess.Popen[bytes], n: int) -> None:
    while cycles(db) < n:
        if proc.poll() is not None:
            raise SystemExit(f"orsync run exited {proc.returncode}")
        time.sleep(0.2)


def measure(
    emu: Emu, src: str | None, warm: int, quiet: int, existing: bool
) -> tuple[float, float, bool]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_config(folder, emu)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ORSYNC_", "NOTIFY_"))}
        if src:
            env["PYTHONPATH"] = src
        if existing:
            pull = [sys.executable, "-m", "orsync", "-q", "--config", str(config), "pull"]
            subprocess.run(pull, cwd=folder, env=env, check=True, capture_output=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "orsync", "-q", "--config", str(config), "run"],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_cycles(folder / "orsync.db", proc, warm)
            time.sleep(0.5)
            first = rss_mib(proc.pid)
            maps = Path(f"/proc/{proc.pid}/maps").read_text()
            wait_cycles(folder / "orsync.db", proc, warm + quiet)
            last = rss_mib(proc.pid)
            ortools = "ortools" in maps or "ortools" in Path(f"/proc/{proc.pid}/maps").read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    return first, last, ortools


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=3, help="cycles before the first reading")
    parser.add_argument("--cycles", type=int, default=1000, help="quiet cycles after it")
    parser.add_argument(
        "--existing",
        action="store_true",
        help="start on a store `orsync pull` made (a restart): no migration at start",
    )
    parser.add_argument("--src", action="append", default=[], help="PYTHONPATH of another orsync")
    args = parser.parse_args()
    runs = [None, *args.src]
    with Emu("bgpt", None) as emu:
        for src in runs:
            first, last, ortools = measure(emu, src, args.warm, args.cycles, args.existing)
            print(
                f"{src or 'this checkout'}: VmRSS {first:.0f} MiB after {args.warm} cycles, "
                f"{last:.0f} MiB after {args.cycles} more quiet ones ({last / first:.2f}x); "
                f"OR-Tools mapped: {ortools}",
                flush=True,
            )


if __name__ == "__main__":
    main()
