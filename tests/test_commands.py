"""The command handler: load, decide, append; on a conflict, catch up and decide again."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from s3es import (
    Backoff,
    CommandHandler,
    CommandHooks,
    ConcurrencyError,
    Conflict,
    CorruptChunk,
    EventStore,
    GaveUp,
    GroupCommit,
    InMemoryObjectStore,
    InvalidConfiguration,
    Repository,
    RetriesExhausted,
    RetryPolicy,
    StreamName,
)
from s3es.metering import RequestCounts
from s3es.storage import ObjectStore
from tests.aggregates import (
    Counter,
    CounterCommand,
    CounterError,
    CounterState,
    CounterV2,
    Decrement,
    Decremented,
    Increment,
    IncrementEach,
    Incremented,
    InterceptingStore,
    RecordingCounter,
)

STREAM = StreamName("counter", "c-1")
#: A policy for tests: its pauses go to an injected sleep, never to time.sleep.
POLICY = RetryPolicy(max_attempts=5, backoff=Backoff(initial=0.01, maximum=0.04))


def _handler(
    store: ObjectStore,
    aggregate: Counter | None = None,
    *,
    policy: RetryPolicy = POLICY,
    rng: random.Random | None = None,
    hooks: CommandHooks = CommandHooks(),  # noqa: B008 - a frozen value
) -> tuple[CommandHandler[Any, Any, Any], list[float]]:
    """A handler on ``store`` whose backoff pauses are recorded instead of slept."""
    slept: list[float] = []
    repository = Repository(EventStore(store), aggregate or Counter())
    handler = CommandHandler(repository, policy, sleep=slept.append, rng=rng, hooks=hooks)
    return handler, slept


class Rival:
    """Before a put of ours, another writer appends ``command`` to the stream (``times`` times)."""

    def __init__(self, inner: ObjectStore, command: CounterCommand, times: int) -> None:
        self.handler, _ = _handler(inner)
        self.command = command
        self.left = times
        self.results: list[Any] = []

    def __call__(self, key: str) -> None:
        if self.left and key.endswith(".999999.json"):
            self.left -= 1
            self.results.append(
                self.handler.handle(STREAM.id, self.command, metadata={"by": "rival"})
            )


def _racing(command: CounterCommand, times: int) -> tuple[InterceptingStore, Rival]:
    """A store on which the rival wins the race for the next ``times`` appends."""
    inner = InMemoryObjectStore()
    rival = Rival(inner, command, times)
    return InterceptingStore(inner, before_put=rival), rival


def _stored(store: ObjectStore) -> list[Any]:
    return list(Repository(EventStore(store), Counter).read(STREAM.id))


class TestResult:
    def test_fields(self) -> None:
        """The result has the new version and state, the events stored with their ids, and one
        attempt with no conflict."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        handler.handle(STREAM.id, Increment(1))
        result = handler.handle(STREAM.id, IncrementEach((2, 3)))
        assert (result.stream, result.version) == (STREAM, 2)
        assert result.state == CounterState(total=6, events=3)
        assert result.events == (Incremented(2), Incremented(3))
        assert [r.version for r in result.recorded] == [2, 2]
        assert [r.id for r in result.recorded] == [r.id for r in _stored(store) if r.version == 2]
        assert (result.attempts, result.conflicts) == (1, 0)

    def test_state_is_the_loaded_state(self) -> None:
        """The state a result carries is the state a load then reads."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        result = handler.handle(STREAM.id, IncrementEach((7, 8)))
        loaded = handler.repository.load(STREAM.id)
        assert (loaded.version, loaded.state) == (result.version, result.state)


class TestNoEvents:
    def test_nothing_written(self) -> None:
        """A command that decides no events stores nothing; on a cached state it sends only the
        LIST that confirms nothing is new."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        before = handler.handle(STREAM.id, Increment(4))
        sent = store.requests
        result = handler.handle(STREAM.id, Increment(0))
        assert store.requests - sent == RequestCounts(list=1)
        assert result.requests == RequestCounts(list=1)
        assert (result.version, result.state) == (before.version, before.state)
        assert (result.recorded, result.attempts) == ((), 1)

    def test_on_missing_stream(self) -> None:
        """No events on a stream with no chunks: one LIST, and the initial state at version 0."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        result = handler.handle(STREAM.id, IncrementEach(()))
        assert store.requests == RequestCounts(list=1)
        assert (result.version, result.state, result.attempts) == (0, Counter().initial_state(), 1)


class Refusing(Counter):
    """A counter whose decide refuses every command with the same exception object."""

    error = CounterError("the counter is closed")

    def __init__(self) -> None:
        self.calls = 0

    def decide(self, command: CounterCommand, state: CounterState) -> Sequence[Any]:
        """Raise ``error``."""
        self.calls += 1
        raise self.error


class TestDomainError:
    def test_propagates_unchanged(self) -> None:
        """An error from decide reaches the caller as it was raised, decide ran once, nothing
        was written."""
        store = InMemoryObjectStore()
        refusing = Refusing()
        handler, slept = _handler(store, refusing)
        with pytest.raises(CounterError) as raised:
            handler.handle(STREAM.id, Increment(1))
        assert raised.value is Refusing.error
        assert str(raised.value) == "the counter is closed"
        assert refusing.calls == 1
        assert store.requests.put == 0
        assert slept == []

    def test_after_a_conflict(self) -> None:
        """A command refused on the state a rival left is refused, not retried, and stores
        nothing of its own."""
        store, rival = _racing(Decrement(3), times=1)
        CommandHandler(Repository(EventStore(store.inner), Counter)).handle(STREAM.id, Increment(5))
        recording = RecordingCounter()
        handler, _ = _handler(store, recording)
        with pytest.raises(CounterError, match="cannot take 4 from a total of 2"):
            handler.handle(STREAM.id, Decrement(4))
        assert recording.decided_on == [CounterState(5, 1), CounterState(2, 2)]
        assert [r.event for r in _stored(store)] == [Incremented(5), Decremented(3)]
        assert len(rival.results) == 1


class TestConflict:
    def test_retried_on_newer_state(self) -> None:
        """After losing a version to a rival, decide runs again on the state with the rival's
        event, and the result says one conflict."""
        store, rival = _racing(Increment(10), times=1)
        recording = RecordingCounter()
        handler, slept = _handler(store, recording)
        result = handler.handle(STREAM.id, Increment(1))
        assert recording.decided_on == [CounterState(0, 0), CounterState(10, 1)]
        assert (result.version, result.attempts, result.conflicts) == (2, 2, 1)
        assert result.state == CounterState(11, 2)
        assert [r.event for r in _stored(store)] == [Incremented(10), Incremented(1)]
        assert len(slept) == 1
        assert len(rival.results) == 1

    def test_catch_up_costs_no_request(self) -> None:
        """The winning chunk read while resolving the conflict is all the catch-up needs: the
        retry sends only its PUT."""
        store, _ = _racing(Increment(10), times=1)
        handler, _ = _handler(store)
        handler.handle(STREAM.id, Increment(1))
        keys = handler.repository.event_store.keys
        assert [(call.kind, call.key) for call in store.calls] == [
            ("list", keys.stream_prefix(STREAM)),
            ("put", keys.chunk_key(STREAM, 1)),
            ("get", keys.chunk_key(STREAM, 1)),
            ("put", keys.chunk_key(STREAM, 2)),
        ]

    def test_second_conflict_loads_the_stream(self) -> None:
        """From the second conflict on, the retry loads the stream's latest state (a LIST and a
        GET of the newest chunk) instead of walking it one version per attempt."""
        store, _ = _racing(Increment(10), times=2)
        handler, slept = _handler(store)
        result = handler.handle(STREAM.id, Increment(1))
        keys = handler.repository.event_store.keys
        assert [(call.kind, call.key) for call in store.calls] == [
            ("list", keys.stream_prefix(STREAM)),
            ("put", keys.chunk_key(STREAM, 1)),
            ("get", keys.chunk_key(STREAM, 1)),
            ("put", keys.chunk_key(STREAM, 2)),
            ("get", keys.chunk_key(STREAM, 2)),
            ("list", keys.stream_prefix(STREAM)),
            ("get", keys.chunk_key(STREAM, 2)),
            ("put", keys.chunk_key(STREAM, 3)),
        ]
        assert (result.version, result.attempts, result.state.total) == (3, 3, 21)
        assert len(slept) == 2

    def test_retries_exhausted(self) -> None:
        """When every attempt loses, RetriesExhausted names the stream and the attempts, chains
        the last conflict, and nothing of the command is stored."""
        store, rival = _racing(Increment(10), times=3)
        handler, slept = _handler(store, policy=RetryPolicy(max_attempts=3))
        with pytest.raises(RetriesExhausted) as raised:
            handler.handle(STREAM.id, Increment(1), metadata={"by": "us"})
        error = raised.value
        assert (error.stream, error.attempts) == (STREAM, 3)
        assert str(error).startswith("gave up on stream counter/c-1 after 3 attempts")
        assert isinstance(error.__cause__, ConcurrencyError)
        assert error.__cause__ is error.last_error
        assert (error.last_error.expected_version, error.last_error.actual_version) == (2, 3)
        assert [r.metadata for r in _stored(store)] == [{"by": "rival"}] * 3
        assert len(rival.results) == 3
        assert len(slept) == 2


class Told:
    """What a handler's hooks were told, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def hooks(self) -> CommandHooks:
        return CommandHooks(
            on_result=lambda result: self.calls.append(("result", result)),
            on_conflict=lambda conflict: self.calls.append(("conflict", conflict)),
            on_give_up=lambda gave_up: self.calls.append(("give_up", gave_up)),
        )


class TestHooks:
    """The handler tells its hooks what happened to each command, instead of being subclassed."""

    def test_result(self) -> None:
        """on_result is given the very result handle returns, requests counted."""
        told = Told()
        handler, _ = _handler(InMemoryObjectStore(), hooks=told.hooks())
        result = handler.handle(STREAM.id, Increment(1))
        assert told.calls == [("result", result)]
        assert told.calls[0][1].requests == RequestCounts(list=1, put=1)

    def test_conflicts_then_result(self) -> None:
        """Each lost PUT that is retried is told, with the stream, the attempt that lost, the
        attempts allowed and the version another writer stored; then the result."""
        store, _ = _racing(Increment(10), times=2)
        told = Told()
        handler, _ = _handler(store, hooks=told.hooks())
        result = handler.handle(STREAM.id, Increment(1))
        assert told.calls == [
            ("conflict", Conflict(STREAM, attempt=1, max_attempts=5, version=1)),
            ("conflict", Conflict(STREAM, attempt=2, max_attempts=5, version=2)),
            ("result", result),
        ]

    def test_give_up_on_retries_exhausted(self) -> None:
        """A command out of attempts is told as given up, with the RetriesExhausted handle
        raises; its last lost PUT is not told as a conflict (it is not retried)."""
        store, _ = _racing(Increment(10), times=2)
        told = Told()
        handler, _ = _handler(store, policy=RetryPolicy(max_attempts=2), hooks=told.hooks())
        with pytest.raises(RetriesExhausted) as raised:
            handler.handle(STREAM.id, Increment(1))
        assert told.calls == [
            ("conflict", Conflict(STREAM, attempt=1, max_attempts=2, version=1)),
            ("give_up", GaveUp(STREAM, attempts=2, error=raised.value)),
        ]

    def test_give_up_on_a_domain_error(self) -> None:
        """A command decide refuses is told as given up, with the domain error unchanged."""
        told = Told()
        handler, _ = _handler(InMemoryObjectStore(), Refusing(), hooks=told.hooks())
        with pytest.raises(CounterError):
            handler.handle(STREAM.id, Increment(1))
        assert told.calls == [("give_up", GaveUp(STREAM, attempts=1, error=Refusing.error))]

    def test_not_told_of_arguments_refused(self) -> None:
        """Arguments refused before the command begins are not a give-up: no hook is called."""
        told = Told()
        handler, _ = _handler(InMemoryObjectStore(), hooks=told.hooks())
        with pytest.raises(InvalidConfiguration, match="command_id"):
            handler.handle(STREAM.id, Increment(1), command_id="")
        assert told.calls == []

    def test_error_in_on_result_propagates(self) -> None:
        """An exception on_result raises reaches the caller; the command was stored."""
        store = InMemoryObjectStore()

        def boom(_: object) -> None:
            raise RuntimeError("hook failed")

        handler, _ = _handler(store, hooks=CommandHooks(on_result=boom))
        with pytest.raises(RuntimeError, match="hook failed"):
            handler.handle(STREAM.id, Increment(1))
        assert [r.event for r in _stored(store)] == [Incremented(1)]

    def test_error_in_on_conflict_fails_the_command(self) -> None:
        """An exception on_conflict raises fails the command (not retried), and on_give_up is
        told of that exception."""
        store, _ = _racing(Increment(10), times=1)
        gave_up: list[GaveUp] = []

        def boom(_: Conflict) -> None:
            raise RuntimeError("hook failed")

        hooks = CommandHooks(on_conflict=boom, on_give_up=gave_up.append)
        handler, slept = _handler(store, hooks=hooks)
        with pytest.raises(RuntimeError, match="hook failed") as raised:
            handler.handle(STREAM.id, Increment(1))
        assert [(told.stream, told.error) for told in gave_up] == [(STREAM, raised.value)]
        assert [r.event for r in _stored(store)] == [Incremented(10)]
        assert slept == []

    @pytest.mark.parametrize("field", ["on_result", "on_conflict", "on_give_up"])
    def test_not_callable_refused(self, field: str) -> None:
        """A hook that cannot be called is refused when the hooks are made, naming it."""
        with pytest.raises(
            InvalidConfiguration, match=rf"^CommandHooks\.{field} must be a callable or None"
        ):
            CommandHooks(**{field: "print"})  # type: ignore[arg-type]

    def test_hooks_must_be_command_hooks(self) -> None:
        """A handler given hooks of another type refuses them, naming the option."""
        repository = Repository(EventStore(InMemoryObjectStore()), Counter)
        with pytest.raises(InvalidConfiguration, match="hooks must be a CommandHooks"):
            CommandHandler(repository, hooks={"on_result": print})  # type: ignore[arg-type]


class TestHandlerOptions:
    """The handler's options are checked when it is made, each error naming the option."""

    def test_retry_must_be_a_policy(self) -> None:
        """A retry that is not a RetryPolicy (an attempt count) is refused, at the handler and
        per call."""
        repository = Repository(EventStore(InMemoryObjectStore()), Counter)
        with pytest.raises(InvalidConfiguration, match="retry must be a RetryPolicy, not 3"):
            CommandHandler(repository, 3)  # type: ignore[arg-type]
        handler = CommandHandler(repository)
        with pytest.raises(InvalidConfiguration, match="retry must be a RetryPolicy, not 3"):
            handler.handle(STREAM.id, Increment(1), retry=3)  # type: ignore[arg-type]

    def test_group_commit_must_be_a_bool_or_bounds(self) -> None:
        """group_commit takes True, False or a GroupCommit, whose bounds are checked."""
        repository = Repository(EventStore(InMemoryObjectStore()), Counter)
        with pytest.raises(InvalidConfiguration, match="group_commit must be a bool or a Group"):
            CommandHandler(repository, group_commit=1)  # type: ignore[arg-type]
        with pytest.raises(
            InvalidConfiguration, match=r"^GroupCommit\.max_events must be an int >= 1, not 0$"
        ):
            GroupCommit(max_events=0)
        assert CommandHandler(repository, group_commit=True).group_commit == GroupCommit()
        assert CommandHandler(repository).group_commit is None


class TestBackoff:
    @pytest.mark.parametrize("field", ["initial", "maximum", "multiplier"])
    @pytest.mark.parametrize("value", [0, -0.5, float("nan")])
    def test_not_positive_refused(self, field: str, value: float) -> None:
        """A delay or multiplier that is not > 0 (NaN included) is refused, naming the field."""
        with pytest.raises(ValueError, match=f"^'{field}' must be > 0: {value}$"):
            Backoff(**{field: value})

    def test_delays_within_policy_bounds(self) -> None:
        """Each pause is drawn between zero and the backoff's bound for that retry."""
        backoff = Backoff(initial=0.01, maximum=0.03, multiplier=2.0)
        store, _ = _racing(Increment(10), times=4)
        handler, slept = _handler(store, policy=RetryPolicy(max_attempts=5, backoff=backoff))
        assert handler.handle(STREAM.id, Increment(1)).attempts == 5
        bounds = [0.01, 0.02, 0.03, 0.03]
        assert len(slept) == len(bounds)
        assert all(0 <= delay <= bound for delay, bound in zip(slept, bounds, strict=True))

    def test_seeded_rng_repeats(self) -> None:
        """Pauses are drawn from the injected rng: the same seed gives the same pauses."""
        runs = []
        for _ in range(2):
            store, _ = _racing(Increment(10), times=3)
            handler, slept = _handler(store, rng=random.Random(42))
            handler.handle(STREAM.id, Increment(1))
            runs.append(slept)
        assert len(runs[0]) == 3
        assert runs[0] == runs[1]
        rng = random.Random(42)
        assert runs[0] == [POLICY.backoff.delay(retry, rng) for retry in (1, 2, 3)]


class TestRetryOverride:
    def test_fewer_attempts_per_call(self) -> None:
        """A per-call policy of one attempt gives up at the first conflict, without a pause."""
        store, _ = _racing(Increment(10), times=1)
        handler, slept = _handler(store, policy=RetryPolicy(max_attempts=10))
        with pytest.raises(RetriesExhausted) as raised:
            handler.handle(STREAM.id, Increment(1), retry=RetryPolicy(max_attempts=1))
        assert raised.value.attempts == 1
        assert slept == []

    def test_more_attempts_per_call(self) -> None:
        """A per-call policy allows more attempts than the handler's own."""
        store, _ = _racing(Increment(10), times=2)
        handler, _ = _handler(store, policy=RetryPolicy(max_attempts=1))
        result = handler.handle(STREAM.id, Increment(1), retry=RetryPolicy(max_attempts=3))
        assert result.attempts == 3

    def test_handler_policy_unchanged(self) -> None:
        """A per-call override applies to that call only."""
        store, _ = _racing(Increment(10), times=2)
        handler, _ = _handler(store, policy=RetryPolicy(max_attempts=1))
        handler.handle(STREAM.id, Increment(1), retry=RetryPolicy(max_attempts=3))
        store.before_put = Rival(store.inner, Increment(10), times=1)
        with pytest.raises(RetriesExhausted) as raised:
            handler.handle(STREAM.id, Increment(1))
        assert raised.value.attempts == 1


class TestMetadata:
    def test_on_every_event(self) -> None:
        """The command's metadata is stored with each of its events."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        metadata = {"correlation_id": "c-9", "user": {"name": "ada"}}
        result = handler.handle(STREAM.id, IncrementEach((1, 2, 3)), metadata=metadata)
        assert [r.metadata for r in result.recorded] == [metadata] * 3
        assert [r.metadata for r in _stored(store)] == [metadata] * 3

    def test_on_retried_events(self) -> None:
        """Events stored by a retry after a conflict carry the command's metadata too."""
        store, _ = _racing(Increment(10), times=1)
        handler, _ = _handler(store)
        handler.handle(STREAM.id, IncrementEach((1, 2)), metadata={"by": "us"})
        assert [r.metadata for r in _stored(store)] == [{"by": "rival"}] + [{"by": "us"}] * 2

    def test_none_is_empty(self) -> None:
        """Without metadata, events carry an empty mapping."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        handler.handle(STREAM.id, Increment(1))
        assert [r.metadata for r in _stored(store)] == [{}]


class Yielding(Counter):
    """A counter whose decide is a generator function: it yields its events."""

    # Not a Sequence, as mypy would say: what an aggregate written without a type checker does.
    def decide(self, command: CounterCommand, state: CounterState) -> Iterator[Any]:  # type: ignore[override]
        """The counter's events, yielded one by one."""
        yield from super().decide(command, state)


class TestDecideReturnsIterable:
    def test_generator_events_stored_with_their_snapshot(self) -> None:
        """Events a generator yields are stored, and the snapshot stored with them agrees."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store, Yielding())
        result = handler.handle(STREAM.id, IncrementEach((2, 3)))
        repository = Repository(EventStore(store), Counter)
        assert (
            result.state == repository.load(STREAM.id).state == repository.replay(STREAM.id).state
        )

    def test_empty_generator_is_no_events(self) -> None:
        """A generator that yields nothing is a command that changes nothing."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store, Yielding())
        result = handler.handle(STREAM.id, Increment(0))
        assert (result.version, result.recorded, result.attempts) == (0, (), 1)
        assert store.requests.put == 0


class TestRetryPolicy:
    @pytest.mark.parametrize("attempts", [0, -1, 2.5, True, "3"])
    def test_at_least_one_attempt(self, attempts: object) -> None:
        """A policy of fewer than one attempt, or of attempts that are not an int, is refused
        with InvalidConfiguration naming the class, the field and the value."""
        with pytest.raises(
            InvalidConfiguration,
            match=rf"^RetryPolicy\.max_attempts must be an int >= 1, not {attempts!r}$",
        ):
            RetryPolicy(max_attempts=attempts)  # type: ignore[arg-type]

    def test_backoff_must_be_a_backoff(self) -> None:
        """A backoff that is not a Backoff value is refused, naming the field."""
        with pytest.raises(InvalidConfiguration, match=r"^RetryPolicy\.backoff must be a Backoff"):
            RetryPolicy(backoff=0.1)  # type: ignore[arg-type]

    def test_default(self) -> None:
        """The default policy retries: more than one attempt, with a bounded backoff."""
        policy = RetryPolicy()
        assert policy.max_attempts > 1
        assert policy.backoff.maximum >= policy.backoff.initial


class TestSchemaBumpOnLoad:
    def test_handler_after_bump(self) -> None:
        """A handler of a bumped aggregate decides on the replayed state and appends after it."""
        store = InMemoryObjectStore()
        old, _ = _handler(store)
        old.handle(STREAM.id, IncrementEach((1, 2)))
        new, _ = _handler(store, CounterV2())
        result = new.handle(STREAM.id, Decrement(3))
        assert (result.version, result.state) == (2, CounterState(0, 3))


class TestCache:
    def test_warm_command_costs_one_put(self) -> None:
        """An uncontended command on a stream the handler knows sends exactly one request."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        cold = handler.handle(STREAM.id, Increment(1))
        sent = store.requests
        warm = handler.handle(STREAM.id, Increment(2))
        assert cold.requests == RequestCounts(list=1, put=1)
        assert warm.requests == RequestCounts(put=1)
        assert store.requests - sent == RequestCounts(put=1)
        assert (warm.version, warm.state) == (2, CounterState(3, 2))

    def test_warm_commands_back_to_back_cost_one_put_each(self) -> None:
        """A lone writer storing version after version on a stream it knows sends exactly one
        request per command, its PUT, however many it stores in a row."""
        store = InMemoryObjectStore()
        handler, slept = _handler(store)
        handler.handle(STREAM.id, Increment(1))
        sent = store.requests
        results = [handler.handle(STREAM.id, Increment(1)) for _ in range(30)]
        assert store.requests - sent == RequestCounts(put=30)
        assert all(result.requests == RequestCounts(put=1) for result in results)
        assert [result.version for result in results] == list(range(2, 32))
        assert slept == []

    def test_stale_cache_never_lands_a_decision(self) -> None:
        """A decision made on a cached state that another process has moved past loses its PUT
        and is made again on the newer state, here refused by it: nothing of it is stored."""
        store = InMemoryObjectStore()
        recording = RecordingCounter()
        ours, _ = _handler(store, recording)
        other, _ = _handler(store)  # another process: a cache of its own
        ours.handle(STREAM.id, Increment(5))
        other.handle(STREAM.id, Decrement(5))
        with pytest.raises(CounterError, match="cannot take 3 from a total of 0"):
            ours.handle(STREAM.id, Decrement(3))
        assert recording.decided_on[-2:] == [CounterState(5, 1), CounterState(0, 2)]
        assert [r.event for r in _stored(store)] == [Incremented(5), Decremented(5)]
        assert ours.repository.load(STREAM.id) == ours.repository.replay(STREAM.id)

    def test_no_events_on_stale_cache_is_confirmed(self) -> None:
        """A command that decides nothing on a cached state reports the stream as it is now,
        after reading what is new."""
        store = InMemoryObjectStore()
        ours, _ = _handler(store)
        other, _ = _handler(store)
        ours.handle(STREAM.id, Increment(5))
        other.handle(STREAM.id, Increment(7))
        result = ours.handle(STREAM.id, IncrementEach(()))
        assert (result.version, result.state) == (2, CounterState(12, 2))
        assert result.requests == RequestCounts(list=1, get=1)

    def test_refusal_on_stale_cache_is_rechecked(self) -> None:
        """A command refused on a cached state is decided again on the newer state, which may
        accept it."""
        store = InMemoryObjectStore()
        ours, _ = _handler(store)
        other, _ = _handler(store)
        ours.handle(STREAM.id, Increment(1))
        other.handle(STREAM.id, Increment(10))
        result = ours.handle(STREAM.id, Decrement(5))
        assert (result.version, result.state, result.attempts) == (3, CounterState(6, 3), 1)
        assert [r.event for r in _stored(store)] == [
            Incremented(1),
            Incremented(10),
            Decremented(5),
        ]

    def test_refusal_on_current_cache_costs_one_list(self) -> None:
        """A refusal on a cached state that is still the latest costs the one LIST confirming it."""
        store = InMemoryObjectStore()
        refusing = Refusing()
        handler, _ = _handler(store, refusing)
        handler.cache.put(STREAM.id, handler.repository.load(STREAM.id))
        sent = store.requests
        with pytest.raises(CounterError):
            handler.handle(STREAM.id, Increment(1))
        assert store.requests - sent == RequestCounts(list=1)

    def test_disabled(self) -> None:
        """With cache_size 0 every command loads the stream first."""
        store = InMemoryObjectStore()
        repository = Repository(EventStore(store), Counter)
        handler = CommandHandler(repository, POLICY, cache_size=0)
        handler.handle(STREAM.id, Increment(1))
        result = handler.handle(STREAM.id, Increment(1))
        assert result.requests == RequestCounts(list=1, get=1, put=1)
        assert len(handler.cache) == 0

    def test_bounded(self) -> None:
        """The cache keeps the most recently used streams, no more than its size."""
        store = InMemoryObjectStore()
        repository = Repository(EventStore(store), Counter)
        handler = CommandHandler(repository, POLICY, cache_size=2)
        for stream_id in ("a", "b", "a", "c"):
            handler.handle(stream_id, Increment(1))
        assert len(handler.cache) == 2
        assert handler.cache.get("b") is None
        assert handler.cache.get("a") is not None

    def test_forgotten_after_retries_exhausted(self) -> None:
        """A stream whose command gave up is not kept in the cache."""
        store, _ = _racing(Increment(10), times=2)
        handler, _ = _handler(store, policy=RetryPolicy(max_attempts=2, backoff=POLICY.backoff))
        with pytest.raises(RetriesExhausted):
            handler.handle(STREAM.id, Increment(1))
        assert handler.cache.get(STREAM.id) is None

    def test_negative_size_rejected(self) -> None:
        """A negative cache size is refused with a message naming it."""
        repository = Repository(EventStore(InMemoryObjectStore()), Counter)
        with pytest.raises(InvalidConfiguration, match=r"cache_size must be an int >= 0.*not -1"):
            CommandHandler(repository, cache_size=-1)


def test_corrupt_chunk_behind_the_cache_is_not_met_again() -> None:
    """A cached writer that meets a corrupt chunk (stored after its cached version) gets
    CorruptChunk naming it, and forgets its cache: its next command loads the latest chunk,
    which is sound, and goes on."""
    store = InMemoryObjectStore()
    handler, _ = _handler(store)
    handler.handle(STREAM.id, Increment(1))  # cached at version 1
    other, _ = _handler(store)
    other.handle(STREAM.id, Increment(2))
    other.handle(STREAM.id, Increment(3))  # versions 2 and 3, snapshot in 3
    key = EventStore(store).keys.chunk_key(STREAM, 2)
    store.delete(key)
    store.put_if_absent(key, b"{damaged")
    with pytest.raises(CorruptChunk, match="99999999999999999997"):
        handler.handle(STREAM.id, Increment(4))
    result = handler.handle(STREAM.id, Increment(4))
    assert (result.version, result.state.total) == (4, 10)
