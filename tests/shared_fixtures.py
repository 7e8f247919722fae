"""Fixtures more than one test module uses, registered by ``conftest.py``: a notify socket and
the service processes a test started (stopped after it), and a real PostgreSQL server."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import NotifySocket, ServiceProcess


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    path = tmp_path / "notify"
    if len(str(path)) > 100:  # AF_UNIX path limit
        path = Path("/tmp") / f"orsync-notify-{uuid.uuid4().hex}"
    ns = NotifySocket(path)
    try:
        yield ns
    finally:
        ns.close()


@pytest.fixture
def services() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for s in started:
        s.kill()


def _as_server_user(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI and this machine run the tests as root.
    return ["runuser", "-u", "nobody", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    base = Path(tempfile.mkdtemp(prefix="orsync-pg-"))
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
    options = f"-c listen_addresses='' -k {sock} -c fsync=off"
    subprocess.run(
        _as_server_user(
            ["pg_ctl", "-D", str(data), "-o", options, "-w", "-l", str(base / "log"), "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://orsync@/postgres?host={sock}"
    finally:
        subprocess.run(
            _as_server_user(["pg_ctl", "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)
