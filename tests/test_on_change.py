"""`website.on_change` is bounded: a hung hook is killed with everything it started after
`website.on_change_timeout_s`, and SIGTERM to `orsync run` kills it at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Setup, run_cli, write_config
from orsync.emulator import Emulator
from orsync.publish import OnChangeError, run_on_change

# The hook starts a child that ignores SIGTERM (so only SIGKILL ends it) and keeps the hook's
# stderr open, writes both pids, then both sleep for an hour.
HANG = """\
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"])
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(3600)
"""


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (reaped by whoever inherited it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _wait_gone(pids: list[int], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.05)
    assert all(_gone(p) for p in pids), [p for p in pids if not _gone(p)]


def _pids(path: Path, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return [int(p) for p in path.read_text().split()]
        time.sleep(0.05)
    raise AssertionError(f"the hook never started ({path} missing)")


@pytest.fixture
def hook(tmp_path: Path) -> tuple[list[str], Path]:
    script = tmp_path / "hang.py"
    script.write_text(HANG)
    pids = tmp_path / "hook.pids"
    return [sys.executable, str(script), str(pids)], pids


def _kill_leftovers(pids_file: Path) -> None:
    if pids_file.exists():
        for pid in (int(p) for p in pids_file.read_text().split()):
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_run_on_change_kills_the_whole_group_at_the_timeout(
    tmp_path: Path, hook: tuple[list[str], Path]
) -> None:
    argv, pids_file = hook
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    started = time.monotonic()
    try:
        with pytest.raises(OnChangeError, match=r"within 1 s \(website\.on_change_timeout_s\)"):
            run_on_change(argv, env, tmp_path, timeout_s=1.0)
        elapsed = time.monotonic() - started
        assert elapsed < 8, f"took {elapsed:.1f}s: the timeout, SIGTERM, 2 s grace, SIGKILL"
        _wait_gone(_pids(pids_file, 1))
    finally:
        _kill_leftovers(pids_file)


def test_run_on_change_stops_when_asked(tmp_path: Path, hook: tuple[list[str], Path]) -> None:
    argv, pids_file = hook
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    ticks: list[float] = []
    try:
        started = time.monotonic()
        with pytest.raises(OnChangeError, match="stopped because orsync is stopping"):
            run_on_change(
                argv, env, tmp_path, timeout_s=300,
                should_stop=lambda: pids_file.exists(), tick=lambda: ticks.append(1.0),
            )  # fmt: skip
        assert time.monotonic() - started < 15
        assert ticks, "the service's heartbeat is fed while the hook runs"
        _wait_gone(_pids(pids_file, 1))
    finally:
        _kill_leftovers(pids_file)


def _website_config(folder: Path, emu: Emulator, argv: list[str], timeout_s: float | None) -> Path:
    extra = ["[website]", 'output_dir = "site"', f"on_change = {json.dumps(argv)}"]
    if timeout_s is not None:
        extra.append(f"on_change_timeout_s = {timeout_s}")
    return write_config(folder, emu, extra="\n".join(extra))


def test_push_with_a_hung_hook_fails_within_the_timeout(
    tmp_path: Path, emulator: Emulator, hook: tuple[list[str], Path]
) -> None:
    argv, pids_file = hook
    setup = Setup(
        emulator, tmp_path, _website_config(tmp_path, emulator, argv, 2), tmp_path / "orsync.db"
    )
    try:
        assert setup.cli("pull", "--no-push").returncode == 0
        started = time.monotonic()
        result = setup.cli("push", timeout=60, process=True)
        elapsed = time.monotonic() - started
        assert result.returncode == 2, (result.stdout, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("orsync: error: website.on_change"), lines
        assert "website.on_change_timeout_s" in lines[0] and "2 s" in lines[0]
        assert elapsed < 15, f"push took {elapsed:.1f}s with a 2 s hook timeout"
        assert (tmp_path / "site" / "papers.json").exists(), "the files are written all the same"
        _wait_gone(_pids(pids_file, 1))
    finally:
        _kill_leftovers(pids_file)


def test_sigterm_to_run_kills_a_hung_hook_and_exits_0_promptly(
    tmp_path: Path, emulator: Emulator, hook: tuple[list[str], Path]
) -> None:
    argv, pids_file = hook
    config = _website_config(tmp_path, emulator, argv, None)  # the default timeout, 300 s
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ORSYNC_", "NOTIFY_", "WATCHDOG_"))
    }
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orsync", "--config", str(config), "run"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        pids = _pids(pids_file, 60)  # the first cycle pushed and the hook is hanging
        time.sleep(0.3)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        elapsed = time.monotonic() - started
        assert rc == 0
        assert elapsed < 6, f"stopping took {elapsed:.1f}s"
        _wait_gone(pids)
        events = [json.loads(line) for line in (tmp_path / "run.log").read_text().splitlines()]
        failed = [e for e in events if e["event"] == "website push failed"]
        assert failed and "stopped because orsync is stopping" in failed[0]["error"]
        assert events[-1]["event"] == "service stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        log.close()
        _kill_leftovers(pids_file)


def test_timeout_key_is_validated(tmp_path: Path) -> None:
    for bad in ("0", "-1", "7200", '"soon"'):
        config = write_config(
            tmp_path, None, extra=f'[website]\noutput_dir = "site"\non_change_timeout_s = {bad}'
        )
        result = run_cli("--config", str(config), "push")
        assert result.returncode == 2, (bad, result.stderr)
        assert "on_change_timeout_s" in result.stderr


def test_run_on_change(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MARK": "1"}
    run_on_change([sys.executable, "-c", "import os; open('ran','w').write(os.environ['MARK'])"],
                  env, tmp_path)  # fmt: skip
    assert (tmp_path / "ran").read_text() == "1"
    # A failing hook: its exit status and the last line it wrote to stderr, in one line.
    with pytest.raises(OnChangeError, match=r"exit status 3: boom$") as info:
        run_on_change(
            [
                sys.executable,
                "-c",
                "import sys; print('starting\\n  \\nboom\\n', file=sys.stderr); sys.exit(3)",
            ],
            env,
            tmp_path,
        )
    message = str(info.value)
    assert "\n" not in message and message.endswith("failed with exit status 3: boom")
    with pytest.raises(OnChangeError, match=r"did not finish within 0\.5 s"):
        run_on_change([sys.executable, "-c", "import time; time.sleep(30)"], env, tmp_path,
                      timeout_s=0.5)  # fmt: skip
    with pytest.raises(OnChangeError, match="could not start"):
        run_on_change(["/nonexistent/hook"], env, tmp_path)
    with pytest.raises(OnChangeError, match="; \\$\\(rm"):  # no shell: metacharacters are data
        run_on_change(["/bin/echo; $(rm -rf /)"], env, tmp_path)


# Fails on its first run (a deploy that could not reach the server), succeeds afterwards; each
# run is logged with whether it failed.
FLAKY = """\
import pathlib, sys
log = pathlib.Path(sys.argv[1])
runs = log.read_text().splitlines() if log.exists() else []
failing = not runs
log.write_text("\\n".join([*runs, "failed" if failing else "ok"]) + "\\n")
if failing:
    print("deploy: connection refused", file=sys.stderr)
    sys.exit(1)
"""


def test_a_failed_hook_is_run_again_until_it_succeeds(tmp_path: Path, emulator: Emulator) -> None:
    script = tmp_path / "flaky.py"
    script.write_text(FLAKY)
    runs = tmp_path / "runs.log"
    config = _website_config(tmp_path, emulator, [sys.executable, str(script), str(runs)], None)
    setup = Setup(emulator, tmp_path, config, tmp_path / "orsync.db")

    first = setup.cli("pull")
    assert first.returncode == 2, first.stderr
    assert "deploy: connection refused" in first.stderr
    assert runs.read_text().split() == ["failed"]

    # Nothing changed on OpenReview nor in the files: the hook is still owed to the site.
    status = json.loads(setup.cli("status", "--json").stdout)
    owed = status["on_change_pending"]
    assert owed is not None and owed["attempts"] == 1
    assert "connection refused" in owed["error"]
    shown = setup.cli("status").stdout
    assert "on_change" in shown and "pending since" in shown

    again = setup.cli("push", "--json")
    assert again.returncode == 0, again.stderr
    pushed = json.loads(again.stdout)
    assert pushed["changed"] == [] and pushed["on_change"] == "pending"
    assert "connection refused" in pushed["on_change_was_pending"]["error"]
    assert runs.read_text().split() == ["failed", "ok"]
    assert json.loads(setup.cli("status", "--json").stdout)["on_change_pending"] is None

    # Paid off: the next pass with nothing changed does not run it.
    assert setup.cli("pull").returncode == 0
    assert runs.read_text().split() == ["failed", "ok"]


def test_a_pass_says_it_ran_a_pending_hook(tmp_path: Path, emulator: Emulator) -> None:
    script = tmp_path / "flaky.py"
    script.write_text(FLAKY)
    runs = tmp_path / "runs.log"
    config = _website_config(tmp_path, emulator, [sys.executable, str(script), str(runs)], None)
    setup = Setup(emulator, tmp_path, config, tmp_path / "orsync.db")
    assert setup.cli("pull").returncode == 2  # the site is written; its deploy fails
    result = setup.cli("pull")
    assert result.returncode == 0, result.stderr
    assert "already up to date" in result.stdout
    assert "ran website.on_change because it was pending since" in result.stdout
    assert "connection refused" in result.stdout
    assert runs.read_text().split() == ["failed", "ok"]
