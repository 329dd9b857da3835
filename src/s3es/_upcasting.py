"""Event schema evolution: upcasters turn an event's stored JSON into its current shape."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from s3es._chunk import EventRecord
from s3es._errors import CorruptChunk

#: Takes the data of an event stored at schema n, returns its data at schema n + 1.
Upcaster: TypeAlias = Callable[[dict[str, Any]], dict[str, Any]]


class Upcasting:
    """The checked upcaster chains of one aggregate.

    ``schemas`` gives the current schema of each event type (1 if absent); ``upcasters`` maps
    (type name, stored schema n) to the function from schema n's data to schema n + 1's. Every
    type at schema s > 1 has an upcaster for each of 1 .. s - 1. ``problems`` lists what is
    wrong with them (empty: nothing).
    """

    def __init__(
        self,
        registered: set[str],
        schemas: Mapping[str, int],
        upcasters: Mapping[tuple[str, int], Upcaster],
    ) -> None:
        self.problems: list[str] = []
        self._schemas = dict(schemas)
        # Any: these come from user class attributes; their types are checked here, at run time.
        self._upcasters: dict[tuple[str, int], Any] = dict(upcasters)
        for name, schema in self._schemas.items():
            if name not in registered:
                self.problems.append(f"EVENT_SCHEMAS names {name!r}, which is not in EVENT_TYPES")
            if type(schema) is not int or schema < 1:
                self.problems.append(f"EVENT_SCHEMAS[{name!r}] must be an int >= 1: {schema!r}")
        for (name, stored), upcaster in self._upcasters.items():
            current = self.current(name)
            if not callable(upcaster):
                self.problems.append(f"UPCASTERS[{(name, stored)!r}] is not callable")
            if not (isinstance(stored, int) and 1 <= stored < current):
                self.problems.append(
                    f"UPCASTERS has {(name, stored)!r}, but {name!r} is at schema {current}: "
                    f"upcasters take schemas 1 to {current - 1}"
                )
        for name in self._schemas:
            missing = [n for n in range(1, self.current(name)) if (name, n) not in self._upcasters]
            if missing:
                self.problems.append(
                    f"{name!r} is at schema {self.current(name)} but UPCASTERS has no upcaster "
                    f"from schema {', '.join(map(str, missing))}"
                )

    def current(self, name: str) -> int:
        """The schema the code writes events of type ``name`` at."""
        schema = self._schemas.get(name, 1)
        return schema if isinstance(schema, int) else 1

    def upcast(self, record: EventRecord, key: str) -> Mapping[str, Any]:
        """``record``'s data in its type's current shape; CorruptChunk if that cannot be."""
        current = self.current(record.type)
        if record.schema > current:
            raise CorruptChunk(
                key,
                f"event {record.id} of type {record.type!r} is at schema {record.schema}, "
                f"newer than this code's {current}",
            )
        data = record.data
        for schema in range(record.schema, current):
            try:
                upcast = self._upcasters[(record.type, schema)](dict(data))
            except Exception as error:
                raise CorruptChunk(
                    key,
                    f"upcasting event {record.id} of type {record.type!r} from schema {schema} "
                    f"failed: {error!r}",
                ) from error
            if not isinstance(upcast, dict):
                raise CorruptChunk(
                    key,
                    f"the upcaster of {record.type!r} from schema {schema} returned "
                    f"{type(upcast).__name__}, not a JSON object (event {record.id})",
                )
            data = upcast
        return data
