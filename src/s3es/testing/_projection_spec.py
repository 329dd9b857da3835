"""Given events of several streams, then documents: a document projection in a test.

The events are stored (in memory), a :class:`~s3es.projections.DocumentProjector` runs the
projection into a read-model store of the test's choice, and the documents are read back as
readers would read them; then the projection is rebuilt, and must give the same documents. So
a test fails on an event or a document that would not survive storage, on an ``apply`` that
is not a function of its document and event, not only on wrong rules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic

from s3es._base.coerce import as_instance
from s3es._domain.aggregate import Aggregate
from s3es._domain.repository import Repository
from s3es._eventstore.store import EventStore
from s3es._projections.document_projector import DocumentProjector, DocumentReader
from s3es._projections.documents import D, DocumentCodec, DocumentProjection
from s3es._readmodels.port import ReadModelStore
from s3es._readmodels.s3 import S3ReadModelStore
from s3es._storage.keys import StreamName
from s3es._storage.memory import InMemoryObjectStore
from s3es._storage.port import ObjectStore

#: One given event: ``(stream, event)``, the stream a StreamName, or an id of the projection's
#: first source's stream type.
Given = tuple[StreamName | str, Any]


def _s3(objects: ObjectStore) -> ReadModelStore:
    return S3ReadModelStore(objects, "spec")


class ProjectionSpec(Generic[D]):
    """Specifications of one document projection: ``spec.given(*events).then(documents)``.

    A real :class:`~s3es.projections.DocumentProjector` runs the events on an in-memory event
    store, then checks the documents again after a rebuild. Each ``given`` starts from nothing.

    Args:
        projection: The document projection, as a class or an instance.
        store: Makes the read-model store a specification runs on, given the object store the
            events are in: by default an :class:`~s3es.readmodels.S3ReadModelStore` beside
            them; pass ``lambda _: SQLiteReadModelStore(":memory:")`` (or a PostgreSQL one) to
            run the same specifications on another adapter.
    """

    def __init__(
        self,
        projection: DocumentProjection[D] | type[DocumentProjection[D]],
        *,
        store: Callable[[ObjectStore], ReadModelStore] = _s3,
    ) -> None:
        self.projection: DocumentProjection[D] = as_instance(projection)
        self._codec = DocumentCodec(self.projection)
        self._store = store

    def given(self, *events: Given) -> ProjectionGiven[D]:
        """The streams' histories: each ``(stream, event)`` appended in turn to its stream.

        Args:
            *events: ``(stream, event)`` pairs; a stream is a :class:`~s3es.eventstore.StreamName`,
                or a str: an id of the first stream type the projection reads.

        Returns:
            The specification with its events, to say which documents they must make.

        Raises:
            AssertionError: A stream is of a type the projection does not read.
        """
        objects = InMemoryObjectStore()
        event_store = EventStore(objects, prefix="spec")
        repositories: dict[str, Repository[Any, Any, Any]] = {}
        first_type = next(iter(self._codec.codecs))
        for stream, event in events:
            name = stream if isinstance(stream, StreamName) else StreamName(first_type, stream)
            codec = self._codec.codecs.get(name.type)
            if codec is None:
                raise AssertionError(
                    f"stream {name}: {type(self.projection).__qualname__} reads no stream of "
                    f"type {name.type!r} (its SOURCES: {sorted(self._codec.codecs)})"
                )
            repository = repositories.get(name.type)
            if repository is None:
                aggregate: type[Aggregate[Any, Any, Any]] = type(codec.aggregate)
                repository = repositories[name.type] = Repository(event_store, aggregate)
            repository.append(repository.load(name.id), [event])
        return ProjectionGiven(self, event_store, self._store(objects))


class ProjectionGiven(Generic[D]):
    """A specification with its events: say which documents they must make.

    Made by :meth:`ProjectionSpec.given`; ``then`` and ``then_document`` end it.
    """

    def __init__(
        self, spec: ProjectionSpec[D], event_store: EventStore, store: ReadModelStore
    ) -> None:
        self.spec = spec
        self.event_store = event_store
        self.store = store

    def documents(self) -> dict[str, D]:
        """The documents the projection makes of the given events (a projector's pass).

        Returns:
            Key -> document.
        """
        projector = DocumentProjector(self.event_store, self.spec.projection, self.store)
        try:
            projector.catch_up()
        finally:
            projector.release()
        return dict(DocumentReader(self.store, self.spec.projection).documents())

    def then(self, expected: Mapping[str, D]) -> dict[str, D]:
        """Assert the documents are exactly ``expected`` (by key), then again after a rebuild.

        Ends the specification: its store is closed (if it has a ``close``).

        Args:
            expected: Key -> document, every document the events must make.

        Returns:
            The documents the first pass made.

        Raises:
            AssertionError: A document is missing, unexpected or another, after the pass or after
                the rebuild; the message names each key.
        """
        with self._closing():
            return self._then(expected)

    def _then(self, expected: Mapping[str, D]) -> dict[str, D]:
        documents = self.documents()
        _compare("the documents", documents, expected)
        projector = DocumentProjector(self.event_store, self.spec.projection, self.store)
        try:
            projector.rebuild()
        finally:
            projector.release()
        rebuilt = dict(DocumentReader(self.store, self.spec.projection).documents())
        _compare("the documents after a rebuild", rebuilt, expected)
        return documents

    def then_document(self, key: str, expected: D | None) -> D | None:
        """Assert document ``key`` is ``expected``.

        Ends the specification: its store is closed (if it has a ``close``).

        Args:
            key: The document's key.
            expected: The document; None: there must be no such document.

        Returns:
            The document found (None if there is none).

        Raises:
            AssertionError: The document is another (or missing, or present when None was expected).
        """
        with self._closing():
            documents = self.documents()
        found = documents.get(key)
        if found != expected:
            raise AssertionError(f"document {key!r} is {found!r}, not {expected!r}")
        return found

    @contextlib.contextmanager
    def _closing(self) -> Iterator[None]:
        """Close the store on the way out (an SQL store holds a connection)."""
        try:
            yield
        finally:
            close = getattr(self.store, "close", None)
            if close is not None:
                close()


def _compare(what: str, found: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    if dict(found) == dict(expected):
        return
    problems = [f"{key!r}: missing" for key in expected if key not in found]
    problems += [
        f"{key!r}: not expected, found {found[key]!r}" for key in found if key not in expected
    ]
    problems += [
        f"{key!r}: {found[key]!r}, not {expected[key]!r}"
        for key in expected
        if key in found and found[key] != expected[key]
    ]
    raise AssertionError(f"{what} differ: " + "; ".join(problems))
