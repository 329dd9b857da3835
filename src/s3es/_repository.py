"""The repository: an aggregate's streams in an event store, loaded from snapshots."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic

import attrs
import structlog

from s3es._aggregate import Aggregate, AggregateCodec, C, E, RecordedEvent, S
from s3es._chunk import Chunk
from s3es._errors import ConcurrencyError, ObjectStoreError, RetriesExhausted, StreamDeleted
from s3es._eventstore import EventStore, StreamConflict
from s3es._objectstore import RequestCounts, measure_requests
from s3es._streams import StreamName

_log = structlog.get_logger("s3es.repository")

#: How often a deletion reads the stream again after losing its tombstone's version.
_DELETE_ATTEMPTS = 10


@attrs.frozen
class Loaded(Generic[S]):
    """An aggregate's state at a version of its stream (0: no events yet)."""

    stream: StreamName
    version: int
    state: S


@attrs.frozen
class Compaction:
    """What a compaction did: the stream's chunks up to ``version`` merged into ``key``."""

    stream: StreamName
    version: int
    #: The merged chunk, or None when there was nothing to merge or another writer took its
    #: key first (run it again).
    key: str | None
    #: Chunks whose events the merged chunk holds.
    merged: int
    events: int
    requests: RequestCounts


@attrs.frozen
class Erasure:
    """What an erasure did: the redacted merged chunk, and how many chunks it erased.

    ``key`` is None when the stream has no chunk, or when another writer took the merged
    chunk's key first (run it again).
    """

    stream: StreamName
    version: int
    key: str | None
    erased: int
    requests: RequestCounts


@attrs.frozen
class Deletion:
    """What a deletion did: the tombstone's version (0: no such stream) and chunks deleted."""

    stream: StreamName
    version: int
    deleted: int
    requests: RequestCounts


@attrs.frozen
class Appended(Generic[S, E]):
    """What an append stored: the new state and version, and the events with their ids."""

    loaded: Loaded[S]
    recorded: tuple[RecordedEvent[E], ...]
    #: True when the PUT's answer was lost and the chunk was found to be ours afterwards.
    recovered: bool


class Repository(Generic[S, C, E]):
    """Loads and appends to the streams of one aggregate type.

    ``load`` reads the latest chunk alone and takes the state from its snapshot. When that
    snapshot was written under another ``SNAPSHOT_SCHEMA`` (or cannot be read), it replays every
    event instead and stores a re-snapshotted chunk, so the next load is cheap again.
    """

    def __init__(
        self, event_store: EventStore, aggregate: type[Aggregate[S, C, E]] | Aggregate[S, C, E]
    ) -> None:
        self.event_store = event_store
        self.aggregate: Aggregate[S, C, E] = (
            aggregate() if isinstance(aggregate, type) else aggregate
        )
        self._codec = AggregateCodec(self.aggregate)

    def stream(self, stream_id: str) -> StreamName:
        """The name of the stream with ``stream_id`` of this aggregate's type (validated)."""
        return StreamName(type=self._codec.stream_type, id=stream_id)

    def load(self, stream_id: str) -> Loaded[S]:
        """The current state of the stream: one LIST and one GET while its snapshot is usable.

        A stream with no chunks loads as the initial state at version 0; a deleted one raises
        StreamDeleted.
        """
        stream = self.stream(stream_id)
        latest = self.event_store.latest(stream)
        if latest is None:
            return Loaded(stream, 0, self.aggregate.initial_state())
        if latest.deleted:
            raise StreamDeleted(stream, latest.version)
        state, reason = self._codec.state_from(latest.snapshot)
        if state is not None:
            return Loaded(stream, latest.version, state)
        _log.info("replay_fallback", stream=str(stream), version=latest.version, reason=reason)
        loaded, last = self._fold(stream, self.aggregate.initial_state(), 0)
        if last is not None:
            self._resnapshot(last, loaded)
        return loaded

    def _resnapshot(self, last: Chunk, loaded: Loaded[S]) -> None:
        """Store ``last`` again with a snapshot of ``loaded``, where that helps and is safe."""
        stream = str(loaded.stream)
        if last.snapshot is not None and last.snapshot.schema > self._codec.snapshot_schema:
            # Never overwrite a newer schema's snapshot: during a rolling deploy the newer code
            # would replay and re-snapshot again, back and forth.
            _log.info("rewrite_skipped", stream=stream, reason="newer snapshot schema")
            return
        snapshot = self._codec.snapshot(loaded.state, loaded.version)
        _, reason = self._codec.state_from(snapshot)
        if reason:
            # Writing it would make every load replay and write again.
            _log.warning("rewrite_skipped", stream=stream, reason=f"unreadable snapshot: {reason}")
            return
        try:
            self.event_store.rewrite(last, snapshot)
        except ObjectStoreError as error:  # a reader may not be allowed to write
            _log.warning("rewrite_failed", stream=stream, error=str(error))

    def compact(self, stream_id: str) -> Compaction:
        """Merge the stream's chunks into one chunk holding every event and a fresh snapshot.

        A full replay then reads one chunk (plus any appended after it) instead of one per
        version. The merged chunk is the next chunk number of the latest version, written
        put-if-absent, so appends racing the compaction are never in its way and see no
        change. Nothing is deleted: each version's chunk 0 is the lock that makes a writer
        with an old expected version fail rather than store that version a second time.
        Safe to re-run; a stream already in one chunk is left as it is.
        """
        stream = self.stream(stream_id)
        with measure_requests() as meter:
            chunks = list(self.event_store.chunks(stream))
            version = chunks[-1].version if chunks else 0
            if len(chunks) <= 1:
                merged = None
            else:
                folded = self._applied(Loaded(stream, 0, self.aggregate.initial_state()), chunks)
                merged = self.event_store.merge(chunks, self._codec.snapshot(folded.state, version))
        key = (
            None
            if merged is None
            else self.event_store.keys.chunk_key(stream, merged.version, merged.chunk)
        )
        return Compaction(
            stream=stream,
            version=version,
            key=key,
            merged=len(chunks) if merged is not None else 0,
            events=len(merged.events) if merged is not None else 0,
            requests=meter.counts,
        )

    def delete(self, stream_id: str) -> Deletion:
        """Delete the stream: a tombstone as its next version, then its chunks below it.

        Once the tombstone is stored, loads, reads and appends of the stream raise
        StreamDeleted, and a writer that appends at the tombstone's version loses to it. Safe
        to run while others append (a lost race is retried) and to run again: a second run
        deletes what the first did not, such as a chunk stored below the tombstone by a writer
        whose version predates the deletion. A stream with no chunks is left as it is.
        """
        stream = self.stream(stream_id)
        with measure_requests() as meter:
            tombstone, lost = 0, None
            for _ in range(_DELETE_ATTEMPTS):
                latest = self.event_store.latest(stream)
                if latest is None:
                    break
                if latest.deleted:
                    tombstone = latest.version
                    break
                try:
                    tombstone = self.event_store.delete(
                        stream, expected_version=latest.version
                    ).version
                    break
                except ConcurrencyError as conflict:
                    lost = conflict  # another writer appended: delete from its version on
            else:
                assert lost is not None  # noqa: S101 - every attempt that did not break lost
                raise RetriesExhausted(stream, _DELETE_ATTEMPTS, lost)
            swept = self.event_store.sweep(stream, tombstone) if tombstone else 0
        return Deletion(stream=stream, version=tombstone, deleted=swept, requests=meter.counts)

    def erase(self, stream_id: str, redact: Callable[[E], E]) -> Erasure:
        """Rewrite the stream with ``redact`` applied to every event, and erase the originals.

        A merged chunk (as compaction writes) takes every event through ``redact`` (which
        returns the event without the data to erase) and a snapshot folded from the redacted
        events; then every chunk it stands for is replaced, conditionally on its ETag, by an
        erased chunk that keeps the key (each version's lock) and nothing else. Event ids,
        versions and metadata are kept. Safe to re-run, and needed again if a writer appended
        from a state it held from before (its snapshot would carry the data again).
        """
        stream = self.stream(stream_id)
        with measure_requests() as meter:
            chunks = list(self.event_store.chunks(stream))
            merged = None
            if chunks:
                redacted = [self._redacted(chunk, redact) for chunk in chunks]
                folded = self._applied(Loaded(stream, 0, self.aggregate.initial_state()), redacted)
                snapshot = self._codec.snapshot(folded.state, folded.version)
                merged = self.event_store.merge(redacted, snapshot)
            erased = self.event_store.erase_below(merged) if merged is not None else 0
        key = (
            None
            if merged is None
            else self.event_store.keys.chunk_key(stream, merged.version, merged.chunk)
        )
        version = chunks[-1].version if chunks else 0
        return Erasure(
            stream=stream, version=version, key=key, erased=erased, requests=meter.counts
        )

    def _redacted(self, chunk: Chunk, redact: Callable[[E], E]) -> Chunk:
        """``chunk`` with each event replaced by ``redact(event)``, stored at its schema."""
        records = []
        for record, recorded in zip(chunk.events, self._recorded(chunk), strict=True):
            name, data = self._codec.encode_event(redact(recorded.event), chunk.stream)
            records.append(
                attrs.evolve(record, type=name, data=data, schema=self._codec.event_schema(name))
            )
        return attrs.evolve(chunk, events=tuple(records))

    def replay(self, stream_id: str) -> Loaded[S]:
        """The state folded from every event of the stream, ignoring snapshots. Writes nothing."""
        stream = self.stream(stream_id)
        loaded, _ = self._fold(stream, self.aggregate.initial_state(), 0)
        return loaded

    def read(self, stream_id: str, *, after_version: int = 0) -> Iterator[RecordedEvent[E]]:
        """The events of the stream stored after ``after_version``, in order."""
        stream = self.stream(stream_id)
        for chunk in self.event_store.chunks(stream, after_version=after_version):
            yield from self._recorded(chunk)

    def _recorded(self, chunk: Chunk) -> Iterator[RecordedEvent[E]]:
        key = self.event_store.keys.chunk_key(chunk.stream, chunk.version, chunk.chunk)
        return self._codec.recorded(chunk, key)

    def _evolve(self, state: S, events: Iterable[E]) -> S:
        return functools.reduce(self.aggregate.evolve, events, state)

    def _applied(self, loaded: Loaded[S], chunks: Iterable[Chunk]) -> Loaded[S]:
        """``loaded`` with the events of ``chunks``, the ones that follow it, applied in order."""
        state, version = loaded.state, loaded.version
        for chunk in chunks:
            state = self._evolve(state, (recorded.event for recorded in self._recorded(chunk)))
            version = chunk.version
        return Loaded(loaded.stream, version, state)

    def _fold(self, stream: StreamName, state: S, version: int) -> tuple[Loaded[S], Chunk | None]:
        """The state after reading the chunks after ``version``, and the last chunk read."""
        chunks = list(self.event_store.chunks(stream, after_version=version))
        folded = self._applied(Loaded(stream, version, state), chunks)
        return folded, (chunks[-1] if chunks else None)

    def append(
        self,
        loaded: Loaded[S],
        events: Sequence[E],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> Appended[S, E]:
        """Store ``events`` as the next version after ``loaded``, with a snapshot of the result.

        Raises ConcurrencyError if the stream is no longer at ``loaded.version``.
        """
        stream = loaded.stream
        events = tuple(events)  # read twice below: a generator would be empty the second time
        records = []
        for event in events:
            name, data = self._codec.encode_event(event, stream)
            schema = self._codec.event_schema(name)
            records.append(self.event_store.new_event(name, data, metadata, schema=schema))
        state = self._evolve(loaded.state, events)
        result = self.event_store.append(
            stream,
            records,
            expected_version=loaded.version,
            snapshot=self._codec.snapshot(state, loaded.version + 1),
        )
        recorded = tuple(
            RecordedEvent(
                stream=stream,
                version=result.version,
                id=record.id,
                type=record.type,
                event=event,
                metadata=record.metadata,
                recorded_at=record.recorded_at,
            )
            for record, event in zip(result.events, events, strict=True)
        )
        return Appended(Loaded(stream, result.version, state), recorded, result.recovered)

    def catch_up(self, loaded: Loaded[S], conflict: ConcurrencyError | None = None) -> Loaded[S]:
        """``loaded`` brought forward by the events stored after it.

        If ``conflict`` carries the chunk that won the contested version, that chunk alone is
        applied: no request at all. Otherwise the chunks after ``loaded.version`` are read.
        """
        found = conflict.found if isinstance(conflict, StreamConflict) else None
        if found is not None and found.deleted:
            raise StreamDeleted(loaded.stream, found.version)
        if found is not None and not found.erased and found.base_version == loaded.version:
            return self._applied(loaded, [found])
        caught_up, _ = self._fold(loaded.stream, loaded.state, loaded.version)
        return caught_up
