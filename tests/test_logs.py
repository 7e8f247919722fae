"""Logging as the service emits it: a real subprocess, its real stdout, the secret nowhere.

A subprocess rather than in-process capture because configure_logging() rewires process-wide
state (root logger, sys.excepthook, sys.stdout under redirect) that pytest itself relies on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

# One worker runs this module, so its module-scoped fixture is built once.
pytestmark = pytest.mark.xdist_group("logs")

SECRET = "hunter2-S3cr3t!xyz"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.session-token-value"
VENUE = "ICLR.cc/2024/Workshop/BGPT"

# Runs inside the child. Every way the secret can reach a log, each in its own event.
SCRIPT = textwrap.dedent(
    """
    import logging, sys, threading, warnings
    from orsync.logs import add_secret, bind_cycle, configure_logging, get_logger
    from orsync.prints import redirect_prints_to_log

    fmt, secret, token, venue = sys.argv[1:5]
    configure_logging(fmt, verbosity=0, secrets=[secret], stream=sys.stdout)
    add_secret(token)  # registered later, as after a login
    log = get_logger("orsync.sync")

    def login(user):
        password = secret  # a frame local holding the secret: must never be rendered
        session = {"token": token}
        raise PermissionError(f"login failed for {user} with password {password}")

    with bind_cycle(venue, 42):
        log.info(f"message with {secret} inside")
        log.info("positional %s argument", secret)
        log.info("kwargs", pw=secret, password="not-registered-but-by-name")
        log.info("nested", data={"list": [1, {"deeper": [secret, "ok"]}], "t": (secret,)},
                 headers={"Authorization": "Bearer " + token, "Accept": "json"})
        log.info("escaped forms", quoted=repr(secret), url="https://x/?p=" + secret)
        try:
            login("chair@example.org")
        except PermissionError:
            log.exception("login failed")
        try:
            try:
                login("again")
            except PermissionError as e:
                raise RuntimeError("wrapped " + secret) from e
        except RuntimeError:
            log.error("chained", exc_info=True)
        logging.getLogger("urllib3.connectionpool").warning("Retrying %s", secret)
        logging.getLogger("alembic.runtime.migration").info("Running upgrade -> 0001")
        warnings.warn("deprecated thing " + secret)
        with redirect_prints_to_log():
            print(f"Retrying request: POST /login, response: {secret}")
            print("no newline at the end", end="")
        log.debug("debug is hidden at verbosity 0")
    log.info("outside the cycle")

    def boom():
        raise ValueError("thread failed " + secret)
    t = threading.Thread(target=boom, name="worker")
    t.start(); t.join()
    raise SystemExit(0)
    """
)


def run_child(fmt: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, fmt, SECRET, TOKEN, VENUE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def all_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *all_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in all_strings(v)]
    return []


@pytest.fixture(scope="module")
def json_run() -> tuple[list[dict[str, Any]], str]:
    result = run_child("json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]  # every line is JSON
    return events, result.stdout + result.stderr


def by_event(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    matches = [e for e in events if e["event"] == name]
    assert len(matches) == 1, (name, [e["event"] for e in events])
    return matches[0]


def test_json_secret_never_appears(json_run: tuple[list[dict[str, Any]], str]) -> None:
    _, output = json_run
    assert SECRET not in output
    assert TOKEN not in output
    assert "not-registered-but-by-name" not in output
    # Not even escaped or URL-quoted.
    assert "hunter2" not in output
    assert "S3cr3t" not in output


def test_json_lines_carry_the_standard_keys(json_run: tuple[list[dict[str, Any]], str]) -> None:
    events, _ = json_run
    assert len(events) >= 12
    for event in events:
        assert {"event", "level", "timestamp"} <= event.keys()
        # ISO 8601 in UTC.
        assert event["timestamp"].endswith("Z")
        assert event["timestamp"][10] == "T"
    inside = [e for e in events if e["event"] not in ("outside the cycle",) and "thread" not in e]
    for event in inside:
        assert event["venue"] == VENUE, event
        assert event["cycle_id"] == 42, event
    outside = by_event(events, "outside the cycle")
    assert "venue" not in outside and "cycle_id" not in outside
    assert not any("debug is hidden" in e["event"] for e in events)


def test_json_redaction_details(json_run: tuple[list[dict[str, Any]], str]) -> None:
    events, _ = json_run
    assert by_event(events, "message with [REDACTED] inside")["level"] == "info"
    by_event(events, "positional [REDACTED] argument")
    kwargs = by_event(events, "kwargs")
    assert kwargs["pw"] == "[REDACTED]"
    assert kwargs["password"] == "[REDACTED]"
    nested = by_event(events, "nested")
    assert nested["data"]["list"][1]["deeper"] == ["[REDACTED]", "ok"]
    assert nested["headers"] == {"Authorization": "[REDACTED]", "Accept": "json"}


def test_json_tracebacks_without_locals(json_run: tuple[list[dict[str, Any]], str]) -> None:
    events, _ = json_run
    failed = by_event(events, "login failed")
    assert failed["level"] == "error"
    (exc,) = failed["exception"]
    assert exc["exc_type"] == "PermissionError"
    assert exc["exc_value"] == "login failed for chair@example.org with password [REDACTED]"
    assert [f["name"] for f in exc["frames"]][-1] == "login"
    assert all(not f.get("locals") for f in exc["frames"])
    chained = by_event(events, "chained")
    assert [s["exc_type"] for s in chained["exception"]] == ["RuntimeError", "PermissionError"]
    uncaught = by_event(events, "uncaught exception in thread")
    assert uncaught["level"] == "critical"
    assert uncaught["thread"] == "worker"
    assert uncaught["exception"][0]["exc_value"] == "thread failed [REDACTED]"


def test_json_foreign_and_stray_output(json_run: tuple[list[dict[str, Any]], str]) -> None:
    events, _ = json_run
    retry = by_event(events, "Retrying [REDACTED]")
    assert retry["logger"] == "urllib3.connectionpool"
    assert retry["level"] == "warning"
    assert by_event(events, "Running upgrade -> 0001")["logger"] == "alembic.runtime.migration"
    warning = next(e for e in events if e["logger"] == "py.warnings")
    assert "deprecated thing [REDACTED]" in warning["event"]
    printed = by_event(events, "Retrying request: POST /login, response: [REDACTED]")
    assert printed["stream"] == "stdout"
    assert printed["logger"] == "__main__"  # the module that printed
    assert printed["venue"] == VENUE
    by_event(events, "no newline at the end")


def test_console_mode() -> None:
    result = run_child("console")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert SECRET not in out + result.stderr
    assert TOKEN not in out + result.stderr
    assert "hunter2" not in out
    assert "Traceback (most recent call last)" in out
    assert "PermissionError: login failed for chair@example.org with password [REDACTED]" in out
    assert f"venue={VENUE}" in out
    assert "cycle_id=42" in out
    # Not JSON, and no ANSI colours when the stream is not a terminal.
    assert not out.lstrip().startswith("{")
    assert "\x1b[" not in out
    # No frame locals: the local variable names of login() never show up as "name = value".
    assert "session =" not in out and "password =" not in out


def test_auto_is_json_off_a_terminal() -> None:
    result = run_child("auto")
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        json.loads(line)
    assert SECRET not in result.stdout


def test_handler_failure_does_not_leak(tmp_path: Path) -> None:
    # The stdlib reports a failing handler by printing the raw record (pre-redaction) to stderr.
    script = textwrap.dedent(
        """
        import sys
        from orsync.logs import configure_logging, get_logger
        stream = open(sys.argv[2], "w")
        configure_logging("json", secrets=[sys.argv[1]], stream=stream)
        stream.close()  # every write now fails
        get_logger("orsync").info("about to fail " + sys.argv[1], pw=sys.argv[1])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, SECRET, str(tmp_path / "log")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert json.loads(result.stderr.splitlines()[0])["event"] == "log write failed"


def test_redact_processor_in_process() -> None:
    from orsync import logs

    logs._clear_secrets()
    try:
        logs.add_secret('p@ss w"ord')
        logs.add_secret("   ")  # blank: ignored, or every space would be masked
        event = {
            "event": 'json form p@ss w\\"ord and url form p%40ss%20w%22ord',
            "cookie": "abc",
            "password_file": "/etc/orsync/pw",
            "token": None,
            "b": b'raw p@ss w"ord',
            "err": ValueError('p@ss w"ord'),
            "note": "Authorization: Bearer abcdefghijklmnop",
        }
        out = logs.redact(None, "info", event)
        assert out["event"] == "json form [REDACTED] and url form [REDACTED]"
        assert out["cookie"] == "[REDACTED]"
        assert out["password_file"] == "/etc/orsync/pw"  # a location, not a secret
        assert out["token"] is None
        assert out["b"] == "raw [REDACTED]"
        assert out["err"] == "ValueError: [REDACTED]"
        assert "abcdefghijklmnop" not in out["note"]
        assert next(iter(out)) == "event"
    finally:
        logs._clear_secrets()


def test_a_command_run_in_process_leaves_the_process_as_it_found_it(setup: Any) -> None:
    """``orsync.cli.main`` puts back what a command sets for its whole process: the root logger,
    the exception hooks, warnings routed to logging, and the password it read (registered while
    the command runs, so every line it prints is masked; forgotten when it returns)."""
    import logging
    import threading
    import warnings

    from orsync import secrets

    root = logging.getLogger()
    before = (
        list(root.handlers),
        root.level,
        sys.excepthook,
        threading.excepthook,
        warnings.showwarning,
        secrets.registered(),
    )
    assert setup.emu.chair_password not in before[-1]
    result = setup.cli("-v", "pull")
    assert result.returncode == 0, result.stderr
    after = (
        list(root.handlers),
        root.level,
        sys.excepthook,
        threading.excepthook,
        warnings.showwarning,
        secrets.registered(),
    )
    assert after == before
    assert setup.emu.chair_password not in result.stdout + result.stderr
