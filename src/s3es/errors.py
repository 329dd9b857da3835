"""The exceptions s3es raises. Every one names what it is about: the stream, the key, the field."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from s3es._domain.expected import ExpectedVersion
    from s3es._readmodels.port import Generation
    from s3es._storage.keys import StreamName


class S3esError(Exception):
    """Base class of every error s3es raises on purpose."""


class InvalidStreamName(S3esError, ValueError):  # noqa: N818 - reads as a noun on purpose
    """A stream type, stream id or prefix that cannot be stored safely.

    Raised before any request is sent.
    """


class InvalidConfiguration(S3esError, ValueError):  # noqa: N818
    """A class attribute, option or argument that s3es cannot work with.

    An aggregate's event registry, an event class the converter cannot turn into JSON and back,
    a negative ``after_version``... Raised when the object is made or the call is made, before
    any request is sent.
    """


class NotJSON(S3esError, ValueError):  # noqa: N818 - reads as what is wrong
    """An event, its metadata or a snapshot to store is not JSON: nothing was sent.

    Names the stream, the event (its position and type) and the field, e.g.
    ``data['lines'][0]['sku']``. JSON has str keys only, no NaN or infinity, and no values
    other than objects, arrays, strings, numbers, booleans and null; strings must be valid
    Unicode (no lone surrogate). Metadata must be a mapping.
    """


class DomainContractError(S3esError, TypeError):
    """A method of an aggregate or projection returned what its contract rules out.

    ``decide`` must return a sequence (list, tuple) of events, not one event or None; ``evolve``
    and ``apply`` must return the new state or model, not None (a forgotten ``return``). Names
    the class, the method and the stream.
    """


class ConcurrencyError(S3esError):
    """Another writer appended to the stream first: the expected version is no longer the latest.

    Carries what a retry needs: the stream, the version the writer expected, and the version it
    found (at least ``expected_version + 1``).
    """

    def __init__(self, stream: StreamName, expected_version: int, actual_version: int) -> None:
        self.stream = stream
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            f"stream {stream} is at version {actual_version} or later, "
            f"not at the expected version {expected_version}"
        )


class WrongExpectedVersion(S3esError):  # noqa: N818 - reads as what is wrong
    """The stream is not at the version the caller expected: nothing was stored.

    Raised by ``CommandHandler.handle(..., expected_version=...)`` and never retried. Carries
    the stream, the ``expected_version`` given (an int, or an :class:`~s3es.ExpectedVersion`)
    and the ``actual_version`` the stream was found at: the version read or, when another
    writer stored the version after the expected one first, the winning chunk's version (the
    stream may have moved further since). Under group commit, the version made by the commands
    queued before this one counts. An HTTP layer answers it with 412 Precondition Failed.

    Not a :class:`ConcurrencyError`, on purpose. A ConcurrencyError tells its catcher to bring
    the state forward and decide again, and that is what code that catches it does (the
    command handler among them). An expected version says the decision belongs to the caller,
    on the state it saw (a form, a page, a message): deciding again on a newer state is the
    lost update the check exists to prevent. So code written to retry ConcurrencyError must not
    catch this; only the caller can read the stream again and resend.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        stream: StreamName,
        expected_version: int | ExpectedVersion,
        actual_version: int,
    ) -> None:
        self.stream = stream
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            f"stream {stream} is at version {actual_version}, which does not match the expected "
            f"version {expected_version!r}: nothing was stored"
        )


class StreamDeleted(S3esError):  # noqa: N818 - reads as what happened
    """The stream was deleted: it can be neither read nor appended to.

    ``version`` is that of its tombstone.
    """

    def __init__(self, stream: StreamName, version: int) -> None:
        self.stream = stream
        self.version = version
        super().__init__(f"stream {stream} was deleted (tombstone at version {version})")


class CorruptChunk(S3esError):  # noqa: N818
    """A stored chunk cannot be read, or the chunks of a stream do not follow each other.

    Not JSON, a missing or mistyped field, an unknown event type, content that contradicts the
    key, or a gap in a stream's versions.

    Nothing is ever skipped: a load or replay that meets such a chunk stops with this error.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"corrupt chunk {key!r}: {reason}")


class ChunkTooLarge(S3esError, ValueError):  # noqa: N818 - reads as what is wrong
    """A chunk to store is larger than the event store's ``max_chunk_bytes``: nothing was sent.

    A chunk holds an append's events and a snapshot of the state after them, and a load reads
    the latest chunk whole, so the limit keeps every load's memory bounded.
    """

    def __init__(self, stream: StreamName, version: int, size: int, limit: int) -> None:
        self.stream = stream
        self.version = version
        self.size = size
        self.limit = limit
        super().__init__(
            f"the chunk of version {version} of stream {stream} would be {size:,} bytes, more "
            f"than max_chunk_bytes ({limit:,}) allows"
        )


class CorruptReadModel(S3esError):  # noqa: N818
    """A stored read-model document cannot be read: not JSON, a missing or mistyped field.

    The document is left as it is: a projector stops rather than overwrite it.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"corrupt read model {key!r}: {reason}")


class LeaseHeld(S3esError):  # noqa: N818 - reads as what happened
    """Another projector holds the projection's lease, and it has not expired."""

    def __init__(self, projection: str, owner: str, epoch: int, expires_at: float) -> None:
        self.projection = projection
        self.owner = owner
        self.epoch = epoch
        self.expires_at = expires_at
        super().__init__(
            f"projection {projection!r} is run by {owner!r} (epoch {epoch}), whose lease "
            f"expires at {expires_at:.3f} (Unix time)"
        )


class Fenced(S3esError):  # noqa: N818 - reads as what happened
    """A consumer (projector or reactor runner) with a newer epoch took over: this one must stop.

    Nothing it had not committed is kept; nothing it had committed is lost. ``projection``
    is the consumer's name.

    .. versionadded:: 0.3 (``ProjectionFenced``, its old name, is an alias)
    """

    def __init__(self, projection: str, epoch: int, newer_epoch: int) -> None:
        self.projection = projection
        self.epoch = epoch
        self.newer_epoch = newer_epoch
        super().__init__(
            f"{projection!r}: this consumer's epoch {epoch} was fenced by epoch {newer_epoch}"
        )


#: The old name of :class:`Fenced` (it fences reactor runners too).
ProjectionFenced = Fenced


class InlineProjectionFailed(S3esError):  # noqa: N818 - reads as what happened
    """An inline projection could not apply a command's events. The events ARE stored.

    The command succeeded; only the in-process view missed it. The view starts again empty and
    reads each stream back at its next append there.
    """

    def __init__(self, projection: str, stream: StreamName, version: int) -> None:
        self.projection = projection
        self.stream = stream
        self.version = version
        super().__init__(
            f"inline projection {projection} failed on stream {stream} at version {version}; "
            "the command's events are stored"
        )


class ObjectStoreError(S3esError):
    """The object store failed a request after its own retries (network, 5xx, throttling).

    ``key`` is the object concerned, or the listed prefix.
    """

    def __init__(self, operation: str, key: str, detail: str) -> None:
        self.operation = operation
        self.key = key
        self.detail = detail
        super().__init__(f"{operation} {key!r} failed: {detail}")


class AppendOutcomeUnknown(ObjectStoreError):  # noqa: N818
    """An append's PUT failed without an answer and its key could not be checked afterwards.

    The events may or may not be stored. Re-running the command is safe only if it is idempotent
    in the domain; reading the stream tells which.
    """


class RetriesExhausted(S3esError):  # noqa: N818
    """A command met a concurrency conflict on every attempt its retry policy allowed."""

    def __init__(self, stream: StreamName, attempts: int, last_error: ConcurrencyError) -> None:
        self.stream = stream
        self.attempts = attempts
        self.last_error = last_error
        super().__init__(
            f"gave up on stream {stream} after {attempts} attempts, each lost to a concurrent "
            f"writer (last: {last_error})"
        )


class ObjectAlreadyExists(S3esError):  # noqa: N818 - it is the answer, not a failure
    """A put-if-absent found an object at its key (S3 answered 412 Precondition Failed)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"an object already exists at {key!r}")


class ObjectChanged(S3esError):  # noqa: N818 - it is the answer, not a failure
    """A replace found another object at its key than the one whose ETag it had, or none.

    S3 answered 412 (or 404) to ``If-Match``.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"the object at {key!r} is not the one expected (or is gone)")


class ReadModelConflict(S3esError):  # noqa: N818 - it is the answer, not a failure
    """A read-model store refused a commit: a document or shard state changed since it was read.

    Another shard's projector wrote a document both touch, or another projector (of a newer
    epoch, or one whose commit's answer was lost) wrote the shard's state. An atomic store
    wrote nothing of the commit; the projector reads again and decides.
    """

    def __init__(self, store: str, key: str, detail: str = "changed since it was read") -> None:
        self.store = store
        self.key = key
        self.detail = detail
        super().__init__(f"{store}: {key!r} {detail}")


class GenerationChanged(S3esError):  # noqa: N818 - reads as what happened
    """A read of a document projection was overtaken by a switch of its live generation.

    A rebuild (or a bumped ``SCHEMA``) made another generation live, and dropped the one the
    read began on, while it was being read: what was read may lack documents. A reader
    returns one generation whole or raises this; :class:`~s3es.projections.DocumentReader`
    reads again by itself, once, when nothing was returned yet. ``projection`` names it,
    ``read`` is the generation read, ``live`` the one live now (None: none).

    .. versionadded:: 0.2
    """

    def __init__(self, projection: str, read: Generation, live: Generation | None) -> None:
        self.projection = projection
        self.read = read
        self.live = live
        now = "none is" if live is None else f"generation {live.number} is"
        super().__init__(
            f"projection {projection!r}: generation {read.number} stopped being live while it "
            f"was read ({now} live now): read again"
        )


class ReadModelStoreError(S3esError):
    """A read-model store (SQLite, PostgreSQL) failed: a lost connection, a locked database.

    ``store`` names the store, ``operation`` what was being done; nothing was committed.
    Its subclass :class:`UnstorableDocument` is no failure of the store but of the document.
    """

    def __init__(self, store: str, operation: str, detail: str) -> None:
        self.store = store
        self.operation = operation
        self.detail = detail
        super().__init__(f"{store}: {operation} failed: {detail}")


class UnstorableDocument(ReadModelStoreError, ValueError):  # noqa: N818 - reads as what is wrong
    """A document that not every read-model store can keep: nothing of its commit was written.

    Every store refuses the same documents, in ``commit`` before it writes anything: a key that
    is empty, longer than 200 bytes of UTF-8, or holds U+0000 or a lone surrogate; a body that
    is not JSON (NaN or an infinity, a key that is not a str, a lone surrogate, another type) or
    nests deeper than 128 levels. ``key`` is the document's key, ``path`` where in its body the
    value lies (``$.lines[3].sku``; ``""`` for the key itself), ``reason`` what is wrong with it.
    Retrying does not help: the projection must make another document.

    .. versionadded:: 0.2
    """

    def __init__(self, key: str, path: str, reason: str) -> None:
        where = f"{path} of document {key!r}" if path else f"document key {key!r}"
        super().__init__("read-model store", f"store {where}", reason)
        self.key = key
        self.path = path
        self.reason = reason
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
