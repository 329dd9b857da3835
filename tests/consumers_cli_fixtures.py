"""A document projection and a reactor that the consumers' tests share.

The library's tests (tests/test_document_projector.py, tests/test_reactors.py) import them;
the command line's name them as ``tests.consumers_cli_fixtures:CounterIds`` and
``tests.consumers_cli_fixtures:Mirror``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import attrs

from s3es import RecordedEvent
from s3es.projections import DocumentProjection
from s3es.reactors import Reactor, Send
from tests.aggregates import Counter, Decrement, Increment, Incremented


@attrs.define
class Ids:
    """The event ids applied to one counter stream's document, in order."""

    ids: list[str] = attrs.Factory(list)


class CounterIds(DocumentProjection[Ids]):
    """One document per counter stream: the ids of its events."""

    NAME = "counter-ids"
    SOURCES: ClassVar[tuple[type[Counter]]] = (Counter,)

    def initial_state(self, key: str) -> Ids:
        """No event yet."""
        return Ids()

    def evolve(self, document: Ids, event: RecordedEvent[Any]) -> Ids:
        """The event's id appended."""
        document.ids.append(event.id)
        return document


class Mirror(Reactor):
    """Each increment of a ``c-*`` counter is made on ``mirror-*``; a 7 is taken from "sink",
    which refuses (the event is parked) until it holds 7."""

    NAME = "mirror"
    SOURCES: ClassVar[tuple[type[Counter]]] = (Counter,)

    def react(self, event: RecordedEvent[Any]) -> Iterable[Send]:
        """The mirror's increment, and the sink's decrement for a 7."""
        if not event.stream.id.startswith("c-") or not isinstance(event.event, Incremented):
            return
        yield Send(Counter, f"mirror-{event.stream.id}", Increment(event.event.amount))
        if event.event.amount == 7:
            yield Send(Counter, "sink", Decrement(7))


class OffsetMirror(Mirror):
    """A mirror onto ``{prefix}-*`` counters: a reactor that needs an argument."""

    NAME = "offset-mirror"

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def react(self, event: RecordedEvent[Any]) -> Iterable[Send]:
        """The increment made on ``{prefix}-{id}``."""
        if event.stream.id.startswith("c-") and isinstance(event.event, Incremented):
            yield Send(Counter, f"{self.prefix}-{event.stream.id}", Increment(event.event.amount))


def offset_mirror() -> OffsetMirror:
    """The factory of an OffsetMirror onto ``copy-*``, as ``--reactor`` names it."""
    return OffsetMirror("copy")


class PrefixedIds(CounterIds):
    """The ids of the counters whose id starts with ``prefix``: a projection with an argument."""

    NAME = "prefixed-ids"

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def document_ids(self, event: RecordedEvent[Any]) -> Iterable[str]:
        """The stream's id, if it starts with the prefix."""
        return (event.stream.id,) if event.stream.id.startswith(self.prefix) else ()


def prefixed_ids() -> PrefixedIds:
    """The factory of the PrefixedIds of ``c-`` counters."""
    return PrefixedIds("c-")


def failing_factory() -> Mirror:
    """A factory that raises, as one whose configuration is missing would."""
    raise LookupError("WAREHOUSE_ID is not set")


def not_a_consumer() -> int:
    """A factory of something that is neither a reactor nor a projection."""
    return 42
