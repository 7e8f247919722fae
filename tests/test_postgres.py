"""The same mirror on PostgreSQL: a real server started by the test, the CLI against it.

Skipped where the PostgreSQL server binaries are not on PATH.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import Session
from sqlmodel import select as sqlmodel_select

from conftest import run_cli, write_config
from helpers import schema_differences
from orsync.emulator import Emulator
from orsync.models import AcceptedPaper

pytestmark = [
    pytest.mark.xdist_group("postgres"),
    pytest.mark.skipif(
        shutil.which("initdb") is None, reason="PostgreSQL server binaries not on PATH"
    ),
]


def _pg_config(folder: Path, emu: Emulator, url: str) -> Path:
    config = write_config(folder, emu)
    lines = config.read_text().splitlines()
    config.write_text(
        "\n".join(f'url = "{url}"' if line.startswith("url = ") else line for line in lines)
    )
    return config


def _notes(url: str) -> dict[str, dict[str, Any]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM note WHERE NOT deleted")).mappings().all()
    engine.dispose()
    return {r["id"]: dict(r) for r in rows}


def test_pull_into_postgresql_equals_truth(
    tmp_path: Path, emulator: Emulator, postgres_url: str
) -> None:
    config = _pg_config(tmp_path, emulator, postgres_url)
    first = run_cli("--config", str(config), "pull", "--json")
    assert first.returncode == 0, first.stderr
    notes = _notes(postgres_url)
    truth = emulator.truth("chair")
    subs = {i: n for i, n in notes.items() if n["kind"] == "submission"}
    assert set(subs) == set(truth["submissions"])
    for forum, want in truth["submissions"].items():
        assert (subs[forum]["status"], subs[forum]["decision"]) == (
            want["status"],
            want["decision"],
        )
    replies = {i: n for i, n in notes.items() if n["kind"] != "submission"}
    assert set(replies) == set(truth["replies"])
    assert all(replies[i]["rating"] == r["rating"] for i, r in truth["replies"].items())
    # Epoch milliseconds need BIGINT on PostgreSQL.
    assert all(n["tmdate"] > 2**31 for n in notes.values())

    emulator.flip_decision(
        next(f for f, s in truth["submissions"].items() if s["status"] == "rejected")
    )
    # Hostile text PostgreSQL would refuse as is (NUL), and odd unicode.
    emulator.edit_content(
        next(iter(truth["submissions"])), title="Nul\u0000 and \u2028 and \U0001f600"
    )
    second = run_cli("--config", str(config), "pull", "--json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["changes"] > 0
    flipped = _notes(postgres_url)
    for forum, want in emulator.truth("chair")["submissions"].items():
        assert flipped[forum]["status"] == want["status"]
    assert flipped[next(iter(truth["submissions"]))]["title"] == "Nul and \u2028 and \U0001f600"

    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        accepted = conn.execute(text("SELECT count(*) FROM accepted_papers")).scalar()
        overview = conn.execute(text("SELECT count(*) FROM submissions_overview")).scalar()
        # The list columns are jsonb: a client reads lists, and so do orsync's read models.
        types = dict(
            conn.execute(
                text(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = 'accepted_papers'"
                )
            ).all()
        )
        lists = conn.execute(text("SELECT authors, keywords FROM accepted_papers")).all()
    with Session(engine) as session:
        papers = session.exec(sqlmodel_select(AcceptedPaper)).all()
    engine.dispose()
    assert {types[c] for c in ("authors", "authorids", "keywords")} == {"jsonb"}
    assert lists and all(isinstance(a, list) for a, _ in lists)
    assert papers and all(isinstance(p.authors, list) for p in papers)
    assert any(p.authors for p in papers)
    live = emulator.truth("chair")["submissions"].values()
    assert accepted == sum(1 for s in live if s["status"] == "accepted")
    assert overview == len(live)
    status = run_cli("--config", str(config), "status", "--json")
    assert status.returncode == 0 and "orsync@" in json.loads(status.stdout)["store"]


def test_writer_lock_holds_across_machines(
    tmp_path: Path, emulator: Emulator, postgres_url: str
) -> None:
    """Another machine's writer holds the database's advisory lock: no local file can show it."""
    from orsync.lock import ADVISORY_KEY

    config = _pg_config(tmp_path, emulator, postgres_url)
    other = create_engine(postgres_url)
    with other.connect() as conn:
        conn.execute(text("SET application_name = 'orsync run on another-host'"))
        assert conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar()
        conn.commit()
        blocked = run_cli("--config", str(config), "pull", "--no-wait")
        assert blocked.returncode == 75, blocked.stderr
        assert "another-host" in blocked.stderr
        status = json.loads(run_cli("--config", str(config), "status", "--json").stdout)
        assert status["lock_holder"]["application"] == "orsync run on another-host"
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
        conn.commit()
    other.dispose()
    freed = run_cli("--config", str(config), "pull", "--no-wait")
    assert freed.returncode == 0, freed.stderr


def test_tables_match_the_migrated_schema_on_postgresql(postgres_url: str) -> None:
    """tables.py against what the migrations create on PostgreSQL (times WITH TIME ZONE, BIGINT
    epoch milliseconds, boolean server defaults): autogenerate finds nothing to change."""
    from orsync.store import open_store

    store = open_store(postgres_url)
    try:
        with store.connect() as conn:
            assert schema_differences(conn) == []
    finally:
        store.dispose()
