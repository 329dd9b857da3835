"""Deleting a stream: tombstones from its next version on, then a fence at every version below."""

from __future__ import annotations

import threading
from typing import Any

import attrs
import pytest

from s3es import CommandHandler, EventStore, Repository, StreamDeleted, StreamName
from s3es._eventstore.store import StreamConflict
from s3es.eventstore import Chunk
from s3es.metering import RequestCounts
from s3es.ops import compact, delete, verify_stream
from s3es.storage import InMemoryObjectStore
from tests.aggregates import (
    FAST_RETRY,
    Counter,
    Increment,
    Incremented,
    InterceptingStore,
    counter_stream,
)

STREAM = StreamName("counter", "c-1")


class TestDelete:
    def test_tombstone_and_fences(self) -> None:
        """Deleting stores a tombstone at the next version and makes chunk 0 of every version
        below it a fence (a tombstone of that version, same key, no events); the result counts
        the chunks whose content went, and the requests sent."""
        store, repository = counter_stream(STREAM.id, 3)
        result = delete(repository, STREAM.id)
        assert (result.version, result.deleted) == (4, 3)
        assert result.requests == RequestCounts(list=2, get=4, put=4)
        assert _kinds(store, repository) == {4: "tombstone", 3: "fence", 2: "fence", 1: "fence"}
        assert verify_stream(repository.event_store, STREAM).ok

    def test_sweep_deletes_chunks_beside_chunk_0(self) -> None:
        """A merged or re-snapshotted chunk below the tombstone is deleted: only fences stay."""
        store, repository = counter_stream(STREAM.id, 3)
        compact(repository, STREAM.id)  # chunk 1 of version 3
        result = delete(repository, STREAM.id)
        assert (result.version, result.deleted) == (4, 4)
        assert result.requests.delete == 1
        assert _kinds(store, repository) == {4: "tombstone", 3: "fence", 2: "fence", 1: "fence"}

    def test_deleted_stream_refuses_reads_and_writes(self) -> None:
        """After deletion, load, replay, read, compact and handle raise StreamDeleted naming
        the stream and the tombstone's version."""
        _, repository = counter_stream(STREAM.id, 2)
        delete(repository, STREAM.id)
        handler = CommandHandler(repository)
        for attempt in (
            lambda: repository.load(STREAM.id),
            lambda: repository.replay(STREAM.id),
            lambda: list(repository.read(STREAM.id)),
            lambda: compact(repository, STREAM.id),
            lambda: handler.handle(STREAM.id, Increment(1)),
        ):
            with pytest.raises(StreamDeleted, match=r"stream counter/c-1 was deleted .*version 3"):
                attempt()

    def test_cached_writer_meets_the_tombstone(self) -> None:
        """A handler that remembers the stream's last version loses its PUT to the tombstone
        and gets StreamDeleted, not a retry; it then forgets the stream."""
        _, repository = counter_stream(STREAM.id, 0)
        handler = CommandHandler(repository, FAST_RETRY)
        handler.handle(STREAM.id, Increment(1))
        delete(repository, STREAM.id)
        with pytest.raises(StreamDeleted):
            handler.handle(STREAM.id, Increment(1))
        assert handler.cache.get(STREAM.id) is None

    def test_stale_writer_meets_a_fence(self) -> None:
        """A writer holding a state from before the deletion PUTs a version below the
        tombstone, loses it to that version's fence, reads it back and gets StreamDeleted: it
        is never told it stored a version of the deleted stream, and nothing is stored."""
        store, repository = counter_stream(STREAM.id, 0)
        stale, other = (
            CommandHandler(repository, FAST_RETRY),
            CommandHandler(repository, FAST_RETRY),
        )
        stale.handle(STREAM.id, Increment(1))  # stale remembers version 1
        other.handle(STREAM.id, Increment(2))
        delete(repository, STREAM.id)  # tombstone at 3, fences at 1 and 2
        keys = list(store.list_keys("counter/c-1/"))
        with pytest.raises(StreamDeleted, match="counter/c-1"):
            stale.handle(STREAM.id, Increment(5))  # its PUT at version 2 meets the fence
        assert list(store.list_keys("counter/c-1/")) == keys
        assert _kinds(store, repository) == {3: "tombstone", 2: "fence", 1: "fence"}

    def test_stale_append_conflicts_with_the_fence(self) -> None:
        """An append at a version below the tombstone is a StreamConflict carrying the fence."""
        _, repository = counter_stream(STREAM.id, 2)
        loaded = repository.load(STREAM.id)
        older = attrs.evolve(loaded, version=1)
        delete(repository, STREAM.id)
        with pytest.raises(StreamConflict) as conflict:
            repository.append(older, [Incremented(9)])
        assert conflict.value.found is not None
        assert (conflict.value.found.version, conflict.value.found.deleted) == (2, True)
        with pytest.raises(StreamDeleted):
            repository.refresh(older, conflict.value)

    def test_overtakes_a_writer_that_always_wins(self) -> None:
        """A writer that takes each version just before the deletion's PUT lands (as one
        appending back to back does) makes each round lose; the next round starts past the
        winning chunk the lost PUT hands back (no LIST, no GET of the latest) with twice as
        many tombstones, and the third round wins."""
        inner = InMemoryObjectStore()
        rival = CommandHandler(Repository(EventStore(inner), Counter))
        rival.handle(STREAM.id, Increment(1))
        rival_ahead = {"budget": 3}
        lock = threading.Lock()  # a round's tombstones are sent at once, from threads

        def rival_writes_first(key: str) -> None:
            with lock:
                if rival_ahead["budget"]:
                    rival_ahead["budget"] -= 1
                    rival.handle(STREAM.id, Increment(1))

        store = InterceptingStore(inner, before_put=rival_writes_first)
        result = delete(Repository(EventStore(store), Counter), STREAM.id)
        # Round 1: one tombstone at 2 (lost); round 2: 3 and 4 (lost: the rival took 3 and 4);
        # round 3: 5 to 8, all won. The stream's tombstone is the highest.
        assert result.version == 8
        with pytest.raises(StreamDeleted):
            rival.handle(STREAM.id, Increment(1))
        assert [call.kind for call in store.calls[:2]] == ["list", "get"]
        tombstone_puts = [c.key for c in store.calls if c.kind == "put"]
        assert len(tombstone_puts) == 1 + 2 + 4
        lists = [call for call in store.calls if call.kind == "list"]
        assert len(lists) == 2  # the latest at the start, the sweep's listing
        assert verify_stream(EventStore(inner), STREAM).ok

    def test_crash_between_tombstone_and_sweep(self) -> None:
        """A deletion that stopped after its tombstone leaves a stream that reads as deleted;
        running it again deletes the chunks it left."""
        store, repository = counter_stream(STREAM.id, 3)
        tombstone = Chunk(STREAM, 4, 0, 3, "tomb", (), None, deleted=True)
        repository.event_store.commit(tombstone)  # the tombstone, no sweep
        with pytest.raises(StreamDeleted):
            repository.load(STREAM.id)
        result = delete(repository, STREAM.id)
        assert (result.version, result.deleted) == (4, 3)
        assert result.requests.put == 3  # the fences: the tombstone was there already
        assert _kinds(store, repository) == {4: "tombstone", 3: "fence", 2: "fence", 1: "fence"}

    def test_a_deletion_before_fences_is_fenced_by_a_rerun(self) -> None:
        """A stream deleted with its chunks below the tombstone removed (as deletions did
        before fences) has a hole at every version; deleting it again fills each with a fence,
        put-if-absent, and verify finds it sound only then."""
        store, repository = counter_stream(STREAM.id, 2)
        tombstone = Chunk(STREAM, 3, 0, 2, "tomb", (), None, deleted=True)
        repository.event_store.commit(tombstone)
        for version in (1, 2):
            store.delete(repository.event_store.keys.chunk_key(STREAM, version))
        report = verify_stream(repository.event_store, STREAM)
        assert [problem.reason.split(",")[0] for problem in report.problems] == [
            "missing: version 1",
            "missing: version 2",
        ]
        delete(repository, STREAM.id)
        assert _kinds(store, repository) == {3: "tombstone", 2: "fence", 1: "fence"}
        assert verify_stream(repository.event_store, STREAM).ok

    def test_no_such_stream(self) -> None:
        """Deleting a stream with no chunks writes nothing."""
        store, repository = counter_stream(STREAM.id, 0)
        result = delete(repository, STREAM.id)
        assert (result.version, result.deleted) == (0, 0)
        assert store.requests.put == 0

    def test_appends_racing_the_deletion(self) -> None:
        """Writers appending while the stream is deleted either stored their command before the
        tombstone or get StreamDeleted; after a second sweep no chunk is left but the
        tombstone."""
        store, repository = counter_stream(STREAM.id, 1)
        start = threading.Barrier(4)
        outcomes: list[str] = []

        def write() -> None:
            handler = CommandHandler(repository, FAST_RETRY)
            start.wait()
            for _ in range(5):
                try:
                    handler.handle(STREAM.id, Increment(1))
                    outcomes.append("stored")
                except StreamDeleted:
                    outcomes.append("deleted")

        threads = [threading.Thread(target=write) for _ in range(3)]
        for thread in threads:
            thread.start()
        start.wait()
        deletion = delete(repository, STREAM.id)
        for thread in threads:
            thread.join()
        assert set(outcomes) <= {"stored", "deleted"}
        assert len(outcomes) == 15
        assert outcomes.count("stored") < deletion.version
        final = delete(repository, STREAM.id)
        assert final.version == deletion.version
        kinds = _kinds(store, repository)
        assert kinds.pop(deletion.version) == "tombstone"
        assert set(kinds.values()) == {"fence"}
        assert sorted(kinds) == list(range(1, deletion.version))
        assert verify_stream(repository.event_store, STREAM).ok


def _kinds(store: InMemoryObjectStore, repository: Repository[Any, Any, Any]) -> dict[int, str]:
    """Each version of the stream's keys: its tombstone (the highest), fences, or chunks."""
    event_store = repository.event_store
    listed = [event_store.keys.parse(STREAM, key) for key in store.list_keys("counter/c-1/")]
    assert all(where.number == 0 for where in listed), listed
    top = max(where.version for where in listed)
    kinds = {}
    for where in listed:
        found = event_store.read(where)
        assert found is not None
        chunk = found[0]
        kind = "chunk" if not chunk.deleted else "tombstone" if where.version == top else "fence"
        kinds[where.version] = kind
    return kinds


class TestFencesAboveTheTombstone:
    def test_an_erasure_fence_above_the_tombstone(self) -> None:
        """An erasure's round can store a fence above the tombstone a deletion stored at the
        round's lower version (the erasure then raises StreamDeleted). The stream reads as
        deleted; a deletion run again finds that tombstone, not a new one above the fence, and
        turns the fence into a tombstone too, so nothing but tombstones is left."""
        store = InMemoryObjectStore()
        events = EventStore(store)
        repository = Repository(events, Counter)
        handler = CommandHandler(repository)
        handler.handle("c-1", Increment(1))
        stream = repository.stream("c-1")
        events.commit(
            Chunk(stream, 2, 0, 1, "deletion", (), None, deleted=True),
        )
        events.commit(Chunk(stream, 3, 0, 2, "erasure", (), None, rebased=True))
        with pytest.raises(StreamDeleted):
            repository.load("c-1")
        again = delete(repository, "c-1")
        assert again.version == 2
        for key in store.list_keys(events.keys.stream_prefix(stream)):
            found = events.read(events.keys.parse(stream, key))
            assert found is not None
            assert found[0].deleted, key
        assert verify_stream(events, stream).ok
