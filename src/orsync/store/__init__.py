"""The local store: open it, migrate it, and keep SQLite honest about transactions.

SQLite runs in WAL mode so that readers (the website build, ``orsync status``) are never blocked
by a sync cycle and always see the state before or after it.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Alembic narrates every start (plugins, context) at INFO, from import time on: keep it quiet.
logging.getLogger("alembic").setLevel(logging.WARNING)

from alembic.config import Config as AlembicConfig  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402
from sqlalchemy import Connection, Engine, create_engine, event  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.exc import ArgumentError, SQLAlchemyError  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from orsync.errors import StoreError  # noqa: E402
from orsync.files import create_private, loose_mode  # noqa: E402

MIGRATIONS = str(Path(__file__).with_name("migrations"))
BUSY_TIMEOUT_MS = 30_000


def _alembic_config(connection: Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", MIGRATIONS)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def sqlite_path_of(url: str) -> Path | None:
    """The file of a SQLite URL, or None for other databases and in-memory ones."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _tune_sqlite(engine: Engine) -> None:
    # pysqlite opens transactions lazily and commits behind our back on DDL; hand transaction
    # control to SQLAlchemy so a whole cycle is one BEGIN ... COMMIT (SQLAlchemy's own recipe).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode is safe against process kills; only an OS crash may lose the
        # last commits, which the next cycle fetches again.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")


@dataclass
class Store:
    """An opened, migrated store."""

    url: str
    engine: Engine

    @property
    def sqlite_path(self) -> Path | None:
        return sqlite_path_of(self.url)

    def describe(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextlib.contextmanager
    def store_errors(self) -> Iterator[None]:
        """Database failures inside the block become ``StoreError`` (exit 5), naming the store."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.describe()}: {_reason(exc)}") from exc

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: committed if the block ends normally, rolled back otherwise."""
        with self.store_errors(), self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        with self.store_errors(), self.engine.connect() as conn:
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the store at ``url``, creating and migrating it as needed (SPEC §5)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"store.url {url!r} is not a SQLAlchemy URL (e.g. sqlite:///orsync.db)"
        ) from None
    path = sqlite_path_of(url)
    if path is not None:
        parent = path.parent if str(path.parent) else Path()
        if not parent.is_dir():
            raise StoreError(f"store {path}: folder {parent} does not exist; create it first")
        _private_sqlite_file(path)
    try:
        # NullPool for SQLite: each use gets a fresh connection, so a forked or long-lived
        # process never shares one across threads.
        kwargs: dict[str, Any] = {"poolclass": NullPool} if path is not None else {}
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise StoreError(f"store {parsed.render_as_string()}: cannot open: {exc}") from None
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine)
    store = Store(url=url, engine=engine)
    if migrate:
        _migrate(store)
    return store


SIDE_FILES = ("-wal", "-shm", "-journal")


def _private_sqlite_file(path: Path) -> None:
    """The store holds reviews: readable by its owner only (SPEC §4).

    A new store is created here, 0600, before SQLite opens it: SQLite gives its -wal and -shm
    files the database's mode, so they are private too, whatever the umask. An existing store
    (or side file) that other users can read is refused with the fix (exit 5): its reviews
    have been exposed since it was made, and each further cycle would add to them. One only
    its group can read is opened with a warning: that was the advice for older deployments
    (the website build in the service's group), which still works but should move to the
    published files.
    """
    try:
        if create_private(path):
            return
    except OSError as exc:
        # Not creatable here (a read-only folder): SQLite reports what it finds, as before.
        if not path.exists():
            raise StoreError(f"store {path}: cannot create it: {exc.strerror}") from None
    files = [path] + [
        path.with_name(path.name + suffix)
        for suffix in SIDE_FILES
        if path.with_name(path.name + suffix).exists()
    ]
    group_readable: list[Path] = []
    for file in files:
        try:
            st = file.stat()
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        group, others = loose_mode(st)
        if others:
            names = " ".join(str(f) for f in files)
            raise StoreError(
                f"store {file} is readable by other users (mode {stat.S_IMODE(st.st_mode):04o}) "
                f"and holds confidential reviews; run: chmod 600 {names}"
            )
        if group:
            group_readable.append(file)
    if group_readable:
        names = " ".join(str(f) for f in files)
        logging.getLogger("orsync.store").warning(
            "store %s is readable by its group; run: chmod 600 %s",
            group_readable[0],
            names,
        )


def _migrate(store: Store) -> None:
    script = ScriptDirectory.from_config(_alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    head = script.get_current_head()
    with store.begin() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        if current is not None and current not in known:
            raise StoreError(
                f"store {store.describe()} was written by a newer orsync (schema {current}); "
                "upgrade orsync to use it"
            )
        if current != head:
            from alembic import command

            command.upgrade(_alembic_config(conn), "head")
