"""The writer lock (orsync.lock): one writer at a time, a second one waiting and then giving up
with exit 75, the holder named, a dead holder's lock taken over. Another holder is always a real
process."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import Setup
from helpers import one_line_error


def test_lock_no_wait_exits_75_and_wait_succeeds(setup: Setup) -> None:
    assert setup.cli("pull").returncode == 0
    # Hold the writer lock from another process, as a running `orsync run` would, until told.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys\n"
                "from pathlib import Path\n"
                "from orsync.lock import writer_lock\n"
                f"with writer_lock(Path({str(setup.db) + '.lock'!r}), wait_s=0, command='test'):\n"
                "    print('held', flush=True)\n"
                "    sys.stdin.readline()\n"
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        one_line_error(
            setup.cli("pull", "--no-wait", process=True), 75, "another sync holds the lock"
        )
        status = json.loads(setup.cli("status", "--json", process=True).stdout)
        assert status["lock_holder"]["pid"] == holder.pid
        waiting = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orsync",
                "--config",
                str(setup.config),
                "pull",
                "--wait-s",
                "60",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert waiting.stderr is not None
        # It says it is waiting, and for whom, once it meets the lock (however long it takes
        # to start on a loaded machine); only then is the lock released.
        first = waiting.stderr.readline()
        assert waiting.poll() is None, "pull waits while the lock is held"
        holder.stdin.write("release\n")
        holder.stdin.flush()
        _, rest = waiting.communicate(timeout=60)
        err = first + rest
        assert waiting.returncode == 0, err
        # It said it was waiting, and for whom, instead of a silent progress line.
        assert (
            f"waiting up to 60s (--wait-s) for the writer lock, held by pid {holder.pid} (test)"
            in err
        )
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
