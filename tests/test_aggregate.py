"""Aggregates: the checks of their class attributes, and their events to JSON and back."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs
import pytest

from s3es import (
    Aggregate,
    CommandHandler,
    CorruptChunk,
    EventStore,
    InMemoryObjectStore,
    InvalidConfiguration,
    Repository,
    StreamName,
)
from tests.aggregates import (
    Counter,
    CounterCommand,
    CounterRules,
    CounterState,
    Decrement,
    Decremented,
    Increment,
    IncrementEach,
    Incremented,
)

_EVENTS = {"Incremented": Incremented, "Decremented": Decremented}


def _aggregate(name: str, base: type[Any], **attributes: Any) -> type[Any]:
    """A subclass of ``base`` named ``name`` with these class attributes."""
    return type(name, (base,), attributes)


def _configuration_error(aggregate: type[Any]) -> str:
    store = InMemoryObjectStore()
    with pytest.raises(InvalidConfiguration) as raised:
        Repository(EventStore(store), aggregate)
    assert store.requests.total == 0
    return str(raised.value)


class TestConfiguration:
    def test_missing_stream_type(self) -> None:
        """An aggregate without STREAM_TYPE is refused with an error naming it and the attribute."""
        message = _configuration_error(
            _aggregate("NoStreamType", CounterRules, EVENT_TYPES=_EVENTS)
        )
        assert message.startswith("NoStreamType: STREAM_TYPE is not usable")
        assert "None" in message

    @pytest.mark.parametrize(
        ("stream_type", "problem"),
        [
            ("a/b", "must not contain '/': 'a/b'"),
            ("_x", "must not start with '_' (reserved for s3es): '_x'"),
            ("", "must not be empty"),
            ("..", "must not be '..': '..'"),
            (7, "must be a str, not int: 7"),
        ],
    )
    def test_invalid_stream_type(self, stream_type: object, problem: str) -> None:
        """A STREAM_TYPE that cannot be a key segment is refused, naming the value and why."""
        message = _configuration_error(
            _aggregate("BadStreamType", Counter, STREAM_TYPE=stream_type)
        )
        assert message == f"BadStreamType: STREAM_TYPE is not usable: stream type {problem}"

    @pytest.mark.parametrize("schema", [0, -1, "1", True, 1.0, None])
    def test_invalid_snapshot_schema(self, schema: object) -> None:
        """SNAPSHOT_SCHEMA must be an int of at least 1: not 0, a str, a bool, a float."""
        message = _configuration_error(_aggregate("BadSchema", Counter, SNAPSHOT_SCHEMA=schema))
        assert message == f"BadSchema: SNAPSHOT_SCHEMA must be an int >= 1, not {schema!r}"

    @pytest.mark.parametrize("registry", [{}, None, [("Incremented", Incremented)]])
    def test_invalid_event_types(self, registry: object) -> None:
        """EVENT_TYPES must be a non-empty mapping of names to classes."""
        message = _configuration_error(_aggregate("BadRegistry", Counter, EVENT_TYPES=registry))
        assert message == "BadRegistry: EVENT_TYPES must map event type names to classes"

    def test_missing_event_types(self) -> None:
        """An aggregate without EVENT_TYPES is refused with an error naming it."""
        message = _configuration_error(
            _aggregate("NoRegistry", CounterRules, STREAM_TYPE="counter")
        )
        assert message == "NoRegistry: EVENT_TYPES must map event type names to classes"

    def test_class_registered_twice(self) -> None:
        """One class under two names is refused: reading back could not tell them apart."""
        message = _configuration_error(
            _aggregate(
                "Twice",
                Counter,
                EVENT_TYPES={"Incremented": Incremented, "Added": Incremented},
            )
        )
        assert message == ("Twice: Incremented is registered twice, as 'Incremented' and 'Added'")

    def test_value_not_a_class(self) -> None:
        """A registry value that is an instance, not a class, is refused, naming its entry."""
        message = _configuration_error(
            _aggregate("Instance", Counter, EVENT_TYPES={"Incremented": Incremented(1)})
        )
        assert message == "Instance: EVENT_TYPES['Incremented'] is not a class"

    @pytest.mark.parametrize("name", ["", 3])
    def test_invalid_event_type_name(self, name: object) -> None:
        """A registry key that is not a non-empty str is refused, naming the key."""
        message = _configuration_error(
            _aggregate("BadName", Counter, EVENT_TYPES={name: Incremented})
        )
        assert message == f"BadName: event type name {name!r} is not a non-empty str"

    def test_instance_accepted(self) -> None:
        """A repository takes an aggregate instance as well as a class."""
        repository = Repository(EventStore(InMemoryObjectStore()), Counter())
        assert repository.stream("c-1") == StreamName("counter", "c-1")


@attrs.frozen
class Stray:
    """An event class no aggregate registers."""

    amount: int


class Leaky(Counter):
    """A counter whose decide returns an event class it does not register."""

    def decide(self, command: CounterCommand, state: CounterState) -> Sequence[Any]:
        """A registered event, then a Stray one."""
        return [Incremented(1), Stray(1)]


class TestUnregisteredEvent:
    def test_decide_returns_unregistered_class(self) -> None:
        """An unregistered event is refused naming the aggregate, the class and the stream, and
        nothing is written."""
        store = InMemoryObjectStore()
        handler = CommandHandler(Repository(EventStore(store), Leaky))
        with pytest.raises(InvalidConfiguration) as raised:
            handler.handle("c-1", Increment(1))
        assert str(raised.value) == (
            "Leaky: decide returned Stray for stream counter/c-1, which is not in EVENT_TYPES "
            "(registered: Decremented, Incremented)"
        )
        assert list(store.list_keys("counter/c-1/")) == []
        assert store.requests.put == 0


def _write_chunk(
    store: InMemoryObjectStore, event_type: str, data: Mapping[str, Any]
) -> tuple[str, str]:
    """Append one event by hand to counter/c-1 (no snapshot); return its key and event id."""
    event_store = EventStore(store)
    stream = StreamName("counter", "c-1")
    record = event_store.new_event(event_type, data)
    result = event_store.append(stream, [record], expected_version=0)
    return result.key, record.id


class TestStoredEvents:
    def test_unknown_event_type(self) -> None:
        """A stored event of a type the aggregate does not register is a CorruptChunk naming
        the key, the type and the event."""
        store = InMemoryObjectStore()
        key, event_id = _write_chunk(store, "Exploded", {"amount": 1})
        repository = Repository(EventStore(store), Counter)
        with pytest.raises(CorruptChunk) as raised:
            list(repository.read("c-1"))
        assert raised.value.key == key
        assert raised.value.reason == (
            f"unknown event type 'Exploded' (event {event_id}); "
            "Counter registers Decremented, Incremented"
        )

    @pytest.mark.parametrize(
        ("data", "problem"),
        [
            ({}, "required field missing @ data.amount"),
            ({"amount": "many"}, "data.amount"),
        ],
    )
    def test_data_does_not_fit(self, data: Mapping[str, Any], problem: str) -> None:
        """Event data that does not fit its class is a CorruptChunk naming the key, the event id
        and the field."""
        store = InMemoryObjectStore()
        key, event_id = _write_chunk(store, "Incremented", data)
        repository = Repository(EventStore(store), Counter)
        with pytest.raises(CorruptChunk) as raised:
            repository.replay("c-1")
        assert raised.value.key == key
        assert raised.value.reason.startswith(
            f"event {event_id} of type 'Incremented' does not fit: "
        )
        assert problem in raised.value.reason

    def test_load_falls_back_to_replay_and_meets_the_corrupt_event(self) -> None:
        """A chunk with no snapshot is replayed on load, so a bad event there stops the load."""
        store = InMemoryObjectStore()
        key, _ = _write_chunk(store, "Exploded", {"amount": 1})
        repository = Repository(EventStore(store), Counter)
        with pytest.raises(CorruptChunk, match="unknown event type 'Exploded'") as raised:
            repository.load("c-1")
        assert raised.value.key == key


@attrs.frozen
class Added:
    """Incremented, renamed in the code; stored under its old name."""

    amount: int


@attrs.frozen
class Taken:
    """Decremented, renamed in the code; stored under its old name."""

    amount: int


class RenamedCounter(Aggregate[CounterState, CounterCommand, Added | Taken]):
    """The counter after its event classes were renamed: the registered names stay."""

    STREAM_TYPE = "counter"
    EVENT_TYPES: ClassVar[Mapping[str, type[Any]]] = {"Incremented": Added, "Decremented": Taken}

    def initial_state(self) -> CounterState:
        """Zero."""
        return CounterState(total=0, events=0)

    def evolve(self, state: CounterState, event: Added | Taken) -> CounterState:
        """As Counter.evolve."""
        change = event.amount if isinstance(event, Added) else -event.amount
        return CounterState(total=state.total + change, events=state.events + 1)

    def decide(self, command: CounterCommand, state: CounterState) -> Sequence[Added | Taken]:
        """Increments only."""
        assert isinstance(command, Increment)
        return [Added(command.amount)]


class TestRename:
    def test_renamed_class_reads_old_stream(self) -> None:
        """A stream written before the event classes were renamed reads into the new classes."""
        store = InMemoryObjectStore()
        old = CommandHandler(Repository(EventStore(store), Counter))
        old.handle("c-1", IncrementEach((4, 5)))
        written = old.handle("c-1", Decrement(2))
        renamed = Repository(EventStore(store), RenamedCounter)
        assert [recorded.event for recorded in renamed.read("c-1")] == [
            Added(4),
            Added(5),
            Taken(2),
        ]
        assert renamed.replay("c-1").state == written.state
        assert renamed.load("c-1").state == written.state

    def test_renamed_class_writes_old_name(self) -> None:
        """The renamed class is stored under the registered name, which the old code reads."""
        store = InMemoryObjectStore()
        result = CommandHandler(Repository(EventStore(store), RenamedCounter)).handle(
            "c-1", Increment(3)
        )
        stored = store.get(EventStore(store).keys.chunk_key(result.stream, 1))
        assert stored is not None
        assert [event["type"] for event in json.loads(stored.body)["events"]] == ["Incremented"]
        old = Repository(EventStore(store), Counter)
        assert [recorded.event for recorded in old.read("c-1")] == [Incremented(3)]
