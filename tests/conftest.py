"""Shared fixtures: an emulator on loopback, a config pointing at it, the CLI (in this process by
default, as a subprocess where a real process is the point), and the comparison of a mirror
against the emulator's ground truth."""

from __future__ import annotations

import contextlib
import functools
import gc
import io
import json
import locale
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import orsync
from orsync.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Setup:
    emu: Emulator
    dir: Path
    config: Path
    db: Path

    def cli(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        process: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(
            "--config", str(self.config), *args, env=env, timeout=timeout, process=process
        )


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
    process: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``orsync ARGS``: its exit code, stdout and stderr, as ``subprocess.run`` gives them.

    In this process by default (:func:`run_cli_in_process`: the same ``orsync.cli.main``, without
    an interpreter start and the imports per call). ``process=True`` runs ``python -m orsync``
    (:func:`run_cli_process`) where a real process is the point: signals and kills, locks held
    by another process, the service, what reaches a child's environment, a timeout.
    Either way the command sees this environment without ``ORSYNC_*`` and ``NOTIFY_SOCKET``,
    plus ``env``, and runs in ``cwd``.
    """
    run = run_cli_process if process else run_cli_in_process
    return run(*args, env=env, timeout=timeout, cwd=cwd)


_NOT_INHERITED = ("ORSYNC_", "NOTIFY_SOCKET")


def cli_environ(env: dict[str, str] | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the CLI gets: ``base`` (this one) without orsync's own variables, ``env``."""
    full_env = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if not k.startswith(_NOT_INHERITED)
    }
    full_env.update(env or {})
    return full_env


def run_cli_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m orsync ARGS`` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "orsync", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_environ(env),
        cwd=cwd,
    )


def run_cli_in_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``orsync.cli.main()`` with ``sys.argv`` set, here, in a state a new process would have.

    The entry point itself (not the typer app): it maps errors to exit codes and one line.
    Descriptors 1 and 2 are files for the run (not terminals), so what a library writes below
    Python lands there too, and ``sys.stdout``/``sys.stderr`` write through to them; both are
    read back as ``subprocess.run(text=True)`` reads pipes. The exit code is what the process
    would have exited with: ``SystemExit``'s, 0 when ``main`` returns, 1 after an uncaught
    exception (reported by ``sys.excepthook``, as the interpreter would). What the command
    left open is collected and the threads it started are waited for, as at a process's exit,
    so an emulator has logged every request it answered. A run longer than ``timeout`` raises
    ``subprocess.TimeoutExpired`` once it ends (it cannot be cut short).
    """
    from orsync import cli

    threads = set(threading.enumerate())
    started = time.monotonic()
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        with _fresh_process_state(args, env, cwd, out_file, err_file):
            try:
                cli.main()
                code = 0
            except SystemExit as exc:
                code = _exit_status(exc)
            except Exception:
                sys.excepthook(*sys.exc_info())
                code = 1
            # As the process's exit would: what the command left open is closed (its HTTP
            # connections: the emulator's threads serving them finish, their last answer
            # logged), and the threads it started are waited for.
            gc.collect()
            daemons_by = time.monotonic() + _DAEMON_WAIT_S
            for thread in set(threading.enumerate()) - threads:
                until = daemons_by if thread.daemon else started + timeout
                with contextlib.suppress(RuntimeError):  # still starting: serving someone else
                    thread.join(max(0.0, until - time.monotonic()))
        out, err = _read_back(out_file), _read_back(err_file)
    command = ["orsync", *args]
    if time.monotonic() - started > timeout:
        raise subprocess.TimeoutExpired(command, timeout, output=out, stderr=err)
    return subprocess.CompletedProcess(command, code, out, err)


# How long the daemon threads started while a command ran get to finish once it is done: the
# emulator's threads serving its connections take milliseconds; those serving another process
# (a pull the test runs beside it) go on, and are not waited for longer than this.
_DAEMON_WAIT_S = 1.0


def _exit_status(exc: SystemExit) -> int:
    """The exit status the interpreter gives ``raise SystemExit(code)``."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


@functools.cache
def _child_stdio() -> tuple[tuple[str, str], tuple[str, str]]:
    """The encoding and error handler of a child's stdout and stderr when they are pipes."""
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfor s in sys.stdout, sys.stderr: print(s.encoding, s.errors)",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=cli_environ(None),
    )
    out, err = (tuple(line.split()) for line in probe.stdout.splitlines())
    return (out[0], out[1]), (err[0], err[1])


def _stdio(fd: int, encoding: str, errors: str) -> io.TextIOWrapper:
    """A text stream on descriptor ``fd`` that writes through at once (as ``python -u``)."""
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(raw, encoding=encoding, errors=errors, write_through=True)


def _read_back(file: Any) -> str:
    """What ``subprocess.run(text=True)`` reads from a pipe: locale decoding, universal newlines."""
    file.seek(0)
    text: str = file.read().decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


# The warning filters a new interpreter starts with (CPython 3.11, no -W, no PYTHONWARNINGS).
# pytest shows deprecation warnings, and orsync would log them, on stderr.
_FRESH_WARNING_FILTERS: tuple[tuple[Any, type[Warning], str], ...] = (
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
)


@contextlib.contextmanager
def _fresh_process_state(
    args: tuple[str, ...],
    env: dict[str, str] | None,
    cwd: Path | None,
    out_file: Any,
    err_file: Any,
) -> Iterator[None]:
    """Within the block, this process is to the CLI what a new ``python -m orsync ARGS`` would
    be: environment, folder, ``sys.argv``, standard output and error (``out_file`` and
    ``err_file``, descriptors included), the interpreter's warning filters. Afterwards all of it
    is put back.

    What a command sets for its whole process (logging, the exception hooks, the secrets it
    read) ``orsync.cli.main`` puts back itself when it returns; what it changes only while it
    runs (signal handlers, the collector, structlog's bound context) too.
    """
    (out_enc, out_errors), (err_enc, err_errors) = _child_stdio()
    saved_environ = dict(os.environ)
    saved_cwd = Path.cwd()
    saved_argv = sys.argv
    saved_streams = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved_fds = (os.dup(1), os.dup(2))
    try:
        os.environ.clear()
        os.environ.update(cli_environ(env, saved_environ))
        if os.environ.get("TZ") != saved_environ.get("TZ"):
            time.tzset()
        if cwd is not None:
            os.chdir(cwd)
        sys.argv = [str(Path(orsync.__file__).with_name("__main__.py")), *args]
        os.dup2(out_file.fileno(), 1)
        os.dup2(err_file.fileno(), 2)
        sys.stdout, sys.stderr = _stdio(1, out_enc, out_errors), _stdio(2, err_enc, err_errors)
        sys.__stdout__, sys.__stderr__ = sys.stdout, sys.stderr  # type: ignore[misc]
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for action, category, module in reversed(_FRESH_WARNING_FILTERS):
                warnings.filterwarnings(action, category=category, module=module)
            yield
    finally:
        with contextlib.suppress(ValueError, OSError):  # closed by the command
            sys.stdout.flush()
            sys.stderr.flush()
        sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__ = saved_streams  # type: ignore[misc]
        for fd, saved in zip((1, 2), saved_fds, strict=True):
            os.dup2(saved, fd)
            os.close(saved)
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        tz = os.environ.get("TZ")
        os.environ.clear()
        os.environ.update(saved_environ)
        if tz != os.environ.get("TZ"):
            time.tzset()


def write_config(
    folder: Path,
    emu: Emulator | None,
    *,
    guest: bool = False,
    baseurl: str | None = None,
    venue_id: str | None = None,
    password: str | None = None,
    extra: str = "",
    retry_attempts: int = 6,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    url = baseurl or (emu.url if emu else "http://127.0.0.1:9")
    venue = venue_id or (emu.venue_id if emu else "ICLR.cc/2024/Workshop/BGPT")
    lines = [
        "[openreview]",
        f'baseurl = "{url}"',
        f'venue_id = "{venue}"',
        "timeout_s = 5",
        f"retry_attempts = {retry_attempts}",
        "retry_initial_s = 0.05",
        "retry_max_wait_s = 2",
    ]
    if not guest and emu is not None:
        pw = folder / "pw"
        pw.write_text(password if password is not None else emu.chair_password)
        pw.chmod(0o600)  # as a chair should keep it (orsync warns otherwise)
        lines += [f'username = "{emu.chair_username}"', 'password_file = "pw"']
    lines += ["", "[store]", f'url = "sqlite:///{folder / "orsync.db"}"', "", extra]
    path = folder / "orsync.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(dataset="bgpt", seed=7) as emu:
        yield emu


@pytest.fixture
def setup(tmp_path: Path, emulator: Emulator) -> Setup:
    config = write_config(tmp_path, emulator)
    return Setup(emulator, tmp_path, config, tmp_path / "orsync.db")


def live_notes(db: Path) -> dict[str, dict[str, Any]]:
    """The non-deleted notes of a store, read with plain sqlite3 like any other reader."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute("SELECT * FROM note WHERE NOT deleted").fetchall()
    finally:
        con.close()
    return {r["id"]: dict(r) for r in rows}


def assert_mirror_equals_truth(db: Path, truth: dict[str, Any]) -> None:
    notes = live_notes(db)
    subs = {i: n for i, n in notes.items() if n["kind"] == "submission"}
    replies = {i: n for i, n in notes.items() if n["kind"] != "submission"}
    assert set(subs) == set(truth["submissions"]), "submissions differ"
    for forum, want in truth["submissions"].items():
        got = subs[forum]
        assert got["number"] == want["number"], forum
        assert got["title"] == want["title"], forum
        assert got["status"] == want["status"], (forum, got["status"], want["status"])
        assert got["decision"] == want["decision"], forum
        assert got["presentation"] == want["presentation"], forum
        for key in ("authors", "authorids"):
            stored = json.loads(got[key]) if got[key] is not None else None
            assert stored == want[key], (forum, key)
        assert json.loads(got["keywords"]) == want["keywords"], forum
    assert set(replies) == set(truth["replies"]), "replies differ"
    for note_id, want in truth["replies"].items():
        got = replies[note_id]
        assert got["kind"] == want["kind"], note_id
        assert got["forum"] == want["forum"] and got["replyto"] == want["replyto"], note_id
        assert got["rating"] == want["rating"], note_id
        assert got["confidence"] == want["confidence"], note_id
        assert got["decision"] == want["decision"], note_id


def store_dump(db: Path) -> list[tuple[Any, ...]]:
    """Everything a clean run determines, without the bookkeeping that differs between runs."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(
            "SELECT id, forum, replyto, kind, number, title, authors, authorids, keywords, abstract, "
            "status, decision, presentation, rating, confidence, raw, digest, deleted FROM note ORDER BY id"
        ).fetchall()
    finally:
        con.close()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep ``--dist loadgroup`` grouping on pytest 9.2 (pytest-xdist issue 1386).

    On a worker, pytest-xdist appends ``@group`` to the node id of a test marked
    ``xdist_group`` by writing ``item._nodeid``; since pytest 9.2 the node id is read from
    ``item._id`` instead, so the groups were silently ignored and each worker built a grouped
    module's fixtures anew. Where xdist wrote an id that pytest does not show, it is applied.
    """
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        written = getattr(item, "_nodeid", None)
        current = getattr(item, "_id", None)
        if isinstance(written, str) and current is not None and str(current) != written:
            item._id = type(current).parse(written)


# -- fixtures more than one module uses, kept in their own plugin module --------------------------

pytest_plugins = ("shared_fixtures",)
