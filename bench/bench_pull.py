"""A full `orsync pull` beside what a chair would otherwise run, in one run (by hand).

    .venv/bin/python bench/bench_pull.py [--dataset iclr] [--size N] [--runs 3] [--postgres]

The reference is openreview-py's own bulk read, logged in, which only downloads and parses:
``OpenReviewClient(...).get_all_notes(invitation=V/-/Submission, details="replies")``. Both run
as whole processes against the same `orsync emulator` (another process, loopback HTTP), their
runs alternating, and each process's wall time, CPU time (user + system, its waited-for children
included, from ``wait4``) and peak resident memory (the process and its children together,
sampled every 10 ms from /proc: a first pull builds its rows in a child) are compared as
medians. Printed as ratios orsync / bare client, which hold on a
noisy machine where absolute seconds do not:

- ``empty``: `orsync pull --no-push` into a new SQLite store;
- ``unchanged``: `orsync pull --full --no-push` on a populated store of the same venue (a full
  reconciliation that finds nothing to change);
- ``--postgres``: the empty-store pull into a PostgreSQL server started here (initdb, pg_ctl on
  PATH), as a ratio to the SQLite pull of the same round.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from _bytecode import ensure_bytecode
from _emulator import Emu

BARE_CLIENT = """
import sys, openreview.api
url, user, password, invitation = sys.argv[1:5]
client = openreview.api.OpenReviewClient(baseurl=url, username=user, password=password)
notes = client.get_all_notes(invitation=invitation, details="replies")
print(len(notes) + sum(len(n.details.get("replies", [])) for n in notes))
"""


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    peak_mib: float
    output: str


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc."""
    found = [pid]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found += _tree(int(child))
    return found


def _rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _sample_tree(pid: int, peak: list[int], done: threading.Event) -> None:
    # The resident memory of the process and its children together, every 10 ms: orsync's
    # first pull builds rows in a child, and wait4 reports the largest process, not the sum.
    while not done.wait(0.01):
        peak[0] = max(peak[0], sum(_rss_kib(p) for p in _tree(pid)))


def run(cmd: list[str]) -> Run:
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    peak, done = [0], threading.Event()
    sampler = threading.Thread(target=_sample_tree, args=(proc.pid, peak, done), daemon=True)
    sampler.start()
    output = proc.stdout.read()
    done.set()
    sampler.join()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    assert code == 0, f"{cmd[:4]} exited {code}: {output[-2000:]}"
    # CPU: wait4 counts the children the process waited for; memory: the larger of the
    # sampled sum and the kernel's own peak of the largest process.
    return Run(wall, usage.ru_utime + usage.ru_stime, max(peak[0], usage.ru_maxrss) / 1024, output)


def bare(emu: Emu) -> Run:
    return run(
        [
            sys.executable,
            "-c",
            BARE_CLIENT,
            emu.url,
            emu.chair_username,
            emu.chair_password,
            f"{emu.venue_id}/-/Submission",
        ]
    )


def config(folder: Path, emu: Emu, url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pw").write_text(emu.chair_password)
    (folder / "pw").chmod(0o600)
    path = folder / "orsync.toml"
    path.write_text(
        f'[openreview]\nbaseurl = "{emu.url}"\nvenue_id = "{emu.venue_id}"\n'
        f'username = "{emu.chair_username}"\npassword_file = "pw"\n'
        f'[store]\nurl = "{url}"\n'
    )
    return path


def pull(cfg: Path, *extra: str) -> Run:
    r = run(
        [
            sys.executable,
            "-m",
            "orsync",
            "--config",
            str(cfg),
            "-q",
            "pull",
            "--no-push",
            "--json",
            *extra,
        ]
    )
    summary = json.loads(r.output)
    assert summary.get("ok", True), summary
    return r


def _as_server_user(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "nobody", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def postgres() -> Iterator[str]:
    base = Path(tempfile.mkdtemp(prefix="orsync-bench-pg-"))
    base.chmod(0o755)
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "nobody")
        shutil.chown(sock, "nobody")
    subprocess.run(
        _as_server_user(["initdb", "-D", str(data), "-A", "trust", "-U", "orsync"]),
        check=True,
        capture_output=True,
    )
    # Durable as a real server is (fsync on): the comparison with SQLite (synchronous=NORMAL,
    # WAL) should not flatter PostgreSQL.
    options = f"-c listen_addresses='' -k {sock}"
    subprocess.run(
        _as_server_user(
            ["pg_ctl", "-D", str(data), "-o", options, "-w", "-l", str(base / "log"), "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield str(sock)
    finally:
        subprocess.run(
            _as_server_user(["pg_ctl", "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def fresh_database(sock: str, name: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(
        f"postgresql+psycopg://orsync@/postgres?host={sock}", isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return f"postgresql+psycopg://orsync@/{name}?host={sock}"


def medians(runs: list[Run]) -> tuple[float, float, float]:
    return (
        statistics.median(r.wall_s for r in runs),
        statistics.median(r.cpu_s for r in runs),
        statistics.median(r.peak_mib for r in runs),
    )


def line(label: str, runs: list[Run], ref: list[Run]) -> str:
    w, c, m = medians(runs)
    rw, rc, rm = medians(ref)
    return (
        f"{label:<34} wall {w:6.2f} s  cpu {c:6.2f} s  peak {m:5.0f} MiB   "
        f"ratios: wall {w / rw:4.2f}x  cpu {c / rc:4.2f}x  peak {m / rm:4.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="iclr")
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="add the PostgreSQL store")
    args = parser.parse_args()
    ensure_bytecode()
    with contextlib.ExitStack() as stack, Emu(args.dataset, args.size) as emu:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sock = stack.enter_context(postgres()) if args.postgres else None
        notes = int(bare(emu).output)  # warms the emulator's JSON cache for both
        bare_empty: list[Run] = []
        empty: list[Run] = []
        pg: list[Run] = []
        populated = config(tmp / "populated", emu, f"sqlite:///{tmp / 'populated' / 'orsync.db'}")
        for i in range(args.runs):
            bare_empty.append(bare(emu))
            folder = tmp / f"empty{i}"
            empty.append(pull(config(folder, emu, f"sqlite:///{folder / 'orsync.db'}")))
            if sock is not None:
                url = fresh_database(sock, f"bench{i}")
                pg.append(pull(config(tmp / f"pg{i}", emu, url)))
            if i == 0:
                for db in folder.glob("orsync.db*"):
                    shutil.copy2(db, tmp / "populated" / db.name)
            shutil.rmtree(folder)
        summary = json.loads(empty[-1].output)
        subs = sum(summary["by_status"].values())
        bare_full: list[Run] = []
        unchanged: list[Run] = []
        for _ in range(args.runs):
            bare_full.append(bare(emu))
            unchanged.append(pull(populated, "--full"))
            assert json.loads(unchanged[-1].output)["changes"] == 0
        print(
            f"dataset={args.dataset} submissions={subs} notes={notes} "
            f"requests={summary['requests']} runs={args.runs} (medians)"
        )
        print(line("bare client (get_all_notes)", bare_empty, bare_empty))
        print(line("orsync pull, empty store", empty, bare_empty))
        print(line("bare client (get_all_notes)", bare_full, bare_full))
        print(line("orsync pull --full, unchanged", unchanged, bare_full))
        if pg:
            print(line("orsync pull, empty PostgreSQL", pg, bare_empty))
            w, c, m = medians(pg)
            sw, sc, sm = medians(empty)
            print(
                f"PostgreSQL / SQLite (empty store): wall {w / sw:4.2f}x  cpu {c / sc:4.2f}x  peak {m / sm:4.2f}x"
            )


if __name__ == "__main__":
    main()
