"""Deleting a stream: a tombstone at its next version, then its chunks below it."""

from __future__ import annotations

import threading

import pytest

from s3es import CommandHandler, StreamDeleted, StreamName
from s3es.eventstore import Chunk
from s3es.metering import RequestCounts
from s3es.ops import compact, delete
from tests.aggregates import FAST_RETRY, Increment, counter_stream

STREAM = StreamName("counter", "c-1")


class TestDelete:
    def test_tombstone_and_sweep(self) -> None:
        """Deleting stores a tombstone at the next version and deletes every chunk below it;
        the result counts them and the requests sent."""
        store, repository = counter_stream(STREAM.id, 3)
        result = delete(repository, STREAM.id)
        assert (result.version, result.deleted) == (4, 3)
        assert result.requests == RequestCounts(list=2, get=1, put=1, delete=3)
        assert list(store.list_keys("counter/c-1/")) == [
            repository.event_store.keys.chunk_key(STREAM, 4)
        ]

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

    def test_rerun_sweeps_a_late_chunk(self) -> None:
        """A writer whose version predates the deletion may store a chunk below the tombstone;
        the stream still reads as deleted, and deleting again removes that chunk."""
        store, repository = counter_stream(STREAM.id, 0)
        stale, other = (
            CommandHandler(repository, FAST_RETRY),
            CommandHandler(repository, FAST_RETRY),
        )
        stale.handle(STREAM.id, Increment(1))
        other.handle(STREAM.id, Increment(2))
        delete(repository, STREAM.id)  # tombstone at 3, versions 1 and 2 deleted
        stale.handle(STREAM.id, Increment(5))  # stale at version 1: stores version 2 again
        with pytest.raises(StreamDeleted):
            repository.load(STREAM.id)
        again = delete(repository, STREAM.id)
        assert (again.version, again.deleted) == (3, 1)
        assert len(list(store.list_keys("counter/c-1/"))) == 1

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
        assert result.requests.put == 0  # the tombstone was there already
        assert len(list(store.list_keys("counter/c-1/"))) == 1

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
        final = delete(repository, STREAM.id)
        assert final.version == deletion.version
        assert list(store.list_keys("counter/c-1/")) == [
            repository.event_store.keys.chunk_key(STREAM, deletion.version)
        ]
