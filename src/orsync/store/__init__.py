"""The local store: open it, migrate it, and keep SQLite honest about transactions.

SQLite runs in WAL mode so that readers (the website build, ``orsync status``) are never blocked
by a sync cycle and always see the state before or after it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from orsync.errors import StoreError
from orsync.files import create_private, loose_mode

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

# Alembic narrates every start (plugins, context) at INFO: keep it quiet. It is imported only
# when a schema is checked or migrated, so that the store's tables and read queries load
# without it.
logging.getLogger("alembic").setLevel(logging.WARNING)

MIGRATIONS = str(Path(__file__).with_name("migrations"))
PAGE_SIZE = 16384
BUSY_TIMEOUT_MS = 30_000


def _alembic_config(connection: Connection | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

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


def sqlite_files(path: Path) -> list[Path]:
    """The files SQLite keeps for a store: the database, its write-ahead log and shared memory,
    and a rollback journal."""
    return [path, *(path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal"))]


def never_synced(path: Path) -> bool:
    """Whether a SQLite store holds nothing a cycle brought: no good cycle, no note."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
            cycles = con.execute("SELECT count(*) FROM cycle WHERE outcome = 'ok'").fetchone()
            notes = con.execute("SELECT count(*) FROM note").fetchone()
    except sqlite3.Error:
        return True  # no tables yet, or not a store at all: it was made by this run
    return not cycles[0] and not notes[0]


def _tune_sqlite(engine: Engine) -> None:
    # pysqlite opens transactions lazily and commits behind our back on DDL; hand transaction
    # control to SQLAlchemy so a whole cycle is one BEGIN ... COMMIT (SQLAlchemy's own recipe).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # For a new file only (a store's page size is fixed once it holds a table): rows carry
        # each note's JSON, and 16 KiB pages store a venue's notes in about 20% less time
        # than the default 4 KiB.
        cursor.execute(f"PRAGMA page_size = {PAGE_SIZE}")
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

    # ``with open_reader(url) as store:`` disposes the engine however the block ends, so no
    # reading command leaves a connection (or, on SQLite, a file handle) open behind it.
    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the store at ``url``, creating and migrating it as needed (docs/site-files.md#the-read-views)."""
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
        if path.is_file() and path.stat().st_size > 0:
            # Look before touching: opening for writing switches the file to WAL, so another
            # program's database or a newer orsync's store is refused before that happens.
            probe = _open_sqlite_readonly(url, path)
            try:
                _require(probe, "empty", "behind", "current")
            finally:
                probe.dispose()
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
    """The store holds reviews: readable by its owner only (docs/security.md#confidential-files).

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
    _check_store_mode(path, refuse=True)


def _check_store_mode(path: Path, *, refuse: bool) -> None:
    """Refuse (writers) or warn about (readers) a store that other users can read.

    Readers only warn: what they would read is exposed already, and a store made read-only
    for them (a reader account) must still serve ``status`` and ``export``.
    """
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
        if others and not refuse:
            group_readable.append(file)
        elif others:
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
            "store %s is readable by other accounts; run: chmod 600 %s",
            group_readable[0],
            names,
        )


def _migrate(store: Store) -> None:
    with store.begin() as conn:
        state, current = _schema_state(conn)
        if state in ("newer", "foreign"):
            raise _schema_error(store, state, current)
        if state == "empty" and conn.dialect.name == "sqlite":
            _create_current(conn)
        elif state != "current":
            from alembic import command

            command.upgrade(_alembic_config(conn), "head")


# What alembic writes for its version table (``alembic.runtime.migration``), kept equal by
# tests/test_store.py.
_ALEMBIC_VERSION = (
    "CREATE TABLE alembic_version (\n\tversion_num VARCHAR(32) NOT NULL, \n"
    "\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n)"
)


def _create_current(conn: Connection) -> None:
    """A new SQLite store made from the final schema in one transaction, stamped at the last
    revision: the tables, indexes and views the migrations would leave (tests/test_store.py
    compares the two), without loading alembic or replaying six revisions, a third of a
    second of every first pull. PostgreSQL keeps the migrations (its views differ by dialect).
    """
    # Imported here, like alembic above: a command that only reads never creates a store.
    from orsync.store.tables import metadata
    from orsync.store.views import VIEWS

    metadata.create_all(conn)
    for sql in VIEWS.values():
        conn.exec_driver_sql(sql)
    conn.exec_driver_sql(_ALEMBIC_VERSION)
    conn.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES (?)", (revisions()[-1],))


# Tables only orsync creates; a database holding one of them without orsync's alembic_version
# (or with a revision orsync never wrote and none of them) belongs to another program.
ORSYNC_TABLES = frozenset(
    {"change", "cycle", "note", "poster_assignment", "poster_pin", "poster_session", "sync_state"}
)
SchemaState = Literal["empty", "behind", "current", "newer", "foreign"]


def revisions() -> tuple[str, ...]:
    """This orsync's schema revisions, oldest first, read from the migration files' names.

    Readers need only this to tell a current store from an old or newer one; loading alembic
    for it would double the start-up of ``orsync status`` (tests check it agrees with alembic).
    """
    versions = Path(MIGRATIONS) / "versions"
    return tuple(
        sorted(p.name.split("_", 1)[0] for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    )


def _schema_state(conn: Connection) -> tuple[SchemaState, str | None]:
    """Where the store's schema stands against this orsync's migrations, and its revision."""
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" not in tables:
        # A SQLite file is one program's; a shared server database may hold others' tables.
        theirs = tables if conn.dialect.name == "sqlite" else tables & ORSYNC_TABLES
        return ("foreign" if theirs else "empty"), None
    known = revisions()
    found = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    current = str(found[0]) if len(found) == 1 else None
    if current is None:
        return ("foreign" if tables - {"alembic_version"} else "empty"), None
    if current not in known:
        return ("newer" if "note" in tables else "foreign"), current
    return ("current" if current == known[-1] else "behind"), current


def _schema_error(store: Store, state: SchemaState, current: str | None) -> StoreError:
    where = store.describe()
    if state == "newer":
        return StoreError(
            f"store {where} was written by a newer orsync (schema {current}); "
            "upgrade orsync to use it"
        )
    if state == "foreign":
        return StoreError(
            f"store {where} holds another program's tables, not an orsync store; orsync leaves "
            "it alone: point store.url at a new file"
        )
    if state == "behind":
        return StoreError(
            f"store {where} has an older schema ({current}); run `orsync pull` to migrate it"
        )
    return StoreError(f"store {where} is empty; run `orsync pull` first")


def probe_schema(url: str) -> tuple[SchemaState, str]:
    """Where an existing store's schema stands, and one line saying so, read without changing
    anything (``orsync check``). A missing SQLite file is not created: ask before calling."""
    path = sqlite_path_of(url)
    store = _open_sqlite_readonly(url, path) if path is not None else open_store(url, migrate=False)
    try:
        with store.connect() as conn:
            state, current = _schema_state(conn)
    finally:
        store.dispose()
    if state in ("newer", "foreign"):
        return state, _schema_error(store, state, current).message
    described = {
        "empty": "is empty; `orsync pull` sets it up",
        "behind": f"has an older schema ({current}); the next `orsync pull` migrates it",
        "current": "is an orsync store with the current schema",
    }
    return state, f"{store.describe()} {described[state]}"


def open_reader(url: str) -> Store:
    """Open the store for a reading command: never created, never migrated, never altered.

    A store whose schema is not this orsync's current one is refused (exit 5) with what to do.
    A SQLite file the reader may not write (a read-only file or folder) is opened read-only; when
    not even the WAL's side files can be created there, as immutable (no -wal means every commit
    is in the main file).
    """
    path = sqlite_path_of(url)
    if path is not None and not path.exists():
        raise StoreError(f"store {path} does not exist yet; run `orsync pull` first")
    if path is not None:
        _check_store_mode(path, refuse=False)
    store = _open_sqlite_readonly(url, path) if path is not None else open_store(url, migrate=False)
    try:
        _require(store, "current")
    except BaseException:
        store.dispose()
        raise
    return store


def _require(store: Store, *states: SchemaState) -> None:
    with store.connect() as conn:
        state, current = _schema_state(conn)
    if state not in states:
        raise _schema_error(store, state, current)


def _open_sqlite_readonly(url: str, path: Path) -> Store:
    """A SQLite store through connections that cannot write (``mode=ro``)."""
    folder = path.parent if str(path.parent) else Path()
    side_files = any(Path(f"{path}{s}").exists() for s in ("-wal", "-shm"))
    uri = path.resolve().as_uri() + "?mode=ro"
    if not side_files and not os.access(folder, os.W_OK | os.X_OK):
        # WAL readers need a -shm file; with none there and no way to create one, every
        # commit is in the main file (no -wal either), so reading it as immutable is exact.
        uri += "&immutable=1"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    engine = create_engine("sqlite://", creator=connect, poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return Store(url=url, engine=engine)
