"""Common mistakes get library errors that name the aggregate or projection, the method, the
stream and the field (issue 10, item 8), before any request that would store them is sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import attrs
import pytest

from s3es import (
    Aggregate,
    CommandHandler,
    EventStore,
    InlineProjection,
    InMemoryObjectStore,
    InvalidConfiguration,
    Projector,
    RecordedEvent,
    Repository,
    StreamName,
)
from s3es.errors import DomainContractError, InlineProjectionFailed, NotJSON
from s3es.metering import RequestCounts
from s3es.projections import LeaseOptions
from tests.aggregates import Counter, CounterState, Decrement, Increment, Incremented
from tests.projections import Applied, AppliedIds


def _handler(
    aggregate: type[Aggregate[Any, Any, Any]] = Counter,
) -> tuple[InMemoryObjectStore, CommandHandler[Any, Any, Any]]:
    store = InMemoryObjectStore()
    return store, CommandHandler(Repository(EventStore(store), aggregate))


class _Decides(Counter):
    """A Counter whose decide returns what the test put in ``RESULT``."""

    RESULT: ClassVar[Any] = None

    def decide(self, command: Any, state: CounterState) -> Any:
        """Whatever RESULT is."""
        return self.RESULT


class TestDecide:
    @pytest.mark.parametrize(
        ("result", "found"),
        [
            (None, "returned None"),
            (
                Incremented(1),
                (
                    r"returned Incremented\(amount=1\) \(of type Incremented\) .* "
                    r"\(return \[Incremented\(...\)\] for one\)"
                ),
            ),
            ({"amount": 1}, r"returned \{'amount': 1\} \(of type dict\)"),
            ("Incremented", r"returned 'Incremented' \(of type str\)"),
            (7, r"returned 7 \(of type int\)"),
        ],
    )
    def test_not_a_list_of_events(self, result: Any, found: str) -> None:
        """decide returning one event, None, or anything but a sequence of events raises
        DomainContractError naming the aggregate, the method and the stream; nothing is sent
        but the load."""
        aggregate = type("Decides", (_Decides,), {"RESULT": result})
        store, handler = _handler(aggregate)
        with pytest.raises(DomainContractError, match=f"^Decides.decide {found}") as raised:
            handler.handle("c", Increment(1))
        assert "stream counter/c" in str(raised.value)
        assert "must return a list of events, [] for none" in str(raised.value)
        assert store.requests == RequestCounts(list=1)

    @pytest.mark.parametrize(
        "result", [[Incremented(1)], (Incremented(1),), iter([Incremented(1)])]
    )
    def test_any_sequence_or_iterable_of_events(self, result: Any) -> None:
        """A list, a tuple or a generator of events is fine."""
        aggregate = type("Decides", (_Decides,), {"RESULT": result})
        _, handler = _handler(aggregate)
        assert handler.handle("c", Increment(1)).state == CounterState(1, 1)


class _ForgetsReturn(Counter):
    """A Counter whose evolve forgets to return the state for decrements."""

    def evolve(self, state: CounterState, event: Any) -> CounterState:
        """The new state, except for a Decremented (None: the mistake)."""
        if isinstance(event, Incremented):
            return CounterState(state.total + event.amount, state.events + 1)
        return None  # type: ignore[return-value]


class TestEvolve:
    def test_none_on_append(self) -> None:
        """evolve returning None raises DomainContractError naming the aggregate, the method,
        the event and the stream, before the append is sent."""
        store, handler = _handler(_ForgetsReturn)
        handler.handle("c", Increment(2))
        before = store.requests
        with pytest.raises(
            DomainContractError,
            match=r"^_ForgetsReturn.evolve returned None for an event of type Decremented of "
            r"stream counter/c: it must return the state after the event",
        ):
            handler.handle("c", Decrement(1))
        assert (store.requests - before).put == 0

    def test_none_on_replay(self) -> None:
        """evolve returning None for a stored event raises it on a replay too."""
        store, handler = _handler(Counter)
        handler.handle("c", Increment(2))
        handler.handle("c", Decrement(1))
        repository = Repository(EventStore(store), _ForgetsReturn)
        with pytest.raises(DomainContractError, match="evolve returned None"):
            repository.replay("c")


class _ForgetsModel(AppliedIds):
    """AppliedIds whose apply forgets to return the model."""

    def evolve(self, model: Applied, event: RecordedEvent[Any]) -> Applied:
        """Apply, and return nothing (the mistake)."""
        super().evolve(model, event)
        return None  # type: ignore[return-value]


class TestApply:
    def test_projector(self) -> None:
        """A projector whose projection's apply returns None raises DomainContractError naming
        the projection, the method, the event and the stream."""
        store, handler = _handler()
        handler.handle("c", Increment(1))
        projector = Projector(EventStore(store), _ForgetsModel, lease=LeaseOptions(owner="p"))
        with pytest.raises(
            DomainContractError,
            match=r"^_ForgetsModel.evolve returned None for an event of type Incremented of "
            r"stream counter/c \(version 1\): it must return the model",
        ):
            projector.catch_up()

    def test_inline(self) -> None:
        """An inline projection's apply returning None fails the projection (the events are
        stored), with the DomainContractError as the cause."""
        store = InMemoryObjectStore()
        inline = InlineProjection(_ForgetsModel)
        handler = CommandHandler(Repository(EventStore(store), Counter), inline=[inline])
        with pytest.raises(InlineProjectionFailed) as raised:
            handler.handle("c", Increment(1))
        assert isinstance(raised.value.__cause__, DomainContractError)
        assert "_ForgetsModel.evolve returned None" in str(raised.value.__cause__)


@attrs.frozen
class Tagged:
    """An event whose dict field a decide may fill with keys that are not str."""

    tags: dict[Any, int]


@attrs.frozen
class Measured:
    """An event with a float."""

    value: float


class _Emits(Aggregate[CounterState, Any, Any]):
    """Stores the command itself as the event."""

    STREAM_TYPE = "emits"
    EVENT_TYPES: ClassVar[dict[str, type[Any]]] = {"Tagged": Tagged, "Measured": Measured}

    def initial_state(self) -> CounterState:
        """Nothing yet."""
        return CounterState(0, 0)

    def evolve(self, state: CounterState, event: Any) -> CounterState:
        """One more event."""
        return CounterState(state.total, state.events + 1)

    def decide(self, command: Any, state: CounterState) -> Sequence[Any]:
        """The command as the event."""
        return [command]


class TestNotJSON:
    @pytest.mark.parametrize(
        ("event", "problem"),
        [
            (
                Tagged({(1, 2): 3}),
                (
                    r"^stream emits/e: _Emits.decide returned a 'Tagged' event that CONVERTER "
                    r"cannot turn into JSON: data\['tags'\] has the key \(1, 2\) \(tuple\): "
                    "JSON keys are strings"
                ),
            ),
            (
                Tagged({1: 3}),
                (
                    r"^stream emits/e, event 1 of 1 \(type 'Tagged'\): data\['tags'\] has the "
                    r"key 1 \(int\): JSON keys are strings"
                ),
            ),
            (
                Measured(float("nan")),
                (
                    r"^stream emits/e, event 1 of 1 \(type 'Measured'\): data\['value'\]: the "
                    "float nan is not JSON"
                ),
            ),
        ],
    )
    def test_event(self, event: Any, problem: str) -> None:
        """An event that is not JSON raises NotJSON (a ValueError) naming the stream, the
        event type and the field; nothing is sent but the load."""
        store, handler = _handler(_Emits)
        with pytest.raises(NotJSON, match=problem):
            handler.handle("e", event)
        assert store.requests == RequestCounts(list=1)

    @pytest.mark.parametrize(
        ("metadata", "problem"),
        [
            ([("user", "u-1")], r"^stream counter/c: metadata must be a mapping .*, not list"),
            ("u-1", r"^stream counter/c: metadata must be a mapping .*, not str"),
            (
                {("user", 1): "u-1"},
                (
                    r"^stream counter/c, event 1 of 1 \(type 'Incremented'\): metadata has the key "
                    r"\('user', 1\) \(tuple\): JSON keys are strings"
                ),
            ),
            (
                {"at": {"who": object()}},
                r"metadata\['at'\]\['who'\]: <object object at .* is not JSON",
            ),
        ],
    )
    def test_metadata(self, metadata: Any, problem: str) -> None:
        """Metadata that is not a mapping, or not JSON, raises NotJSON naming the stream, the
        event and the field; nothing is sent but the load."""
        store, handler = _handler()
        with pytest.raises(NotJSON, match=problem):
            handler.handle("c", Increment(1), metadata=metadata)
        assert store.requests == RequestCounts(list=1)

    def test_event_store_new_event(self) -> None:
        """EventStore.new_event refuses data or metadata that is not a mapping, naming the
        event type."""
        events = EventStore(InMemoryObjectStore())
        with pytest.raises(NotJSON, match="event of type 'Noted': data must be a mapping"):
            events.new_event("Noted", [1, 2])  # type: ignore[arg-type]
        with pytest.raises(NotJSON, match="event of type 'Noted': metadata must be a mapping"):
            events.new_event("Noted", {}, [("a", 1)])  # type: ignore[arg-type]

    def test_event_store_append(self) -> None:
        """EventStore.append of data that is not JSON names the stream, the event and the
        field, and sends nothing."""
        store = InMemoryObjectStore()
        events = EventStore(store)
        record = events.new_event("Noted", {"seen": {3: "c"}})
        with pytest.raises(NotJSON, match=r"event 1 of 1 \(type 'Noted'\): data\['seen'\]"):
            events.append(StreamName("note", "n"), [record], expected_version=0)
        assert store.requests == RequestCounts()


class Opaque:
    """A class cattrs knows nothing of."""

    def __init__(self, value: int) -> None:
        self.value = value


@attrs.frozen
class HoldsOpaque:
    """An attrs event with a field of a type cattrs cannot read."""

    opaque: Opaque


class TestEventClassesCheckedWhenTheRepositoryIsMade:
    @pytest.mark.parametrize(
        ("event_class", "problem"),
        [
            (Opaque, r"EVENT_TYPES\['Bad'\]: CONVERTER cannot turn Opaque into a JSON object"),
            (
                HoldsOpaque,
                (
                    r"EVENT_TYPES\['Bad'\] \(HoldsOpaque\): CONVERTER cannot read it back from "
                    r"JSON \(Unsupported type: <class '.*Opaque'>"
                ),
            ),
        ],
    )
    def test_unconvertible_event_class(self, event_class: type[Any], problem: str) -> None:
        """An event class the converter cannot (un)structure is refused when the Repository is
        made, naming the aggregate and the registry entry."""
        aggregate = type("Broken", (Counter,), {"EVENT_TYPES": {"Bad": event_class}})
        with pytest.raises(InvalidConfiguration, match=f"^Broken: {problem}"):
            Repository(EventStore(InMemoryObjectStore()), aggregate)

    def test_unconvertible_state(self) -> None:
        """A state type the converter cannot read is refused too."""
        aggregate = type("Broken", (Counter,), {"STATE_TYPE": HoldsOpaque})
        with pytest.raises(InvalidConfiguration, match=r"^Broken: the state type .* cannot read"):
            Repository(EventStore(InMemoryObjectStore()), aggregate)


class TestAfterVersion:
    @pytest.mark.parametrize("after_version", [-1, 1.5, "2", None])
    def test_repository_read(self, after_version: Any) -> None:
        """read(after_version=-1) is the caller's mistake, not a corrupt chunk: it raises
        InvalidConfiguration (a ValueError) naming the stream and the argument, before any
        request."""
        store, handler = _handler()
        handler.handle("c", Increment(1))
        before = store.requests
        repository = handler.repository
        with pytest.raises(
            InvalidConfiguration,
            match=f"^chunks of stream counter/c: after_version must be an int >= 0 .*, not "
            f"{after_version!r}",
        ):
            list(repository.read("c", after_version=after_version))
        with pytest.raises(InvalidConfiguration, match="after_version"):
            list(repository.event_store.chunks(StreamName("counter", "c"), after_version=-1))
        assert store.requests == before


@attrs.frozen
class Priced:
    """An event with the types people reach for: money, ids, instants, days."""

    price: Decimal
    order_id: uuid.UUID
    at: datetime
    day: date


class _Prices(Aggregate[tuple[Priced, ...], Priced, Priced]):
    """Keeps every Priced event; the state holds them too (so snapshots carry each type)."""

    STREAM_TYPE = "prices"
    STATE_TYPE = tuple[Priced, ...]
    EVENT_TYPES: ClassVar[dict[str, type[Any]]] = {"Priced": Priced}

    def initial_state(self) -> tuple[Priced, ...]:
        """None yet."""
        return ()

    def evolve(self, state: tuple[Priced, ...], event: Priced) -> tuple[Priced, ...]:
        """One more."""
        return (*state, event)

    def decide(self, command: Priced, state: tuple[Priced, ...]) -> Sequence[Priced]:
        """Store the command."""
        return [command]


class TestTypesOutOfTheBox:
    def test_decimal_uuid_datetime_round_trip(self) -> None:
        """Decimal (every digit, as a JSON string), UUID and datetime fields go through a
        store and back, in events and in snapshots, with no hook to register."""
        store = InMemoryObjectStore()
        repository = Repository(EventStore(store), _Prices)
        priced = Priced(
            Decimal("19.90"),
            uuid.UUID("12345678-1234-5678-1234-567812345678"),
            datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC),
            date(2026, 11, 26),
        )
        CommandHandler(repository).handle("p", priced)
        assert [recorded.event for recorded in repository.read("p")] == [priced]
        assert repository.load("p").state == (priced,)
        assert str(repository.load("p").state[0].price) == "19.90"
        stored = store.get(next(iter(store.list_keys("prices/p/"))))
        assert stored is not None
        assert b'"price":"19.90"' in stored.body
        assert b'"order_id":"12345678-1234-5678-1234-567812345678"' in stored.body
