"""Time and peak memory of a full `orsync pull` from an empty store (run by hand).

    .venv/bin/python bench/bench_pull.py [--dataset bgpt|iclr] [--size N]

The pull runs as a real subprocess (the CLI, a SQLite file, openreview-py over loopback HTTP)
against `orsync emulator` in another process, so the peak memory (from ``wait4``) is the pull's
alone. As a baseline on the same machine in the same run, the script first fetches the same
pages with plain `requests` and discards them: the ratio pull / fetch is what orsync adds on top
of moving the bytes, and it holds on a noisy machine where absolute seconds do not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from _emulator import Emu


def fetch_only(emu: Emu) -> tuple[float, int]:
    session = requests.Session()
    login = {"id": emu.chair_username, "password": emu.chair_password}
    token = session.post(f"{emu.url}/login", json=login).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    params: dict[str, object] = {
        "invitation": f"{emu.venue_id}/-/Submission",
        "details": "replies",
        "sort": "id:asc",
        "limit": 1000,
        "trash": "true",
        "count": "true",
    }
    notes = 0
    while True:
        page = session.get(f"{emu.url}/notes", params=params, headers=headers).json()["notes"]
        notes += len(page) + sum(len(n.get("details", {}).get("replies", [])) for n in page)
        if len(page) < 1000:
            break
        params = {**params, "after": page[-1]["id"], "count": "false"}
    return time.perf_counter() - started, notes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="iclr")
    parser.add_argument("--size", type=int, default=None)
    args = parser.parse_args()
    with Emu(args.dataset, args.size) as emu, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "pw").write_text(emu.chair_password)
        (folder / "orsync.toml").write_text(
            f'[openreview]\nbaseurl = "{emu.url}"\nvenue_id = "{emu.venue_id}"\n'
            f'username = "{emu.chair_username}"\npassword_file = "pw"\n'
            f'[store]\nurl = "sqlite:///{folder / "orsync.db"}"\n'
        )
        fetch_only(emu)  # warm the emulator's JSON cache so both runs meet the same server
        fetch_s, notes = fetch_only(emu)
        started = time.perf_counter()
        pull = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orsync",
                "--config",
                str(folder / "orsync.toml"),
                "-q",
                "pull",
                "--json",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert pull.stdout is not None
        output = pull.stdout.read()
        _, status, usage = os.wait4(pull.pid, 0)
        pull.returncode = os.waitstatus_to_exitcode(status)
        pull_s = time.perf_counter() - started
        assert pull.returncode == 0, output
        summary = json.loads(output)
        db_mb = (folder / "orsync.db").stat().st_size / 2**20
        print(
            f"dataset={args.dataset} submissions={sum(summary['by_status'].values())} notes={notes}"
        )
        print(f"fetch only (baseline): {fetch_s:6.2f} s")
        print(
            f"orsync pull (full):    {pull_s:6.2f} s   ratio {pull_s / fetch_s:.2f}x   "
            f"requests {summary['requests']}   peak RSS {usage.ru_maxrss / 1024:.0f} MiB   "
            f"store {db_mb:.0f} MiB"
        )


if __name__ == "__main__":
    main()
