"""The sd_notify protocol against a real AF_UNIX datagram socket, as systemd would listen."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orsync.notify import Notifier, WatchdogPinger


class Receiver:
    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value

    def recv(self, timeout: float = 2.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def drain(self) -> list[str]:
        self.sock.setblocking(False)
        out: list[str] = []
        try:
            while True:
                out.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            return out
        finally:
            self.sock.setblocking(True)


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[Receiver]:
    # AF_UNIX paths are limited to ~108 bytes; pytest's tmp_path may be deep, so fall back.
    path = tmp_path / "notify"
    if len(str(path)) > 100:
        path = Path("/tmp") / f"orsync-notify-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    try:
        yield Receiver(sock, str(path))
    finally:
        sock.close()
        path.unlink(missing_ok=True)


@pytest.fixture
def abstract_socket() -> Iterator[Receiver]:
    name = f"orsync-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    try:
        yield Receiver(sock, "@" + name)
    finally:
        sock.close()


def test_messages_arrive_exactly_on_a_path_socket(path_socket: Receiver) -> None:
    n = Notifier.from_environ({"NOTIFY_SOCKET": path_socket.env_value})
    assert n.enabled
    assert n.ready() is True
    assert path_socket.recv() == "READY=1"
    assert n.status("cycle 3 ok: 12 notes")
    assert path_socket.recv() == "STATUS=cycle 3 ok: 12 notes"
    assert n.watchdog()
    assert path_socket.recv() == "WATCHDOG=1"
    assert n.stopping()
    assert path_socket.recv() == "STOPPING=1"
    assert n.ready(status="reloaded")
    assert path_socket.recv() == "READY=1\nSTATUS=reloaded"
    assert n.extend_timeout(1.5)
    assert path_socket.recv() == "EXTEND_TIMEOUT_USEC=1500000"
    n.close()


def test_abstract_socket(abstract_socket: Receiver) -> None:
    n = Notifier.from_environ({"NOTIFY_SOCKET": abstract_socket.env_value})
    assert n.ready()
    assert abstract_socket.recv() == "READY=1"
    assert n.status("héllo ✓")  # UTF-8, as systemd expects
    assert abstract_socket.recv() == "STATUS=héllo ✓"


def test_reloading_carries_monotonic_usec(path_socket: Receiver) -> None:
    n = Notifier.from_environ({"NOTIFY_SOCKET": path_socket.env_value})
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert n.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    lines = path_socket.recv().split("\n")
    assert lines[0] == "RELOADING=1"
    key, _, value = lines[1].partition("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_status_cannot_inject_fields(path_socket: Receiver) -> None:
    n = Notifier.from_environ({"NOTIFY_SOCKET": path_socket.env_value})
    n.status("error: boom\nREADY=1\r\nSTOPPING=1")
    msg = path_socket.recv()
    assert msg.count("\n") == 0
    assert msg.startswith("STATUS=error: boom")


def test_absent_socket_is_a_no_op() -> None:
    n = Notifier.from_environ({})
    assert not n.enabled
    assert n.ready() is False
    assert n.status("x") is False
    assert n.watchdog_interval_s is None
    # An unsupported address family is treated like no socket at all.
    assert not Notifier.from_environ({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled


def test_send_errors_return_false(tmp_path: Path) -> None:
    n = Notifier.from_environ({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert n.enabled
    assert n.ready() is False
    assert n.watchdog() is False


def test_recovers_when_the_manager_socket_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "n"
    if len(str(path)) > 100:
        pytest.skip("tmp path too long for AF_UNIX")
    n = Notifier.from_environ({"NOTIFY_SOCKET": str(path)})
    assert n.status("lost") is False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    try:
        assert n.status("back")
        sock.settimeout(2)
        assert sock.recv(100) == b"STATUS=back"
    finally:
        sock.close()


def test_watchdog_interval() -> None:
    me = str(os.getpid())
    assert Notifier.from_environ({"WATCHDOG_USEC": "120000000"}).watchdog_interval_s == 60.0
    assert (
        Notifier.from_environ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": me}).watchdog_interval_s
        == 0.1
    )
    # Meant for another process (inherited from a parent service): not ours to honour.
    other = str(os.getpid() + 1)
    assert (
        Notifier.from_environ(
            {"WATCHDOG_USEC": "200000", "WATCHDOG_PID": other}
        ).watchdog_interval_s
        is None
    )
    for bad in ("", "0", "-5", "abc"):
        assert Notifier.from_environ({"WATCHDOG_USEC": bad}).watchdog_interval_s is None
    assert (
        Notifier.from_environ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "x"}).watchdog_interval_s
        is None
    )


def test_child_environ_strips_manager_variables() -> None:
    env = {
        "NOTIFY_SOCKET": "/run/systemd/notify",
        "WATCHDOG_USEC": "1",
        "WATCHDOG_PID": "1",
        "PATH": "/usr/bin",
        "CREDENTIALS_DIRECTORY": "/run/credentials/orsync.service",
    }
    child = Notifier.child_environ(env)
    assert child == {"PATH": "/usr/bin", "CREDENTIALS_DIRECTORY": "/run/credentials/orsync.service"}
    assert "NOTIFY_SOCKET" in env  # the input is not modified


def test_pinger_pace(path_socket: Receiver) -> None:
    env = {
        "NOTIFY_SOCKET": path_socket.env_value,
        "WATCHDOG_USEC": "200000",
        "WATCHDOG_PID": str(os.getpid()),
    }
    n = Notifier.from_environ(env)
    assert n.watchdog_interval_s == pytest.approx(0.1)
    pinger = WatchdogPinger(n, lambda: True)
    pinger.start()
    pinger.start()  # idempotent: still one thread
    time.sleep(1.0)
    pinger.stop()
    assert not pinger.running
    pings = path_socket.drain()
    assert set(pings) == {"WATCHDOG=1"}
    # ~11 expected (one at start, then every 0.1 s); a loaded CI box may be slower.
    assert 5 <= len(pings) <= 14
    time.sleep(0.3)
    assert path_socket.drain() == []  # stopped means stopped


def test_pinger_stops_pinging_when_unhealthy(path_socket: Receiver) -> None:
    env = {"NOTIFY_SOCKET": path_socket.env_value, "WATCHDOG_USEC": "100000"}
    healthy = threading.Event()
    healthy.set()
    pinger = WatchdogPinger(Notifier.from_environ(env), healthy.is_set)
    pinger.start()
    try:
        time.sleep(0.4)
        assert len(path_socket.drain()) >= 2
        healthy.clear()
        time.sleep(0.15)  # let a ping already past its health check land
        path_socket.drain()
        time.sleep(0.5)
        assert path_socket.drain() == []
        healthy.set()
        time.sleep(0.4)
        assert len(path_socket.drain()) >= 2
    finally:
        pinger.stop()


def test_pinger_treats_a_raising_check_as_unhealthy(path_socket: Receiver) -> None:
    def broken() -> bool:
        raise RuntimeError("store gone")

    env = {"NOTIFY_SOCKET": path_socket.env_value, "WATCHDOG_USEC": "100000"}
    pinger = WatchdogPinger(Notifier.from_environ(env), broken)
    pinger.start()
    time.sleep(0.3)
    assert pinger.running
    pinger.stop()
    assert path_socket.drain() == []


def test_pinger_without_watchdog_does_nothing() -> None:
    pinger = WatchdogPinger(Notifier.from_environ({}), lambda: True)
    pinger.start()
    assert not pinger.running
    pinger.stop()
