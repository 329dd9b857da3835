# ruff: noqa: S608 - the SQL here names the tables and views the stores made
"""The SQLite and PostgreSQL read-model stores: names, atomic commits, the view, failures.

What every store promises is tested by the contract suite (test_readmodel_contract_sql.py);
here, what the SQL stores add: one transaction per commit, revisions that never repeat, the
view SQL readers query following the live generation, and database failures named.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest

from s3es._readmodels.port import Change, Generation, Generations, ShardState
from s3es._readmodels.postgres import PostgresReadModelStore
from s3es._readmodels.sql import PAGE_SIZE, SQLReadModelStore, sql_name, table_name
from s3es._readmodels.sqlite import SQLiteReadModelStore
from s3es.errors import InvalidConfiguration, ReadModelConflict, ReadModelStoreError

PROJECTION = "order-lines.v2"
VIEW = "order_lines_v2"
FIRST = Generation(PROJECTION, 1, 1)
SECOND = Generation(PROJECTION, 2, 1)


@attrs.define
class Database:
    """One database, the stores made on it, and plain SQL on it as another program would."""

    kind: str
    make: Callable[[], SQLReadModelStore]
    query: Callable[[str], list[tuple[Any, ...]]]
    #: SQL selecting the document's field "n" from a body column, as a reader writes it.
    field_n: str
    stores: list[SQLReadModelStore] = attrs.field(factory=list)

    def fields(self, sql: str) -> list[tuple[str, str]]:
        """``SELECT key, <a field> ...``'s rows, the field as text (SQLite's ->> keeps types)."""
        return [(key, str(value)) for key, value in self.query(sql)]

    def store(self) -> SQLReadModelStore:
        store = self.make()
        self.stores.append(store)
        return store


def _sqlite(path: Path) -> Database:
    def query(sql: str) -> list[tuple[Any, ...]]:
        connection = sqlite3.connect(path)
        try:
            cursor = connection.execute(sql)
            return cursor.fetchall() if cursor.description is not None else []
        finally:
            connection.close()

    return Database("sqlite", lambda: SQLiteReadModelStore(path), query, "body ->> '$.n'")


def _postgres(conninfo: str) -> Database:
    def query(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            cursor = connection.execute(sql)
            return cursor.fetchall() if cursor.description is not None else []

    return Database("postgres", lambda: PostgresReadModelStore(conninfo), query, "body ->> 'n'")


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        made = _sqlite(tmp_path / "read-models.db")
    else:
        made = _postgres(request.getfixturevalue("postgres_conninfo"))
    yield made
    for store in made.stores:
        store.close()


@pytest.fixture
def store(database: Database) -> SQLReadModelStore:
    return database.store()


def state(revision: str | None = None, *, shard: int = 0, shards: int = 1) -> ShardState:
    return ShardState(shard, shards, epoch=1, commit_id="c", revision=revision)


def commit(
    store: SQLReadModelStore,
    generation: Generation,
    changes: list[Change],
    positions: dict[str, int] | None = None,
    *,
    shard: int = 0,
    shards: int = 1,
) -> ShardState:
    current = store.shard_state(generation, shard, shards)
    revision = None if current is None else current.revision
    return store.commit(
        generation, changes, positions or {}, state(revision, shard=shard, shards=shards)
    )


def write(store: SQLReadModelStore, generation: Generation, key: str, body: Any) -> str:
    """Write ``body`` at ``key`` from what is stored now; the new revision."""
    current = store.get(generation, key)
    commit(store, generation, [Change(key, body, None if current is None else current.revision)])
    stored = store.get(generation, key)
    assert stored is not None
    return stored.revision


class TestNames:
    """Projections map to SQL names that readers can type, or are refused."""

    def test_mapping(self) -> None:
        """'-' and '.' become '_'; a generation's table adds __g and its number."""
        assert sql_name(PROJECTION) == VIEW
        assert table_name(SECOND) == f"{VIEW}__g2"

    @pytest.mark.parametrize(
        "projection",
        [
            "",
            "1st",
            "with space",
            "a/b",
            "caf\u00e9",
            'quo"te',
            "s3es-positions",
            "sqlite_x",
            "x__g1",
        ],
    )
    def test_refused(self, store: SQLReadModelStore, projection: str) -> None:
        """A name with no safe SQL name is refused before any SQL, naming the projection."""
        with pytest.raises(InvalidConfiguration) as raised:
            store.generations(projection)
        assert repr(projection) in str(raised.value)
        with pytest.raises(InvalidConfiguration):
            store.get(Generation(projection, 1, 1), "key")

    def test_too_long(self, store: SQLReadModelStore) -> None:
        """A table name past PostgreSQL's 63 characters is refused, on SQLite too."""
        with pytest.raises(InvalidConfiguration, match="longer than 63"):
            commit(store, Generation("p" * 60, 1, 1), [])

    def test_namesakes_refused(self, store: SQLReadModelStore) -> None:
        """Two projections with one SQL name cannot both have generations in one database."""
        store.set_generations(Generations("order-lines", building=Generation("order-lines", 1, 1)))
        with pytest.raises(InvalidConfiguration, match=r"'order\.lines' and 'order-lines'"):
            store.set_generations(
                Generations("order.lines", building=Generation("order.lines", 1, 1))
            )
        assert store.generations("order.lines") == Generations("order.lines")

    @pytest.mark.parametrize(
        ("first", "second"),
        [("Totals", "totals"), ("Order-Lines", "order_lines"), ("a.B", "A-b")],
    )
    def test_namesakes_refused_whatever_the_case(
        self, database: Database, first: str, second: str
    ) -> None:
        """SQLite's identifiers ignore case: two projections whose SQL names differ only by
        case would share one table there. Refused on every SQL store, naming both, by another
        store on the same database too; the first keeps its documents to itself.
        """
        store = database.store()
        store.set_generations(Generations(first, live=Generation(first, 1, 1)))
        commit(store, Generation(first, 1, 1), [Change("doc", {"n": 1}, None)])
        for clashing in (store, database.store()):
            with pytest.raises(InvalidConfiguration) as raised:
                clashing.set_generations(Generations(second, live=Generation(second, 1, 1)))
            assert repr(first) in str(raised.value)
            assert repr(second) in str(raised.value)
        assert store.generations(second) == Generations(second)
        assert [document.key for document in store.documents(Generation(first, 1, 1))] == ["doc"]

    def test_store_names(self, tmp_path: Path, postgres_conninfo: str) -> None:
        """A store's name says which database, without user or password."""
        with SQLiteReadModelStore(tmp_path / "x.db") as sqlite_store:
            assert sqlite_store.name == f"sqlite:{tmp_path / 'x.db'}"
        conninfo = psycopg.conninfo.make_conninfo(postgres_conninfo, password="s3cret", port=5432)  # noqa: S106
        with PostgresReadModelStore(conninfo) as postgres_store:
            assert postgres_store.name.startswith("postgresql:/")
            assert postgres_store.name.endswith(":5432/postgres")
            assert "s3cret" not in repr(postgres_store)


class TestCommit:
    """A commit is one transaction; revisions never repeat."""

    def test_conflict_rolls_back_everything(self, store: SQLReadModelStore) -> None:
        """A stale change after good ones: ReadModelConflict naming its key, and the documents
        before it, the positions and the shard state are as they were."""
        stale = write(store, FIRST, "taken", {"n": 1})
        taken = write(store, FIRST, "taken", {"n": 2})
        before = store.shard_state(FIRST, 0, 1)
        assert before is not None
        changes = [
            Change("a-new", {"n": 1}, None),
            Change("taken", {"n": 3}, stale),
            Change("z-new", {"n": 1}, None),
        ]
        with pytest.raises(ReadModelConflict) as raised:
            store.commit(FIRST, changes, {"order/1": 4}, state(before.revision))
        assert raised.value.key == "taken"
        assert store.name in str(raised.value)
        assert [(d.key, d.revision) for d in store.documents(FIRST)] == [("taken", taken)]
        assert store.positions(FIRST, ["order/1"]) == {}
        assert store.shard_state(FIRST, 0, 1) == before

    def test_state_conflict_rolls_back_documents(self, store: SQLReadModelStore) -> None:
        """A fenced projector's commit (its state's revision replaced) writes no document."""
        fenced = store.commit(FIRST, [], {}, state())
        store.commit(FIRST, [], {}, state(fenced.revision))
        with pytest.raises(ReadModelConflict, match="shard 0/1"):
            store.commit(FIRST, [Change("doc", {}, None)], {"order/1": 1}, state(fenced.revision))
        assert store.get(FIRST, "doc") is None
        assert store.positions(FIRST, ["order/1"]) == {}

    def test_first_commit_conflict_leaves_no_table(
        self, database: Database, store: SQLReadModelStore
    ) -> None:
        """The table a first commit creates is rolled back with it."""
        store.commit(SECOND, [], {}, state())  # a shard's state: no table of documents yet
        with pytest.raises(ReadModelConflict):
            store.commit(SECOND, [Change("doc", {}, None)], {}, state())
        with pytest.raises(Exception, match=f"{VIEW}__g2"):
            database.query(f"SELECT key FROM {VIEW}__g2")

    def test_insert_update_delete(self, store: SQLReadModelStore) -> None:
        """A change from absence inserts (conflicts if present); one from a revision updates or
        deletes (conflicts if it moved); a delete from absence checks the key is absent."""
        first = write(store, FIRST, "doc", {"n": 1})
        with pytest.raises(ReadModelConflict, match="exists"):
            commit(store, FIRST, [Change("doc", {"n": 9}, None)])
        with pytest.raises(ReadModelConflict, match="exists"):
            commit(store, FIRST, [Change("doc", None, None)])
        second = write(store, FIRST, "doc", {"n": 2})
        with pytest.raises(ReadModelConflict):
            commit(store, FIRST, [Change("doc", None, first)])
        commit(store, FIRST, [Change("doc", None, second)])
        assert store.get(FIRST, "doc") is None
        commit(store, FIRST, [Change("doc", None, None)])
        assert list(store.documents(FIRST)) == []

    def test_revisions_never_repeat(self, store: SQLReadModelStore) -> None:
        """A document deleted and written again has a new revision: a stale reader of the old
        one conflicts (no ABA)."""
        old = write(store, FIRST, "doc", {"n": 1})
        commit(store, FIRST, [Change("doc", None, old)])
        new = write(store, FIRST, "doc", {"n": 1})
        assert new != old
        with pytest.raises(ReadModelConflict):
            commit(store, FIRST, [Change("doc", {"n": 2}, old)])

    def test_foreign_revision_conflicts(self, store: SQLReadModelStore) -> None:
        """A revision this store never gave (an S3 ETag) is a conflict, not a crash."""
        write(store, FIRST, "doc", {"n": 1})
        with pytest.raises(ReadModelConflict, match="doc"):
            commit(store, FIRST, [Change("doc", {"n": 2}, '"9b2cf535f27731c974343645a3985328"')])
        with pytest.raises(ReadModelConflict, match="shard 0/1"):
            store.commit(FIRST, [], {}, state('"etag"'))

    def test_two_threads_two_stores_one_document(self, database: Database) -> None:
        """Two stores on one database (two connections), each on a thread, change one document
        from the same revision at once: exactly one commit lands, the other conflicts."""
        stores = [database.store(), database.store()]
        revision = write(stores[0], FIRST, "doc", {"n": 0})
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def work(number: int) -> None:
            change = Change("doc", {"n": number + 1}, revision)
            barrier.wait()
            try:
                stores[number].commit(
                    FIRST, [change], {f"order/{number}": 1}, state(shard=number, shards=2)
                )
            except ReadModelConflict as conflict:
                outcomes.append(f"conflict {conflict.key}")
            else:
                outcomes.append(f"won {number}")

        threads = [threading.Thread(target=work, args=(number,)) for number in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        conflicted, won = sorted(outcomes)
        assert conflicted == "conflict doc"
        winner = int(won.removeprefix("won "))
        stored = stores[1].get(FIRST, "doc")
        assert stored is not None
        assert stored.body == {"n": winner + 1}
        assert stores[1].positions(FIRST, ["order/0", "order/1"]) == {f"order/{winner}": 1}

    def test_documents_page_by_page(self, store: SQLReadModelStore) -> None:
        """More documents than a page are listed in key order, none twice, none missed."""
        keys = [f"doc-{number}" for number in range(PAGE_SIZE * 2 + 7)]
        commit(store, FIRST, [Change(key, {"n": 1}, None) for key in keys])
        assert [document.key for document in store.documents(FIRST)] == sorted(keys)


class TestView:
    """SQL readers query the view named after the projection: the live generation's table."""

    def test_view_follows_the_switch(self, database: Database, store: SQLReadModelStore) -> None:
        """The view reads the live generation; building the next one beside it changes nothing
        readers see until the switch, which re-points the view in the same transaction."""
        record = store.set_generations(Generations(PROJECTION, building=FIRST))
        commit(store, FIRST, [Change("a", {"n": 1}, None), Change("b", {"n": 2}, None)])
        record = store.set_generations(Generations(PROJECTION, FIRST, None, record.revision))
        sql = f"SELECT key, {database.field_n} FROM {VIEW} ORDER BY key"
        assert database.fields(sql) == [("a", "1"), ("b", "2")]
        record = store.set_generations(Generations(PROJECTION, FIRST, SECOND, record.revision))
        commit(store, SECOND, [Change("a", {"n": 10}, None), Change("c", {"n": 30}, None)])
        assert database.fields(sql) == [("a", "1"), ("b", "2")]
        store.set_generations(Generations(PROJECTION, SECOND, None, record.revision))
        assert database.fields(sql) == [("a", "10"), ("c", "30")]
        store.drop(FIRST)
        assert database.fields(sql) == [("a", "10"), ("c", "30")]

    def test_conflicting_switch_keeps_the_view(
        self, database: Database, store: SQLReadModelStore
    ) -> None:
        """A switch from a stale revision conflicts and leaves the view where it was."""
        record = store.set_generations(Generations(PROJECTION, live=FIRST))
        commit(store, FIRST, [Change("a", {"n": 1}, None)])
        store.set_generations(Generations(PROJECTION, FIRST, SECOND, record.revision))
        with pytest.raises(ReadModelConflict, match=PROJECTION):
            store.set_generations(Generations(PROJECTION, SECOND, None, record.revision))
        assert database.query(f"SELECT key FROM {VIEW}") == [("a",)]

    def test_live_generation_with_no_commit(
        self, database: Database, store: SQLReadModelStore
    ) -> None:
        """A generation set live before any commit gets an empty table, so the view reads."""
        store.set_generations(Generations(PROJECTION, live=FIRST))
        assert database.query(f"SELECT key FROM {VIEW}") == []
        assert list(store.documents(FIRST)) == []

    def test_no_live_generation_drops_the_view(
        self, database: Database, store: SQLReadModelStore
    ) -> None:
        """A record with no live generation leaves readers no view to read a stale one from."""
        record = store.set_generations(Generations(PROJECTION, live=FIRST))
        store.set_generations(Generations(PROJECTION, None, SECOND, record.revision))
        with pytest.raises(Exception, match=VIEW):
            database.query(f"SELECT key FROM {VIEW}")

    def test_live_generation_cannot_be_dropped(self, store: SQLReadModelStore) -> None:
        """Dropping the generation readers see is refused, naming it; nothing is dropped."""
        store.set_generations(Generations(PROJECTION, live=FIRST))
        commit(store, FIRST, [Change("a", {"n": 1}, None)], {"order/1": 1})
        with pytest.raises(InvalidConfiguration, match=f"generation 1 of '{PROJECTION}' is live"):
            store.drop(FIRST)
        assert [document.key for document in store.documents(FIRST)] == ["a"]
        assert store.positions(FIRST, ["order/1"]) == {"order/1": 1}


class TestFailures:
    """Database failures raise ReadModelStoreError naming the store and the operation."""

    def test_sqlite_unreachable(self, tmp_path: Path) -> None:
        """A database file that cannot be opened."""
        with (
            SQLiteReadModelStore(tmp_path / "missing" / "x.db") as store,
            pytest.raises(ReadModelStoreError) as raised,
        ):
            store.generations(PROJECTION)
        assert raised.value.store == f"sqlite:{tmp_path / 'missing' / 'x.db'}"
        assert "read the generations of 'order-lines.v2'" in str(raised.value)
        assert isinstance(raised.value.__cause__, sqlite3.Error)

    def test_postgres_unreachable(self, tmp_path: Path) -> None:
        """A server that is not there."""
        with (
            PostgresReadModelStore(f"host={tmp_path} dbname=app user=u password=pw") as store,
            pytest.raises(ReadModelStoreError) as raised,
        ):
            store.get(FIRST, "doc")
        assert raised.value.store == f"postgresql:{tmp_path}/app"
        assert raised.value.operation == f"read 'doc' of {VIEW}__g1"
        assert "pw" not in raised.value.store
        assert isinstance(raised.value.__cause__, psycopg.Error)

    def test_table_dropped_underneath(self, database: Database, store: SQLReadModelStore) -> None:
        """A table dropped by another program fails the next commit (nothing of it written),
        and the one after creates the table again."""
        commit(store, FIRST, [Change("a", {"n": 1}, None)])
        database.query(f"DROP TABLE {VIEW}__g1")
        with pytest.raises(ReadModelStoreError, match=f"commit to {VIEW}__g1") as raised:
            commit(store, FIRST, [Change("b", {"n": 1}, None)], {"order/1": 1})
        assert raised.value.store == store.name
        assert store.positions(FIRST, ["order/1"]) == {}
        assert store.get(FIRST, "b") is None
        commit(store, FIRST, [Change("b", {"n": 1}, None)], {"order/1": 1})
        assert [document.key for document in store.documents(FIRST)] == ["b"]

    def test_closed_store(self, store: SQLReadModelStore) -> None:
        """A closed store refuses to work, naming itself."""
        store.close()
        with pytest.raises(ReadModelStoreError, match="closed"):
            store.generations(PROJECTION)
