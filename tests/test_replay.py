"""Replay, read-ahead and stale refresh: the requests they send, and the bench that measures them.

No timing is asserted: request counts and states only, which do not depend on the machine.
"""

from __future__ import annotations

import json

import attrs
import pytest
from bench.replay import (
    decode_floor,
    floor_runs,
    read_ahead_runs,
    stale_refreshes,
    stored_bodies,
)

from s3es import CommandHandler, CorruptChunk, EventStore, InMemoryObjectStore, Repository
from s3es.metering import RequestCounts
from s3es.ops import compact, erase
from tests.aggregates import Counter, CounterError, Decrement, Increment, counter_stream

BEHIND = (0, 1, 2, 3, 10, 200)


class TestStaleRefresh:
    def test_no_op_costs_at_most_a_load(self) -> None:
        """A command that stores nothing, decided on a cached state k versions behind, costs one
        LIST, and one GET if the stream moved: never a GET per missed version."""
        assert {refresh.behind: refresh.requests for refresh in stale_refreshes(BEHIND)} == {
            behind: RequestCounts(list=1, get=1 if behind else 0) for behind in BEHIND
        }

    def test_refusal_on_a_stale_state_is_confirmed_for_a_load(self) -> None:
        """A command refused on a cached state 50 versions behind is decided again on the
        latest state (1 LIST + 1 GET), and stored if that state allows it."""
        store = InMemoryObjectStore()
        stale = CommandHandler(Repository(EventStore(store), Counter))
        other = CommandHandler(Repository(EventStore(store), Counter))
        stale.handle("c-1", Increment(1))
        for _ in range(50):
            other.handle("c-1", Increment(1))
        result = stale.handle("c-1", Decrement(10))  # refused at total 1, allowed at 51
        assert (result.version, result.state.total) == (52, 41)
        assert result.requests == RequestCounts(list=1, get=1, put=1)

    def test_refusal_stands_after_the_refresh(self) -> None:
        """A refusal that the latest state confirms raises the domain error, after one LIST
        and one GET."""
        store = InMemoryObjectStore()
        stale = CommandHandler(Repository(EventStore(store), Counter))
        other = CommandHandler(Repository(EventStore(store), Counter))
        stale.handle("c-1", Increment(1))
        for _ in range(20):
            other.handle("c-1", Increment(1))
        before = store.requests
        with pytest.raises(CounterError):
            stale.handle("c-1", Decrement(100))
        assert store.requests - before == RequestCounts(list=1, get=1)


def _rewrite(store: InMemoryObjectStore, key: str, change: dict[str, object]) -> None:
    """Replace the chunk at ``key`` by its JSON with the fields of ``change`` set."""
    stored = store.get(key)
    assert stored is not None
    document = {**json.loads(stored.body), **change}
    store.replace(key, json.dumps(document).encode(), etag=stored.etag)


class TestOlderSnapshots:
    def test_only_the_newest_keeps_its_snapshot(self) -> None:
        """chunks(older_snapshots=False) gives the same chunks, with the snapshot of the newest
        alone; by default every chunk keeps its own."""
        _, repository = counter_stream("c-1", 4)
        stream = repository.stream("c-1")
        every = list(repository.event_store.chunks(stream))
        lean = list(repository.event_store.chunks(stream, older_snapshots=False))
        assert [chunk.snapshot is None for chunk in every] == [False] * 4
        assert [chunk.snapshot is None for chunk in lean] == [True, True, True, False]
        assert [attrs.evolve(chunk, snapshot=None) for chunk in every[:3]] == lean[:3]
        assert every[3] == lean[3]
        assert lean == list(repository.event_store.chunks(stream, older_snapshots=False)), (
            "the same on every read"
        )

    def test_a_merged_chunk_keeps_its_snapshot(self) -> None:
        """A chunk covering several versions (compaction's, or an erasure's, which may stand
        for a fence) keeps its snapshot below the newest: a reader catching up through it
        takes that state."""
        _, repository = counter_stream("c-1", 3)
        compact(repository, "c-1")
        CommandHandler(repository).handle("c-1", Increment(4))
        stream = repository.stream("c-1")
        lean = list(repository.event_store.chunks(stream, older_snapshots=False))
        assert [(chunk.version, chunk.base_version) for chunk in lean] == [(3, 0), (4, 3)]
        assert [chunk.snapshot is not None for chunk in lean] == [True, True]

    def test_an_erasure_fence_keeps_its_snapshot(self) -> None:
        """An erasure's fence below the newest chunk keeps its snapshot (the redacted state a
        reader catching up through it takes); the merged chunk below it keeps its own."""
        _, repository = counter_stream("c-1", 3)
        fenced = erase(repository, "c-1", lambda event: event)
        CommandHandler(repository).handle("c-1", Increment(4))
        stream = repository.stream("c-1")
        lean = list(repository.event_store.chunks(stream, older_snapshots=False))
        assert [(chunk.version, chunk.rebased) for chunk in lean] == [
            (3, False),
            (fenced.fence, True),
            (fenced.fence + 1, False),
        ]
        assert [chunk.snapshot is not None for chunk in lean] == [True, True, True]

    @pytest.mark.parametrize(
        ("snapshot", "field"),
        [
            pytest.param({"schema": "1", "version": 1, "state": {}}, "schema", id="str-schema"),
            pytest.param({"schema": 1, "version": True, "state": {}}, "version", id="bool-version"),
            pytest.param({"schema": 1, "version": 2, "state": {}}, "snapshot version", id="other"),
            pytest.param({"schema": 1, "version": 1}, "state", id="no-state"),
            pytest.param([], "snapshot", id="array"),
        ],
    )
    def test_an_older_snapshot_is_checked_as_strictly(self, snapshot: object, field: str) -> None:
        """A snapshot left out of an older chunk is still read strictly: a mistyped one makes
        the chunk corrupt, named by its key, as when it is kept."""
        store, repository = counter_stream("c-1", 3)
        stream = repository.stream("c-1")
        key = repository.event_store.keys.chunk_key(stream, 1)
        _rewrite(store, key, {"snapshot": snapshot})
        for older_snapshots in (True, False):
            with pytest.raises(CorruptChunk) as raised:
                list(repository.event_store.chunks(stream, older_snapshots=older_snapshots))
            assert raised.value.key == key
            assert field in raised.value.reason
        with pytest.raises(CorruptChunk):
            repository.replay("c-1")


class TestFloorBench:
    def test_replay_and_floor_agree(self) -> None:
        """At a tiny size, the floor folds the same state as Repository.replay (the bench
        checks it) from the same bytes, and the replay sends one LIST and a GET per chunk."""
        runs = floor_runs(((12, 1), (3, 4)), repeats=1)
        assert [(run.chunks, run.events_per_chunk, run.events) for run in runs] == [
            (12, 1, 12),
            (3, 4, 12),
        ]
        assert [run.requests for run in runs] == [
            RequestCounts(list=1, get=12),
            RequestCounts(list=1, get=3),
        ]

    def test_stored_bodies_are_the_chain(self) -> None:
        """The floor reads every chunk of the stream, oldest first."""
        from bench.commands import ledger_repository  # noqa: PLC0415
        from bench.loads import build_stream  # noqa: PLC0415

        repository = ledger_repository(InMemoryObjectStore())
        build_stream(repository, "s", 5, events_per_append=2)
        bodies = stored_bodies(repository, "s")
        assert len(bodies) == 5
        assert decode_floor(bodies) == repository.replay("s").state


class TestReadAheadBench:
    def test_same_requests_at_every_depth(self) -> None:
        """Read-ahead changes when the GETs are sent, not how many; a serial replay over the
        budget is modelled from its requests."""
        runs = read_ahead_runs(30, (0, 4), latency=0.002, budget=0.01)
        assert {run.requests for run in runs} == {RequestCounts(list=1, get=30)}
        assert [(run.read_ahead, run.modelled) for run in runs] == [(0, True), (4, False)]
