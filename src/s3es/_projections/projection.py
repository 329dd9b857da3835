"""Whole-model projections: one model a user folds from events, and what a pass returns.

Its projector (:mod:`s3es._projections._async.projector`) keeps the model, the version of each
stream applied to it (its checkpoints) and its lease's epoch in one object, written with
``If-Match``: they change together or not at all.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

import attrs
import cattrs

from s3es._base.converter import structure_problem
from s3es._domain.aggregate import (
    DEFAULT_CONVERTER,
    Aggregate,
    RecordedEvent,
)
from s3es._eventstore.chunk import Chunk
from s3es._projections.config import (
    adopt_old_names,
    configuration_error,
    declared_name,
    declared_schema,
    source_codecs,
    warn_renamed,
)
from s3es._storage.keys import StreamKeys, StreamName
from s3es._storage.metering import RequestCounts

M = TypeVar("M")


class Projection(abc.ABC, Generic[M]):
    """A read model folded from the events of some aggregates' streams.

    Subclass it, set the class attributes, and write ``initial_state`` and ``evolve`` (as an
    aggregate's; ``initial_model`` and ``apply``, their old names, work until the next
    release, with a DeprecationWarning)::

        class OrdersByStatus(Projection[OrderBoard]):
            NAME = "orders-by-status"
            SCHEMA = 1
            SOURCES = (Order,)

            def initial_state(self) -> OrderBoard: ...
            def evolve(self, model: OrderBoard, event: RecordedEvent[Any]) -> OrderBoard: ...

    ``evolve`` gets each event of each stream of ``SOURCES`` once, in version order within a
    stream, as its aggregate reads it (upcast, typed). Streams are not ordered among
    themselves. It returns the model after the event; it may change the model in place. Bump
    ``SCHEMA`` when the model's shape or ``evolve`` changes: a stored model of another schema is
    then rebuilt from every event. ``forget`` is told when a stream is deleted.
    """

    #: The projection's name: one key segment, unique under the event store's prefix.
    NAME: ClassVar[str]
    SCHEMA: ClassVar[int] = 1
    #: The aggregates whose streams are read; their codecs decode (and upcast) the events.
    SOURCES: ClassVar[Sequence[type[Aggregate[Any, Any, Any]]]]
    #: The type the stored model is read into; by default the type of ``initial_state()``.
    MODEL_TYPE: ClassVar[Any] = None
    CONVERTER: ClassVar[cattrs.Converter] = DEFAULT_CONVERTER

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        adopt_old_names(cls)

    @abc.abstractmethod
    def initial_state(self) -> M:
        """The model before any event."""

    @abc.abstractmethod
    def evolve(self, model: M, event: RecordedEvent[Any]) -> M:
        """The model after ``event``."""

    def initial_model(self) -> M:
        """Deprecated: ``initial_state``."""
        warn_renamed(type(self), "initial_model", "initial_state")
        return self.initial_state()

    def apply(self, model: M, event: RecordedEvent[Any]) -> M:
        """Deprecated: ``evolve``."""
        warn_renamed(type(self), "apply", "evolve")
        return self.evolve(model, event)

    def forget(self, model: M, stream: StreamName) -> M:  # noqa: ARG002 - for subclasses
        """The model after ``stream`` was deleted. By default, unchanged."""
        return model


@attrs.frozen
class ReadModel(Generic[M]):
    """A projection's model as stored, with the stream versions it reflects."""

    projection: str
    schema: int
    model: M
    #: ``"type/id"`` -> the last version of that stream applied to the model.
    checkpoints: Mapping[str, int]
    #: The epoch of the lease under which it was written (0: never written).
    epoch: int
    #: True once a pass over every stream of its sources has been applied.
    complete: bool
    updated_at: datetime | None
    #: The stored document's ETag; None if there is none yet.
    etag: str | None = None

    def version_of(self, stream: StreamName) -> int:
        """The last version of ``stream`` the model reflects (0: none)."""
        return self.checkpoints.get(str(stream), 0)


@attrs.frozen
class ProjectionPass(Generic[M]):
    """What one pass of a whole-model projector did, and the read model it left."""

    read_model: ReadModel[M]
    #: True for a pass over every stream; False for one over the streams the feed named.
    full_scan: bool
    #: Streams whose new chunks were read.
    streams: int
    events: int
    #: Conditional PUTs of the read model.
    commits: int
    requests: RequestCounts


class ProjectionCodec(Generic[M]):
    """A projection's configuration, checked once: its keys, sources and document codec."""

    def __init__(self, projection: Projection[M], keys: StreamKeys) -> None:
        cls = type(projection)
        self.projection = projection
        self.name = declared_name(cls, "projection")
        self.schema = declared_schema(cls)
        self.codecs = source_codecs(cls)
        self.converter = cls.CONVERTER
        self.model_type: Any = cls.MODEL_TYPE or type(projection.initial_state())
        problem = structure_problem(self.converter, self.model_type)
        if problem is not None:
            raise configuration_error(
                cls,
                f"CONVERTER cannot read the model type {self.model_type!r} ({problem}): make it "
                "an attrs class or a dataclass, set MODEL_TYPE, or register a structure hook",
            ) from problem
        keys.read_models_prefix(self.name)  # InvalidStreamName if it names no key

    def initial(self) -> ReadModel[M]:
        """The read model before any event, never stored."""
        return ReadModel(
            projection=self.name,
            schema=self.schema,
            model=self.projection.initial_state(),
            checkpoints={},
            epoch=0,
            complete=False,
            updated_at=None,
        )

    def recorded(self, chunk: Chunk, key: str) -> Iterator[RecordedEvent[Any]]:
        """The events of ``chunk`` (at ``key``), read by its stream type's aggregate."""
        return self.codecs[chunk.stream.type].recorded(chunk, key)
