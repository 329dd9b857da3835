"""Maintenance of streams: compaction, deletion and erasure.

Each is built on the event store's primitives (read the chain, commit a version, store a chunk
beside a version's chunk 0, replace a chunk conditionally, remove one) and on the repository's
fold, so the write path knows nothing of them. Each is safe to run while writers append, and to
run again after it was stopped half-way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from s3es._base.logging import get_logger
from s3es._domain.aggregate import E
from s3es._domain.repository import Repository
from s3es._eventstore.chunk import Chunk, Snapshot
from s3es._eventstore.store import EventStore
from s3es._storage.keys import FIRST_CHUNK, StreamName
from s3es._storage.metering import RequestCounts, measure_requests
from s3es.errors import ConcurrencyError, ObjectAlreadyExists, ObjectChanged, RetriesExhausted

_log = get_logger("s3es.maintenance")

#: How often a deletion reads the stream again after losing its tombstone's version.
_DELETE_ATTEMPTS = 10


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


def compact(repository: Repository[Any, Any, Any], stream_id: str) -> Compaction:
    """Merge the stream's chunks into one chunk holding every event and a fresh snapshot.

    A full replay then reads one chunk (plus any appended after it) instead of one per
    version. The merged chunk is the next chunk number of the latest version, written
    put-if-absent, so appends racing the compaction are never in its way and see no
    change. Nothing is deleted: each version's chunk 0 is the lock that makes a writer
    with an old expected version fail rather than store that version a second time.
    Safe to re-run; a stream already in one chunk is left as it is.
    """
    stream = repository.stream(stream_id)
    with measure_requests() as meter:
        chunks = list(repository.event_store.chunks(stream))
        version = chunks[-1].version if chunks else 0
        merged = None
        if len(chunks) > 1:
            folded = repository.fold(repository.initial(stream), chunks)
            snapshot = repository.codec.snapshot(folded.state, version)
            merged = _merge(repository.event_store, chunks, snapshot)
    return Compaction(
        stream=stream,
        version=version,
        key=_key_of(repository.event_store, merged),
        merged=len(chunks) if merged is not None else 0,
        events=len(merged.events) if merged is not None else 0,
        requests=meter.counts,
    )


def delete(repository: Repository[Any, Any, Any], stream_id: str) -> Deletion:
    """Delete the stream: a tombstone as its next version, then its chunks below it.

    Once the tombstone is stored, loads, reads and appends of the stream raise
    StreamDeleted, and a writer that appends at the tombstone's version loses to it. Safe
    to run while others append (a lost race is retried) and to run again: a second run
    deletes what the first did not, such as a chunk stored below the tombstone by a writer
    whose version predates the deletion. A stream with no chunks is left as it is.
    """
    event_store = repository.event_store
    stream = repository.stream(stream_id)
    with measure_requests() as meter:
        tombstone, lost = 0, None
        for _ in range(_DELETE_ATTEMPTS):
            latest = event_store.latest(stream)
            if latest is None:
                break
            if latest.deleted:
                tombstone = latest.version
                break
            try:
                tombstone = event_store.commit(_tombstone(event_store, latest)).version
                break
            except ConcurrencyError as conflict:
                lost = conflict  # another writer appended: delete from its version on
        else:
            assert lost is not None  # noqa: S101 - every attempt that did not break lost
            raise RetriesExhausted(stream, _DELETE_ATTEMPTS, lost)
        swept = _sweep(event_store, stream, tombstone) if tombstone else 0
    return Deletion(stream=stream, version=tombstone, deleted=swept, requests=meter.counts)


def erase(repository: Repository[Any, Any, E], stream_id: str, redact: Callable[[E], E]) -> Erasure:
    """Rewrite the stream with ``redact`` applied to every event, and erase the originals.

    A merged chunk (as compaction writes) takes every event through ``redact`` (which
    returns the event without the data to erase) and a snapshot folded from the redacted
    events; then every chunk it stands for is replaced, conditionally on its ETag, by an
    erased chunk that keeps the key (each version's lock) and nothing else. Event ids,
    versions and metadata are kept. Safe to re-run, and needed again if a writer appended
    from a state it held from before (its snapshot would carry the data again).
    """
    event_store = repository.event_store
    stream = repository.stream(stream_id)
    with measure_requests() as meter:
        chunks = list(event_store.chunks(stream))
        merged = None
        if chunks:
            redacted = [_redacted(repository, chunk, redact) for chunk in chunks]
            folded = repository.fold(repository.initial(stream), redacted)
            snapshot = repository.codec.snapshot(folded.state, folded.version)
            merged = _merge(event_store, redacted, snapshot)
        erased = _erase_below(event_store, merged) if merged is not None else 0
    return Erasure(
        stream=stream,
        version=chunks[-1].version if chunks else 0,
        key=_key_of(event_store, merged),
        erased=erased,
        requests=meter.counts,
    )


def _key_of(event_store: EventStore, chunk: Chunk | None) -> str | None:
    return (
        None
        if chunk is None
        else event_store.keys.chunk_key(chunk.stream, chunk.version, chunk.number)
    )


def _tombstone(event_store: EventStore, latest: Chunk) -> Chunk:
    """The tombstone that deletes the stream whose latest chunk is ``latest``."""
    return Chunk(
        stream=latest.stream,
        version=latest.version + 1,
        number=FIRST_CHUNK,
        base_version=latest.version,
        append_id=event_store.new_id(),
        events=(),
        snapshot=None,
        deleted=True,
    )


def _merge(event_store: EventStore, chunks: Sequence[Chunk], snapshot: Snapshot) -> Chunk | None:
    """Store one chunk holding every event of ``chunks``, with ``snapshot``.

    ``chunks`` are consecutive, from the stream's first version (as ``chunks()`` yields
    them). The merged chunk is the next chunk number of the last one's version, written
    put-if-absent; None if another writer took that chunk number first. Nothing is deleted:
    the chunk 0 of every version stays, as the lock that keeps a stale writer from storing
    that version again. Raises ChunkTooLarge, before any request, if the merged chunk would
    be larger than ``max_chunk_bytes``.
    """
    last = chunks[-1]
    events = tuple(
        attrs.evolve(event, version=event.version or chunk.version)
        for chunk in chunks
        for event in chunk.events
    )
    merged = attrs.evolve(
        last, number=last.number + 1, base_version=0, events=events, snapshot=snapshot
    )
    log = _log.bind(stream=str(last.stream), version=last.version, chunk=merged.number)
    try:
        event_store.store(merged)
    except ObjectAlreadyExists:
        log.info("merge_lost")
        return None
    log.info("merged", events=len(events))
    return merged


def _redacted(repository: Repository[Any, Any, E], chunk: Chunk, redact: Callable[[E], E]) -> Chunk:
    """``chunk`` with each event replaced by ``redact(event)``, stored at its schema."""
    codec = repository.codec
    records = []
    for record, recorded in zip(chunk.events, repository.recorded(chunk), strict=True):
        name, data = codec.encode_event(redact(recorded.event), chunk.stream)
        records.append(attrs.evolve(record, type=name, data=data, schema=codec.event_schema(name)))
    return attrs.evolve(chunk, events=tuple(records))


def _erase_below(event_store: EventStore, merged: Chunk) -> int:
    """Replace every chunk that ``merged`` stands for with an erased one; return how many.

    That is each chunk of an older version, and each lower chunk number of its own. The
    keys stay (chunk 0 of each version is that version's lock); only their content goes.
    Each replacement is conditional on the ETag just read, so a chunk that changed
    meanwhile is left to the next run. Safe to re-run.
    """
    stream = merged.stream
    erased = 0
    for where in event_store.listing(stream):
        if (where.version, where.number) >= (merged.version, merged.number):
            continue
        found = event_store.read(where)
        if found is None or found[0].erased:
            continue
        chunk, etag = found
        try:
            event_store.replace(
                attrs.evolve(chunk, events=(), snapshot=None, erased=True), etag=etag
            )
        except ObjectChanged:
            _log.info("erase_skipped", stream=str(stream), key=where.key, reason="changed")
            continue
        erased += 1
    _log.info("erased", stream=str(stream), version=merged.version, erased=erased)
    return erased


def _sweep(event_store: EventStore, stream: StreamName, tombstone_version: int) -> int:
    """Delete every chunk of ``stream`` below its tombstone; return how many were deleted.

    Safe to re-run: it also removes a chunk that a writer with a stale version stored
    after the stream was deleted.
    """
    doomed = [where for where in event_store.listing(stream) if where.version < tombstone_version]
    for where in doomed:
        event_store.remove(where)
    _log.info("swept", stream=str(stream), version=tombstone_version, deleted=len(doomed))
    return len(doomed)
