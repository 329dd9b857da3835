"""The repository: loads from the latest snapshot, replays when it must, and catches up."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from typing import Any

import pytest

from s3es import (
    CommandHandler,
    ConcurrencyError,
    EventStore,
    InMemoryObjectStore,
    ObjectStoreError,
    Repository,
    StreamDeleted,
    StreamName,
)
from s3es._domain.repository import fold, initial_of
from s3es._eventstore.chunk import Chunk, decode_chunk
from s3es._eventstore.store import StreamConflict
from s3es.eventstore import Snapshot
from s3es.metering import RequestCounts
from s3es.ops import delete, erase
from s3es.storage import ForwardingObjectStore, ObjectStore, StoredObject
from tests.aggregates import (
    Counter,
    CounterState,
    CounterV2,
    Decrement,
    Increment,
    IncrementEach,
    Incremented,
    InterceptingStore,
)

STREAM = StreamName("counter", "c-1")
#: Four events in three appends, to a total of 5 + 1 + 2 - 3 = 5.
HISTORY = (Increment(5), IncrementEach((1, 2)), Decrement(3))


def _repository(
    store: ObjectStore, aggregate: type[Counter] = Counter
) -> Repository[Any, Any, Any]:
    return Repository(EventStore(store), aggregate)


def _write(store: ObjectStore, aggregate: type[Counter] = Counter) -> int:
    """Handle HISTORY on counter/c-1 with ``aggregate``; return the stream's version."""
    handler = CommandHandler(_repository(store, aggregate))
    version = 0
    for command in HISTORY:
        version = handler.handle(STREAM.id, command).version
    return version


def _stored_chunk(store: ObjectStore, version: int, chunk: int) -> Chunk | None:
    keys = EventStore(store).keys
    stored = store.get(keys.chunk_key(STREAM, version, chunk))
    if stored is None:
        return None
    return decode_chunk(keys.parse(STREAM, keys.chunk_key(STREAM, version, chunk)), stored.body)


def _since(store: ObjectStore) -> Callable[[], RequestCounts]:
    """A function giving the requests ``store`` sent from now on."""
    before = store.requests
    return lambda: store.requests - before


class TestLoad:
    def test_missing_stream(self) -> None:
        """A stream with no chunks loads as the initial state at version 0: one LIST, no GET."""
        store = InMemoryObjectStore()
        repository = _repository(store)
        loaded = repository.load("nobody")
        assert (loaded.stream, loaded.version) == (StreamName("counter", "nobody"), 0)
        assert loaded.state == Counter().initial_state()
        assert store.requests == RequestCounts(list=1)

    def test_from_latest_snapshot(self) -> None:
        """After appends a load reads the latest chunk's snapshot: one LIST and one GET."""
        store = InMemoryObjectStore()
        version = _write(store)
        repository = _repository(store)
        since = _since(store)
        loaded = repository.load(STREAM.id)
        assert since() == RequestCounts(list=1, get=1)
        assert loaded.version == version
        assert loaded.state == CounterState(total=5, events=4)

    def test_load_equals_replay(self) -> None:
        """The state from the snapshot is the state folded from every event."""
        store = InMemoryObjectStore()
        _write(store)
        repository = _repository(store)
        assert repository.load(STREAM.id) == repository.replay(STREAM.id)

    def test_replay_writes_nothing(self) -> None:
        """replay ignores snapshots and stores nothing, even where load would re-snapshot."""
        store = InMemoryObjectStore()
        _write(store)
        since = _since(store)
        _repository(store, CounterV2).replay(STREAM.id)
        assert since().put == 0


class TestRead:
    def test_recorded_events(self) -> None:
        """read yields each stored event with its stream, version, id, type and metadata."""
        store = InMemoryObjectStore()
        handler = CommandHandler(_repository(store))
        first = handler.handle(STREAM.id, Increment(5), metadata={"by": "ada"})
        second = handler.handle(STREAM.id, IncrementEach((1, 2)), metadata={"by": "bob"})
        recorded = list(_repository(store).read(STREAM.id))
        assert [(r.stream, r.version, r.type, r.event) for r in recorded] == [
            (STREAM, 1, "Incremented", Incremented(5)),
            (STREAM, 2, "Incremented", Incremented(1)),
            (STREAM, 2, "Incremented", Incremented(2)),
        ]
        assert [r.id for r in recorded] == [r.id for r in first.recorded + second.recorded]
        assert len({r.id for r in recorded}) == 3
        assert [r.metadata for r in recorded] == [{"by": "ada"}, {"by": "bob"}, {"by": "bob"}]
        assert all(r.recorded_at.tzinfo == UTC for r in recorded)
        assert recorded == list(first.recorded + second.recorded)

    def test_after_version(self) -> None:
        """read after a version yields only the events of later versions."""
        store = InMemoryObjectStore()
        _write(store)
        repository = _repository(store)
        everything = list(repository.read(STREAM.id))
        assert list(repository.read(STREAM.id, after_version=1)) == [
            r for r in everything if r.version > 1
        ]


class TestSnapshotSchema:
    def test_bump_replays_and_rewrites(self) -> None:
        """A snapshot of an older schema is replayed past, and the latest version is re-written
        as chunk 1 with a snapshot of the new schema, which the next load reads alone."""
        store = InMemoryObjectStore()
        version = _write(store, Counter)
        bumped = _repository(store, CounterV2)
        since = _since(store)
        loaded = bumped.load(STREAM.id)
        assert loaded == _repository(store, Counter).replay(STREAM.id)
        assert since().put == 1
        rewritten = _stored_chunk(store, version, 1)
        original = _stored_chunk(store, version, 0)
        assert rewritten is not None
        assert original is not None
        assert rewritten.snapshot == Snapshot(
            schema=2, version=version, state={"total": 5, "events": 4}
        )
        assert rewritten.events == original.events
        assert rewritten.base_version == original.base_version
        since = _since(store)
        assert bumped.load(STREAM.id) == loaded
        assert since() == RequestCounts(list=1, get=1)

    def test_newer_schema_is_not_overwritten(self) -> None:
        """Code of an older schema replays past a newer snapshot but does not re-write it."""
        store = InMemoryObjectStore()
        version = _write(store, CounterV2)
        older = _repository(store, Counter)
        since = _since(store)
        loaded = older.load(STREAM.id)
        assert loaded == older.replay(STREAM.id)
        assert since().put == 0
        assert _stored_chunk(store, version, 1) is None

    @pytest.mark.parametrize(
        "snapshot",
        [
            Snapshot(schema=1, version=1, state={"total": "many", "events": 1}),
            Snapshot(schema=1, version=1, state={}),
            Snapshot(schema=1, version=1, state=["not", "an", "object"]),
            None,
        ],
    )
    def test_unusable_snapshot_is_rewritten(self, snapshot: Snapshot | None) -> None:
        """A snapshot of the current schema that does not structure into the state (or none)
        is replayed past and re-written, so the next load is one LIST and one GET again."""
        store = InMemoryObjectStore()
        event_store = EventStore(store)
        record = event_store.new_event("Incremented", {"amount": 4})
        event_store.append(STREAM, [record], expected_version=0, snapshot=snapshot)
        repository = _repository(store)
        loaded = repository.load(STREAM.id)
        assert loaded.state == CounterState(total=4, events=1)
        rewritten = _stored_chunk(store, 1, 1)
        assert rewritten is not None
        assert rewritten.snapshot == Snapshot(schema=1, version=1, state={"total": 4, "events": 1})
        since = _since(store)
        assert repository.load(STREAM.id) == loaded
        assert since() == RequestCounts(list=1, get=1)

    def test_losing_the_rewrite_race(self) -> None:
        """When another reader re-writes the chunk first, the load still returns the state."""
        inner = InMemoryObjectStore()
        version = _write(inner, Counter)
        rivals: list[Any] = []

        def rival_rewrites_first(key: str) -> None:
            if key.endswith(".999998.json") and not rivals:
                rivals.append(_repository(inner, CounterV2).load(STREAM.id))

        store = InterceptingStore(inner, before_put=rival_rewrites_first)
        loaded = _repository(store, CounterV2).load(STREAM.id)
        assert len(rivals) == 1
        assert loaded == rivals[0] == _repository(inner, Counter).replay(STREAM.id)
        assert [call.kind for call in store.calls].count("put") == 1
        assert _stored_chunk(inner, version, 2) is None
        rewritten = _stored_chunk(inner, version, 1)
        assert rewritten is not None
        assert rewritten.snapshot is not None
        assert rewritten.snapshot.schema == 2

    def test_racing_loads_resnapshot_once(self) -> None:
        """Two loads started together, both finding the older schema's snapshot, store one
        re-snapshot between them: the one whose replay reads the other's re-snapshot (a chunk
        already carrying a snapshot of the current schema) does not re-snapshot it again."""
        inner = InMemoryObjectStore()
        version = _write(inner, Counter)
        latest_key = EventStore(inner).keys.chunk_key(STREAM, version)
        both_read_latest = threading.Barrier(2)
        rewritten = threading.Event()
        listings: list[str] = []
        gets: list[str] = []
        lock = threading.Lock()

        class TogetherStore(ForwardingObjectStore):
            """Holds each load at its GET of the latest chunk until both are there; the
            second replay's listing waits until the first re-snapshot is stored."""

            def get(self, key: str) -> StoredObject | None:
                found = super().get(key)
                if key == latest_key:
                    with lock:
                        gets.append(key)
                        first_two = len(gets) <= 2
                    if first_two:
                        both_read_latest.wait(timeout=30)
                return found

            def list_keys(
                self, prefix: str, *, start_after: str | None = None, limit: int | None = None
            ) -> Iterator[str]:
                if limit is None:  # a replay's listing, not a load's LIST of the newest key
                    with lock:
                        listings.append(prefix)
                        second = len(listings) == 2
                    if second:
                        assert rewritten.wait(timeout=30), "the first re-snapshot never came"
                return super().list_keys(prefix, start_after=start_after, limit=limit)

            def put_if_absent(self, key: str, body: bytes) -> str:
                try:
                    return super().put_if_absent(key, body)
                finally:
                    rewritten.set()

        repository = _repository(TogetherStore(inner), CounterV2)
        with ThreadPoolExecutor(max_workers=2) as pool:
            loads = [pool.submit(repository.load, STREAM.id) for _ in range(2)]
            loaded = [load.result() for load in loads]
        replayed = _repository(inner, Counter).replay(STREAM.id)
        assert loaded == [replayed, replayed]
        assert len(listings) == 2
        rewritten_chunk = _stored_chunk(inner, version, 1)
        assert rewritten_chunk is not None
        assert rewritten_chunk.snapshot is not None
        assert rewritten_chunk.snapshot.schema == 2
        assert _stored_chunk(inner, version, 2) is None


class TestRewriteFailure:
    def test_denied_rewrite_does_not_fail_the_load(self) -> None:
        """A reader whose re-snapshot PUT is denied still gets the replayed state."""
        inner = InMemoryObjectStore()
        _write(inner, Counter)

        def denied(key: str) -> None:
            raise ObjectStoreError("PUT", key, "AccessDenied: Access Denied")

        store = InterceptingStore(inner, before_put=denied)
        loaded = _repository(store, CounterV2).load(STREAM.id)
        assert loaded == _repository(inner, Counter).replay(STREAM.id)


class TestCatchUp:
    def test_from_conflict_uses_found_chunk(self) -> None:
        """A StreamConflict carrying the winning chunk is caught up from it with no request."""
        store = InMemoryObjectStore()
        repository = _repository(store)
        handler = CommandHandler(repository)
        handler.handle(STREAM.id, Increment(1))
        loaded = repository.load(STREAM.id)
        handler.handle(STREAM.id, IncrementEach((2, 3)))
        with pytest.raises(StreamConflict) as conflict:
            repository.append(loaded, [Incremented(4)])
        assert conflict.value.found is not None
        since = _since(store)
        caught_up = repository.refresh(loaded, conflict.value)
        assert since().total == 0
        assert caught_up == repository.load(STREAM.id)

    @pytest.mark.parametrize(
        "conflict",
        [None, ConcurrencyError(STREAM, 2, 3), StreamConflict(STREAM, 2, 3, None)],
        ids=["no conflict", "ConcurrencyError", "StreamConflict without chunk"],
    )
    def test_reads_only_the_latest_chunk(self, conflict: ConcurrencyError | None) -> None:
        """Without the winning chunk, catch-up LISTs the newest key and GETs the latest chunk
        alone, whose snapshot is the state: not one GET per new version."""
        inner = InMemoryObjectStore()
        handler = CommandHandler(_repository(inner))
        handler.handle(STREAM.id, Increment(1))
        handler.handle(STREAM.id, Increment(2))
        store = InterceptingStore(inner)
        repository = _repository(store)
        loaded = repository.load(STREAM.id)
        for amount in (3, 4, 5):
            handler.handle(STREAM.id, Increment(amount))
        store.calls.clear()
        caught_up = repository.refresh(loaded, conflict)
        keys = repository.event_store.keys
        assert [(call.kind, call.key, call.start_after) for call in store.calls] == [
            ("list", keys.stream_prefix(STREAM), None),
            ("get", keys.chunk_key(STREAM, 5), None),
        ]
        assert caught_up == _repository(inner).replay(STREAM.id)

    @pytest.mark.parametrize("behind", [0, 1, 2, 3, 10, 200])
    def test_costs_at_most_a_load(self, behind: int) -> None:
        """However far behind a state is, bringing it up to date costs one LIST, and one GET
        if the stream moved: what a load costs."""
        store = InMemoryObjectStore()
        handler = CommandHandler(_repository(store))
        handler.handle(STREAM.id, Increment(1))
        repository = _repository(store)
        loaded = repository.load(STREAM.id)
        for _ in range(behind):
            handler.handle(STREAM.id, Increment(1))
        since = _since(store)
        caught_up = repository.refresh(loaded)
        assert since() == RequestCounts(list=1, get=1 if behind else 0)
        assert (caught_up.version, caught_up.state) == (
            1 + behind,
            CounterState(1 + behind, 1 + behind),
        )

    def test_unusable_snapshot_walks_the_new_chunks(self) -> None:
        """When the latest snapshot is of another schema, the chunks after the state's version
        are read and applied instead (and nothing is written)."""
        store = InMemoryObjectStore()
        _write(store, CounterV2)  # snapshots of schema 2, which Counter cannot use
        repository = _repository(store)
        loaded = initial_of(repository, STREAM)
        since = _since(store)
        caught_up = repository.refresh(loaded)
        # the newest key and its chunk, then the listing and every chunk
        assert since() == RequestCounts(list=2, get=1 + 3)
        assert caught_up == repository.replay(STREAM.id)

    def test_deleted_meanwhile(self) -> None:
        """A stream deleted since the state was read raises StreamDeleted with its version."""
        store = InMemoryObjectStore()
        _write(store)
        repository = _repository(store)
        loaded = repository.load(STREAM.id)
        delete(repository, STREAM.id)
        with pytest.raises(StreamDeleted) as raised:
            repository.refresh(loaded)
        assert raised.value.version == loaded.version + 1

    def test_nothing_new(self) -> None:
        """Catching up a stream nobody wrote to since returns the same state and version."""
        store = InMemoryObjectStore()
        _write(store)
        repository = _repository(store)
        loaded = repository.load(STREAM.id)
        assert repository.refresh(loaded) == loaded


def _redact(event: Any) -> Any:
    """Erase the first increment's amount, as far as 5 can be told from 4."""
    return Incremented(4) if event == Incremented(5) else event


class TestThroughAnErasureFence:
    """A state from before an erasure never folds onto the redacted stream: it is replaced."""

    def test_refresh_from_the_winning_fence(self) -> None:
        """A PUT on a pre-erasure state loses to the fence, whose snapshot is the state the
        catch-up takes: the redacted total, at the fence's version, with no request."""
        store = InMemoryObjectStore()
        _write(store)
        repository = _repository(store)
        stale = repository.load(STREAM.id)
        assert stale.state == CounterState(5, 4)
        assert erase(repository, STREAM.id, _redact).fence == 4
        with pytest.raises(StreamConflict) as conflict:
            repository.append(stale, [Incremented(1)])
        assert conflict.value.found is not None
        assert conflict.value.found.rebased
        since = _since(store)
        caught_up = repository.refresh(stale, conflict.value)
        assert since().total == 0
        assert (caught_up.version, caught_up.state) == (4, CounterState(4, 4))
        assert repository.refresh(stale) == caught_up == repository.load(STREAM.id)

    def test_fold_onto_a_stale_state_takes_the_fence(self) -> None:
        """fold onto a state of a later version than 0 takes the fence's snapshot; from
        version 0 it folds every chunk's events, passing through the fence to the same state."""
        store = InMemoryObjectStore()
        _write(store)
        repository = _repository(store)
        stale = repository.load(STREAM.id)
        erase(repository, STREAM.id, _redact)
        chunks = list(repository.event_store.chunks(STREAM))
        fence = chunks[-1]
        assert fence.rebased
        from_start = fold(repository, initial_of(repository, STREAM), chunks)
        assert fold(repository, stale, [fence]) == from_start
        assert from_start == repository.replay(STREAM.id) == repository.load(STREAM.id)

    @pytest.mark.parametrize("commands", [1, 3], ids=["behind the merged chunk", "at its top"])
    def test_unusable_fence_snapshot_replays_from_the_start(self, commands: int) -> None:
        """A fence whose snapshot this code cannot use (another SNAPSHOT_SCHEMA) makes the
        catch-up replay the redacted stream from its start, never fold onto the stale state:
        the fence folded (no event), or the merged chunk below it trimmed to the versions
        after the state's, would keep the erased amount."""
        store = InMemoryObjectStore()
        handler = CommandHandler(_repository(store))
        for command in HISTORY[:commands]:
            handler.handle(STREAM.id, command)
        repository = _repository(store)
        stale = repository.load(STREAM.id)
        for command in HISTORY[commands:]:
            handler.handle(STREAM.id, command)
        erase(_repository(store, CounterV2), STREAM.id, _redact)  # snapshots of schema 2
        with pytest.raises(StreamConflict) as conflict:
            repository.append(stale, [Incremented(1)])
        caught_up = repository.refresh(stale, conflict.value)
        assert (caught_up.version, caught_up.state) == (4, CounterState(4, 4))
        assert repository.refresh(stale) == caught_up
        assert caught_up == repository.replay(STREAM.id)

    def test_handler_with_a_cached_state_stores_the_redacted_state(self) -> None:
        """A handler whose cache predates the erasure decides again on the fence's state:
        its chunk's snapshot holds the redacted total."""
        store = InMemoryObjectStore()
        handler = CommandHandler(_repository(store))
        for command in HISTORY:
            handler.handle(STREAM.id, command)
        erase(_repository(store), STREAM.id, _redact)
        result = handler.handle(STREAM.id, Increment(1))
        assert (result.version, result.state, result.attempts) == (5, CounterState(5, 5), 2)
        stored = _stored_chunk(store, 5, 0)
        assert stored is not None
        assert stored.snapshot is not None
        assert stored.snapshot.state == {"total": 5, "events": 5}
