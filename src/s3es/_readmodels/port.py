"""The read-model store port: where a document projection keeps its documents and positions.

A :class:`~s3es.projections.DocumentProjection` is written once; the store it runs on is chosen
when it is wired. Every adapter offers the same contract (checked by
:class:`s3es.testing.ReadModelStoreContract`):

- **Generations.** A projection's documents live in a numbered :class:`Generation` (its
  ``SCHEMA`` stamped on it). The store keeps, per projection, which generation readers see
  (``live``) and which one is being built beside it (``building``): a rebuild, or a bumped
  ``SCHEMA``, fills a new generation while readers keep the old, complete one, and one
  conditional write of the :class:`Generations` record switches them.
- **Documents** by key (listed in ascending order of the keys' UTF-8 bytes, Python's ``str``
  order), each with an opaque ``revision``: a :class:`Change` names the revision it
  was computed from (None: the document was absent), and a commit whose revision no longer
  matches raises :class:`~s3es.errors.ReadModelConflict`.
- **One domain of keys and bodies** for every store (:mod:`s3es._readmodels.values`): a key is
  a str of 1 to :data:`MAX_DOCUMENT_KEY_BYTES` bytes of UTF-8 with no U+0000 and no lone
  surrogate; a body is JSON as the event store takes it (str keys; integers of any size,
  beyond 64 bits too; finite floats, ``-0.0`` included; strings with no lone surrogate, U+0000
  included; at most 128 levels deep). What lies inside, every store keeps and reads back equal
  (a tuple as a list); what lies outside, every store refuses in ``commit``, before writing
  anything, with :class:`~s3es.errors.UnstorableDocument` naming the key, where in the body
  and why (:func:`~s3es._readmodels.values.check_document`). A key outside the domain reads as
  absent.
- **Positions**: the last version of each stream applied to a generation. They move in the same
  commit as the documents they produced, so that an event is applied once across crashes.
- **Shard states**: per shard of a generation, the epoch of the projector that writes it (a
  commit carrying an older epoch's state revision is refused: the fence), whether a full scan
  has been applied, and the change feed's cursors.

``atomic`` stores (SQLite, PostgreSQL) commit documents, positions and the shard state in one
transaction. The S3 store cannot: it writes each document with ``If-Match``, carrying in it the
version of each stream applied to it (``applied``), then the positions, then the shard state.
A crash in the middle leaves documents ahead of their positions; the projector then reads the
same events again and skips, per document, those its ``applied`` already holds. Either way each
event changes each document once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

# Kept here too, where the port's readers have found it.
from s3es._readmodels.values import MAX_DOCUMENT_KEY_BYTES  # noqa: F401 - re-exported

#: A document's body: what the projection's converter made of it (JSON: an object, a list...).
Body = Any


@attrs.frozen
class Generation:
    """One build of a projection's documents: its number, ``SCHEMA`` and number of shards.

    Another schema, or another number of shards, is another build: two configurations of one
    projection never write one generation (their streams' shards would overlap).

    Attributes:
        projection: The projection's name.
        number: The generation's number: each build of the projection gets its own.
        schema: The projection's ``SCHEMA`` when the build began.
        shards: The number of shards its streams are split into.
    """

    projection: str
    number: int
    schema: int
    shards: int = 1


@attrs.frozen
class Generations:
    """Which generation of a projection readers see, and which one is being built beside it.

    Read with :meth:`ReadModelStore.generations`, written with
    :meth:`ReadModelStore.set_generations` (conditionally on ``revision``).

    Attributes:
        projection: The projection's (or reactor's) name.
        live: The generation readers see; None before the first build is complete.
        building: The generation being built beside it; None when none is.
        revision: The stored record's revision; None if none is stored yet.
        kind: The kind of consumer whose record it is ("projection", "reactor"): two consumers
            of one name would share generations and positions. None in a record stored before
            kinds were (each consumer stamps its kind at its next write of the record).
    """

    projection: str
    live: Generation | None = None
    building: Generation | None = None
    revision: str | None = None
    kind: str | None = None


@attrs.frozen
class StoredDocument:
    """A document as stored, as :meth:`ReadModelStore.get` reads it.

    Attributes:
        key: The document's key.
        body: Its body; None only for a tombstone of a store that is not ``atomic``.
        revision: The store's opaque revision, for a :class:`Change` to name.
        applied: ``"type/id"`` -> the last version of that stream applied to this document.
            Kept by stores that are not ``atomic`` (S3); always empty in the others (their
            positions are exact).
    """

    key: str
    body: Body | None
    revision: str
    applied: Mapping[str, int] = attrs.field(factory=dict)


@attrs.frozen
class Change:
    """A document to write (or, with ``body`` None, to delete), made from ``revision``.

    Attributes:
        key: The document's key.
        body: The new body; None deletes the document.
        revision: The revision read before the change; None if the document was absent.
        applied: The document's whole ``applied`` map after the change (ignored by ``atomic``
            stores).
    """

    key: str
    body: Body | None
    revision: str | None
    applied: Mapping[str, int] = attrs.field(factory=dict)


@attrs.frozen
class ShardState:
    """What a shard of a generation has done, and under which consumer's epoch.

    Attributes:
        shard: The shard's number, 0 to ``shards - 1``.
        shards: The number of shards of the generation.
        epoch: The epoch of the consumer's lease that wrote it: the fence.
        complete: True once a full scan of this shard's streams has been applied.
        cursors: Stream type -> the change feed's cursor (milliseconds) up to which it was
            applied.
        commit_id: Unique to the commit that wrote it, chosen by the caller (a new one for each
            commit): how a store that is not ``atomic`` recognises its own write whose answer
            was lost.
        revision: The stored state's revision; None if none is stored yet.
    """

    shard: int
    shards: int
    epoch: int
    complete: bool = False
    cursors: Mapping[str, int] = attrs.field(factory=dict)
    commit_id: str = ""
    revision: str | None = None


@runtime_checkable
class ReadModelStore(Protocol):
    """What a document projection needs from the store its read model lives in.

    Implemented by :class:`~s3es.readmodels.S3ReadModelStore`,
    :class:`~s3es.readmodels.SQLiteReadModelStore` and
    :class:`~s3es.readmodels.PostgresReadModelStore`; a new store proves itself by passing
    :class:`s3es.testing.ReadModelStoreContract`. Every method is safe to call from several
    threads. Failures of the store itself (a lost connection, S3's 503 after retries) raise
    :class:`~s3es.errors.ObjectStoreError` for S3 and :class:`~s3es.errors.ReadModelStoreError`
    for the others.

    Attributes:
        atomic: True if :meth:`commit` applies everything or nothing.
    """

    atomic: bool

    def check_generation(self, generation: Generation) -> None:
        """Refuse, before any I/O, a generation this store cannot keep.

        Args:
            generation: The generation a consumer is about to read or build.

        Raises:
            InvalidConfiguration: naming the projection, if its name (with the generation's
                number) cannot name what the store keeps: an SQL table name past the
                database's limit, S3 keys past 1,024 bytes.
        """
        ...

    def generations(self, projection: str) -> Generations:
        """The projection's generations record.

        Args:
            projection: The projection's (or reactor's) name.

        Returns:
            The stored record, or an empty one (no generation, ``revision`` None) if none is stored.
        """
        ...

    def set_generations(self, record: Generations) -> Generations:
        """Store ``record`` if the stored one still has ``record.revision``.

        Args:
            record: The record to store; its ``revision`` is that of the record read (None: none
                was stored).

        Returns:
            The record as stored, with its new revision.

        Raises:
            ReadModelConflict: Another write came first (the stored revision moved).
        """
        ...

    def get(self, generation: Generation, key: str) -> StoredDocument | None:
        """The document at ``key``, or None.

        A store that is not ``atomic`` keeps a deleted document as a tombstone, so that its
        ``applied`` map outlives it (an event read again must not bring it back): ``get``
        returns the tombstone, with ``body`` None; :meth:`documents` skips it.

        Args:
            generation: The generation to read.
            key: The document's key; one outside the domain of keys reads as absent.

        Returns:
            The document (or tombstone), or None if there is none.

        Raises:
            CorruptReadModel: The stored document cannot be read (the S3 store).
        """
        ...

    def get_many(self, generation: Generation, keys: Collection[str]) -> dict[str, StoredDocument]:
        """The documents at ``keys`` that exist (tombstones included), by key.

        As many :meth:`get` calls, but in as few round trips as the store allows.

        Args:
            generation: The generation to read.
            keys: The documents' keys.

        Returns:
            Key -> document, for the keys that have one.

        Raises:
            CorruptReadModel: A stored document cannot be read (the S3 store).
        """
        ...

    def documents(self, generation: Generation) -> Iterator[StoredDocument]:
        """Every document of ``generation``, in ascending key order (tombstones skipped).

        Args:
            generation: The generation to read.

        Yields:
            Each document, read as the iteration goes.

        Raises:
            CorruptReadModel: A stored document cannot be read (the S3 store).
        """
        ...

    def positions(self, generation: Generation, streams: Collection[str]) -> dict[str, int]:
        """The position of each of ``streams`` that has one.

        Args:
            generation: The generation whose positions to read.
            streams: Stream names as ``"type/id"``.

        Returns:
            ``"type/id"`` -> the last version of that stream applied to the generation; a stream
            with no position is left out.
        """
        ...

    def shard_state(self, generation: Generation, shard: int, shards: int) -> ShardState | None:
        """The state of one shard of a generation.

        Args:
            generation: The generation.
            shard: The shard's number, 0 to ``shards - 1``.
            shards: The number of shards.

        Returns:
            The stored state, or None if the shard never committed.
        """
        ...

    def commit(
        self,
        generation: Generation,
        changes: Sequence[Change],
        positions: Mapping[str, int],
        state: ShardState,
    ) -> ShardState:
        """Write ``changes``, move ``positions`` and store ``state``.

        An ``atomic`` store does it in one transaction; the S3 store writes the documents, then the
        positions, then the state (see the module's docstring).

        Args:
            generation: The generation to write.
            changes: The documents to write or delete, each naming the revision it was made from.
            positions: ``"type/id"`` -> the last version of that stream now applied.
            state: The shard's new state; its ``revision`` is that of the state read (None: there
                was none).

        Returns:
            The state as stored, with its new revision.

        Raises:
            ReadModelConflict: A document's or the state's revision moved; names the key. An
                ``atomic`` store then wrote nothing.
            UnstorableDocument: A change's key or body is outside the domain every store keeps;
                nothing was written.
        """
        ...

    def drop(self, generation: Generation) -> None:
        """Remove every document, position and shard state of ``generation``.

        Args:
            generation: The generation to remove.
        """
        ...
