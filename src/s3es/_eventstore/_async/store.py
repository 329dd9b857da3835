"""The event store: streams of chunks on an object store, appended with put-if-absent.

It knows keys, chunks and versions, and nothing of aggregates: events arrive as EventRecords
and snapshots as JSON. Only the steps that send requests are here: those that do not (checks,
making chunks, their codec, judging a chain's walk) are ``_eventstore/store_base.py``'s, which
the sync and the async store share.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from s3es._base.clock import Clock, utc_now
from s3es._base.concurrency import AsyncFuture, AsyncWorkers
from s3es._base.logging import get_logger
from s3es._base.tracing import traced
from s3es._eventstore._async.chain import ReadAhead, newest_of_each_version, walk_chain
from s3es._eventstore.chunk import (
    Chunk,
    EventRecord,
    Snapshot,
)
from s3es._eventstore.links import ChainBreak
from s3es._eventstore.store_base import EventStoreBase
from s3es._eventstore.values import (
    DEFAULT_MAX_CHUNK_BYTES,
    DEFAULT_READ_AHEAD,
    READ_ATTEMPTS,
    AppendResult,
    StreamConflict,
    append_failure,
    append_span,
    new_id,
    trimmed,
)
from s3es._storage._async.port import AsyncObjectStore
from s3es._storage.keys import ChunkKey, StreamName
from s3es._storage.port import StoredObject
from s3es.errors import (
    AppendOutcomeUnknown,
    ObjectAlreadyExists,
    ObjectStoreError,
)

__all__ = [
    "DEFAULT_MAX_CHUNK_BYTES",
    "DEFAULT_READ_AHEAD",
    "AppendResult",
    "AsyncEventStore",
    "StreamConflict",
]

_log = get_logger("s3es.eventstore")

_R = TypeVar("_R")


class AsyncEventStore(EventStoreBase):
    """Streams of events stored as chunks under ``prefix`` in an object store.

    Appends are optimistic: each names the version it expects the stream to be at, and writes
    the chunk of the next version with put-if-absent, so of two writers expecting the same
    version exactly one succeeds and the other gets a :class:`~s3es.ConcurrencyError`. Most
    applications use it through a :class:`~s3es.Repository`; Design (Requests per operation) tells
    what each call costs.

    Args:
        objects: The object store the chunks are kept in.
        prefix: The key prefix every key of this store starts with ("" for none).
        clock: Stamps events' ``recorded_at`` and change-feed entries.
        new_id: Makes event ids and append ids.
        feed: Follow each stored append (and tombstone) with a PUT of an empty change-feed
            entry that projectors list to learn which streams moved: one more request per
            append.
        max_chunk_bytes: The largest chunk stored or read: a larger one is refused before it
            is sent (ChunkTooLarge) and is corrupt when read (CorruptChunk, naming the key), so
            no stored object can make a reader parse gigabytes. Raise it to store larger states
            or compacted streams.
        read_ahead: The GETs a read of a stream's chunks (:meth:`chunks`) keeps in flight,
            fetching the chunks the chain will need next before it has read their successors;
            0 reads one chunk at a time. A stream of appends costs no more requests than
            reading one at a time (Design, Reading a stream ahead).

    Raises:
        ValueError: ``max_chunk_bytes`` is below 1.
        InvalidConfiguration: ``read_ahead`` is not an int >= 0.
    """

    def __init__(
        self,
        objects: AsyncObjectStore,
        *,
        prefix: str = "",
        clock: Clock = utc_now,
        new_id: Callable[[], str] = new_id,
        feed: bool = False,
        max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
        read_ahead: int = DEFAULT_READ_AHEAD,
    ) -> None:
        super().__init__(
            prefix=prefix,
            clock=clock,
            new_id=new_id,
            feed=feed,
            max_chunk_bytes=max_chunk_bytes,
            read_ahead=read_ahead,
        )
        self._workers = AsyncWorkers(read_ahead, "s3es-read-ahead")
        self.objects = objects

    async def append(
        self,
        stream: StreamName,
        events: Sequence[EventRecord],
        *,
        expected_version: int,
        snapshot: Snapshot | None = None,
        commands: Mapping[str, tuple[int, int]] | None = None,
    ) -> AppendResult:
        """Store ``events`` as the next version of ``stream``, if it is at ``expected_version``.

        One PUT when nothing goes wrong. If the PUT's answer is lost or refused by a retry that
        met our own object (S3 answers 412 to botocore's retry of a PUT that had succeeded), the
        stored chunk is read back and its append id decides: ours means success.

        Args:
            stream: The stream to append to.
            events: The events to store, in order (see ``new_event``); at least one.
            expected_version: The version the stream is at, as a load or an earlier append
                returned. It must be one the stream has reached: one ahead would store a chunk
                after a gap, which every later read refuses (checking it would cost a request
                per append; Repository and CommandHandler only pass versions they read).
            snapshot: The state after ``events``, stored in the same chunk for loads to start
                from.
            commands: The command ids whose events the chunk stores, each with the range of
                its events (see :class:`~s3es.eventstore.Chunk`).

        Returns:
            The stream, the version stored, its key and append id, and the events.

        Raises:
            ConcurrencyError: Another writer stored that version first (a ``StreamConflict``
                carrying the chunk it found, when it read one).
            ValueError: ``expected_version`` is negative or ``events`` is empty.
            ChunkTooLarge: The chunk is larger than ``max_chunk_bytes``; nothing was sent.
            NotJSON: An event's data or metadata, or the snapshot, is not JSON.
            AppendOutcomeUnknown: The PUT's answer was unclear and reading the key back failed
                too: the append may or may not be stored.
            ObjectStoreError: The PUT failed and nothing was stored.

        .. versionchanged:: 0.2  ``commands``.
        """
        chunk = self._next_chunk(stream, events, expected_version, snapshot, commands)
        return await self.commit(chunk)

    @traced(
        start=append_span,
        end=lambda result: {"s3es.append.outcome": "recovered" if result.recovered else "stored"},
        failed=lambda error: {"s3es.append.outcome": append_failure(error)},
    )
    async def commit(self, chunk: Chunk) -> AppendResult:
        """Store ``chunk`` as chunk 0 of its version, put-if-absent; judge an unclear answer.

        The primitive under :meth:`append`, and under a deletion's tombstone: one PUT when
        nothing goes wrong; a lost or refused answer is settled by reading the key back.

        Args:
            chunk: The chunk to store; its version must follow a version the stream has.

        Returns:
            Where the chunk was stored, and whether an unclear answer was recovered.

        Raises:
            ConcurrencyError: Another writer stored the version first.
            ChunkTooLarge: The chunk is larger than ``max_chunk_bytes``; nothing was sent.
            NotJSON: The chunk holds a value that is not JSON.
            AppendOutcomeUnknown: The answer was unclear and reading the key back failed too.
            ObjectStoreError: The PUT failed and nothing was stored.
        """
        key = self.keys.chunk_key(chunk.stream, chunk.version)
        body = self._encode(chunk)
        log = _log.bind(stream=str(chunk.stream), version=chunk.version, key=key)
        try:
            await self.objects.put_if_absent(key, body)
        except ObjectAlreadyExists as taken:
            # A rival's chunk, or ours: botocore's retry of a PUT whose answer was lost gets 412.
            return await self._read_back(chunk, key, taken, log)
        except ObjectStoreError as error:
            return await self._read_back(chunk, key, error, log)
        log.debug("append", events=len(chunk.events), deleted=chunk.deleted)
        await self._announce(chunk, log)
        return AppendResult(chunk.stream, chunk.version, key, chunk.append_id, chunk.events)

    async def _announce(self, chunk: Chunk, log: Any) -> None:
        """Write ``chunk``'s change-feed entry, if the feed is on.

        The chunk is stored already: a failure here is logged, not raised, since the append
        succeeded, and projectors find the chunk at their next full scan anyway.
        """
        if not self.feed:
            return
        key = self._feed_key(chunk)
        try:
            await self.objects.put_if_absent(key, b"")
        except ObjectAlreadyExists:
            pass  # a retry of this very PUT, whose answer was lost, met it
        except ObjectStoreError as error:
            log.warning("feed_entry_failed", feed_key=key, error=str(error))

    async def _read_back(
        self, ours: Chunk, key: str, cause: ObjectAlreadyExists | ObjectStoreError, log: Any
    ) -> AppendResult:
        """After a PUT that did not say it succeeded, read the key: our append id means it did."""
        try:
            stored = await self.objects.get(key)
        except ObjectStoreError as check_error:
            raise AppendOutcomeUnknown(
                "PUT",
                key,
                f"{cause}; reading the key back failed too ({check_error.detail}), "
                "so the append may or may not be stored",
            ) from cause
        if stored is None:
            self._vanished(ours, cause, log)
        found = self._decode(self.keys.parse(ours.stream, key), stored.body)
        result = self._recovered(ours, key, found, cause, log)
        await self._announce(ours, log)
        return result

    async def store(self, chunk: Chunk) -> str:
        """Store ``chunk`` at its key (version and number) only if no object is there.

        For chunks that stand beside a version's chunk 0 (a re-snapshotted or a merged chunk).
        One PUT.

        Args:
            chunk: The chunk to store.

        Returns:
            The key it was stored at.

        Raises:
            ObjectAlreadyExists: Another writer stored that chunk number first.
            ChunkTooLarge: The chunk is larger than ``max_chunk_bytes``; nothing was sent.
            ObjectStoreError: The PUT failed.
        """
        key = self.keys.chunk_key(chunk.stream, chunk.version, chunk.number)
        await self.objects.put_if_absent(key, self._encode(chunk))
        return key

    async def replace(self, chunk: Chunk, *, etag: str) -> str:
        """Store ``chunk`` over the stored chunk at its key, only if that one has ``etag``.

        One PUT.

        Args:
            chunk: The chunk to store.
            etag: The ETag of the stored chunk it replaces, as :meth:`read` returned it.

        Returns:
            The key it was stored at.

        Raises:
            ObjectChanged: The stored chunk changed or is gone.
            ChunkTooLarge: The chunk is larger than ``max_chunk_bytes``; nothing was sent.
            ObjectStoreError: The PUT failed.
        """
        key = self.keys.chunk_key(chunk.stream, chunk.version, chunk.number)
        await self.objects.replace(key, self._encode(chunk), etag=etag)
        return key

    async def listing(self, stream: StreamName) -> AsyncIterator[ChunkKey]:
        """Where every chunk of ``stream`` is stored, newest first. One LIST per 1,000 keys.

        Args:
            stream: The stream to list.

        Yields:
            The version, chunk number and key of each chunk.

        Raises:
            CorruptChunk: A key under the stream is not a chunk key.
            ObjectStoreError: A LIST failed.
        """
        parse = self.keys.parser(stream)
        async for key in self.objects.list_keys(self.keys.stream_prefix(stream)):
            yield parse(key)

    async def read(self, where: ChunkKey) -> tuple[Chunk, str] | None:
        """Read one chunk. One GET.

        Args:
            where: A chunk's place, as :meth:`listing` yields it.

        Returns:
            The chunk and its ETag, or None if no object is there.

        Raises:
            CorruptChunk: The object is not a chunk s3es can read, or is larger than
                ``max_chunk_bytes``.
            ObjectStoreError: The GET failed.
        """
        stored = await self.objects.get(where.key)
        return None if stored is None else (self._decode(where, stored.body), stored.etag)

    async def remove(self, where: ChunkKey) -> None:
        """Delete the chunk at ``where`` (maintenance only: a deletion's sweep). One DELETE.

        Args:
            where: A chunk's place, as :meth:`listing` yields it.

        Raises:
            ObjectStoreError: The DELETE failed.
        """
        await self.objects.delete(where.key)

    async def stream_types(self) -> AsyncIterator[str]:
        """The stream types that have streams under the prefix, in key order.

        One LIST per 1,000 types. Folders of s3es's own (``_projections``...) are not listed.

        Yields:
            Each stream type.

        Raises:
            ObjectStoreError: A LIST failed.
        """
        root = self.keys.root
        async for folder in self.objects.list_prefixes(root):
            stream_type = folder[len(root) : -1]
            if not stream_type.startswith("_"):
                yield stream_type

    async def streams(self, stream_type: str) -> AsyncIterator[StreamName]:
        """The streams of ``stream_type`` that have chunks (deleted ones too), in key order.

        One LIST per 1,000 streams.

        Args:
            stream_type: The type whose streams to list.

        Yields:
            Each stream's name.

        Raises:
            CorruptChunk: A folder no StreamName maps to (none that s3es wrote), named.
            ObjectStoreError: A LIST failed.
        """
        type_prefix = self.keys.type_prefix(stream_type)
        async for folder in self.objects.list_prefixes(type_prefix):
            yield self._stream_in(stream_type, type_prefix, folder)

    async def _newest(self, stream: StreamName) -> ChunkKey | None:
        """Where the newest chunk of ``stream`` is (keys list newest first); one LIST of one key."""
        async for newest in self.objects.list_keys(self.keys.stream_prefix(stream), limit=1):
            return self.keys.parse(stream, newest)
        return None

    async def version(self, stream: StreamName) -> int:
        """The latest version of ``stream``. One LIST of one key.

        Args:
            stream: The stream to ask about.

        Returns:
            Its latest version (a tombstone's too), 0 if it has none.

        Raises:
            CorruptChunk: The newest key under the stream is not a chunk key.
            ObjectStoreError: The LIST failed.
        """
        newest = await self._newest(stream)
        return 0 if newest is None else newest.version

    async def latest(self, stream: StreamName, *, after_version: int = 0) -> Chunk | None:
        """The latest chunk of ``stream``: its highest version's highest-numbered chunk.

        One LIST of one key (keys list newest first), then one GET, at any stream length.

        Args:
            stream: The stream to read.
            after_version: Return None, after the LIST alone, if the stream has no version
                after this one (a cached state that is still current costs no GET).

        Returns:
            The chunk, or None if the stream has none (after ``after_version``).

        Raises:
            CorruptChunk: The chunk cannot be read, or a key is not a chunk key.
            ObjectStoreError: A request failed, or the latest chunk vanished between the LIST
                and the GET at every attempt.
        """
        for _ in range(READ_ATTEMPTS):
            newest = await self._newest(stream)
            if newest is None or newest.version <= after_version:
                return None
            stored = await self.objects.get(newest.key)
            if stored is not None:
                return self._decode(newest, stored.body)
        raise self._latest_vanished(stream)

    async def chunks(
        self, stream: StreamName, *, after_version: int = 0, older_snapshots: bool = True
    ) -> AsyncIterator[Chunk]:
        """The chunks holding every event of ``stream`` after ``after_version``, oldest first.

        Of the chunks of one version the highest-numbered is read. A compacted chunk stands for
        every version it covers, so those versions' own chunks are not read; one that reaches
        below ``after_version`` comes trimmed to the later events. Lists newest first down to
        ``after_version`` (one LIST per 1,000 chunks), then GETs from the newest chunk back.
        A version missing below an erasure's fences (a fence round whose lower PUT is in
        flight, failed, or was cut short) is no error: those fences hold no event, and the
        stream ends below the gap until a chunk is stored there (``s3es repair`` stores the
        missing fence). A chunk erased between the LIST and its GET (an erasure ran meanwhile)
        makes it list again: the merged chunk that stands for it is stored first.

        Args:
            stream: The stream to read.
            after_version: Yield only the events after this version (0: from the start).
            older_snapshots: False yields the chunks below the newest without their
                snapshots (None; each is still checked as strictly when read), but for an
                erasure's fence's and a merged chunk's, whose state a reader catching up
                through them takes: for a reader that folds the events and needs no other
                state, to which a long stream's snapshots cost more than decoding them.

        Yields:
            Each chunk, oldest first.

        Raises:
            InvalidConfiguration: ``after_version`` is not an int >= 0; before any request.
            CorruptChunk: A version is missing (naming the key after the gap), a chunk does
                not follow the one before it, or a chunk cannot be read.
            StreamDeleted: The stream was deleted.
            ObjectStoreError: A request failed.

        .. versionchanged:: 0.2  ``older_snapshots``.
        """
        self._check_after(stream, after_version)
        newest_first = await self._chain(stream, after_version, older_snapshots=older_snapshots)
        for attempt in range(1, READ_ATTEMPTS):
            if not isinstance(newest_first, ChainBreak):
                break
            _log.debug("chain_erased", stream=str(stream), key=newest_first.key, attempt=attempt)
            newest_first = await self._chain(stream, after_version, older_snapshots=older_snapshots)
        for chunk in reversed(self._unbroken(newest_first)):
            yield trimmed(chunk, after_version)

    async def _chain(
        self, stream: StreamName, after_version: int, *, older_snapshots: bool
    ) -> list[Chunk] | ChainBreak:
        """The chunks :meth:`chunks` yields, newest first and not trimmed.

        Or the break at an erased chunk, for :meth:`chunks` to list again; any other break
        raises: a missing version CorruptChunk, a tombstone StreamDeleted.
        """
        newest = await newest_of_each_version(self.listing(stream), after_version=after_version)
        # The version whose snapshot the caller wants: the top, or the newest below a fence gap.
        head = [max(newest, default=0)]

        def decode(where: ChunkKey, stored: StoredObject) -> Chunk:
            keep = older_snapshots or where.version == head[0]
            return self._decode(where, stored.body, with_snapshot=keep)

        async def read(where: ChunkKey) -> Chunk:
            return decode(where, await self._get_listed(where))

        reader: Callable[[ChunkKey], Awaitable[Chunk]] = read
        ahead = None
        if self.read_ahead and len(newest) > 1:
            ahead = ReadAhead(
                newest,
                self._get_listed,
                decode,
                submit=self._submit,
                depth=self.read_ahead,
                after_version=after_version,
            )
            reader = ahead
        try:
            return await self._walk(stream, newest, reader, after_version, head)
        finally:
            if ahead is not None:
                ahead.close()

    async def _walk(
        self,
        stream: StreamName,
        newest: Mapping[int, ChunkKey],
        read: Callable[[ChunkKey], Awaitable[Chunk]],
        after_version: int,
        head: list[int],
    ) -> list[Chunk] | ChainBreak:
        """The chain's chunks, newest first, or the break at an erased chunk (see ``_chain``).

        At a fence gap the fences read above it are dropped: the stream ends below the gap
        until a chunk is stored there. ``head[0]`` becomes the version the walk goes on from.
        """
        newest_first: list[Chunk] = []
        async for step in walk_chain(newest, read, after_version=after_version):
            if (broken := self._step(stream, step, newest_first, newest, head)) is not None:
                return broken
        return newest_first

    async def _get_listed(self, where: ChunkKey) -> StoredObject:
        """The object at ``where``; ObjectStoreError if it was listed but is gone. One GET."""
        stored = await self.objects.get(where.key)
        if stored is None:
            raise ObjectStoreError("GET", where.key, "listed, then gone before it was read")
        return stored

    def _submit(
        self, fetch: Callable[[ChunkKey], Awaitable[_R]], where: ChunkKey
    ) -> AsyncFuture[_R]:
        """Start ``fetch(where)`` in the background, in the caller's context.

        The context carries the request meters (:func:`~s3es.metering.measure_requests`) and
        the log's bound values, so a GET sent ahead counts and logs as the caller's.
        """
        return self._workers.submit(fetch, where)
