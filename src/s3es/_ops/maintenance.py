"""Maintenance of streams: compaction, deletion, erasure, and the repair of fence gaps.

Each is built on the event store's primitives (read the chain, commit a version, store a chunk
beside a version's chunk 0, replace a chunk conditionally, remove one) and on the repository's
fold, so the write path knows nothing of them. Each is safe to run while writers append, and to
run again after it was stopped half-way.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import attrs

from s3es._base.logging import get_logger
from s3es._domain.aggregate import E
from s3es._domain.repository import (
    Loaded,
    Repository,
    events_of,
    fold,
    initial_of,
    snapshot_of,
)
from s3es._eventstore.chain import newest_of_each_version, walk_chain
from s3es._eventstore.chunk import Chunk, Snapshot
from s3es._eventstore.links import BreakReason, ChainBreak, is_fence, version_below
from s3es._eventstore.store import EventStore, StreamConflict
from s3es._storage.keys import FIRST_CHUNK, ChunkKey, StreamName
from s3es._storage.metering import RequestCounts, measure_requests
from s3es.errors import (
    ConcurrencyError,
    ObjectAlreadyExists,
    ObjectChanged,
    ObjectStoreError,
    RetriesExhausted,
    StreamDeleted,
)

_log = get_logger("s3es.maintenance")

#: Rounds of tombstones a deletion sends before it gives up, and the most in one round.
_DELETE_ROUNDS = 10
_MAX_TOMBSTONES = 64
#: Requests a deletion's tombstones and sweep, or an erasure, send at once.
_CONCURRENCY = 16
#: How often a sweep reads a chunk 0 again that changed before it could be fenced.
_FENCE_ATTEMPTS = 5

T = TypeVar("T")
R = TypeVar("R")


@attrs.frozen
class Compaction:
    """What :func:`compact` did: the stream's chunks up to ``version`` merged into ``key``.

    Attributes:
        stream: The stream compacted.
        version: Its latest version when the compaction read it (0: no chunk).
        key: The merged chunk, or None when there was nothing to merge or another writer took
            its key first (run it again).
        merged: Chunks whose events the merged chunk holds.
        events: Events in the merged chunk.
        requests: The requests the compaction sent.
    """

    stream: StreamName
    version: int
    key: str | None
    #: Chunks whose events the merged chunk holds.
    merged: int
    events: int
    requests: RequestCounts


@attrs.frozen
class Erasure:
    """What :func:`erase` did: the redacted merged chunk, its fence, and the chunks it erased.

    Attributes:
        stream: The stream erased.
        version: The version the redacted merged chunk stands for.
        key: The merged chunk; None when the stream has no chunk, or when another writer (or
            erasure) took the merged chunk's key first (run it again).
        erased: Chunks replaced by erased ones.
        requests: The requests the erasure sent.
        fence: The version of the fence committed above the merged chunk (0: none).

    .. versionchanged:: 0.2  ``fence``.
    """

    stream: StreamName
    version: int
    key: str | None
    erased: int
    requests: RequestCounts
    fence: int = 0


@attrs.frozen
class Repair:
    """What :func:`repair` found and did: the versions missing below an erasure's fences.

    Attributes:
        stream: The stream repaired.
        missing: The versions missing below an erasure's fences, lowest first.
        plugged: Those it stored a fence at; a missing version that is not among them was
            taken by a writer (or another repair) first, which mends it as well. A dry run
            plugs none.
        requests: The requests the repair sent.

    .. versionadded:: 0.2
    """

    stream: StreamName
    missing: tuple[int, ...]
    plugged: tuple[int, ...]
    requests: RequestCounts


@attrs.frozen
class Deletion:
    """What :func:`delete` did: the tombstone's version and the chunks that lost their content.

    Attributes:
        stream: The stream deleted.
        version: The tombstone's version (0: no such stream).
        deleted: Chunks fenced or deleted below (or above) the tombstone.
        requests: The requests the deletion sent.
    """

    stream: StreamName
    version: int
    deleted: int
    requests: RequestCounts


def compact(repository: Repository[Any, Any, Any], stream_id: str) -> Compaction:
    """Merge the stream's chunks into one chunk holding every event and a fresh snapshot.

    A full replay then reads one chunk (plus any appended after it) instead of one per
    version. The merged chunk is the next chunk number of the latest version, written
    put-if-absent, so appends racing the compaction are never in its way. Nothing is deleted:
    each version's chunk 0 stays the lock that fails a writer with an old expected version.
    Safe to re-run; a stream already in one chunk is left as it is. Costs and the reasons:
    docs/operations.md, "Compaction".

    Args:
        repository: The repository of the stream's aggregate.
        stream_id: The stream to compact.

    Returns:
        What was merged, and the requests sent.

    Raises:
        InvalidStreamName: ``stream_id`` cannot be stored safely; nothing was sent.
        StreamDeleted: The stream was deleted.
        CorruptChunk: A chunk of the stream cannot be read, or a version is missing.
        ChunkTooLarge: The merged chunk would be larger than the event store's
            ``max_chunk_bytes``; it was not sent.
        ObjectStoreError: The store failed.
    """
    stream = repository.stream(stream_id)
    with measure_requests() as meter:
        chunks = list(repository.event_store.chunks(stream))
        version = chunks[-1].version if chunks else 0
        merged = None
        if len(chunks) > 1:
            folded = fold(repository, initial_of(repository, stream), chunks)
            snapshot = snapshot_of(repository, folded, version)
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
    """Delete the stream: tombstones from its next version on, then fences below them.

    A tombstone (a chunk with no event, ``deleted``) is stored put-if-absent after the latest
    version, in rounds that double (at most 64 at once) while writers take the versions, so
    the deletion overtakes writers that append back to back. Then each version below it is
    fenced: its chunk 0 replaced (If-Match) by a tombstone of that version, its other chunks
    deleted, up to 16 requests at once. Loads, reads and appends raise StreamDeleted from the
    first tombstone on; a stale writer loses its PUT to a fence. Safe to run again: a second run
    fences what the first did not. Why fences, and what it costs: docs/operations.md,
    "Deleting a stream".

    Args:
        repository: The repository of the stream's aggregate.
        stream_id: The stream to delete.

    Returns:
        The tombstone's version (0: the stream has no chunk, left as it is), the chunks that
        lost their content, and the requests sent.

    Raises:
        InvalidStreamName: ``stream_id`` cannot be stored safely; nothing was sent.
        RetriesExhausted: Writers took every version of 10 rounds of tombstones.
        ObjectChanged: A chunk 0 changed 5 times between being read and being fenced
            (run it again).
        ObjectStoreError: The store failed (what was stored is kept: run it again).
    """
    event_store = repository.event_store
    stream = repository.stream(stream_id)
    with measure_requests() as meter:
        top = _bury(event_store, stream)
        swept = _sweep(event_store, top) if top is not None else 0
    version = 0 if top is None else top.version
    return Deletion(stream=stream, version=version, deleted=swept, requests=meter.counts)


def erase(repository: Repository[Any, Any, E], stream_id: str, redact: Callable[[E], E]) -> Erasure:
    """Rewrite the stream with ``redact`` applied to every event, fence it, erase the originals.

    A merged chunk (as :func:`compact` writes) holds every event through ``redact`` and a
    snapshot folded from the redacted events. A fence (a chunk with no event whose snapshot is
    the redacted state) is then committed at the next version, in rounds that double as a
    deletion's tombstones do, so a writer holding an older state loses its PUT and decides again
    on the redacted one. Chunks writers stored meanwhile are redacted and merged in; last, every
    chunk the merged chunk stands for is replaced (If-Match) by an erased chunk that keeps its
    key and nothing else, 16 at once. Event ids, versions and metadata are kept. Safe to re-run;
    a round cut short leaves a fence gap that readers skip (see :func:`repair`). The full
    argument: docs/operations.md, "Erasing personal data".

    Args:
        repository: The repository of the stream's aggregate.
        stream_id: The stream to erase.
        redact: Returns an event without the data to erase; called on every event.

    Returns:
        The merged chunk, its fence, the chunks erased, and the requests sent.

    Raises:
        InvalidStreamName: ``stream_id`` cannot be stored safely; nothing was sent.
        StreamDeleted: The stream is (or gets) deleted.
        RetriesExhausted: Writers took every version of 10 rounds of fences.
        CorruptChunk: A chunk of the stream cannot be read, or a version is missing.
        ChunkTooLarge: The merged chunk would be larger than ``max_chunk_bytes``.
        ObjectStoreError: The store failed (run it again).

    .. versionchanged:: 0.2  The fence: a stale writer no longer stores the erased data again.
    """
    event_store = repository.event_store
    stream = repository.stream(stream_id)
    with measure_requests() as meter:
        chunks = list(event_store.chunks(stream))
        merged, fence, erased = None, 0, 0
        if chunks:
            redacted = [_redacted(repository, chunk, redact) for chunk in chunks]
            folded = fold(repository, initial_of(repository, stream), redacted)
            snapshot = snapshot_of(repository, folded)
            merged = _merge(event_store, redacted, snapshot)
            if merged is not None:
                fenced = _fence_erasure(repository, redact, folded)
                if fenced is None:
                    merged = None  # another erasure fenced the stream: run it again
                else:
                    fence, came, folded = fenced
                    if came:
                        # Writers stored these between the merge and the fence: merge them in.
                        snapshot = snapshot_of(repository, folded)
                        merged = _merge(event_store, [*redacted, *came], snapshot)
            erased = _erase_below(event_store, merged) if merged is not None else 0
    return Erasure(
        stream=stream,
        version=merged.version if merged is not None else (chunks[-1].version if chunks else 0),
        key=_key_of(event_store, merged),
        erased=erased,
        requests=meter.counts,
        fence=fence,
    )


def repair(
    repository: Repository[Any, Any, Any], stream_id: str, *, dry_run: bool = False
) -> Repair:
    """Store a fence at each version missing below an erasure's fences: mend a fence gap.

    An erasure sends a round of fences at once (see :func:`erase`); if a lower fence's PUT
    fails, or the erasure's process stops, its version stays missing and reads take the stream
    as ending below it. This stores, from the lowest missing version up, the fence that should
    be there (put-if-absent, no event, no snapshot), so the stream reads through its fences
    again. One LIST per 1,000 chunks, one GET per chunk of the chain, one PUT per missing
    version. Other damage is left to :func:`~s3es.ops.verify_stream` to name.

    Args:
        repository: The repository of the stream's aggregate.
        stream_id: The stream to repair.
        dry_run: Only find the missing versions; write nothing.

    Returns:
        What was missing, and the versions a fence was stored at.

    Raises:
        InvalidStreamName: ``stream_id`` cannot be stored safely; nothing was sent.
        CorruptChunk: A chunk of the chain cannot be read.
        ObjectStoreError: The store failed (a fence stored before it is kept: run it again).

    .. versionadded:: 0.2
    """
    event_store = repository.event_store
    stream = repository.stream(stream_id)
    with measure_requests() as meter:
        missing = _fence_gaps(event_store, stream)
        plugged = []
        repair_id = event_store.new_id()
        for version in [] if dry_run else missing:
            conflict = _try_commit(event_store, _erasure_fence(stream, version, repair_id, None))
            if conflict is None:
                plugged.append(version)
            else:
                _log.info("gap_taken", stream=str(stream), version=version)
    if missing:
        _log.info("repaired", stream=str(stream), missing=missing, plugged=plugged)
    return Repair(stream, tuple(missing), tuple(plugged), meter.counts)


def _fence_gaps(event_store: EventStore, stream: StreamName) -> list[int]:
    """The versions missing below an erasure's fences in ``stream``'s chain, lowest first."""
    newest = newest_of_each_version(event_store.listing(stream))

    def read(where: ChunkKey) -> Chunk:
        found = event_store.read(where)
        if found is None:
            raise ObjectStoreError("GET", where.key, "listed, then gone before it was read")
        return found[0]

    missing: list[int] = []
    for step in walk_chain(newest, read):
        if isinstance(step, ChainBreak) and step.reason is BreakReason.FENCE_GAP:
            missing += range(version_below(newest, step.version) + 1, step.version + 1)
    return sorted(missing)


def _erasure_fence(
    stream: StreamName, version: int, erasure_id: str, snapshot: Snapshot | None
) -> Chunk:
    """An erasure's fence at ``version``: no event, ``snapshot`` the state if it is known."""
    return Chunk(
        stream=stream,
        version=version,
        number=FIRST_CHUNK,
        base_version=version - 1,
        append_id=erasure_id,
        events=(),
        snapshot=snapshot,
        rebased=True,
    )


def _fence_erasure(
    repository: Repository[Any, Any, E], redact: Callable[[E], E], folded: Loaded[Any]
) -> tuple[int, list[Chunk], Loaded[Any]] | None:
    """Commit the erasure's fence above ``folded`` (the redacted stream's state), in rounds.

    Returns the fence's version, the chunks writers stored between ``folded``'s version and
    the fence (redacted), and the redacted state below the fence; None if another erasure's
    fence or erased chunk was met (run the erasure again). See :func:`erase`.
    """
    event_store = repository.event_store
    stream = folded.stream
    erasure_id = event_store.new_id()
    window, came = 1, []
    log = _log.bind(stream=str(stream))
    lost: ConcurrencyError | None = None
    for round_ in range(1, _DELETE_ROUNDS + 1):
        versions = range(folded.version + 1, folded.version + window + 1)
        fences = [
            _erasure_fence(
                stream,
                version,
                erasure_id,
                snapshot_of(repository, folded, version) if version == versions[0] else None,
            )
            for version in versions
        ]
        outcomes = _each(lambda fence: _try_commit(event_store, fence), fences)
        won = [fence for fence, outcome in zip(fences, outcomes, strict=True) if not outcome]
        lowest = won[0].version if won else versions[-1] + 1
        for conflict in outcomes:
            if conflict is None or conflict.expected_version + 1 > lowest:
                continue  # ours, or a writer's above our fence: it caught up through it
            found = conflict.found
            if found is None or found.deleted:
                raise StreamDeleted(stream, conflict.actual_version)
            if found.rebased or found.erased:
                log.info("fence_met_another_erasure", version=found.version, round=round_)
                return None
            chunk = _redacted(repository, found, redact)
            came.append(chunk)
            folded = fold(repository, folded, [chunk])
            lost = conflict
        if won:
            _resnapshot_fence(
                event_store, functools.partial(snapshot_of, repository), folded, won, versions[-1]
            )
            log.info("fenced", version=lowest, round=round_, sent=window, writers=len(came))
            return lowest, came, folded
        window = min(2 * window, _MAX_TOMBSTONES)
        log.debug("fences_lost", round=round_, stored=folded.version, next_window=window)
    assert lost is not None  # noqa: S101 - every round that did not return lost
    raise RetriesExhausted(stream, _DELETE_ROUNDS, lost)


def _resnapshot_fence(
    event_store: EventStore,
    snapshot: Callable[[Loaded[Any], int], Snapshot],
    folded: Loaded[Any],
    won: Sequence[Chunk],
    top: int,
) -> None:
    """Give the top fence of a round a snapshot, if ours runs unbroken to it and has none.

    Fences above a round's lowest carry no snapshot; if they run unbroken from the lowest to
    the round's top, nobody stored a version among them, so the state at the top is
    ``folded``'s: stored as the top fence's chunk 1, loads take it instead of replaying.
    It is only that shortcut (a load replays without it, and stores it then), so a PUT that
    fails is logged, not raised: the erasure goes on to erase the chunks it merged.
    """
    versions = [fence.version for fence in won]
    last = won[-1]
    if last.snapshot is not None or last.version != top:
        return
    if versions != list(range(versions[0], top + 1)):
        return  # a writer stored a version among ours: a load replays and re-snapshots
    resnapshot = attrs.evolve(last, number=last.number + 1, snapshot=snapshot(folded, top))
    try:
        event_store.store(resnapshot)
    except ObjectAlreadyExists:
        _log.debug("fence_resnapshot_lost", stream=str(last.stream), version=top)
    except ObjectStoreError as error:  # stored or not, what a load finds there is right
        _log.warning(
            "fence_resnapshot_failed", stream=str(last.stream), version=top, error=str(error)
        )


def _key_of(event_store: EventStore, chunk: Chunk | None) -> str | None:
    return (
        None
        if chunk is None
        else event_store.keys.chunk_key(chunk.stream, chunk.version, chunk.number)
    )


def _tombstone(stream: StreamName, version: int, deletion_id: str) -> Chunk:
    """The tombstone (or fence) at ``version`` of a deletion whose append id is ``deletion_id``."""
    return Chunk(
        stream=stream,
        version=version,
        number=FIRST_CHUNK,
        base_version=version - 1,
        append_id=deletion_id,
        events=(),
        snapshot=None,
        deleted=True,
    )


def _bury(event_store: EventStore, stream: StreamName) -> Chunk | None:
    """Store the stream's tombstone, overtaking writers; return it (None: no such stream).

    See :func:`delete`. A tombstone found at the top (a deletion ran before, or runs beside
    this one) is returned as it is.
    """
    latest = event_store.latest(stream)
    if latest is None or latest.deleted:
        return latest
    if is_fence(latest):
        buried = _tombstone_below_fences(event_store, latest)
        if buried is not None:
            return buried
    deletion_id = event_store.new_id()
    stored, window = latest.version, 1
    log = _log.bind(stream=str(stream))
    lost: ConcurrencyError | None = None
    for round_ in range(1, _DELETE_ROUNDS + 1):
        versions = range(stored + 1, stored + window + 1)
        outcomes = _each(
            lambda version: _try_commit(event_store, _tombstone(stream, version, deletion_id)),
            versions,
        )
        won = [version for version, outcome in zip(versions, outcomes, strict=True) if not outcome]
        conflicts = [outcome for outcome in outcomes if outcome is not None]
        if won:
            log.info("tombstone", version=won[-1], lowest=won[0], round=round_, sent=window)
            return _tombstone(stream, won[-1], deletion_id)
        if any(c.found is None or c.found.deleted for c in conflicts):
            # Another deletion's tombstone (or its sweep) got there first: the stream is gone.
            log.info("deleted_by_another", round=round_)
            return event_store.latest(stream)
        lost = conflicts[-1]
        stored, window = versions[-1], min(2 * window, _MAX_TOMBSTONES)
        log.debug("tombstones_lost", round=round_, stored=stored, next_window=window)
    assert lost is not None  # noqa: S101 - every round that did not return lost
    raise RetriesExhausted(stream, _DELETE_ROUNDS, lost)


def _tombstone_below_fences(event_store: EventStore, fence: Chunk) -> Chunk | None:
    """The tombstone below the erasure's fences at the top of the stream, if there is one.

    An erasure's round sends fences at once, blind: a deletion's tombstone can take its lower
    version and a fence the one above. The stream reads as deleted (a read walking down from
    the fence meets the tombstone); the walk down the fences of one round (64 at most) finds
    it. None if the stream is not deleted.
    """
    stream = fence.stream
    try:
        for _ in event_store.chunks(
            stream, after_version=max(0, fence.version - 2 * _MAX_TOMBSTONES)
        ):
            return None  # a chunk: the stream reads, it is not deleted
    except StreamDeleted as gone:
        key = event_store.keys.chunk_key(stream, gone.version)
        found = event_store.read(ChunkKey(stream, gone.version, FIRST_CHUNK, key))
        if found is not None and found[0].deleted:
            return found[0]
    return None


def _try_commit(event_store: EventStore, chunk: Chunk) -> StreamConflict | None:
    """Commit ``chunk``: None if it is stored (ours), else the conflict that names the winner."""
    try:
        event_store.commit(chunk)
    except StreamConflict as conflict:
        return conflict
    return None


def _each(function: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``function`` of each of ``items``, up to ``_CONCURRENCY`` at once; results in order.

    Each call runs in a copy of the caller's context, so request meters and log context
    see it. The first exception raised is raised here, once every call has ended.
    """
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(_CONCURRENCY, len(items))) as pool:
        futures = [pool.submit(contextvars.copy_context().run, function, item) for item in items]
        return [future.result() for future in futures]


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
    # Each chunk names its commands' events by index into its own events: into the merged
    # events, they move by the events of the chunks before it.
    commands: dict[str, tuple[int, int]] = {}
    offset = 0
    for chunk in chunks:
        for command_id, (start, stop) in chunk.commands.items():
            commands[command_id] = (offset + start, offset + stop)
        offset += len(chunk.events)
    merged = attrs.evolve(
        last,
        number=last.number + 1,
        base_version=0,
        events=events,
        snapshot=snapshot,
        rebased=False,
        commands=commands,
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
    for record, recorded in zip(chunk.events, events_of(repository, chunk), strict=True):
        name, data = codec.encode_event(redact(recorded.event), chunk.stream)
        records.append(attrs.evolve(record, type=name, data=data, schema=codec.event_schema(name)))
    return attrs.evolve(chunk, events=tuple(records))


def _erase_below(event_store: EventStore, merged: Chunk) -> int:
    """Replace every chunk that ``merged`` stands for with an erased one; return how many.

    That is each chunk of an older version, and each lower chunk number of its own. The
    keys stay (chunk 0 of each version is that version's lock); only their content goes.
    Each replacement is conditional on the ETag just read, so a chunk that changed
    meanwhile is left to the next run. Up to 16 chunks are read and replaced at once. Safe
    to re-run.
    """
    stream = merged.stream
    below = [
        where
        for where in event_store.listing(stream)
        if (where.version, where.number) < (merged.version, merged.number)
    ]

    def erase_one(where: ChunkKey) -> bool:
        found = event_store.read(where)
        if found is None or found[0].erased:
            return False
        chunk, etag = found
        try:
            event_store.replace(
                attrs.evolve(
                    chunk, events=(), snapshot=None, erased=True, rebased=False, commands={}
                ),
                etag=etag,
            )
        except ObjectChanged:
            _log.info("erase_skipped", stream=str(stream), key=where.key, reason="changed")
            return False
        return True

    erased = sum(_each(erase_one, below))
    _log.info("erased", stream=str(stream), version=merged.version, erased=erased)
    return erased


def _sweep(event_store: EventStore, tombstone: Chunk) -> int:
    """Fence every version below ``tombstone``; return how many chunks lost their content.

    And every one above it: only an erasure's fences, sent blind, can be there. Chunk 0 of
    each version becomes a fence (a tombstone of that version, same key); a
    version without a chunk 0 gets one, put-if-absent; every other chunk is deleted. A
    fence is replaced only if the chunk read is not one already, conditionally on its ETag
    (a chunk that changed meanwhile is read again). Safe to re-run.
    """
    stream = tombstone.stream
    listed = list(event_store.listing(stream))
    below = [where for where in listed if where.version < tombstone.version]
    # An erasure's fences stored blind above the tombstone (see _tombstone_below_fences).
    below += [where for where in listed if where.version > tombstone.version]
    first = {where.version: where for where in below if where.number == FIRST_CHUNK}
    holes = [
        ChunkKey(stream, version, FIRST_CHUNK, event_store.keys.chunk_key(stream, version))
        for version in range(1, tombstone.version)
        if version not in first
    ]

    def sweep_one(where: ChunkKey) -> bool:
        if where.number != FIRST_CHUNK:
            event_store.remove(where)
            return True
        return _fence(event_store, where, tombstone.append_id)

    swept = sum(_each(sweep_one, [*below, *holes]))
    _log.info("swept", stream=str(stream), version=tombstone.version, swept=swept)
    return swept


def _fence(event_store: EventStore, where: ChunkKey, deletion_id: str) -> bool:
    """Make chunk 0 at ``where`` a fence; whether its content went (False: a fence already)."""
    fence = _tombstone(where.stream, where.version, deletion_id)
    for _ in range(_FENCE_ATTEMPTS):
        found = event_store.read(where)
        try:
            if found is None:
                event_store.store(fence)  # a hole, or a chunk 0 another sweep removed
                return False
            chunk, etag = found
            if chunk.deleted:
                return False
            event_store.replace(fence, etag=etag)
        except (ObjectAlreadyExists, ObjectChanged):
            continue  # it changed between our GET and PUT: read it again
        return True
    raise ObjectChanged(where.key)  # it changed _FENCE_ATTEMPTS times while being fenced
