"""What the sync and the async event store share: their defaults, results and pure steps.

The event store itself is written once, for asyncio, in ``_async/store.py``; ``store.py`` is
generated from it (tools/async_to_sync.py). The values here are the same objects for both: a
StreamConflict caught from either is one class.
"""

from __future__ import annotations

import uuid

import attrs

from s3es._base.tracing import Attributes
from s3es._eventstore.chunk import NO_COMMANDS, Chunk, EventRecord
from s3es._storage.keys import StreamName
from s3es.errors import AppendOutcomeUnknown, ConcurrencyError


def new_id() -> str:
    """A fresh id (an append's, an event's): 32 hex digits of a random UUID."""
    return uuid.uuid4().hex


#: How often a read lists the stream again when a chunk it listed is gone, or erased, before
#: it is read.
READ_ATTEMPTS = 3
#: The largest chunk an EventStore writes or reads unless told otherwise: 16 MiB.
DEFAULT_MAX_CHUNK_BYTES = 16 * 1024 * 1024
#: GETs a read of a long stream keeps in flight unless told otherwise. At 20 ms a request,
#: 10,000 chunks need 20 in flight to be read in 10 s; 32 leaves room, and stays below the
#: S3 adapter's 50 pooled connections.
DEFAULT_READ_AHEAD = 32


@attrs.frozen
class AppendResult:
    """An append that is stored: the chunk written and its events, with their ids."""

    stream: StreamName
    version: int
    key: str
    append_id: str
    events: tuple[EventRecord, ...]
    #: True when the PUT's answer was lost and the stored chunk was found to be ours afterwards.
    recovered: bool = False


class StreamConflict(ConcurrencyError):  # noqa: N818 - a ConcurrencyError, named as one
    """A ConcurrencyError that carries the chunk found at the contested version, if it was read.

    A writer that catches up from ``found`` needs no further request to learn the next version.
    """

    def __init__(
        self, stream: StreamName, expected_version: int, actual_version: int, found: Chunk | None
    ) -> None:
        super().__init__(stream, expected_version, actual_version)
        self.found = found


# Named where the event store's API has always exported it: spans' ``error.type`` and pickles
# name it so, whichever event store (sync or async) raised it.
StreamConflict.__module__ = "s3es._eventstore.store"


def append_span(_: object, chunk: Chunk) -> tuple[str, Attributes]:
    """The span of one :meth:`EventStore.commit` (an append): its name and first attributes."""
    stream = chunk.stream
    return f"append {stream.type}", {
        "s3es.stream.type": stream.type,
        "s3es.stream.id": stream.id,
        "s3es.stream.version": chunk.version,
        "s3es.append.event_count": len(chunk.events),
        "s3es.append.deleted": chunk.deleted,
    }


def append_failure(error: Exception) -> str:
    """How an append that raised ``error`` ended: conflict, unknown (its outcome) or failed."""
    if isinstance(error, ConcurrencyError):
        return "conflict"
    if isinstance(error, AppendOutcomeUnknown):
        return "unknown"
    return "failed"


def trimmed(chunk: Chunk, after_version: int) -> Chunk:
    """``chunk`` without the events of versions up to ``after_version``.

    A merged chunk whose versions after ``after_version`` hold no event (erasures' fences)
    comes as a fence (``rebased``, no event, its snapshot): a reader catching up through it
    must not fold onto the state it held.
    """
    if chunk.base_version >= after_version:
        return chunk
    later = tuple(e for e in chunk.events if (e.version or chunk.version) > after_version)
    # Event ranges of the commands name the untrimmed events: the trimmed chunk names none.
    return attrs.evolve(
        chunk, base_version=after_version, events=later, rebased=not later, commands=NO_COMMANDS
    )
