"""Projections: the read model a user folds from events, and the document it is stored in.

A projection's read model, the version of each stream it has applied (its checkpoints) and the
epoch of the projector that wrote it are one JSON document, written with ``If-Match``: the
model and its checkpoints change together or not at all, so an event is never applied twice or
skipped, whatever crashes.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, NewType, TypeVar

import attrs
import cattrs

from s3es._base.converter import make_strict_converter, structure_problem
from s3es._domain.aggregate import (
    DEFAULT_CONVERTER,
    Aggregate,
    RecordedEvent,
)
from s3es._eventstore.chunk import Chunk, json_problem
from s3es._projections.config import (
    configuration_error,
    declared_name,
    declared_schema,
    source_codecs,
)
from s3es._storage.keys import StreamKeys, StreamName
from s3es.errors import CorruptReadModel, NotJSON

M = TypeVar("M")

#: The format tag of a read-model document.
DOCUMENT_FORMAT = "s3es.projection/1"


class Projection(abc.ABC, Generic[M]):
    """A read model folded from the events of some aggregates' streams.

    Subclass it, set the class attributes, and write ``initial_model`` and ``apply``::

        class OrdersByStatus(Projection[OrderBoard]):
            NAME = "orders-by-status"
            SCHEMA = 1
            SOURCES = (Order,)

            def initial_model(self) -> OrderBoard: ...
            def apply(self, model: OrderBoard, event: RecordedEvent[Any]) -> OrderBoard: ...

    ``apply`` gets each event of each stream of ``SOURCES`` once, in version order within a
    stream, as its aggregate reads it (upcast, typed). Streams are not ordered among
    themselves. It returns the model after the event; it may change the model in place. Bump
    ``SCHEMA`` when the model's shape or ``apply`` changes: a stored model of another schema is
    then rebuilt from every event. ``forget`` is told when a stream is deleted.
    """

    #: The projection's name: one key segment, unique under the event store's prefix.
    NAME: ClassVar[str]
    SCHEMA: ClassVar[int] = 1
    #: The aggregates whose streams are read; their codecs decode (and upcast) the events.
    SOURCES: ClassVar[Sequence[type[Aggregate[Any, Any, Any]]]]
    #: The type the stored model is read into; by default the type of ``initial_model()``.
    MODEL_TYPE: ClassVar[Any] = None
    CONVERTER: ClassVar[cattrs.Converter] = DEFAULT_CONVERTER

    @abc.abstractmethod
    def initial_model(self) -> M:
        """The model before any event."""

    @abc.abstractmethod
    def apply(self, model: M, event: RecordedEvent[Any]) -> M:
        """The model after ``event``."""

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


#: A model as the projection's ``CONVERTER`` unstructured it (or as JSON read it back): the
#: document converter passes it through as it is. Typed ``Any``, it would walk the model a
#: second time at every commit (more than half of the encoding time of a large model).
_UnstructuredModel = NewType("_UnstructuredModel", object)


@attrs.frozen
class _Document:
    """The stored form of a read model: what is checked when it is read back."""

    format: str
    projection: str
    schema: int
    epoch: int
    complete: bool
    commit_id: str
    updated_at: datetime
    checkpoints: dict[str, int]
    feed_cursors: dict[str, int]
    model: _UnstructuredModel


#: Reads documents strictly: a field of the wrong JSON type, missing or unknown is an error.
#: The model is the projection's converter's to read and write (once), not this one's.
DOCUMENT_CONVERTER = make_strict_converter(forbid_extra_keys=True)
DOCUMENT_CONVERTER.register_unstructure_hook(_UnstructuredModel, lambda model: model)
DOCUMENT_CONVERTER.register_structure_hook(_UnstructuredModel, lambda model, _: model)


@attrs.frozen
class Committed:
    """A document as it was stored: what the next write's ``If-Match`` needs."""

    read_model: ReadModel[Any]
    feed_cursors: Mapping[str, int]
    commit_id: str


class ProjectionCodec(Generic[M]):
    """A projection's configuration, checked once: its keys, sources and document codec."""

    def __init__(self, projection: Projection[M], keys: StreamKeys) -> None:
        cls = type(projection)
        self.projection = projection
        self.name = declared_name(cls, "projection")
        self.schema = declared_schema(cls)
        self.codecs = source_codecs(cls)
        self.converter = cls.CONVERTER
        self.model_type: Any = cls.MODEL_TYPE or type(projection.initial_model())
        problem = structure_problem(self.converter, self.model_type)
        if problem is not None:
            raise configuration_error(
                cls,
                f"CONVERTER cannot read the model type {self.model_type!r} ({problem}): make it "
                "an attrs class or a dataclass, set MODEL_TYPE, or register a structure hook",
            ) from problem
        self.key = keys.read_model_key(self.name)
        self.lease_key = keys.lease_key(self.name)

    def initial(self) -> ReadModel[M]:
        """The read model before any event, never stored."""
        return ReadModel(
            projection=self.name,
            schema=self.schema,
            model=self.projection.initial_model(),
            checkpoints={},
            epoch=0,
            complete=False,
            updated_at=None,
        )

    def encode(
        self,
        read_model: ReadModel[M],
        *,
        feed_cursors: Mapping[str, int],
        commit_id: str,
        updated_at: datetime,
    ) -> bytes:
        """The document storing ``read_model``.

        The model is walked once, by the projection's ``CONVERTER``; the envelope around it
        (checkpoints, cursors, epoch...) by the document converter. Raises NotJSON, naming the
        projection and where in the model, if what ``CONVERTER`` made of it is not JSON.
        """
        model = self.converter.unstructure(read_model.model, self.model_type)
        document = _Document(
            format=DOCUMENT_FORMAT,
            projection=self.name,
            schema=read_model.schema,
            epoch=read_model.epoch,
            complete=read_model.complete,
            commit_id=commit_id,
            updated_at=updated_at,
            checkpoints=dict(read_model.checkpoints),
            feed_cursors=dict(feed_cursors),
            model=_UnstructuredModel(model),
        )
        try:
            return json.dumps(
                DOCUMENT_CONVERTER.unstructure(document), separators=(",", ":"), ensure_ascii=False
            ).encode()
        except (TypeError, ValueError, RecursionError) as error:
            problem = json_problem(model, "model") or str(error)
            raise NotJSON(
                f"projection {self.name}: CONVERTER did not turn the model of "
                f"{type(self.projection).__qualname__} into JSON: {problem}"
            ) from error

    def decode(self, body: bytes, etag: str) -> tuple[Committed, bool]:
        """The stored document, and whether its model can be read by this code.

        A model of another ``SCHEMA`` comes back as the initial model, with no checkpoints
        (False): it is rebuilt. Raises CorruptReadModel, naming the key and field, for a
        document that is not one.
        """
        try:
            raw = json.loads(body)
            document = DOCUMENT_CONVERTER.structure(raw, _Document)
        except (ValueError, TypeError, RecursionError) as error:
            raise CorruptReadModel(self.key, f"not a read-model document: {error}") from error
        except cattrs.BaseValidationError as error:
            detail = "; ".join(cattrs.transform_error(error, path="document"))
            raise CorruptReadModel(self.key, detail) from error
        if document.format != DOCUMENT_FORMAT:
            raise CorruptReadModel(self.key, f"format {document.format!r}, not {DOCUMENT_FORMAT}")
        if document.projection != self.name:
            raise CorruptReadModel(
                self.key, f"the document of projection {document.projection!r}, not {self.name!r}"
            )
        usable = document.schema == self.schema
        if usable:
            try:
                model: M = self.converter.structure(document.model, self.model_type)
            except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as error:
                raise CorruptReadModel(
                    self.key, f"the model does not fit {self.model_type!r}: {error!r}"
                ) from error
        read_model = ReadModel(
            projection=self.name,
            schema=self.schema,  # the stored one's only when usable, and then they are equal
            model=model if usable else self.projection.initial_model(),
            checkpoints=document.checkpoints if usable else {},
            epoch=document.epoch,
            complete=document.complete and usable,
            updated_at=document.updated_at,
            etag=etag,
        )
        return Committed(
            read_model, document.feed_cursors if usable else {}, document.commit_id
        ), usable

    def recorded(self, chunk: Chunk, key: str) -> Iterator[RecordedEvent[Any]]:
        """The events of ``chunk`` (at ``key``), read by its stream type's aggregate."""
        return self.codecs[chunk.stream.type].recorded(chunk, key)
