"""The writer lock (orsync.lock): one writer at a time, a second one waiting and then giving up
with exit 75, the holder named, a dead holder's lock taken over. Another holder is always a real
process."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import Setup
from helpers import one_line_error
from orsync.errors import LockedError
from orsync.lock import UNKNOWN_HOLDER, describe_holder, holder, writer_lock


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


# -- the lock itself (orsync.lock), another holder always a real process ---------------------------

HOLD = """\
import sys
from pathlib import Path
from orsync.lock import writer_lock
with writer_lock(Path(sys.argv[1]), wait_s=0, command=sys.argv[2]):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
sys.stdin.readline()
"""
# Holds the flock without saying who it is, as another program (or an orsync between taking the
# lock and writing its name) would.
HOLD_SILENTLY = """\
import fcntl, sys
with open(sys.argv[1], "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.readline()
"""


class Holder:
    """Another process holding the writer lock until told to let go."""

    def __init__(self, path: Path, script: str = HOLD, command: str = "run") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, str(path), command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        assert self.stdout.readline().strip() == "held"

    def release(self) -> None:
        self.stdin.write("go\n")
        self.stdin.flush()
        assert self.stdout.readline().strip() == "released"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.stdin.close()
        self.stdout.close()


@pytest.fixture
def lock_file(tmp_path: Path) -> Path:
    return tmp_path / "orsync.db.lock"


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for h in started:
        h.close()


def test_a_free_lock_is_taken_says_who_holds_it_and_is_free_again(lock_file: Path) -> None:
    assert holder(lock_file) is None and describe_holder(None) == "lock: free"
    before = datetime.now(UTC).replace(microsecond=0)
    with writer_lock(lock_file, wait_s=0, command="pull"):
        info = holder(lock_file)
        assert info is not None
        assert info["pid"] == os.getpid() and info["command"] == "pull"
        assert info["host"] == socket.gethostname()
        assert before <= datetime.fromisoformat(info["since"]) <= datetime.now(UTC)
        assert (
            describe_holder(info) == f"lock: held by pid {os.getpid()} (pull) since {info['since']}"
        )
        assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600
    assert holder(lock_file) is None
    assert lock_file.read_text() == ""  # who held it is not left behind
    with writer_lock(lock_file, wait_s=0, command="push"):  # and it can be taken again
        assert holder(lock_file)["command"] == "push"  # type: ignore[index]


def test_a_second_writer_waits_then_gives_up_with_exit_75(
    lock_file: Path, holders: list[Holder]
) -> None:
    other = Holder(lock_file, command="run")
    holders.append(other)
    pid = other.proc.pid
    info = holder(lock_file)
    assert info is not None and info["pid"] == pid and info["command"] == "run"
    heard: list[str] = []
    started = time.monotonic()
    with (
        pytest.raises(LockedError) as raised,
        writer_lock(lock_file, wait_s=1.0, command="pull", on_wait=heard.append),
    ):
        raise AssertionError("the lock was taken while another process held it")
    waited = time.monotonic() - started
    assert 1.0 <= waited < 5.0
    assert raised.value.exit_code == 75
    assert str(raised.value) == (
        f"another sync holds the lock by pid {pid} (run); wait for it, or use --wait-s to wait longer"
    )
    # Told once, with the holder, that it waits.
    assert heard == [f"held by pid {pid} (run) since {info['since']}"]
    # --no-wait: refused at once, without a word about waiting.
    heard.clear()
    started = time.monotonic()
    with (
        pytest.raises(LockedError),
        writer_lock(lock_file, wait_s=0, command="pull", on_wait=heard.append),
    ):
        raise AssertionError("the lock was taken while another process held it")
    assert time.monotonic() - started < 0.5 and heard == []
    assert holder(lock_file)["pid"] == pid  # type: ignore[index]  # the holder kept it


def test_a_waiting_writer_takes_the_lock_once_it_is_let_go(
    lock_file: Path, holders: list[Holder]
) -> None:
    other = Holder(lock_file)
    holders.append(other)
    heard: list[str] = []

    def waiting(who: str) -> None:
        heard.append(who)
        other.release()  # the holder finishes while we wait

    with writer_lock(lock_file, wait_s=30, command="pull", on_wait=waiting):
        assert holder(lock_file)["pid"] == os.getpid()  # type: ignore[index]
    assert len(heard) == 1 and heard[0].startswith(f"held by pid {other.proc.pid} (run)")


def test_a_lock_of_a_killed_holder_is_free(lock_file: Path, holders: list[Holder]) -> None:
    other = Holder(lock_file)
    holders.append(other)
    other.proc.kill()  # kill -9: no chance to clean up
    other.proc.wait(timeout=30)
    # Its name is still in the file, but the kernel dropped its flock: nobody holds the lock.
    assert json.loads(lock_file.read_text())["pid"] == other.proc.pid
    assert holder(lock_file) is None
    with writer_lock(lock_file, wait_s=0, command="pull"):
        assert holder(lock_file)["pid"] == os.getpid()  # type: ignore[index]


def test_a_holder_that_does_not_say_who_it_is_still_holds_the_lock(
    lock_file: Path, holders: list[Holder]
) -> None:
    holders.append(Holder(lock_file, HOLD_SILENTLY))
    info = holder(lock_file)
    assert info == {"pid": None, "command": UNKNOWN_HOLDER}
    assert describe_holder(info) == "lock: held by a process orsync cannot identify"
    with pytest.raises(LockedError) as raised, writer_lock(lock_file, wait_s=0, command="pull"):
        raise AssertionError("the lock was taken while another process held it")
    assert str(raised.value) == (
        "another sync holds the lock by a process orsync cannot identify; wait for it, "
        "or use --wait-s to wait longer"
    )
