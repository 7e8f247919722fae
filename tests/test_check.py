"""`orsync check` changes nothing and agrees with `pull`; `orsync venues` finds the venue id;
readers open the store without migrating or altering it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import orsync
from conftest import ROOT, Setup, run_cli, write_config
from helpers import one_line_error
from orsync.check import CHECK_NAMES
from orsync.emulator import Emulator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


EXAMPLE_USERNAME = 'username = "chair@example.org"'


def _example_config(folder: Path, baseurl: str, username: str | None = None) -> Path:
    """A fresh copy of config.example.toml, as a chair makes one: aimed at ``baseurl``, with
    their account in place of the placeholder (the password comes from ``EXAMPLE_ENV``)."""
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    assert 'baseurl = "https://api2.openreview.net"' in text
    text = text.replace('baseurl = "https://api2.openreview.net"', f'baseurl = "{baseurl}"')
    # The example leads chairs to log in: the account line is set, as a placeholder.
    assert EXAMPLE_USERNAME in text
    if username is not None:
        text = text.replace(EXAMPLE_USERNAME, f'username = "{username}"')
    path = folder / "orsync.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _example_env(emu: Emulator | None) -> dict[str, str]:
    return {"ORSYNC_OPENREVIEW_PASSWORD": emu.chair_password if emu else "any-password"}


def _check_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    data = json.loads(result.stdout)
    assert set(data) == {"ok", "exit_code", "checks"}
    assert data["exit_code"] == result.returncode
    assert data["ok"] is (result.returncode == 0)
    for c in data["checks"]:
        assert set(c) == {"name", "ok", "detail", "exit_code"}
        assert (c["exit_code"] == 0) is c["ok"]
    return data


def test_check_accepts_a_fresh_example_config_and_creates_nothing(
    tmp_path: Path, emulator: Emulator
) -> None:
    # Untouched but for the URL, the placeholder account has no password: check says where.
    _example_config(tmp_path, emulator.url)
    placeholder = run_cli("check", cwd=tmp_path)
    assert placeholder.returncode == 2, placeholder.stdout
    assert "openreview.username is set but no password was found" in placeholder.stdout
    _example_config(tmp_path, emulator.url, emulator.chair_username)
    env = _example_env(emulator)
    result = run_cli("check", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[1].rstrip(":") for line in lines] == list(CHECK_NAMES)
    assert "FAIL" not in result.stdout
    assert "orsync.db does not exist yet; `orsync pull` will create it" in result.stdout
    assert "site/_data does not exist yet" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orsync.toml"]
    # What check promised, pull does: the store and site/_data (with its parent) appear.
    pulled = run_cli("pull", cwd=tmp_path, env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "orsync.db").is_file() and (tmp_path / "site" / "_data").is_dir()
    again = run_cli("check", cwd=tmp_path, env=env)
    assert again.returncode == 0 and "current schema" in again.stdout


def test_check_unreachable_server_still_reports_every_line(tmp_path: Path) -> None:
    _example_config(tmp_path, f"http://127.0.0.1:{_free_port()}")
    env = _example_env(None)
    result = run_cli("check", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 3, result.stderr
    data = _check_json(result)
    checks = {c["name"]: c for c in data["checks"]}
    assert list(checks) == list(CHECK_NAMES)
    assert not checks["login"]["ok"] and "kept failing" in checks["login"]["detail"]
    assert not checks["venue"]["ok"] and "not checked" in checks["venue"]["detail"]
    assert checks["store"]["ok"] and checks["website"]["ok"] and checks["config"]["ok"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orsync.toml"]
    text = run_cli("check", cwd=tmp_path, env=env)
    assert text.returncode == 3 and len(text.stdout.splitlines()) == len(CHECK_NAMES)


def test_check_json_has_one_shape_on_success_and_failure(setup: Setup) -> None:
    ok = _check_json(setup.cli("check", "--json"))
    assert ok["ok"] and ok["exit_code"] == 0
    assert [c["name"] for c in ok["checks"]] == list(CHECK_NAMES)
    bad = write_config(setup.dir / "bad", setup.emu, password="wrong")
    failed = _check_json(run_cli("--config", str(bad), "check", "--json"))
    assert not failed["ok"] and failed["exit_code"] == 4
    assert [c["name"] for c in failed["checks"]] == list(CHECK_NAMES)
    broken = setup.dir / "broken.toml"
    broken.write_text("[openreview\n")
    result = run_cli("--config", str(broken), "check", "--json")
    assert result.returncode == 2
    data = _check_json(result)
    assert [c["name"] for c in data["checks"]] == ["config"]


def test_check_store_problems_match_pull(setup: Setup) -> None:
    # A folder that does not exist: pull refuses it, so check does.
    config = setup.config.read_text()
    missing = setup.config.with_name("missing.toml")
    missing.write_text(config.replace(str(setup.db), str(setup.dir / "nope" / "x.db")))
    result = run_cli("--config", str(missing), "check", "--json")
    assert result.returncode == 5
    store = {c["name"]: c for c in _check_json(result)["checks"]}["store"]
    assert "does not exist; create it first" in store["detail"]
    # Another program's database: refused, and left alone.
    con = sqlite3.connect(setup.db)
    con.execute("CREATE TABLE papers (id INTEGER PRIMARY KEY, title TEXT)")
    con.commit()
    con.close()
    before = setup.db.read_bytes()
    result = setup.cli("check")
    assert result.returncode == 5 and "another program" in result.stdout
    assert setup.db.read_bytes() == before


def test_check_names_a_container_group(tmp_path: Path, emulator: Emulator) -> None:
    config = write_config(tmp_path, emulator, venue_id="ICLR.cc/2024/Workshop")
    result = run_cli("--config", str(config), "check")
    assert result.returncode == 4
    assert (
        "group of venues" in result.stdout
        and "orsync venues ICLR.cc/2024/Workshop/" in result.stdout
    )


def test_venues_lists_the_groups_under_a_prefix(tmp_path: Path, emulator: Emulator) -> None:
    config = write_config(tmp_path, emulator, venue_id="ICLR.cc/2024/Workshop/Unknown")
    listed = run_cli("--config", str(config), "venues", "ICLR.cc/2024/Workshop/")
    assert listed.returncode == 0, listed.stderr
    ids = [line.split()[0] for line in listed.stdout.splitlines()]
    assert emulator.venue_id in ids and "ICLR.cc/2024/Workshop/DMLR" in ids
    # Default prefix: beside the configured venue id; JSON for scripts.
    data = json.loads(run_cli("--config", str(config), "venues", "--json").stdout)
    assert data["prefix"] == "ICLR.cc/2024/Workshop/"
    assert {"id": emulator.venue_id, "title": "ICLR 2024 Workshop BGPT", "venue": True} in data[
        "groups"
    ]
    # A partial last segment filters; the container one level up is a group, not a venue.
    partial = run_cli("--config", str(config), "venues", "ICLR.cc/2024/Workshop/B")
    assert [line.split()[0] for line in partial.stdout.splitlines()] == [emulator.venue_id]
    up = json.loads(run_cli("--config", str(config), "venues", "ICLR.cc/2024/", "--json").stdout)
    assert up["groups"] == [{"id": "ICLR.cc/2024/Workshop", "title": None, "venue": False}]
    none = run_cli("--config", str(config), "venues", "NoSuch.cc/")
    assert none.returncode == 0 and "no groups under NoSuch.cc/" in none.stdout


def test_unknown_venue_suggests_close_matches(tmp_path: Path, emulator: Emulator) -> None:
    config = write_config(tmp_path, emulator, venue_id="ICLR.cc/2024/Workshop/BGTP")
    result = run_cli("--config", str(config), "pull")
    one_line_error(
        result,
        4,
        "did you mean ICLR.cc/2024/Workshop/BGPT?",
        "orsync venues ICLR.cc/2024/Workshop/",
    )
    checked = run_cli("--config", str(config), "check")
    assert checked.returncode == 4
    assert "FAIL venue: venue ICLR.cc/2024/Workshop/BGTP not found" in checked.stdout
    assert "did you mean ICLR.cc/2024/Workshop/BGPT?" in checked.stdout


# -- readers never migrate, never alter ---------------------------------------------------------

READERS = (("status",), ("changes",), ("export",), ("report", "--json"), ("posters", "show"))


def _read(setup: Setup, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    extra = ("--html", str(setup.dir / "report.html")) if args[0] == "report" else ()
    return setup.cli(*args, *extra)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_readers_refuse_an_empty_store_without_setting_it_up(setup: Setup) -> None:
    setup.db.touch()
    for args in READERS:
        one_line_error(_read(setup, args), 5, "run `orsync pull` first")
    assert setup.db.stat().st_size == 0


def test_another_programs_database_is_refused_by_readers_and_writers(setup: Setup) -> None:
    con = sqlite3.connect(setup.db)
    con.execute("CREATE TABLE note (id TEXT PRIMARY KEY)")  # a name orsync uses, too
    con.execute("INSERT INTO note VALUES ('x')")
    con.commit()
    con.close()
    before = _digest(setup.db)
    for args in (*READERS, ("pull",), ("push",)):
        one_line_error(_read(setup, args), 5, "another program", "store.url")
    assert _digest(setup.db) == before
    assert not Path(f"{setup.db}-wal").exists()
    con = sqlite3.connect(setup.db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    con.close()


def test_readers_leave_a_pulled_store_untouched(setup: Setup) -> None:
    assert setup.cli("pull", "--no-push").returncode == 0
    before = _digest(setup.db)
    for args in READERS:
        result = _read(setup, args)
        assert result.returncode == 0, (args, result.stderr)
    assert _digest(setup.db) == before


def test_a_reader_refuses_an_older_schema_instead_of_migrating(tmp_path: Path) -> None:
    """A store an older orsync wrote (migrated only to the previous revision) is left alone."""
    from alembic import command
    from sqlalchemy import create_engine

    from orsync import store as store_module
    from orsync.errors import StoreError

    db = tmp_path / "orsync.db"
    db.touch(mode=0o600)
    url = f"sqlite:///{db}"
    older = store_module.revisions()[-2]
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(store_module._alembic_config(conn), older)
    engine.dispose()
    before = _digest(db)
    with pytest.raises(
        StoreError, match=rf"older schema \({older}\); run `orsync pull` to migrate it"
    ):
        store_module.open_reader(url)
    assert _digest(db) == before
    state, detail = store_module.probe_schema(url)
    assert state == "behind" and "next `orsync pull` migrates it" in detail


@pytest.fixture
def readonly_copy(setup: Setup) -> Iterator[tuple[Path, Path]]:
    """A pulled store copied into a folder, both made read-only; a config pointing at it.

    When the tests run as root, the readers run without the capabilities that let root ignore
    file modes."""
    assert setup.cli("pull", "--no-push").returncode == 0
    base = Path(tempfile.mkdtemp(prefix="orsync-ro-"))
    base.chmod(0o755)
    folder = base / "ro"
    folder.mkdir()
    shutil.copy(setup.db, folder / "orsync.db")
    config = base / "orsync.toml"
    config.write_text(setup.config.read_text().replace(str(setup.db), str(folder / "orsync.db")))
    config.chmod(0o644)
    shutil.copy(setup.dir / "pw", base / "pw")
    (base / "pw").chmod(0o600)
    (folder / "orsync.db").chmod(0o444)
    folder.chmod(0o555)
    try:
        yield config, folder
    finally:
        folder.chmod(0o755)
        shutil.rmtree(base)


def _as_unprivileged(*args: str) -> subprocess.CompletedProcess[str]:
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: file modes cannot be tested")
        # Root without the capabilities that bypass file modes: the modes then bind it as they
        # bind any owner, and it can still read the checkout and its virtualenv wherever the
        # clone lies (another user could not read a clone in a private temporary folder).
        prefix = [
            setpriv,
            "--bounding-set=-dac_override,-dac_read_search,-fowner",
            "--inh-caps=-all",
            "--",
        ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORSYNC_")}
    env["PYTHONPATH"] = str(Path(orsync.__file__).resolve().parents[1])
    env["HOME"] = "/tmp"
    return subprocess.run(
        [*prefix, sys.executable, "-m", "orsync", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd="/",
    )


def test_a_read_only_store_still_serves_status_and_export(readonly_copy: tuple[Path, Path]) -> None:
    config, folder = readonly_copy
    before = _digest(folder / "orsync.db")
    status = _as_unprivileged("--config", str(config), "status", "--json")
    assert status.returncode == 0, status.stderr
    assert sum(json.loads(status.stdout)["submissions"].values()) > 0
    export = _as_unprivileged(
        "--config", str(config), "export", "--what", "submissions", "--format", "csv"
    )
    assert export.returncode == 0, export.stderr
    assert len(export.stdout.splitlines()) > 10
    assert sorted(p.name for p in folder.iterdir()) == ["orsync.db"]
    assert _digest(folder / "orsync.db") == before
    # The writer says it cannot write, in one line with the documented code.
    pull = _as_unprivileged("--config", str(config), "pull", "--no-push")
    one_line_error(pull, 5)
