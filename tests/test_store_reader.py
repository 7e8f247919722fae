"""Readers open the store without creating, migrating or altering it: an empty file, another
program's database, an older schema and a read-only copy are each met with one clear line."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import orsync
from conftest import Setup, run_cli, write_config
from helpers import one_line_error
from orsync.emulator import Emulator

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


def test_reading_commands_never_create_a_store(setup: Setup) -> None:
    for args in (("status",), ("changes",), ("export",), ("posters", "show")):
        one_line_error(setup.cli(*args), 5, "run `orsync pull` first")
    assert not setup.db.exists()


# -- a store mirrors one venue ------------------------------------------------------------------

# Every command that opens the store for a config, with what it needs beyond the config.
EVERY_COMMAND = (
    ("pull",),
    ("pull", "--full"),
    ("push",),
    ("status",),
    ("changes",),
    ("export",),
    ("report",),
    ("posters", "show"),
    ("posters", "assign"),
    ("posters", "pin", "1", "A"),
    ("posters", "unpin", "1"),
    ("program",),
    ("talks", "suggest"),
    ("check",),
)


def _other_venue_config(folder: Path, emu: Emulator, db: Path, output_dir: Path) -> Path:
    """A config for ``emu``'s venue that keeps another venue's store and website."""
    extra = "\n".join(
        [
            "[website]",
            f'output_dir = "{output_dir}"',
            "",
            "[posters]",
            "boards_per_session = 100",
            "[[posters.sessions]]",
            'id = "A"',
            'name = "Morning"',
            'start = "2024-05-11T10:00:00+02:00"',
            'end = "2024-05-11T11:00:00+02:00"',
        ]
    )
    path = write_config(folder, emu, extra=extra)
    text = path.read_text().replace(f"sqlite:///{folder / 'orsync.db'}", f"sqlite:///{db}")
    path.write_text(text)
    return path


def test_every_command_refuses_a_store_of_another_venue(setup: Setup, tmp_path: Path) -> None:
    bgpt = setup.emu.venue_id
    site = tmp_path / "site"
    mine = _other_venue_config(setup.dir / "mine", setup.emu, setup.db, site)
    assert run_cli("--config", str(mine), "pull").returncode == 0
    with sqlite3.connect(setup.db) as conn:
        recorded = conn.execute("SELECT value FROM sync_state WHERE key = 'venue_id'").fetchone()
    assert recorded == (bgpt,)
    published = {p.name: _digest(p) for p in site.iterdir()}
    before = _digest(setup.db)

    with Emulator(dataset="iclr", seed=3, size=40) as other:
        config = _other_venue_config(tmp_path / "other", other, setup.db, site)
        for args in EVERY_COMMAND:
            extra = ("--html", str(tmp_path / "r.html")) if args[0] == "report" else ()
            result = run_cli("--config", str(config), *args, *extra)
            if args[0] == "check":
                assert result.returncode == 5, result.stdout
                assert f"mirrors venue {bgpt}, not openreview.venue_id = {other.venue_id}" in (
                    result.stdout
                )
                continue
            one_line_error(
                result,
                5,
                f"mirrors venue {bgpt}, not openreview.venue_id = {other.venue_id}",
                "point store.url at another store",
            )
        # The service refuses to start (its log is JSON lines, not one error line).
        service = run_cli("--config", str(config), "run", process=True, timeout=60)
        assert service.returncode == 5, service.stderr
        assert f"mirrors venue {bgpt}" in service.stdout + service.stderr
        # The refusal came before OpenReview was asked for a note.
        assert not [r for r in other.requests if r.path.startswith("/notes")]
    assert _digest(setup.db) == before
    assert {p.name: _digest(p) for p in site.iterdir()} == published


def test_a_store_made_before_the_binding_is_bound_by_its_submissions(setup: Setup) -> None:
    assert setup.cli("pull").returncode == 0
    with sqlite3.connect(setup.db) as conn:
        conn.execute("DELETE FROM sync_state WHERE key = 'venue_id'")
    other = write_config(setup.dir / "other", setup.emu, venue_id="ICLR.cc/2025/Workshop/BGPT")
    text = other.read_text().replace(
        f"sqlite:///{setup.dir / 'other' / 'orsync.db'}", f"sqlite:///{setup.db}"
    )
    other.write_text(text)
    one_line_error(run_cli("--config", str(other), "status"), 5, "mirrors venue ICLR.cc/2024")
    # The right venue's next writing command records the binding.
    assert setup.cli("push").returncode == 0
    with sqlite3.connect(setup.db) as conn:
        recorded = conn.execute("SELECT value FROM sync_state WHERE key = 'venue_id'").fetchone()
    assert recorded == (setup.emu.venue_id,)


def test_an_empty_store_is_bound_only_by_a_good_cycle(tmp_path: Path, setup: Setup) -> None:
    write_config(setup.dir, setup.emu, venue_id="ICLR.cc/2024/Workshop/BGTP")
    assert setup.cli("pull").returncode == 4  # no such venue: nothing is bound
    write_config(setup.dir, setup.emu)
    assert setup.cli("pull").returncode == 0


def test_commands_open_the_store_only_through_the_venue_check() -> None:
    # open_for / read_for are the one door: a module that opened a store by its URL would skip
    # the refusal of another venue's store.
    src = Path(orsync.__file__).parent
    direct = [
        f"{path.relative_to(src)}:{n}"
        for path in src.rglob("*.py")
        if path.parent.name != "store" and "emulator" not in path.parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "open_store(" in line or "open_reader(" in line
        if not line.lstrip().startswith("#")
    ]
    assert direct == []
