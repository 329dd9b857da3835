"""Compaction: a stream's chunks merged into one, safely, while others append."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from s3es import CommandHandler, EventStore, InMemoryObjectStore, Repository, StreamName
from s3es.metering import RequestCounts
from s3es.ops import compact
from tests.aggregates import (
    FAST_RETRY,
    Counter,
    CounterState,
    Increment,
    IncrementEach,
    counter_stream,
)
from tests.test_eventstore import rewrite

STREAM = StreamName("counter", "c-1")


class TestCompact:
    def test_replay_reads_one_chunk_after(self) -> None:
        """After compaction a full read sends one LIST and one GET, and finds the same events
        with the same versions and ids."""
        store, repository = counter_stream(STREAM.id, 20)
        before = list(repository.read(STREAM.id))
        result = compact(repository, STREAM.id)
        assert (result.version, result.merged, result.events) == (20, 20, 20)
        assert result.key == repository.event_store.keys.chunk_key(STREAM, 20, 1)
        assert result.requests == RequestCounts(list=1, get=20, put=1)
        sent = store.requests
        assert list(repository.read(STREAM.id)) == before
        assert store.requests - sent == RequestCounts(list=1, get=1)

    def test_state_unchanged(self) -> None:
        """A load and a replay after compaction give the state they gave before."""
        _, repository = counter_stream(STREAM.id, 7)
        loaded, replayed = repository.load(STREAM.id), repository.replay(STREAM.id)
        compact(repository, STREAM.id)
        assert repository.load(STREAM.id) == loaded
        assert repository.replay(STREAM.id) == replayed == loaded

    def test_appends_after_compaction(self) -> None:
        """Appends go on after a compacted chunk; a read joins the two; a second compaction
        merges the merged chunk with what came after."""
        store, repository = counter_stream(STREAM.id, 5)
        compact(repository, STREAM.id)
        handler = CommandHandler(repository)
        handler.handle(STREAM.id, IncrementEach((100, 200)))
        recorded = list(repository.read(STREAM.id))
        assert [r.version for r in recorded] == [1, 2, 3, 4, 5, 6, 6]
        assert repository.load(STREAM.id).state == CounterState(315, 7)
        second = compact(repository, STREAM.id)
        assert (second.version, second.merged, second.events) == (6, 2, 7)
        sent = store.requests
        assert list(repository.read(STREAM.id)) == recorded
        assert store.requests - sent == RequestCounts(list=1, get=1)

    def test_read_after_a_version_inside_the_merged_chunk(self) -> None:
        """Reading after version k of a compacted stream gives only the later events."""
        _, repository = counter_stream(STREAM.id, 6)
        compact(repository, STREAM.id)
        later = [(r.version, r.event.amount) for r in repository.read(STREAM.id, after_version=4)]
        assert later == [(5, 5), (6, 6)]

    def test_nothing_to_merge(self) -> None:
        """An empty stream, or one already in one chunk, is left as it is: nothing written."""
        store, repository = counter_stream(STREAM.id, 0)
        assert compact(repository, STREAM.id).key is None
        CommandHandler(repository).handle(STREAM.id, Increment(1))
        sent = store.requests
        result = compact(repository, STREAM.id)
        assert (result.key, result.merged) == (None, 0)
        assert (store.requests - sent).put == 0

    def test_re_run_merges_again_only_when_new(self) -> None:
        """Compacting a compacted stream with nothing new writes nothing."""
        store, repository = counter_stream(STREAM.id, 4)
        compact(repository, STREAM.id)
        sent = store.requests
        assert compact(repository, STREAM.id).key is None
        assert (store.requests - sent).put == 0

    def test_losing_the_merge_race(self) -> None:
        """When another writer took the merged chunk's key first, compact says so (key None)
        and the stream reads as before."""
        store, repository = counter_stream(STREAM.id, 3)
        rival = repository.event_store.keys.chunk_key(STREAM, 3, 1)
        chunk = repository.event_store.latest(STREAM)
        assert chunk is not None
        assert chunk.snapshot is not None
        rewrite(repository.event_store, chunk, chunk.snapshot)
        assert rival in list(store.list_keys("counter/c-1/"))
        # The rewrite took chunk 1 of version 3; the merge takes chunk 2.
        result = compact(repository, STREAM.id)
        assert result.key == repository.event_store.keys.chunk_key(STREAM, 3, 2)
        assert repository.replay(STREAM.id).state == CounterState(6, 3)


class TestStaleWriters:
    def test_stale_writer_after_compaction_conflicts_and_lands_once(self) -> None:
        """A writer whose cached version predates the compaction loses its PUT to the kept
        chunk 0, catches up and stores its command once, after everything else."""
        store = InMemoryObjectStore()
        repository = Repository(EventStore(store), Counter)
        stale, other = (
            CommandHandler(repository, FAST_RETRY),
            CommandHandler(repository, FAST_RETRY),
        )
        stale.handle(STREAM.id, Increment(1))  # stale now remembers version 1
        for amount in (2, 3, 4):
            other.handle(STREAM.id, Increment(amount))
        compact(repository, STREAM.id)
        result = stale.handle(STREAM.id, Increment(10))
        assert (result.version, result.state, result.conflicts) == (5, CounterState(20, 5), 2)
        assert [r.event.amount for r in repository.read(STREAM.id)] == [1, 2, 3, 4, 10]

    def test_deleting_a_version_lock_would_lose_an_append(self) -> None:
        """Why compaction deletes no chunk 0: with version 2's chunk 0 gone, a writer still at
        version 1 is told its append succeeded, yet a read of the stream never shows it."""
        store = InMemoryObjectStore()
        repository = Repository(EventStore(store), Counter)
        stale, other = (
            CommandHandler(repository, FAST_RETRY),
            CommandHandler(repository, FAST_RETRY),
        )
        stale.handle(STREAM.id, Increment(1))
        for amount in (2, 3):
            other.handle(STREAM.id, Increment(amount))
        compact(repository, STREAM.id)
        store.delete(repository.event_store.keys.chunk_key(STREAM, 2))  # what compaction never does
        acknowledged = stale.handle(STREAM.id, Increment(10))
        assert acknowledged.conflicts == 0  # told it succeeded, at version 2...
        assert 10 not in [r.event.amount for r in repository.read(STREAM.id)]  # ...and lost


class TestConcurrentCompaction:
    @settings(max_examples=15, deadline=None)
    @given(
        writers=st.integers(min_value=1, max_value=4),
        commands=st.integers(min_value=1, max_value=6),
        compactions=st.integers(min_value=1, max_value=4),
    )
    def test_appends_racing_compactions_lose_nothing(
        self, writers: int, commands: int, compactions: int
    ) -> None:
        """Writers append while compactions run: every acknowledged event is read back once,
        versions are gapless, and load equals replay."""
        store = InMemoryObjectStore()
        repository = Repository(EventStore(store), Counter)
        acknowledged: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(writers + 1)

        def write(n: int) -> None:
            handler = CommandHandler(repository, FAST_RETRY)
            start.wait()
            for amount in range(commands):
                result = handler.handle(STREAM.id, Increment(n * 100 + amount + 1))
                with lock:
                    acknowledged.extend(r.id for r in result.recorded)

        def compacting() -> None:
            start.wait()
            for _ in range(compactions):
                compact(repository, STREAM.id)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        threads.append(threading.Thread(target=compacting))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        recorded = list(repository.read(STREAM.id))
        assert sorted(r.id for r in recorded) == sorted(acknowledged)
        assert [r.version for r in recorded] == list(range(1, writers * commands + 1))
        assert repository.load(STREAM.id) == repository.replay(STREAM.id)
