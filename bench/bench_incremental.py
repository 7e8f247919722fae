"""Request counts, durations and peak memory of incremental vs full cycles (run by hand).

    .venv/bin/python bench/bench_incremental.py [--dataset iclr] [--size N] [--changes 50,1000]

Against `orsync emulator` in another process (ICLR scale by default: 7,500 submissions, about
100,000 notes), each cycle runs as a real `orsync pull --json --no-push` subprocess, so its peak
RSS (``wait4``'s ``ru_maxrss``) is the cycle's alone. Requests are counted twice: by orsync (the
summary) and by the emulator's request log; the two must agree. Steps:

1. full cycle into an empty store;
2. incremental cycle, nothing changed;
3. incremental cycles after N edited notes (titles of submissions, ratings of reviews), per
   ``--changes``;
4. ``--full`` reconciliation of the now populated store.

"wall" includes interpreter start-up and imports (about 0.5 s); "cycle" is run_cycle's own time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _emulator import Emu


def pull(config: Path, env: dict[str, str], *extra: str) -> tuple[dict[str, Any], float, float]:
    """One `orsync pull` subprocess: (summary, wall seconds, peak RSS MiB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orsync",
            "--config",
            str(config),
            "pull",
            "--json",
            "--no-push",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"pull failed ({proc.returncode}): {err.decode()[-2000:]}")
    return json.loads(out), wall, usage.ru_maxrss / 1024


def mutate(emu: Emu, count: int, rng: random.Random) -> None:
    truth = emu.control("GET", "truth?reader=chair")
    subs = sorted(truth["submissions"])
    reviews = sorted(k for k, v in truth["replies"].items() if v["kind"] == "review")
    half = count // 2
    for note in rng.sample(subs, half):
        fields = {"title": f"Edited {rng.randint(0, 10**9)}"}
        emu.control("POST", "mutate", {"op": "edit_content", "note": note, "fields": fields})
    for note in rng.sample(reviews, count - half):
        fields = {"rating": rng.randint(1, 10)}
        emu.control("POST", "mutate", {"op": "edit_content", "note": note, "fields": fields})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="iclr", choices=["bgpt", "iclr"])
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--changes", default="50,1000")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    folder = Path(tempfile.mkdtemp(prefix="orsync-bench-incr-"))
    started = time.perf_counter()
    emu = Emu(args.dataset, args.size)
    print(f"emulator {args.dataset} up in {time.perf_counter() - started:.1f}s at {emu.url}")
    config = folder / "orsync.toml"
    config.write_text(
        "[openreview]\n"
        f'baseurl = "{emu.url}"\nvenue_id = "{emu.venue_id}"\nusername = "{emu.chair_username}"\n'
        f'[store]\nurl = "sqlite:///{folder / "orsync.db"}"\n'
        "[sync]\nfull_every = 1000\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORSYNC_", "NOTIFY_"))}
    env["ORSYNC_OPENREVIEW_PASSWORD"] = emu.chair_password

    rows: list[tuple[str, dict[str, Any], int, float, float]] = []

    def step(label: str, *extra: str) -> None:
        emu.control("POST", "clear_requests")
        summary, wall, rss = pull(config, env, *extra)
        logged = len(emu.control("GET", "requests"))
        if logged != summary["requests"]:
            print(f"warning: {label}: orsync counted {summary['requests']}, emulator {logged}")
        rows.append((label, summary, logged, wall, rss))
        print(f"  done: {label}", flush=True)

    try:
        step("full, empty store")
        step("incremental, no change")
        for n in (int(x) for x in args.changes.split(",") if x):
            mutate(emu, n, rng)
            step(f"incremental, {n} changed")
        step("full (--full), populated", "--full")
    finally:
        emu.close()

    print()
    print(
        f"{'cycle':<28} {'mode':<12} {'requests':>8} {'notes seen':>10} {'changes':>8} "
        f"{'cycle s':>8} {'wall s':>7} {'peak RSS MiB':>12}"
    )
    for label, s, logged, wall, rss in rows:
        print(
            f"{label:<28} {s['mode']:<12} {logged:>8} {s['notes_seen']:>10} {s['changes']:>8} "
            f"{s['duration_s']:>8.2f} {wall:>7.2f} {rss:>12.0f}"
        )
    print(
        f"\nstore: {folder / 'orsync.db'} ({(folder / 'orsync.db').stat().st_size / 2**20:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
