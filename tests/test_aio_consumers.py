"""The asyncio read side: the async document projector and reactor runner agree with the sync ones.

The sync consumers are generated from the async source (tools/async_to_sync.py): these tests run
the source itself. The same events go through an async and a sync projector (each into read
models of its own, on one event store) and must give the same documents with the same requests;
the same script of commands goes through an async and a sync reactor runner (each on an event
store of its own) and must send the same commands with the same requests. On the in-memory
store, on SQLite through the thread adapter, and on aiobotocore over HTTP to moto's server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
from aiobotocore.session import get_session

from s3es import (
    CommandHandler,
    EventStore,
    InMemoryObjectStore,
    RecordedEvent,
    Repository,
    StreamName,
)
from s3es.aio import (
    AsyncCommandHandler,
    AsyncDocumentProjector,
    AsyncDocumentReader,
    AsyncEventStore,
    AsyncInMemoryObjectStore,
    AsyncNotifications,
    AsyncObjectStore,
    AsyncReactorRunner,
    AsyncReadModels,
    AsyncReadModelStore,
    AsyncRepository,
    AsyncS3ObjectStore,
    AsyncS3ReadModelStore,
)
from s3es.errors import LeaseHeld
from s3es.projections import (
    Batching,
    DocumentPass,
    DocumentProjection,
    DocumentProjector,
    DocumentReader,
    LeaseOptions,
    Notified,
    ShardPass,
    Shards,
)
from s3es.reactors import (
    CAUSATION_ID,
    Parked,
    ReactionRetry,
    Reactor,
    ReactorPass,
    ReactorRunner,
    Send,
)
from s3es.readmodels import ReadModelStore, S3ReadModelStore, SQLiteReadModelStore
from s3es.storage import ObjectStore
from s3es.testing import EmbeddedS3
from tests.aggregates import FAST_RETRY, Counter, Decrement, Increment, IncrementEach
from tests.consumers_cli_fixtures import Mirror
from tests.test_reactors import FAST_BACKOFF

_buckets = itertools.count()


@attrs.define
class Tally:
    """A stream's events as applied: their ids and amounts, in order."""

    ids: list[str] = attrs.Factory(list)
    amounts: list[int] = attrs.Factory(list)


class Tallies(DocumentProjection[Tally]):
    """One document per counter stream, and one for every stream's total ("all")."""

    NAME = "tallies"
    SOURCES: ClassVar[tuple[type[Counter]]] = (Counter,)

    def document_ids(self, event: RecordedEvent[Any]) -> Iterable[str]:
        """The stream's document and the shared one."""
        return [event.stream.id, "all"]

    def initial_state(self, key: str) -> Tally:
        """No event yet."""
        return Tally()

    def evolve(self, document: Tally, event: RecordedEvent[Any]) -> Tally:
        """The event's id and amount appended (in place)."""
        document.ids.append(event.id)
        document.amounts.append(getattr(event.event, "amount", 0))
        return document


class AioTallies(Tallies):
    """The same projection under another name: its own lease beside the sync projector's."""

    NAME = "tallies-aio"


def write_script(events: EventStore, streams: int = 12) -> None:
    """Counters moved by single and multi-event appends, some several times."""
    handler = CommandHandler(Repository(events, Counter), FAST_RETRY)
    for n in range(streams):
        handler.handle(f"c-{n}", Increment(n + 1))
        if n % 3 == 0:
            handler.handle(f"c-{n}", IncrementEach((1, 2)))
        if n % 4 == 0:
            handler.handle(f"c-{n}", Decrement(1))


def sync_documents(store: ReadModelStore, projection: type[Tallies] = Tallies) -> dict[str, Tally]:
    """Every document of the live generation, read by the sync reader."""
    return dict(DocumentReader(store, projection).documents())


async def async_documents(
    store: AsyncReadModelStore, projection: type[Tallies] = AioTallies
) -> dict[str, Tally]:
    """Every document of the live generation, read by the async reader."""
    reader = AsyncDocumentReader(store, projection)
    return {key: document async for key, document in reader.documents()}


def same_pass(sync: DocumentPass | ReactorPass, aio: DocumentPass | ReactorPass) -> None:
    """Two passes did the same: shard by shard (in generations of the same number), requests."""
    assert [_shard_pass(p) for p in aio.passes] == [_shard_pass(p) for p in sync.passes]
    assert (aio.held_elsewhere, aio.fenced) == (sync.held_elsewhere, sync.fenced)
    assert aio.requests == sync.requests


def _shard_pass(run: ShardPass) -> dict[str, Any]:
    """What a shard's pass did, its generation by number (the projections' names differ)."""
    return attrs.asdict(run, recurse=False) | {"generation": run.generation.number}


class TestDocumentProjectorInMemory:
    """On the in-memory store: each pass of the async projector is the sync one's."""

    def test_passes_agree(self) -> None:
        """A build, an idle pass and a pass over new events: same documents, same requests."""
        objects = InMemoryObjectStore()
        events = EventStore(objects, prefix="p")
        write_script(events)
        sync = DocumentProjector(
            events, Tallies, S3ReadModelStore(objects, "sync"), lease=LeaseOptions(owner="s")
        )
        aio_objects = AsyncInMemoryObjectStore(objects)
        aio_store = AsyncS3ReadModelStore(aio_objects, "aio")
        aio = AsyncDocumentProjector(
            AsyncEventStore(aio_objects, prefix="p"),
            AioTallies,
            aio_store,
            lease=LeaseOptions(owner="a"),
        )

        async def passes() -> list[DocumentPass]:
            return [await aio.catch_up(), await aio.catch_up()]

        sync_runs = [sync.catch_up(), sync.catch_up()]
        aio_runs = asyncio.run(passes())
        for sync_run, aio_run in zip(sync_runs, aio_runs, strict=True):
            same_pass(sync_run, aio_run)
        assert sync_runs[0].events == 23
        assert sync_runs[1].events == 0
        documents = sync_documents(S3ReadModelStore(objects, "sync"))
        assert asyncio.run(async_documents(aio_store)) == documents
        assert documents["all"].amounts[:2] == [1, 1]

        write_script(events, streams=3)
        sync_run = sync.catch_up()
        aio_run = asyncio.run(aio.catch_up())
        same_pass(sync_run, aio_run)
        assert aio_run.events == 6
        assert asyncio.run(async_documents(aio_store)) == sync_documents(sync.store)

    def test_rebuild_and_leases(self) -> None:
        """A rebuild switches generations as the sync one does; a held lease is LeaseHeld."""
        objects = AsyncInMemoryObjectStore()
        events = AsyncEventStore(objects, prefix="p")
        write_script(EventStore(objects.sync, prefix="p"))
        store = AsyncS3ReadModelStore(objects, "p")

        async def main() -> None:
            first = AsyncDocumentProjector(
                events, Tallies, store, lease=LeaseOptions(owner="first")
            )
            await first.catch_up()
            reader = first.reader()
            before = await reader.generation
            rebuilt = await first.rebuild()
            assert rebuilt.passes[0].switched
            after = await reader.generation
            assert before is not None
            assert after is not None
            assert after.number == before.number + 1
            assert (await reader.get("all")) == (await async_documents(store, Tallies))["all"]
            lease = (await first.leases())[0]
            assert lease is not None
            assert lease.owner == "first"
            with pytest.raises(LeaseHeld):
                await AsyncDocumentProjector(
                    events, Tallies, store, lease=LeaseOptions(owner="second")
                ).catch_up()
            await first.release()
            taken = await AsyncDocumentProjector(
                events, Tallies, store, lease=LeaseOptions(owner="second")
            ).catch_up()
            assert taken.events == 0

        asyncio.run(main())

    def test_many_streams_and_shards_on_one_loop(self) -> None:
        """Four shards' projectors, as tasks of one loop, project 300 streams exactly once."""
        objects = AsyncInMemoryObjectStore()
        write_script(EventStore(objects.sync, prefix="p"), streams=300)
        events = AsyncEventStore(objects, prefix="p")
        store = AsyncS3ReadModelStore(objects, "p")
        projectors = [
            AsyncDocumentProjector(
                events,
                Tallies,
                store,
                shards=Shards(4, ids=[n]),
                lease=LeaseOptions(owner=f"o{n}"),
                batching=Batching(read_concurrency=4),
            )
            for n in range(4)
        ]

        async def main() -> tuple[list[DocumentPass], dict[str, Tally]]:
            runs = await asyncio.gather(*(p.catch_up() for p in projectors))
            return list(runs), await async_documents(store, Tallies)

        runs, documents = asyncio.run(main())
        assert sum(run.events for run in runs) == 575
        assert sum(run.streams for run in runs) == 300
        assert [p.shard for run in runs for p in run.passes] == [0, 1, 2, 3]
        assert len(documents) == 301
        stored = EventStore(objects.sync, prefix="p")
        assert documents["c-3"].ids == [e.id for e in _read(stored, "c-3")]
        assert sorted(documents["all"].ids) == sorted(
            e.id for n in range(300) for e in _read(stored, f"c-{n}")
        )

    def test_run_until_stopped(self) -> None:
        """``run`` passes until its signal is set, then releases its leases."""
        objects = AsyncInMemoryObjectStore()
        write_script(EventStore(objects.sync, prefix="p"), streams=2)
        projector = AsyncDocumentProjector(
            AsyncEventStore(objects, prefix="p"), Tallies, AsyncS3ReadModelStore(objects, "p")
        )
        runs: list[DocumentPass] = []

        async def main() -> None:
            stop = asyncio.Event()

            def on_pass(run: DocumentPass) -> None:
                runs.append(run)
                if len(runs) == 2:
                    stop.set()

            await projector.run(stop, interval=0.01, on_pass=on_pass)
            lease = (await projector.leases())[0]
            assert lease is not None
            assert lease.expires_at == 0.0

        asyncio.run(main())
        assert [run.events for run in runs] == [5, 0]


def _read(events: EventStore, stream_id: str) -> list[RecordedEvent[Any]]:
    return list(Repository(events, Counter).read(stream_id))


class TestOnSQLite:
    """A SQL store through the thread adapter: the async projector's documents are the sync's."""

    def test_projector_and_reader(self, tmp_path: Path) -> None:
        """Same passes, documents and requests as the sync projector on its own database."""
        objects = InMemoryObjectStore()
        events = EventStore(objects, prefix="p")
        write_script(events)
        with (
            SQLiteReadModelStore(tmp_path / "sync.db") as sync_store,
            SQLiteReadModelStore(tmp_path / "aio.db") as aio_sqlite,
        ):
            sync = DocumentProjector(events, Tallies, sync_store, lease=LeaseOptions(owner="s"))
            aio_objects = AsyncInMemoryObjectStore(objects)
            adapter = AsyncReadModels(aio_sqlite)
            assert adapter.atomic
            aio = AsyncDocumentProjector(
                AsyncEventStore(aio_objects, prefix="p"),
                AioTallies,
                adapter,
                lease=LeaseOptions(owner="a"),
            )
            same_pass(sync.catch_up(), asyncio.run(aio.catch_up()))
            assert asyncio.run(async_documents(adapter)) == sync_documents(sync_store)
            assert sync_documents(aio_sqlite, AioTallies) == sync_documents(sync_store)


class Shop:
    """Counters on one event store, written and reacted to through one API."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        self.events = EventStore(self.objects, prefix="p")
        self.handler = CommandHandler(Repository(self.events, Counter), FAST_RETRY)

    def script(self) -> None:
        """Increments to mirror, and a 7 that the empty sink refuses: it will be parked."""
        for n in range(6):
            self.handler.handle(f"c-{n}", Increment(n + 1))
        self.handler.handle("c-0", IncrementEach((2, 3)))
        self.handler.handle("c-7", Increment(7))

    def totals(self) -> dict[str, int]:
        """Every mirror counter's total, and the sink's."""
        repository = Repository(self.events, Counter)
        names = [*(f"mirror-c-{n}" for n in (0, 1, 2, 3, 4, 5, 7)), "sink"]
        return {name: repository.load(name).state.total for name in names}


def _parked(records: list[Parked]) -> list[tuple[str, int, str, int, str]]:
    return [(r.stream, r.version, r.error, r.attempts, r.status) for r in records]


class TestReactorRunner:
    """The async reactor runner sends what the sync one sends, with the same requests."""

    def test_passes_agree(self) -> None:
        """Same commands, duplicates, parked events and requests; same totals and causes."""
        memory = InMemoryObjectStore()
        sync_shop, aio_shop = Shop(InMemoryObjectStore()), Shop(memory)
        sync_shop.script()
        aio_shop.script()
        sync = ReactorRunner(
            sync_shop.events,
            Mirror,
            S3ReadModelStore(sync_shop.objects, "p"),
            retry=ReactionRetry(max_attempts=2, backoff=FAST_BACKOFF),
        )
        objects = AsyncInMemoryObjectStore(memory)
        events = AsyncEventStore(objects, prefix="p")
        aio = AsyncReactorRunner(
            events,
            Mirror,
            AsyncS3ReadModelStore(objects, "p"),
            handlers=[AsyncCommandHandler(AsyncRepository(events, Counter), FAST_RETRY)],
            retry=ReactionRetry(max_attempts=2, backoff=FAST_BACKOFF),
        )
        sync_run = sync.catch_up()
        aio_run = asyncio.run(aio.catch_up())
        same_pass(sync_run, aio_run)
        assert (aio_run.commands, aio_run.duplicates, len(aio_run.parked)) == (
            sync_run.commands,
            sync_run.duplicates,
            len(sync_run.parked),
        )
        assert (aio_run.events, aio_run.commands, aio_run.duplicates) == (9, 10, 1)
        assert aio_shop.totals() == sync_shop.totals()
        mirrored = _read(aio_shop.events, "mirror-c-0")
        assert [e.metadata[CAUSATION_ID] for e in mirrored] == [
            e.id for e in _read(aio_shop.events, "c-0")
        ]
        assert _parked(asyncio.run(aio.parked())) == _parked(sync.parked())
        same_pass(sync.catch_up(), asyncio.run(aio.catch_up()))

    def test_parked_retry_and_skip(self) -> None:
        """An operator's retry un-parks an event once the sink is filled; skip keeps a record."""
        memory = InMemoryObjectStore()
        shop = Shop(memory)
        shop.script()
        shop.handler.handle("c-8", Increment(7))
        objects = AsyncInMemoryObjectStore(memory)
        events = AsyncEventStore(objects, prefix="p")
        runner = AsyncReactorRunner(
            events,
            Mirror,
            AsyncS3ReadModelStore(objects, "p"),
            retry=ReactionRetry(max_attempts=2, backoff=FAST_BACKOFF),
        )

        async def main() -> None:
            run = await runner.catch_up()
            assert len(run.parked) == 2
            shop.handler.handle("sink", Increment(7))
            retried, skipped = sorted(run.parked)
            results = await runner.retry(retried)
            assert [result.duplicate for result in results] == [True, False]
            await runner.skip(skipped)
            assert await runner.parked() == []
            assert [r.event_id for r in await runner.parked(skipped=True)] == [skipped]

        asyncio.run(main())
        assert shop.totals()["sink"] == 0


class TestNotifications:
    """A sync feed of notifications, offered to an async projector through threads."""

    def test_the_feed_drives_the_pass(self) -> None:
        """After its first full scan, a pass reads only the streams the notifications name."""
        objects = AsyncInMemoryObjectStore()
        sync_events = EventStore(objects.sync, prefix="p")
        write_script(sync_events, streams=4)
        feed = _Feed()
        projector = AsyncDocumentProjector(
            AsyncEventStore(objects, prefix="p"),
            Tallies,
            AsyncS3ReadModelStore(objects, "p"),
            feed=AsyncNotifications(feed),
        )
        first = asyncio.run(projector.catch_up())
        assert first.passes[0].full_scan
        moved = CommandHandler(Repository(sync_events, Counter)).handle("c-2", Increment(5))
        feed.pending = [(moved.stream, moved.version)]
        second = asyncio.run(projector.catch_up())
        assert (second.passes[0].full_scan, second.streams, second.events) == (False, 1, 1)
        assert feed.acknowledged == 2


@attrs.define
class _Feed:
    """A feed of notifications in memory: what is pending, and how often it was acknowledged."""

    pending: list[tuple[StreamName, int]] = attrs.Factory(list)
    acknowledged: int = 0

    def receive(self) -> Notified:
        """Every notification pending."""
        changes, self.pending = tuple(self.pending), []
        return Notified(changes)

    def acknowledge(self, notified: Notified) -> None:
        """Count it."""
        self.acknowledged += 1


class TestOnAiobotocore:
    """On aiobotocore over HTTP to moto: the same documents, commands and requests as boto3."""

    @pytest.fixture
    def bucket(self, embedded_s3: EmbeddedS3) -> str:
        name = f"aio-consumers-{next(_buckets)}"
        embedded_s3.create_bucket(name)
        return name

    @staticmethod
    @contextlib.asynccontextmanager
    async def connect(embedded_s3: EmbeddedS3, bucket: str) -> AsyncIterator[AsyncObjectStore]:
        session = get_session()
        session.set_credentials("testing", "testing")
        async with AsyncS3ObjectStore.connect(
            bucket, endpoint_url=embedded_s3.endpoint_url, region_name="us-east-1", session=session
        ) as store:
            yield store

    def test_projector(self, embedded_s3: EmbeddedS3, bucket: str) -> None:
        """A build and an idle pass: same documents and requests as over boto3."""
        objects: ObjectStore = embedded_s3.object_store(bucket)
        events = EventStore(objects, prefix="p")
        write_script(events, streams=6)
        sync_store = S3ReadModelStore(objects, "sync")
        sync = DocumentProjector(events, Tallies, sync_store, lease=LeaseOptions(owner="s"))
        sync_runs = [sync.catch_up(), sync.catch_up()]

        async def main() -> tuple[list[DocumentPass], dict[str, Tally]]:
            async with self.connect(embedded_s3, bucket) as store:
                aio_store = AsyncS3ReadModelStore(store, "aio")
                aio = AsyncDocumentProjector(
                    AsyncEventStore(store, prefix="p"),
                    AioTallies,
                    aio_store,
                    lease=LeaseOptions(owner="a"),
                )
                runs = [await aio.catch_up(), await aio.catch_up()]
                return runs, await async_documents(aio_store)

        aio_runs, documents = asyncio.run(main())
        for sync_run, aio_run in zip(sync_runs, aio_runs, strict=True):
            same_pass(sync_run, aio_run)
        assert aio_runs[0].events == 12
        assert documents == sync_documents(sync_store)

    def test_reactor(self, embedded_s3: EmbeddedS3, bucket: str) -> None:
        """A reactor's pass over aiobotocore: the commands and requests of one over boto3."""
        other = f"{bucket}-sync"
        embedded_s3.create_bucket(other)
        sync_shop = Shop(embedded_s3.object_store(other))
        sync_shop.script()
        sync = ReactorRunner(
            sync_shop.events,
            Mirror,
            S3ReadModelStore(sync_shop.objects, "p"),
            retry=ReactionRetry(max_attempts=2, backoff=FAST_BACKOFF),
        )
        sync_run = sync.catch_up()
        aio_shop = Shop(embedded_s3.object_store(bucket))
        aio_shop.script()

        async def main() -> ReactorPass:
            async with self.connect(embedded_s3, bucket) as store:
                runner = AsyncReactorRunner(
                    AsyncEventStore(store, prefix="p"),
                    Mirror,
                    AsyncS3ReadModelStore(store, "p"),
                    retry=ReactionRetry(max_attempts=2, backoff=FAST_BACKOFF),
                )
                return await runner.catch_up()

        aio_run = asyncio.run(main())
        same_pass(sync_run, aio_run)
        assert (aio_run.commands, len(aio_run.parked)) == (sync_run.commands, 1)
        assert aio_shop.totals() == sync_shop.totals()


class TestReactorType:
    def test_one_reactor_class_for_both(self) -> None:
        """A Reactor is written once: its ``react`` computes; each runner sends what it gives."""
        shop = Shop(InMemoryObjectStore())
        shop.handler.handle("c-1", Increment(7))
        event = _read(shop.events, "c-1")[0]
        assert list(Mirror().react(event)) == [
            Send(Counter, "mirror-c-1", Increment(7)),
            Send(Counter, "sink", Decrement(7)),
        ]
        assert issubclass(Mirror, Reactor)
