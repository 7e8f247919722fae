"""The store module: its tables match what the migrations create, the migrations stand alone,
the read queries load light, and list-JSON columns decode one way."""

from __future__ import annotations

import ast
import contextlib
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from helpers import schema_differences
from orsync.batches import filled, insert_batches
from orsync.mirror import PUBLIC_FLAGS
from orsync.store import open_store, revisions
from orsync.store.bulk import column_order, left_out_values, prepared_insert
from orsync.store.queries import decode_lists, json_list, recent_cycles
from orsync.store.tables import CHANGE, CYCLE, NOTE, metadata

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "orsync"


def test_tables_match_the_migrated_schema(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'orsync.db'}")
    try:
        with store.connect() as conn:
            assert schema_differences(conn) == []
    finally:
        store.dispose()


def _sqlite_schema(path: Path) -> dict[tuple[str, str], str]:
    """Each object of a SQLite file and its SQL, whitespace and the default ``VIRTUAL`` of a
    generated column aside (an ``ALTER TABLE ... ADD COLUMN`` keeps the text it was given)."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        rows = con.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    return {
        (kind, name): " ".join((sql or "").replace("\n    VIRTUAL", "").split())
        .replace("( ", "(")
        .replace(" )", ")")
        for kind, name, sql in rows
    }


def test_a_new_store_is_the_schema_the_migrations_make(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    from orsync.store import _alembic_config

    created = tmp_path / "created.db"
    open_store(f"sqlite:///{created}").dispose()
    migrated = tmp_path / "migrated.db"
    engine = create_engine(f"sqlite:///{migrated}")
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "head")
    engine.dispose()
    assert _sqlite_schema(created) == _sqlite_schema(migrated)
    with contextlib.closing(sqlite3.connect(created)) as con:
        assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (revisions()[-1],)
        ]
    # Made without alembic: a first pull pays neither its import nor six revisions.
    assert "alembic" not in _python(
        "import sys; from orsync.store import open_store; "
        f"open_store('sqlite:///{tmp_path / 'third.db'}').dispose(); "
        "print(sorted(m for m in sys.modules if m.startswith('alembic')))"
    )


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip()


def test_migrations_never_import_the_tables_or_the_views(tmp_path: Path) -> None:
    # Each revision freezes the SQL it runs: a later edit of tables.py or views.py must not
    # change what an old revision creates.
    # (A new SQLite store is made from tables.py and views.py, not by the migrations: they
    # are run here by alembic itself.)
    url = f"sqlite:///{tmp_path / 'orsync.db'}"
    loaded = _python(
        "import sys\n"
        "from alembic import command\n"
        "from sqlalchemy import create_engine\n"
        "from orsync.store import _alembic_config\n"
        f"engine = create_engine({url!r})\n"
        "with engine.begin() as conn:\n"
        "    command.upgrade(_alembic_config(conn), 'head')\n"
        "print(sorted(m for m in ('orsync.store.tables', 'orsync.store.views') if m in sys.modules))"
    )
    assert loaded == "[]"
    assert (tmp_path / "orsync.db").stat().st_size > 0


def test_the_read_queries_load_without_alembic_openreview_or_the_solver() -> None:
    loaded = _python(
        "import sys\n"
        "import orsync.store.queries\n"
        "print(sorted(m for m in ('alembic', 'openreview', 'ortools') if m in sys.modules))"
    )
    assert loaded == "[]"


def _table_declarations(path: Path) -> list[int]:
    """Lines of ``path`` that declare tables: SQLAlchemy's ``Table(``/``MetaData(`` (imported by
    name or called through the module), a declarative base, or a SQLModel ``table=True`` class."""
    declaring = {"Table", "MetaData", "declarative_base", "DeclarativeBase"}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()  # what the module calls these by
    modules: set[str] = set()  # what the module calls sqlalchemy and its submodules by
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            names |= {a.asname or a.name for a in node.names if a.name in declaring}
        elif isinstance(node, ast.Import):
            modules |= {
                a.asname or a.name for a in node.names if a.name.split(".")[0] == "sqlalchemy"
            }
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Name) and f.id in names) or (
                isinstance(f, ast.Attribute)
                and f.attr in declaring
                and isinstance(f.value, ast.Name)
                and f.value.id in modules
            ):
                lines.append(node.lineno)
        elif isinstance(node, ast.ClassDef):
            table_kw = any(
                k.arg == "table" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in node.keywords
            )
            bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
            if table_kw or bases & names:
                lines.append(node.lineno)
    return sorted(lines)


def test_tables_are_declared_only_in_the_store_module() -> None:
    declared = {
        str(path.relative_to(SRC)): lines
        for path in sorted(SRC.rglob("*.py"))
        if (lines := _table_declarations(path))
    }
    outside = {p: lines for p, lines in declared.items() if not p.startswith("store/")}
    assert outside == {}
    # The search finds every declaration there is: one metadata and each of its tables.
    assert len(declared["store/tables.py"]) == 1 + len(metadata.tables) >= 9


def test_the_declaration_search_sees_each_spelling(tmp_path: Path) -> None:
    """So that finding nothing outside the store means there is nothing to find."""
    module = tmp_path / "m.py"
    module.write_text(
        "import sqlalchemy as sa\n"
        "from sqlalchemy import MetaData as M, Table\n"
        "from sqlmodel import SQLModel\n"
        "from rich.table import Table as Grid\n"
        "meta = M()\n"
        "t = Table('t', meta)\n"
        "u = sa.Table('u', sa.MetaData())\n"
        "class Paper(SQLModel, table=True):\n"
        "    pass\n"
        "g = Grid('when', 'op')\n"
    )
    assert _table_declarations(module) == [5, 6, 7, 7, 8]


def test_list_columns_decode_one_way() -> None:
    assert json_list(None) is None
    assert json_list("") is None
    assert json_list('["a", "b"]') == ["a", "b"]
    row = {"authors": '["Ada"]', "authorids": None, "keywords": "[]", "title": '["x"]'}
    assert decode_lists(dict(row), null_as_empty=True) == {
        "authors": ["Ada"],
        "authorids": [],
        "keywords": [],
        "title": '["x"]',
    }
    assert decode_lists(dict(row), null_as_empty=False)["authorids"] is None
    assert decode_lists({"number": 1}, null_as_empty=True) == {"number": 1}


def test_times_are_stored_in_utc_and_read_back_aware(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'orsync.db'}")
    paris = timezone(timedelta(hours=2))
    at = datetime(2026, 5, 1, 14, 30, tzinfo=paris)
    try:
        with store.begin() as conn:
            conn.execute(insert(CYCLE).values(started_at=at, mode="full"))
            stored = conn.execute(select(CYCLE.c.started_at)).scalar_one()
            assert stored == at and stored.tzinfo == UTC
            # Plain string keys: YAML (export) refuses SQLAlchemy's quoted_name.
            assert {type(key) for key in recent_cycles(conn)[0]} == {str}
            assert conn.execute(
                select(CYCLE.c.id).where(
                    CYCLE.c.started_at >= datetime(2026, 5, 1, 12, 29, tzinfo=UTC)
                )
            ).all()
        with pytest.raises(Exception, match="naive"), store.begin() as conn:
            conn.execute(
                insert(CHANGE).values(
                    cycle_id=1,
                    at=datetime(2026, 5, 1),
                    note_id="n",
                    forum="f",
                    kind="k",
                    op="c",
                    fields="[]",
                )
            )
    finally:
        store.dispose()


def test_revisions_from_file_names_agree_with_alembic() -> None:
    """Readers learn the schema's revisions without alembic; they must be alembic's own."""
    from alembic.script import ScriptDirectory

    from orsync.store import _alembic_config, revisions

    script = ScriptDirectory.from_config(_alembic_config())
    chain = [rev.revision for rev in script.walk_revisions()][::-1]  # oldest first
    assert list(revisions()) == chain
    assert revisions()[-1] == script.get_current_head()


def test_a_batch_leaves_out_only_the_columns_no_row_fills(tmp_path: Path) -> None:
    """The sparse insert of new notes loses no value: a column one row of the batch fills is
    written for all, one no row fills is left to the database's NULL (or a flag's false)."""
    rows = [
        {
            "id": f"n{i}",
            "forum": "f",
            "kind": "review",
            "raw": "{}",
            "digest": "d",
            "deleted": False,  # NOT NULL without a default: always written
            "public": i == 1,  # only the middle row is public
            **dict.fromkeys(PUBLIC_FLAGS.values(), False),
            "rating": 7.0 if i == 2 else None,  # only the last row has one
            "confidence": 0.0 if i == 2 else None,  # a zero is a value
            "abstract": None,  # none has one
            "pdf_url": None,
            "title": "" if i == 0 else None,  # empty text is a value, not an absence
        }
        for i in range(3)
    ]
    keys = filled(rows, left_out_values(NOTE))
    assert "abstract" not in keys and "pdf_url" not in keys and "title_public" not in keys
    assert {"rating", "confidence", "title", "deleted", "public", "id"} <= set(keys)
    assert filled(rows[:1], left_out_values(NOTE)) == [
        k for k in keys if k not in ("rating", "confidence", "public")
    ]
    store = open_store(f"sqlite:///{tmp_path / 'orsync.db'}")
    try:
        with store.begin() as conn:
            prepared_insert(conn, NOTE, keys).run(conn, rows)
            stored = conn.execute(
                select(
                    NOTE.c.id,
                    NOTE.c.rating,
                    NOTE.c.confidence,
                    NOTE.c.title,
                    NOTE.c.abstract,
                    NOTE.c.public,
                    NOTE.c.title_public,
                    NOTE.c.deleted,
                ).order_by(NOTE.c.id)
            ).all()
        assert [tuple(r) for r in stored] == [
            ("n0", None, None, "", None, False, False, False),
            ("n1", None, None, None, None, True, False, False),
            ("n2", 7.0, 0.0, None, None, False, False, False),
        ]
    finally:
        store.dispose()


def test_new_rows_with_a_key_the_batch_lacks_are_stored_whole(tmp_path: Path) -> None:
    """A batch's statement takes its first row's keys: a later row of the same kind holding
    one more key gets its own statement, so its value is stored, not dropped."""
    base = {
        "forum": "f",
        "kind": "submission",
        "raw": "{}",
        "digest": "d",
        "deleted": False,
        "public": False,
        **dict.fromkeys(PUBLIC_FLAGS.values(), False),
    }
    rows = [{"id": "a", **base}, {"id": "b", **base, "status": "accepted"}]
    store = open_store(f"sqlite:///{tmp_path / 'orsync.db'}")
    try:
        with store.begin() as conn:
            batches = insert_batches(rows, "kind", left_out_values(NOTE), column_order(NOTE))
            for keys, values in batches:
                prepared_insert(conn, NOTE, keys).run_ordered(conn, keys, values)
            stored = conn.execute(select(NOTE.c.id, NOTE.c.status).order_by(NOTE.c.id)).all()
        assert [tuple(r) for r in stored] == [("a", None), ("b", "accepted")]
    finally:
        store.dispose()


def test_revision_0006_keeps_each_list_public_or_not(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    from orsync.store import _alembic_config

    engine = create_engine(f"sqlite:///{tmp_path / 'orsync.db'}")
    query = "SELECT forum_id, authors, authorids, keywords FROM accepted_papers"
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0005")
        conn.exec_driver_sql(
            "INSERT INTO note (id, forum, kind, title, authors, authorids, keywords, raw, digest,"
            " deleted, status, public, title_public, authors_public, authorids_public,"
            " keywords_public) VALUES ('f1', 'f1', 'submission', 'T', '[\"A\", \"B\"]',"
            " '[\"~A1\"]', '[\"k\"]', '{}', 'd', 0, 'accepted', 1, 1, 1, 0, 1)"
        )
        before = conn.exec_driver_sql(query).all()
    assert before == [("f1", '["A", "B"]', None, '["k"]')]  # authorids are not public
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "head")
        assert conn.exec_driver_sql(query).all() == before
        conn.exec_driver_sql("UPDATE note SET authorids_public = 1, authors_public = 0")
        assert conn.exec_driver_sql(query).all() == [("f1", None, '["~A1"]', '["k"]')]
        command.downgrade(_alembic_config(conn), "0005")
        assert conn.exec_driver_sql(query).all() == [("f1", None, '["~A1"]', '["k"]')]
    engine.dispose()
