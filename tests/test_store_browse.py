"""Browsing the store with datasette (docs/store.md): the shipped metadata, used as the docs say,
against a pulled store, over HTTP; and the views' declared column types."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from conftest import Setup, write_config
from orsync.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
METADATA = ROOT / "deploy" / "datasette-metadata.yml"
VIEWS = {"accepted_papers", "submissions_overview"}
LISTS = ("authors", "authorids", "keywords")


@pytest.fixture
def pulled(tmp_path: Path, emulator: Emulator) -> Setup:
    s = Setup(emulator, tmp_path, write_config(tmp_path, emulator), tmp_path / "orsync.db")
    result = s.cli("pull")
    assert result.returncode == 0, result.stderr
    return s


def objects(db: Path, kind: str) -> set[str]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT name FROM sqlite_master WHERE type = ?", (kind,)).fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - a local http URL
            return int(r.status), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@contextlib.contextmanager
def serve(*store: str) -> Iterator[str]:
    """datasette serving ``store`` with the shipped metadata as docs/store.md says, on 127.0.0.1."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "datasette", "serve", *store,
            "--metadata", str(METADATA), "--host", "127.0.0.1", "--port", str(port),
            "--setting", "allow_download", "off",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"{base}/-/versions.json")
                break
            except OSError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "datasette did not start"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(params=["live", "snapshot"])
def datasette(pulled: Setup, request: pytest.FixtureRequest) -> Iterator[tuple[str, Setup]]:
    """The live store (datasette reads it with ?mode=ro) or a snapshot of it (-i, immutable)."""
    pytest.importorskip("datasette")
    store = ["-i", str(pulled.db)] if request.param == "snapshot" else [str(pulled.db)]
    with serve(*store) as base:
        yield base, pulled


def test_the_metadata_opens_exactly_the_views_and_closes_the_rest(pulled: Setup) -> None:
    meta = yaml.safe_load(METADATA.read_text())
    db = meta["databases"][pulled.db.stem]
    # Closed unless opened below.
    assert meta["allow"] is False and meta["allow_sql"] is False and db["allow"] is False
    opened = {name for name, t in db["tables"].items() if t.get("allow") is True}
    assert opened == VIEWS == objects(pulled.db, "view")
    assert not opened & objects(pulled.db, "table")


def test_datasette_shows_the_two_views_with_lists_and_no_table(
    datasette: tuple[str, Setup],
) -> None:
    base, s = datasette
    lists = "&".join(f"_json={c}" for c in LISTS)
    status, body = get(f"{base}/orsync/accepted_papers.json?_shape=objects&_size=max&{lists}")
    assert status == 200, body[:500]
    rows = json.loads(body)["rows"]
    assert rows and all(isinstance(r[c], list) for r in rows for c in LISTS)
    assert any(r["authors"] for r in rows)
    status, body = get(f"{base}/orsync/submissions_overview.json?_shape=objects")
    assert status == 200 and json.loads(body)["rows"]
    for table in sorted(objects(s.db, "table")):  # note holds the reviews
        assert get(f"{base}/orsync/{table}.json")[0] == 403, table
    assert get(f"{base}/orsync/note/1.json")[0] == 403
    # No SQL of the reader's own, no ?_where= subquery, no download of the file.
    assert get(f"{base}/orsync.json?sql=select+*+from+note")[0] == 403
    where = urllib.parse.quote("forum_id in (select forum from note where kind='review')")
    assert get(f"{base}/orsync/accepted_papers.json?_where={where}")[0] == 403
    assert get(f"{base}/orsync.db")[0] in (403, 404)
    # The pages that would list the tables are closed too.
    assert get(f"{base}/orsync")[0] == 403 and get(f"{base}/.json")[0] == 403


def test_a_store_served_under_another_name_opens_nothing(pulled: Setup) -> None:
    pytest.importorskip("datasette")
    other = pulled.dir / "bgpt.db"
    shutil.copyfile(pulled.db, other)
    with serve("-i", str(other)) as base:
        for name in sorted(VIEWS | objects(other, "table")):
            assert get(f"{base}/bgpt/{name}.json")[0] == 403, name
