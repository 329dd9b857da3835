"""The caller's expected version: ``handle(..., expected_version=...)`` and WrongExpectedVersion."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3es import (
    Backoff,
    CommandHandler,
    CommandResult,
    ConcurrencyError,
    EventStore,
    ExpectedVersion,
    GroupCommit,
    InMemoryObjectStore,
    InvalidConfiguration,
    Repository,
    RetryPolicy,
    S3esError,
    StreamName,
)
from s3es.errors import WrongExpectedVersion
from s3es.metering import RequestCounts
from s3es.storage import ObjectStore
from tests.aggregates import (
    Counter,
    CounterCommand,
    CounterError,
    CounterState,
    Decrement,
    Increment,
    IncrementEach,
    Incremented,
    InterceptingStore,
    RecordingCounter,
)

STREAM = StreamName("counter", "c-1")
ANY, NO_STREAM, STREAM_EXISTS = (
    ExpectedVersion.ANY,
    ExpectedVersion.NO_STREAM,
    ExpectedVersion.STREAM_EXISTS,
)
#: Many attempts: a test that sees one retry, or none, shows it is the expectation that stops it.
POLICY = RetryPolicy(max_attempts=10, backoff=Backoff(initial=0.0001, maximum=0.001))
Result = CommandResult[CounterState, Any]


def _handler(
    store: ObjectStore, aggregate: Counter | None = None, **kwargs: Any
) -> tuple[CommandHandler[Any, Any, Any], list[float]]:
    """A handler on ``store`` whose backoff pauses are recorded instead of slept."""
    slept: list[float] = []
    repository = Repository(EventStore(store), aggregate or Counter())
    return CommandHandler(repository, POLICY, sleep=slept.append, **kwargs), slept


def _stream_at(store: ObjectStore, version: int) -> None:
    """Append ``Increment(1)`` to STREAM until it is at ``version`` (through another handler)."""
    writer, _ = _handler(store)
    for _ in range(version):
        writer.handle(STREAM.id, Increment(1))


def _versions(store: ObjectStore) -> list[int]:
    """The version of each event stored in STREAM."""
    return [recorded.version for recorded in Repository(EventStore(store), Counter).read(STREAM.id)]


class Rival:
    """Before our next PUT, another handler appends ``Increment(100)``, ``appends`` times."""

    def __init__(self, inner: ObjectStore, appends: int = 1) -> None:
        self.handler, _ = _handler(inner)
        self.appends = appends
        self.done = False

    def __call__(self, key: str) -> None:
        if not self.done and key.endswith(".999999.json"):
            self.done = True
            for _ in range(self.appends):
                self.handler.handle(STREAM.id, Increment(100))


def _racing(version: int) -> InterceptingStore:
    """A store whose STREAM is at ``version``, on which a rival wins our next PUT."""
    inner = InMemoryObjectStore()
    _stream_at(inner, version)
    return InterceptingStore(inner, before_put=Rival(inner))


class TestTheError:
    def test_carries_stream_expected_and_actual(self) -> None:
        """The error names the stream, the expectation given and the version found."""
        error = WrongExpectedVersion(STREAM, 2, 3)
        assert (error.stream, error.expected_version, error.actual_version) == (STREAM, 2, 3)
        assert str(error) == (
            "stream counter/c-1 is at version 3, which does not match the expected version 2: "
            "nothing was stored"
        )
        named = WrongExpectedVersion(STREAM, NO_STREAM, 1)
        assert "expected version ExpectedVersion.NO_STREAM" in str(named)

    def test_is_no_concurrency_error(self) -> None:
        """Code that retries ConcurrencyError does not catch it: only the caller may decide
        again."""
        assert issubclass(WrongExpectedVersion, S3esError)
        assert not issubclass(WrongExpectedVersion, ConcurrencyError)


class TestValidation:
    @pytest.mark.parametrize("expected", [-1, True, "any", 1.0, None, "0"])
    def test_refused_before_any_request(self, expected: Any) -> None:
        """Anything but an int >= 0 or an ExpectedVersion is refused, naming the stream and
        the value, before a request is sent."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        with pytest.raises(InvalidConfiguration, match=r"stream counter/c-1") as raised:
            handler.handle(STREAM.id, Increment(1), expected_version=expected)
        assert repr(expected) in str(raised.value)
        assert store.requests == RequestCounts()


class TestExactVersion:
    def test_cold_match(self) -> None:
        """On a cold handler a matching version costs a load and the PUT; the result is the
        next version."""
        store = InMemoryObjectStore()
        _stream_at(store, 3)
        handler, _ = _handler(store)
        before = store.requests
        result = handler.handle(STREAM.id, Increment(5), expected_version=3)
        assert result.version == 4
        assert result.state == CounterState(total=8, events=4)
        assert store.requests - before == RequestCounts(list=1, get=1, put=1)

    def test_warm_match_is_one_put(self) -> None:
        """A warm command whose expected version matches the cache sends its PUT alone, as
        a client chaining each result's version into the next command does."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        version = handler.handle(STREAM.id, Increment(1)).version
        for amount in range(2, 12):
            before = store.requests
            result = handler.handle(STREAM.id, Increment(amount), expected_version=version)
            assert store.requests - before == RequestCounts(put=1)
            assert result.requests == RequestCounts(put=1)
            assert result.version == version + 1
            version = result.version
        assert _versions(store) == list(range(1, 12))

    @pytest.mark.parametrize("expected", [0, 2, 4, 99])
    def test_mismatch_on_a_load(self, expected: int) -> None:
        """A stream at another version than expected raises with the version it is at, and
        nothing is stored."""
        store = InMemoryObjectStore()
        _stream_at(store, 3)
        handler, slept = _handler(store)
        before = store.requests
        with pytest.raises(WrongExpectedVersion) as raised:
            handler.handle(STREAM.id, Increment(5), expected_version=expected)
        error = raised.value
        assert (error.stream, error.expected_version, error.actual_version) == (STREAM, expected, 3)
        assert store.requests - before == RequestCounts(list=1, get=1)
        assert _versions(store) == [1, 2, 3]
        assert slept == []

    def test_cache_behind_is_no_false_mismatch(self) -> None:
        """A cached state behind the version the caller saw is brought up to date first: the
        command passes (a LIST and a GET to catch up, then the PUT)."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        handler.handle(STREAM.id, Increment(1))
        other, _ = _handler(store)
        other.handle(STREAM.id, Increment(10))  # version 2, unknown to handler's cache
        before = store.requests
        result = handler.handle(STREAM.id, Increment(5), expected_version=2)
        assert (result.version, result.state.total) == (3, 16)
        assert store.requests - before == RequestCounts(list=1, get=1, put=1)

    def test_cache_behind_and_caller_too(self) -> None:
        """A caller expecting the version the cache holds, while another writer moved the
        stream on: the conditional PUT is the check. It loses, and the winner's chunk read with
        the conflict gives the actual version."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        handler.handle(STREAM.id, Increment(1))
        other, _ = _handler(store)
        other.handle(STREAM.id, Increment(10))
        before = store.requests
        with pytest.raises(WrongExpectedVersion) as raised:
            handler.handle(STREAM.id, Increment(5), expected_version=1)
        assert (raised.value.expected_version, raised.value.actual_version) == (1, 2)
        assert store.requests - before == RequestCounts(put=1, get=1)
        assert _versions(store) == [1, 2]

    def test_cache_ahead_of_the_caller(self) -> None:
        """A caller that saw an older version than the cache holds gets the mismatch; the LIST
        that confirms the cache finds nothing newer."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        handler.handle(STREAM.id, Increment(1))
        handler.handle(STREAM.id, Increment(2))
        before = store.requests
        with pytest.raises(WrongExpectedVersion) as raised:
            handler.handle(STREAM.id, Increment(5), expected_version=1)
        assert raised.value.actual_version == 2
        assert store.requests - before == RequestCounts(list=1)

    def test_lost_put_is_a_mismatch_never_retried(self) -> None:
        """Two handlers: ours expects version n, the rival appends first. Ours raises with
        actual n + 1 after one decision and no pause, and its events are not stored."""
        store = _racing(2)
        recording = RecordingCounter()
        handler, slept = _handler(store, recording)
        with pytest.raises(WrongExpectedVersion) as raised:
            handler.handle(STREAM.id, Increment(5), expected_version=2)
        error = raised.value
        assert (error.stream, error.expected_version, error.actual_version) == (STREAM, 2, 3)
        assert recording.decided_on == [CounterState(total=2, events=2)]
        assert slept == []
        stored = list(Repository(EventStore(store.inner), Counter).read(STREAM.id))
        assert [recorded.event for recorded in stored][-1] == Incremented(100)
        assert _versions(store.inner) == [1, 2, 3]

    def test_lost_put_costs_the_put_and_the_winner(self) -> None:
        """The mismatch after a lost PUT costs the PUT and the GET of the winning chunk, and
        leaves the winner's state cached: the caller's resend at n + 1 is one PUT."""
        store = _racing(2)
        handler, _ = _handler(store)
        handler.handle(STREAM.id, Increment(0))  # warm: the cache holds version 2
        sent = store.requests
        with pytest.raises(WrongExpectedVersion):
            handler.handle(STREAM.id, Increment(5), expected_version=2)
        assert store.requests - sent == RequestCounts(put=1, get=1)
        sent = store.requests
        result = handler.handle(STREAM.id, Increment(5), expected_version=3)
        assert store.requests - sent == RequestCounts(put=1)
        assert (result.version, result.state.total) == (4, 107)

    def test_no_events_on_a_matching_version(self) -> None:
        """A command that decides nothing on the expected version stores nothing; if the
        stream moved past it meanwhile, that is the mismatch."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        handler.handle(STREAM.id, Increment(1))
        assert handler.handle(STREAM.id, Increment(0), expected_version=1).version == 1
        _handler(store)[0].handle(STREAM.id, Increment(1))
        with pytest.raises(WrongExpectedVersion) as raised:
            handler.handle(STREAM.id, Increment(0), expected_version=1)
        assert raised.value.actual_version == 2

    def test_domain_error_on_a_matching_version(self) -> None:
        """On the expected version, a command the domain refuses raises the domain's error."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        with pytest.raises(CounterError):
            handler.handle(STREAM.id, Decrement(1), expected_version=0)

    def test_mismatch_before_decide(self) -> None:
        """On a mismatch the aggregate's decide is never called: the expectation comes first."""
        store = InMemoryObjectStore()
        _stream_at(store, 1)
        recording = RecordingCounter()
        handler, _ = _handler(store, recording)
        with pytest.raises(WrongExpectedVersion):
            handler.handle(STREAM.id, Decrement(99), expected_version=0)
        assert recording.decided_on == []


class TestNoStream:
    def test_creates(self) -> None:
        """On a stream with no version, the command is stored as version 1."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        result = handler.handle(STREAM.id, Increment(3), expected_version=NO_STREAM)
        assert (result.version, result.state.total) == (1, 3)

    def test_existing_stream(self) -> None:
        """On a stream with a version, the mismatch carries that version and the expectation
        as given."""
        store = InMemoryObjectStore()
        _stream_at(store, 2)
        handler, _ = _handler(store)
        with pytest.raises(WrongExpectedVersion) as raised:
            handler.handle(STREAM.id, Increment(3), expected_version=NO_STREAM)
        assert (raised.value.expected_version, raised.value.actual_version) == (NO_STREAM, 2)

    def test_racing_create(self) -> None:
        """Of two creates, the one that loses the PUT raises with version 1, not retried."""
        store = _racing(0)
        handler, slept = _handler(store)
        with pytest.raises(WrongExpectedVersion) as raised:
            handler.handle(STREAM.id, Increment(3), expected_version=NO_STREAM)
        assert raised.value.actual_version == 1
        assert slept == []
        assert _versions(store.inner) == [1]

    def test_same_as_version_zero(self) -> None:
        """NO_STREAM is the check of version 0: no version yet."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        assert handler.handle(STREAM.id, Increment(1), expected_version=0).version == 1
        with pytest.raises(WrongExpectedVersion):
            handler.handle(STREAM.id, Increment(1), expected_version=NO_STREAM)


class TestStreamExists:
    def test_no_stream(self) -> None:
        """A stream with no version raises with actual version 0, and nothing is created."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        with pytest.raises(WrongExpectedVersion) as raised:
            handler.handle(STREAM.id, Increment(3), expected_version=STREAM_EXISTS)
        assert (raised.value.expected_version, raised.value.actual_version) == (STREAM_EXISTS, 0)
        assert _versions(store) == []

    def test_existing_stream_and_warm_cost(self) -> None:
        """On a stream with a version the command passes; warm, it is one PUT."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        handler.handle(STREAM.id, Increment(1))
        before = store.requests
        result = handler.handle(STREAM.id, Increment(3), expected_version=STREAM_EXISTS)
        assert result.version == 2
        assert store.requests - before == RequestCounts(put=1)

    def test_conflict_is_retried(self) -> None:
        """Losing the PUT to another writer leaves the stream existing: decided again, as with
        ANY."""
        store = _racing(1)
        handler, slept = _handler(store)
        result = handler.handle(STREAM.id, Increment(3), expected_version=STREAM_EXISTS)
        assert (result.version, result.attempts, result.state.total) == (3, 2, 104)
        assert len(slept) == 1

    def test_cache_at_zero_is_refreshed(self) -> None:
        """A cached empty stream that another writer created since is no false mismatch."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        handler.handle(STREAM.id, Increment(0))  # caches version 0
        _stream_at(store, 1)
        result = handler.handle(STREAM.id, Increment(3), expected_version=STREAM_EXISTS)
        assert (result.version, result.state.total) == (2, 4)


class TestAny:
    @pytest.mark.parametrize("kwargs", [{}, {"expected_version": ANY}])
    def test_todays_behaviour(self, kwargs: dict[str, Any]) -> None:
        """The default, and ANY spelled out: no check, a lost PUT is decided again."""
        store = _racing(2)
        handler, _ = _handler(store)
        result = handler.handle(STREAM.id, Increment(1), **kwargs)
        assert (result.version, result.attempts) == (4, 2)


# Group commit


class _Gate:
    """Holds the first request it is called for until ``waiting`` commands queue behind it."""

    def __init__(self, waiting: int) -> None:
        self.waiting = waiting
        self.handler: CommandHandler[Any, Any, Any] | None = None
        self.opened = False
        #: Set once the first command holds its request: the others may queue from then on.
        self.entered = threading.Event()

    def queued(self) -> int:
        """How many commands wait in the stream's lane behind the one in flight."""
        assert self.handler is not None
        return len(self.handler._lanes._lanes.get(STREAM.id, ()))

    def until_queued(self, count: int) -> None:
        """Wait until ``count`` commands wait in the lane (the order they queue in is decided
        by this, not by how fast a thread starts)."""
        deadline = time.monotonic() + 10
        while self.queued() < count:
            assert time.monotonic() < deadline, f"{count} commands never queued"
            time.sleep(0.001)

    def __call__(self) -> None:
        if self.opened:
            return
        self.opened = True
        self.entered.set()
        self.until_queued(self.waiting)


#: A command and the version it expects.
Expecting = tuple[CounterCommand, int | ExpectedVersion]


class GatedStore(InterceptingStore):
    """An InterceptingStore that also runs ``before_list`` before each LIST."""

    def __init__(
        self,
        inner: ObjectStore,
        *,
        before_put: Callable[[str], None],
        before_list: Callable[[], None] | None,
    ) -> None:
        super().__init__(inner, before_put=before_put)
        self.before_list = before_list

    def list_keys(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> Iterator[str]:
        """Run ``before_list``, then list."""
        if self.before_list is not None:
            self.before_list()
        return super().list_keys(prefix, start_after=start_after, limit=limit)


def _grouped(
    commands: Sequence[Expecting],
    *,
    version: int = 0,
    before_put: Callable[[str], None] | None = None,
    inner: ObjectStore | None = None,
    gate_list: bool = False,
    group_commit: bool | GroupCommit = True,
) -> tuple[InterceptingStore, list[Result | BaseException]]:
    """Run ``commands`` on one group-commit handler, STREAM at ``version``; all but the first
    queue behind the first one's PUT (its load's LIST with ``gate_list``), so they are decided
    as one group, in order. ``before_put`` runs before each PUT after the first."""
    inner = inner or InMemoryObjectStore()
    _stream_at(inner, version)
    gate = _Gate(len(commands) - 1)

    def hook(key: str) -> None:
        if not key.endswith(".999999.json"):
            return
        if gate.opened and before_put is not None:
            before_put(key)
        gate()

    store = GatedStore(inner, before_put=hook, before_list=gate if gate_list else None)
    handler, _ = _handler(store, group_commit=group_commit)
    gate.handler = handler

    def run(index: int) -> Result | BaseException:
        command, expected = commands[index]
        if index:
            assert gate.entered.wait(10), "the first command never reached its request"
            gate.until_queued(index - 1)  # queue in index order
        try:
            return handler.handle(STREAM.id, command, expected_version=expected)
        except Exception as error:
            return error

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        outcomes = list(pool.map(run, range(len(commands))))
    return store, outcomes


def _version_of(outcome: Result | BaseException) -> int:
    assert not isinstance(outcome, BaseException), outcome
    return outcome.version


def _mismatch(outcome: Result | BaseException) -> tuple[int | ExpectedVersion, int]:
    assert isinstance(outcome, WrongExpectedVersion), outcome
    return outcome.expected_version, outcome.actual_version


class TestGroupCommit:
    def test_same_version_expected_by_a_group(self) -> None:
        """Of a group of commands each expecting version 1, the first passes (version 2) and
        each other gets the mismatch with the version the first made."""
        leader: Expecting = (Increment(1), ANY)
        _, outcomes = _grouped([leader, *((Increment(n), 1) for n in (10, 20, 30))])
        assert [_version_of(outcomes[0]), _version_of(outcomes[1])] == [1, 2]
        assert [_mismatch(outcome) for outcome in outcomes[2:]] == [(1, 2), (1, 2)]

    def test_group_of_creates(self) -> None:
        """Of several creates queued together, one creates the stream; the rest see version 1."""
        creates: list[Expecting] = [(Increment(n), NO_STREAM) for n in (1, 2, 3)]
        store, outcomes = _grouped(creates)
        assert _version_of(outcomes[0]) == 1
        assert [_mismatch(outcome) for outcome in outcomes[1:]] == [(NO_STREAM, 1)] * 2
        assert _versions(store.inner) == [1]

    def test_exact_version_waits_for_the_writes_before_it(self) -> None:
        """A command expecting the version that the commands queued before it make is decided
        on that version's state and stored as the next one, as one at a time would do."""
        commands: list[Expecting] = [
            (Increment(1), ANY),
            (Increment(2), ANY),
            (Increment(3), 2),
            (Increment(4), ANY),
        ]
        store, outcomes = _grouped(commands)
        assert [_version_of(outcome) for outcome in outcomes] == [1, 2, 3, 3]
        exact = outcomes[2]
        assert not isinstance(exact, BaseException)
        assert exact.state.total == 6  # 1 + 2 + 3: decided on version 2's state
        assert _versions(store.inner) == [1, 2, 3, 3]

    def test_exact_version_overtaken_by_the_writes_before_it(self) -> None:
        """A command expecting the version before the group's writes gets the mismatch with the
        version the group was stored as."""
        commands: list[Expecting] = [(Increment(1), ANY), (Increment(2), ANY), (Increment(3), 1)]
        store, outcomes = _grouped(commands)
        assert [_version_of(outcome) for outcome in outcomes[:2]] == [1, 2]
        assert _mismatch(outcomes[2]) == (1, 2)
        assert _versions(store.inner) == [1, 2]

    def test_stream_exists_after_a_create_in_the_group(self) -> None:
        """STREAM_EXISTS after a command of its group that creates the stream passes in the
        same version: the stream exists by the time it is decided."""
        commands: list[Expecting] = [
            (Increment(0), ANY),
            (Increment(1), NO_STREAM),
            (Increment(2), STREAM_EXISTS),
        ]
        _, outcomes = _grouped(commands, gate_list=True)
        assert [_version_of(outcome) for outcome in outcomes] == [0, 1, 1]

    def test_conflict_fails_the_exact_and_retries_the_rest(self) -> None:
        """A group losing its PUT to a rival: the command expecting the lost version raises
        with the rival's version; the one expecting ANY is decided again and stored."""
        inner = InMemoryObjectStore()
        rival = Rival(inner)
        commands: list[Expecting] = [(Increment(1), ANY), (Increment(2), 1), (Increment(3), ANY)]
        store, outcomes = _grouped(commands, inner=inner, before_put=rival)
        assert _version_of(outcomes[0]) == 1
        assert _mismatch(outcomes[1]) == (1, 2)
        assert _version_of(outcomes[2]) == 3
        assert _versions(store.inner) == [1, 2, 3]

    def test_cut_commands_survive_a_lost_put(self) -> None:
        """Commands left for the next version (an exact one after a write, and those behind
        it) are still decided when the group loses its PUT and is decided again."""
        inner = InMemoryObjectStore()
        commands: list[Expecting] = [
            (Increment(1), ANY),
            (Increment(2), ANY),
            (Increment(3), 2),
            (Increment(4), ANY),
        ]
        store, outcomes = _grouped(commands, inner=inner, before_put=Rival(inner))
        assert [_version_of(outcomes[0]), _version_of(outcomes[1])] == [1, 3]
        assert _mismatch(outcomes[2]) == (2, 3)
        assert _version_of(outcomes[3]) == 4
        assert _versions(store.inner) == [1, 2, 3, 4]

    def test_cut_by_the_event_bound_survives_a_lost_put(self) -> None:
        """Commands past a group's event bound are still decided when the group loses its PUT
        (they used to be dropped, never answered)."""
        inner = InMemoryObjectStore()
        commands: list[Expecting] = [
            (Increment(1), ANY),
            (IncrementEach((2, 3)), ANY),
            (Increment(4), ANY),
        ]
        _, outcomes = _grouped(
            commands,
            inner=inner,
            before_put=Rival(inner),
            group_commit=GroupCommit(max_events=2),
        )
        assert [_version_of(outcome) for outcome in outcomes] == [1, 3, 4]

    def test_warm_matching_group_is_one_put(self) -> None:
        """A group led by a command whose expected version matches the cache is one PUT."""
        commands: list[Expecting] = [(Increment(1), 0), (Increment(2), 1), (Increment(3), ANY)]
        store, outcomes = _grouped(commands)
        assert [_version_of(outcome) for outcome in outcomes] == [1, 2, 2]
        assert store.requests == RequestCounts(list=1, put=2)


# Properties


class TestConcurrentProperties:
    @settings(max_examples=25, deadline=None)
    @given(
        history=st.integers(min_value=0, max_value=4),
        warm=st.booleans(),
        group_commit=st.booleans(),
        use_no_stream=st.booleans(),
        rivals=st.integers(min_value=1, max_value=3),
    )
    def test_rival_first_means_mismatch(
        self, history: int, warm: bool, group_commit: bool, use_no_stream: bool, rivals: int
    ) -> None:
        """Two handlers: ours expects version n, the other appends first (once or more, while
        ours is not looking). Ours raises with actual n + 1 (the winning chunk's version: the
        stream may be further on), stores nothing, never retries."""
        inner = InMemoryObjectStore()
        _stream_at(inner, history)
        rival = Rival(inner, appends=rivals)
        store = InterceptingStore(inner, before_put=rival)
        recording = RecordingCounter()
        handler, slept = _handler(store, recording, group_commit=group_commit)
        if warm:
            handler.handle(STREAM.id, Increment(0))
        recording.decided_on.clear()
        expected: int | ExpectedVersion = NO_STREAM if use_no_stream and history == 0 else history
        with pytest.raises(WrongExpectedVersion) as raised:
            handler.handle(STREAM.id, Increment(7), expected_version=expected)
        assert (raised.value.expected_version, raised.value.actual_version) == (
            expected,
            history + 1,
        )
        assert len(recording.decided_on) == 1
        assert slept == []
        assert _versions(inner) == list(range(1, history + rivals + 1))

    @settings(max_examples=10, deadline=None)
    @given(
        writers=st.integers(min_value=2, max_value=5),
        commands=st.integers(min_value=1, max_value=6),
        shared=st.booleans(),
        seed=st.integers(min_value=0, max_value=2**16),
    )
    def test_if_match_clients(self, writers: int, commands: int, shared: bool, seed: int) -> None:
        """Clients that read the version and send each command with it (an HTTP If-Match),
        resending after a mismatch: each passing command was decided on exactly the state it
        expected and stored as the next version; all are stored once, versions are gapless.
        Writers share one group-commit handler, or each has its own."""
        store = InMemoryObjectStore()
        repository = Repository(EventStore(store), Counter)
        pause = Backoff(initial=0.0001, maximum=0.001)

        def new_handler() -> CommandHandler[Any, Any, Any]:
            return CommandHandler(repository, POLICY, group_commit=shared)

        one = new_handler()
        amounts = itertools.count(1)
        lock = threading.Lock()
        results: list[Result] = []

        def client(index: int) -> None:
            handler = one if shared else new_handler()
            rng = random.Random(seed + index)
            for _ in range(commands):
                with lock:
                    amount = next(amounts)
                for attempt in itertools.count(1):
                    seen = repository.load(STREAM.id).version
                    try:
                        result = handler.handle(STREAM.id, Increment(amount), expected_version=seen)
                    except WrongExpectedVersion:
                        time.sleep(pause.delay(min(attempt, 8), rng))
                        continue
                    assert result.version == seen + 1
                    with lock:
                        results.append(result)
                    break

        with ThreadPoolExecutor(max_workers=writers) as pool:
            list(pool.map(client, range(writers)))

        stored = list(repository.read(STREAM.id))
        assert len(results) == writers * commands
        assert sorted(r.version for r in results) == list(range(1, writers * commands + 1))
        assert [r.version for r in stored] == list(range(1, writers * commands + 1))
        totals = itertools.accumulate(recorded.event.amount for recorded in stored)
        by_version = dict(zip((r.version for r in stored), totals, strict=True))
        for result in results:
            (event,) = result.events
            assert result.state.total == by_version[result.version]
            assert result.state.total - event.amount == by_version.get(result.version - 1, 0)
