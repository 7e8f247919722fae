"""The public read models (``orsync.models``) over a store pulled from the emulator."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, create_engine, inspect
from sqlmodel import Session, SQLModel, select

from conftest import Setup, write_config
from orsync.emulator import Emulator
from orsync.models import AcceptedPaper, SubmissionOverview
from orsync.store.tables import metadata

LISTS = ("authors", "authorids", "keywords")


@pytest.fixture
def pulled(tmp_path: Path, emulator: Emulator) -> Setup:
    extra = "\n".join(
        [
            "[website]",
            'output_dir = "site"',
            "[[posters.sessions]]",
            'id = "P1"',
            'name = "Session P1"',
            'start = "2024-05-11T10:10:00+02:00"',
            'end = "2024-05-11T11:00:00+02:00"',
            "[[posters.sessions]]",
            'id = "P2"',
            'name = "Session P2"',
            'start = "2024-05-11T12:00:00+02:00"',
            'end = "2024-05-11T14:00:00+02:00"',
        ]
    )
    s = Setup(
        emulator, tmp_path, write_config(tmp_path, emulator, extra=extra), tmp_path / "orsync.db"
    )
    result = s.cli("pull")
    assert result.returncode == 0, result.stderr
    return s


def view_rows(db: Path, view: str) -> dict[str, dict[str, object]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return {r["forum_id"]: dict(r) for r in con.execute(f"SELECT * FROM {view}")}  # noqa: S608
    finally:
        con.close()


def test_the_models_read_every_column_of_the_views(pulled: Setup) -> None:
    engine = create_engine(f"sqlite:///{pulled.db}")
    raw = view_rows(pulled.db, "accepted_papers")
    with Session(engine) as s:
        papers = s.exec(select(AcceptedPaper)).all()
        overview = s.exec(select(SubmissionOverview)).all()
    assert len(papers) == len(raw) > 0
    for p in papers:
        row = raw[p.forum_id]
        assert set(row) == set(AcceptedPaper.model_fields)  # column for column
        for key, value in row.items():
            got = getattr(p, key)
            if key in LISTS:
                assert got == (json.loads(str(value)) if value else [])
                assert isinstance(got, list)
            else:
                assert got == value, key
    raw_overview = view_rows(pulled.db, "submissions_overview")
    assert {o.forum_id for o in overview} == set(raw_overview)
    for o in overview:
        row = raw_overview[o.forum_id]
        assert set(row) == set(SubmissionOverview.model_fields)
        assert o.deleted is bool(row["deleted"]) and o.review_count == row["review_count"]
        assert o.rating_mean == row["rating_mean"]
    engine.dispose()


def test_the_views_are_never_created_as_tables(tmp_path: Path) -> None:
    assert "accepted_papers" not in SQLModel.metadata.tables
    assert "accepted_papers" not in metadata.tables
    assert "submissions_overview" not in metadata.tables
    engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    SQLModel.metadata.create_all(engine)
    assert inspect(engine).get_table_names() == []
    engine.dispose()


def test_the_views_declare_their_list_columns_json(pulled: Setup) -> None:
    con = sqlite3.connect(f"file:{pulled.db}?mode=ro", uri=True)
    try:
        declared = {r[1]: r[2] for r in con.execute("PRAGMA table_xinfo(accepted_papers)")}
    finally:
        con.close()
    assert {c: declared[c] for c in LISTS} == dict.fromkeys(LISTS, "JSON")
    assert declared["number"] == "INTEGER" and declared["board"] == "INTEGER"
    # A tool that reflects the view (here SQLAlchemy) reads the lists as lists, with no help.
    engine = create_engine(f"sqlite:///{pulled.db}")
    view = Table("accepted_papers", MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        rows = conn.execute(view.select()).mappings().all()
    engine.dispose()
    raw = view_rows(pulled.db, "accepted_papers")
    assert rows and all(isinstance(r[c], list | None) for r in rows for c in LISTS)
    assert any(r["authors"] for r in rows)
    for r in rows:
        for c in LISTS:
            assert r[c] == (
                json.loads(str(raw[r["forum_id"]][c])) if raw[r["forum_id"]][c] else None
            )


# A website build of someone else's: it knows orsync only through its public read model.
BUILD = """
import json, sys
from sqlmodel import Session, create_engine, select
from orsync.models import AcceptedPaper

engine = create_engine(sys.argv[1])
with Session(engine) as s:
    papers = s.exec(select(AcceptedPaper).order_by(AcceptedPaper.number)).all()
    out = [
        {
            "id": p.forum_id, "number": p.number, "title": p.title, "authors": p.authors,
            "keywords": p.keywords, "abstract": p.abstract, "board": p.board,
            "session": p.session_id,
        }
        for p in papers
    ]
json.dump(out, sys.stdout)
"""


def test_an_outside_build_script_sees_what_the_push_published(pulled: Setup) -> None:
    script = pulled.dir / "build.py"
    script.write_text(textwrap.dedent(BUILD), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script), f"sqlite:///{pulled.db}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=pulled.dir,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    built = json.loads(result.stdout)
    published = json.loads((pulled.dir / "site" / "papers.json").read_text(encoding="utf-8"))
    assert len(built) == len(published) > 0
    for mine, theirs in zip(built, sorted(published, key=lambda p: p["number"]), strict=True):
        session = theirs["session"]["id"] if theirs["session"] else None
        expected = {k: theirs[k] for k in ("id", "number", "title", "authors", "keywords")}
        assert {k: mine[k] for k in expected} == expected
        assert (mine["abstract"], mine["board"], mine["session"]) == (
            theirs["abstract"],
            theirs["board"],
            session,
        )
