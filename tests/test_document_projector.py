"""The document projector on every read-model store: documents, shards, generations, costs.

Each test runs on the S3 store (over the in-memory object store), SQLite and PostgreSQL (a real
server the test session starts). A projection keeps, per counter stream, the ids of the events
applied to it, so that an event applied twice, skipped or out of order shows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import attrs
import boto3
import pytest

from s3es import (
    CommandHandler,
    EventStore,
    InMemoryObjectStore,
    RecordedEvent,
    Repository,
    S3ObjectStore,
)
from s3es.errors import (
    DomainContractError,
    InvalidConfiguration,
    LeaseHeld,
    ObjectStoreError,
)
from s3es.ops import delete, notification_configuration
from s3es.projections import (
    Batching,
    DocumentProjection,
    DocumentProjector,
    DocumentReader,
    Feed,
    LeaseOptions,
    Shards,
    SQSChangeNotifications,
    shard_of,
)
from s3es.readmodels import ReadModelStore, S3ReadModelStore
from s3es.storage import ForwardingObjectStore, ObjectStore
from s3es.testing.embedded_s3 import EmbeddedS3
from tests.aggregates import FAST_RETRY, Counter, Increment, IncrementEach
from tests.consumers_cli_fixtures import CounterIds, Ids


class CounterIdsV2(CounterIds):
    """The same projection after a schema bump."""

    SCHEMA = 2


@attrs.define
class Everything:
    """Every stream's event ids in one document that every shard writes."""

    by_stream: dict[str, list[str]] = attrs.Factory(dict)


class AllIds(DocumentProjection[Everything]):
    """One shared document: shards contend for it."""

    NAME = "all-ids"
    SOURCES: ClassVar[tuple[type[Counter]]] = (Counter,)

    def document_ids(self, event: RecordedEvent[Any]) -> Iterable[str]:
        """Always the one document."""
        return ("all",)

    def initial_state(self, key: str) -> Everything:
        """No event yet."""
        return Everything()

    def evolve(self, document: Everything, event: RecordedEvent[Any]) -> Everything:
        """The event's id appended to its stream's list."""
        document.by_stream.setdefault(str(event.stream), []).append(event.id)
        return document


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


StoreFactory = Callable[[ObjectStore], ReadModelStore]


@pytest.fixture(params=["s3", "sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A factory of one fresh read-model store of each kind, given the event store's objects."""
    if request.param == "s3":
        yield lambda objects: S3ReadModelStore(objects, "p")
    elif request.param == "sqlite":
        from s3es.readmodels import SQLiteReadModelStore  # noqa: PLC0415

        stores: list[Any] = []

        def sqlite(_: ObjectStore) -> ReadModelStore:
            stores.append(SQLiteReadModelStore(tmp_path / "read.db"))
            return stores[-1]  # type: ignore[no-any-return]

        yield sqlite
        for store in stores:
            store.close()
    else:
        from s3es.readmodels import PostgresReadModelStore  # noqa: PLC0415

        conninfo: str = request.getfixturevalue("postgres_conninfo")
        stores = []

        def postgres(_: ObjectStore) -> ReadModelStore:
            stores.append(PostgresReadModelStore(conninfo))
            return stores[-1]  # type: ignore[no-any-return]

        yield postgres
        for store in stores:
            store.close()


@attrs.define
class World:
    """An event store with counters, a read-model store, and what writers were told."""

    objects: InMemoryObjectStore
    events: EventStore
    handler: CommandHandler[Any, Any, Any]
    store: ReadModelStore
    clock: Clock
    acknowledged: dict[str, list[str]] = attrs.Factory(dict)

    def append(self, stream_id: str, *amounts: int) -> None:
        """Store one command per amount on ``stream_id``."""
        for amount in amounts:
            result = self.handler.handle(stream_id, Increment(amount))
            self.acknowledged.setdefault(stream_id, []).extend(r.id for r in result.recorded)

    def projector(self, projection: Any = CounterIds, **options: Any) -> DocumentProjector[Any]:
        """A projector of ``projection`` on this world, on the test's clock."""
        options.setdefault("clock", self.clock)
        options.setdefault("lease", LeaseOptions(ttl=10.0))
        return DocumentProjector(self.events, projection, self.store, **options)

    def documents(self, projection: Any = CounterIds) -> dict[str, Any]:
        """The live generation's documents."""
        return dict(DocumentReader(self.store, projection).documents())


@pytest.fixture
def world(make_store: StoreFactory) -> World:
    """A fresh world on the store of the test's parameter."""
    objects = InMemoryObjectStore()
    clock = Clock()
    events = EventStore(objects, prefix="p", feed=True, clock=clock)
    handler = CommandHandler(Repository(events, Counter), FAST_RETRY)
    return World(objects, events, handler, make_store(objects), clock)


def test_a_first_pass_builds_every_document_and_makes_it_live(world: World) -> None:
    """Each stream's document holds its event ids once, in order; readers see generation 1."""
    for n in range(6):
        world.append(f"c{n}", *range(1, n + 2))
    reader = DocumentReader(world.store, CounterIds)
    before = reader.generation
    assert before is None
    assert reader.get("c1") is None  # nothing live before the first build completes
    run = world.projector().catch_up()
    assert run.events == 21
    assert run.passes[0].switched
    live = reader.generation
    assert live is not None
    assert live.number == 1
    assert world.documents() == {k: Ids(v) for k, v in world.acknowledged.items()}
    assert reader.get("c3") == Ids(world.acknowledged["c3"])


def test_later_passes_apply_only_what_is_new(world: World) -> None:
    """With the feed, then with full scans: every event once, whatever the pass."""
    projector = world.projector(feed=True, batching=Batching(commit_every=2))
    world.append("a", 1, 2)
    projector.catch_up()
    world.append("a", 3)
    world.append("b", 4)
    assert projector.catch_up().events == 2
    assert projector.catch_up().events == 0
    assert projector.catch_up(full_scan=True).events == 0
    assert world.documents() == {k: Ids(v) for k, v in world.acknowledged.items()}


def test_a_new_projector_resumes_from_the_stored_positions(world: World) -> None:
    """A restarted process reads positions from the store, not from memory."""
    world.append("a", 1)
    first = world.projector()
    first.catch_up()
    first.release()
    world.append("a", 2)
    world.append("b", 3)
    second = world.projector(lease=LeaseOptions(owner="second", ttl=10.0))
    assert second.catch_up().events == 2
    assert world.documents() == {k: Ids(v) for k, v in world.acknowledged.items()}


def test_deleting_a_stream_removes_its_document(world: World) -> None:
    """``forget`` returns None by default: the document goes; a rebuild does not bring it back."""
    world.append("a", 1)
    world.append("b", 2)
    projector = world.projector()
    projector.catch_up()
    delete(world.handler.repository, "a")
    projector.catch_up(full_scan=True)
    assert set(world.documents()) == {"b"}
    projector.rebuild()
    assert set(world.documents()) == {"b"}


def test_a_failing_apply_commits_nothing_of_its_batch_and_the_next_pass_redoes_it(
    world: World,
) -> None:
    """A failing ``evolve`` parks its event (the stream is held before it, the shard goes on);
    the next pass, once it no longer fails, applies it: nothing is skipped."""
    world.append("a", 1, 2)
    world.append("b", 3)

    class Failing(CounterIds):
        fail = True

        def evolve(self, document: Ids, event: RecordedEvent[Any]) -> Ids:
            if Failing.fail and event.stream.id == "b":
                raise RuntimeError("apply failed")
            return super().evolve(document, event)

    projector = world.projector(Failing, batching=Batching(commit_every=1))
    assert [(p.key, p.version) for p in projector.catch_up().parked] == [("b", 1)]
    Failing.fail = False
    projector.catch_up()
    assert world.documents(Failing) == {k: Ids(v) for k, v in world.acknowledged.items()}


class _FailingPuts(ForwardingObjectStore):
    """Fails the ``n``-th PUT of a read-model object after it: a commit dying half-way."""

    def __init__(self, inner: ObjectStore, fail_at: int) -> None:
        super().__init__(inner)
        self.puts = 0
        self.fail_at = fail_at

    def _count(self, key: str) -> None:
        if "/_readmodels/" in key:
            self.puts += 1
            if self.puts == self.fail_at:
                raise ObjectStoreError("PUT", key, "injected: the process died here")

    def put_if_absent(self, key: str, body: bytes) -> str:
        self._count(key)
        return super().put_if_absent(key, body)

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        self._count(key)
        return super().replace(key, body, etag=etag)


@pytest.mark.parametrize("fail_at", range(2, 12))
def test_an_s3_commit_that_dies_half_way_is_made_whole_without_applying_twice(
    fail_at: int,
) -> None:
    """Documents written before the failure carry their applied versions: read again, their
    events are skipped; the others are applied once."""
    objects = InMemoryObjectStore()
    events = EventStore(objects, prefix="p", feed=True)
    handler = CommandHandler(Repository(events, Counter), FAST_RETRY)
    acknowledged: dict[str, list[str]] = {}
    for n in range(4):
        for amount in (1, 2):
            result = handler.handle(f"c{n}", Increment(amount))
            acknowledged.setdefault(f"c{n}", []).extend(r.id for r in result.recorded)
    failing = _FailingPuts(objects, fail_at)
    store = S3ReadModelStore(failing, "p")
    projector = DocumentProjector(events, CounterIds, store, batching=Batching(commit_every=3))
    try:
        projector.catch_up()
    except ObjectStoreError:
        projector.catch_up()
    assert dict(DocumentReader(store, CounterIds).documents()) == {
        k: Ids(v) for k, v in acknowledged.items()
    }


def test_a_schema_bump_builds_beside_the_live_generation(world: World) -> None:
    """Readers keep generation 1 until generation 2 is complete; then 1 is dropped."""
    world.append("a", 1)
    world.projector().catch_up()
    world.append("a", 2)
    bumped = world.projector(
        CounterIdsV2, shards=Shards(2, ids=[0]), lease=LeaseOptions(owner="new", ttl=10.0)
    )
    half = bumped.catch_up()
    assert not half.passes[0].switched
    live = DocumentReader(world.store, CounterIds)
    assert live.generation is not None
    assert live.generation.number == 1
    assert live.get("a") == Ids(world.acknowledged["a"][:1])  # the old one, complete
    other = world.projector(
        CounterIdsV2, shards=Shards(2, ids=[1]), lease=LeaseOptions(owner="new-too", ttl=10.0)
    )
    assert other.catch_up().passes[0].switched
    new = DocumentReader(world.store, CounterIdsV2)
    assert new.generation is not None
    assert new.generation.number == 2
    assert new.generation.schema == 2
    assert new.get("a") == Ids(world.acknowledged["a"])
    old_generation = attrs.evolve(new.generation, number=1, schema=1)
    assert list(world.store.documents(old_generation)) == []


def test_a_rebuild_never_shows_readers_an_incomplete_model(world: World) -> None:
    """While a rebuild runs (here: one shard of two done), readers see the old generation."""
    for n in range(8):
        world.append(f"c{n}", 1)
    first = world.projector(shards=2)
    first.catch_up()
    first.release()
    expected = {k: Ids(v) for k, v in world.acknowledged.items()}
    first_half = world.projector(
        shards=Shards(2, ids=[0]), lease=LeaseOptions(owner="rebuilder", ttl=10.0)
    )
    seen: list[dict[str, Any]] = []
    first_half.rebuild(progress=lambda _done, _of: seen.append(world.documents()))
    assert all(documents == expected for documents in seen)
    assert world.documents() == expected
    world.projector(
        shards=Shards(2, ids=[1]), lease=LeaseOptions(owner="other", ttl=10.0)
    ).catch_up()
    reader = DocumentReader(world.store, CounterIds)
    assert reader.generation is not None
    assert reader.generation.number == 2
    assert world.documents() == expected


def test_shards_split_the_streams_and_build_what_one_projector_builds(world: World) -> None:
    """Four projectors, one shard each, in threads: the same documents as one projector's."""
    for n in range(24):
        world.append(f"c{n}", 1, 2)
    projectors = [
        world.projector(
            shards=Shards(4, ids=[s]),
            lease=LeaseOptions(owner=f"shard-{s}", ttl=10.0),
            batching=Batching(commit_every=3),
        )
        for s in range(4)
    ]
    threads = [threading.Thread(target=p.catch_up) for p in projectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert world.documents() == {k: Ids(v) for k, v in world.acknowledged.items()}
    streams = {
        s: sorted(k for k in world.acknowledged if shard_of(f"counter/{k}", 4) == s)
        for s in range(4)
    }
    assert all(streams.values())  # every shard had streams of its own


def test_shards_contending_for_one_document_apply_each_event_once(world: World) -> None:
    """A document that every shard writes: refused commits are folded again, nothing lost."""
    for n in range(16):
        world.append(f"c{n}", 1)
    projectors = [
        world.projector(
            AllIds,
            shards=Shards(4, ids=[s]),
            lease=LeaseOptions(owner=f"s{s}", ttl=10.0),
            batching=Batching(commit_every=1),
        )
        for s in range(4)
    ]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run(projector: DocumentProjector[Any]) -> None:
        barrier.wait()
        try:
            projector.catch_up()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(p,)) for p in projectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    (document,) = world.documents(AllIds).values()
    assert document.by_stream == {f"counter/{k}": v for k, v in world.acknowledged.items()}


def test_a_held_shard_is_left_to_its_holder(world: World) -> None:
    """LeaseHeld when every shard is held elsewhere; else the held ones are reported."""
    world.append("a", 1)
    holder = world.projector(
        shards=Shards(2, ids=[0]), lease=LeaseOptions(owner="holder", ttl=10.0)
    )
    holder.catch_up()
    with pytest.raises(LeaseHeld):
        world.projector(
            shards=Shards(2, ids=[0]), lease=LeaseOptions(owner="other", ttl=10.0)
        ).catch_up()
    both = world.projector(shards=2, lease=LeaseOptions(owner="both", ttl=10.0)).catch_up()
    assert both.held_elsewhere == (0,)
    assert [p.shard for p in both.passes] == [1]


def test_a_paused_projector_is_fenced_by_its_successor(world: World) -> None:
    """Its lease expired while it paused; the successor's epoch fences its commit."""
    world.append("a", 1)
    paused = world.projector(lease=LeaseOptions(owner="paused", ttl=10.0))
    paused.catch_up()
    world.append("a", 2)
    world.clock.now += 11  # the lease expires
    successor = world.projector(lease=LeaseOptions(owner="successor", ttl=10.0))
    assert successor.catch_up().events == 1
    world.append("a", 3)
    # The paused one still believes its lease good (its clock says so), and commits.
    world.clock.now -= 11
    run = paused.catch_up()
    assert run.fenced == (0,)
    assert run.passes == ()
    world.clock.now += 11
    successor.catch_up()
    assert world.documents() == {"a": Ids(world.acknowledged["a"])}


def test_idle_and_one_event_passes_cost_the_same_at_any_number_of_streams() -> None:
    """On S3: requests of a warm projector's passes do not grow with the streams."""
    costs = []
    for streams in (10, 200):
        objects = InMemoryObjectStore()
        events = EventStore(objects, prefix="p", feed=True)
        handler = CommandHandler(Repository(events, Counter))
        for n in range(streams):
            handler.handle(f"c{n}", Increment(1))
        projector = DocumentProjector(
            events, CounterIds, S3ReadModelStore(objects, "p"), feed=Feed(lookback=0)
        )
        projector.catch_up()
        handler.handle("c1", Increment(2))
        one = projector.catch_up()
        idle = projector.catch_up()
        costs.append((one.events, one.requests, idle.requests))
    assert costs[0] == costs[1]
    _, one_event, idle_requests = costs[0]
    assert (idle_requests.list, idle_requests.get, idle_requests.put) == (1, 1, 0)
    assert one_event.put == 3  # the document, the stream's position, the shard's state


def test_bad_configuration_names_what_is_wrong(world: World) -> None:
    """Shards, shard ids, the document type, apply's return and document keys are checked."""
    with pytest.raises(InvalidConfiguration, match=r"Shards\.count must be an int >= 1, not 0"):
        world.projector(shards=0)
    with pytest.raises(
        InvalidConfiguration, match=r"Shards\.ids must be .* range\(0, 2\), not \(2,\)"
    ):
        world.projector(shards=Shards(2, ids=[2]))

    class Untyped(DocumentProjection):  # type: ignore[type-arg]
        NAME = "untyped"
        SOURCES = (Counter,)

        def initial_state(self, key: str) -> Any:
            return {}

        def evolve(self, document: Any, event: RecordedEvent[Any]) -> Any:
            return document

    with pytest.raises(InvalidConfiguration, match="Untyped: no document type"):
        world.projector(Untyped)

    class ForgetsReturn(CounterIds):
        def evolve(self, document: Ids, event: RecordedEvent[Any]) -> Ids:
            document.ids.append(event.id)
            return None  # type: ignore[return-value]

    world.append("a", 1)
    with pytest.raises(DomainContractError, match=r"ForgetsReturn.evolve returned None.*'a'"):
        world.projector(ForgetsReturn).catch_up()

    class EmptyKey(CounterIds):
        NAME = "empty-key"

        def document_ids(self, event: RecordedEvent[Any]) -> Iterable[str]:
            return ("",)

    with pytest.raises(DomainContractError, match=r"EmptyKey\.document_ids gave ''"):
        world.projector(EmptyKey).catch_up()


def test_s3_event_notifications_drive_the_passes_and_the_scan_stays_the_net(
    embedded_s3: EmbeddedS3,
) -> None:
    """With S3 → SQS notifications as the feed: passes read the streams announced (no feed
    object is written), acknowledge them after the commit, and a full scan still finds a
    chunk whose notification never came."""
    session = boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto accepts any
        region_name="us-east-1",
    )
    s3: Any = session.client("s3", endpoint_url=embedded_s3.endpoint_url)
    sqs: Any = session.client("sqs", endpoint_url=embedded_s3.endpoint_url)
    s3.create_bucket(Bucket="notified-projection")
    queue_url = sqs.create_queue(QueueName="notified-projection")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket="notified-projection",
        NotificationConfiguration=notification_configuration(queue_arn, "p"),
    )
    objects = S3ObjectStore(s3, "notified-projection")
    events = EventStore(objects, prefix="p")
    handler = CommandHandler(Repository(events, Counter), FAST_RETRY)
    notifications = SQSChangeNotifications(queue_url, events.keys, client=sqs)
    store = S3ReadModelStore(objects, "p")
    projector = DocumentProjector(events, CounterIds, store, feed=notifications)
    acknowledged: dict[str, list[str]] = {}

    def append(stream_id: str) -> None:
        result = handler.handle(stream_id, Increment(1))
        acknowledged.setdefault(stream_id, []).extend(r.id for r in result.recorded)

    append("a")
    assert projector.catch_up().passes[0].full_scan  # the first pass scans
    append("a")
    append("b")
    run = projector.catch_up()
    assert not run.passes[0].full_scan
    assert run.events == 2
    assert projector.catch_up().events == 0  # acknowledged: not delivered again
    # A chunk stored behind S3's back (no notification): only the next scan finds it.
    s3.put_bucket_notification_configuration(
        Bucket="notified-projection", NotificationConfiguration={}
    )
    append("c")
    assert projector.catch_up().events == 0
    assert projector.catch_up(full_scan=True).events == 1
    assert dict(DocumentReader(store, CounterIds).documents()) == {
        k: Ids(v) for k, v in acknowledged.items()
    }


def test_every_event_of_one_append_reaches_its_documents(world: World) -> None:
    """A command that records several events stores them as one version: each is applied."""
    result = world.handler.handle("a", IncrementEach((1, 2, 3)))
    world.acknowledged["a"] = [r.id for r in result.recorded]
    world.projector(AllIds).catch_up()
    world.projector().catch_up()
    assert world.documents() == {"a": Ids(world.acknowledged["a"])}
    (everything,) = world.documents(AllIds).values()
    assert everything.by_stream == {"counter/a": world.acknowledged["a"]}
