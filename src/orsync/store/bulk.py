"""The hot writes of a cycle, compiled once and run through the DBAPI's ``executemany``.

``conn.execute(insert(NOTE), rows)`` builds every row's parameters through the compiled
statement (``construct_params`` and a type processor per column and row): at ICLR scale that
costs more than the database's own work. A :class:`Prepared` statement is compiled once for the
connection's dialect; each execution turns the rows into the driver's parameters (tuples for
SQLite's ``?``, dicts for psycopg's named style) applying only the type processors some column
really has (booleans, aware times), and hands them to ``exec_driver_sql``: the same
transaction, the same SQLAlchemy error wrapping, no per-row compilation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Boolean, Column, Connection, DefaultClause, Table, bindparam, insert, update
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import False_
from sqlalchemy.sql.expression import ClauseElement

Row = Mapping[str, Any]


class Prepared:
    """One statement compiled for one dialect, executed for many rows at a time."""

    def __init__(
        self, conn: Connection, statement: ClauseElement, columns: Mapping[str, Column[Any]]
    ) -> None:
        dialect = conn.dialect
        compiled = statement.compile(dialect=dialect, for_executemany=True)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        names = list(compiled.positiontup or compiled.binds)
        missing = [n for n in names if n not in columns]
        if missing:
            raise ValueError(f"no column given for parameters {missing}")
        self.names = names
        self.positional = compiled.positiontup is not None
        # Only processors that change a value: booleans pass as they are to SQLite (an int)
        # and psycopg (native), so theirs (a check that the value is a bool) are left out.
        self.processors: list[tuple[int, Callable[[Any], Any]]] = []
        for index, name in enumerate(names):
            impl = columns[name].type.dialect_impl(dialect)
            if isinstance(impl, Boolean) and dialect.name in ("sqlite", "postgresql"):
                continue
            processor = impl.bind_processor(dialect)
            if processor is not None:
                self.processors.append((index, processor))
        self._get = itemgetter(*names)

    def params(self, rows: Sequence[Row]) -> list[Any]:
        """Each row's values in the statement's order, as the driver takes them (``ordered``)."""
        get = self._get
        values = [(get(row),) for row in rows] if len(self.names) == 1 else list(map(get, rows))
        return self.ordered(values)

    def ordered(self, values: list[tuple[Any, ...]]) -> list[Any]:
        """Rows given as values in the statement's order, through the type processors (a None
        stays None, as every processor would leave it); ``values`` is patched in place."""
        for index, processor in self.processors:
            # A cycle stamps all its change records with one time: process it once.
            last_in: Any = None
            last_out: Any = None
            for i, row_values in enumerate(values):
                value = row_values[index]
                if value is not None:
                    if value is not last_in:
                        last_in, last_out = value, processor(value)
                    patched = list(row_values)
                    patched[index] = last_out
                    values[i] = tuple(patched)
        if self.positional:
            return values
        return [dict(zip(self.names, row_values, strict=True)) for row_values in values]

    def run_ordered(
        self, conn: Connection, keys: Sequence[str], values: list[tuple[Any, ...]]
    ) -> None:
        """``run`` for rows given as the values of ``keys``, which must be the statement's
        parameters in its order (``batches.insert_batches`` given the table's columns)."""
        if list(keys) != self.names:
            raise ValueError(f"values given for {list(keys)}, the statement binds {self.names}")
        if values:
            conn.exec_driver_sql(self.sql, self.ordered(values))

    def run(self, conn: Connection, rows: Sequence[Row]) -> None:
        if rows:
            conn.exec_driver_sql(self.sql, self.params(rows))

    def bind_value(self, name: str, value: Any) -> Any:
        """``value`` for parameter ``name`` as the driver takes it (for ``run_values``)."""
        index = self.names.index(name)
        for at, processor in self.processors:
            if at == index and value is not None:
                return processor(value)
        return value

    def run_values(
        self, conn: Connection, keys: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Rows given as values in the order of ``keys``, each already as the driver takes it
        (``bind_value``): no conversion a row."""
        if not rows:
            return
        if list(keys) != self.names:
            positions = [list(keys).index(name) for name in self.names]
            rows = [[row[i] for i in positions] for row in rows]
        if self.positional:
            conn.exec_driver_sql(self.sql, [tuple(row) for row in rows])
        else:
            conn.exec_driver_sql(
                self.sql, [dict(zip(self.names, row, strict=True)) for row in rows]
            )


_KEEP = object()


def _left_out_value(column: Column[Any]) -> Any:
    """What the database stores in ``column`` for an insert that leaves it out: None (NULL)
    or False (a ``false()`` server default); ``_KEEP`` when that is no value orsync writes
    (a client-side default, a NOT NULL column without a default, any other server default)."""
    if column.default is not None:
        return _KEEP
    server = column.server_default
    if server is None:
        return None if column.nullable else _KEEP
    if isinstance(server, DefaultClause) and isinstance(server.arg, False_):
        return False
    return _KEEP


def column_order(table: Table) -> list[str]:
    """The order an insert into ``table`` binds its columns (for ``batches.insert_batches``)."""
    # Plain strings: a column's name is SQLAlchemy's ``quoted_name``, which a child process
    # building rows (``mirror/child.py``) neither imports nor accepts back.
    return [str(column.name) for column in table.columns]


def left_out_values(table: Table) -> dict[str, Any]:
    """Per column of ``table`` that an insert may leave out, the value the database then
    stores (for ``batches.filled``)."""
    found = {str(column.name): _left_out_value(column) for column in table.columns}
    return {name: value for name, value in found.items() if value is not _KEEP}


def prepared_insert(conn: Connection, table: Table, keys: Sequence[str]) -> Prepared:
    """``INSERT INTO table (keys) VALUES (...)``; every row gives exactly ``keys``."""
    stmt = insert(table).values({key: bindparam(key) for key in keys})
    return Prepared(conn, stmt, {key: table.c[key] for key in keys})


def prepared_update(conn: Connection, table: Table, key: str, keys: Sequence[str]) -> Prepared:
    """``UPDATE table SET keys WHERE key = :b_<key>``; every row gives ``keys`` and ``b_<key>``."""
    stmt = (
        update(table)
        .where(table.c[key] == bindparam(f"b_{key}"))
        .values({k: bindparam(k) for k in keys})
    )
    columns = {k: table.c[k] for k in keys}
    columns[f"b_{key}"] = table.c[key]
    return Prepared(conn, stmt, columns)
