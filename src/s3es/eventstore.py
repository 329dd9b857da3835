"""The event store and what it stores: streams of chunks, each chunk events and a snapshot.

Most applications use :class:`EventStore` only to hand it to a repository and a projector.
The rest is for tools that read chunks as they are stored (see ``docs/chunk-format.md``).
"""

from s3es._eventstore.chunk import Chunk, EventRecord, Snapshot
from s3es._eventstore.store import AppendResult, EventStore
from s3es._storage.keys import StreamKeys, StreamName

__all__ = [
    "AppendResult",
    "Chunk",
    "EventRecord",
    "EventStore",
    "Snapshot",
    "StreamKeys",
    "StreamName",
]
