"""What the sync and the async consumers share: their results, batches, leases and reactors.

The consumer machinery, the document projector, the reactor runner and the lease keeper are
written once, for asyncio, in ``_async/``; their sync modules are generated from that source
(tools/async_to_sync.py). The values here are the same objects for both: a ShardPass from
either is one class, and a :class:`Reactor` (whose ``react`` computes, and waits for nothing)
runs in both.
"""

from __future__ import annotations

import abc
import os
import socket
import uuid
import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, ClassVar

import attrs

from s3es._base.tracing import Attributes, request_attributes
from s3es._domain.aggregate import Aggregate, RecordedEvent
from s3es._readmodels.port import Generation
from s3es._storage.keys import StreamName
from s3es._storage.metering import RequestCounts
from s3es.errors import StreamDeleted

#: The metadata keys a reactor's commands stamp on the events they store.
CORRELATION_ID = "correlation_id"
CAUSATION_ID = "causation_id"

#: The format of a stored lease.
LEASE_FORMAT = "s3es.lease/1"


def default_owner() -> str:
    """A consumer's owner name when none is given: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def shard_of(stream: StreamName | str, shards: int) -> int:
    """The shard that ``stream`` belongs to: a stable hash (CRC-32) of its name.

    Args:
        stream: The stream, or its name (``"type/id"``).
        shards: How many shards there are.

    Returns:
        Its shard, from 0 to ``shards - 1``; the same in every process and release.
    """
    return zlib.crc32(str(stream).encode()) % shards


@attrs.frozen
class Lease:
    """A lease as stored: who holds it, under which epoch, until when.

    Attributes:
        format: The stored format's name and version.
        projection: The name of the consumer (projection or reactor) it is taken for.
        owner: Who holds it, as the consumer's ``LeaseOptions`` named it.
        token: Unique to the keeper that wrote it: two processes given one owner name differ
            here.
        epoch: Raised by each take-over; a write under an older epoch is fenced.
        expires_at: When it lapses unless renewed (Unix time).
        kind: The kind of consumer it is taken for ("projection", "reactor"); None in a lease
            stored before kinds were, and in a whole-model projection's.
        etag: The stored object's ETag; "" for a lease not read from the store.
    """

    format: str
    projection: str
    owner: str
    token: str
    epoch: int
    expires_at: float
    kind: str | None = None
    etag: str = attrs.field(default="", eq=False)


@attrs.frozen
class ShardPass:
    """What one pass of one shard did.

    Attributes:
        shard: The shard.
        generation: The generation of the read model it wrote.
        full_scan: True for a pass over every stream of the shard; False for one over the
            feed's.
        streams: Streams whose new chunks were read.
        events: Events read.
        commits: Commits of documents, positions and state to the store.
        documents: Documents written (or deleted) by those commits.
        switched: True if this pass completed a generation's build and switched readers to it.
    """

    shard: int
    generation: Generation
    full_scan: bool
    streams: int
    events: int
    commits: int
    documents: int
    switched: bool = False


@attrs.define
class Batch:
    """Events read but not committed, and the positions they bring their streams to."""

    events: list[RecordedEvent[Any] | StreamDeleted] = attrs.field(factory=list)
    positions: dict[str, int] = attrs.field(factory=dict)

    def __len__(self) -> int:
        return len(self.events)


class Superseded(Exception):  # noqa: N818 - internal signal: start the pass again
    """Another write of this shard's state came first (an older epoch's, or a rebuild)."""


class DocumentConflict(Exception):  # noqa: N818 - a signal: fold the batch again
    """Another shard wrote a document of the batch since it was read."""


@attrs.frozen
class ParkedDocument:
    """A document an event could not be applied to: why, and what was decided since.

    The projection's ``evolve`` raised for it, or made a document no read-model store keeps.
    Its stream is held at ``version - 1`` (no later event of it is applied, to any document)
    until the event is retried or skipped (``s3es projection ... retry`` or ``skip``). Kept per
    ``generation`` of the projection.

    Attributes:
        projection: The projection's name.
        generation: The generation of the read model it was parked in.
        key: The document's key.
        event_id: The id of the event that could not be applied.
        stream: Its stream's name (``"type/id"``).
        version: Its stream version.
        type: Its event type.
        error: What went wrong, as the exception said it.
        parked_at: When it was parked.
        status: "parked", or "skipped" once an operator skipped it (the event is not applied
            to ``key``; it is to the other documents it names).

    .. versionadded:: 0.2
    """

    projection: str
    generation: int
    key: str
    event_id: str
    stream: str
    version: int
    type: str
    error: str
    parked_at: datetime
    status: str = "parked"


@attrs.frozen
class DocumentPass:
    """What one pass over a document projector's shards did.

    Attributes:
        passes: One per shard it held and ran.
        held_elsewhere: Shards whose lease another projector holds: this one stood by for
            them.
        fenced: Shards this projector lost to a newer epoch during the pass (their work is
            not kept).
        requests: The object-store requests the pass sent.
        parked: The documents whose event this pass parked (again, for a stream still held).
    """

    passes: tuple[ShardPass, ...]
    held_elsewhere: tuple[int, ...]
    fenced: tuple[int, ...]
    requests: RequestCounts
    parked: tuple[ParkedDocument, ...] = ()

    @property
    def events(self) -> int:
        """Events applied, over every shard."""
        return sum(p.events for p in self.passes)

    @property
    def streams(self) -> int:
        """Streams read, over every shard."""
        return sum(p.streams for p in self.passes)

    @property
    def commits(self) -> int:
        """Commits, over every shard."""
        return sum(p.commits for p in self.passes)


def document_pass_attributes(run: DocumentPass) -> Attributes:
    """The span attributes of a document projector's pass."""
    return {
        "s3es.projection.stream_count": run.streams,
        "s3es.projection.event_count": run.events,
        "s3es.projection.commit_count": run.commits,
        **request_attributes(run.requests),
    }


@attrs.frozen
class Send:
    """A command a reactor sends: ``command`` to stream ``stream_id`` of ``aggregate``.

    Attributes:
        aggregate: The aggregate class of the target stream (the runner keeps a command
            handler for each).
        stream_id: The target stream's id.
        command: What the aggregate's ``decide`` is given.
    """

    aggregate: type[Aggregate[Any, Any, Any]]
    stream_id: str
    command: Any


class Reactor(abc.ABC):
    """Turns events of some aggregates' streams into commands on other streams.

    Subclass it, set ``NAME`` and ``SOURCES``, and write ``react``::

        class Fulfilment(Reactor):
            NAME = "fulfilment"
            SOURCES = (Order,)

            def react(self, event: RecordedEvent[Any]) -> Iterable[Send]:
                if isinstance(event.event, OrderPlaced):
                    yield Send(Warehouse, "main", Reserve(event.stream.id, event.event.lines))

    Run it with a :class:`~s3es.reactors.ReactorRunner` (or an
    :class:`~s3es.aio.AsyncReactorRunner`: ``react`` only computes what to send).

    Attributes:
        NAME: The reactor's name: one key segment, unique under the store.
        SOURCES: The aggregates whose streams are read; their codecs decode (and upcast) the
            events.
    """

    NAME: ClassVar[str]
    SOURCES: ClassVar[Sequence[type[Aggregate[Any, Any, Any]]]]

    @abc.abstractmethod
    def react(self, event: RecordedEvent[Any]) -> Iterable[Send]:
        """Decide which commands ``event`` calls for.

        It must give the same commands, in the same order, each time it is given the same
        event (it may be given it again after a crash): their ids are derived from the event's.
        A condition on several events belongs in the target aggregate's ``decide``, which sees
        its stream's state (a command that changes nothing stores nothing).

        Args:
            event: An event of a stream of ``SOURCES``.

        Returns:
            The commands to send; none for most events.

        Raises:
            Exception: Any error but the object store's: the runner tries the event again,
                then parks it (see :class:`~s3es.reactors.ReactionRetry`).
        """


@attrs.frozen
class Parked:
    """An event whose reaction failed ``attempts`` times: why, and what was decided since.

    Attributes:
        event_id: The event's id.
        stream: Its stream's name (``"type/id"``).
        version: Its stream version.
        type: Its event type.
        error: What went wrong, as the last exception said it.
        attempts: How many times its reaction was tried.
        parked_at: When it was parked.
        status: "parked", or "skipped" once an operator skipped it.
    """

    event_id: str
    stream: str
    version: int
    type: str
    error: str
    attempts: int
    parked_at: datetime
    status: str = "parked"


@attrs.frozen
class ReactorPass:
    """What one pass over a reactor runner's shards did.

    Attributes:
        passes: One per shard it held and ran.
        held_elsewhere: Shards whose lease another runner holds: this one stood by for them.
        fenced: Shards this runner lost to a newer epoch during the pass.
        commands: Commands sent, duplicates included.
        duplicates: Commands their stream had already stored (sent again after a crash).
        parked: Ids of the events parked by this pass.
        requests: The object-store requests the pass sent.
        conflicts: Writes of those commands that lost their stream's version to another
            writer, and were decided again (the command handler's retries).
    """

    passes: tuple[ShardPass, ...]
    held_elsewhere: tuple[int, ...]
    fenced: tuple[int, ...]
    commands: int
    duplicates: int
    parked: tuple[str, ...]
    requests: RequestCounts
    conflicts: int = 0

    @property
    def events(self) -> int:
        """Events read, over every shard."""
        return sum(p.events for p in self.passes)


def reactor_pass_attributes(run: ReactorPass) -> Attributes:
    """The span attributes of a reactor runner's pass."""
    return {
        "s3es.reactor.event_count": run.events,
        "s3es.reactor.command_count": run.commands,
        "s3es.reactor.parked_count": len(run.parked),
        "s3es.reactor.conflict_count": run.conflicts,
        **request_attributes(run.requests),
    }


__all__ = [
    "CAUSATION_ID",
    "CORRELATION_ID",
    "LEASE_FORMAT",
    "Batch",
    "DocumentConflict",
    "DocumentPass",
    "Lease",
    "Parked",
    "ParkedDocument",
    "Reactor",
    "ReactorPass",
    "Send",
    "ShardPass",
    "Superseded",
    "default_owner",
    "document_pass_attributes",
    "reactor_pass_attributes",
    "shard_of",
]
