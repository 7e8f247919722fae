"""The website's ``on_change`` command: run after a push changed files, bounded and stoppable."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from orsync.errors import OrsyncError

__all__ = ["DEFAULT_ON_CHANGE_TIMEOUT_S", "OnChangeError", "OnChangeStopped", "run_on_change"]


class OnChangeError(OrsyncError):
    """The website's on_change command failed or timed out; the files themselves are written.

    The push reports it as its own failure (exit 2, "the files are written"): the push did its
    part, the site was not rebuilt.
    """


class OnChangeStopped(OnChangeError):
    """The on_change command was killed because orsync was asked to stop."""


def _tail(data: bytes) -> str:
    lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    return (": " + lines[-1][:200]) if lines else ""


DEFAULT_ON_CHANGE_TIMEOUT_S = 300.0
_POLL_S = 0.1  # how often a running hook is checked against the deadline and a stop request
_GRACE_S = 2.0  # between SIGTERM and SIGKILL to the hook's process group
_DRAIN_S = 2.0  # reading what is left of its stderr once it is dead


def _kill_group(proc: subprocess.Popen[bytes]) -> bytes:
    """End the hook and everything it started in its process group: SIGTERM, then SIGKILL.

    Returns what could still be read of its stderr. A grandchild that left the group and keeps the
    pipe open cannot hold orsync: the pipe is abandoned after a short wait.
    """
    for sig, wait_s in ((signal.SIGTERM, _GRACE_S), (signal.SIGKILL, _DRAIN_S)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            _, err = proc.communicate(timeout=wait_s)
            return err or b""
        except subprocess.TimeoutExpired:
            continue
    if proc.stderr is not None:
        proc.stderr.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=_DRAIN_S)
    return b""


def run_on_change(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    timeout_s: float = DEFAULT_ON_CHANGE_TIMEOUT_S,
    *,
    should_stop: Callable[[], bool] | None = None,
    tick: Callable[[], None] | None = None,
) -> None:
    """Run the website's on_change command (no shell) with the caller's scrubbed environment.

    It runs in its own process group, which is killed (SIGTERM, then SIGKILL) when it outlives
    ``timeout_s`` (``website.on_change_timeout_s``), when ``should_stop()`` turns true (the
    service is stopping) and when orsync itself is interrupted (Ctrl-C), so no hook outlives the
    push that started it. ``tick`` is called while it runs (the service's watchdog heartbeat:
    a hook bounded by its timeout is progress).
    """
    if not argv:
        raise OnChangeError("website.on_change is empty; give a command and its arguments")
    shown = " ".join(argv)[:120]
    try:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so a timeout kills its children too
        )
    except OSError as exc:
        raise OnChangeError(
            f"website.on_change {shown!r} could not start: {exc.strerror}; check the command"
        ) from None
    deadline = time.monotonic() + timeout_s
    killed = False
    try:
        while True:
            if should_stop is not None and should_stop():
                killed = True
                _kill_group(proc)
                raise OnChangeStopped(
                    f"website.on_change {shown!r} was stopped because orsync is stopping"
                )
            if tick is not None:
                tick()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                killed = True
                _kill_group(proc)
                raise OnChangeError(
                    f"website.on_change {shown!r} did not finish within {timeout_s:g} s "
                    "(website.on_change_timeout_s) and was killed with its process group; "
                    "make it faster or raise the timeout"
                )
            try:
                _, err = proc.communicate(timeout=min(_POLL_S, remaining))
                break
            except subprocess.TimeoutExpired:
                continue
    except BaseException:
        if not killed and proc.poll() is None:
            _kill_group(proc)  # interrupted (Ctrl-C, a bug): the hook must not outlive us
        raise
    if proc.returncode != 0:
        raise OnChangeError(
            f"website.on_change {shown!r} failed with exit status {proc.returncode}{_tail(err)}"
        )
