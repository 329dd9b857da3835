"""The event store: gapless appends with put-if-absent, conflicts, reads, rewrites, their cost."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import attrs
import pytest

from s3es import (
    ConcurrencyError,
    CorruptChunk,
    EventStore,
    InMemoryObjectStore,
    ObjectStoreError,
    S3ObjectStore,
    StreamDeleted,
    StreamName,
)
from s3es._eventstore.chain import (
    BreakReason,
    ChainBreak,
    Link,
    newest_of_each_version,
    walk_chain,
)
from s3es._eventstore.chunk import decode_chunk, encode_chunk
from s3es._eventstore.store import StreamConflict
from s3es._storage.keys import ChunkKey
from s3es.errors import InvalidConfiguration, InvalidStreamName, ObjectAlreadyExists
from s3es.eventstore import Chunk, EventRecord, Snapshot, StreamKeys
from s3es.metering import RequestCounts, measure_requests
from s3es.storage import (
    ForwardingObjectStore,
    LatencyObjectStore,
    ObjectStore,
    SimulatedLatency,
    StoredObject,
)


def rewrite(events: EventStore, chunk: Chunk, snapshot: Snapshot) -> bool:
    """Store ``chunk`` again as its next chunk number with ``snapshot``, as a load's fallback
    does; False if another writer stored that chunk number first."""
    try:
        events.store(attrs.evolve(chunk, number=chunk.number + 1, snapshot=snapshot))
    except ObjectAlreadyExists:
        return False
    return True


STREAM = StreamName("order", "o-1")
WHEN = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _event_store(store: ObjectStore, prefix: str = "") -> EventStore:
    """An event store with a fixed clock and ids id-1, id-2... in the order they are made."""
    counter = itertools.count(1)
    return EventStore(
        store, prefix=prefix, clock=lambda: WHEN, new_id=lambda: f"id-{next(counter)}"
    )


def _events(events: EventStore, *amounts: int) -> list[EventRecord]:
    return [events.new_event("Added", {"amount": amount}) for amount in amounts]


def _fill(events: EventStore, versions: int, stream: StreamName = STREAM) -> list[str]:
    """Append ``versions`` chunks of one event each to ``stream``; return their keys."""
    return [
        events.append(stream, _events(events, version), expected_version=version - 1).key
        for version in range(1, versions + 1)
    ]


def _requests(store: ObjectStore) -> Callable[[], RequestCounts]:
    """A function giving the requests ``store`` sent since this call."""
    before = store.requests
    return lambda: store.requests - before


@pytest.fixture
def store() -> InMemoryObjectStore:
    """A fresh in-memory store."""
    return InMemoryObjectStore()


@pytest.fixture
def events(store: InMemoryObjectStore) -> EventStore:
    """An event store on the in-memory store, at the bucket's root."""
    return _event_store(store)


@pytest.fixture(params=["memory", "s3"])
def any_store(request: pytest.FixtureRequest) -> ObjectStore:
    """The in-memory store, then an S3ObjectStore on moto."""
    if request.param == "memory":
        return InMemoryObjectStore()
    s3_store: ObjectStore = request.getfixturevalue("s3_store")
    return s3_store


class TestNewEvent:
    def test_fields(self, events: EventStore) -> None:
        """new_event stamps a fresh id and the clock's time; metadata defaults to empty."""
        first = events.new_event("Added", {"amount": 1})
        second = events.new_event("Added", {"amount": 2}, {"user": "u-1"})
        assert (first.type, first.id, first.data, first.metadata, first.recorded_at) == (
            "Added",
            "id-1",
            {"amount": 1},
            {},
            WHEN,
        )
        assert (second.id, second.metadata) == ("id-2", {"user": "u-1"})

    def test_default_ids_unique(self, store: InMemoryObjectStore) -> None:
        """Without an injected id function, event ids and append ids are all distinct."""
        events = EventStore(store)
        records = [events.new_event("Added", {}) for _ in range(50)]
        results = [
            events.append(STREAM, [record], expected_version=n) for n, record in enumerate(records)
        ]
        ids = {record.id for record in records} | {result.append_id for result in results}
        assert len(ids) == 100


class TestAppend:
    def test_first_key(self, store: InMemoryObjectStore) -> None:
        """The first append (expected version 0) writes version 1, chunk 0, under the prefix."""
        events = _event_store(store, prefix="tenant-1")
        result = events.append(STREAM, _events(events, 5), expected_version=0)
        key = "tenant-1/order/o-1/99999999999999999998.999999.json"
        assert (result.stream, result.version, result.key, result.recovered) == (
            STREAM,
            1,
            key,
            False,
        )
        assert list(store.list_keys("tenant-1/order/o-1/")) == [key]

    def test_stored_chunk(self, store: InMemoryObjectStore, events: EventStore) -> None:
        """The stored chunk holds the events, the snapshot, the append id and base version."""
        records = _events(events, 1, 2)
        snapshot = Snapshot(schema=3, version=1, state={"total": 3})
        result = events.append(STREAM, records, expected_version=0, snapshot=snapshot)
        stored = store.get(result.key)
        assert stored is not None
        chunk = decode_chunk(events.keys.parse(STREAM, result.key), stored.body)
        assert chunk == Chunk(
            stream=STREAM,
            version=1,
            number=0,
            base_version=0,
            append_id=result.append_id,
            events=tuple(records),
            snapshot=snapshot,
        )
        assert result.events == tuple(records)

    def test_gapless(self, store: InMemoryObjectStore, events: EventStore) -> None:
        """Each append writes the next version: versions 1, 2, 3... with no gap, listed newest
        first."""
        keys = _fill(events, 5)
        assert keys == [events.keys.chunk_key(STREAM, version) for version in range(1, 6)]
        assert list(store.list_keys("order/o-1/")) == keys[::-1]

    def test_streams_independent(self, store: InMemoryObjectStore, events: EventStore) -> None:
        """Streams count their versions apart, also when one's id starts with the other's."""
        other = StreamName("order", "o-10")
        _fill(events, 2)
        _fill(events, 3, other)
        assert [c.version for c in events.chunks(STREAM)] == [1, 2]
        assert [c.version for c in events.chunks(other)] == [1, 2, 3]

    def test_negative_expected_version(self, events: EventStore) -> None:
        """An expected version below 0 is refused, naming the stream, before any request."""
        with pytest.raises(ValueError, match=r"stream order/o-1 .*: -1"):
            events.append(STREAM, _events(events, 1), expected_version=-1)
        assert events.objects.requests == RequestCounts()

    def test_no_events(self, events: EventStore) -> None:
        """An append of no events is refused, naming the stream, before any request."""
        with pytest.raises(ValueError, match="stream order/o-1: no events"):
            events.append(STREAM, [], expected_version=0)
        assert events.objects.requests == RequestCounts()


class TestConflict:
    def test_second_writer_loses(self, events: EventStore) -> None:
        """Of two appends expecting the same version, the second raises a ConcurrencyError
        naming the stream, the expected and the actual version."""
        events.append(STREAM, _events(events, 1), expected_version=0)
        with pytest.raises(ConcurrencyError) as raised:
            events.append(STREAM, _events(events, 2), expected_version=0)
        error = raised.value
        assert (error.stream, error.expected_version, error.actual_version) == (STREAM, 0, 1)
        message = str(error)
        assert "stream order/o-1" in message
        assert "expected version 0" in message
        assert "at version 1" in message

    def test_carries_the_winning_chunk(
        self, store: InMemoryObjectStore, events: EventStore
    ) -> None:
        """The conflict carries the chunk that won the version, exactly as stored."""
        won = events.append(STREAM, _events(events, 1), expected_version=0)
        with pytest.raises(StreamConflict) as raised:
            events.append(STREAM, _events(events, 2), expected_version=0)
        stored = store.get(won.key)
        assert stored is not None
        assert raised.value.found == decode_chunk(events.keys.parse(STREAM, won.key), stored.body)
        assert raised.value.found is not None
        assert raised.value.found.append_id == won.append_id

    def test_old_expected_version(self, events: EventStore) -> None:
        """An append expecting a version long past meets the chunk after it: the error says
        the stream is at that version or later, and carries that chunk."""
        _fill(events, 3)
        with pytest.raises(StreamConflict) as raised:
            events.append(STREAM, _events(events, 9), expected_version=1)
        error = raised.value
        assert (error.expected_version, error.actual_version) == (1, 2)
        assert error.found is not None
        assert (error.found.version, error.found.base_version) == (2, 1)

    def test_loser_stores_nothing(self, store: InMemoryObjectStore, events: EventStore) -> None:
        """The losing append leaves the stream as the winner wrote it."""
        won = events.append(STREAM, _events(events, 1), expected_version=0)
        before = store.get(won.key)
        with pytest.raises(ConcurrencyError):
            events.append(STREAM, _events(events, 2), expected_version=0)
        assert store.get(won.key) == before
        assert list(store.list_keys("order/o-1/")) == [won.key]

    def test_racing_writers(self, any_store: ObjectStore) -> None:
        """Of many threads appending at once with the same expected version, exactly one
        succeeds; every other gets a conflict carrying the winner's chunk."""
        events = EventStore(any_store)
        barrier = threading.Barrier(6)

        def writer(amount: int) -> str | StreamConflict:
            records = _events(events, amount)
            barrier.wait()
            try:
                return events.append(STREAM, records, expected_version=0).append_id
            except StreamConflict as conflict:
                return conflict

        with ThreadPoolExecutor(6) as pool:
            outcomes = list(pool.map(writer, range(6)))
        winners = [outcome for outcome in outcomes if isinstance(outcome, str)]
        assert len(winners) == 1
        for outcome in outcomes:
            if isinstance(outcome, StreamConflict):
                assert outcome.found is not None
                assert outcome.found.append_id == winners[0]
        assert [chunk.append_id for chunk in events.chunks(STREAM)] == winners


class TestLatest:
    def test_empty_stream(self, events: EventStore) -> None:
        """A stream with no chunks has no latest chunk."""
        assert events.latest(STREAM) is None

    def test_latest_version(self, events: EventStore) -> None:
        """latest returns the chunk of the highest version."""
        _fill(events, 4)
        latest = events.latest(STREAM)
        assert latest is not None
        assert latest.version == 4
        assert latest.events[0].data == {"amount": 4}

    def test_highest_chunk_of_highest_version(self, events: EventStore) -> None:
        """After a rewrite, latest returns the rewritten chunk with its snapshot."""
        _fill(events, 2)
        latest = events.latest(STREAM)
        assert latest is not None
        snapshot = Snapshot(schema=2, version=2, state={"total": 3})
        assert rewrite(events, latest, snapshot)
        rewritten = events.latest(STREAM)
        assert rewritten is not None
        assert (rewritten.version, rewritten.number, rewritten.snapshot) == (2, 1, snapshot)

    def test_stray_object_first(self, store: InMemoryObjectStore, events: EventStore) -> None:
        """An object listed before the newest chunk that is not a chunk raises CorruptChunk
        naming it."""
        _fill(events, 2)
        store.put_if_absent("order/o-1/0-notes.txt", b"hello")
        with pytest.raises(CorruptChunk) as raised:
            events.latest(STREAM)
        assert raised.value.key == "order/o-1/0-notes.txt"

    def test_vanishing_chunk(self) -> None:
        """A latest chunk that is listed but gone when read, every time, raises
        ObjectStoreError naming the stream's prefix."""
        store = _Vanishing()
        events = _event_store(store)
        _fill(events, 1)
        with pytest.raises(ObjectStoreError) as raised:
            events.latest(STREAM)
        assert raised.value.key == "order/o-1/"
        assert "vanished" in raised.value.detail


class _Vanishing(InMemoryObjectStore):
    """An in-memory store whose objects can be listed but never read (deleted in between)."""

    def get(self, key: str) -> StoredObject | None:
        """Count the GET, find nothing."""
        super().get(key)
        return None


class TestChunks:
    def test_all_in_order(self, events: EventStore) -> None:
        """chunks yields one chunk per version, in order, each following the one before."""
        _fill(events, 4)
        chunks = list(events.chunks(STREAM))
        assert [(c.version, c.base_version) for c in chunks] == [(1, 0), (2, 1), (3, 2), (4, 3)]

    def test_empty(self, events: EventStore) -> None:
        """A stream with no chunks yields nothing."""
        assert list(events.chunks(STREAM)) == []

    @pytest.mark.parametrize("after", [0, 1, 3, 5, 6])
    def test_after_version(self, events: EventStore, after: int) -> None:
        """chunks(after_version=k) yields exactly the versions after k."""
        _fill(events, 5)
        versions = [c.version for c in events.chunks(STREAM, after_version=after)]
        assert versions == list(range(after + 1, 6))

    def test_highest_chunk_of_each_version(
        self, store: InMemoryObjectStore, events: EventStore
    ) -> None:
        """Of a version's chunks only the highest-numbered is read and yielded."""
        _fill(events, 3)
        second = list(events.chunks(STREAM))[1]
        rewrite(events, second, Snapshot(1, 2, {"r": 1}))
        requests = _requests(store)
        chunks = list(events.chunks(STREAM))
        assert [(c.version, c.number) for c in chunks] == [(1, 0), (2, 1), (3, 0)]
        assert chunks[1].snapshot == Snapshot(1, 2, {"r": 1})
        assert requests() == RequestCounts(list=1, get=3)

    @pytest.mark.parametrize(("missing", "after"), [(2, 0), (1, 0), (3, 1)])
    def test_gap(
        self, store: InMemoryObjectStore, events: EventStore, missing: int, after: int
    ) -> None:
        """A missing version raises CorruptChunk naming the key after the gap."""
        keys = _fill(events, 4)
        store.delete(keys[missing - 1])
        with pytest.raises(CorruptChunk) as raised:
            list(events.chunks(STREAM, after_version=after))
        error = raised.value
        assert error.key == keys[missing]
        assert f"no version {missing}" in error.reason
        assert "stream order/o-1" in error.reason

    def test_gap_found_before_yielding(
        self, store: InMemoryObjectStore, events: EventStore
    ) -> None:
        """A missing version raises CorruptChunk naming the chunk that follows it, before any
        chunk is yielded (the chain is followed from the newest chunk back)."""
        keys = _fill(events, 4)
        store.delete(keys[2])
        chunks: Iterator[Chunk] = events.chunks(STREAM)
        with pytest.raises(CorruptChunk, match="has no version 3") as raised:
            next(chunks)
        assert raised.value.key == keys[3]

    @pytest.mark.parametrize("name", ["notes.txt", "00000000000000000002.json", "0.tmp"])
    def test_stray_object(self, store: InMemoryObjectStore, events: EventStore, name: str) -> None:
        """Any object in a stream's folder that is not a chunk key raises CorruptChunk naming
        it, wherever it sorts."""
        _fill(events, 3)
        store.put_if_absent(f"order/o-1/{name}", b"{}")
        with pytest.raises(CorruptChunk) as raised:
            list(events.chunks(STREAM))
        assert raised.value.key == f"order/o-1/{name}"

    def test_deeper_objects_ignored(self, store: InMemoryObjectStore, events: EventStore) -> None:
        """Objects below a further '/' in the stream's folder are not the stream's chunks."""
        _fill(events, 2)
        store.put_if_absent("order/o-1/archive/99999999999999999996.999999.json", b"{}")
        assert [c.version for c in events.chunks(STREAM)] == [1, 2]

    def test_unreadable_chunk(self, store: InMemoryObjectStore, events: EventStore) -> None:
        """A chunk key holding something that is not a chunk raises CorruptChunk naming it."""
        _fill(events, 1)
        key = events.keys.chunk_key(STREAM, 2)
        store.put_if_absent(key, b"not json")
        with pytest.raises(CorruptChunk) as raised:
            list(events.chunks(STREAM))
        assert raised.value.key == key

    def test_chunk_covering_versions_without_their_events(
        self, store: InMemoryObjectStore, events: EventStore
    ) -> None:
        """A chunk that claims to follow an older version than the one before it, without
        events naming each version between, raises CorruptChunk naming its key."""
        _fill(events, 1)
        record = _events(events, 2)[0]
        good = Chunk(STREAM, 2, 0, 1, "rogue", (record,), None)
        document = json.loads(encode_chunk(good))
        document["base_version"] = 0  # claims versions 1 and 2, names neither
        key = events.keys.chunk_key(STREAM, 2)
        store.put_if_absent(key, json.dumps(document).encode())
        with pytest.raises(CorruptChunk) as raised:
            list(events.chunks(STREAM))
        assert raised.value.key == key
        assert "must name the version of every event" in raised.value.reason

    def test_vanishing_chunk(self) -> None:
        """A chunk listed but gone when read raises ObjectStoreError naming its key."""
        store = _Vanishing()
        events = _event_store(store)
        keys = _fill(events, 2)
        with pytest.raises(ObjectStoreError) as raised:
            list(events.chunks(STREAM))
        assert raised.value.key == keys[-1]  # read newest first
        assert "gone" in raised.value.detail


class TestRewrite:
    def test_next_chunk_number(self, store: InMemoryObjectStore, events: EventStore) -> None:
        """Stored again as chunk number + 1, a chunk keeps its events, with a new snapshot."""
        _fill(events, 2)
        original = events.latest(STREAM)
        assert original is not None
        snapshot = Snapshot(schema=2, version=2, state={"s": 1})
        requests = _requests(store)
        assert rewrite(events, original, snapshot) is True
        assert requests() == RequestCounts(put=1)
        key = "order/o-1/99999999999999999997.999998.json"
        stored = store.get(key)
        assert stored is not None
        rewritten = decode_chunk(events.keys.parse(STREAM, key), stored.body)
        assert rewritten.snapshot == snapshot
        assert (rewritten.events, rewritten.append_id, rewritten.base_version) == (
            original.events,
            original.append_id,
            original.base_version,
        )

    def test_loses_to_another_rewrite(self, store: InMemoryObjectStore, events: EventStore) -> None:
        """A rewrite whose chunk number another writer stored first returns False and leaves
        that chunk as it was."""
        _fill(events, 1)
        original = events.latest(STREAM)
        assert original is not None
        first = Snapshot(schema=2, version=1, state="first")
        assert rewrite(events, original, first) is True
        assert rewrite(events, original, Snapshot(schema=2, version=1, state="second")) is False
        latest = events.latest(STREAM)
        assert latest is not None
        assert (latest.number, latest.snapshot) == (1, first)

    def test_rewrite_of_rewrite(self, events: EventStore) -> None:
        """A rewritten chunk can be rewritten again, as chunk number 2."""
        _fill(events, 1)
        original = events.latest(STREAM)
        assert original is not None
        rewrite(events, original, Snapshot(2, 1, "a"))
        once = events.latest(STREAM)
        assert once is not None
        assert rewrite(events, once, Snapshot(3, 1, "b"))
        twice = events.latest(STREAM)
        assert twice is not None
        assert (twice.number, twice.snapshot) == (2, Snapshot(3, 1, "b"))

    def test_appends_continue_after_rewrite(self, events: EventStore) -> None:
        """A rewrite does not take a version: the next append is the next version."""
        _fill(events, 1)
        original = events.latest(STREAM)
        assert original is not None
        rewrite(events, original, Snapshot(2, 1, "a"))
        result = events.append(STREAM, _events(events, 2), expected_version=1)
        assert result.version == 2
        assert [(c.version, c.number) for c in events.chunks(STREAM)] == [(1, 1), (2, 0)]


class TestRequestCounts:
    """Exact requests per operation, on the in-memory store and on S3 (moto)."""

    def test_append(self, any_store: ObjectStore) -> None:
        """An append that wins costs one PUT."""
        events = _event_store(any_store)
        requests = _requests(any_store)
        events.append(STREAM, _events(events, 1), expected_version=0)
        assert requests() == RequestCounts(put=1)

    def test_conflict(self, any_store: ObjectStore) -> None:
        """An append that loses costs one PUT and one GET (the winner's chunk)."""
        events = _event_store(any_store)
        events.append(STREAM, _events(events, 1), expected_version=0)
        requests = _requests(any_store)
        with pytest.raises(ConcurrencyError):
            events.append(STREAM, _events(events, 2), expected_version=0)
        assert requests() == RequestCounts(put=1, get=1)

    def test_latest(self, any_store: ObjectStore) -> None:
        """latest costs one LIST and one GET, however long the stream; an empty one, one LIST."""
        events = _event_store(any_store)
        requests = _requests(any_store)
        assert events.latest(STREAM) is None
        assert requests() == RequestCounts(list=1)
        _fill(events, 5)
        requests = _requests(any_store)
        latest = events.latest(STREAM)
        assert latest is not None
        assert latest.version == 5
        assert requests() == RequestCounts(list=1, get=1)

    def test_chunks(self, any_store: ObjectStore) -> None:
        """Reading chunks costs one LIST and one GET per chunk read."""
        events = _event_store(any_store)
        _fill(events, 4)
        requests = _requests(any_store)
        assert len(list(events.chunks(STREAM))) == 4
        assert requests() == RequestCounts(list=1, get=4)
        requests = _requests(any_store)
        assert len(list(events.chunks(STREAM, after_version=3))) == 1
        assert requests() == RequestCounts(list=1, get=1)


class TestLongStreams:
    @pytest.mark.parametrize("length", [1, 10, 2_500])
    def test_latest_costs_two_requests_at_any_length(
        self, store: InMemoryObjectStore, events: EventStore, length: int
    ) -> None:
        """Finding and reading the latest chunk is one LIST (of one key) and one GET, however
        long the stream: keys list newest first."""
        _fill(events, length)
        since = _requests(store)
        latest = events.latest(STREAM)
        assert latest is not None
        assert latest.version == length
        assert since() == RequestCounts(list=1, get=1)

    def test_chunks_after_a_version_list_one_page(
        self, store: InMemoryObjectStore, events: EventStore
    ) -> None:
        """Reading the chunks after version k of a long stream lists only the newest page."""
        _fill(events, 2_500)
        since = _requests(store)
        assert [c.version for c in events.chunks(STREAM, after_version=2_497)] == [
            2_498,
            2_499,
            2_500,
        ]
        assert since() == RequestCounts(list=1, get=3)

    def test_full_replay_lists_every_page(
        self, store: InMemoryObjectStore, events: EventStore
    ) -> None:
        """Reading every chunk lists the whole stream, one LIST per 1,000 chunks."""
        _fill(events, 2_500)
        since = _requests(store)
        assert [c.version for c in events.chunks(STREAM)] == list(range(1, 2_501))
        assert since() == RequestCounts(list=3, get=2_500)


class TestOnS3:
    def test_key_layout(self, s3_store: S3ObjectStore) -> None:
        """On S3 the chunk is stored at the documented key, and reads back."""
        events = _event_store(s3_store, prefix="tenant-1")
        result = events.append(STREAM, _events(events, 1), expected_version=0)
        assert list(s3_store.list_keys("tenant-1/order/o-1/")) == [
            "tenant-1/order/o-1/99999999999999999998.999999.json"
        ]
        assert [c.append_id for c in events.chunks(STREAM)] == [result.append_id]

    def test_gap_and_conflict(self, s3_store: S3ObjectStore) -> None:
        """On S3 too, a second append at a version conflicts and a deleted version is a gap."""
        events = _event_store(s3_store)
        keys = _fill(events, 3)
        with pytest.raises(StreamConflict) as raised:
            events.append(STREAM, _events(events, 9), expected_version=2)
        assert raised.value.actual_version == 3
        s3_store.delete(keys[1])
        with pytest.raises(CorruptChunk) as gap:
            list(events.chunks(STREAM))
        assert gap.value.key == keys[2]


class TestDiscovery:
    """Finding the stream types and streams under a prefix, on both stores."""

    def test_types_and_streams(self, any_store: ObjectStore) -> None:
        """Every stream with a chunk is found under its type, in key order, once."""
        events = _event_store(any_store, prefix="tenant/es")
        names = [StreamName("order", "o-2"), StreamName("order", "o-1"), StreamName("pay", "p")]
        for name in names:
            _fill(events, 2, name)
        _fill(_event_store(any_store, prefix="tenant/other"), 1, StreamName("order", "x"))
        any_store.put_if_absent("tenant/es/_projections/p/doc.json", b"{}")
        requests = _requests(any_store)
        assert list(events.stream_types()) == ["order", "pay"]
        assert list(events.streams("order")) == sorted(names[:2], key=lambda n: n.id)
        assert list(events.streams("pay")) == [names[2]]
        assert list(events.streams("none")) == []
        assert requests() == RequestCounts(list=4)

    def test_reserved_type_refused(self, any_store: ObjectStore) -> None:
        """s3es's own folders are no stream type: asking for their streams is refused."""
        with pytest.raises(InvalidStreamName, match="reserved for s3es"):
            list(_event_store(any_store).streams("_projections"))

    def test_stray_folder_named(self, store: InMemoryObjectStore, events: EventStore) -> None:
        """A folder no stream name maps to is an error naming the folder, not skipped."""
        store.put_if_absent("order/bad\x07id/x.json", b"{}")
        with pytest.raises(CorruptChunk, match=r"order/bad\\x07id/.*not the folder of a stream"):
            list(events.streams("order"))


def _chain_chunk(
    version: int, base_version: int, *, number: int = 0, deleted: bool = False, erased: bool = False
) -> Chunk:
    """A chunk of STREAM following ``base_version``, one event per version it covers."""
    covered = range(base_version + 1, version + 1)
    events = tuple(
        EventRecord("Added", f"e{v}", {}, {}, WHEN, version=v if len(covered) > 1 else None)
        for v in covered
    )
    if deleted or erased:
        events = ()
    return Chunk(
        STREAM, version, number, base_version, f"a{version}", events, None, deleted, erased
    )


def _listed(*chunks: Chunk) -> tuple[list[ChunkKey], Callable[[ChunkKey], Chunk], list[str]]:
    """The locations of ``chunks`` as a stream lists them (newest first), a ``read`` for the
    walk, and the keys that ``read`` was called with."""
    keys = StreamKeys()
    by_key = {keys.chunk_key(STREAM, c.version, c.number): c for c in chunks}
    listed = [keys.parse(STREAM, key) for key in sorted(by_key)]
    reads: list[str] = []

    def read(where: ChunkKey) -> Chunk:
        reads.append(where.key)
        return by_key[where.key]

    return listed, read, reads


def _versions(steps: Iterator[Link[ChunkKey] | ChainBreak]) -> list[tuple[int, int] | ChainBreak]:
    """Each link as (version, number), each break as it is."""
    return [
        (step.chunk.version, step.chunk.number) if isinstance(step, Link) else step
        for step in steps
    ]


class TestChainWalk:
    """The one walk of a stream's chain that the event store's reads and verification share."""

    def test_highest_chunk_of_each_version_down_the_base_versions(self) -> None:
        """From the top, the walk takes each version's highest chunk and follows its
        base_version, so a merged chunk's versions are not read; it reads only its links."""
        listed, read, reads = _listed(
            _chain_chunk(1, 0),
            _chain_chunk(2, 1),
            _chain_chunk(3, 2),
            _chain_chunk(3, 1, number=1),  # merged: stands for versions 2 and 3
            _chain_chunk(4, 3),
        )
        newest = newest_of_each_version(listed)
        assert {v: where.number for v, where in newest.items()} == {4: 0, 3: 1, 2: 0, 1: 0}
        assert _versions(walk_chain(newest, read)) == [(4, 0), (3, 1), (1, 0)]
        assert [StreamKeys().parse(STREAM, key).version for key in reads] == [4, 3, 1]

    def test_reads_one_link_at_a_time(self) -> None:
        """A caller that stops after the first link has read only that chunk."""
        listed, read, reads = _listed(_chain_chunk(1, 0), _chain_chunk(2, 1))
        steps = walk_chain(newest_of_each_version(listed), read)
        first = next(steps)
        assert isinstance(first, Link)
        assert first.chunk.version == 2
        assert len(reads) == 1

    def test_listing_consumed_down_to_after_version(self) -> None:
        """Only the locations above after_version are kept, and the listing is consumed no
        further than the first location at or below it (a lazy listing lists no more)."""
        listed, read, _ = _listed(*(_chain_chunk(v, v - 1) for v in range(1, 6)))
        remaining = iter(listed)
        newest = newest_of_each_version(remaining, after_version=2)
        assert sorted(newest) == [3, 4, 5]
        assert next(remaining).version == 1  # version 2 was taken to see where to stop
        assert _versions(walk_chain(newest, read, after_version=2)) == [(5, 0), (4, 0), (3, 0)]

    def test_nothing_after_after_version(self) -> None:
        """An empty listing, or one with nothing above after_version, is an empty chain."""
        listed, read, reads = _listed(_chain_chunk(1, 0))
        assert list(walk_chain({}, read)) == []
        assert list(walk_chain({1: listed[0]}, read, after_version=1)) == []
        assert reads == []

    def test_missing_version_breaks(self) -> None:
        """A version no chunk stands for ends the chain with a break naming the key of the
        chunk whose events follow it, and the missing version."""
        listed, read, _ = _listed(_chain_chunk(1, 0), _chain_chunk(3, 2), _chain_chunk(4, 3))
        assert _versions(walk_chain(newest_of_each_version(listed), read)) == [
            (4, 0),
            (3, 0),
            ChainBreak(BreakReason.MISSING, listed[1].key, 2),
        ]

    def test_erased_chunk_breaks(self) -> None:
        """An erased chunk in the chain ends it with a break naming its key and version."""
        listed, read, _ = _listed(_chain_chunk(1, 0), _chain_chunk(2, 1, erased=True))
        assert _versions(walk_chain(newest_of_each_version(listed), read)) == [
            ChainBreak(BreakReason.ERASED, listed[0].key, 2)
        ]

    def test_tombstone_is_a_link_only_at_the_top(self) -> None:
        """A tombstone at the top is a link (the caller says whether that is an error); one
        below the top ends the chain with a break naming it."""
        listed, read, _ = _listed(_chain_chunk(1, 0), _chain_chunk(2, 1, deleted=True))
        assert _versions(walk_chain(newest_of_each_version(listed), read)) == [(2, 0), (1, 0)]
        listed, read, _ = _listed(
            _chain_chunk(1, 0), _chain_chunk(2, 1, deleted=True), _chain_chunk(3, 2)
        )
        assert _versions(walk_chain(newest_of_each_version(listed), read)) == [
            (3, 0),
            ChainBreak(BreakReason.TOMBSTONE, listed[1].key, 2),
        ]


class TestChunksAtABreak:
    """How EventStore.chunks turns each break of the shared walk into its error, and its cost.

    The exact counts are those of a store reading one chunk at a time: a read-ahead store may
    have started a GET below a break before it reads the break (see TestReadAhead).
    """

    @pytest.fixture
    def events(self, store: InMemoryObjectStore) -> EventStore:
        """An event store on the in-memory store that reads one chunk at a time."""
        return EventStore(store, read_ahead=0)

    def _put(self, store: InMemoryObjectStore, chunk: Chunk) -> str:
        key = StreamKeys().chunk_key(STREAM, chunk.version, chunk.number)
        store.delete(key)
        store.put_if_absent(key, encode_chunk(chunk))
        return key

    @pytest.mark.parametrize(("tombstone", "gets"), [(3, 1), (2, 2)])
    def test_tombstone(
        self, store: InMemoryObjectStore, events: EventStore, tombstone: int, gets: int
    ) -> None:
        """A tombstone, at the top (a deleted stream) or below it, raises StreamDeleted with
        its version after one LIST and the GETs down to it."""
        _fill(events, 3)
        self._put(store, _chain_chunk(tombstone, tombstone - 1, deleted=True))
        requests = _requests(store)
        with pytest.raises(StreamDeleted) as raised:
            list(events.chunks(STREAM))
        assert raised.value.version == tombstone
        assert requests() == RequestCounts(list=1, get=gets)

    def test_erased_chunk_that_stays(self, store: InMemoryObjectStore, events: EventStore) -> None:
        """An erased chunk that no merged chunk stands for makes chunks list again, three times
        in all, then raises CorruptChunk naming it."""
        _fill(events, 3)
        key = self._put(store, _chain_chunk(2, 1, erased=True))
        requests = _requests(store)
        with pytest.raises(CorruptChunk, match="an erased chunk in the chain") as raised:
            list(events.chunks(STREAM))
        assert raised.value.key == key
        assert requests() == RequestCounts(list=3, get=6)

    def test_gap_costs(self, store: InMemoryObjectStore, events: EventStore) -> None:
        """A missing version is found after reading the chunks above it: one LIST, no more."""
        keys = _fill(events, 4)
        store.delete(keys[1])
        requests = _requests(store)
        with pytest.raises(CorruptChunk, match="stream order/o-1 has no version 2"):
            list(events.chunks(STREAM))
        assert requests() == RequestCounts(list=1, get=2)


def _slow(store: ObjectStore) -> ObjectStore:
    """``store`` with GETs slow enough (1.5 ms) for a read to send them ahead: from memory,
    one at a time is faster."""
    return LatencyObjectStore(store, SimulatedLatency(put=0, get=0.0015, list=0, delete=0))


class _BarrierStore(ForwardingObjectStore):
    """Lets a GET through only once ``parties`` GETs wait together (after the first ``free``).

    A read that sends them one at a time would wait for ever: the barrier's timeout fails it.
    """

    def __init__(self, inner: ObjectStore, parties: int, free: int) -> None:
        super().__init__(inner)
        self._barrier = threading.Barrier(parties, timeout=30)
        self._free = free
        self._lock = threading.Lock()

    def get(self, key: str) -> StoredObject | None:
        with self._lock:
            free, self._free = self._free > 0, self._free - 1
        if free:
            time.sleep(0.002)  # slow enough for the read to send the next GETs ahead
        else:
            self._barrier.wait()
        return super().get(key)


class TestReadAhead:
    """Reads of a stream's chunks send GETs ahead, and no more of them than needed."""

    @pytest.mark.parametrize(
        ("length", "depth"), [(1, 4), (2, 4), (3, 1), (3, 4), (40, 1), (40, 4), (1_001, 32)]
    )
    def test_same_requests_as_one_at_a_time(
        self, store: InMemoryObjectStore, length: int, depth: int
    ) -> None:
        """A stream of appends costs the same requests, and reads the same chunks, at any
        read-ahead depth as one chunk at a time, from the start or after a version."""
        _fill(_event_store(store), length)
        serial = EventStore(store, read_ahead=0)
        ahead = EventStore(_slow(store), read_ahead=depth)
        for after in sorted({0, length // 2, length - 1}):
            counts, read = [], []
            for events in (serial, ahead):
                requests = _requests(store)
                read.append(list(events.chunks(STREAM, after_version=after)))
                counts.append(requests())
            assert read[0] == read[1]
            expected = RequestCounts(list=1 + (length - after) // 1_000, get=length - after)
            assert counts[0] == counts[1] == expected

    def test_gets_in_flight_together(self, store: InMemoryObjectStore) -> None:
        """After the newest chunk, the next ``read_ahead`` chunks are requested together."""
        _fill(_event_store(store), 9)
        events = EventStore(_BarrierStore(store, parties=4, free=1), read_ahead=4)
        assert [chunk.version for chunk in events.chunks(STREAM)] == list(range(1, 10))

    def test_meters_count_the_gets_sent_ahead(self, store: InMemoryObjectStore) -> None:
        """GETs sent from the read-ahead threads count in the caller's request meter."""
        _fill(_event_store(store), 12)
        with measure_requests() as meter:
            list(EventStore(_slow(store), read_ahead=4).chunks(STREAM))
        assert meter.counts == RequestCounts(list=1, get=12)

    def test_compacted_chunk_skips_the_versions_it_covers(self, store: InMemoryObjectStore) -> None:
        """Below a chunk of a higher number, nothing is fetched until it is read: the versions a
        compacted chunk covers cost no GET, and only the links of the chain are read."""
        events = _event_store(store)
        _fill(events, 10)
        chunks = list(events.chunks(STREAM))
        compacted = attrs.evolve(
            chunks[-1],
            number=1,
            base_version=0,
            events=tuple(
                attrs.evolve(event, version=chunk.version)
                for chunk in chunks
                for event in chunk.events
            ),
        )
        events.store(compacted)
        for version in range(11, 16):
            events.append(STREAM, _events(events, version), expected_version=version - 1)
        requests = _requests(store)
        read = list(EventStore(_slow(store), read_ahead=32).chunks(STREAM))
        assert [(chunk.version, chunk.number) for chunk in read] == [
            (10, 1),
            *((version, 0) for version in range(11, 16)),
        ]
        assert requests() == RequestCounts(list=1, get=6)

    def test_waste_at_a_break_is_bounded(self, store: InMemoryObjectStore) -> None:
        """A tombstone below the top ends the walk; the GETs sent ahead below it are at most
        ``read_ahead``."""
        events = _event_store(store)
        _fill(events, 20)
        key = StreamKeys().chunk_key(STREAM, 15)
        store.delete(key)
        store.put_if_absent(key, encode_chunk(_chain_chunk(15, 14, deleted=True)))
        requests = _requests(store)
        with pytest.raises(StreamDeleted):
            list(EventStore(_slow(store), read_ahead=4).chunks(STREAM))
        sent = requests()
        assert sent.list == 1
        assert 6 <= sent.get <= 6 + 4  # 20 down to 15, and what was sent ahead of 15

    def test_invalid_depth(self, store: InMemoryObjectStore) -> None:
        """A read_ahead that is not an int >= 0 is refused when the store is made."""
        for depth in (-1, 1.5, True):
            with pytest.raises(InvalidConfiguration, match="read_ahead must be an int >= 0"):
                EventStore(store, read_ahead=depth)  # type: ignore[arg-type]
