"""The asyncio API (s3es.aio): the same answers, errors and requests as the sync API.

Each sync module of the event store, the repository and the command handler is generated from
its async source (tools/async_to_sync.py): these tests run the source itself. The contract suite
runs on both async adapters (in memory; aiobotocore over HTTP to moto's server); the handler is
driven through the same scripts as the sync one, and each command must send the same requests
and come to the same result; the aiobotocore adapter meets S3's faults through the fault proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from bench.aio import QUICK, table, throughput_runs
from moto.backends import get_backend
from moto.core.models import DEFAULT_ACCOUNT_ID
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import s3es.aio
from s3es import (
    CommandHandler,
    CommandHooks,
    CommandResult,
    EventStore,
    ExpectedVersion,
    InMemoryObjectStore,
    Repository,
    StreamName,
)
from s3es.aio import (
    AsyncCommandHandler,
    AsyncEventStore,
    AsyncForwardingObjectStore,
    AsyncInMemoryObjectStore,
    AsyncLatencyObjectStore,
    AsyncObjectStore,
    AsyncRepository,
    AsyncS3ObjectStore,
)
from s3es.errors import ConcurrencyError, ObjectStoreError
from s3es.metering import RequestCounts, measure_requests
from s3es.storage import LatencyObjectStore, ObjectStore, SimulatedLatency
from s3es.testing import AsyncObjectStoreContract, EmbeddedS3
from s3es.testing.faultproxy import Fault, FaultProxy, Rule
from tests.aggregates import Counter, CounterError, CounterV2, Decrement, Increment
from tests.test_tracing import attributes, children, root

T = TypeVar("T")
_buckets = itertools.count()
#: Writing this many keys or more goes straight into moto's backend (see put_many).
_BULK = 100


def _session() -> Any:
    session = get_session()
    session.set_credentials("testing", "testing")
    return session


def connect(
    endpoint_url: str, bucket: str, **options: Any
) -> contextlib.AbstractAsyncContextManager[AsyncS3ObjectStore]:
    """An AsyncS3ObjectStore on ``bucket`` of ``endpoint_url``, for an ``async with`` block."""
    return AsyncS3ObjectStore.connect(
        bucket, endpoint_url=endpoint_url, region_name="us-east-1", session=_session(), **options
    )


class TestAsyncInMemoryObjectStore(AsyncObjectStoreContract):
    """The async in-memory store keeps every promise of the port."""

    def open_store(self) -> contextlib.AbstractAsyncContextManager[AsyncObjectStore]:
        return contextlib.nullcontext(AsyncInMemoryObjectStore())


class TestAsyncS3ObjectStore(AsyncObjectStoreContract):
    """AsyncS3ObjectStore, over HTTP to moto's server through aiobotocore, keeps every promise."""

    @pytest.fixture(autouse=True)
    def _bucket(self, embedded_s3: EmbeddedS3) -> None:
        self.endpoint_url = embedded_s3.endpoint_url
        self.bucket = f"aio-{next(_buckets)}"
        embedded_s3.create_bucket(self.bucket)

    def open_store(self) -> contextlib.AbstractAsyncContextManager[AsyncObjectStore]:
        return connect(self.endpoint_url, self.bucket)

    def put_many(self, store: ObjectStore, keys: Any) -> None:
        """Few keys through the store; many straight into moto's in-process backend."""
        keys = list(keys)
        if len(keys) < _BULK:
            super().put_many(store, keys)
            return
        backend = get_backend("s3")[DEFAULT_ACCOUNT_ID]["aws"]
        for key in keys:
            backend.put_object(self.bucket, key, b"{}")


class TestPublicModule:
    def test_names(self) -> None:
        """s3es.aio exports the async API, the aiobotocore adapter among it (lazily)."""
        assert s3es.aio.AsyncS3ObjectStore is AsyncS3ObjectStore
        with pytest.raises(AttributeError, match="no attribute 'Nope'"):
            _ = s3es.aio.Nope
        assert set(s3es.aio.__all__) >= {
            "AsyncCommandHandler",
            "AsyncEventStore",
            "AsyncInMemoryObjectStore",
            "AsyncRepository",
            "AsyncS3ObjectStore",
        }


# The same scripts through both APIs


def _outcome(call: Callable[[], T]) -> T | tuple[str, str]:
    """What ``call`` returns, or the type and text of what it raises."""
    try:
        return call()
    except Exception as error:  # compared, not swallowed: the twin must raise the same
        return (type(error).__name__, str(error))


def _seen(result: Any) -> Any:
    """What a result shows that does not depend on random ids and clocks."""
    if not isinstance(result, CommandResult):
        return result
    return (
        result.version,
        result.state,
        result.events,
        result.attempts,
        result.requests,
        result.duplicate,
        result.recovered,
    )


class Twins:
    """The same commands through a sync and an async handler, each on a store of its own.

    ``rival`` writes to either store behind the handlers' backs (their cached states go stale).
    """

    def __init__(
        self, *, aggregate: type[Counter] = Counter, latency: float = 0.0, **options: Any
    ) -> None:
        self.memory = InMemoryObjectStore()
        self.async_memory = AsyncInMemoryObjectStore()
        self.latency = SimulatedLatency.fixed(latency)
        self.options = options
        self.sync = self.handler(aggregate)
        self.aio = self.async_handler(aggregate)

    def handler(self, aggregate: type[Counter]) -> CommandHandler[Any, Any, Any]:
        objects: ObjectStore = LatencyObjectStore(self.memory, self.latency)
        return CommandHandler(Repository(EventStore(objects), aggregate), **self.options)

    def async_handler(self, aggregate: type[Counter]) -> AsyncCommandHandler[Any, Any, Any]:
        objects = AsyncLatencyObjectStore(self.async_memory, self.latency)
        return AsyncCommandHandler(AsyncRepository(AsyncEventStore(objects), aggregate))

    def handle(self, stream_id: str, command: Any, **options: Any) -> tuple[Any, Any]:
        """The sync and the async result of ``command`` (or what each raised), comparable."""
        sync = _outcome(lambda: self.sync.handle(stream_id, command, **options))
        aio = _outcome(lambda: asyncio.run(self.aio.handle(stream_id, command, **options)))
        return _seen(sync), _seen(aio)

    def rival(self, stream_id: str, command: Any) -> None:
        """Another writer stores ``command`` on both stores."""
        CommandHandler(Repository(EventStore(self.memory), Counter)).handle(stream_id, command)
        rival = CommandHandler(Repository(EventStore(self.async_memory.sync), Counter))
        rival.handle(stream_id, command)


class TestSameRequestsAsSync:
    """A command through the async handler sends the requests it sends through the sync one,
    and comes to the same result or error."""

    def test_a_script_of_commands(self) -> None:
        """First command, warm ones, a lost race, a refusal, an empty decision, expected
        versions, a duplicate id: each the same in both, requests included."""
        twins = Twins()
        script: list[tuple[str, Any, dict[str, Any]]] = [
            ("c-1", Increment(1), {}),
            ("c-1", Increment(2), {}),
            ("c-1", Increment(0), {}),
            ("c-1", Decrement(100), {}),
            ("c-1", Increment(3), {"expected_version": 2}),
            ("c-1", Increment(3), {"expected_version": 5}),
            ("c-1", Increment(4), {"command_id": "order-4"}),
            ("c-1", Increment(4), {"command_id": "order-4"}),
            ("c-2", Increment(5), {"expected_version": ExpectedVersion.STREAM_EXISTS}),
            ("c-2", Increment(5), {"expected_version": ExpectedVersion.NO_STREAM}),
        ]
        for stream_id, command, options in script:
            sync, aio = twins.handle(stream_id, command, **options)
            assert sync == aio, (stream_id, command, options)
        assert twins.memory.requests == twins.async_memory.requests

    def test_a_lost_race(self) -> None:
        """A rival stores a version under a warm cache: the PUT loses, the winning chunk is
        applied from the conflict (no extra request), and the command is decided again."""
        twins = Twins()
        twins.handle("c-1", Increment(1))
        twins.rival("c-1", Increment(10))
        sync, aio = twins.handle("c-1", Increment(1))
        assert sync == aio
        assert isinstance(sync, tuple)
        assert sync[3] == 2  # attempts
        assert sync[4] == RequestCounts(put=2, get=1)

    def test_a_replay_with_read_ahead(self) -> None:
        """A snapshot schema bump makes the next load replay the stream, its GETs sent ahead
        (at 2 ms a request): the same GETs, the same state, the same re-snapshot."""
        twins = Twins(latency=0.002)
        for amount in range(1, 21):
            twins.handle("c-1", Increment(amount))
        twins.sync = twins.handler(CounterV2)
        twins.aio = twins.async_handler(CounterV2)
        sync, aio = twins.handle("c-1", Increment(1))
        assert sync == aio
        assert isinstance(sync, tuple)
        assert sync[4].get >= 20
        assert twins.memory.requests == twins.async_memory.requests

    def test_a_refusal_on_a_fresh_stream(self) -> None:
        """A domain error raises the same error from both."""
        sync, aio = Twins().handle("c-1", Decrement(1))
        assert sync == aio == ("CounterError", "cannot take 1 from a total of 0")


class TestHooksAsSync:
    def test_the_async_handler_tells_its_hooks_what_the_sync_one_does(self) -> None:
        """Results, a lost race and a refusal: both handlers call the same plain-function
        hooks with the same values, in the same order."""
        told: dict[str, list[Any]] = {"sync": [], "aio": []}

        def hooks(name: str) -> CommandHooks:
            def tell(kind: str) -> Callable[[Any], None]:
                return lambda what: told[name].append(
                    (kind, _seen(what) if kind == "result" else what)
                )

            return CommandHooks(
                on_result=tell("result"), on_conflict=tell("conflict"), on_give_up=tell("give_up")
            )

        twins = Twins()
        twins.sync = CommandHandler(twins.sync.repository, hooks=hooks("sync"))
        twins.aio = AsyncCommandHandler(twins.aio.repository, hooks=hooks("aio"))
        twins.handle("c-1", Increment(1))
        twins.rival("c-1", Increment(10))
        twins.handle("c-1", Increment(1))
        twins.handle("c-1", Decrement(100))
        kinds = [kind for kind, _ in told["sync"]]
        assert kinds == ["result", "conflict", "result", "give_up"]
        assert [kind for kind, _ in told["aio"]] == kinds
        assert told["sync"][:3] == told["aio"][:3]
        errors = [(type(told[n][3][1].error), str(told[n][3][1].error)) for n in ("sync", "aio")]
        assert errors[0] == errors[1] == (CounterError, "cannot take 100 from a total of 12")


class TestEventStoreReads:
    """Reads through the async event store and the sync one, of the same objects, agree."""

    def test_reads_agree(self) -> None:
        memory = InMemoryObjectStore()
        sync = EventStore(memory)
        handler = CommandHandler(Repository(sync, Counter))
        for stream_id in ("a", "b", "c"):
            for amount in range(3):
                handler.handle(stream_id, Increment(amount + 1))
        aio = AsyncEventStore(AsyncInMemoryObjectStore(memory))
        stream = StreamName("counter", "b")

        async def reads() -> Any:
            return (
                [t async for t in aio.stream_types()],
                [s async for s in aio.streams("counter")],
                await aio.version(stream),
                await aio.latest(stream),
                [c async for c in aio.chunks(stream, after_version=1)],
                [w async for w in aio.listing(stream)],
            )

        assert asyncio.run(reads()) == (
            list(sync.stream_types()),
            list(sync.streams("counter")),
            sync.version(stream),
            sync.latest(stream),
            list(sync.chunks(stream, after_version=1)),
            list(sync.listing(stream)),
        )

    def test_repository_reads_agree(self) -> None:
        memory = InMemoryObjectStore()
        handler = CommandHandler(Repository(EventStore(memory), Counter))
        for amount in range(4):
            handler.handle("a", Increment(amount + 1))
        repository = AsyncRepository(AsyncEventStore(AsyncInMemoryObjectStore(memory)), Counter)

        async def reads() -> Any:
            return (
                await repository.load("a"),
                await repository.replay("a"),
                [e async for e in repository.read("a", after_version=2)],
            )

        sync = handler.repository
        assert asyncio.run(reads()) == (
            sync.load("a"),
            sync.replay("a"),
            list(sync.read("a", after_version=2)),
        )


class YieldingStore(AsyncForwardingObjectStore):
    """An async store that lets other tasks run before each request, as a network would."""

    async def put_if_absent(self, key: str, body: bytes) -> str:
        await asyncio.sleep(0)
        return await super().put_if_absent(key, body)

    async def get(self, key: str) -> Any:
        await asyncio.sleep(0)
        return await super().get(key)


class TestGroupCommit:
    def test_tasks_on_one_stream_share_puts(self) -> None:
        """Commands of many tasks on one stream ride shared PUTs; each gets its own result."""
        memory = AsyncInMemoryObjectStore()
        repository = AsyncRepository(AsyncEventStore(YieldingStore(memory)), Counter)
        handler = AsyncCommandHandler(repository, group_commit=True)

        async def run() -> list[CommandResult[Any, Any]]:
            await handler.handle("hot", Increment(1))
            return await asyncio.gather(*(handler.handle("hot", Increment(1)) for _ in range(20)))

        results = asyncio.run(run())
        assert sorted(r.state.total for r in results) == list(range(2, 22))
        assert memory.requests.put < 21
        loaded = asyncio.run(repository.load("hot"))
        assert loaded.state.total == 21
        assert loaded.version == memory.requests.put


@pytest.fixture(scope="module")
def proxy(embedded_s3: EmbeddedS3) -> Iterator[FaultProxy]:
    """The fault proxy in front of the embedded moto server, for the module."""
    with FaultProxy(embedded_s3.endpoint_url) as running:
        yield running


class TestS3Faults:
    """The aiobotocore adapter under S3's faults, through the fault proxy."""

    @pytest.fixture
    def bucket(self, embedded_s3: EmbeddedS3) -> str:
        name = f"aio-faults-{next(_buckets)}"
        embedded_s3.create_bucket(name)
        return name

    @staticmethod
    def run(
        proxy: FaultProxy,
        bucket: str,
        rules: list[Rule],
        work: Callable[[AsyncS3ObjectStore], Awaitable[T]],
        **options: Any,
    ) -> tuple[T, RequestCounts]:
        async def main() -> tuple[T, RequestCounts]:
            async with connect(proxy.endpoint_url, bucket, **options) as store:
                proxy.arm(rules)
                try:
                    with measure_requests() as meter:
                        value = await work(store)
                finally:
                    proxy.disarm()
                return value, meter.counts

        return asyncio.run(main())

    @pytest.mark.parametrize("fault", [Fault.CONFLICT, Fault.SLOW_DOWN])
    def test_409_and_503_retried(self, proxy: FaultProxy, bucket: str, fault: Fault) -> None:
        """A 409 or 503 answer is sent again after a pause; the put then succeeds."""
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        no_botocore_retries = AioConfig(retries={"mode": "standard", "total_max_attempts": 1})

        async def put(store: AsyncS3ObjectStore) -> Any:
            await store.put_if_absent("k/1", b"x")
            return await store.get("k/1")

        stored, counts = self.run(
            proxy,
            bucket,
            [Rule(fault, "PUT", 0, times=2)],
            put,
            sleep=sleep,
            client_config=no_botocore_retries,
        )
        assert stored is not None
        assert stored.body == b"x"
        assert counts == RequestCounts(put=3, get=1)
        assert len(slept) == 2

    def test_retries_run_out(self, proxy: FaultProxy, bucket: str) -> None:
        """A 503 that never ends raises ObjectStoreError naming the operation, key and code."""

        async def sleep(_: float) -> None:
            return None

        no_botocore_retries = AioConfig(retries={"mode": "standard", "total_max_attempts": 1})

        async def put(store: AsyncS3ObjectStore) -> Any:
            with pytest.raises(ObjectStoreError, match="SlowDown") as raised:
                await store.put_if_absent("k/1", b"x")
            return raised.value

        error, counts = self.run(
            proxy,
            bucket,
            [Rule(Fault.SLOW_DOWN, "PUT", 0, times=10)],
            put,
            sleep=sleep,
            max_attempts=3,
            client_config=no_botocore_retries,
        )
        assert (error.operation, error.key) == ("PUT", "k/1")
        assert counts == RequestCounts(put=3)

    def test_lost_answer_recovered(self, proxy: FaultProxy, bucket: str) -> None:
        """The answer to a stored PUT is lost; the retry meets our own chunk (412); the event
        store reads it back, finds its append id, and the command is stored once."""

        async def handle(store: AsyncS3ObjectStore) -> CommandResult[Any, Any]:
            handler = AsyncCommandHandler(AsyncRepository(AsyncEventStore(store), Counter))
            return await handler.handle("c-1", Increment(1))

        result, counts = self.run(proxy, bucket, [Rule(Fault.DROP_RESPONSE, "PUT", 0)], handle)
        assert result.recovered
        assert result.version == 1
        # aiohttp itself sends an idempotent request once more when a kept-alive connection
        # closes unanswered, below botocore's hooks: that PUT is on the wire, not counted
        # (docs/async.md, "Differences").
        assert (counts.list, counts.get) == (1, 1)
        assert counts.put >= 1

    def test_conflict_between_tasks(self, embedded_s3: EmbeddedS3, bucket: str) -> None:
        """Two tasks append to one version over HTTP: one is stored, one raises a conflict."""

        async def main() -> list[Any]:
            async with connect(embedded_s3.endpoint_url, bucket) as store:
                events = AsyncEventStore(store)
                stream = StreamName("counter", "raced")
                record = events.new_event("Incremented", {"amount": 1})
                appends = [events.append(stream, [record], expected_version=0) for _ in range(2)]
                return await asyncio.gather(*appends, return_exceptions=True)

        outcomes = asyncio.run(main())
        assert sum(isinstance(o, ConcurrencyError) for o in outcomes) == 1


async def _collect(listing: AsyncIterator[T]) -> list[T]:
    return [item async for item in listing]


def test_domain_errors_are_not_retried() -> None:
    """A decision's domain error propagates unchanged from the async handler."""
    handler = AsyncCommandHandler(
        AsyncRepository(AsyncEventStore(AsyncInMemoryObjectStore()), Counter)
    )
    with pytest.raises(CounterError, match="cannot take 1"):
        asyncio.run(handler.handle("c-1", Decrement(1)))


class TestBench:
    def test_both_apis_send_the_same_requests_per_command(self) -> None:
        """The bench's runs (at tiny sizes, no latency): every command is handled, and each API
        sends a LIST per stream and a PUT per command."""
        runs = throughput_runs(QUICK)
        assert [(run.api, run.in_flight) for run in runs] == [
            ("async", 1),
            ("async", 10),
            ("sync", 4),
        ]
        for run in runs:
            assert run.commands == run.streams * QUICK.commands_per_stream
            assert run.requests == RequestCounts(list=run.streams, put=run.commands)
        section = table(runs)
        assert "| async | 10 tasks | 20 | 40 |" in section
        assert "| sync | 4 threads | 20 | 40 |" in section


class TestSpans:
    def test_an_async_command_spans_its_load_and_append(self, spans: InMemorySpanExporter) -> None:
        """An awaited command's span lasts until it is done, and holds the load and the append
        it awaited, as a sync command's does."""
        handler = AsyncCommandHandler(
            AsyncRepository(AsyncEventStore(AsyncInMemoryObjectStore()), Counter)
        )
        result = asyncio.run(handler.handle("c-1", Increment(1)))
        handle = root(spans, "handle Increment")
        assert attributes(handle)["s3es.stream.version"] == result.version == 1
        assert attributes(handle)["s3es.request.put_count"] == 1
        assert [span.name for span in children(spans, handle, "load counter")] == ["load counter"]
        [append] = children(spans, handle, "append counter")
        assert attributes(append)["s3es.append.outcome"] == "stored"
