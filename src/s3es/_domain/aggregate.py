"""Aggregates: the decider a user writes, and how its events and state become JSON."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeAlias, TypeVar

import attrs
import cattrs
from cattrs.fns import identity

from s3es._base.converter import make_strict_converter, structure_problem
from s3es._base.json import json_problem
from s3es._domain.upcasting import Upcaster, Upcasting, is_schema, origin
from s3es._eventstore.chunk import Chunk, EventRecord, Snapshot
from s3es._storage.keys import StreamName
from s3es.errors import CorruptChunk, InvalidConfiguration, InvalidStreamName, NotJSON

S = TypeVar("S")
C = TypeVar("C")
E = TypeVar("E")


#: The converter aggregates use unless they set ``CONVERTER``.
DEFAULT_CONVERTER: cattrs.Converter = make_strict_converter()

#: The key of the chunk an event is read from, for the CorruptChunk that names it: the key, or a
#: function that makes it, called only when an error is raised (a replay makes none).
KeyOf: TypeAlias = str | Callable[[], str]


def _key(key: KeyOf) -> str:
    return key if isinstance(key, str) else key()


class Aggregate(abc.ABC, Generic[S, C, E]):
    """A decider: the state of one kind of stream, the events that change it, and the rules.

    Subclass it, set the class attributes, and write three methods::

        class Order(Aggregate[OrderState, OrderCommand, OrderEvent]):
            STREAM_TYPE = "order"
            EVENT_TYPES = {"OrderPlaced": OrderPlaced, "OrderPaid": OrderPaid}

            def initial_state(self) -> OrderState: ...
            def evolve(self, state: OrderState, event: OrderEvent) -> OrderState: ...
            def decide(self, command: OrderCommand, state: OrderState) -> Sequence[OrderEvent]: ...

    Hand an instance to a :class:`~s3es.Repository` or :class:`~s3es.CommandHandler`, which
    check the class attributes when made. Concepts (Snapshots, Evolving events) explains
    schemas, upcasters and snapshots.

    Attributes:
        STREAM_TYPE: The type part of every stream name of this aggregate (``order`` in
            ``order/42``).
        SNAPSHOT_SCHEMA: The schema of stored snapshots; bump it whenever the state's shape or
            ``evolve`` changes: snapshots of another schema are ignored, the stream replayed
            and a fresh snapshot written.
        EVENT_TYPES: Each event class by the name that is stored, so that a class can be
            renamed without breaking stored streams.
        EVENT_SCHEMAS: The current schema of an event type's data, by type name; 1 where
            absent. Raise it when the event class's fields change, and add an upcaster.
        UPCASTERS: By (type name, stored schema n): a function from schema n's JSON data to
            schema n + 1's, or to ``Renamed(type, schema, data)`` to make the event one of
            another type (renamed, split or merged away). Stored events are upcast when read.
        STATE_TYPE: The type snapshots are read into; by default the type of
            ``initial_state()``.
        CONVERTER: The cattrs converter that turns events and states into JSON and back;
            by default a strict one that knows attrs classes and dataclasses.
    """

    STREAM_TYPE: ClassVar[str]
    SNAPSHOT_SCHEMA: ClassVar[int] = 1
    EVENT_TYPES: ClassVar[Mapping[str, type[Any]]]
    EVENT_SCHEMAS: ClassVar[Mapping[str, int]] = {}
    UPCASTERS: ClassVar[Mapping[tuple[str, int], Upcaster]] = {}
    STATE_TYPE: ClassVar[Any] = None
    CONVERTER: ClassVar[cattrs.Converter] = DEFAULT_CONVERTER

    @abc.abstractmethod
    def initial_state(self) -> S:
        """The state of a stream with no events.

        Returns:
            A fresh state; its type is ``STATE_TYPE``'s default.
        """

    @abc.abstractmethod
    def evolve(self, state: S, event: E) -> S:
        """Apply one event. Pure, and never fails: the event has happened.

        Args:
            state: The state before ``event``.
            event: One of ``EVENT_TYPES``'s classes, as ``decide`` returned it or as read back.

        Returns:
            The state after ``event``.
        """

    @abc.abstractmethod
    def decide(self, command: C, state: S) -> Sequence[E]:
        """Enforce the invariants: the events ``command`` causes in ``state``.

        Pure: it may run again on a newer state when a concurrent writer won the append.

        Args:
            command: The command to decide.
            state: The stream's current state.

        Returns:
            The events to append, each an instance of one of ``EVENT_TYPES``'s classes; none if
            the command changes nothing.

        Raises:
            Exception: A domain error of your own, to refuse the command:
                :meth:`~s3es.CommandHandler.handle` appends nothing for it and raises it unchanged.
        """


@attrs.frozen
class RecordedEvent(Generic[E]):
    """A stored event, read back: the domain event with where and when it was stored.

    Attributes:
        stream: The stream it belongs to.
        version: The stream version whose append stored this event.
        id: The unique id it was given when appended.
        type: Its registered type name (after any rename by an upcaster).
        event: The domain event, upcast to its current schema.
        metadata: The metadata stored with it (correlation and causation ids, yours).
        recorded_at: When it was appended, by the event store's clock.
    """

    stream: StreamName
    version: int
    id: str
    type: str
    event: E
    metadata: Mapping[str, Any]
    recorded_at: datetime


def _json_shape(value: Any) -> str | None:
    """The JSON shape of ``value`` if it is an object or an array (a tuple too), else None."""
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return None


def _configuration_error(aggregate: type[Any], problem: str) -> InvalidConfiguration:
    return InvalidConfiguration(f"{aggregate.__qualname__}: {problem}")


class AggregateCodec(Generic[S, C, E]):
    """An aggregate's registry, checked once: events and states to JSON and back."""

    def __init__(self, aggregate: Aggregate[S, C, E]) -> None:
        cls = type(aggregate)
        self.aggregate = aggregate
        stream_type = getattr(cls, "STREAM_TYPE", None)
        try:
            StreamName(type=stream_type, id="-")  # type: ignore[arg-type]
        except InvalidStreamName as error:
            raise _configuration_error(cls, f"STREAM_TYPE is not usable: {error}") from error
        self.stream_type: str = stream_type  # type: ignore[assignment]
        schema = cls.SNAPSHOT_SCHEMA
        if not is_schema(schema):
            raise _configuration_error(cls, f"SNAPSHOT_SCHEMA must be an int >= 1, not {schema!r}")
        self.snapshot_schema = schema
        registry = getattr(cls, "EVENT_TYPES", None)
        if not isinstance(registry, Mapping) or not registry:
            raise _configuration_error(cls, "EVENT_TYPES must map event type names to classes")
        self._class_of: dict[str, type[Any]] = {}
        self._name_of: dict[type[Any], str] = {}
        for name, event_class in registry.items():
            if not isinstance(name, str) or not name:
                raise _configuration_error(cls, f"event type name {name!r} is not a non-empty str")
            if not isinstance(event_class, type):
                raise _configuration_error(cls, f"EVENT_TYPES[{name!r}] is not a class")
            if event_class in self._name_of:
                raise _configuration_error(
                    cls,
                    f"{event_class.__qualname__} is registered twice, as "
                    f"{self._name_of[event_class]!r} and {name!r}",
                )
            self._class_of[name] = event_class
            self._name_of[event_class] = name
        self.upcasting = Upcasting(set(self._class_of), cls.EVENT_SCHEMAS, cls.UPCASTERS)
        if self.upcasting.problems:
            raise _configuration_error(cls, "; ".join(self.upcasting.problems))
        self.converter = cls.CONVERTER
        initial = aggregate.initial_state()
        self.state_type: Any = cls.STATE_TYPE or type(initial)
        self._check_converter(cls)
        #: Of each event type: its current schema, structure hook and class, built once per
        #: class so that the converter's dispatch is not paid per event. An event stored at its
        #: type's current schema needs no upcasting: one lookup and one call read it.
        self._readers: dict[str, tuple[int, Callable[[Any, Any], Any], type[Any]]] = {
            name: (
                self.upcasting.current(name),
                self.converter.get_structure_hook(event_class),
                event_class,
            )
            for name, event_class in self._class_of.items()
        }
        self._state_hook = self.converter.get_structure_hook(self.state_type)
        #: "object" or "array" if states are stored as one: a snapshot of another shape does
        #: not fit (cattrs would read a list or a str as an attrs class's defaults).
        self._state_shape = _json_shape(self.converter.unstructure(initial, self.state_type))

    def _check_converter(self, cls: type[Any]) -> None:
        """Raise InvalidConfiguration unless CONVERTER can store and read every event and state.

        cattrs passes an object it knows nothing of through as it is (then json.dumps fails at
        the first append), and finds a field type it cannot read only when making a class's
        structure hook: here, when the Repository is made.
        """
        for name, event_class in self._class_of.items():
            if self.converter.get_unstructure_hook(event_class) is identity:
                raise _configuration_error(
                    cls,
                    f"EVENT_TYPES[{name!r}]: CONVERTER cannot turn {event_class.__qualname__} "
                    "into a JSON object: make it an attrs class or a dataclass, or register an "
                    "unstructure hook for it",
                )
            self._check_structure(
                cls, f"EVENT_TYPES[{name!r}] ({event_class.__qualname__})", event_class
            )
        self._check_structure(cls, f"the state type {self.state_type!r}", self.state_type)

    def _check_structure(self, cls: type[Any], what: str, type_: Any) -> None:
        problem = structure_problem(self.converter, type_)
        if problem is not None:
            raise _configuration_error(
                cls,
                f"{what}: CONVERTER cannot read it back from JSON ({problem}); register a "
                "structure hook for the type it names (docs/concepts.md, Event and state types)",
            ) from problem

    def is_event(self, value: object) -> bool:
        """Whether ``value`` is an instance of one of ``EVENT_TYPES``'s classes."""
        return type(value) in self._name_of

    def event_schema(self, name: str) -> int:
        """The schema events of type ``name`` are stored at."""
        return self.upcasting.current(name)

    def encode_event(self, event: E, stream: StreamName) -> tuple[str, dict[str, Any]]:
        """The registered name and JSON data of ``event``, which ``stream``'s decide returned."""
        name = self._name_of.get(type(event))
        if name is None:
            raise _configuration_error(
                type(self.aggregate),
                f"decide returned {type(event).__qualname__} for stream {stream}, which is not "
                f"in EVENT_TYPES (registered: {', '.join(sorted(self._class_of))})",
            )
        try:
            data = self.converter.unstructure(event)
        except (TypeError, ValueError, RecursionError) as error:
            # A dict key that is not a str (a tuple becomes an unhashable list) is the usual one.
            kind: Any = type(event)
            fields = (
                {field.name: getattr(event, field.name) for field in attrs.fields(kind)}
                if attrs.has(kind)
                else {}
            )
            problem = json_problem(fields, "data", keys_only=True) or str(error)
            raise NotJSON(
                f"stream {stream}: {type(self.aggregate).__qualname__}.decide returned a "
                f"{name!r} event that CONVERTER cannot turn into JSON: {problem}"
            ) from error
        if not isinstance(data, dict):
            raise _configuration_error(
                type(self.aggregate), f"event {name!r} does not unstructure to a JSON object"
            )
        return name, data

    def decode_event(self, record: EventRecord, key: KeyOf) -> E:
        """The domain event stored as ``record`` in the chunk at ``key``."""
        return self.decode(record, key)[1]

    def decode(self, record: EventRecord, key: KeyOf) -> tuple[str, E]:
        """The type name (after any rename by an upcaster) and domain event of ``record``.

        Raises CorruptChunk naming ``key`` (see :data:`KeyOf`) and the event if it cannot be
        read as one of ``EVENT_TYPES``.
        """
        name, schema, data = record.type, record.schema, record.data
        reader = self._readers.get(name)
        if reader is None or reader[0] != schema or type(schema) is not int:
            name, schema, data = self.upcasting.upcast(record, _key(key))
            reader = self._readers.get(name)
            if reader is None:
                raise CorruptChunk(
                    _key(key),
                    f"unknown event type {name!r}{origin(record, name, schema)} "
                    f"(event {record.id}); {type(self.aggregate).__qualname__} registers "
                    f"{', '.join(sorted(self._class_of))}",
                )
        try:
            event: E = reader[1](data, reader[2])
        except (cattrs.errors.CattrsError, TypeError, ValueError, KeyError) as error:
            detail = (
                "; ".join(cattrs.transform_error(error, path="data"))
                if isinstance(error, cattrs.BaseValidationError)
                else str(error)
            )
            raise CorruptChunk(
                _key(key),
                f"event {record.id} of type {name!r}{origin(record, name, schema)} does not "
                f"fit: {detail}",
            ) from error
        return name, event

    def events(self, chunk: Chunk, key: KeyOf) -> Iterator[E]:
        """The domain events of ``chunk``, stored at ``key``, without where and when."""
        decode = self.decode
        return iter([decode(record, key)[1] for record in chunk.events])

    def recorded(self, chunk: Chunk, key: KeyOf) -> Iterator[RecordedEvent[E]]:
        """The events of ``chunk``, stored at ``key``, read back as domain events."""
        for record in chunk.events:
            name, event = self.decode(record, key)
            yield RecordedEvent(
                stream=chunk.stream,
                version=record.version or chunk.version,
                id=record.id,
                type=name,
                event=event,
                metadata=record.metadata,
                recorded_at=record.recorded_at,
            )

    def snapshot(self, state: S, version: int) -> Snapshot:
        """A snapshot of ``state`` at ``version``, stamped with the current schema."""
        return Snapshot(
            schema=self.snapshot_schema,
            version=version,
            state=self.converter.unstructure(state, self.state_type),
        )

    def state_from(self, snapshot: Snapshot | None) -> tuple[S | None, str]:
        """The state in ``snapshot`` if this code can use it, else None and the reason why not."""
        if snapshot is None:
            return None, "the chunk has no snapshot"
        if snapshot.schema != self.snapshot_schema:
            return None, f"snapshot schema {snapshot.schema}, code schema {self.snapshot_schema}"
        shape = _json_shape(snapshot.state)
        if self._state_shape is not None and shape != self._state_shape:
            return None, (
                f"snapshot state is a JSON {shape or type(snapshot.state).__name__}, "
                f"{self.state_type!r} is stored as a JSON {self._state_shape}"
            )
        try:
            state: S = self._state_hook(snapshot.state, self.state_type)
        except (cattrs.errors.CattrsError, TypeError, ValueError, KeyError) as error:
            return None, f"snapshot does not fit {self.state_type!r}: {error!r}"
        return state, ""
