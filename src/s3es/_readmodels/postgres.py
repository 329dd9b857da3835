"""Read models in PostgreSQL (psycopg 3, the ``postgres`` extra): atomic commits, many writers.

See :mod:`s3es._readmodels.sql` for the tables and the view SQL readers query. psycopg is
imported when a store is made, not when this module is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs

from s3es._readmodels.sql import Dialect, Result, SQLReadModelStore
from s3es.errors import InvalidConfiguration, ReadModelStoreError

if TYPE_CHECKING:
    import psycopg

POSTGRES = Dialect(
    placeholder="%s",
    # JSON keeps the document's text as written (JSONB would turn 1e300 into 1 and 300 zeros,
    # and reorder keys); readers cast to jsonb where they want its operators or its indexes.
    json_type="JSON",
    key_type='TEXT COLLATE "C"',  # code point order, whatever the database's collation
    table_options="",
    begin="BEGIN",
    for_update=" FOR UPDATE",
    json_param="CAST(? AS JSON)",
    json_text="{}::text",
    counter_schema=("CREATE SEQUENCE IF NOT EXISTS s3es_revision AS BIGINT",),
    next_revision=("SELECT nextval('s3es_revision')",),
    # Two transactions creating one table at once may both fail the catalog's unique index:
    # the lock makes the second wait, then find the table.
    lock="SELECT pg_advisory_xact_lock(hashtext(?))",
    replace_view=("CREATE OR REPLACE VIEW {view} AS SELECT key, body, revision FROM {table}",),
)


@attrs.frozen
class _Session:
    connection: psycopg.Connection[tuple[Any, ...]]

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus  # noqa: PLC0415 - psycopg is optional

        return self.connection.info.transaction_status != TransactionStatus.IDLE

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        with self.connection.execute(sql, params or None) as cursor:
            rows = cursor.fetchall() if cursor.description is not None else []
            return Result(cursor.rowcount, rows)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.connection.cursor() as cursor:
            cursor.executemany(sql, rows)


def _name(conninfo: str) -> str:
    """``postgresql:{host}[:{port}]/{dbname}``: the database, without user or password."""
    import psycopg  # noqa: PLC0415 - psycopg is optional
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error as error:
        # libpq's message may quote the string, password and all: only its kind is told.
        raise InvalidConfiguration(
            f"PostgresReadModelStore: the conninfo is not a connection string or URI "
            f"({type(error).__name__})"
        ) from None
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql:{host}{port}/{params.get('dbname') or params.get('user') or ''}"


class PostgresReadModelStore(SQLReadModelStore):
    """A :class:`~s3es.readmodels.ReadModelStore` in a PostgreSQL database; ``atomic``.

    Each operation borrows a connection (opened on demand, in autocommit mode), so projector and
    readers run at once; a commit is one READ COMMITTED transaction whose conditional writes wait
    for a rival's and then see its revision. Documents are ``JSON`` columns: SQL readers query
    the view named after the projection (``SELECT body ->> 'total' FROM orders``: see
    :mod:`s3es._readmodels.sql`). Needs the ``postgres`` extra (psycopg 3). Close the store (or
    use it as a context manager) when done.

    Args:
        conninfo: A libpq connection string or URI (``postgresql://user@host/db``).
        max_idle: Connections kept open between operations.

    Raises:
        ImportError: psycopg 3 is not installed.
    """

    dialect = POSTGRES

    def __init__(self, conninfo: str, *, max_idle: int = 4) -> None:
        try:
            import psycopg  # noqa: PLC0415 - the postgres extra, only for this store
        except ImportError as error:
            raise ImportError(
                "PostgresReadModelStore needs psycopg 3, in s3es's postgres extra: "
                "pip install -e '.[postgres]' in the clone of s3es (see its README)"
            ) from error
        super().__init__(_name(conninfo))
        self._psycopg = psycopg
        self._conninfo = conninfo
        self.max_idle = max_idle
        self._mutex = threading.Lock()
        self._idle: list[psycopg.Connection[tuple[Any, ...]]] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresReadModelStore({self.name!r})"

    def close(self) -> None:
        """Close the idle connections; the store cannot be used after.

        A connection lent to an operation under way is closed when the operation ends.
        """
        with self._mutex:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    @contextmanager
    def _session(self) -> Iterator[_Session]:
        with self._mutex:
            if self._closed:
                raise ReadModelStoreError(self.name, "connect", "the store is closed")
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = self._psycopg.connect(self._conninfo, autocommit=True)
        try:
            yield _Session(connection)
        finally:
            self._give_back(connection)

    def _give_back(self, connection: psycopg.Connection[tuple[Any, ...]]) -> None:
        from psycopg.pq import TransactionStatus  # noqa: PLC0415 - psycopg is optional

        if not connection.closed and connection.info.transaction_status == TransactionStatus.IDLE:
            with self._mutex:
                if not self._closed and len(self._idle) < self.max_idle:
                    self._idle.append(connection)
                    return
        connection.close()

    def _is_database_error(self, error: BaseException) -> bool:
        return isinstance(error, self._psycopg.Error)

    def _is_undefined_table(self, error: BaseException) -> bool:
        return isinstance(error, self._psycopg.errors.UndefinedTable)
