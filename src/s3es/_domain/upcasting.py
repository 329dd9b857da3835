"""Event schema evolution: upcasters turn an event's stored JSON into its current shape."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias, TypeGuard

import attrs

from s3es._eventstore.chunk import EventRecord
from s3es.errors import CorruptChunk


def is_schema(value: object) -> TypeGuard[int]:
    """Whether ``value`` can be a schema: an int of at least 1, not a bool.

    Event, snapshot and read-model schemas all follow this rule.
    """
    return type(value) is int and value >= 1


# Renamed is made by users' upcasters, and a refusal ends up in a CorruptChunk's reason as the
# exception's repr; attrs.validators.instance_of would put its Attribute there in full, and it
# takes True for an int. So these stay hand-written.
def _type_name(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise TypeError(f"Renamed.type must be a non-empty str, not {value!r}")


def _schema(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int:
        raise TypeError(f"Renamed.schema must be an int, not {value!r}")
    if value < 1:
        raise ValueError(f"Renamed.schema must be >= 1, not {value!r}")


def _json_object(
    _instance: object, _attribute: attrs.Attribute[dict[str, Any]], value: dict[str, Any]
) -> None:
    if not isinstance(value, dict):
        raise TypeError(f"Renamed.data must be a dict, not {type(value).__name__}")


@attrs.frozen
class Renamed:
    """What an upcaster returns to make an old event one of another type.

    For a type that was renamed, split (the new type depends on the data) or merged into
    another: the event continues as ``data`` of type ``type`` at that type's ``schema``, the
    schema it was at when the upcaster was written (so the upcaster stays right as that type
    evolves: its own upcasters take the data on from there).
    """

    type: str = attrs.field(validator=_type_name)
    schema: int = attrs.field(validator=_schema)
    data: dict[str, Any] = attrs.field(validator=_json_object)


#: Takes the JSON data of an event stored at schema n; returns its data at schema n + 1 of the
#: same type, or :class:`Renamed` to make it another type.
Upcaster: TypeAlias = Callable[[dict[str, Any]], dict[str, Any] | Renamed]


def origin(record: EventRecord, name: str, schema: int) -> str:
    """`` (stored as 'T' at schema n)`` if ``record`` was upcast to ``name`` at ``schema``."""
    if (name, schema) == (record.type, record.schema):
        return ""
    return f" (stored as {record.type!r} at schema {record.schema})"


def _is_key(key: object) -> TypeGuard[tuple[str, int]]:
    return (
        isinstance(key, tuple)
        and len(key) == 2  # noqa: PLR2004 - a pair
        and isinstance(key[0], str)
        and bool(key[0])
        and type(key[1]) is int
    )


class Upcasting:
    """The checked upcaster chains of one aggregate.

    ``schemas`` gives the current schema of each registered event type (1 if absent);
    ``upcasters`` maps (type name, stored schema n) to the function from schema n's data to
    schema n + 1's (or to :class:`Renamed`). A registered type at schema s has an upcaster from
    each of 1 .. s - 1 and none from s or above. A type that is not registered (retired: renamed,
    split or merged away) has upcasters from 1 up to the one that renames it. ``problems`` lists
    what is wrong with them (empty: nothing).
    """

    def __init__(self, registered: set[str], schemas: object, upcasters: object) -> None:
        self.problems: list[str] = []
        self._current: dict[str, int] = dict.fromkeys(registered, 1)
        # Any: these come from user class attributes; their types are checked here, at run time.
        self._upcasters: dict[tuple[str, int], Callable[[dict[str, Any]], Any]] = {}
        self._check_schemas(registered, schemas)
        self._check_upcasters(upcasters)

    def _check_schemas(self, registered: set[str], schemas: object) -> None:
        if not isinstance(schemas, Mapping):
            self.problems.append(f"EVENT_SCHEMAS must map event type names to ints: {schemas!r}")
            return
        for name, schema in schemas.items():
            if name not in registered:
                self.problems.append(f"EVENT_SCHEMAS names {name!r}, which is not in EVENT_TYPES")
            elif not is_schema(schema):
                self.problems.append(f"EVENT_SCHEMAS[{name!r}] must be an int >= 1: {schema!r}")
            else:
                self._current[name] = schema

    def _check_upcasters(self, upcasters: object) -> None:
        if not isinstance(upcasters, Mapping):
            self.problems.append(
                f"UPCASTERS must map (event type name, schema) pairs to functions: {upcasters!r}"
            )
            return
        keys: set[tuple[str, int]] = set()
        for key, upcaster in upcasters.items():
            if not _is_key(key):
                self.problems.append(
                    f"UPCASTERS key {key!r} is not an (event type name, schema int) pair"
                )
                continue
            name, stored = key
            keys.add(key)
            current = self._current.get(name)
            if not callable(upcaster):
                self.problems.append(f"UPCASTERS[{key!r}] is not callable: {upcaster!r}")
            elif stored < 1:
                self.problems.append(f"UPCASTERS has {key!r}, but schemas start at 1")
            elif current is not None and stored >= current:
                takes = (
                    "so it takes no upcaster"
                    if current == 1
                    else f"its upcasters take schemas 1 to {current - 1}"
                )
                self.problems.append(
                    f"UPCASTERS has {key!r}, but {name!r} is at schema {current}, {takes}"
                )
            else:
                self._upcasters[key] = upcaster
        self._check_chains(keys)

    def _check_chains(self, keys: set[tuple[str, int]]) -> None:
        """Find the holes: a schema below a type's current one, or a retired type's last one.

        A retired type is one not in EVENT_TYPES: its upcasters end in a Renamed.
        """
        for name, current in self._current.items():
            missing = [n for n in range(1, current) if (name, n) not in keys]
            if missing:
                self.problems.append(
                    f"{name!r} is at schema {current} but UPCASTERS has no upcaster "
                    f"from schema {', '.join(map(str, missing))}"
                )
        retired = {name for name, _ in keys if name not in self._current}
        for name in sorted(retired):
            last = max(stored for named, stored in keys if named == name)
            missing = [n for n in range(1, last) if (name, n) not in keys]
            if missing:
                self.problems.append(
                    f"{name!r} is not in EVENT_TYPES, so its upcasters lead from schema 1 to a "
                    f"Renamed, but UPCASTERS has no upcaster from schema "
                    f"{', '.join(map(str, missing))}"
                )

    def current(self, name: str) -> int:
        """The schema the code writes events of type ``name`` at."""
        return self._current.get(name, 1)

    def upcast(self, record: EventRecord, key: str) -> tuple[str, int, Mapping[str, Any]]:
        """``record``'s type name, schema and data, brought up to date; CorruptChunk if impossible.

        A type name the aggregate does not register comes back as it is (the caller reports
        it). The stored data is never changed: the upcasters work on a copy.
        """
        name, schema, data = record.type, record.schema, record.data
        if not is_schema(schema):
            raise CorruptChunk(
                key, f"event {record.id} of type {name!r} has schema {schema!r}: not an int >= 1"
            )
        if (name, schema) in self._upcasters:
            name, schema, data = self._apply(record, key, copy.deepcopy(dict(data)))
        current = self._current.get(name)
        if current is not None and schema > current:
            raise CorruptChunk(
                key,
                f"event {record.id} of type {name!r} is at schema {schema}"
                f"{origin(record, name, schema)}, newer than this code's {current}",
            )
        return name, schema, data

    def _apply(
        self, record: EventRecord, key: str, data: dict[str, Any]
    ) -> tuple[str, int, dict[str, Any]]:
        """Run the upcasters from ``record``'s type and schema until none applies."""
        name, schema = record.type, record.schema
        seen: set[tuple[str, int]] = set()
        while (upcaster := self._upcasters.get((name, schema))) is not None:
            seen.add((name, schema))
            step = f"the upcaster of {name!r} from schema {schema}"
            try:
                result = upcaster(data)
            except Exception as error:
                raise CorruptChunk(
                    key,
                    f"upcasting event {record.id} of type {name!r} from schema {schema}"
                    f"{origin(record, name, schema)} failed: {error!r}",
                ) from error
            if isinstance(result, Renamed):
                name, schema, data = result.type, result.schema, result.data
            elif isinstance(result, dict):
                schema, data = schema + 1, result
            else:
                raise CorruptChunk(
                    key,
                    f"{step} returned {type(result).__name__}, not a JSON object or Renamed, "
                    f"for event {record.id}{origin(record, name, schema)}",
                )
            if (name, schema) in seen:
                raise CorruptChunk(
                    key,
                    f"the upcasters of event {record.id} of type {record.type!r} go round in a "
                    f"circle: {step} leads back to {name!r} at schema {schema}",
                )
        return name, schema, data
