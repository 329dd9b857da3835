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

    Run it with a :class:`~s3es.Projector`, which keeps the model in one S3 document.

    Attributes:
        NAME: The projection's name: one key segment, unique under the event store's prefix.
        SCHEMA: Bump it when the model's shape or ``evolve`` changes: a stored model of another
            schema is then rebuilt from every event.
        SOURCES: The aggregates whose streams are read; their codecs decode (and upcast) the
            events.
        MODEL_TYPE: The type the stored model is read into; by default the type of
            ``initial_state()``.
        CONVERTER: The cattrs converter that stores the model as JSON and reads it back.
    """

    NAME: ClassVar[str]
    SCHEMA: ClassVar[int] = 1
    SOURCES: ClassVar[Sequence[type[Aggregate[Any, Any, Any]]]]
    MODEL_TYPE: ClassVar[Any] = None
    CONVERTER: ClassVar[cattrs.Converter] = DEFAULT_CONVERTER

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        adopt_old_names(cls)

    @abc.abstractmethod
    def initial_state(self) -> M:
        """The model before any event.

        Returns:
            A fresh model.
        """

    @abc.abstractmethod
    def evolve(self, model: M, event: RecordedEvent[Any]) -> M:
        """Fold one event into the model.

        Each event of each stream of ``SOURCES`` comes once, in version order within a stream
        (streams are not ordered among themselves), as its aggregate reads it: upcast, typed.

        Args:
            model: The model before ``event``; it may be changed in place.
            event: The event, with its stream, version and metadata.

        Returns:
            The model after ``event``.
        """

    def initial_model(self) -> M:
        """Deprecated: ``initial_state``, whose old name this is; warns, then calls it.

        Returns:
            What ``initial_state`` returns.
        """
        warn_renamed(type(self), "initial_model", "initial_state")
        return self.initial_state()

    def apply(self, model: M, event: RecordedEvent[Any]) -> M:
        """Deprecated: ``evolve``, whose old name this is; warns, then calls it.

        Args:
            model: The model before ``event``.
            event: The event.

        Returns:
            What ``evolve`` returns.
        """
        warn_renamed(type(self), "apply", "evolve")
        return self.evolve(model, event)

    def forget(self, model: M, stream: StreamName) -> M:  # noqa: ARG002 - for subclasses
        """Take a deleted stream out of the model. By default, the model is unchanged.

        Args:
            model: The model before the deletion.
            stream: The stream that was deleted.

        Returns:
            The model after ``stream`` was deleted.
        """
        return model


@attrs.frozen
class ReadModel(Generic[M]):
    """A projection's model as stored, with the stream versions it reflects.

    Attributes:
        projection: The projection's ``NAME``.
        schema: The ``SCHEMA`` it was built with.
        model: The model.
        checkpoints: By ``"type/id"``: the last version of that stream applied to the model.
        epoch: The epoch of the lease under which it was written (0: never written).
        complete: True once a pass over every stream of its sources has been applied.
        updated_at: When it was last written; None if never.
        etag: The stored document's ETag; None if there is none yet.
    """

    projection: str
    schema: int
    model: M
    checkpoints: Mapping[str, int]
    epoch: int
    complete: bool
    updated_at: datetime | None
    etag: str | None = None

    def version_of(self, stream: StreamName) -> int:
        """The last version of ``stream`` the model reflects.

        Args:
            stream: A stream of the projection's sources.

        Returns:
            That version; 0 if none of its events is applied.
        """
        return self.checkpoints.get(str(stream), 0)


@attrs.frozen
class ProjectionPass(Generic[M]):
    """What one pass of a whole-model projector did, and the read model it left.

    Attributes:
        read_model: The read model after the pass.
        full_scan: True for a pass over every stream; False for one over the streams the feed
            named.
        streams: Streams whose new chunks were read.
        events: Events applied.
        commits: Conditional PUTs of the read model.
        requests: The object-store requests the pass sent.
    """

    read_model: ReadModel[M]
    full_scan: bool
    streams: int
    events: int
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
