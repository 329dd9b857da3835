"""A consumer's NAME is its own: a reactor and a document projection may not share one.

Both keep a generations record, positions and shard states under their NAME in a read-model
store, and leases under it in the event store's bucket. A reactor named as a projection would
read the projection's positions as its own and never react (0 of 5 effects, silently); two
consumers of one name in two stores would take each other's leases. Both are refused, with
an error naming the two kinds and the name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from s3es import CommandHandler, EventStore, InMemoryObjectStore, Repository, StreamName
from s3es.errors import InvalidConfiguration
from s3es.projections import DocumentProjector, LeaseOptions
from s3es.reactors import ReactorRunner
from s3es.readmodels import ReadModelStore, S3ReadModelStore, SQLiteReadModelStore
from s3es.storage import ObjectStore
from tests.aggregates import FAST_RETRY, Counter, Increment
from tests.conftest import new_postgres_schema
from tests.consumers_cli_fixtures import CounterIds, Mirror


class Namesake(Mirror):
    """The mirror reactor, named as the counter-ids projection."""

    NAME = CounterIds.NAME


@pytest.fixture(params=["s3", "sqlite", "postgres"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[ObjectStore, str], ReadModelStore]]:
    """A factory of read-model stores of the test's kind: one per (objects, name) given."""
    with contextlib.ExitStack() as stores:

        def make(objects: ObjectStore, name: str) -> ReadModelStore:
            if request.param == "s3":
                return S3ReadModelStore(objects, f"p/{name}")
            if request.param == "sqlite":
                return stores.enter_context(SQLiteReadModelStore(tmp_path / f"{name}.db"))
            from s3es.readmodels import PostgresReadModelStore  # noqa: PLC0415

            uri: str = request.getfixturevalue("postgres_uri")
            conninfo = new_postgres_schema(uri)  # a schema per name: stores apart
            return stores.enter_context(PostgresReadModelStore(conninfo))

        yield make


def _events(
    objects: InMemoryObjectStore | None = None, prefix: str = "p"
) -> tuple[InMemoryObjectStore, EventStore]:
    """Counters c-0 to c-4 of one increment each, under ``prefix`` of ``objects``."""
    objects = objects or InMemoryObjectStore()
    events = EventStore(objects, prefix=prefix)
    handler = CommandHandler(Repository(events, Counter), FAST_RETRY)
    for number in range(5):
        handler.handle(f"c-{number}", Increment(1))
    return objects, events


class TestOneStore:
    def test_a_reactor_named_as_a_projection_is_refused(
        self, make_store: Callable[[ObjectStore, str], ReadModelStore]
    ) -> None:
        """The projection ran first: the reactor's pass raises, naming both, and writes
        nothing; the projection's documents stay. (The reactor reads events of its own, so
        that the leases do not tell first.)"""
        objects, events = _events()
        store = make_store(objects, "one")
        DocumentProjector(events, CounterIds, store).catch_up()
        _, events = _events(objects, "q")
        runner = ReactorRunner(events, Namesake, store)
        with pytest.raises(InvalidConfiguration) as refused:
            runner.catch_up()
        message = str(refused.value)
        assert "reactor 'counter-ids'" in message
        assert "a projection" in message
        assert "rename one" in message
        assert not events.version(StreamName(Counter.STREAM_TYPE, "mirror-c-0"))
        assert store.generations("counter-ids").live is not None

    def test_a_projection_named_as_a_reactor_is_refused(
        self, make_store: Callable[[ObjectStore, str], ReadModelStore]
    ) -> None:
        """The reactor ran first: the projector's pass, and its rebuild, raise."""
        objects, events = _events()
        store = make_store(objects, "one")
        ReactorRunner(events, Namesake, store).catch_up()
        _, events = _events(objects, "q")
        projector = DocumentProjector(events, CounterIds, store, lease=LeaseOptions(owner="other"))
        with pytest.raises(InvalidConfiguration, match=r"projection 'counter-ids'.*a reactor"):
            projector.catch_up()
        with pytest.raises(InvalidConfiguration, match="a reactor"):
            projector.rebuild()


class TestTwoStores:
    def test_their_leases_tell_them_apart(
        self, make_store: Callable[[ObjectStore, str], ReadModelStore]
    ) -> None:
        """A reactor and a projection of one name, each in a store of its own, share the
        leases in the event store's bucket: the second to take one is refused."""
        objects, events = _events()
        DocumentProjector(events, CounterIds, make_store(objects, "one")).catch_up()
        runner = ReactorRunner(events, Namesake, make_store(objects, "two"))
        with pytest.raises(
            InvalidConfiguration,
            match=r"reactor counter-ids shard 0 of 1: lease .* belongs to a projection",
        ):
            runner.catch_up()
