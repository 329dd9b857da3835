"""What the sync and the async event store share: every step that does no I/O.

:class:`EventStoreBase` is the base class of :class:`~s3es.EventStore` and
:class:`~s3es.aio.AsyncEventStore` (``_eventstore/store.py``, generated from
``_eventstore/_async/store.py``), as psycopg's ``_cursor_base.py`` is of its two cursors: the
stores keep only the steps that send requests, so the generated module copies no plain logic.
Checking options and arguments, making events and chunks, encoding and decoding them within
``max_chunk_bytes``, and judging each step of a chain's walk are written here once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from s3es._base.clock import Clock
from s3es._base.logging import get_logger
from s3es._eventstore.chunk import (
    NO_COMMANDS,
    Chunk,
    EventRecord,
    Snapshot,
    decode_chunk,
    encode_chunk,
)
from s3es._eventstore.links import BreakReason, ChainBreak, Link, version_below
from s3es._eventstore.values import READ_ATTEMPTS, AppendResult, StreamConflict
from s3es._storage.keys import FIRST_CHUNK, ChunkKey, StreamKeys, StreamName
from s3es.errors import (
    ChunkTooLarge,
    CorruptChunk,
    InvalidConfiguration,
    InvalidStreamName,
    NotJSON,
    ObjectAlreadyExists,
    ObjectStoreError,
    StreamDeleted,
)

__all__ = ["EventStoreBase"]

_log = get_logger("s3es.eventstore")


class EventStoreBase:
    """The part of an event store that sends no request: options, chunks, their codec.

    Not used alone: :class:`~s3es.EventStore` and :class:`~s3es.aio.AsyncEventStore` derive
    from it and add the steps that read and write objects.
    """

    def __init__(
        self,
        *,
        prefix: str,
        clock: Clock,
        new_id: Callable[[], str],
        feed: bool,
        max_chunk_bytes: int,
        read_ahead: int,
    ) -> None:
        """Check and keep the options both stores share (see the stores' docstrings).

        Raises:
            ValueError: ``max_chunk_bytes`` is below 1.
            InvalidConfiguration: ``read_ahead`` is not an int >= 0.
        """
        if max_chunk_bytes < 1:
            raise ValueError(f"max_chunk_bytes must be at least 1, not {max_chunk_bytes}")
        if type(read_ahead) is not int or read_ahead < 0:
            raise InvalidConfiguration(
                f"read_ahead must be an int >= 0 (0: one GET at a time), not {read_ahead!r}"
            )
        self.read_ahead = read_ahead
        self.keys = StreamKeys(prefix)
        self.feed = feed
        self.max_chunk_bytes = max_chunk_bytes
        self._clock = clock
        self.new_id = new_id

    def new_event(
        self,
        event_type: str,
        data: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        schema: int = 1,
    ) -> EventRecord:
        """An EventRecord with a fresh id, recorded now, of the given data ``schema``.

        Args:
            event_type: The event's type name.
            data: The event's data (a JSON object).
            metadata: Stored with the event (a JSON object).
            schema: The version of the data's layout, for upcasters.

        Returns:
            The event, not stored yet.

        Raises:
            NotJSON: ``data`` or ``metadata`` is not a mapping (the rest of what is not JSON
                is found when the chunk is written, before it is sent).
        """
        for name, value in (("data", data), ("metadata", {} if metadata is None else metadata)):
            if not isinstance(value, Mapping):
                raise NotJSON(
                    f"event of type {event_type!r}: {name} must be a mapping (a JSON object), "
                    f"not {type(value).__qualname__}"
                )
        return EventRecord(
            type=event_type,
            id=self.new_id(),
            data=data,
            metadata=dict(metadata or {}),
            recorded_at=self._clock(),
            schema=schema,
        )

    def _next_chunk(
        self,
        stream: StreamName,
        events: Sequence[EventRecord],
        expected_version: int,
        snapshot: Snapshot | None,
        commands: Mapping[str, tuple[int, int]] | None,
    ) -> Chunk:
        """The chunk that stores ``events`` as the version after ``expected_version``.

        Raises ValueError for a negative ``expected_version`` or no events.
        """
        if expected_version < 0:
            raise ValueError(
                f"expected version of stream {stream} must be >= 0: {expected_version}"
            )
        if not events:
            raise ValueError(f"nothing to append to stream {stream}: no events")
        return Chunk(
            stream=stream,
            version=expected_version + 1,
            number=FIRST_CHUNK,
            base_version=expected_version,
            append_id=self.new_id(),
            events=tuple(events),
            snapshot=snapshot,
            commands=dict(commands) if commands else NO_COMMANDS,
        )

    def _feed_key(self, chunk: Chunk) -> str:
        """The key of ``chunk``'s change-feed entry, stamped now."""
        at_ms = int(self._clock().timestamp() * 1000)
        return self.keys.feed_key(chunk.stream, chunk.version, at_ms)

    @staticmethod
    def _vanished(ours: Chunk, cause: ObjectAlreadyExists | ObjectStoreError, log: Any) -> NoReturn:
        """Raise for a PUT that did not say it succeeded, whose key then read as empty.

        An error of the store is raised as it was; a 412 whose object was gone before our
        GET means another writer's chunk (only a deletion does that: s3es deletes no chunk).
        """
        if isinstance(cause, ObjectStoreError):
            log.warning("append_failed", error=str(cause))
            raise cause
        log.debug("append_conflict", rival_append_id=None)
        raise StreamConflict(ours.stream, ours.base_version, ours.version, None)

    @staticmethod
    def _recovered(
        ours: Chunk, key: str, found: Chunk, cause: BaseException, log: Any
    ) -> AppendResult:
        """Our append, read back after an unclear answer: recovered if ``found`` is ours.

        Raises StreamConflict if another writer's chunk is there.
        """
        if found.append_id == ours.append_id:
            log.info("append_recovered", cause=str(cause))
            return AppendResult(
                ours.stream, ours.version, key, ours.append_id, ours.events, recovered=True
            )
        log.debug("append_conflict", rival_append_id=found.append_id)
        raise StreamConflict(ours.stream, ours.base_version, ours.version, found)

    @staticmethod
    def _stream_in(stream_type: str, type_prefix: str, folder: str) -> StreamName:
        """The stream whose folder is ``folder``; CorruptChunk, naming it, if none is."""
        try:
            return StreamName(stream_type, folder[len(type_prefix) : -1])
        except InvalidStreamName as error:
            raise CorruptChunk(folder, f"not the folder of a stream: {error}") from error

    def _latest_vanished(self, stream: StreamName) -> ObjectStoreError:
        """The error for a latest chunk that went between LIST and GET at every attempt."""
        return ObjectStoreError(
            "GET",
            self.keys.stream_prefix(stream),
            f"the latest chunk vanished between LIST and GET {READ_ATTEMPTS} times",
        )

    @staticmethod
    def _check_after(stream: StreamName, after_version: object) -> None:
        """InvalidConfiguration, naming ``stream``, unless ``after_version`` is an int >= 0."""
        if type(after_version) is not int or after_version < 0:
            raise InvalidConfiguration(
                f"chunks of stream {stream}: after_version must be an int >= 0 (0: from the "
                f"start), not {after_version!r}"
            )

    @staticmethod
    def _unbroken(newest_first: list[Chunk] | ChainBreak) -> list[Chunk]:
        """The chain's chunks; CorruptChunk if it still broke at an erased chunk."""
        if isinstance(newest_first, ChainBreak):
            raise CorruptChunk(
                newest_first.key, "an erased chunk in the chain: no merged chunk stands for it"
            )
        return newest_first

    @staticmethod
    def _step(
        stream: StreamName,
        step: Link[ChunkKey] | ChainBreak,
        newest_first: list[Chunk],
        newest: Mapping[int, ChunkKey],
        head: list[int],
    ) -> ChainBreak | None:
        """Take one step of a chain's walk into ``newest_first``; the break to stop at, if any.

        At a fence gap the fences read above it are dropped: the stream ends below the gap
        until a chunk is stored there, and ``head[0]`` becomes the version the walk goes on
        from. Raises StreamDeleted at a tombstone, CorruptChunk at a missing version.
        """
        if isinstance(step, Link):
            if step.chunk.deleted:  # the top: the stream's latest version
                raise StreamDeleted(stream, step.chunk.version)
            newest_first.append(step.chunk)
        elif step.reason is BreakReason.FENCE_GAP:
            _log.info(
                "fence_gap",
                stream=str(stream),
                missing=step.version,
                above=[chunk.version for chunk in newest_first],
            )
            newest_first.clear()
            head[0] = version_below(newest, step.version)
        elif step.reason is BreakReason.ERASED:
            return step
        elif step.reason is BreakReason.TOMBSTONE:
            raise StreamDeleted(stream, step.version)
        else:
            raise CorruptChunk(
                step.key,
                f"stream {stream} has no version {step.version}, which this chunk's events follow",
            )
        return None

    def _encode(self, chunk: Chunk) -> bytes:
        """``chunk`` as stored; ChunkTooLarge if it is larger than ``max_chunk_bytes``."""
        body = encode_chunk(chunk)
        if len(body) > self.max_chunk_bytes:
            raise ChunkTooLarge(chunk.stream, chunk.version, len(body), self.max_chunk_bytes)
        return body

    def _decode(self, where: ChunkKey, body: bytes, *, with_snapshot: bool = True) -> Chunk:
        """The chunk stored at ``where``; CorruptChunk if it is larger than ``max_chunk_bytes``.

        ``with_snapshot=False``: see :func:`~s3es._eventstore.chunk.decode_chunk`.
        """
        if len(body) > self.max_chunk_bytes:
            raise CorruptChunk(
                where.key,
                f"{len(body):,} bytes, more than max_chunk_bytes ({self.max_chunk_bytes:,}) "
                "allows; an EventStore with a larger max_chunk_bytes can read it",
            )
        return decode_chunk(where, body, with_snapshot=with_snapshot)
