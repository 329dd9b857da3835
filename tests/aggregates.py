"""Small aggregates the tests share, and an object-store wrapper that records and intercepts.

``Counter`` is the workhorse: a total that commands increment and decrement, never below zero.
``CounterV2`` is the same aggregate after a snapshot schema bump. ``RecordingCounter`` remembers
every state ``decide`` ran on. ``InterceptingStore`` wraps an object store to log each request and
to run a hook before each put, which makes races deterministic: the hook lets a rival write first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeAlias

import attrs

from s3es import (
    Aggregate,
    Backoff,
    CommandHandler,
    EventStore,
    InMemoryObjectStore,
    Repository,
    RetryPolicy,
)
from s3es.metering import RequestCounts
from s3es.storage import ForwardingObjectStore, ObjectStore, StoredObject

# Events


@attrs.frozen
class Incremented:
    """The total went up by ``amount``."""

    amount: int


@attrs.frozen
class Decremented:
    """The total went down by ``amount``."""

    amount: int


CounterEvent: TypeAlias = Incremented | Decremented

# Commands


@attrs.frozen
class Increment:
    """Add ``amount`` to the total; an amount of 0 changes nothing and stores nothing."""

    amount: int


@attrs.frozen
class Decrement:
    """Take ``amount`` from the total, which must be at least that much."""

    amount: int


@attrs.frozen
class IncrementEach:
    """Add each of ``amounts`` in turn: one event per amount, in one append."""

    amounts: tuple[int, ...]


CounterCommand: TypeAlias = Increment | Decrement | IncrementEach


@attrs.frozen
class CounterState:
    """The total, and how many events made it (no defaults: ``{}`` is not a state)."""

    total: int
    events: int


class CounterError(Exception):
    """A command the counter's rules refuse."""


class CounterRules(Aggregate[CounterState, CounterCommand, CounterEvent]):
    """The counter's rules, without the class attributes: a base for misconfigured aggregates."""

    def initial_state(self) -> CounterState:
        """Zero, from no events."""
        return CounterState(total=0, events=0)

    def evolve(self, state: CounterState, event: CounterEvent) -> CounterState:
        """Apply one event to the total."""
        if isinstance(event, Incremented):
            return CounterState(total=state.total + event.amount, events=state.events + 1)
        return CounterState(total=state.total - event.amount, events=state.events + 1)

    def decide(self, command: CounterCommand, state: CounterState) -> Sequence[CounterEvent]:
        """The events of ``command``; CounterError if it would take the total below zero."""
        if isinstance(command, Increment):
            return [Incremented(command.amount)] if command.amount else []
        if isinstance(command, IncrementEach):
            return [Incremented(amount) for amount in command.amounts]
        if command.amount > state.total:
            raise CounterError(f"cannot take {command.amount} from a total of {state.total}")
        return [Decremented(command.amount)]


class Counter(CounterRules):
    """A counter whose snapshots are of schema 1."""

    STREAM_TYPE = "counter"
    SNAPSHOT_SCHEMA = 1
    EVENT_TYPES: ClassVar[Mapping[str, type[Any]]] = {
        "Incremented": Incremented,
        "Decremented": Decremented,
    }


class CounterV2(Counter):
    """The same counter after a snapshot schema bump (say, ``evolve`` changed)."""

    SNAPSHOT_SCHEMA = 2


class RecordingCounter(Counter):
    """A counter that records the state of every ``decide`` call, in order (thread-safe)."""

    def __init__(self) -> None:
        self.decided_on: list[CounterState] = []
        self._lock = threading.Lock()

    def decide(self, command: CounterCommand, state: CounterState) -> Sequence[CounterEvent]:
        """Record ``state``, then decide as a Counter does."""
        with self._lock:
            self.decided_on.append(state)
        return super().decide(command, state)


@attrs.frozen
class Call:
    """One request an InterceptingStore passed on: its kind, key (or prefix) and start_after."""

    kind: str
    key: str
    start_after: str | None = None


class InterceptingStore(ForwardingObjectStore):
    """An ObjectStore that passes every request to ``inner``, recording it in ``calls``.

    ``before_put(key)``, if given, runs before each put is passed on: a test makes a rival
    writer store its chunk there, so the put that follows loses the race, every time. Requests
    the hook sends to ``inner`` itself are not recorded here, and ``requests`` counts only the
    requests that went through this wrapper.
    """

    def __init__(
        self, inner: ObjectStore, *, before_put: Callable[[str], None] | None = None
    ) -> None:
        super().__init__(inner)
        self.before_put = before_put
        self.calls: list[Call] = []

    @property
    def requests(self) -> RequestCounts:
        """Requests passed on by this wrapper, by kind (a LIST per listing: keep them small)."""
        counts = {kind: sum(call.kind == kind for call in self.calls) for kind in _KINDS}
        return RequestCounts(**counts)

    def put_if_absent(self, key: str, body: bytes) -> str:
        """Run ``before_put``, then put if absent."""
        if self.before_put is not None:
            self.before_put(key)
        self.calls.append(Call("put", key))
        return super().put_if_absent(key, body)

    def get(self, key: str) -> StoredObject | None:
        """Get."""
        self.calls.append(Call("get", key))
        return super().get(key)

    def list_keys(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> Iterator[str]:
        """List (recorded as one call)."""
        self.calls.append(Call("list", prefix, start_after))
        return super().list_keys(prefix, start_after=start_after, limit=limit)

    def delete(self, key: str) -> None:
        """Delete."""
        self.calls.append(Call("delete", key))
        super().delete(key)


_KINDS = ("put", "get", "list", "delete")


def counter_total(events: Sequence[Any]) -> int:
    """The total the counter's events add up to, computed without the aggregate."""
    return sum(e.amount if isinstance(e, Incremented) else -e.amount for e in events)


#: A retry policy for tests with many racing writers: many attempts, pauses of microseconds.
FAST_RETRY = RetryPolicy(max_attempts=50, backoff=Backoff(initial=0.0001, maximum=0.001))


def counter_stream(
    stream_id: str, increments: int
) -> tuple[InMemoryObjectStore, Repository[CounterState, CounterCommand, CounterEvent]]:
    """An in-memory store holding a Counter stream of ``increments`` versions (by 1, 2, 3...)."""
    store = InMemoryObjectStore()
    repository = Repository(EventStore(store), Counter)
    handler = CommandHandler(repository)
    for amount in range(1, increments + 1):
        handler.handle(stream_id, Increment(amount))
    return store, repository
