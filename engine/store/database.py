"""The store's one database: a DuckDB file, opened once per process, a cursor per thread, every table made by
the numbered migrations of `engine.store.schema`.

DuckDB admits one writing process, so the file is opened once and each thread gets its own cursor; writes go
through `transaction`, one transaction per call. Nothing outside `engine/store/` writes SQL: the repositories
beside this module (decisions, conversations, escalations, tokens, privacy, healing, learning, curation) are
the interface, shaped so that a PostgreSQL implementation can stand behind the same methods.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb

from core.errors import ConflictError, StoreError
from engine.store.schema import LATEST, MIGRATIONS, VERSION_TABLE
from engine.store.views import view_statements

Statement = tuple[str, Sequence[Any]]
Guard = tuple[str, Sequence[Any], str]  # (sql, params, what to tell the caller when it finds no row)

# Rows of one table written as one INSERT: DuckDB's executemany costs about 0.4 ms a row (a decision's 60 facts
# took 24 ms), one statement with many VALUES about 0.07 ms a row.
ROWS_PER_INSERT = 200


# A plain INSERT of one row of placeholders: only these may become one multi-row INSERT (an INSERT OR REPLACE or
# ON CONFLICT would change meaning when its rows are merged).
BATCHABLE = re.compile(r"INSERT INTO \w+(?: \([\w, ]+\))? VALUES \((?:\?, )*\?\)")


def _batchable(sql: str) -> bool:
    return BATCHABLE.fullmatch(sql) is not None


def _multi_row(sql: str, rows: list[Sequence[Any]]) -> tuple[str, list[Any]]:
    """`INSERT ... VALUES (?, ?)` for one row -> the same statement for all `rows`, and their parameters."""
    if len(rows) == 1:
        return sql, list(rows[0])
    # Only reached for `_batchable` statements: one VALUES tuple of placeholders at the end, and every row must
    # fill it (a short row would otherwise borrow the next row's values).
    width = sql.count("?")
    if any(len(row) != width for row in rows):
        raise StoreError(f"a row does not have the {width} values of: {sql}")
    head, _, values = sql.rpartition("VALUES ")
    return head + "VALUES " + ", ".join([values] * len(rows)), [value for row in rows for value in row]


def _rollback(cursor: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # DuckDB may have ended it already (a failed COMMIT rolls back)
        cursor.execute("ROLLBACK")


CLOSE_WAIT_S = 30.0  # how long closing waits for calls still running on the connection (a turn's write, say)


class DuckDBStore:
    """The embedded database: one DuckDB file, one connection per process, a cursor per thread."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # The analysts' console (analyst.py) runs their SQL on this instance, so it runs without file or
            # network access (exports go through Python), with Python objects not readable as tables, and with the
            # configuration locked so no statement can undo that. The store itself never SETs anything (SET
            # VARIABLE, a connection's own, still works).
            self._connection = duckdb.connect(str(path), config={
                "enable_external_access": False, "python_enable_replacements": False, "lock_configuration": True})
        except duckdb.IOException as error:
            raise StoreError(
                f"cannot open {path}: {error}. Another Firstline process (the server?) may hold it; stop it "
                "or set FIRSTLINE_DATA_DIR to another folder."
            ) from None
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._readers: set[duckdb.DuckDBPyConnection] = set()  # `reader()` cursors in use: interrupted on close
        try:
            self._migrate()
            # The metric views follow the code, not the file: a changed definition replaces the old on open.
            self.transaction([(sql, ()) for sql in view_statements()])
        except BaseException:
            self.close()
            raise

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._connection.cursor()
            self._local.cursor = cursor
            with self._write_lock:
                self._cursors.append(cursor)
        return cursor

    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own on the one connection, closed after: for a read that may be interrupted (the
        analysts' console) without touching the cursor this thread writes with, nor its DuckDB variables."""
        cursor = self._connection.cursor()
        with self._write_lock:
            self._readers.add(cursor)
        try:
            yield cursor
        finally:
            with self._write_lock:
                self._readers.discard(cursor)
            cursor.close()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run one statement on this thread's cursor and return its rows; for the repositories' reads (and
        tests'). Raises StoreError with DuckDB's message when the statement fails."""
        try:
            return self._cursor().execute(sql, params).fetchall()
        except duckdb.Error as error:
            raise StoreError(f"query failed: {error}") from None

    def transaction(self, statements: list[Statement], guard: Guard | None = None) -> list[list[tuple]]:
        """Run statements in one transaction and return the rows each returned (one entry per statement run;
        consecutive plain inserts of one statement go as one multi-row INSERT, one entry for the lot).

        `guard` is (sql, params, message): a statement run first that must return a row (an UPDATE ... WHERE
        version = ? RETURNING, say); when it returns none, or breaks a key, nothing is written and ConflictError
        says `message`. Any other failure rolls everything back and raises StoreError."""
        batches: list[tuple[str, list[Sequence[Any]]]] = []
        for sql, params in statements:
            if batches and batches[-1][0] == sql and _batchable(sql):
                batches[-1][1].append(params)
            else:
                batches.append((sql, [params]))
        cursor = self._cursor()
        results: list[list[tuple]] = []
        with self._write_lock:
            try:
                cursor.execute("BEGIN TRANSACTION")
                if guard is not None and not self._guard_holds(cursor, guard):
                    raise ConflictError(guard[2])  # rolled back below
                for sql, rows in batches:
                    for start in range(0, len(rows), ROWS_PER_INSERT):
                        chunk = rows[start:start + ROWS_PER_INSERT]
                        results.append(cursor.execute(*_multi_row(sql, chunk)).fetchall())
                cursor.execute("COMMIT")
            except duckdb.Error as error:
                _rollback(cursor)
                raise StoreError(f"could not write to {self.path}: {error}") from None
            except BaseException:
                _rollback(cursor)  # never leave this thread's cursor inside an open transaction
                raise
        return results

    @staticmethod
    def _guard_holds(cursor: duckdb.DuckDBPyConnection, guard: Guard) -> bool:
        try:
            return bool(cursor.execute(guard[0], guard[1]).fetchall())
        except duckdb.ConstraintException:
            return False

    def schema_version(self) -> int:
        """The last migration this file has had (`engine.store.schema.MIGRATIONS`)."""
        return int(self.execute("SELECT coalesce(max(version), 0) FROM schema_version")[0][0])

    def _migrate(self) -> None:
        """Apply the migrations this file has not had, in order, each in its own transaction."""
        cursor = self._cursor()
        with self._write_lock:
            cursor.execute(VERSION_TABLE)
            (current,), = cursor.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()
        if current > LATEST:
            raise StoreError(f"{self.path} was written by a newer Firstline (schema version {current}; this one "
                             f"knows up to {LATEST}). Upgrade Firstline, or point FIRSTLINE_DATA_DIR elsewhere.")
        for migration in MIGRATIONS:
            if migration.version > current:
                self.transaction([(sql, ()) for sql in migration.statements()] + [
                    ("INSERT INTO schema_version VALUES (?, ?, ?)",
                     (migration.version, migration.description, self.clock()))])

    def close(self) -> None:
        """Close every thread's cursor and the file; the store cannot be used afterwards. A reader still running
        (an analyst's query when the server is stopped) is interrupted: its caller gets DuckDB's InterruptException.
        DuckDB refuses to close a connection while a call runs on it, rather than waiting; this waits up to
        CLOSE_WAIT_S for the calls to end, then raises StoreError."""
        deadline = time.monotonic() + CLOSE_WAIT_S
        while True:
            with self._write_lock:
                for reader in self._readers:
                    reader.interrupt()
                try:
                    for cursor in self._cursors:
                        cursor.close()
                    self._cursors.clear()
                    self._connection.close()
                    return
                except duckdb.Error as error:  # "connection is busy with another call"
                    if time.monotonic() > deadline:
                        raise StoreError(f"cannot close the store: {error}") from None
            time.sleep(0.05)  # outside the lock: the interrupted reader takes it to say it is done
