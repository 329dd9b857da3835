"""Read models in SQLite (stdlib :mod:`sqlite3`): one file, WAL mode, atomic commits.

See :mod:`s3es._readmodels.sql` for the tables and the view SQL readers query.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import attrs

from s3es._readmodels.sql import Dialect, Result, SQLReadModelStore
from s3es.errors import ReadModelStoreError

SQLITE = Dialect(
    placeholder="?",
    json_type="TEXT",
    key_type="TEXT",  # BINARY collation: UTF-8 byte order, which is code point order
    table_options=" WITHOUT ROWID",  # rows kept in key order: documents() reads them so
    begin="BEGIN IMMEDIATE",  # the write lock at once: no deadlock upgrading a read lock
    for_update="",  # BEGIN IMMEDIATE excludes other writers already
    json_param="?",
    json_text="{}",
    counter_schema=(
        (
            "CREATE TABLE IF NOT EXISTS s3es_revision "
            "(id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL)"
        ),
        "INSERT OR IGNORE INTO s3es_revision (id, value) VALUES (0, 0)",
    ),
    # Two statements rather than UPDATE ... RETURNING, which needs SQLite 3.35.
    next_revision=(
        "UPDATE s3es_revision SET value = value + 1",
        "SELECT value FROM s3es_revision",
    ),
    lock=None,
    replace_view=(
        "DROP VIEW IF EXISTS {view}",
        "CREATE VIEW {view} AS SELECT key, body, revision FROM {table}",
    ),
)


@attrs.frozen
class _Session:
    connection: sqlite3.Connection

    @property
    def in_transaction(self) -> bool:
        return self.connection.in_transaction

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        cursor = self.connection.execute(sql, params)
        try:
            return Result(cursor.rowcount, cursor.fetchall())
        finally:
            cursor.close()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.connection.executemany(sql, rows).close()


class SQLiteReadModelStore(SQLReadModelStore):
    """A :class:`~s3es.readmodels.ReadModelStore` in one SQLite database file; ``atomic``.

    The file is put in WAL mode, so other processes read it while a commit is written; a commit
    is one ``BEGIN IMMEDIATE`` transaction, on disk when it returns. SQL readers query the view
    named after the projection (``SELECT json_extract(body, '$.total') FROM orders``: see
    :mod:`s3es._readmodels.sql`). The store keeps one connection, opened on first use, and lends
    it to one thread at a time (``":memory:"`` is one database per connection). Close the store
    (or use it as a context manager) when done.

    Args:
        path: The database file (created if missing), or ``":memory:"``.
        timeout: Seconds a commit waits for another process's transaction before it raises
            :class:`~s3es.errors.ReadModelStoreError`.
    """

    dialect = SQLITE

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        self.path = os.fspath(path)
        super().__init__(f"sqlite:{self.path}")
        self.timeout = timeout
        self._mutex = threading.Lock()
        self._open: sqlite3.Connection | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"SQLiteReadModelStore({self.path!r})"

    def close(self) -> None:
        """Close the connection; the store cannot be used after."""
        with self._mutex:
            self._closed = True
            if self._open is not None:
                self._open.close()
                self._open = None

    @contextmanager
    def _session(self) -> Iterator[_Session]:
        with self._mutex:
            if self._closed:
                raise ReadModelStoreError(self.name, "connect", "the store is closed")
            if self._open is None:
                connection = sqlite3.connect(
                    self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
                )
                try:
                    connection.execute("PRAGMA journal_mode=WAL").close()
                except BaseException:
                    connection.close()
                    raise
                self._open = connection
            yield _Session(self._open)

    def _is_database_error(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.Error)

    def _is_undefined_table(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.OperationalError) and str(error).startswith(
            "no such table"
        )
