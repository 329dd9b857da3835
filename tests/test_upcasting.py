"""Event schema evolution: events stored by an older event class, read through upcasters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3es import (
    Aggregate,
    CommandHandler,
    CorruptChunk,
    EventStore,
    InMemoryObjectStore,
    InvalidConfiguration,
    Repository,
    Upcaster,
)
from s3es.testing import AggregateSpec

STREAM_ID = "acc-1"


@attrs.frozen
class Open:
    owner: str


@attrs.frozen
class DepositedV1:
    """Schema 1: an amount in whole units."""

    amount: int


@attrs.frozen
class Deposited:
    """Schema 3: cents and a currency (schema 2 had cents only)."""

    cents: int
    currency: str


@attrs.frozen
class Balance:
    cents: int = 0
    currency: str = "EUR"


class AccountV1(Aggregate[Balance, Open, DepositedV1]):
    """The account as it was first deployed: deposits in whole units, schema 1."""

    STREAM_TYPE = "account"
    EVENT_TYPES: ClassVar = {"Deposited": DepositedV1}

    def initial_state(self) -> Balance:
        return Balance()

    def evolve(self, state: Balance, event: DepositedV1) -> Balance:
        return Balance(state.cents + 100 * event.amount)

    def decide(self, command: Open, state: Balance) -> Sequence[DepositedV1]:
        return [DepositedV1(int(command.owner))]  # the owner field carries the amount here


def _to_cents(data: dict[str, Any]) -> dict[str, Any]:
    return {"cents": data["amount"] * 100}


def _add_currency(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "currency": "EUR"}


class Account(Aggregate[Balance, Open, Deposited]):
    """Today's account: deposits in cents with a currency, schema 3."""

    STREAM_TYPE = "account"
    SNAPSHOT_SCHEMA = 2
    EVENT_TYPES: ClassVar = {"Deposited": Deposited}
    EVENT_SCHEMAS: ClassVar = {"Deposited": 3}
    UPCASTERS: ClassVar[dict[tuple[str, int], Upcaster]] = {
        ("Deposited", 1): _to_cents,
        ("Deposited", 2): _add_currency,
    }

    def initial_state(self) -> Balance:
        return Balance()

    def evolve(self, state: Balance, event: Deposited) -> Balance:
        return Balance(state.cents + event.cents, event.currency)

    def decide(self, command: Open, state: Balance) -> Sequence[Deposited]:
        return [Deposited(int(command.owner), "EUR")]


def _old_stream(amounts: Sequence[int]) -> InMemoryObjectStore:
    """A store holding a stream written by AccountV1."""
    store = InMemoryObjectStore()
    handler = CommandHandler(Repository(EventStore(store), AccountV1))
    for amount in amounts:
        handler.handle(STREAM_ID, Open(str(amount)))
    return store


class TestUpcasting:
    def test_chain_applied_on_read(self) -> None:
        """Events stored at schema 1 read as today's class, through every upcaster in turn."""
        store = _old_stream([3, 4])
        events = [r.event for r in Repository(EventStore(store), Account).read(STREAM_ID)]
        assert events == [Deposited(300, "EUR"), Deposited(400, "EUR")]

    def test_load_after_upcasting_equals_replay(self) -> None:
        """The snapshot schema bump replays the upcast events and re-snapshots; load equals
        replay, and the next load reads the new snapshot."""
        store = _old_stream([1, 2, 3])
        accounts = Repository(EventStore(store), Account)
        loaded = accounts.load(STREAM_ID)
        assert loaded.state == Balance(600, "EUR")
        assert accounts.load(STREAM_ID) == accounts.replay(STREAM_ID) == loaded

    def test_new_events_stored_at_current_schema(self) -> None:
        """New events are stored at the current schema and read back without upcasting; old and
        new events mix in one stream."""
        store = _old_stream([1])
        accounts = Repository(EventStore(store), Account)
        CommandHandler(accounts).handle(STREAM_ID, Open("250"))
        chunk = accounts.event_store.latest(accounts.stream(STREAM_ID))
        assert chunk is not None
        assert chunk.events[0].schema == 3
        assert [r.event for r in accounts.read(STREAM_ID)] == [
            Deposited(100, "EUR"),
            Deposited(250, "EUR"),
        ]

    def test_spec_round_trips_at_current_schema(self) -> None:
        """AggregateSpec stores events at their current schema, so no upcaster runs on them."""
        spec = AggregateSpec(Account)
        spec.given(Deposited(5, "EUR")).when(Open("7")).then(Deposited(7, "EUR"))

    @settings(max_examples=50, deadline=None)
    @given(amounts=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=8))
    def test_any_old_history(self, amounts: list[int]) -> None:
        """Any history stored by the old class folds, after upcasting, to the same balance."""
        store = _old_stream(amounts)
        accounts = Repository(EventStore(store), Account)
        assert accounts.replay(STREAM_ID).state == Balance(100 * sum(amounts), "EUR")


class TestReadErrors:
    def _stored_at(self, schema: int, data: dict[str, Any]) -> InMemoryObjectStore:
        """A store holding one event of type Deposited, stored at ``schema`` with ``data``."""
        store = InMemoryObjectStore()
        events = EventStore(store)
        record = events.new_event("Deposited", data, schema=schema)
        stream = Repository(events, Account).stream(STREAM_ID)
        events.append(stream, [record], expected_version=0)
        return store

    def test_newer_schema_refused(self) -> None:
        """An event stored at a schema newer than the code's raises CorruptChunk naming the
        key, the event, the type and both schemas."""
        store = self._stored_at(4, {"cents": 1, "currency": "EUR"})
        with pytest.raises(CorruptChunk) as raised:
            list(Repository(EventStore(store), Account).read(STREAM_ID))
        assert raised.value.key.startswith("account/acc-1/")
        assert "of type 'Deposited' is at schema 4, newer than this code's 3" in raised.value.reason

    def test_failing_upcaster(self) -> None:
        """An upcaster that raises is reported as CorruptChunk naming the event, the type and
        the schema, with the error chained."""
        store = self._stored_at(1, {"no_amount": 1})
        with pytest.raises(CorruptChunk) as raised:
            list(Repository(EventStore(store), Account).read(STREAM_ID))
        assert "upcasting event" in raised.value.reason
        assert "'Deposited' from schema 1 failed: KeyError('amount')" in raised.value.reason
        assert isinstance(raised.value.__cause__, KeyError)

    def test_upcaster_returning_no_object(self) -> None:
        """An upcaster that returns something other than a JSON object is reported."""

        class Broken(Account):
            UPCASTERS: ClassVar[dict[tuple[str, int], Upcaster]] = {
                ("Deposited", 1): lambda data: [data],  # type: ignore[dict-item,return-value]
                ("Deposited", 2): _add_currency,
            }

        store = _old_stream([1])
        with pytest.raises(CorruptChunk, match="returned list, not a JSON object"):
            list(Repository(EventStore(store), Broken).read(STREAM_ID))


class TestConfiguration:
    @pytest.mark.parametrize(
        ("schemas", "upcasters", "message"),
        [
            ({"Deposited": 3}, {("Deposited", 1): _to_cents}, "no upcaster from schema 2"),
            ({"Other": 2}, {}, "EVENT_SCHEMAS names 'Other', which is not in EVENT_TYPES"),
            ({"Deposited": 0}, {}, r"EVENT_SCHEMAS\['Deposited'\] must be an int >= 1"),
            (
                {"Deposited": 2},
                {("Deposited", 1): _to_cents, ("Deposited", 2): _add_currency},
                r"UPCASTERS has \('Deposited', 2\), but 'Deposited' is at schema 2",
            ),
            ({"Deposited": 2}, {("Deposited", 1): "not callable"}, "is not callable"),
        ],
    )
    def test_refused(
        self, schemas: dict[str, int], upcasters: dict[tuple[str, int], Any], message: str
    ) -> None:
        """Schemas and upcasters that do not form complete chains are refused when the
        aggregate is first used, naming the aggregate and the problem."""
        broken = type("Broken", (Account,), {"EVENT_SCHEMAS": schemas, "UPCASTERS": upcasters})
        with pytest.raises(InvalidConfiguration, match=message) as raised:
            Repository(EventStore(InMemoryObjectStore()), broken)
        assert str(raised.value).startswith("Broken: ")
