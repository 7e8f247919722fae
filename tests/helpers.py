"""What the test modules share: their helpers and constants, in one place.

Fixtures shared across modules live in ``shared_fixtures.py`` (registered by ``conftest.py``);
no test module imports another one (``test_quality.py`` holds them to it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from conftest import ROOT, write_config
from orsync.emulator import Emulator
from orsync.store.tables import metadata

# -- errors: one clear line and the documented exit code -------------------------------------------


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("orsync: error:")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def one_error_line(stderr: str) -> str:
    """The one non-blank line on stderr: an error, no traceback."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("orsync: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


# -- the store's schema ---------------------------------------------------------------------------


def schema_differences(conn: Connection) -> list[object]:
    """What autogenerate would change to make the store match ``tables.py``: nothing, if equal."""
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


# -- the workshop day: config.example.toml's day, talk selection -----------------------------------

SELECTION = '[talk_selection]\nexclude_field = "previously_published"\nexclude_values = ["Yes"]\n'


def example_day(talk_papers: list[int]) -> str:
    """config.example.toml's posters, talks and program (BGPT's day), the first talks filled."""
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    day = text[text.index("[posters]") : text.index("[talk_selection]")]
    for number in talk_papers:
        day = re.sub(
            r"^\[\[talks\]\]\n(# paper = \d+\n)?",
            f"[[talks#]]\npaper = {number}\n",
            day,
            count=1,
            flags=re.M,
        )
    return day.replace("[[talks#]]", "[[talks]]")


def hook(folder: Path) -> list[str]:
    script = folder / "hook.py"
    script.write_text("import sys\nopen(sys.argv[1], 'a').write('ran\\n')\n")
    return [sys.executable, str(script), str(folder / "hook.log")]


def day_config(
    folder: Path,
    emu: Emulator,
    talk_papers: list[int],
    formats: str = '["json", "yaml", "csv", "ics", "html"]',
    extra: str = "",
) -> Path:
    website = f'[website]\noutput_dir = "site"\nformats = {formats}\non_change = {json.dumps(hook(folder))}\n\n'
    return write_config(
        folder, emu, extra=website + SELECTION + "\n" + extra + "\n" + example_day(talk_papers)
    )


def accepted(emu: Emulator) -> dict[str, dict[str, Any]]:
    return {f: s for f, s in emu.truth("chair")["submissions"].items() if s["status"] == "accepted"}


# -- a website with poster sessions and talks ------------------------------------------------------

SESSIONS = [
    ("P1", "10:10", "11:00"),
    ("P2", "12:00", "14:00"),
    ("P3", "15:30", "16:20"),
    ("P4", "17:05", "17:55"),
]
TALKS = [
    ("11:30", "11:45"),
    ("11:45", "12:00"),
    ("15:00", "15:15"),
    ("15:15", "15:30"),
    ("16:50", "17:05"),
]


def at(hhmm: str) -> str:
    return f"2024-05-11T{hhmm}:00+02:00"


def website_config(folder: Path, emu: Emulator, talk_papers: list[int], boards: int = 25) -> Path:
    hook = folder / "hook.py"
    hook.write_text(
        "import json, os, sys\n"
        "with open(sys.argv[1], 'a') as f:\n"
        "    f.write(json.dumps(sorted(os.environ)) + '\\n')\n"
    )
    extra = [
        "[website]",
        'output_dir = "site"',
        f"on_change = {json.dumps([sys.executable, str(hook), str(folder / 'hook.log')])}",
        "",
        "[posters]",
        f"boards_per_session = {boards}",
    ]
    for sid, start, end in SESSIONS:
        extra += [
            "[[posters.sessions]]",
            f'id = "{sid}"',
            f'name = "Session {sid}"',
            f'start = "{at(start)}"',
            f'end = "{at(end)}"',
        ]
    for paper, (start, end) in zip(talk_papers, TALKS, strict=False):
        extra += ["[[talks]]", f"paper = {paper}", f'start = "{at(start)}"', f'end = "{at(end)}"']
    return write_config(folder, emu, extra="\n".join(extra))


# -- the service as systemd runs it: a subprocess, a notify socket, the password never shown ------

PASSWORD = "Pw-7f3!kq-Zeta-never-logged"  # distinctive, so any leak is found by substring search


class NotifySocket:
    """What systemd listens on: an AF_UNIX datagram socket; messages stamped on arrival."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append((time.monotonic(), data.decode()))

    def all(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self.messages)

    def having(self, field: str) -> list[tuple[float, str]]:
        return [(t, m) for t, m in self.all() if field in m.split("\n")]

    def with_prefix(self, prefix: str) -> list[tuple[float, str]]:
        return [(t, m) for t, m in self.all() if any(f.startswith(prefix) for f in m.split("\n"))]

    def wait(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}; got {self.all()[-10:]}")

    def close(self) -> None:
        self._closed = True
        self._thread.join(2)
        self.sock.close()
        self.path.unlink(missing_ok=True)


def write_service_config(
    folder: Path,
    emu_url: str,
    venue_id: str,
    username: str | None,
    *,
    sync: dict[str, Any] | None = None,
    openreview: dict[str, Any] | None = None,
    name: str = "orsync.toml",
) -> Path:
    (folder / "password").write_text(PASSWORD + "\n")
    o = {
        "baseurl": emu_url,
        "venue_id": venue_id,
        "password_file": "password",
        "timeout_s": 2,
        "retry_attempts": 3,
        "retry_initial_s": 0.02,
        "retry_max_wait_s": 0.1,
        **(openreview or {}),
    }
    if username is not None:
        o["username"] = username
    s = {"interval_s": 0.5, "jitter_s": 0.1, "full_every": 3, **(sync or {})}

    def fmt(v: Any) -> str:
        return json.dumps(v)  # TOML basic strings/numbers/bools are JSON-compatible

    lines = ["[openreview]", *(f"{k} = {fmt(v)}" for k, v in o.items())]
    lines += ["[store]", f"url = {fmt('sqlite:///' + str(folder / 'orsync.db'))}"]
    lines += ["[sync]", *(f"{k} = {fmt(v)}" for k, v in s.items())]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def config_for(folder: Path, emu: Emulator, **kw: Any) -> Path:
    return write_service_config(folder, emu.url, emu.venue_id, emu.chair_username, **kw)


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ORSYNC_", "NOTIFY_", "WATCHDOG_", "OPENREVIEW_", "CREDENTIALS_"))
    }
    env.update(extra)
    return env


OUTPUTS: list[str] = []  # every captured output of the service tests, searched for the password


def orsync(cfg: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "orsync", "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=timeout,
    )
    OUTPUTS.extend([done.stdout, done.stderr])
    assert PASSWORD not in done.stdout + done.stderr
    return done


class ServiceProcess:
    def __init__(self, cfg: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orsync", "--config", str(cfg), "run"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[tuple[float, str]] = []
        self.err: list[str] = []
        self._lock = threading.Lock()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read(self, stream: Any, is_out: bool) -> None:
        for line in stream:
            with self._lock:
                if is_out:
                    self.lines.append((time.monotonic(), line))
                else:
                    self.err.append(line)

    def events(self) -> list[tuple[float, dict[str, Any]]]:
        with self._lock:
            lines = list(self.lines)
        return [(t, json.loads(line)) for t, line in lines if line.strip()]

    def cycle_events(self) -> list[tuple[float, dict[str, Any]]]:
        return [(t, e) for t, e in self.events() if e["event"] == "cycle"]

    def wait_event(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, e in self.events():
                if pred(e):
                    return t
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}; last lines {self.lines[-5:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(5)
        out, err = "".join(line for _, line in self.lines), "".join(self.err)
        OUTPUTS.extend([out, err])
        return rc

    def check_output(self) -> list[dict[str, Any]]:
        """Every stdout line is a JSON event with venue and cycle id; no password anywhere."""
        out = "".join(line for _, line in self.lines)
        assert PASSWORD not in out
        assert PASSWORD not in "".join(self.err)
        assert "".join(self.err).strip() == "", self.err
        events = [e for _, e in self.events()]
        for e in events:
            assert "venue" in e and "cycle_id" in e, e
            assert {"timestamp", "level", "event"} <= set(e), e
        return events

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def start(
    services: list[ServiceProcess], cfg: Path, ns: NotifySocket | None, watchdog_usec: int = 0
) -> ServiceProcess:
    extra: dict[str, str] = {}
    if ns is not None:
        extra["NOTIFY_SOCKET"] = str(ns.path)
    if watchdog_usec:
        extra["WATCHDOG_USEC"] = str(watchdog_usec)
    svc = ServiceProcess(cfg, clean_env(**extra))
    services.append(svc)
    return svc


# -- bounds: a child's peak memory and wall time -------------------------------------------------

_PEAK_OF_CHILD = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "open(sys.argv[1], 'w').write(str(peak))\n"
    "sys.exit(code)\n"
)


def measured_cli(
    cfg: Path, *args: str, timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """``orsync --config CFG ARGS`` in a fresh process: (its result, its peak resident memory in
    MiB, its wall time in s). A go-between process is the only parent of the command, so the
    peak is the command's alone, not any other child's of the test process."""
    peak_file = cfg.parent / f"peak-{time.monotonic_ns()}"
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _PEAK_OF_CHILD,
            str(peak_file),
            sys.executable,
            "-m",
            "orsync",
            "--config",
            str(cfg),
            *args,
        ],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=timeout,
    )
    wall = time.monotonic() - started
    peak_mib = int(peak_file.read_text()) / 1024  # ru_maxrss is in KiB on Linux
    return done, peak_mib, wall
