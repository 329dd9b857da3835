"""Event schema evolution: events stored by an older event class, read through upcasters.

The streams here are written by ``AccountV1``, the account as first deployed, and read by
``Account``, today's: ``Deposited`` went from whole units (schema 1) to cents (2) to cents and a
currency (3); negative deposits of schema 1 (corrections) became ``Withdrawn`` events (a split),
and the retired ``Charged`` type was merged into ``Withdrawn`` too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from s3es import (
    Aggregate,
    CommandHandler,
    CorruptChunk,
    EventStore,
    InMemoryObjectStore,
    InvalidConfiguration,
    Renamed,
    Repository,
    Upcaster,
)
from s3es.metering import RequestCounts
from s3es.ops import compact
from s3es.testing import AggregateSpec

STREAM_ID = "acc-1"


@attrs.frozen
class Deposit:
    """Whole units; a negative amount corrects an earlier deposit."""

    amount: int


@attrs.frozen
class Charge:
    amount: int


Command = Deposit | Charge


@attrs.frozen
class Balance:
    cents: int = 0
    currency: str = "EUR"


# --- The account as first deployed: every event at schema 1. ---


@attrs.frozen
class DepositedV1:
    amount: int


@attrs.frozen
class ChargedV1:
    amount: int


class AccountV1(Aggregate[Balance, Command, DepositedV1 | ChargedV1]):
    STREAM_TYPE = "account"
    EVENT_TYPES: ClassVar = {"Deposited": DepositedV1, "Charged": ChargedV1}

    def initial_state(self) -> Balance:
        return Balance()

    def evolve(self, state: Balance, event: DepositedV1 | ChargedV1) -> Balance:
        sign = 1 if isinstance(event, DepositedV1) else -1
        return Balance(state.cents + sign * 100 * event.amount)

    def decide(self, command: Command, state: Balance) -> Sequence[DepositedV1 | ChargedV1]:
        if isinstance(command, Deposit):
            return [DepositedV1(command.amount)]
        return [ChargedV1(command.amount)]


# --- Today's account. ---


@attrs.frozen
class Deposited:
    """Schema 3."""

    cents: int
    currency: str


@attrs.frozen
class Withdrawn:
    """Schema 2 (schema 1 had no reason)."""

    cents: int
    reason: str


def deposited_1_to_2(data: dict[str, Any]) -> dict[str, Any] | Renamed:
    """Cents instead of units; a negative deposit (a correction) becomes a withdrawal."""
    if data["amount"] < 0:
        # Written when Withdrawn was at schema 1: it stays right as Withdrawn evolves.
        return Renamed("Withdrawn", 1, {"cents": -100 * data["amount"]})
    return {"cents": 100 * data["amount"]}


def deposited_2_to_3(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "currency": "EUR"}


def withdrawn_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "reason": "correction"}  # schema 1 withdrawals were all corrections


def charged_to_withdrawn(data: dict[str, Any]) -> Renamed:
    """Written when Withdrawn was at schema 2."""
    return Renamed("Withdrawn", 2, {"cents": 100 * data["amount"], "reason": "fee"})


class Account(Aggregate[Balance, Command, Deposited | Withdrawn]):
    """The state and its snapshots did not change: SNAPSHOT_SCHEMA stays 1."""

    STREAM_TYPE = "account"
    EVENT_TYPES: ClassVar = {"Deposited": Deposited, "Withdrawn": Withdrawn}
    EVENT_SCHEMAS: ClassVar = {"Deposited": 3, "Withdrawn": 2}
    UPCASTERS: ClassVar[dict[tuple[str, int], Upcaster]] = {
        ("Deposited", 1): deposited_1_to_2,
        ("Deposited", 2): deposited_2_to_3,
        ("Withdrawn", 1): withdrawn_1_to_2,
        ("Charged", 1): charged_to_withdrawn,
    }

    def initial_state(self) -> Balance:
        return Balance()

    def evolve(self, state: Balance, event: Deposited | Withdrawn) -> Balance:
        if isinstance(event, Deposited):
            return Balance(state.cents + event.cents, event.currency)
        return Balance(state.cents - event.cents, state.currency)

    def decide(self, command: Command, state: Balance) -> Sequence[Deposited | Withdrawn]:
        if isinstance(command, Charge):
            return [Withdrawn(100 * command.amount, "fee")]
        if command.amount < 0:
            return [Withdrawn(-100 * command.amount, "correction")]
        return [Deposited(100 * command.amount, "EUR")]


class AccountNewSnapshots(Account):
    """Today's account with a changed snapshot schema: old snapshots are replayed over."""

    SNAPSHOT_SCHEMA = 2


def _old_stream(commands: Sequence[Command], store: InMemoryObjectStore | None = None) -> Any:
    """A store holding stream ``acc-1`` written by AccountV1 with ``commands``."""
    store = store or InMemoryObjectStore()
    handler = CommandHandler(Repository(EventStore(store), AccountV1))
    for command in commands:
        handler.handle(STREAM_ID, command)
    return store


def _events(store: InMemoryObjectStore, aggregate: type[Aggregate[Any, Any, Any]]) -> list[Any]:
    return [recorded.event for recorded in Repository(EventStore(store), aggregate).read(STREAM_ID)]


def _stored_events(store: InMemoryObjectStore, key: str) -> list[dict[str, Any]]:
    stored = store.get(key)
    assert stored is not None
    events: list[dict[str, Any]] = json.loads(stored.body)["events"]
    return events


def _store_raw(event_type: str, schema: int, data: dict[str, Any]) -> InMemoryObjectStore:
    """A store whose stream ``acc-1`` holds one event, stored as given."""
    store = InMemoryObjectStore()
    events = EventStore(store)
    record = events.new_event(event_type, data, schema=schema)
    events.append(Repository(events, Account).stream(STREAM_ID), [record], expected_version=0)
    return store


def _read_error(store: InMemoryObjectStore, aggregate: type[Aggregate[Any, Any, Any]]) -> Any:
    with pytest.raises(CorruptChunk) as raised:
        _events(store, aggregate)
    key = EventStore(store).keys.chunk_key(
        Repository(EventStore(store), Account).stream(STREAM_ID), 1
    )
    assert raised.value.key == key
    return raised.value


class TestUpcasting:
    def test_chain(self) -> None:
        """Events stored at schema 1 read as today's class, through every upcaster in turn."""
        store = _old_stream([Deposit(3), Deposit(4)])
        assert _events(store, Account) == [Deposited(300, "EUR"), Deposited(400, "EUR")]

    def test_split(self) -> None:
        """An upcaster that returns Renamed makes the event another type, by its data; the new
        type's own upcasters then run from the schema the Renamed names."""
        store = _old_stream([Deposit(5), Deposit(-2)])
        assert _events(store, Account) == [Deposited(500, "EUR"), Withdrawn(200, "correction")]

    def test_retired_type(self) -> None:
        """Events of a type no longer in EVENT_TYPES read as the type their upcaster names."""
        store = _old_stream([Deposit(5), Charge(1)])
        assert _events(store, Account) == [Deposited(500, "EUR"), Withdrawn(100, "fee")]

    def test_recorded_type_is_current(self) -> None:
        """A read names each event by its type today, not by the name it was stored under."""
        store = _old_stream([Deposit(-2), Charge(1)])
        recorded = Repository(EventStore(store), Account).read(STREAM_ID)
        assert [r.type for r in recorded] == ["Withdrawn", "Withdrawn"]

    def test_event_schema_alone_keeps_snapshots(self) -> None:
        """New event schemas with the same SNAPSHOT_SCHEMA load from the stored snapshot (one
        LIST, one GET), and the state equals a replay through the upcasters."""
        store = _old_stream([Deposit(5), Deposit(-2), Charge(1)])
        accounts = Repository(EventStore(store), Account)
        before = store.requests
        loaded = accounts.load(STREAM_ID)
        assert store.requests - before == RequestCounts(list=1, get=1)
        assert loaded == accounts.replay(STREAM_ID)
        assert loaded.state == Balance(200, "EUR")

    def test_snapshot_fallback(self) -> None:
        """With a new SNAPSHOT_SCHEMA too, load replays through the upcasters and re-snapshots;
        it equals the replay, and the next load reads the new snapshot alone."""
        store = _old_stream([Deposit(5), Deposit(-2), Charge(1)])
        accounts = Repository(EventStore(store), AccountNewSnapshots)
        with structlog.testing.capture_logs() as logs:
            loaded = accounts.load(STREAM_ID)
        assert [entry["event"] for entry in logs] == ["replay_fallback", "rewrite"]
        assert loaded == accounts.replay(STREAM_ID)
        assert loaded.state == Balance(200, "EUR")
        before = store.requests
        assert accounts.load(STREAM_ID) == loaded
        assert store.requests - before == RequestCounts(list=1, get=1)

    def test_rewrite_keeps_stored_events(self) -> None:
        """The chunk a replay re-snapshots keeps its events as stored: type, schema and data."""
        store = _old_stream([Deposit(5), Charge(1)])
        keys = EventStore(store).keys
        stream = Repository(EventStore(store), Account).stream(STREAM_ID)
        Repository(EventStore(store), AccountNewSnapshots).load(STREAM_ID)
        rewritten = _stored_events(store, keys.chunk_key(stream, 2, 1))
        assert rewritten == _stored_events(store, keys.chunk_key(stream, 2, 0))
        assert [(e["type"], e["data"], "schema" in e) for e in rewritten] == [
            ("Charged", {"amount": 1}, False)
        ]

    def test_upcaster_cannot_change_stored_data(self) -> None:
        """An upcaster that changes nested data in place works on a copy: a re-snapshotted
        chunk stores the event as it was, and reading it again gives the same event."""

        @attrs.frozen
        class Tagged:
            tags: list[str]

        def tag_in_place(data: dict[str, Any]) -> dict[str, Any]:
            data["tags"].append("upcast")
            return data

        class Tags(Aggregate[int, int, Tagged]):
            STREAM_TYPE = "account"
            SNAPSHOT_SCHEMA = 2
            EVENT_TYPES: ClassVar = {"Tagged": Tagged}
            EVENT_SCHEMAS: ClassVar = {"Tagged": 2}
            UPCASTERS: ClassVar[dict[tuple[str, int], Upcaster]] = {("Tagged", 1): tag_in_place}

            def initial_state(self) -> int:
                return 0

            def evolve(self, state: int, event: Tagged) -> int:
                return state + len(event.tags)

            def decide(self, command: int, state: int) -> Sequence[Tagged]:
                return []

        store = _store_raw("Tagged", 1, {"tags": ["a"]})
        repository = Repository(EventStore(store), Tags)
        assert repository.load(STREAM_ID).state == 2  # replayed, then re-snapshotted
        stream = repository.stream(STREAM_ID)
        rewritten = _stored_events(store, repository.event_store.keys.chunk_key(stream, 1, 1))
        assert rewritten[0]["data"] == {"tags": ["a"]}
        chunk = repository.event_store.latest(stream)
        assert chunk is not None
        assert [repository.codec.decode_event(chunk.events[0], "k") for _ in range(2)] == [
            Tagged(["a", "upcast"]),
            Tagged(["a", "upcast"]),
        ]
        assert chunk.events[0].data == {"tags": ["a"]}

    def test_new_events_at_current_schema(self) -> None:
        """New events are stored at their type's current schema and read back as they are;
        old and new events mix in one stream."""
        store = _old_stream([Deposit(1)])
        accounts = Repository(EventStore(store), Account)
        handler = CommandHandler(accounts)
        handler.handle(STREAM_ID, Deposit(2))
        handler.handle(STREAM_ID, Charge(1))
        stream = accounts.stream(STREAM_ID)
        keys = accounts.event_store.keys
        assert [
            (e["type"], e.get("schema"))
            for version in (1, 2, 3)
            for e in _stored_events(store, keys.chunk_key(stream, version))
        ] == [("Deposited", None), ("Deposited", 3), ("Withdrawn", 2)]
        assert _events(store, Account) == [
            Deposited(100, "EUR"),
            Deposited(200, "EUR"),
            Withdrawn(100, "fee"),
        ]

    def test_compaction(self) -> None:
        """A compacted old stream keeps its events at their stored schemas and reads the same."""
        store = _old_stream([Deposit(5), Deposit(-2), Charge(1)])
        before = _events(store, Account)
        accounts = Repository(EventStore(store), Account)
        assert compact(accounts, STREAM_ID).merged == 3
        chunk = accounts.event_store.latest(accounts.stream(STREAM_ID))
        assert chunk is not None
        assert [(e.type, e.schema) for e in chunk.events] == [
            ("Deposited", 1),
            ("Deposited", 1),
            ("Charged", 1),
        ]
        assert _events(store, Account) == before

    def test_spec_round_trips_at_current_schema(self) -> None:
        """AggregateSpec stores events at their current schema, so no upcaster runs on them."""
        spec = AggregateSpec(Account)
        spec.given(Deposited(500, "EUR")).when(Charge(1)).then(Withdrawn(100, "fee"))

    @settings(max_examples=40, deadline=None)
    @given(
        commands=st.lists(
            st.one_of(
                st.builds(Deposit, st.integers(min_value=-50, max_value=10**6)),
                st.builds(Charge, st.integers(min_value=0, max_value=50)),
            ),
            min_size=1,
            max_size=6,
        ),
        later=st.lists(st.builds(Deposit, st.integers(-50, 50)), max_size=3),
    )
    def test_any_history(self, commands: list[Command], later: list[Deposit]) -> None:
        """Any history stored by the old class, continued by today's, folds through the
        upcasters to the balance the old class computed; load (via the fallback) equals replay."""
        store = _old_stream(commands)
        old_balance = Repository(EventStore(store), AccountV1).load(STREAM_ID).state
        handler = CommandHandler(Repository(EventStore(store), Account))
        for command in later:
            handler.handle(STREAM_ID, command)
        accounts = Repository(EventStore(store), AccountNewSnapshots)
        loaded = accounts.load(STREAM_ID)
        added = 100 * sum(deposit.amount for deposit in later)
        assert loaded.state == Balance(old_balance.cents + added, "EUR")
        assert loaded == accounts.replay(STREAM_ID)


class TestRenamed:
    @pytest.mark.parametrize(
        ("arguments", "error", "message"),
        [
            (("", 1, {}), TypeError, "Renamed.type must be a non-empty str, not ''"),
            (("T", 0, {}), ValueError, "Renamed.schema must be >= 1, not 0"),
            (("T", True, {}), TypeError, "Renamed.schema must be an int, not True"),
            (("T", 1, [1]), TypeError, "Renamed.data must be a dict, not list"),
        ],
    )
    def test_refused(
        self, arguments: tuple[Any, ...], error: type[Exception], message: str
    ) -> None:
        """A Renamed with an empty type, a schema that is not an int >= 1, or data that is not
        a dict is refused when it is made, naming the field."""
        with pytest.raises(error, match=message):
            Renamed(*arguments)


class TestReadErrors:
    def test_newer_schema(self) -> None:
        """An event stored at a schema newer than the code's raises CorruptChunk naming the
        key, the event, the type and both schemas."""
        store = _store_raw("Deposited", 4, {"cents": 1, "currency": "EUR"})
        error = _read_error(store, Account)
        assert "of type 'Deposited' is at schema 4, newer than this code's 3" in error.reason

    def test_renamed_to_newer_schema(self) -> None:
        """A Renamed naming a schema newer than its type's current one is refused the same way,
        saying what the event was stored as."""
        broken = _with_upcasters(
            {("Charged", 1): lambda data: Renamed("Withdrawn", 3, data)}, name="Newer"
        )
        error = _read_error(_old_stream([Charge(1)]), broken)
        assert error.reason.endswith(
            "of type 'Withdrawn' is at schema 3 (stored as 'Charged' at schema 1), "
            "newer than this code's 2"
        )

    def test_invalid_stored_schema(self) -> None:
        """A stored schema below 1 is a corrupt chunk, named with the event and its type."""
        store = _store_raw("Deposited", 0, {"amount": 1})
        error = _read_error(store, Account)
        assert "of type 'Deposited' has schema 0: not an int >= 1" in error.reason

    def test_failing_upcaster(self) -> None:
        """An upcaster that raises is reported as CorruptChunk naming the event, the type and
        the schema, with the error chained."""
        store = _store_raw("Deposited", 1, {"no_amount": 1})
        error = _read_error(store, Account)
        assert error.reason.startswith("upcasting event ")
        assert error.reason.endswith("of type 'Deposited' from schema 1 failed: KeyError('amount')")
        assert isinstance(error.__cause__, KeyError)

    def test_failing_upcaster_after_rename(self) -> None:
        """An upcaster failing after a rename names the step and what the event was stored as."""
        store = _store_raw("Deposited", 1, {"amount": -1})
        broken = _with_upcasters({("Withdrawn", 1): lambda data: {**data, "x": data["y"]}})
        error = _read_error(store, broken)
        assert error.reason.endswith(
            "of type 'Withdrawn' from schema 1 (stored as 'Deposited' at schema 1) failed: "
            "KeyError('y')"
        )

    def test_invalid_renamed(self) -> None:
        """An upcaster whose Renamed is refused is reported as a failing upcaster."""
        broken = _with_upcasters({("Charged", 1): lambda data: Renamed("Withdrawn", 0, data)})
        error = _read_error(_old_stream([Charge(1)]), broken)
        assert "of type 'Charged' from schema 1 failed: ValueError" in error.reason
        assert "Renamed.schema must be >= 1, not 0" in error.reason

    def test_upcaster_returning_no_object(self) -> None:
        """An upcaster that returns neither a JSON object nor Renamed is reported."""
        broken = _with_upcasters({("Deposited", 2): lambda data: [data]})
        error = _read_error(_old_stream([Deposit(1)]), broken)
        assert error.reason.startswith(
            "the upcaster of 'Deposited' from schema 2 returned list, not a JSON object or "
            "Renamed, for event "
        )
        assert error.reason.endswith(" (stored as 'Deposited' at schema 1)")

    def test_circle(self) -> None:
        """Upcasters that rename an event back to where it was are reported, not run forever."""
        broken = _with_upcasters(
            {
                ("Charged", 1): lambda data: Renamed("Fee", 1, data),
                ("Fee", 1): lambda data: Renamed("Charged", 1, data),
            }
        )
        error = _read_error(_old_stream([Charge(1)]), broken)
        assert error.reason.endswith(
            "of type 'Charged' go round in a circle: the upcaster of 'Fee' from schema 1 leads "
            "back to 'Charged' at schema 1"
        )

    def test_retired_type_without_rename(self) -> None:
        """A retired type whose upcasters never rename it is an unknown type, named with what
        it was stored as."""
        broken = _with_upcasters({("Charged", 1): lambda data: data})
        error = _read_error(_old_stream([Charge(1)]), broken)
        assert error.reason.startswith(
            "unknown event type 'Charged' (stored as 'Charged' at schema 1) (event "
        )
        assert error.reason.endswith("); Broken registers Deposited, Withdrawn")

    def test_upcast_data_does_not_fit(self) -> None:
        """Upcast data that does not fit the class says what the event was stored as."""
        broken = _with_upcasters({("Deposited", 2): lambda data: data})
        error = _read_error(_old_stream([Deposit(1)]), broken)
        assert "of type 'Deposited' (stored as 'Deposited' at schema 1) does not fit" in (
            error.reason
        )
        assert "currency" in error.reason


def _with_upcasters(
    upcasters: dict[tuple[str, int], Any], name: str = "Broken"
) -> type[Aggregate[Any, Any, Any]]:
    """``Account`` with ``upcasters`` in place of (or added to) its own."""
    merged = {**Account.UPCASTERS, **upcasters}
    aggregate: type[Aggregate[Any, Any, Any]] = type(name, (Account,), {"UPCASTERS": merged})
    return aggregate


class TestConfiguration:
    @pytest.mark.parametrize(
        ("schemas", "upcasters", "message"),
        [
            ({"Deposited": 3}, {("Deposited", 1): deposited_1_to_2}, "no upcaster from schema 2"),
            ({"Deposited": 4}, {}, r"'Deposited' is at schema 4 .* from schema 1, 2, 3$"),
            ({"Other": 2}, {}, "EVENT_SCHEMAS names 'Other', which is not in EVENT_TYPES"),
            ({"Deposited": 0}, {}, r"EVENT_SCHEMAS\['Deposited'\] must be an int >= 1: 0"),
            ({"Deposited": True}, {}, r"EVENT_SCHEMAS\['Deposited'\] must be an int >= 1: True"),
            ({"Deposited": "2"}, {}, r"EVENT_SCHEMAS\['Deposited'\] must be an int >= 1: '2'"),
            (["Deposited"], {}, r"EVENT_SCHEMAS must map event type names to ints: \['Depo"),
            (
                {"Deposited": 2},
                {("Deposited", 1): deposited_1_to_2, ("Deposited", 2): deposited_2_to_3},
                (
                    r"UPCASTERS has \('Deposited', 2\), but 'Deposited' is at schema 2, its "
                    "upcasters take schemas 1 to 1"
                ),
            ),
            (
                {},
                {("Deposited", 1): deposited_1_to_2},
                r"but 'Deposited' is at schema 1, so it takes no upcaster",
            ),
            ({"Deposited": 2}, {("Deposited", 1): "f"}, r"UPCASTERS\[\('Deposited', 1\)\] is not"),
            (
                {},
                {("Deposited", 0): deposited_1_to_2},
                r"\('Deposited', 0\), but schemas start at 1",
            ),
            (
                {},
                {"Deposited": deposited_1_to_2},
                "key 'Deposited' is not an .event type name, sch",
            ),
            ({}, {("Deposited",): deposited_1_to_2}, r"key \('Deposited',\) is not an"),
            ({}, {("Deposited", "1"): deposited_1_to_2}, r"key \('Deposited', '1'\) is not an"),
            ({}, {("Deposited", True): deposited_1_to_2}, r"key \('Deposited', True\) is not an"),
            ({}, {("", 1): deposited_1_to_2}, r"key \('', 1\) is not an"),
            ({}, [], r"UPCASTERS must map \(event type name, schema\) pairs to functions: \[\]"),
            (
                {},
                {("Charged", 2): charged_to_withdrawn},
                (
                    "'Charged' is not in EVENT_TYPES, so its upcasters lead from schema 1 to a "
                    "Renamed, but UPCASTERS has no upcaster from schema 1$"
                ),
            ),
        ],
    )
    def test_refused(self, schemas: Any, upcasters: Any, message: str) -> None:
        """Schemas and upcasters that do not form complete chains are refused when the
        aggregate is first used, naming the aggregate and the problem."""
        broken = type("Broken", (Account,), {"EVENT_SCHEMAS": schemas, "UPCASTERS": upcasters})
        with pytest.raises(InvalidConfiguration, match=message) as raised:
            Repository(EventStore(InMemoryObjectStore()), broken)
        assert str(raised.value).startswith("Broken: ")

    def test_every_problem_reported(self) -> None:
        """Several problems are reported together, in one error."""
        broken = type(
            "Broken",
            (Account,),
            {"EVENT_SCHEMAS": {"Deposited": 2, "Other": 2}, "UPCASTERS": {("Withdrawn", 1): 1}},
        )
        with pytest.raises(InvalidConfiguration) as raised:
            AggregateSpec(broken)
        assert str(raised.value) == (
            "Broken: EVENT_SCHEMAS names 'Other', which is not in EVENT_TYPES; "
            "UPCASTERS[('Withdrawn', 1)] is not callable: 1; "
            "'Deposited' is at schema 2 but UPCASTERS has no upcaster from schema 1"
        )

    def test_retired_types_need_no_schema(self) -> None:
        """Upcasters of a type not in EVENT_TYPES are accepted when they run from schema 1."""
        retired = _with_upcasters({("Fee", 1): lambda d: d, ("Fee", 2): charged_to_withdrawn})
        assert Repository(EventStore(InMemoryObjectStore()), retired).stream("x").type == "account"
