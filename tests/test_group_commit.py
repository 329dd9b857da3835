"""Group commit: commands queued behind a stream's PUT in flight ride the next PUT together."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from s3es import (
    CommandHandler,
    CommandHooks,
    CommandResult,
    Conflict,
    EventStore,
    GroupCommit,
    InMemoryObjectStore,
    Repository,
)
from s3es.metering import RequestCounts
from s3es.storage import LatencyObjectStore, ObjectStore, SimulatedLatency
from tests.aggregates import (
    Counter,
    CounterCommand,
    CounterError,
    CounterState,
    Decrement,
    Increment,
    InterceptingStore,
)

STREAM_ID = "c-1"
Result = CommandResult[CounterState, Any]


def _handler(store: ObjectStore, **kwargs: Any) -> CommandHandler[Any, Any, Any]:
    return CommandHandler(Repository(EventStore(store), Counter), group_commit=True, **kwargs)


def _queued(handler: CommandHandler[Any, Any, Any]) -> int:
    """Commands waiting behind the stream's leader."""
    lane = handler._lanes._lanes.get(STREAM_ID)
    return 0 if lane is None else len(lane)


class _Gate:
    """Holds the first PUT until ``waiting`` commands queue behind it (then lets all pass)."""

    def __init__(self, waiting: int) -> None:
        self.waiting = waiting
        self.handler: CommandHandler[Any, Any, Any] | None = None
        self.opened = False

    def __call__(self, key: str) -> None:
        if self.opened or not key.endswith(".999999.json"):
            return
        self.opened = True
        assert self.handler is not None
        deadline = time.monotonic() + 10
        while _queued(self.handler) < self.waiting:
            assert time.monotonic() < deadline, "the other commands never queued"
            time.sleep(0.001)


def _gated(
    commands: Sequence[tuple[CounterCommand, dict[str, Any]]],
    *,
    inner: ObjectStore | None = None,
    before_put: Callable[[str], None] | None = None,
    max_chunk_bytes: int | None = None,
    hooks: CommandHooks = CommandHooks(),  # noqa: B008 - a frozen value
    group_commit: bool | GroupCommit = True,
) -> tuple[InterceptingStore, list[Result | BaseException]]:
    """Run ``commands`` in threads on one group-commit handler; the first PUT waits for all.

    The first command's PUT starts only once every other command has queued behind it, so they
    all ride the second PUT, whatever the threads' timing.
    """
    gate = _Gate(len(commands) - 1)

    def hook(key: str) -> None:
        gate(key)
        if before_put is not None:
            before_put(key)

    store = InterceptingStore(inner or InMemoryObjectStore(), before_put=hook)
    event_store = (
        EventStore(store)
        if max_chunk_bytes is None
        else EventStore(store, max_chunk_bytes=max_chunk_bytes)
    )
    handler = CommandHandler(
        Repository(event_store, Counter), group_commit=group_commit, hooks=hooks
    )
    gate.handler = handler
    first = threading.Event()

    def run(index: int) -> Result | BaseException:
        command, metadata = commands[index]
        if index:
            first.wait()
            time.sleep(0.001 * index)  # queue in index order (a nicety: nothing relies on it)
        else:
            first.set()
        try:
            return handler.handle(STREAM_ID, command, metadata=metadata)
        except Exception as error:
            return error

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        outcomes = list(pool.map(run, range(len(commands))))
    return store, outcomes


def _stored(store: ObjectStore) -> list[Any]:
    return list(Repository(EventStore(store), Counter).read(STREAM_ID))


class TestOneGroup:
    def test_queued_commands_share_one_put(self) -> None:
        """Commands queued behind the first PUT are stored by one more PUT, as one version."""
        commands = [(Increment(n), {"cmd": n}) for n in range(1, 9)]
        store, outcomes = _gated(commands)
        results = [o for o in outcomes if isinstance(o, CommandResult)]
        assert len(results) == 8
        assert store.requests.put == 2
        assert sorted(r.version for r in results) == [1] + [2] * 7
        stored = _stored(store)
        assert sorted(r.metadata["cmd"] for r in stored) == list(range(1, 9))
        assert {r.version for r in stored} == {1, 2}

    def test_each_caller_gets_its_own_events_and_state(self) -> None:
        """A result holds its own events, and the state right after its own decision."""
        commands = [(Increment(n), {"cmd": n}) for n in range(1, 6)]
        store, outcomes = _gated(commands)
        stored = _stored(store)
        totals, total = {}, 0
        for recorded in stored:
            total += recorded.event.amount
            totals[recorded.id] = total
        for outcome in outcomes:
            assert isinstance(outcome, CommandResult)
            (own,) = outcome.recorded
            assert own.metadata == {"cmd": own.event.amount}
            assert outcome.state.total == totals[own.id]

    def test_a_decision_that_raises_fails_only_its_own_command(self) -> None:
        """A refused command in a group raises its own error; the others are stored."""
        commands: list[tuple[CounterCommand, dict[str, Any]]] = [
            (Increment(1), {"cmd": "a"}),
            (Decrement(100), {"cmd": "refused"}),
            (Increment(2), {"cmd": "b"}),
        ]
        store, outcomes = _gated(commands)
        assert isinstance(outcomes[1], CounterError)
        assert [o.recorded[0].metadata for o in outcomes if isinstance(o, CommandResult)] == [
            {"cmd": "a"},
            {"cmd": "b"},
        ]
        assert sorted(r.metadata["cmd"] for r in _stored(store)) == ["a", "b"]

    def test_requests_are_counted_once(self) -> None:
        """The group's requests are counted by the command that sent them: no double counts."""
        commands: list[tuple[CounterCommand, dict[str, Any]]] = [
            (Increment(n), {}) for n in range(1, 5)
        ]
        store, outcomes = _gated(commands)
        total = RequestCounts()
        for outcome in outcomes:
            assert isinstance(outcome, CommandResult)
            total += outcome.requests
        assert total == store.requests


class TestConflict:
    def test_group_redecided_after_a_rival(self) -> None:
        """A rival process storing the version a group decided on: every queued command is
        decided again on the caught-up state, and each is stored exactly once."""
        inner = InMemoryObjectStore()
        rival = CommandHandler(Repository(EventStore(inner), Counter))
        fired: list[Result] = []
        second = rival.repository.event_store.keys.chunk_key(rival.repository.stream(STREAM_ID), 2)

        def race(key: str) -> None:
            if key == second and not fired:
                fired.append(rival.handle(STREAM_ID, Increment(100), metadata={"cmd": "rival"}))

        commands: list[tuple[CounterCommand, dict[str, Any]]] = [
            (Increment(n), {"cmd": n}) for n in range(1, 5)
        ]
        store, outcomes = _gated(commands, inner=inner, before_put=race)
        results = [o for o in outcomes if isinstance(o, CommandResult)]
        assert len(results) == 4
        assert len(fired) == 1
        stored = _stored(store)
        assert sorted(str(r.metadata["cmd"]) for r in stored) == ["1", "2", "3", "4", "rival"]
        grouped = [r for r in results if r.version == 3]
        assert len(grouped) == 3
        assert all(r.attempts == 2 for r in grouped)
        assert max(r.state.total for r in grouped) == 110

    def test_hooks_told_once_per_lost_put_and_once_per_command(self) -> None:
        """Under group commit, a lost PUT is one conflict carrying how many commands it held,
        and each caller's result is told once, as its handle returns it."""
        inner = InMemoryObjectStore()
        rival = CommandHandler(Repository(EventStore(inner), Counter))
        second = rival.repository.event_store.keys.chunk_key(rival.repository.stream(STREAM_ID), 2)
        fired: list[Result] = []

        def race(key: str) -> None:
            if key == second and not fired:
                fired.append(rival.handle(STREAM_ID, Increment(100)))

        conflicts: list[Conflict] = []
        told: list[Result] = []
        hooks = CommandHooks(on_result=told.append, on_conflict=conflicts.append)
        commands: list[tuple[CounterCommand, dict[str, Any]]] = [
            (Increment(n), {"cmd": n}) for n in range(1, 5)
        ]
        _, outcomes = _gated(commands, inner=inner, before_put=race, hooks=hooks)
        stream = rival.repository.stream(STREAM_ID)
        assert conflicts == [Conflict(stream, attempt=1, max_attempts=10, version=2, commands=3)]
        assert sorted(told, key=id) == sorted(outcomes, key=id)


class TestBounds:
    def test_max_commands(self) -> None:
        """GroupCommit(max_commands=2): the commands queued behind a PUT are stored two to a
        version, in order, every one once."""
        commands = [(Increment(n), {"cmd": n}) for n in range(1, 6)]
        store, outcomes = _gated(commands, group_commit=GroupCommit(max_commands=2))
        assert all(isinstance(o, CommandResult) for o in outcomes)
        stored = _stored(store)
        assert sorted(r.metadata["cmd"] for r in stored) == [1, 2, 3, 4, 5]
        versions = [r.version for r in stored]
        assert [versions.count(v) for v in sorted(set(versions))] == [1, 2, 2]

    def test_group_too_large_for_one_chunk_is_split(self) -> None:
        """A group whose chunk would exceed max_chunk_bytes is stored as several versions,
        each within the limit, every command once."""
        payload = "x" * 300
        commands = [(Increment(n), {"pad": payload, "cmd": n}) for n in range(1, 9)]
        store, outcomes = _gated(commands, max_chunk_bytes=2_000)
        assert all(isinstance(o, CommandResult) for o in outcomes)
        stored = _stored(store)
        assert sorted(r.metadata["cmd"] for r in stored) == list(range(1, 9))
        versions = sorted({r.version for r in stored})
        assert versions == list(range(1, len(versions) + 1))
        assert len(versions) > 2


def _check_history(store: ObjectStore, results_by_thread: Sequence[Sequence[Result]]) -> None:
    """Every acknowledged command's event stored exactly once, versions gapless, each
    thread's commands in its order, and each result's state the fold up to its own event."""
    stored = _stored(store)
    ids = [recorded.id for recorded in stored]
    assert len(ids) == len(set(ids))
    acknowledged = [r.recorded[0].id for results in results_by_thread for r in results]
    assert sorted(acknowledged) == sorted(ids)
    versions = sorted({recorded.version for recorded in stored})
    assert versions == list(range(1, len(versions) + 1))
    position = {event_id: index for index, event_id in enumerate(ids)}
    totals, total = {}, 0
    for recorded in stored:
        total += recorded.event.amount
        totals[recorded.id] = total
    for results in results_by_thread:
        own = [position[r.recorded[0].id] for r in results]
        assert own == sorted(own)
        assert [r.version for r in results] == sorted(r.version for r in results)
        for result in results:
            assert result.state.total == totals[result.recorded[0].id]


class TestUnderLoad:
    @settings(max_examples=8, deadline=None)
    @given(
        plans=st.lists(
            st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=6),
            min_size=2,
            max_size=6,
        )
    )
    def test_threads_sharing_a_handler(self, plans: list[list[int]]) -> None:
        """Threads depositing back to back through one handler: every acknowledged command
        stored once, in an order consistent with each caller's results, versions gapless."""
        store = InMemoryObjectStore()
        handler = _handler(LatencyObjectStore(store, SimulatedLatency.fixed(0.001)))

        def run(amounts: list[int]) -> list[Result]:
            return [handler.handle(STREAM_ID, Increment(amount)) for amount in amounts]

        with ThreadPoolExecutor(max_workers=len(plans)) as pool:
            results = list(pool.map(run, plans))
        _check_history(store, results)

    def test_fewer_requests_than_commands(self) -> None:
        """Eight threads of back-to-back commands through one handler, each PUT held until
        every thread not in its group has queued its next command: the groups alternate
        between the first leader's command alone and the seven others', whatever the machine's
        speed, so 80 commands take 20 PUTs."""
        threads, commands_per_thread = 8, 10
        lock = threading.Lock()
        #: Threads with a command still to issue or not yet returned.
        active = [threads]
        handler: CommandHandler[Any, Any, Any] | None = None

        def settled(group: int) -> bool:
            """Whether every active thread outside the group in flight waits in the lane."""
            assert handler is not None
            with lock:
                return _queued(handler) == active[0] - group

        store = _HeldPuts(InMemoryObjectStore(), settled)
        handler = _handler(store)

        def run(thread: int) -> list[Result]:
            assert handler is not None
            try:
                return [
                    handler.handle(STREAM_ID, Increment(1), metadata={"t": thread})
                    for _ in range(commands_per_thread)
                ]
            finally:
                with lock:
                    active[0] -= 1

        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(run, range(threads)))
        _check_history(store.inner, results)
        assert store.groups == [1, threads - 1] * commands_per_thread
        assert store.requests.put == 2 * commands_per_thread
        assert store.requests.total < threads * commands_per_thread / 2


class _HeldPuts(InterceptingStore):
    """Holds each PUT of a new version until ``settled(size of its group)`` holds.

    The group's size is the number of events in the chunk (one per command here). It records
    the sizes in ``groups``, in the order the PUTs went.
    """

    def __init__(self, inner: ObjectStore, settled: Callable[[int], bool]) -> None:
        super().__init__(inner)
        self.settled = settled
        self.groups: list[int] = []

    def put_if_absent(self, key: str, body: bytes) -> str:
        """Wait until ``settled`` (a hang guard of a minute: no thread ever waits that long),
        then put."""
        group = len(json.loads(body)["events"])
        deadline = time.monotonic() + 60
        while not self.settled(group):
            assert time.monotonic() < deadline, "the other threads never queued"
            time.sleep(0.0005)
        self.groups.append(group)
        return super().put_if_absent(key, body)
