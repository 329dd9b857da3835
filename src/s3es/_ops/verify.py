"""Verification of stored streams: every chunk readable, versions gapless, snapshots right.

:func:`verify_stream` reads every chunk of one stream; :func:`verify_prefix` finds the streams
of a prefix (or of one type) and verifies each. Both report what they found as values, and
raise only when the object store fails: a problem in the data is a :class:`VerifyProblem`, naming
the stream and the key, never an exception.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from s3es._base.coerce import as_instance
from s3es._base.logging import get_logger
from s3es._base.progress import Progress
from s3es._domain.aggregate import Aggregate, AggregateCodec
from s3es._eventstore.chain import BreakReason, Link, newest_of_each_version, walk_chain
from s3es._eventstore.chunk import Chunk
from s3es._eventstore.links import version_below
from s3es._eventstore.store import EventStore
from s3es._storage.keys import FIRST_CHUNK, StreamKeys, StreamName
from s3es._storage.metering import RequestCounts, measure_requests
from s3es.errors import CorruptChunk, InvalidStreamName

_log = get_logger("s3es.verify")


@attrs.frozen
class VerifyProblem:
    """Something wrong in the store, found by verification: a value, never raised.

    Attributes:
        stream: The stream; None for a folder that is not one.
        key: The object key (or folder) the problem is in.
        reason: What is wrong, in words.
    """

    stream: StreamName | None
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.stream or 'no stream'}: {self.key}: {self.reason}"


@attrs.frozen
class StoredChunk:
    """One listed key of a stream, and its chunk; ``chunk`` is None if it could not be read."""

    key: str
    version: int
    number: int
    chunk: Chunk | None
    problem: VerifyProblem | None = None


@attrs.frozen
class StreamReport:
    """What :func:`verify_stream` found in one stream; ``ok`` when there is no problem.

    Attributes:
        stream: The stream verified.
        version: The latest version (the tombstone's, for a deleted stream); 0 if there is
            no chunk.
        chunks: Keys listed and read.
        events: The events of the chain a full read follows.
        deleted: Whether the stream is deleted (only its fences were checked).
        snapshot_checked: True when the latest snapshot was compared with a full replay.
        problems: What is wrong, in key order.
        requests: The requests verification sent.
    """

    stream: StreamName
    version: int
    chunks: int
    events: int
    deleted: bool
    snapshot_checked: bool
    problems: tuple[VerifyProblem, ...]
    requests: RequestCounts

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong with the stream."""
        return not self.problems


@attrs.frozen
class VerifyReport:
    """What :func:`verify_prefix` found; ``ok`` when there is no problem, ``summary()`` in a line.

    Attributes:
        streams: One report per stream verified.
        problems: Every problem: the streams', and folders that are not streams.
        requests: The requests verification sent.
    """

    streams: tuple[StreamReport, ...]
    problems: tuple[VerifyProblem, ...]
    requests: RequestCounts

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong anywhere."""
        return not self.problems

    @property
    def chunks(self) -> int:
        """Chunks read, in all streams."""
        return sum(stream.chunks for stream in self.streams)

    @property
    def events(self) -> int:
        """Events in the chains of all streams."""
        return sum(stream.events for stream in self.streams)

    @property
    def snapshots_checked(self) -> int:
        """Streams whose latest snapshot was compared with a full replay."""
        return sum(1 for stream in self.streams if stream.snapshot_checked)

    def summary(self) -> str:
        """One line: streams, chunks and events verified, snapshots compared, problems."""
        verdict = _count(len(self.problems), "problem") if self.problems else "no problem"
        snapshots = self.snapshots_checked
        compared = (
            f" ({_count(snapshots, 'snapshot')} compared with a full replay)" if snapshots else ""
        )
        return (
            f"verified {_count(len(self.streams), 'stream')}, {_count(self.chunks, 'chunk')}, "
            f"{_count(self.events, 'event')}{compared}: {verdict}"
        )


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def read_stored_chunks(event_store: EventStore, stream: StreamName) -> list[StoredChunk]:
    """Every chunk of ``stream``, newest first, each read and decoded (or its problem).

    One LIST per 1,000 keys and one GET per chunk. A key that is not a chunk key, a chunk that
    cannot be read (as :meth:`EventStore.read` refuses it), and one listed but gone before its
    GET are problems, not errors.
    """
    return list(_stored_chunks(event_store, stream))


def _stored_chunks(event_store: EventStore, stream: StreamName) -> Iterator[StoredChunk]:
    """:func:`read_stored_chunks`, one key at a time: a GET only when the next is asked for.

    The keys are listed here rather than by :meth:`EventStore.listing`, which stops at the
    first key that is not a chunk key; verification reports it and reads on.
    """
    for key in event_store.objects.list_keys(event_store.keys.stream_prefix(stream)):
        yield _read(event_store, stream, key)


def _read(event_store: EventStore, stream: StreamName, key: str) -> StoredChunk:
    try:
        where = event_store.keys.parse(stream, key)
    except CorruptChunk as error:
        return StoredChunk(key, 0, 0, None, VerifyProblem(stream, key, error.reason))
    try:
        found = event_store.read(where)
    except CorruptChunk as error:
        problem = VerifyProblem(stream, key, error.reason)
        return StoredChunk(key, where.version, where.number, None, problem)
    if found is None:
        problem = VerifyProblem(stream, key, "listed, then gone before it was read")
        return StoredChunk(key, where.version, where.number, None, problem)
    return StoredChunk(key, where.version, where.number, found[0])


def chain(
    stream: StreamName, stored: Sequence[StoredChunk]
) -> tuple[list[StoredChunk], list[VerifyProblem]]:
    """The chunks a full read follows, oldest first, and the problems on the way.

    The chain ``EventStore.chunks`` walks (see :func:`~s3es._eventstore.chain.walk_chain`),
    over the readable chunks of ``stored`` (listed newest first): from the latest version's
    highest chunk, down each chunk's ``base_version`` to version 0, taking the highest readable
    chunk of each version. A missing version, an erased chunk or a tombstone below the top is
    a problem, and ends the chain; but a version missing below an erasure's fences (a fence
    gap, which :func:`~s3es.ops.repair` mends) is a problem after which the chain goes on from
    the newest version below it, without the fences above, as a full read does.
    """
    links, problems, _ = _chain(stream, stored)
    return links, problems


def _chain(
    stream: StreamName, stored: Sequence[StoredChunk]
) -> tuple[list[StoredChunk], list[VerifyProblem], set[int]]:
    """:func:`chain`, and the versions missing in its fence gaps.

    A fence gap (a version missing below an erasure's fences) is a problem that does not end
    the chain: a full read drops the fences above it and goes on below, and so does this.
    """
    newest = newest_of_each_version(item for item in stored if item.chunk is not None)
    links: list[StoredChunk] = []
    problems: list[VerifyProblem] = []
    gaps: set[int] = set()
    for step in walk_chain(newest, _readable):
        if isinstance(step, Link):
            links.append(step.where)
            continue
        if step.reason is BreakReason.FENCE_GAP:
            head = version_below(newest, step.version)
            missing = range(head + 1, step.version + 1)
            gaps.update(missing)
            problems.append(VerifyProblem(stream, step.key, _fence_gap(missing, head)))
            links.clear()
            continue
        if step.reason is BreakReason.MISSING:
            reason = (
                f"no readable chunk of version {step.version}, which this chunk's events follow"
            )
        elif step.reason is BreakReason.ERASED:
            reason = "an erased chunk in the chain: no merged chunk stands for it"
        else:
            reason = f"a tombstone below version {links[-1].version}, stored after it"
        problems.append(VerifyProblem(stream, step.key, reason))
    links.reverse()
    return links, problems, gaps


def _fence_gap(missing: range, head: int) -> str:
    """The problem of a fence gap: which versions are missing, what reads do, what mends it."""
    what = (
        f"version {missing[0]} is missing"
        if len(missing) == 1
        else f"versions {missing[0]} to {missing[-1]} are missing"
    )
    return (
        f"{what} below this erasure's fence (a fence round cut short: a lower fence's PUT "
        f"failed or its process stopped); reads end at version {head} until a chunk is stored "
        "there: `s3es repair` stores the missing fence"
    )


def _readable(item: StoredChunk) -> Chunk:
    assert item.chunk is not None  # noqa: S101 - chain() walks only readable chunks
    return item.chunk


def _lock_problems(
    keys: StreamKeys, stream: StreamName, stored: Sequence[StoredChunk], gaps: set[int]
) -> list[VerifyProblem]:
    """Versions up to the latest without their chunk 0: the lock a stale writer would take.

    The versions of fence gaps (``gaps``) are named by their own problem already.
    """
    if not stored:
        return []
    latest = max(item.version for item in stored)
    locked = {item.version for item in stored if item.number == FIRST_CHUNK}
    return [
        VerifyProblem(
            stream,
            keys.chunk_key(stream, version),
            f"missing: version {version} has lost its chunk 0, the lock that keeps a writer "
            "holding an older version from storing it again",
        )
        for version in range(1, latest + 1)
        if version not in locked and version not in gaps
    ]


def _event_problems(stored: Sequence[StoredChunk]) -> list[VerifyProblem]:
    """Re-written and merged chunks whose events differ from those of the versions' chunk 0."""
    originals: dict[int, tuple[str, ...]] = {}
    for item in stored:
        chunk = item.chunk
        if item.number == FIRST_CHUNK and chunk is not None and not chunk.erased:
            originals[item.version] = tuple(event.id for event in chunk.events)
    problems = []
    for item in stored:
        chunk = item.chunk
        if item.number == FIRST_CHUNK or chunk is None or chunk.erased or chunk.deleted:
            continue
        by_version: dict[int, list[str]] = {}
        for event in chunk.events:
            by_version.setdefault(event.version or chunk.version, []).append(event.id)
        for version, ids in by_version.items():
            original = originals.get(version)
            if original is not None and tuple(ids) != original:
                problems.append(
                    VerifyProblem(
                        chunk.stream,
                        item.key,
                        f"its events of version {version} are not those of that version's "
                        f"chunk 0 (event ids {ids} against {list(original)})",
                    )
                )
    return problems


def _snapshot_problems(
    codec: AggregateCodec[Any, Any, Any], links: Sequence[StoredChunk]
) -> tuple[bool, list[VerifyProblem]]:
    """Whether the latest snapshot was compared with a full replay; the problems found.

    Each erasure's fence in the chain with a snapshot of the code's schema is compared with
    the replay up to its version too: its snapshot is the state a writer that catches up
    through it takes.
    """
    latest = links[-1]
    assert latest.chunk is not None  # noqa: S101 - chain() links only readable chunks
    stream = latest.chunk.stream
    aggregate = codec.aggregate
    replayed = aggregate.initial_state()
    problems = []
    for item in links:
        assert item.chunk is not None  # noqa: S101
        events = []
        for record in item.chunk.events:
            try:
                events.append(codec.decode(record, item.key)[1])
            except CorruptChunk as error:
                return False, [VerifyProblem(stream, item.key, error.reason)]
        replayed = functools.reduce(aggregate.evolve, events, replayed)
        if item.chunk.rebased and item is not latest:
            problems += _fence_snapshot_problems(codec, item, replayed)
    snapshot = latest.chunk.snapshot
    if snapshot is None or snapshot.schema != codec.snapshot_schema:
        # Loads replay such a stream, then store a snapshot of the code's schema: not a fault.
        return False, problems
    state, reason = codec.state_from(snapshot)
    if state is None:
        problems.append(VerifyProblem(stream, latest.key, f"the snapshot cannot be read: {reason}"))
        return False, problems
    if state != replayed:
        count = sum(len(item.chunk.events) for item in links if item.chunk is not None)
        problems.append(
            VerifyProblem(
                stream,
                latest.key,
                f"the snapshot is not the state a full replay of {count} events gives: "
                f"{state!r} in the snapshot, {replayed!r} replayed",
            )
        )
    return True, problems


def _fence_snapshot_problems(
    codec: AggregateCodec[Any, Any, Any], item: StoredChunk, replayed: Any
) -> list[VerifyProblem]:
    """An erasure's fence below the top whose snapshot is not the replayed state there."""
    chunk = item.chunk
    assert chunk is not None  # noqa: S101 - a link of the chain
    if chunk.snapshot is None or chunk.snapshot.schema != codec.snapshot_schema:
        return []  # a writer crossing it replays the stream instead
    state, reason = codec.state_from(chunk.snapshot)
    if state is None:
        return [VerifyProblem(chunk.stream, item.key, f"the snapshot cannot be read: {reason}")]
    if state == replayed:
        return []
    return [
        VerifyProblem(
            chunk.stream,
            item.key,
            f"an erasure's fence whose snapshot is not the state a replay up to version "
            f"{chunk.version} gives: a writer catching up through it would take "
            f"{state!r}, the stream folds to {replayed!r}",
        )
    ]


def verify_stream(
    event_store: EventStore,
    stream: StreamName,
    *,
    aggregate: type[Aggregate[Any, Any, Any]] | Aggregate[Any, Any, Any] | None = None,
) -> StreamReport:
    """Read every chunk of ``stream`` and check it: one LIST per 1,000 chunks, one GET each.

    Checks that every key is a chunk key and every chunk decodes; that the chain a full read
    follows reaches version 0 with no gap, no erased chunk and no tombstone in it (a version
    missing below an erasure's fences is named as such: reads end below it, and
    :func:`~s3es.ops.repair` stores the missing fence); that every
    version keeps its chunk 0 (its lock); and that re-written and merged chunks hold the same
    events as the versions they stand for. With ``aggregate`` (of the stream's type), every
    event of the chain must decode, and the latest snapshot, and that of every erasure's fence
    in the chain, if written under the aggregate's ``SNAPSHOT_SCHEMA``, must equal the state
    a replay up to its version gives. A deleted stream is checked
    only for its fences: every version below its tombstone keeps a chunk 0 that is a
    tombstone of that version, and nothing else is left. Writes nothing.

    Args:
        event_store: The event store the stream is in.
        stream: The stream to verify.
        aggregate: The aggregate (class or instance) of the stream's type, to check its
            events and snapshots against; None skips those checks.

    Returns:
        What was found: a problem in the data is a :class:`VerifyProblem` in the report.

    Raises:
        ValueError: ``aggregate`` is of another stream type than ``stream``; nothing was sent.
        ObjectStoreError: The store failed.
    """
    codec = None
    if aggregate is not None:
        codec = AggregateCodec(as_instance(aggregate))
        if codec.stream_type != stream.type:
            raise ValueError(
                f"aggregate {type(codec.aggregate).__qualname__} is of stream type "
                f"{codec.stream_type!r}, not of stream {stream}"
            )
    with measure_requests() as meter:
        stored, deleted = _read_unless_deleted(event_store, stream)
    problems = [item.problem for item in stored if item.problem is not None]
    links: list[StoredChunk] = []
    checked = False
    if deleted:
        problems += _fence_problems(event_store.keys, stream, stored)
    else:
        links, chain_problems, gaps = _chain(stream, stored)
        problems += chain_problems
        problems += _lock_problems(event_store.keys, stream, stored, gaps)
        problems += _event_problems(stored)
        if codec is not None and links and not chain_problems:
            checked, snapshot_problems = _snapshot_problems(codec, links)
            problems += snapshot_problems
    version = max((item.version for item in stored), default=0)
    events = sum(len(item.chunk.events) for item in links if item.chunk is not None)
    report = StreamReport(
        stream=stream,
        version=version,
        chunks=len(stored),
        events=events,
        deleted=deleted,
        snapshot_checked=checked,
        problems=tuple(problems),
        requests=meter.counts,
    )
    _log.debug("verified", stream=str(stream), version=version, problems=len(problems))
    return report


def _read_unless_deleted(
    event_store: EventStore, stream: StreamName
) -> tuple[list[StoredChunk], bool]:
    """The stream's chunks, and whether the first (the latest) is a tombstone."""
    stored = read_stored_chunks(event_store, stream)
    deleted = bool(stored) and stored[0].chunk is not None and stored[0].chunk.deleted
    return stored, deleted


def _fence_problems(
    keys: StreamKeys, stream: StreamName, stored: Sequence[StoredChunk]
) -> list[VerifyProblem]:
    """Below a deleted stream's tombstone: chunks that are not fences, versions without one.

    Each version below the tombstone keeps its chunk 0 as a fence (a tombstone of that
    version), which a writer holding a state from before the deletion loses its PUT to. A
    chunk that is not a fence, or a version without its fence, is what a deletion that
    stopped half-way, or one made before fences, left: running the deletion again fences it.
    """
    tombstone = stored[0].version
    locked = {item.version for item in stored if item.number == FIRST_CHUNK}
    problems = []
    for item in stored[1:]:
        if item.chunk is None or (item.number == FIRST_CHUNK and item.chunk.deleted):
            continue  # a fence, or a chunk whose problem is reported already
        problems.append(
            VerifyProblem(
                stream,
                item.key,
                f"below the tombstone at version {tombstone} and not a fence: the deletion "
                "did not finish (run it again)",
            )
        )
    problems += [
        VerifyProblem(
            stream,
            keys.chunk_key(stream, version),
            f"missing: version {version}, below the tombstone at version {tombstone}, has no "
            "fence, so a writer holding an older version could store it (run the deletion "
            "again)",
        )
        for version in range(1, tombstone)
        if version not in locked
    ]
    return problems


def verify_prefix(
    event_store: EventStore,
    *,
    stream_types: Iterable[str] | None = None,
    stream_ids: Sequence[str] = (),
    aggregates: Mapping[str, type[Aggregate[Any, Any, Any]]] | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Verify every stream under the event store's prefix, or of ``stream_types``.

    With ``stream_ids``, ``stream_types`` must name one type: only those streams are verified.
    ``aggregates`` maps a stream type to the aggregate whose snapshots its streams are checked
    against; streams of other types get every check but that one. ``progress`` is called with
    ``(streams done, streams)`` after each stream. Lists the streams first (one LIST per 1,000
    of each type), then verifies each as :func:`verify_stream` does.

    Args:
        event_store: The event store whose prefix is verified.
        stream_types: The stream types to verify; None: every type under the prefix.
        stream_ids: Only these streams (of the one type in ``stream_types``).
        aggregates: Stream type to aggregate class, for the event and snapshot checks.
        progress: Called with ``(streams done, streams)`` after each stream.

    Returns:
        Every stream's report and every problem found.

    Raises:
        ValueError: ``stream_ids`` is given and ``stream_types`` does not name exactly one
            type.
        InvalidStreamName: A stream type or id cannot be stored safely.
        ObjectStoreError: The store failed.
    """
    instances = {name: aggregate() for name, aggregate in (aggregates or {}).items()}
    problems: list[VerifyProblem] = []
    with measure_requests() as meter:
        types = list(event_store.stream_types() if stream_types is None else stream_types)
        if stream_ids:
            if len(types) != 1:
                raise ValueError(f"stream ids need exactly one stream type, not {types}")
            streams = [StreamName(types[0], stream_id) for stream_id in stream_ids]
        else:
            streams = []
            for stream_type in types:
                found, strays = _streams_of(event_store, stream_type)
                streams += found
                problems += strays
        reports = []
        for done, stream in enumerate(streams, start=1):
            report = verify_stream(event_store, stream, aggregate=instances.get(stream.type))
            reports.append(report)
            problems += report.problems
            if progress is not None:
                progress(done, len(streams))
    return VerifyReport(tuple(reports), tuple(problems), meter.counts)


def _streams_of(
    event_store: EventStore, stream_type: str
) -> tuple[list[StreamName], list[VerifyProblem]]:
    """The streams of ``stream_type``, and the folders under it that cannot be streams."""
    type_prefix = event_store.keys.type_prefix(stream_type)
    streams, problems = [], []
    for folder in event_store.objects.list_prefixes(type_prefix):
        try:
            streams.append(StreamName(stream_type, folder[len(type_prefix) : -1]))
        except InvalidStreamName as error:
            problems.append(VerifyProblem(None, folder, f"not the folder of a stream: {error}"))
    return streams, problems
