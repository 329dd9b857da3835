"""A projection the tests share: which events of which counter streams were applied, in order.

``AppliedIds`` records every event id per stream, so a test can tell an event applied twice, or
skipped, or out of order, from one applied exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import attrs

from s3es import Projection, RecordedEvent, Repository, StreamName
from tests.aggregates import Counter, Incremented


@attrs.define
class Applied:
    """Event ids applied, by stream; totals by stream; deleted streams."""

    ids: dict[str, list[str]] = attrs.Factory(dict)
    totals: dict[str, int] = attrs.Factory(dict)
    forgotten: list[str] = attrs.Factory(list)


class AppliedIds(Projection[Applied]):
    """Each counter stream's event ids and total."""

    NAME = "applied-ids"
    SCHEMA = 1
    SOURCES: ClassVar[tuple[type[Counter], ...]] = (Counter,)

    def initial_state(self) -> Applied:
        """Nothing applied."""
        return Applied()

    def evolve(self, model: Applied, event: RecordedEvent[Any]) -> Applied:
        """Record the event's id and add it to its stream's total."""
        stream = str(event.stream)
        model.ids.setdefault(stream, []).append(event.id)
        amount = event.event.amount
        change = amount if isinstance(event.event, Incremented) else -amount
        model.totals[stream] = model.totals.get(stream, 0) + change
        return model

    def forget(self, model: Applied, stream: StreamName) -> Applied:
        """Drop a deleted stream."""
        model.ids.pop(str(stream), None)
        model.totals.pop(str(stream), None)
        model.forgotten.append(str(stream))
        return model


class AppliedIdsV2(AppliedIds):
    """The same projection after a schema bump."""

    SCHEMA = 2


class FailingAppliedIds(AppliedIds):
    """AppliedIds that raises on the event ids in ``poison`` (a crash in the middle of a pass)."""

    def __init__(self, poison: Callable[[RecordedEvent[Any]], bool] = lambda _: False) -> None:
        self.poison = poison

    def evolve(self, model: Applied, event: RecordedEvent[Any]) -> Applied:
        """Crash on a poisoned event, else apply it."""
        if self.poison(event):
            raise RuntimeError(f"crash on event {event.id}")
        return super().evolve(model, event)


def stored_ids(repository: Repository[Any, Any, Any], stream_id: str) -> list[str]:
    """The ids of every event of the stream, in order, as read from the store."""
    return [event.id for event in repository.read(stream_id)]
