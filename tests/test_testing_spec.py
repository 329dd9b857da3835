"""s3es.testing.AggregateSpec: given events, when a command, then events, an error or a state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

import attrs
import pytest

from s3es import Aggregate, InvalidConfiguration
from s3es.testing import AggregateSpec
from tests.aggregates import (
    Counter,
    CounterCommand,
    CounterError,
    CounterState,
    Decrement,
    Decremented,
    Increment,
    IncrementEach,
    Incremented,
)


@pytest.fixture
def spec() -> AggregateSpec[Any, Any, Any]:
    return AggregateSpec(Counter)


class TestThen:
    def test_passes_on_correct_rules(self, spec: AggregateSpec[Any, Any, Any]) -> None:
        """then passes when decide returns exactly the expected events, and returns the state
        after them."""
        state = spec.given(Incremented(5)).when(Decrement(2)).then(Decremented(2))
        assert state == CounterState(total=3, events=2)

    def test_no_events(self, spec: AggregateSpec[Any, Any, Any]) -> None:
        """then with no events passes when the command changes nothing."""
        assert spec.given(Incremented(5)).when(Increment(0)).then() == CounterState(5, 1)

    def test_several_events_in_order(self, spec: AggregateSpec[Any, Any, Any]) -> None:
        """then compares every event, in order."""
        state = spec.given().when(IncrementEach((1, 2))).then(Incremented(1), Incremented(2))
        assert state == CounterState(total=3, events=2)

    def test_wrong_events(self, spec: AggregateSpec[Any, Any, Any]) -> None:
        """Other events than expected fail with the command, what decide returned and what was
        expected."""
        with pytest.raises(AssertionError) as failed:
            spec.given(Incremented(5)).when(Decrement(2)).then(Decremented(3))
        assert str(failed.value) == (
            "when Decrement(amount=2): decide returned [Decremented(amount=2)], "
            "expected [Decremented(amount=3)]"
        )

    def test_events_expected_none_returned(self, spec: AggregateSpec[Any, Any, Any]) -> None:
        """Expecting events from a command that changes nothing fails, showing the empty list."""
        with pytest.raises(AssertionError, match=r"decide returned \[\], expected \[Incre"):
            spec.given().when(Increment(0)).then(Incremented(0))

    def test_domain_error_propagates(self, spec: AggregateSpec[Any, Any, Any]) -> None:
        """A command refused where then expected events raises the domain error itself."""
        with pytest.raises(CounterError, match="cannot take 1 from a total of 0"):
            spec.given().when(Decrement(1)).then(Decremented(1))


class TestThenRaises:
    def test_passes_on_expected_error(self, spec: AggregateSpec[Any, Any, Any]) -> None:
        """then_raises passes on the expected error and returns it."""
        error = (
            spec.given(Incremented(2))
            .when(Decrement(3))
            .then_raises(CounterError, match="cannot take 3 from a total of 2")
        )
        assert isinstance(error, CounterError)

    def test_base_class_matches(self, spec: AggregateSpec[Any, Any, Any]) -> None:
        """An error of a subclass of the expected error passes, as with pytest.raises."""
        error = spec.given().when(Decrement(1)).then_raises(Exception)
        assert isinstance(error, CounterError)

    def test_no_error(self, spec: AggregateSpec[Any, Any, Any]) -> None:
        """A command that is not refused fails, naming the expected error and the events."""
        with pytest.raises(AssertionError) as failed:
            spec.given(Incremented(5)).when(Decrement(1)).then_raises(CounterError)
        assert str(failed.value) == (
            "when Decrement(amount=1): expected CounterError, "
            "but decide returned [Decremented(amount=1)]"
        )

    def test_message_mismatch(self, spec: AggregateSpec[Any, Any, Any]) -> None:
        """An error whose message does not match fails, quoting the message and the pattern."""
        with pytest.raises(AssertionError) as failed:
            spec.given().when(Decrement(1)).then_raises(CounterError, match="insufficient")
        assert str(failed.value) == (
            "when Decrement(amount=1): CounterError('cannot take 1 from a total of 0') "
            "does not match 'insufficient'"
        )
        assert isinstance(failed.value.__cause__, CounterError)

    def test_wrong_error(self, spec: AggregateSpec[Any, Any, Any]) -> None:
        """An error of another type fails with an AssertionError naming both types."""
        with pytest.raises(AssertionError) as failed:
            spec.given().when(Decrement(1)).then_raises(KeyError)
        assert "expected KeyError" in str(failed.value)
        assert "CounterError" in str(failed.value)


class TestThenState:
    def test_passes(self, spec: AggregateSpec[Any, Any, Any]) -> None:
        """then_state passes when the state after the given events is the expected one."""
        expected = CounterState(total=1, events=2)
        assert spec.given(Incremented(2), Decremented(1)).then_state(expected) == expected

    def test_mismatch(self, spec: AggregateSpec[Any, Any, Any]) -> None:
        """Another state fails with both states."""
        with pytest.raises(AssertionError) as failed:
            spec.given(Incremented(2)).then_state(CounterState(total=3, events=1))
        assert str(failed.value) == (
            "state after the given events is CounterState(total=2, events=1), "
            "not CounterState(total=3, events=1)"
        )


@attrs.frozen
class Stray:
    """An event class the counter does not register."""

    amount: int


class Leaky(Counter):
    """A counter that decides an unregistered event for every command."""

    def decide(self, command: CounterCommand, state: CounterState) -> Sequence[Any]:
        """A Stray event."""
        return [Stray(1)]


class TestRegistry:
    def test_unregistered_event_decided(self) -> None:
        """An unregistered event decided fails as production would: InvalidConfiguration naming
        the aggregate and the class."""
        spec: AggregateSpec[Any, Any, Any] = AggregateSpec(Leaky)
        with pytest.raises(InvalidConfiguration, match=r"^Leaky: decide returned Stray for "):
            spec.given().when(Increment(1)).then(Stray(1))

    def test_unregistered_event_given(self, spec: AggregateSpec[Any, Any, Any]) -> None:
        """An unregistered event in the history fails the same way."""
        with pytest.raises(InvalidConfiguration, match=r"returned Stray .* not in EVENT_TYPES"):
            spec.given(Stray(1))


@attrs.frozen
class Put:
    """An item went into the bag; ``tags`` are JSON-friendly only as a list."""

    item: str
    tags: Any = None


@attrs.frozen
class BagState:
    """The items in the bag: a tuple in a field typed Any, which a snapshot reads as a list."""

    items: Any


class Bag(Aggregate[BagState, Put, Put]):
    """An aggregate whose state, and some events, do not survive storage."""

    STREAM_TYPE = "bag"
    EVENT_TYPES: ClassVar[Mapping[str, type[Any]]] = {"Put": Put}

    def initial_state(self) -> BagState:
        """An empty bag (an empty list, which survives)."""
        return BagState(items=[])

    def evolve(self, state: BagState, event: Put) -> BagState:
        """The items as a tuple: not what a snapshot gives back."""
        return BagState(items=(*state.items, event.item))

    def decide(self, command: Put, state: BagState) -> Sequence[Put]:
        """The command is the event."""
        return [command]


class TestStorageRoundTrip:
    def test_state_not_surviving_snapshot(self) -> None:
        """A state that comes back from its snapshot changed fails then, naming both states."""
        spec = AggregateSpec(Bag)
        with pytest.raises(AssertionError) as failed:
            spec.given().when(Put("pen")).then(Put("pen"))
        assert str(failed.value) == (
            "state BagState(items=('pen',)) was read back from a snapshot as "
            "BagState(items=['pen'])"
        )

    def test_then_state_checks_the_snapshot(self) -> None:
        """then_state also fails on a state that does not survive its snapshot."""
        spec = AggregateSpec(Bag)
        with pytest.raises(AssertionError, match=r"was read back from a snapshot as"):
            spec.given(Put("pen")).then_state(BagState(items=("pen",)))

    def test_event_not_surviving_storage(self) -> None:
        """An event that comes back from storage changed fails, naming both events."""
        spec = AggregateSpec(Bag)
        with pytest.raises(AssertionError) as failed:
            spec.given(Put("pen", tags=("blue",)))
        assert str(failed.value) == (
            "event Put(item='pen', tags=('blue',)) was read back from storage as "
            "Put(item='pen', tags=['blue'])"
        )


@attrs.frozen
class Priced:
    """An entry: a number, and what it stands for."""

    number: int
    name: str


@attrs.frozen
class PriceState:
    """A mapping typed with Any keys, and a value typed Any: JSON turns int keys into str and
    refuses a Decimal, but cattrs alone passes both through unchanged."""

    names: dict[Any, str]
    price: Any = None


class PriceList(Aggregate[PriceState, Priced, Priced]):
    """An aggregate whose state survives cattrs but not JSON."""

    STREAM_TYPE = "prices"
    EVENT_TYPES: ClassVar[Mapping[str, type[Any]]] = {"Priced": Priced}

    def initial_state(self) -> PriceState:
        """No names."""
        return PriceState(names={})

    def evolve(self, state: PriceState, event: Priced) -> PriceState:
        """Name the number; a name starting with ``$`` sets a Decimal price."""
        price = Decimal(event.name[1:]) if event.name.startswith("$") else state.price
        return PriceState(names={**state.names, event.number: event.name}, price=price)

    def decide(self, command: Priced, state: PriceState) -> Sequence[Priced]:
        """The command is the event."""
        return [command]


class TestJsonRoundTrip:
    @pytest.mark.parametrize(
        ("event", "state"),
        [
            (Priced(1, "one"), PriceState(names={1: "one"})),
            (Priced(2, "$2.50"), PriceState(names={2: "$2.50"}, price=Decimal("2.50"))),
        ],
        ids=["int keys become str", "Decimal is not JSON"],
    )
    def test_state_not_surviving_json(self, event: Priced, state: PriceState) -> None:
        """A state that JSON changes or refuses fails the spec, as it would fail in storage."""
        spec = AggregateSpec(PriceList)
        with pytest.raises(AssertionError, match="snapshot"):
            spec.given(event).then_state(state)
