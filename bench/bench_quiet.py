"""CPU of a quiet pass (nothing changed) as the service runs it: ``.venv/bin/python
bench/bench_quiet.py [--size 7500] [--passes 7] [--no-files]``.

The emulator runs in another process (its CPU is not counted). One store is pulled, pushed and
its hosted files fetched once (``pdf`` of every accepted paper, every format, the sessions, talks
and program of config.example.toml); then, in this one process as ``orsync run`` keeps it, a
pass (incremental cycle, push, hosted files) runs ``--passes`` times with nothing changed,
and each pass's CPU (``time.process_time``, user + system of this process) and wall are
printed with their medians. The files must stay byte-identical and unwritten: the bench
compares each file's bytes, inode and mtime before and after.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _emulator import Emu, bgpt_config

from orsync import pipeline
from orsync.config import load_config
from orsync.logs import configure_logging


def write_config(folder: Path, emu: Emu, files: bool) -> Path:
    hosted = 'files = ["pdf"]\n' if files else ""
    return bgpt_config(folder, emu, sync="full_every = 100000\n", website=hosted)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    out = {}
    for path in sorted(folder.iterdir()):
        if path.is_file():
            st = path.stat()
            out[path.name] = (path.read_bytes(), st.st_ino, st.st_mtime_ns)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=7500, help="ICLR-like submissions")
    parser.add_argument("--passes", type=int, default=7)
    parser.add_argument("--no-files", action="store_true", help="without hosted files")
    parser.add_argument("--profile", help="write a cProfile of the last pass to this file")
    args = parser.parse_args()
    configure_logging(verbosity=-1)
    with Emu("iclr", args.size) as emu, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = load_config(write_config(folder, emu, not args.no_files))
        assert config.website is not None
        source = pipeline.make_source(config)
        started = time.perf_counter()
        first = pipeline.pull(config, pipeline.PassOptions(), source=source)
        first.raise_first_error()
        site = config.website.output_dir
        print(
            f"first pass: {time.perf_counter() - started:.1f} s, "
            f"{first.push.papers if first.push else 0} accepted papers",
            flush=True,
        )
        # A second pass settles what the first left due (files linked after their download).
        pipeline.pull(config, pipeline.PassOptions(), source=source).raise_first_error()
        before = snapshot(site)
        cpu: list[float] = []
        wall: list[float] = []
        with pipeline.opened(config, source) as (store, src):
            for i in range(args.passes):
                profile = (
                    cProfile.Profile(time.process_time)
                    if args.profile and i == args.passes - 1
                    else None
                )
                c0, w0 = time.process_time(), time.perf_counter()
                if profile is not None:
                    profile.enable()
                result = pipeline.run_pass(config, store, src, pipeline.PassOptions(command="run"))
                if profile is not None:
                    profile.disable()
                    profile.dump_stats(args.profile)
                cpu.append(time.process_time() - c0)
                wall.append(time.perf_counter() - w0)
                result.raise_first_error()
                assert result.cycle.changes == 0, result.cycle
                assert not (result.push and result.push.changed), result.push
        after = snapshot(site)
        same = before == after
    print(
        f"quiet pass ({'with' if not args.no_files else 'without'} hosted files, every format), "
        f"{args.passes} passes: CPU median {statistics.median(cpu):.3f} s "
        f"(min {min(cpu):.3f}), wall median {statistics.median(wall):.3f} s; "
        f"files unchanged (bytes, inode, mtime): {same}"
    )
    print("  CPU per pass: " + " ".join(f"{c:.3f}" for c in cpu))
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    os.environ.pop("ORSYNC_CONFIG", None)
    main()
