"""The exceptions s3es raises. Every one names what it is about: the stream, the key, the field."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from s3es._domain.expected import ExpectedVersion
    from s3es._readmodels.port import Generation
    from s3es._storage.keys import StreamName


class S3esError(Exception):
    """Base class of every error s3es raises on purpose: catch it to catch them all."""

    def __init__(self, *args: object, **about: object) -> None:
        """Make the error from its message, keeping what it is about as attributes.

        Args:
            *args: As any exception's: its message.
            **about: What the error is about (a stream, a key, a version...): each becomes an
                attribute of the error, under its name.
        """
        super().__init__(*args)
        for name, value in about.items():
            setattr(self, name, value)


class InvalidStreamName(S3esError, ValueError):  # noqa: N818 - reads as a noun on purpose
    """A stream type, stream id or prefix that cannot be stored safely.

    Raised before any request is sent, when a name is made (``Repository.stream``, a
    ``StreamKeys`` prefix, a policy's prefix): not a str, empty, ``.`` or ``..``, holding ``/``
    or a control character, or a stream type starting with ``_``. Its message names the part
    and the value.
    """


class InvalidConfiguration(S3esError, ValueError):  # noqa: N818
    """A class attribute, option or argument that s3es cannot work with.

    An aggregate's event registry, an event class the converter cannot turn into JSON and back,
    a negative ``after_version``, an option value out of range, a bucket that does not honour
    conditional writes... Raised when the object is made or the call is made, before any
    request is sent; its message names the class, field and value.
    """


class NotJSON(S3esError, ValueError):  # noqa: N818 - reads as what is wrong
    """An event, its metadata, a snapshot or a document to store is not JSON: nothing was sent.

    Raised by an append (or a read-model store's commit) before any request. Its message names
    the stream, the event (its position and type) and the field, e.g.
    ``data['lines'][0]['sku']``. JSON has str keys only, no NaN or infinity, and no values
    other than objects, arrays, strings, numbers, booleans and null; strings must be valid
    Unicode (no lone surrogate). Metadata must be a mapping.
    """


class DomainContractError(S3esError, TypeError):
    """A method of an aggregate or projection returned what its contract rules out.

    ``decide`` must return a sequence (list, tuple) of events, not one event or None; ``evolve``
    must return the new state (or model, or document), not None (a forgotten ``return``).
    Raised where the method is called; its message names the class, the method and the stream.
    """


class ConcurrencyError(S3esError):
    """Another writer appended to the stream first: the expected version is no longer the latest.

    Raised by an append that lost its conditional PUT; the command handler catches it, brings
    the state forward and decides again. Catch it to do the same.

    Attributes:
        stream: The stream appended to.
        expected_version: The version the writer expected to be the latest.
        actual_version: The version it found: at least ``expected_version + 1``.
    """

    stream: StreamName
    expected_version: int
    actual_version: int

    def __init__(self, stream: StreamName, expected_version: int, actual_version: int) -> None:
        super().__init__(
            f"stream {stream} is at version {actual_version} or later, "
            f"not at the expected version {expected_version}",
            stream=stream,
            expected_version=expected_version,
            actual_version=actual_version,
        )


class WrongExpectedVersion(S3esError):  # noqa: N818 - reads as what is wrong
    """The stream is not at the version the caller expected: nothing was stored.

    Raised by ``CommandHandler.handle(..., expected_version=...)`` and never retried. Under
    group commit, the version made by the commands queued before this one counts. An HTTP layer
    answers it with 412 Precondition Failed. Not a :class:`ConcurrencyError`, on purpose: that
    one tells its catcher to decide again on a newer state, which is the lost update an expected
    version exists to prevent; only the caller can read the stream again and resend.

    Attributes:
        stream: The stream the command was for.
        expected_version: The version given: an int, or an :class:`~s3es.ExpectedVersion`.
        actual_version: The version found: the version read or, when another writer stored the
            version after the expected one first, the winning chunk's (it may have moved since).

    .. versionadded:: 0.2
    """

    stream: StreamName
    expected_version: int | ExpectedVersion
    actual_version: int

    def __init__(
        self,
        stream: StreamName,
        expected_version: int | ExpectedVersion,
        actual_version: int,
    ) -> None:
        super().__init__(
            f"stream {stream} is at version {actual_version}, which does not match the expected "
            f"version {expected_version!r}: nothing was stored",
            stream=stream,
            expected_version=expected_version,
            actual_version=actual_version,
        )


class StreamDeleted(S3esError):  # noqa: N818 - reads as what happened
    """The stream was deleted: it can be neither read nor appended to.

    Raised by a load, read, append, command, compaction or erasure of a stream that has a
    tombstone (see :func:`s3es.ops.delete`), and by a writer whose PUT lost to a fence.

    Attributes:
        stream: The deleted stream.
        version: The version of its tombstone.
    """

    stream: StreamName
    version: int

    def __init__(self, stream: StreamName, version: int) -> None:
        super().__init__(
            f"stream {stream} was deleted (tombstone at version {version})",
            stream=stream,
            version=version,
        )


class CorruptChunk(S3esError):  # noqa: N818
    """A stored chunk cannot be read, or the chunks of a stream do not follow each other.

    Not JSON, a missing or mistyped field, an unknown event type, content that contradicts the
    key, or a gap in a stream's versions. Nothing is ever skipped: a load or replay that meets
    such a chunk stops with this error (``s3es verify`` lists every one).

    Attributes:
        key: The chunk's key (for a gap, the key after it).
        reason: What is wrong with it.
    """

    key: str
    reason: str

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"corrupt chunk {key!r}: {reason}", key=key, reason=reason)


class ChunkTooLarge(S3esError, ValueError):  # noqa: N818 - reads as what is wrong
    """A chunk to store is larger than the event store's ``max_chunk_bytes``: nothing was sent.

    A chunk holds an append's events and a snapshot of the state after them, and a load reads
    the latest chunk whole, so the limit keeps every load's memory bounded.

    Attributes:
        stream: The stream appended to.
        version: The version the chunk was for.
        size: The chunk's size in bytes.
        limit: ``max_chunk_bytes``.
    """

    stream: StreamName
    version: int
    size: int
    limit: int

    def __init__(self, stream: StreamName, version: int, size: int, limit: int) -> None:
        super().__init__(
            f"the chunk of version {version} of stream {stream} would be {size:,} bytes, more "
            f"than max_chunk_bytes ({limit:,}) allows",
            stream=stream,
            version=version,
            size=size,
            limit=limit,
        )


class CorruptReadModel(S3esError):  # noqa: N818
    """A stored read-model document or model cannot be read.

    Not JSON, a missing or mistyped field. The document is left as it is: a projector stops
    rather than overwrite it.

    Attributes:
        key: The object key (or row) that cannot be read.
        reason: What is wrong with it.
    """

    key: str
    reason: str

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"corrupt read model {key!r}: {reason}", key=key, reason=reason)


class LeaseHeld(S3esError):  # noqa: N818 - reads as what happened
    """Another consumer holds the lease, and it has not expired: this one does not run.

    Raised when a projector or reactor runner takes its lease (without ``force``).

    Attributes:
        projection: The consumer's name.
        owner: The holder's owner id.
        epoch: The holder's epoch.
        expires_at: When the holder's lease expires (Unix time).
    """

    projection: str
    owner: str
    epoch: int
    expires_at: float

    def __init__(self, projection: str, owner: str, epoch: int, expires_at: float) -> None:
        super().__init__(
            f"projection {projection!r} is run by {owner!r} (epoch {epoch}), whose lease "
            f"expires at {expires_at:.3f} (Unix time)",
            projection=projection,
            owner=owner,
            epoch=epoch,
            expires_at=expires_at,
        )


class Fenced(S3esError):  # noqa: N818 - reads as what happened
    """A consumer (projector or reactor runner) with a newer epoch took over: this one must stop.

    Raised when it renews its lease or commits. Nothing it had not committed is kept; nothing it
    had committed is lost.

    Attributes:
        projection: The consumer's name.
        epoch: This consumer's epoch.
        newer_epoch: The epoch that fenced it.

    .. versionadded:: 0.3 (``ProjectionFenced``, its old name, is an alias)
    """

    projection: str
    epoch: int
    newer_epoch: int

    def __init__(self, projection: str, epoch: int, newer_epoch: int) -> None:
        super().__init__(
            f"{projection!r}: this consumer's epoch {epoch} was fenced by epoch {newer_epoch}",
            projection=projection,
            epoch=epoch,
            newer_epoch=newer_epoch,
        )


#: The old name of :class:`Fenced` (it fences reactor runners too).
ProjectionFenced = Fenced


class InlineProjectionFailed(S3esError):  # noqa: N818 - reads as what happened
    """An inline projection could not apply a command's events. The events ARE stored.

    The command succeeded; only the in-process view missed it. The view starts again empty and
    reads each stream back at its next append there. The projection's error is the ``__cause__``.

    Attributes:
        projection: The inline projection's name.
        stream: The stream the command appended to.
        version: The version the command's events were stored at.
    """

    projection: str
    stream: StreamName
    version: int

    def __init__(self, projection: str, stream: StreamName, version: int) -> None:
        super().__init__(
            f"inline projection {projection} failed on stream {stream} at version {version}; "
            "the command's events are stored",
            projection=projection,
            stream=stream,
            version=version,
        )


class ObjectStoreError(S3esError):
    """The object store failed a request after its own retries (network, 5xx, throttling).

    Raised by every object store, and by the event store and maintenance above them.

    Attributes:
        operation: The request (``PUT``, ``GET``, ``LIST``...).
        key: The object concerned, or the listed prefix (or bucket).
        detail: What failed.
    """

    operation: str
    key: str
    detail: str

    def __init__(self, operation: str, key: str, detail: str) -> None:
        super().__init__(
            f"{operation} {key!r} failed: {detail}", operation=operation, key=key, detail=detail
        )


class AppendOutcomeUnknown(ObjectStoreError):  # noqa: N818
    """An append's PUT failed without an answer and its key could not be checked afterwards.

    The events may or may not be stored. Re-running the command is safe only if it is idempotent
    in the domain; reading the stream tells which. Its attributes are :class:`ObjectStoreError`'s.
    """


class RetriesExhausted(S3esError):  # noqa: N818
    """A command (or a deletion, or an erasure) met a concurrency conflict on every attempt allowed.

    Raised by the command handler once its retry policy's attempts are spent, and by
    :func:`s3es.ops.delete` and :func:`s3es.ops.erase` when writers took every round's versions.

    Attributes:
        stream: The stream.
        attempts: The attempts made.
        last_error: The conflict the last attempt lost to.
    """

    stream: StreamName
    attempts: int
    last_error: ConcurrencyError

    def __init__(self, stream: StreamName, attempts: int, last_error: ConcurrencyError) -> None:
        super().__init__(
            f"gave up on stream {stream} after {attempts} attempts, each lost to a concurrent "
            f"writer (last: {last_error})",
            stream=stream,
            attempts=attempts,
            last_error=last_error,
        )


class ObjectAlreadyExists(S3esError):  # noqa: N818 - it is the answer, not a failure
    """A put-if-absent found an object at its key (S3 answered 412 Precondition Failed).

    Raised by ``ObjectStore.put_if_absent``; the event store turns it into a
    :class:`ConcurrencyError` for an append.

    Attributes:
        key: The key that was taken.
    """

    key: str

    def __init__(self, key: str) -> None:
        super().__init__(f"an object already exists at {key!r}", key=key)


class ObjectChanged(S3esError):  # noqa: N818 - it is the answer, not a failure
    """A replace found another object at its key than the one whose ETag it had, or none.

    S3 answered 412 (or 404) to ``If-Match``. Raised by ``ObjectStore.replace``.

    Attributes:
        key: The key whose object changed (or is gone).
    """

    key: str

    def __init__(self, key: str) -> None:
        super().__init__(f"the object at {key!r} is not the one expected (or is gone)", key=key)


class ReadModelConflict(S3esError):  # noqa: N818 - it is the answer, not a failure
    """A read-model store refused a commit: a document or shard state changed since it was read.

    Another shard's projector wrote a document both touch, or another projector (of a newer
    epoch, or one whose commit's answer was lost) wrote the shard's state. An atomic store
    wrote nothing of the commit; the projector reads again and decides.

    Attributes:
        store: The store's name.
        key: The document key (or shard state) that changed.
        detail: How it changed.
    """

    store: str
    key: str
    detail: str

    def __init__(self, store: str, key: str, detail: str = "changed since it was read") -> None:
        super().__init__(f"{store}: {key!r} {detail}", store=store, key=key, detail=detail)


class GenerationChanged(S3esError):  # noqa: N818 - reads as what happened
    """A read of a document projection was overtaken by a switch of its live generation.

    A rebuild (or a bumped ``SCHEMA``) made another generation live, and dropped the one the
    read began on, while it was being read: what was read may lack documents. A reader
    returns one generation whole or raises this; :class:`~s3es.projections.DocumentReader`
    reads again by itself, once, when nothing was returned yet.

    Attributes:
        projection: The projection read.
        read: The generation the read began on.
        live: The generation live now (None: none).

    .. versionadded:: 0.2
    """

    projection: str
    read: Generation
    live: Generation | None

    def __init__(self, projection: str, read: Generation, live: Generation | None) -> None:
        now = "none is" if live is None else f"generation {live.number} is"
        super().__init__(
            f"projection {projection!r}: generation {read.number} stopped being live while it "
            f"was read ({now} live now): read again",
            projection=projection,
            read=read,
            live=live,
        )


class ReadModelStoreError(S3esError):
    """A read-model store (SQLite, PostgreSQL) failed: a lost connection, a locked database.

    Nothing was committed. Its subclass :class:`UnstorableDocument` is no failure of the store
    but of the document.

    Attributes:
        store: The store's name.
        operation: What was being done.
        detail: What failed.
    """

    store: str
    operation: str
    detail: str

    def __init__(self, store: str, operation: str, detail: str) -> None:
        super().__init__(
            f"{store}: {operation} failed: {detail}",
            store=store,
            operation=operation,
            detail=detail,
        )


class UnstorableDocument(ReadModelStoreError, ValueError):  # noqa: N818 - reads as what is wrong
    """A document that not every read-model store can keep: nothing of its commit was written.

    Every store refuses the same documents, in ``commit`` before it writes anything: a key that
    is empty, longer than 200 bytes of UTF-8, or holds U+0000 or a lone surrogate; a body that
    is not JSON or nests deeper than 128 levels (see :func:`s3es.readmodels.check_document`).
    Retrying does not help: the projection must make another document.

    Attributes:
        key: The document's key.
        path: Where in its body the value lies (``$.lines[3].sku``; ``""`` for the key itself).
        reason: What is wrong with it.

    .. versionadded:: 0.2
    """

    key: str
    path: str
    reason: str

    def __init__(self, key: str, path: str, reason: str) -> None:
        where = f"{path} of document {key!r}" if path else f"document key {key!r}"
        super().__init__("read-model store", f"store {where}", reason)
        self.key, self.path, self.reason = key, path, reason
        self.args = (f"{where} cannot be stored: {reason}",)


__all__ = [
    "AppendOutcomeUnknown",
    "ChunkTooLarge",
    "ConcurrencyError",
    "CorruptChunk",
    "CorruptReadModel",
    "DomainContractError",
    "Fenced",
    "GenerationChanged",
    "InlineProjectionFailed",
    "InvalidConfiguration",
    "InvalidStreamName",
    "LeaseHeld",
    "NotJSON",
    "ObjectAlreadyExists",
    "ObjectChanged",
    "ObjectStoreError",
    "ProjectionFenced",
    "ReadModelConflict",
    "ReadModelStoreError",
    "RetriesExhausted",
    "S3esError",
    "StreamDeleted",
    "UnstorableDocument",
    "WrongExpectedVersion",
]
