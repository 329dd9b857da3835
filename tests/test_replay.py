"""Replay, read-ahead and stale refresh: the requests they send, and the bench that measures them.

No timing is asserted: request counts and states only, which do not depend on the machine.
"""

from __future__ import annotations

import pytest
from bench.replay import (
    decode_floor,
    floor_runs,
    read_ahead_runs,
    stale_refreshes,
    stored_bodies,
)

from s3es import CommandHandler, EventStore, InMemoryObjectStore, Repository
from s3es.metering import RequestCounts
from tests.aggregates import Counter, CounterError, Decrement, Increment

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
