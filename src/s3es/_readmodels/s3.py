# Generated from src/s3es/_readmodels/_async/s3.py by tools/async_to_sync.py: do not edit.
"""Read models as keyed documents in S3: one object per document, written with If-Match.

Layout (see :mod:`s3es._storage.keys`), under ``{prefix}/_readmodels/{projection}/``::

    generations.json                            which generation readers see (If-Match)
    g{n}/docs/{percent-encoded key}             a document, with the streams applied to it
    g{n}/positions/{stream_type}/{stream_id}    how far a stream has been applied (a hint)
    g{n}/shards/{shard}-of-{shards}.json        a shard's state: epoch, scan, feed cursors

S3 has no transaction across keys, so a commit writes its documents first (each with
``If-Match``, or ``If-None-Match`` for a new one), then the positions of its streams, then the
shard's state (``If-Match``: the fence). Each document carries the version of every stream
applied to it (``applied``): a commit that dies half-way leaves documents ahead of their
positions, the projector reads those events again, and skips for each document the ones its
``applied`` holds. So nothing a commit writes, or an idle pass reads, grows with the number of
streams: a one-event commit is one document, one position and one state; only a full scan
reads one position per stream, as it lists every stream anyway. A document that many streams
write (stock per product, fed by every warehouse) grows with the streams that write it: that
is the price of its idempotency, and a reason to key documents by what one stream owns.

A deleted document stays as a tombstone (its ``applied`` map, no body), so that an event read
again does not bring it back.
"""

from __future__ import annotations

import collections
import uuid
from collections.abc import (
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, TypeVar

import attrs
import cattrs

from s3es._base.concurrency import Future, Workers, forget, outcome
from s3es._base.converter import make_strict_converter
from s3es._base.json import dumps, loads
from s3es._readmodels.port import (
    Body,
    Change,
    Generation,
    Generations,
    ShardState,
    StoredDocument,
)
from s3es._readmodels.values import check_document, is_storable_key
from s3es._storage.keys import StreamKeys, StreamName
from s3es._storage.port import ObjectStore, StoredObject
from s3es.errors import (
    CorruptReadModel,
    InvalidConfiguration,
    ObjectAlreadyExists,
    ObjectChanged,
    ReadModelConflict,
)

_T = TypeVar("_T")
_R = TypeVar("_R")

DOCUMENT_FORMAT = "s3es.document/1"
GENERATIONS_FORMAT = "s3es.generations/1"
SHARD_FORMAT = "s3es.shard/1"
POSITION_FORMAT = "s3es.position/1"

#: Reads what it stored strictly: a field of the wrong JSON type, missing or unknown is an error.
_CONVERTER = make_strict_converter(forbid_extra_keys=True)


@attrs.frozen
class _Document:
    format: str
    key: str
    #: None: a tombstone.
    body: Any
    deleted: bool
    applied: dict[str, int]
    commit_id: str


@attrs.frozen
class _Generations:
    format: str
    projection: str
    live: Generation | None
    building: Generation | None
    write_id: str
    #: Absent from records stored before kinds were.
    kind: str | None = None


@attrs.frozen
class _Shard:
    format: str
    shard: int
    shards: int
    epoch: int
    complete: bool
    cursors: dict[str, int]
    commit_id: str


@attrs.frozen
class _Position:
    format: str
    version: int


def _encode(value: object) -> bytes:
    # checked: every field is typed as JSON, and a document's body passed check_document
    return dumps(_CONVERTER.unstructure(value), checked=True)


class S3ReadModelStore:
    """A :class:`~s3es.readmodels.ReadModelStore` of one S3 object per document.

    Not ``atomic``: a commit writes the documents, then the positions, then the shard state,
    and each document carries the versions applied to it; the module's docstring tells why that
    is safe. Each method keeps the promise of its namesake in the port, at the cost it names.

    Args:
        objects: The object store (the S3 adapter, or the in-memory one in tests).
        prefix: The key prefix (the event store's, usually).
        concurrency: Workers (threads; tasks in the asyncio API) that write a commit's
            documents and positions, and read a scan's positions, at once; at most four times
            as many requests are in flight.

    Raises:
        ValueError: ``concurrency`` is below 1.
        InvalidStreamName: The event store refuses ``prefix``.
    """

    atomic = False

    def __init__(self, objects: ObjectStore, prefix: str = "", *, concurrency: int = 16) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self.objects = objects
        self.keys = StreamKeys(prefix)
        self.name = f"s3:{self.keys.prefix or '/'}"
        self._workers = Workers(concurrency, "s3es-readmodels")
        #: The ETag of each position object this store last read or wrote: a position moves
        #: with one conditional PUT, no GET first (a stale one costs a GET, then the PUT).
        self._position_etags: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"S3ReadModelStore({self.name!r})"

    def _map(self, function: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
        """``function`` over ``items`` by the workers, each in the caller's context (its meter).

        At most four calls per worker are in flight; the results come in the order of
        ``items``. If one raises, the calls not started yet are cancelled.
        """
        results: list[_R] = []
        window: collections.deque[Future[_R]] = collections.deque()
        try:
            for item in items:
                if len(window) >= 4 * self._workers.size:
                    results.append(outcome(window.popleft()))
                window.append(self._workers.submit(function, item))
            while window:
                results.append(outcome(window.popleft()))
        except BaseException:
            for future in window:
                forget(future)
            raise
        return results

    def _read(self, key: str, kind: type[_T]) -> tuple[_T, str] | None:
        stored = self.objects.get(key)
        if stored is None:
            return None
        return self._decode(key, stored, kind), stored.etag

    def _decode(self, key: str, stored: StoredObject, kind: type[_T]) -> _T:
        try:
            value = _CONVERTER.structure(loads(stored.body), kind)
        except (ValueError, TypeError, RecursionError) as error:
            raise CorruptReadModel(key, f"not JSON: {error}") from error
        except cattrs.BaseValidationError as error:
            detail = "; ".join(cattrs.transform_error(error, path=kind.__name__.strip("_")))
            raise CorruptReadModel(key, detail) from error
        expected = {
            _Document: DOCUMENT_FORMAT,
            _Generations: GENERATIONS_FORMAT,
            _Shard: SHARD_FORMAT,
            _Position: POSITION_FORMAT,
        }[kind]
        if getattr(value, "format", None) != expected:
            raise CorruptReadModel(
                key, f"format {getattr(value, 'format', None)!r}, not {expected}"
            )
        return value

    def _write(self, key: str, body: bytes, etag: str | None) -> str:
        """Write conditionally; ObjectAlreadyExists / ObjectChanged if the condition failed."""
        if etag is None:
            return self.objects.put_if_absent(key, body)
        return self.objects.replace(key, body, etag=etag)

    # Generations ----------------------------------------------------------------------------

    def check_generation(self, generation: Generation) -> None:
        """InvalidConfiguration if ``generation``'s keys would pass S3's 1,024 bytes."""
        try:
            self.keys.generation_prefix(generation.projection, generation.number)
        except ValueError as error:  # InvalidStreamName too: a name with no room
            raise InvalidConfiguration(
                f"projection {generation.projection!r}: S3 cannot keep generation "
                f"{generation.number} under prefix {self.keys.prefix!r}: {error}"
            ) from error

    def generations(self, projection: str) -> Generations:
        """The projection's generations record (an empty one if none is stored). One GET."""
        key = self.keys.generations_key(projection)
        read = self._read(key, _Generations)
        if read is None:
            return Generations(projection)
        record, etag = read
        return Generations(projection, record.live, record.building, etag, record.kind)

    def set_generations(self, record: Generations) -> Generations:
        """Store ``record`` if the stored one is still ``record.revision``; the stored record."""
        key = self.keys.generations_key(record.projection)
        write_id = _new_id()
        body = _encode(
            _Generations(
                GENERATIONS_FORMAT,
                record.projection,
                record.live,
                record.building,
                write_id,
                record.kind,
            )
        )
        try:
            etag = self._write(key, body, record.revision)
        except (ObjectAlreadyExists, ObjectChanged) as error:
            found = self._read(key, _Generations)
            if found is None or found[0].write_id != write_id:
                raise ReadModelConflict(self.name, key) from error
            etag = found[1]  # our own write, whose first answer was lost
        return attrs.evolve(record, revision=etag)

    # Documents ------------------------------------------------------------------------------

    def get(self, generation: Generation, key: str) -> StoredDocument | None:
        """The document at ``key`` (a tombstone has ``body`` None), or None. One GET.

        None, with no request, for a key no document can have
        (:func:`~s3es._readmodels.values.check_key`).
        """
        if not is_storable_key(key):
            return None
        object_key = self.keys.document_key(generation.projection, generation.number, key)
        read = self._read(object_key, _Document)
        if read is None:
            return None
        document, etag = read
        return StoredDocument(
            key, None if document.deleted else document.body, etag, document.applied
        )

    def get_many(self, generation: Generation, keys: Collection[str]) -> dict[str, StoredDocument]:
        """The documents at ``keys`` that exist: one GET each, ``concurrency`` at a time."""
        found = self._map(lambda key: self.get(generation, key), list(dict.fromkeys(keys)))
        return {document.key: document for document in found if document is not None}

    def documents(self, generation: Generation) -> Iterator[StoredDocument]:
        """Every document of ``generation`` but tombstones, in ascending key order.

        One LIST per 1,000 documents and one GET per document, read ``concurrency`` at a time.
        """
        prefix = self.keys.document_prefix(generation.projection, generation.number)
        # Listed in the order of the percent-encoded keys, which is not the keys' own (a space
        # is "%20"): every name is listed first (names only), then read in key order.
        keys = sorted(
            [
                self.keys.parse_document_key(generation.projection, generation.number, key)
                for key in self.objects.list_keys(prefix)
            ],
            key=str.encode,
        )
        for start in range(0, len(keys), 256):
            page = keys[start : start + 256]
            for document in self._map(lambda key: self.get(generation, key), page):
                if document is not None and document.body is not None:
                    yield document

    # Positions and shard states -------------------------------------------------------------

    def positions(self, generation: Generation, streams: Collection[str]) -> dict[str, int]:
        """The position of each of ``streams`` that has one: one GET per stream, in parallel."""

        def position(stream: str) -> tuple[str, int] | None:
            key = self._position_key(generation, stream)
            read = self._read(key, _Position)
            if read is None:
                return None
            self._position_etags[key] = read[1]
            return stream, read[0].version

        return dict(found for found in self._map(position, streams) if found is not None)

    def _position_key(self, generation: Generation, stream: str) -> str:
        stream_type, _, stream_id = stream.partition("/")
        return self.keys.position_key(
            generation.projection, generation.number, StreamName(stream_type, stream_id)
        )

    def shard_state(self, generation: Generation, shard: int, shards: int) -> ShardState | None:
        """The state of shard ``shard`` of ``shards``, or None. One GET."""
        key = self.keys.shard_state_key(generation.projection, generation.number, shard, shards)
        read = self._read(key, _Shard)
        if read is None:
            return None
        stored, etag = read
        return ShardState(
            stored.shard,
            stored.shards,
            stored.epoch,
            stored.complete,
            stored.cursors,
            stored.commit_id,
            etag,
        )

    # Commit ---------------------------------------------------------------------------------

    def commit(
        self,
        generation: Generation,
        changes: Sequence[Change],
        positions: Mapping[str, int],
        state: ShardState,
    ) -> ShardState:
        """Write the documents, then the positions, then the state (see the module docstring).

        Raises ReadModelConflict, naming the key, for the first document or state whose ETag
        moved; documents written before it stay written, with their ``applied`` maps. Raises
        UnstorableDocument, before writing anything, for a document outside the domain every
        store keeps (:mod:`s3es._readmodels.values`).
        """
        for change in changes:
            check_document(change.key, change.body)
        # Without a commit id of the caller's, a write whose answer was lost is a conflict.
        commit_id = state.commit_id
        failures = [
            failure
            for failure in self._map(
                lambda change: self._write_document(generation, change, commit_id), changes
            )
            if failure is not None
        ]
        if failures:
            raise failures[0]
        self._map(lambda item: self._move_position(generation, item[0], item[1]), positions.items())
        key = self.keys.shard_state_key(
            generation.projection, generation.number, state.shard, state.shards
        )
        body = _encode(
            _Shard(
                SHARD_FORMAT,
                state.shard,
                state.shards,
                state.epoch,
                state.complete,
                dict(state.cursors),
                commit_id,
            )
        )
        try:
            etag = self._write(key, body, state.revision)
        except (ObjectAlreadyExists, ObjectChanged) as error:
            stored = self.shard_state(generation, state.shard, state.shards)
            if stored is None or not commit_id or stored.commit_id != commit_id:
                raise ReadModelConflict(
                    self.name, f"shard {state.shard} of {state.shards}", "state changed"
                ) from error
            return stored  # ours: its first answer was lost, its retry met it
        return attrs.evolve(state, revision=etag)

    def _write_document(
        self, generation: Generation, change: Change, commit_id: str
    ) -> ReadModelConflict | None:
        key = self.keys.document_key(generation.projection, generation.number, change.key)
        body = _encode(
            _Document(
                DOCUMENT_FORMAT,
                change.key,
                change.body,
                change.body is None,
                dict(change.applied),
                commit_id,
            )
        )
        try:
            self._write(key, body, change.revision)
        except (ObjectAlreadyExists, ObjectChanged) as error:
            found = self._read(key, _Document)
            if found is not None and commit_id and found[0].commit_id == commit_id:
                return None  # ours: its first answer was lost, its retry met it
            conflict = ReadModelConflict(self.name, change.key)
            conflict.__cause__ = error
            return conflict
        return None

    def _move_position(self, generation: Generation, stream: str, version: int) -> None:
        """Move ``stream``'s position up to ``version`` (never back)."""
        key = self._position_key(generation, stream)
        body = _encode(_Position(POSITION_FORMAT, version))
        etag = self._position_etags.get(key)
        while True:  # each lost race is a rival's move forward: this ends
            try:
                self._position_etags[key] = self._write(key, body, etag)
            except (ObjectAlreadyExists, ObjectChanged):
                read = self._read(key, _Position)
                if read is not None and read[0].version >= version:
                    self._position_etags[key] = read[1]
                    return
                etag = None if read is None else read[1]
            else:
                return

    def drop(self, generation: Generation) -> None:
        """Delete every object of ``generation``: one LIST per 1,000 keys, a DELETE per key."""
        root = self.keys.generation_prefix(generation.projection, generation.number)
        self._map(self.objects.delete, list(_all_keys(self.objects, root)))


def _all_keys(objects: ObjectStore, prefix: str) -> Iterator[str]:
    """Every key under ``prefix``, however deep."""
    yield from objects.list_keys(prefix)
    for folder in objects.list_prefixes(prefix):
        yield from _all_keys(objects, folder)


def _new_id() -> str:
    return uuid.uuid4().hex


__all__ = ["Body", "S3ReadModelStore"]
