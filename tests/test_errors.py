"""Every bad input ends in the documented exit code and one clear line, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.core import TyperGroup

from conftest import Setup, cli_environ, run_cli, write_config
from helpers import one_line_error
from orsync.cli import app as cli_app
from orsync.emulator import Emulator


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ("[openreview]\nvenue_id = 'X'\ntypo_key = 1\n", ("unknown key", "openreview.typo_key")),
        (
            "[openreview]\nbaseurl = 'https://api2.openreview.net'\n",
            ("missing", "openreview.venue_id"),
        ),
        ("[openreview]\nvenue_id = 'X'\ntimeout_s = -1\n", ("openreview.timeout_s",)),
        ("[openreview\nvenue_id = 'X'\n", ("not valid TOML",)),
        (
            "[openreview]\nvenue_id='X'\n[[posters.sessions]]\nid='P1'\nname='a'\nstart='2024-05-11T10:00:00'\nend='2024-05-11T11:00:00+02:00'\n",
            ('posters.sessions[1] ("a").start',),
        ),
        (
            "[openreview]\nvenue_id='X'\n[sync]\nmax_delete_fraction = 2\n",
            ("sync.max_delete_fraction",),
        ),
        ("[openreview]\nvenue_id='X'\nusername='a@b.c'\n", ("no password",)),
    ],
)
def test_bad_config_exits_2_naming_the_key(
    tmp_path: Path, body: str, needles: tuple[str, ...]
) -> None:
    config = tmp_path / "orsync.toml"
    config.write_text(body)
    one_line_error(run_cli("--config", str(config), "pull"), 2, *needles)


_SLOT = "[[program.slots]]\nkind = 'break'\ntitle = '{title}'\nstart = '{start}'\nend = '{end}'\n"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        # The misspelt key, not the "missing venue_id" it causes, with the key it was meant to be.
        (
            "[openreview]\nvenue_idd = 'X'\n",
            "unknown key openreview.venue_idd; did you mean venue_id?",
        ),
        (
            "[openreview]\nvenue_id = 'X'\n[websit]\noutput_dir = 'site'\n",
            "unknown key websit; did you mean website?",
        ),
        # Lists count from 1 as the file reads, and an entry is named by its title.
        (
            "[openreview]\nvenue_id = 'X'\n"
            + _SLOT.format(title="Coffee", start="2024-05-11T10:00:00Z", end="2024-05-11T10:30:00Z")
            + _SLOT.format(title="Lunch", start="2024-05-11T12:00:00Z", end="2024-05-11T11:00:00Z"),
            'program.slots[2] ("Lunch")',
        ),
        (
            "[openreview]\nvenue_id = 'X'\n"
            + _SLOT.format(title="Coffee", start="2024-05-11T10:00:00Z", end="2024-05-11T10:30:00Z")
            + "titel = 'x'\n",
            'unknown key program.slots[1] ("Coffee").titel; did you mean title?',
        ),
    ],
)
def test_config_errors_count_from_one_and_suggest_keys(
    tmp_path: Path, body: str, needle: str
) -> None:
    config = tmp_path / "orsync.toml"
    config.write_text(body)
    one_line_error(run_cli("--config", str(config), "pull"), 2, needle)


def test_missing_config_file(tmp_path: Path) -> None:
    one_line_error(run_cli("--config", str(tmp_path / "nope.toml"), "pull"), 2, "does not exist")
    one_line_error(run_cli("pull", cwd=tmp_path), 2, "no configuration found")


def test_usage_error_exits_2(tmp_path: Path) -> None:
    result = run_cli("pull", "--no-such-flag")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_api_exits_3(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, None, baseurl=f"http://127.0.0.1:{_free_port()}", retry_attempts=2
    )
    one_line_error(run_cli("--config", str(config), "pull"), 3, "kept failing")


def test_wrong_password_exits_4(tmp_path: Path, emulator: Emulator) -> None:
    config = write_config(tmp_path, emulator, password="not-the-password")
    result = run_cli("--config", str(config), "pull")
    one_line_error(result, 4, "rejected the login")
    assert "not-the-password" not in result.stderr + result.stdout


def test_unknown_venue_exits_4(tmp_path: Path, emulator: Emulator) -> None:
    config = write_config(tmp_path, emulator, venue_id="ICLR.cc/2024/Workshop/NOPE")
    one_line_error(run_cli("--config", str(config), "pull"), 4, "NOPE")


def test_unwritable_store_exits_5(tmp_path: Path, emulator: Emulator) -> None:
    config = write_config(tmp_path, emulator)
    text = config.read_text().replace(
        f"sqlite:///{tmp_path / 'orsync.db'}", f"sqlite:///{tmp_path / 'missing' / 'x.db'}"
    )
    config.write_text(text)
    one_line_error(run_cli("--config", str(config), "pull"), 5, "does not exist")
    if os.geteuid() != 0:  # root writes anywhere; the missing folder above covers it
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        config.write_text(text.replace(str(tmp_path / "missing" / "x.db"), str(ro / "x.db")))
        one_line_error(run_cli("--config", str(config), "pull"), 5)


def test_corrupt_store_exits_5(setup: Setup) -> None:
    setup.db.write_bytes(b"this is not a database" * 100)
    one_line_error(setup.cli("pull"), 5)


def test_store_from_newer_orsync_is_refused(setup: Setup) -> None:
    assert setup.cli("pull").returncode == 0
    import sqlite3

    con = sqlite3.connect(setup.db)
    con.execute("UPDATE alembic_version SET version_num = '9999'")
    con.commit()
    con.close()
    one_line_error(setup.cli("status"), 5, "newer orsync")


def _commands() -> list[tuple[tuple[str, ...], Any]]:
    """Every command and group of ``orsync`` (Typer's own click objects), each with the words
    that reach it."""
    found: list[tuple[tuple[str, ...], Any]] = []

    def walk(path: tuple[str, ...], command: Any) -> None:
        found.append((path, command))
        for name, sub in _subcommands(command).items():
            walk((*path, name), sub)

    walk((), typer.main.get_command(cli_app))
    return found


def _subcommands(command: Any) -> dict[str, Any]:
    return dict(command.commands) if isinstance(command, TyperGroup) else {}


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    ("path", "command"),
    [pytest.param(path, command, id=" ".join(path) or "orsync") for path, command in _commands()],
)
def test_help_teaches(path: tuple[str, ...], command: Any) -> None:
    """Each command's --help says what it does and what each of its options and arguments is."""
    result = run_cli(*path, "--help", env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    shown = _flat(result.stdout)
    what = _flat(command.help or "")
    assert len(what.split()) >= 4, f"orsync {' '.join(path)}: no help text saying what it does"
    assert what.split(". ")[0] in shown
    for name, sub in _subcommands(command).items():
        assert name in shown and _flat(sub.get_short_help_str(80))[:30] in shown, name
    for param in command.params:
        if param.name == "help":
            continue
        helped = _flat(getattr(param, "help", None) or "")
        assert len(helped.split()) >= 2, f"orsync {' '.join(path)}: {param.name} has no help"
        assert helped in shown, (param.name, helped)


# -- exit 1 was undocumented: each of these paths now has its code and a line saying what to do --


@pytest.mark.parametrize(
    ("baseurl", "needles"),
    [
        (
            "https://api.openreview.net",
            ("API v1", 'openreview.baseurl = "https://api2.openreview.net"'),
        ),
        ("https://openreview.net", ("website, not its API", "https://api2.openreview.net")),
        ("api2.openreview.net", ("must start with https://",)),
    ],
)
def test_wrong_kind_of_baseurl_exits_2(
    tmp_path: Path, baseurl: str, needles: tuple[str, ...]
) -> None:
    config = write_config(tmp_path, None, baseurl=baseurl)
    one_line_error(run_cli("--config", str(config), "pull"), 2, "openreview.baseurl", *needles)


def test_api_v1_baseurl_stops_the_service_with_exit_2(tmp_path: Path) -> None:
    # Exit 2 is in RestartPreventExitStatus: systemd does not restart a config mistake forever.
    config = write_config(tmp_path, None, baseurl="https://api.openreview.net")
    result = run_cli(
        "--config", str(config), "--log-format", "json", "run", timeout=60, process=True
    )
    assert result.returncode == 2, result.stderr
    assert "api2.openreview.net" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_changes_since_too_far_back_exits_2(setup: Setup) -> None:
    one_line_error(setup.cli("changes", "--since", "99999999d"), 2, "--since", "shorter span")


def test_export_into_a_missing_folder_exits_2(setup: Setup) -> None:
    assert setup.cli("pull", "--no-push").returncode == 0
    target = setup.dir / "missing" / "papers.json"
    one_line_error(
        setup.cli("export", "--out", str(target)), 2, str(target), "existing, writable folder"
    )


# -- the suite's in-process CLI answers as the installed one does ---------------------------------


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("--help",), {"COLUMNS": "70"}),
        (("--version",), {}),
        (("pull", "--no-such-flag"), {}),
        (("--config", "/nonexistent/orsync.toml", "pull"), {}),
        (("--config", "/nonexistent/orsync.toml", "pull", "--json"), {}),
        (("status",), {"ORSYNC_CONFIG": "/nonexistent/orsync.toml"}),
    ],
)
def test_the_cli_in_process_answers_as_a_process_does(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str]
) -> None:
    """The tests call the CLI in their own process; a real ``python -m orsync`` must agree."""
    from orsync import secrets

    known = secrets.registered()
    secrets.add_secret("a-secret-of-the-test-process")
    try:
        before = (dict(os.environ), Path.cwd(), sys.stdout, sys.stderr, sys.argv)
        in_process = run_cli(*args, env=env, cwd=tmp_path)
        # What it changed for its "process" is put back.
        assert (dict(os.environ), Path.cwd(), sys.stdout, sys.stderr, sys.argv) == before
        assert secrets.mask_text("a-secret-of-the-test-process") == secrets.REDACTED
    finally:
        secrets.clear_secrets()
        for value in known:
            secrets.add_secret(value)
    process = run_cli(*args, env=env, cwd=tmp_path, process=True)
    assert (in_process.returncode, in_process.stdout, in_process.stderr) == (
        process.returncode,
        process.stdout,
        process.stderr,
    )


@pytest.mark.parametrize(
    "args",
    [("--version",), ("--config", "/nonexistent/orsync.toml", "status"), ("no-such-command",)],
)
def test_the_installed_command_answers_as_python_m_orsync(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """The ``orsync`` script pip installs (``orsync.__main__:main``, which loads the CLI
    without the cyclic collector) gives the exit code and output of ``python -m orsync``."""
    script = Path(sys.executable).with_name("orsync")
    assert script.is_file(), f"no installed orsync beside {sys.executable}: pip install -e ."
    installed = subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_environ(None),
        cwd=tmp_path,
    )
    module = run_cli(*args, cwd=tmp_path, process=True)
    assert installed.returncode == module.returncode != 1
    assert (installed.stdout, installed.stderr) == (module.stdout, module.stderr)
