"""What the day's website files cost a push: ``.venv/bin/python bench/bench_day.py [--size N]``.

A synthetic BGPT-like venue with ~2,000 accepted papers (``--size`` submissions, about 54% of
them accepted) is pulled once; then, in one run, pushes alternate between two configs that share
the store and the day (config.example.toml's sessions, talks and program):

- ``base``: formats json, yaml, csv (papers.*, posters.json, program.json);
- ``day``:  the same plus ics and html (schedule.ics, index.html).

Each push is timed twice: into an empty folder (every file rendered and written) and again into
the same folder (rendered, compared, nothing written: the service's everyday push). Medians of
``--repeat`` rounds; the figure is the ratio of ``day`` to ``base``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _emulator import Emu

from orsync import publish
from orsync.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def write_config(folder: Path, emu: Emu, formats: str, out: str) -> Path:
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    day = example[example.index("[[posters.sessions]]") : example.index("[talk_selection]")]
    pw = folder / "pw"
    pw.write_text(emu.chair_password)
    pw.chmod(0o600)
    path = folder / f"{out}.toml"
    path.write_text(
        f'[openreview]\nbaseurl = "{emu.url}"\nvenue_id = "{emu.venue_id}"\n'
        f'username = "{emu.chair_username}"\npassword_file = "pw"\n\n'
        f'[store]\nurl = "sqlite:///{folder / "orsync.db"}"\n\n'
        f'[website]\noutput_dir = "{out}"\nformats = {formats}\n\n[posters]\n{day}',
        encoding="utf-8",
    )
    return path


def timed_push(config_path: Path) -> float:
    config = load_config(config_path)
    start = time.perf_counter()
    publish.push(config)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=3700, help="submissions (~54%% accepted)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with Emu("bgpt", args.size) as emu, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base = write_config(folder, emu, '["json", "yaml", "csv"]', "base")
        full = write_config(folder, emu, '["json", "yaml", "csv", "ics", "html"]', "day")
        pull = subprocess.run(
            [sys.executable, "-m", "orsync", "-q", "-c", str(base), "pull", "--no-push"],
            capture_output=True,
            text=True,
        )
        assert pull.returncode == 0, pull.stderr
        timed_push(base)  # the first push assigns the posters; every later one keeps them
        timed_push(full)  # and stores the calendar's first sequences
        with load_config(base).website.output_dir.joinpath("papers.json").open() as fh:  # type: ignore[union-attr]
            papers = fh.read().count('"forum_url"')
        times: dict[str, dict[str, list[float]]] = {
            k: {"written": [], "unchanged": []} for k in ("base", "day")
        }
        for _ in range(args.repeat):
            for name, path in (("base", base), ("day", full)):
                shutil.rmtree(folder / name, ignore_errors=True)
                times[name]["written"].append(timed_push(path))
                times[name]["unchanged"].append(timed_push(path))
        sizes = {p.name: p.stat().st_size for p in sorted((folder / "day").iterdir())}
    print(f"{papers} accepted papers ({args.size} submissions), median of {args.repeat} pushes")
    for kind in ("written", "unchanged"):
        b = statistics.median(times["base"][kind])
        d = statistics.median(times["day"][kind])
        print(
            f"  push, files {kind:<9}: json+yaml+csv {b:.2f} s, +ics+html {d:.2f} s = {d / b:.2f}x"
        )
    print("  " + ", ".join(f"{n} {s / 1024:.0f} KiB" for n, s in sizes.items()))


if __name__ == "__main__":
    main()
