"""What the SQLite and PostgreSQL read-model stores share: the schema, the statements, the commit.

A store's database holds, per projection and generation, one table of documents that SQL
readers may query, and three tables of bookkeeping::

    {projection}__g{number}   key TEXT PRIMARY KEY, body JSON, revision BIGINT: the documents
    {projection}              a VIEW over the live generation's table: what readers query
    s3es_generations          per projection: the live and building generations, a revision
    s3es_positions            per projection, generation and stream: the version applied
    s3es_shards               per projection, generation and shard: epoch, scan, cursors
    s3es_kinds                per projection: the kind of consumer whose name it is

A projection's name becomes an SQL name with ``-`` and ``.`` turned into ``_`` (``order-lines``
is queried as ``order_lines``); two projections whose SQL names differ only by case
(``Totals``, ``totals``) cannot share a database, as SQLite's identifiers ignore case. A name
must start with a letter or ``_`` and hold only ASCII letters, digits, ``_``, ``-`` and ``.``,
so that no quoting is ever needed but for case (a name with capitals is queried quoted in
PostgreSQL: ``"OrderLines"``). The view is replaced in the transaction that switches the live
generation, so a reader of the view sees the old generation, then the new one, never a mix.
The bookkeeping tables are created on a store's first use; a generation's table on its first
commit (or when it goes live).

A revision is an integer drawn from one counter per database for each write, rendered as a
str: it never repeats, so a document deleted and written again does not get back a revision a
stale reader holds. A commit is one transaction: documents, positions and the shard state are
written, or a :class:`~s3es.errors.ReadModelConflict` rolls back all of them.

:class:`SQLReadModelStore` does all this in terms of a :class:`Dialect` (placeholders, column
types, how to begin a writing transaction and how to lock) and of one DB-API connection that
each adapter lends it (:meth:`SQLReadModelStore._session`).
"""

from __future__ import annotations

import abc
import functools
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, Protocol, Self

import attrs

from s3es._base.json import dumps, loads
from s3es._readmodels.port import Change, Generation, Generations, ShardState, StoredDocument
from s3es._readmodels.values import check_document, is_storable_key
from s3es.errors import InvalidConfiguration, NotJSON, ReadModelConflict, ReadModelStoreError

#: Documents per page of :meth:`SQLReadModelStore.documents`, and streams per query of
#: :meth:`SQLReadModelStore.positions`.
PAGE_SIZE = 500
#: The longest identifier, in bytes: PostgreSQL's (it would cut a longer one silently); kept on
#: SQLite too, so that a projection's tables can move from one to the other.
MAX_IDENTIFIER = 63

_PROJECTION = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_RESERVED_PREFIXES = ("s3es_", "sqlite_", "pg_")
_GENERATION_SUFFIX = re.compile(r"__g[0-9]+$")


@functools.lru_cache(maxsize=1024)
def sql_name(projection: str) -> str:
    """The SQL name of ``projection``'s view (InvalidConfiguration if it cannot have one)."""
    if not isinstance(projection, str) or not _PROJECTION.fullmatch(projection):
        raise InvalidConfiguration(
            f"projection {projection!r} has no SQL name: it must start with an ASCII letter or "
            "'_' and hold only ASCII letters, digits, '_', '-' and '.'"
        )
    name = projection.replace("-", "_").replace(".", "_")
    if name.lower().startswith(_RESERVED_PREFIXES):
        raise InvalidConfiguration(
            f"projection {projection!r}: its SQL name {name!r} starts with a reserved prefix "
            f"({', '.join(_RESERVED_PREFIXES)})"
        )
    if _GENERATION_SUFFIX.search(name):
        raise InvalidConfiguration(
            f"projection {projection!r}: its SQL name {name!r} ends as a generation's table does"
        )
    return name


@functools.lru_cache(maxsize=1024)
def table_name(generation: Generation) -> str:
    """The name of ``generation``'s table of documents: ``{sql name}__g{number}``."""
    if generation.number < 0:
        raise InvalidConfiguration(
            f"projection {generation.projection!r}: generation {generation.number} is negative"
        )
    name = f"{sql_name(generation.projection)}__g{generation.number}"
    if len(name) > MAX_IDENTIFIER:
        raise InvalidConfiguration(
            f"projection {generation.projection!r}: the table name {name!r} of generation "
            f"{generation.number} is longer than {MAX_IDENTIFIER} characters"
        )
    return name


def quote(name: str) -> str:
    """``name`` as an SQL identifier (names are checked: they hold no quote)."""
    return f'"{name}"'


@attrs.frozen
class Result:
    """What a statement did: the rows it changed (or -1), and the rows it returned."""

    rowcount: int
    rows: list[tuple[Any, ...]]


class Session(Protocol):
    """One connection, lent to the store for one operation, in autocommit mode."""

    @property
    def in_transaction(self) -> bool:
        """True while a transaction is open."""
        ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        """Run one statement; what it did."""
        ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per row of parameters."""
        ...


@attrs.frozen
class Dialect:
    """What differs between the databases; statements are written with ``?`` placeholders."""

    #: The placeholder the driver takes (``?`` or ``%s``).
    placeholder: str
    #: The type of the JSON columns, and how the key column is declared (its collation: keys
    #: are ordered by code point, as Python orders str).
    json_type: str
    key_type: str
    #: Appended to ``CREATE TABLE`` of the documents' tables.
    table_options: str
    #: Begins a transaction that writes (SQLite: takes the write lock at once).
    begin: str
    #: Appended to a SELECT that reads a row the transaction then writes.
    for_update: str
    #: A JSON parameter, and a JSON column read as text.
    json_param: str
    json_text: str
    #: Statements creating the revision counter, and those drawing from it (the last one
    #: answers the next revision).
    counter_schema: tuple[str, ...]
    next_revision: tuple[str, ...]
    #: A statement taking a lock named by its one parameter until the transaction ends; None
    #: where the writing transaction excludes other writers already.
    lock: str | None
    #: Statements pointing the view ``{view}`` at the table ``{table}``.
    replace_view: tuple[str, ...]

    def sql(self, statement: str) -> str:
        """``statement`` with the driver's placeholders."""
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)


def _encode(value: Any, store: str, what: str) -> str:
    try:
        return dumps(value).decode()
    except (TypeError, ValueError, RecursionError) as error:
        raise NotJSON(f"{store}: {what} is not JSON: {error}") from error


def _revision(revision: str | None) -> int | None:
    """A revision this store gave (an int), or None for one it cannot have given."""
    if revision is None or not revision.isascii() or not revision.isdigit():
        return None
    return int(revision)


class SQLReadModelStore(abc.ABC):
    """A :class:`~s3es.readmodels.ReadModelStore` in an SQL database; ``atomic``.

    Subclasses provide :attr:`dialect`, the driver's errors and :meth:`_session`. Every method
    is safe to call from several threads (each adapter says how it shares its connections).
    Failures of the database raise :class:`~s3es.errors.ReadModelStoreError` naming the store
    (:attr:`name`) and the operation.
    """

    atomic = True
    dialect: ClassVar[Dialect]

    def __init__(self, name: str) -> None:
        #: Names the store in errors: the database, without a password.
        self.name = name
        self._schema_ready = False
        #: Tables of documents known to exist (created by this store or found).
        self._tables: set[str] = set()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # What an adapter provides ---------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Close the store's connections; the store cannot be used after."""

    @abc.abstractmethod
    def _session(self) -> AbstractContextManager[Session]:
        """A connection in autocommit mode for one operation, used by one thread at a time."""

    @abc.abstractmethod
    def _is_database_error(self, error: BaseException) -> bool:
        """True for the driver's errors (mapped to ReadModelStoreError)."""

    @abc.abstractmethod
    def _is_undefined_table(self, error: BaseException) -> bool:
        """True for the driver's error on a table that does not exist."""

    # Sessions and transactions --------------------------------------------------------------

    @contextmanager
    def _failures(self, operation: str) -> Iterator[None]:
        """Raise the driver's errors as ReadModelStoreError naming the store and ``operation``."""
        try:
            yield
        except Exception as error:
            if not self._is_database_error(error):
                raise
            detail = f"{type(error).__name__}: {error}".strip()
            raise ReadModelStoreError(self.name, operation, detail) from error

    @contextmanager
    def _connected(self, operation: str) -> Iterator[Session]:
        with self._failures(operation), self._session() as session:
            if not self._schema_ready:
                with self._transaction_on(session):
                    self._create_schema(session)
                self._schema_ready = True
            yield session

    @contextmanager
    def _transaction(self, operation: str) -> Iterator[Session]:
        with self._connected(operation) as session, self._transaction_on(session):
            yield session

    @contextmanager
    def _transaction_on(self, session: Session) -> Iterator[None]:
        """A transaction: committed if the block ends, rolled back if it raises."""
        session.execute(self.dialect.begin)
        try:
            yield
            session.execute("COMMIT")
        except BaseException as error:
            if session.in_transaction:
                try:
                    session.execute("ROLLBACK")
                except Exception as rollback_error:
                    if not self._is_database_error(rollback_error):
                        raise
                    error.add_note(f"and the rollback failed: {rollback_error}")
            raise

    def _lock_name(self, session: Session, name: str) -> None:
        if self.dialect.lock is not None:
            session.execute(self.dialect.sql(self.dialect.lock), (name,))

    def _create_schema(self, session: Session) -> None:
        json_type = self.dialect.json_type
        self._lock_name(session, "s3es schema")
        for statement in (
            (
                "CREATE TABLE IF NOT EXISTS s3es_generations (projection TEXT PRIMARY KEY, "
                "live_number BIGINT, live_schema BIGINT, live_shards BIGINT, "
                "building_number BIGINT, building_schema BIGINT, building_shards BIGINT, "
                "revision BIGINT NOT NULL)"
            ),
            (
                "CREATE TABLE IF NOT EXISTS s3es_positions (projection TEXT NOT NULL, "
                f"generation BIGINT NOT NULL, stream {self.dialect.key_type} NOT NULL, "
                "version BIGINT NOT NULL, PRIMARY KEY (projection, generation, stream))"
                f"{self.dialect.table_options}"
            ),
            (
                "CREATE TABLE IF NOT EXISTS s3es_shards (projection TEXT NOT NULL, "
                "generation BIGINT NOT NULL, shard INTEGER NOT NULL, shards INTEGER NOT NULL, "
                f"epoch BIGINT NOT NULL, complete INTEGER NOT NULL, cursors {json_type} NOT NULL, "
                "commit_id TEXT NOT NULL, revision BIGINT NOT NULL, "
                "PRIMARY KEY (projection, generation, shard, shards))"
            ),
            (
                "CREATE TABLE IF NOT EXISTS s3es_kinds (projection TEXT PRIMARY KEY, "
                "kind TEXT NOT NULL)"
            ),
            *self.dialect.counter_schema,
        ):
            session.execute(statement)

    def _create_table(self, session: Session, table: str) -> None:
        """Create ``table`` if it does not exist (in the caller's transaction)."""
        self._lock_name(session, table)
        session.execute(
            f"CREATE TABLE IF NOT EXISTS {quote(table)} (key {self.dialect.key_type} PRIMARY KEY, "
            f"body {self.dialect.json_type} NOT NULL, revision BIGINT NOT NULL)"
            f"{self.dialect.table_options}"
        )

    def _next_revision(self, session: Session) -> int:
        result = Result(0, [])
        for statement in self.dialect.next_revision:
            result = session.execute(statement)
        return int(result.rows[0][0])

    # Generations ----------------------------------------------------------------------------

    _GENERATIONS_COLUMNS = (
        "live_number, live_schema, live_shards, building_number, building_schema, "
        "building_shards, revision"
    )

    def check_generation(self, generation: Generation) -> None:
        """InvalidConfiguration if ``generation``'s table name would pass the database's limit."""
        table_name(generation)

    def generations(self, projection: str) -> Generations:
        """The projection's generations record (an empty one if none is stored)."""
        sql_name(projection)
        with self._connected(f"read the generations of {projection!r}") as session:
            rows = session.execute(
                self.dialect.sql(
                    f"SELECT {self._GENERATIONS_COLUMNS}, k.kind FROM s3es_generations g "
                    "LEFT JOIN s3es_kinds k ON k.projection = g.projection WHERE g.projection = ?"
                ),
                (projection,),
            ).rows
        if not rows:
            return Generations(projection)
        *row, kind = rows[0]
        return attrs.evolve(self._generations(projection, tuple(row)), kind=kind)

    @staticmethod
    def _generations(projection: str, row: tuple[Any, ...] | None) -> Generations:
        if row is None:
            return Generations(projection)
        live_number, live_schema, live_shards, number, schema, shards, revision = row
        return Generations(
            projection,
            None
            if live_number is None
            else Generation(projection, live_number, live_schema, live_shards),
            None if number is None else Generation(projection, number, schema, shards),
            str(revision),
        )

    def set_generations(self, record: Generations) -> Generations:
        """Store ``record`` if the stored one still has ``record.revision``; the stored record.

        When ``live`` changes, the projection's view is pointed at the new live generation's
        table (created empty if it does not exist) in the same transaction; with no live
        generation, the view is dropped. Raises ReadModelConflict if another write came first,
        and InvalidConfiguration if another projection has the same SQL name.
        """
        projection = record.projection
        view = sql_name(projection)
        for generation in (record.live, record.building):
            if generation is not None and generation.projection != projection:
                raise InvalidConfiguration(
                    f"{self.name}: the generations of {projection!r} name a generation of "
                    f"{generation.projection!r}"
                )
        live_table = None if record.live is None else table_name(record.live)
        if record.building is not None:
            table_name(record.building)
        expected = _revision(record.revision)
        key = f"generations of {projection}"
        with self._transaction(f"set the generations of {projection!r}") as session:
            rows = session.execute(
                self.dialect.sql(
                    f"SELECT {self._GENERATIONS_COLUMNS} FROM s3es_generations "
                    f"WHERE projection = ?{self.dialect.for_update}"
                ),
                (projection,),
            ).rows
            stored = self._generations(projection, rows[0] if rows else None)
            if stored.revision != record.revision:
                raise ReadModelConflict(self.name, key)
            self._refuse_namesake(session, projection, view)
            revision = self._next_revision(session)
            values = (
                *_generation_columns(record.live),
                *_generation_columns(record.building),
                revision,
            )
            if record.revision is None:
                written = session.execute(
                    self.dialect.sql(
                        f"INSERT INTO s3es_generations (projection, {self._GENERATIONS_COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (projection) DO NOTHING"
                    ),
                    (projection, *values),
                )
            else:
                written = session.execute(
                    self.dialect.sql(
                        "UPDATE s3es_generations SET live_number = ?, live_schema = ?, "
                        "live_shards = ?, building_number = ?, building_schema = ?, "
                        "building_shards = ?, revision = ? "
                        "WHERE projection = ? AND revision = ?"
                    ),
                    (*values, projection, expected),
                )
            if written.rowcount != 1:
                raise ReadModelConflict(self.name, key)
            if record.kind is not None:
                session.execute(
                    self.dialect.sql(
                        "INSERT INTO s3es_kinds (projection, kind) VALUES (?, ?) "
                        "ON CONFLICT (projection) DO UPDATE SET kind = excluded.kind"
                    ),
                    (projection, record.kind),
                )
            if stored.live != record.live:
                self._point_view(session, view, live_table)
        if live_table is not None:
            self._tables.add(live_table)
        return attrs.evolve(record, revision=str(revision))

    def _refuse_namesake(self, session: Session, projection: str, view: str) -> None:
        """InvalidConfiguration if another projection's SQL name is ``view``, whatever the case.

        SQLite's identifiers ignore case (``Totals`` is ``totals``), and PostgreSQL folds the
        unquoted ones: two names that differ only by case are one, on every SQL store, so that
        a projection's tables may move from one to the other. The name is locked first, so
        that two projectors of namesakes wired at once do not both pass.
        """
        folded = view.lower()
        self._lock_name(session, f"s3es name {folded}")
        rows = session.execute(
            self.dialect.sql(
                "SELECT projection FROM s3es_generations WHERE projection <> ? "
                "AND lower(replace(replace(projection, '-', '_'), '.', '_')) = ?"
            ),
            (projection, folded),
        ).rows
        if rows:
            other = rows[0][0]
            raise InvalidConfiguration(
                f"{self.name}: projections {projection!r} and {other!r} have the same SQL name "
                f"({view!r} and {sql_name(other)!r}; SQL names ignore case): rename one"
            )

    def _point_view(self, session: Session, view: str, table: str | None) -> None:
        if table is None:
            session.execute(f"DROP VIEW IF EXISTS {quote(view)}")
            return
        self._create_table(session, table)
        for statement in self.dialect.replace_view:
            session.execute(statement.format(view=quote(view), table=quote(table)))

    # Documents ------------------------------------------------------------------------------

    def get(self, generation: Generation, key: str) -> StoredDocument | None:
        """The document at ``key``, or None (also when the generation has no table yet)."""
        table = table_name(generation)
        if not is_storable_key(key):
            return None  # no document can have it (PostgreSQL could not even compare it)
        body = self.dialect.json_text.format("body")
        with self._connected(f"read {key!r} of {table}") as session:
            rows = self._read(
                session,
                self.dialect.sql(f"SELECT {body}, revision FROM {quote(table)} WHERE key = ?"),
                (key,),
            )
        if not rows:
            return None
        text, revision = rows[0]
        return StoredDocument(key, loads(text), str(revision))

    def get_many(self, generation: Generation, keys: Collection[str]) -> dict[str, StoredDocument]:
        """The documents at ``keys`` that exist: one query per PAGE_SIZE keys."""
        table = table_name(generation)
        body = self.dialect.json_text.format("body")
        wanted = [key for key in dict.fromkeys(keys) if is_storable_key(key)]
        found: dict[str, StoredDocument] = {}
        with self._connected(f"read {len(wanted)} documents of {table}") as session:
            for start in range(0, len(wanted), PAGE_SIZE):
                page = wanted[start : start + PAGE_SIZE]
                marks = ", ".join(["?"] * len(page))
                rows = self._read(
                    session,
                    self.dialect.sql(
                        f"SELECT key, {body}, revision FROM {quote(table)} WHERE key IN ({marks})"
                    ),
                    page,
                )
                for key, text, revision in rows:
                    found[key] = StoredDocument(key, loads(text), str(revision))
        return found

    def documents(self, generation: Generation) -> Iterator[StoredDocument]:
        """Every document of ``generation``, in ascending key order (code points).

        Read :data:`PAGE_SIZE` at a time, each page a query of its own: nothing is held between
        pages, and a document written meanwhile is seen if its key is not yet passed.
        """
        table = table_name(generation)
        body = self.dialect.json_text.format("body")
        columns = f"SELECT key, {body}, revision FROM {quote(table)}"
        first = self.dialect.sql(f"{columns} ORDER BY key LIMIT {PAGE_SIZE}")
        following = self.dialect.sql(f"{columns} WHERE key > ? ORDER BY key LIMIT {PAGE_SIZE}")
        after: str | None = None
        while True:
            with self._connected(f"list the documents of {table}") as session:
                if after is None:
                    rows = self._read(session, first, ())
                else:
                    rows = self._read(session, following, (after,))
            for key, text, revision in rows:
                yield StoredDocument(key, loads(text), str(revision))
            if len(rows) < PAGE_SIZE:
                return
            after = rows[-1][0]

    def _read(self, session: Session, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of a query on a documents' table; none if the table does not exist."""
        try:
            return session.execute(sql, params).rows
        except Exception as error:
            if self._is_undefined_table(error):
                return []
            raise

    # Positions and shard states -------------------------------------------------------------

    def positions(self, generation: Generation, streams: Collection[str]) -> dict[str, int]:
        """The position of each of ``streams`` that has one: one query per PAGE_SIZE streams."""
        table = table_name(generation)
        wanted = list(dict.fromkeys(streams))
        found: dict[str, int] = {}
        with self._connected(f"read the positions of {table}") as session:
            for start in range(0, len(wanted), PAGE_SIZE):
                page = wanted[start : start + PAGE_SIZE]
                marks = ", ".join(["?"] * len(page))
                rows = session.execute(
                    self.dialect.sql(
                        "SELECT stream, version FROM s3es_positions WHERE projection = ? "
                        f"AND generation = ? AND stream IN ({marks})"
                    ),
                    (generation.projection, generation.number, *page),
                ).rows
                found.update((stream, int(version)) for stream, version in rows)
        return found

    _SHARD_COLUMNS = "epoch, complete, cursors, commit_id, revision"

    def shard_state(self, generation: Generation, shard: int, shards: int) -> ShardState | None:
        """The state of shard ``shard`` of ``shards``, or None if it never committed."""
        table = table_name(generation)
        cursors = self.dialect.json_text.format("cursors")
        with self._connected(f"read shard {shard}/{shards} of {table}") as session:
            rows = session.execute(
                self.dialect.sql(
                    f"SELECT epoch, complete, {cursors}, commit_id, revision FROM s3es_shards "
                    "WHERE projection = ? AND generation = ? AND shard = ? AND shards = ?"
                ),
                (generation.projection, generation.number, shard, shards),
            ).rows
        if not rows:
            return None
        epoch, complete, text, commit_id, revision = rows[0]
        return ShardState(
            shard, shards, epoch, bool(complete), loads(text), commit_id, str(revision)
        )

    # Commit ---------------------------------------------------------------------------------

    def commit(
        self,
        generation: Generation,
        changes: Sequence[Change],
        positions: Mapping[str, int],
        state: ShardState,
    ) -> ShardState:
        """Write ``changes``, move ``positions`` and store ``state`` in one transaction.

        Each change is applied if its document still has the revision it names (absent for
        None), in key order; ``positions`` are set to the versions given. Raises
        ReadModelConflict naming the key (a document's, or ``shard i/n``) if a revision moved:
        nothing of the commit is written. Raises UnstorableDocument, before any SQL, for a
        document outside the domain every store keeps (:mod:`s3es._readmodels.values`).
        Returns ``state`` with its new revision.
        """
        table = table_name(generation)
        for change in changes:
            check_document(change.key, change.body)
        bodies = [
            # checked: check_document looked at every body above
            (change, None if change.body is None else dumps(change.body, checked=True).decode())
            for change in sorted(changes, key=lambda change: change.key)
        ]
        cursors = _encode(dict(state.cursors), self.name, f"shard {state.shard}/{state.shards}")
        try:
            with self._transaction(f"commit to {table}") as session:
                revision = self._next_revision(session)
                create = bool(bodies) and table not in self._tables
                if create:
                    self._create_table(session, table)
                for change, body in bodies:
                    self._write(session, table, change, body, revision)
                if positions:
                    session.executemany(
                        self.dialect.sql(
                            "INSERT INTO s3es_positions (projection, generation, stream, version)"
                            " VALUES (?, ?, ?, ?) ON CONFLICT (projection, generation, stream) "
                            "DO UPDATE SET version = excluded.version"
                        ),
                        [
                            (generation.projection, generation.number, stream, version)
                            for stream, version in sorted(positions.items())
                        ],
                    )
                self._write_state(session, generation, state, cursors, revision)
        except BaseException:
            self._tables.discard(table)  # another store may have dropped it: create it again
            raise
        if create:
            self._tables.add(table)
        return attrs.evolve(state, revision=str(revision))

    def _write(
        self, session: Session, table: str, change: Change, body: str | None, revision: int
    ) -> None:
        """Apply one change; ReadModelConflict naming its key if its revision moved."""
        expected = _revision(change.revision)
        if change.revision is not None and expected is None:
            raise ReadModelConflict(self.name, change.key, f"has no revision {change.revision!r}")
        param = self.dialect.json_param
        if body is None and expected is None:
            sql = f"SELECT 1 FROM {quote(table)} WHERE key = ?"
            written = 0 if session.execute(self.dialect.sql(sql), (change.key,)).rows else 1
        elif body is None:
            sql = f"DELETE FROM {quote(table)} WHERE key = ? AND revision = ?"
            written = session.execute(self.dialect.sql(sql), (change.key, expected)).rowcount
        elif expected is None:
            sql = (
                f"INSERT INTO {quote(table)} (key, body, revision) VALUES (?, {param}, ?) "
                "ON CONFLICT (key) DO NOTHING"
            )
            written = session.execute(self.dialect.sql(sql), (change.key, body, revision)).rowcount
        else:
            sql = (
                f"UPDATE {quote(table)} SET body = {param}, revision = ? "
                "WHERE key = ? AND revision = ?"
            )
            params = (body, revision, change.key, expected)
            written = session.execute(self.dialect.sql(sql), params).rowcount
        if written != 1:
            detail = "exists" if expected is None else "changed since it was read"
            raise ReadModelConflict(self.name, change.key, detail)

    def _write_state(
        self,
        session: Session,
        generation: Generation,
        state: ShardState,
        cursors: str,
        revision: int,
    ) -> None:
        expected = _revision(state.revision)
        place = (generation.projection, generation.number, state.shard, state.shards)
        values = (state.epoch, int(state.complete), cursors, state.commit_id, revision)
        param = self.dialect.json_param
        if state.revision is None:
            written = session.execute(
                self.dialect.sql(
                    "INSERT INTO s3es_shards (projection, generation, shard, shards, "
                    f"{self._SHARD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, {param}, ?, ?) "
                    "ON CONFLICT (projection, generation, shard, shards) DO NOTHING"
                ),
                (*place, *values),
            ).rowcount
        elif expected is None:
            written = 0
        else:
            written = session.execute(
                self.dialect.sql(
                    f"UPDATE s3es_shards SET epoch = ?, complete = ?, cursors = {param}, "
                    "commit_id = ?, revision = ? WHERE projection = ? AND generation = ? "
                    "AND shard = ? AND shards = ? AND revision = ?"
                ),
                (*values, *place, expected),
            ).rowcount
        if written != 1:
            raise ReadModelConflict(
                self.name,
                f"shard {state.shard}/{state.shards}",
                f"state of {table_name(generation)} changed since it was read "
                "(another projector committed, or this commit's first answer was lost)",
            )

    # Drop -----------------------------------------------------------------------------------

    def drop(self, generation: Generation) -> None:
        """Drop ``generation``'s table and delete its positions and shard states.

        Raises InvalidConfiguration if ``generation`` is the live one (its view reads it):
        switch ``live`` first.
        """
        table = table_name(generation)
        with self._transaction(f"drop {table}") as session:
            rows = session.execute(
                self.dialect.sql(
                    f"SELECT live_number FROM s3es_generations WHERE projection = ?"
                    f"{self.dialect.for_update}"
                ),
                (generation.projection,),
            ).rows
            if rows and rows[0][0] == generation.number:
                raise InvalidConfiguration(
                    f"{self.name}: generation {generation.number} of {generation.projection!r} "
                    "is live: set another live generation before dropping it"
                )
            self._tables.discard(table)
            self._lock_name(session, table)
            session.execute(f"DROP TABLE IF EXISTS {quote(table)}")
            for bookkeeping in ("s3es_positions", "s3es_shards"):
                session.execute(
                    self.dialect.sql(
                        f"DELETE FROM {bookkeeping} WHERE projection = ? AND generation = ?"
                    ),
                    (generation.projection, generation.number),
                )


def _generation_columns(
    generation: Generation | None,
) -> tuple[int | None, int | None, int | None]:
    if generation is None:
        return (None, None, None)
    return (generation.number, generation.schema, generation.shards)
