"""Document projections: a read model of many documents, each keyed by what readers ask for.

A :class:`DocumentProjection` says which documents an event changes (``document_ids``: by
default the document named after the event's stream, one per order) and how (``evolve``). It
is written once; where its documents live (S3 keyed documents, SQLite, PostgreSQL) is chosen
when a :class:`~s3es.projections.DocumentProjector` is wired to a read-model store.
"""

from __future__ import annotations

import abc
import typing
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import cattrs

from s3es._base.converter import structure_problem
from s3es._base.json import json_problem
from s3es._domain.aggregate import DEFAULT_CONVERTER, Aggregate, RecordedEvent
from s3es._eventstore.chunk import Chunk
from s3es._projections.config import (
    adopt_old_names,
    configuration_error,
    declared_name,
    declared_schema,
    source_codecs,
    warn_renamed,
)
from s3es._readmodels.port import Body
from s3es._storage.keys import StreamName
from s3es.errors import (
    CorruptReadModel,
    DomainContractError,
    NotJSON,
)

D = TypeVar("D")


class DocumentProjection(abc.ABC, Generic[D]):
    """Documents folded from the events of some aggregates' streams, one per key.

    Subclass it with the document type as its parameter, set the class attributes, and write
    ``initial_state`` and ``evolve`` (as an aggregate's; ``initial_document`` and ``apply``,
    their old names, work until the next release, with a DeprecationWarning)::

        class OrderSummaries(DocumentProjection[OrderSummary]):
            NAME = "order-summaries"
            SOURCES = (Order,)

            def initial_state(self, key: str) -> OrderSummary: ...
            def evolve(self, document: OrderSummary, event: RecordedEvent[Any]) -> OrderSummary: ...

    Run it with a :class:`~s3es.projections.DocumentProjector`; read its documents with a
    :class:`~s3es.projections.DocumentReader`.

    Attributes:
        NAME: The projection's name: one key segment, unique under the store.
        SCHEMA: Bump it when a document's shape or ``evolve`` changes: a new generation is
            then built beside the live one, and readers switch to it once it is complete.
        SOURCES: The aggregates whose streams are read; their codecs decode (and upcast) the
            events.
        DOCUMENT_TYPE: The type documents are read into; by default the class's type
            parameter.
        CONVERTER: The cattrs converter that stores documents as JSON and reads them back.
    """

    NAME: ClassVar[str]
    SCHEMA: ClassVar[int] = 1
    SOURCES: ClassVar[Sequence[type[Aggregate[Any, Any, Any]]]]
    DOCUMENT_TYPE: ClassVar[Any] = None
    CONVERTER: ClassVar[cattrs.Converter] = DEFAULT_CONVERTER

    def document_ids(self, event: RecordedEvent[Any]) -> Iterable[str]:
        """Name the documents ``event`` changes.

        Args:
            event: An event of a stream of ``SOURCES``.

        Returns:
            Their keys, each a non-empty str; by default the event's stream's id (one
            document per stream). None of them: the event changes no document.
        """
        return (event.stream.id,)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        adopt_old_names(cls)

    @abc.abstractmethod
    def initial_state(self, key: str) -> D:
        """A document before any event.

        Args:
            key: The document's key, as ``document_ids`` named it.

        Returns:
            A fresh document.
        """

    @abc.abstractmethod
    def evolve(self, document: D, event: RecordedEvent[Any]) -> D:
        """Fold one event into one document.

        Each event of each stream of ``SOURCES`` comes once per document that ``document_ids``
        names for it, in version order within a stream (streams are not ordered among
        themselves), as the stream's aggregate reads it: upcast, typed.

        Args:
            document: The document before ``event``; it may be changed in place.
            event: The event, with its stream, version and metadata.

        Returns:
            The document after ``event`` (never None).

        Raises:
            Exception: Any error but the stores', for an event the document cannot take: the
                projector parks it (a :class:`~s3es.projections.ParkedDocument`) and holds
                its stream.
        """

    def initial_document(self, key: str) -> D:
        """Deprecated: ``initial_state``, whose old name this is; warns, then calls it.

        Args:
            key: The document's key.

        Returns:
            What ``initial_state`` returns.
        """
        warn_renamed(type(self), "initial_document", "initial_state")
        return self.initial_state(key)

    def apply(self, document: D, event: RecordedEvent[Any]) -> D:
        """Deprecated: ``evolve``, whose old name this is; warns, then calls it.

        Args:
            document: The document before ``event``.
            event: The event.

        Returns:
            What ``evolve`` returns.
        """
        warn_renamed(type(self), "apply", "evolve")
        return self.evolve(document, event)

    def forgotten_ids(self, stream: StreamName) -> Iterable[str]:
        """Name the documents to tell that ``stream`` was deleted.

        Args:
            stream: The stream that was deleted.

        Returns:
            Their keys; by default the stream's id.
        """
        return (stream.id,)

    def forget(self, document: D, stream: StreamName) -> D | None:  # noqa: ARG002 - for subclasses
        """Take a deleted stream out of one document.

        Args:
            document: The document before the deletion.
            stream: The stream that was deleted.

        Returns:
            The document after it, or None to remove the document (the default).
        """
        return None


def _parameter(cls: type[Any]) -> Any:
    """The document type a subclass gave ``DocumentProjection[...]``, or None."""
    for klass in cls.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            if typing.get_origin(base) is DocumentProjection:
                (argument,) = typing.get_args(base)
                return None if isinstance(argument, TypeVar) else argument
    return None


class DocumentCodec(Generic[D]):
    """A document projection's configuration, checked once, and its documents' JSON codec."""

    def __init__(self, projection: DocumentProjection[D]) -> None:
        cls = type(projection)
        self.projection = projection
        self.name = declared_name(cls, "projection")
        self.schema = declared_schema(cls)
        self.codecs = source_codecs(cls)
        self.converter = cls.CONVERTER
        self.document_type: Any = cls.DOCUMENT_TYPE or _parameter(cls)
        if self.document_type is None:
            raise configuration_error(
                cls,
                "no document type: subclass DocumentProjection[YourDocument] or set DOCUMENT_TYPE",
            )
        problem = structure_problem(self.converter, self.document_type)
        if problem is not None:
            raise configuration_error(
                cls,
                f"CONVERTER cannot read the document type {self.document_type!r} ({problem}): "
                "make it an attrs class or a dataclass, or register a structure hook",
            ) from problem

    def keys(self, event: RecordedEvent[Any]) -> list[str]:
        """The document keys ``event`` changes; DomainContractError naming a bad one."""
        keys = list(self.projection.document_ids(event))
        for key in keys:
            if not isinstance(key, str) or not key:
                raise DomainContractError(
                    f"{type(self.projection).__qualname__}.document_ids gave {key!r} for an event "
                    f"of type {event.type} of stream {event.stream} (version {event.version}): "
                    "a document key is a non-empty str"
                )
        return keys

    def evolve(self, document: D, event: RecordedEvent[Any], key: str) -> D:
        """``evolve`` of the projection; DomainContractError, naming both, if it returns None."""
        applied = self.projection.evolve(document, event)
        if applied is None:
            raise DomainContractError(
                f"{type(self.projection).__qualname__}.evolve returned None for document {key!r} "
                f"and an event of type {event.type} of stream {event.stream} (version "
                f"{event.version}): it must return the document after the event (a forgotten "
                "return?)"
            )
        return applied

    def encode(self, key: str, document: D) -> Body:
        """Document ``key`` as JSON values; NotJSON, naming the projection and key, if not."""
        body = self.converter.unstructure(document, self.document_type)
        problem = json_problem(body, "document")
        if problem is not None:
            raise NotJSON(
                f"projection {self.name}: CONVERTER did not turn document {key!r} into JSON: "
                f"{problem}"
            )
        return body

    def decode(self, key: str, body: Body, where: str) -> D:
        """The document stored as ``body`` (at ``where``); CorruptReadModel if it does not fit."""
        try:
            document: D = self.converter.structure(body, self.document_type)
        except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as error:
            raise CorruptReadModel(
                where, f"document {key!r} does not fit {self.document_type!r}: {error!r}"
            ) from error
        return document

    def recorded(self, chunk: Chunk, key: str) -> Iterable[RecordedEvent[Any]]:
        """The events of ``chunk`` (at ``key``), read by its stream type's aggregate."""
        return self.codecs[chunk.stream.type].recorded(chunk, key)
