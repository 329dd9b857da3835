"""The repository: an aggregate's streams in an event store, loaded from snapshots.

:class:`AsyncRepository`'s methods are what applications call. The steps the command handler
and maintenance (compaction, erasure) take besides are this module's functions, each given a
repository: :func:`append_decisions`, :func:`recall`, :func:`fold`, :func:`snapshot_of`...
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeAlias

import attrs

from s3es._base.coerce import as_instance
from s3es._base.logging import get_logger
from s3es._base.tracing import annotate, traced
from s3es._domain.aggregate import Aggregate, AggregateCodec, C, E, RecordedEvent, S
from s3es._domain.values import (
    DEFAULT_COMMAND_WINDOW,
    Appended,
    Loaded,
    Recalled,
    bounded,
    commands_of,
    load_span,
    rebases,
    remember,
)
from s3es._eventstore._async.store import AsyncEventStore
from s3es._eventstore.chunk import Chunk, Snapshot
from s3es._eventstore.values import StreamConflict
from s3es._storage.keys import ChunkKey, StreamName
from s3es.errors import (
    ChunkTooLarge,
    ConcurrencyError,
    DomainContractError,
    InvalidConfiguration,
    NotJSON,
    ObjectAlreadyExists,
    ObjectStoreError,
    StreamDeleted,
)

__all__ = ["DEFAULT_COMMAND_WINDOW", "Appended", "AsyncRepository", "Loaded", "Recalled"]

_log = get_logger("s3es.repository")


class AsyncRepository(Generic[S, C, E]):
    """The streams of one aggregate type in an event store: load, append, read, replay.

    ``await repository.load(stream_id)`` is the stream's state at its version (from its latest
    snapshot: one LIST and one GET); ``append(loaded, events)`` stores events as the next
    version, or raises ConcurrencyError if another writer stored it first (``refresh`` then
    catches up). Most code hands the repository to a :class:`~s3es.aio.AsyncCommandHandler`,
    which does that loop. A snapshot written under another ``SNAPSHOT_SCHEMA`` makes ``load``
    replay the stream and store a re-snapshotted chunk, so the next load is cheap again.

    .. versionchanged:: 0.2  ``command_window``.
    """

    def __init__(
        self,
        event_store: AsyncEventStore,
        aggregate: type[Aggregate[S, C, E]] | Aggregate[S, C, E],
        *,
        command_window: int = DEFAULT_COMMAND_WINDOW,
    ) -> None:
        """Make a repository; nothing is read or written yet.

        Args:
            event_store: Where the streams are stored.
            aggregate: The aggregate (its class, or an instance) whose streams these are.
            command_window: How many of a stream's most recent command ids each snapshot keeps,
                to tell a retried command from a new one (0: none; see ``command_id`` of
                :meth:`~s3es.CommandHandler.handle`).

        Raises:
            InvalidConfiguration: ``command_window`` is not an int >= 0, or the aggregate is
                not one s3es can store.
        """
        if type(command_window) is not int or command_window < 0:
            raise InvalidConfiguration(
                f"command_window must be an int >= 0 (0: remember no command id), not "
                f"{command_window!r}"
            )
        self.command_window = command_window
        self.event_store = event_store
        self.aggregate: Aggregate[S, C, E] = as_instance(aggregate)
        self.codec = AggregateCodec(self.aggregate)

    def stream(self, stream_id: str) -> StreamName:
        """The name of the stream with ``stream_id`` of this aggregate's type.

        Raises:
            InvalidConfiguration: ``stream_id`` is not a usable id.
        """
        return StreamName(type=self.codec.stream_type, id=stream_id)

    @traced(
        start=load_span,
        end=lambda loaded: {"s3es.stream.version": loaded.version},
    )
    async def load(self, stream_id: str) -> Loaded[S]:
        """The current state of the stream: one LIST and one GET while its snapshot is usable.

        Args:
            stream_id: The stream's id.

        Returns:
            The state at the stream's latest version; a stream with no chunks loads as the
            initial state at version 0.

        Raises:
            StreamDeleted: The stream was deleted.
        """
        stream = self.stream(stream_id)
        latest = await self.event_store.latest(stream)
        if latest is None:
            return initial_of(self, stream)
        if latest.deleted:
            raise StreamDeleted(stream, latest.version)
        state, reason = self.codec.state_from(latest.snapshot)
        if state is not None:
            return Loaded(stream, latest.version, state, _bounded(self, commands_of(latest)))
        _log.info("replay_fallback", stream=str(stream), version=latest.version, reason=reason)
        annotate(lambda: {"s3es.load.replayed": True})
        loaded, last = await _read_forward(self, stream, self.aggregate.initial_state(), 0)
        if last is not None:
            await _resnapshot(self, last, loaded)
        return loaded

    async def replay(self, stream_id: str) -> Loaded[S]:
        """The state folded from every event of the stream, ignoring snapshots. Writes nothing.

        Args:
            stream_id: The stream's id.

        Returns:
            The state at the stream's latest version.
        """
        stream = self.stream(stream_id)
        loaded, _ = await _read_forward(self, stream, self.aggregate.initial_state(), 0)
        return loaded

    async def read(
        self, stream_id: str, *, after_version: int = 0
    ) -> AsyncIterator[RecordedEvent[E]]:
        """The events of the stream stored after ``after_version``, in order.

        Args:
            stream_id: The stream's id.
            after_version: Only the events of later versions (0: all).

        Yields:
            Each event as this aggregate's (upcast, typed), with its version, id and metadata.

        Raises:
            InvalidConfiguration: ``after_version`` is not an int >= 0 (naming the stream).
        """
        stream = self.stream(stream_id)
        async for chunk in self.event_store.chunks(stream, after_version=after_version):
            for recorded in events_of(self, chunk):
                yield recorded

    async def append(
        self,
        loaded: Loaded[S],
        events: Sequence[E],
        *,
        metadata: Mapping[str, Any] | None = None,
        command_id: str | None = None,
    ) -> Appended[S, E]:
        """Store ``events`` as the next version after ``loaded``, with a snapshot of the result.

        Args:
            loaded: The state the events were decided on (from :meth:`load`, or an earlier
                append's ``loaded``).
            events: The events, in order.
            metadata: Stored with every event (a JSON object).
            command_id: Recorded in the chunk and added to the snapshot's window of command
                ids (the caller checks it is not there already).

        Returns:
            The new state and version, and the events stored with their ids.

        Raises:
            ConcurrencyError: The stream is no longer at ``loaded.version``.
            NotJSON: Before any request, an event or ``metadata`` is not JSON (naming the
                stream, the event and the field).

        .. versionchanged:: 0.2  ``command_id``.
        """
        return await append_decisions(self, loaded, [(events, metadata)], command_ids=[command_id])

    async def refresh(
        self, loaded: Loaded[S], conflict: ConcurrencyError | None = None
    ) -> Loaded[S]:
        """``loaded`` brought forward to the stream's latest version.

        If ``conflict`` carries the chunk that won the contested version, that chunk alone is
        applied: no request at all (an erasure's fence gives its snapshot as the state).
        Otherwise it costs at most a load: one LIST of the newest key, and one GET of the
        latest chunk if the stream moved on. Only if that snapshot is unusable (another
        ``SNAPSHOT_SCHEMA``) are the chunks after ``loaded.version`` read, one GET each.

        Args:
            loaded: A state of the stream, perhaps out of date.
            conflict: The ConcurrencyError an append from ``loaded`` raised, if any.

        Returns:
            The state at the stream's latest version.

        Raises:
            StreamDeleted: The stream was deleted meanwhile.
        """
        stream = loaded.stream
        found = conflict.found if isinstance(conflict, StreamConflict) else None
        if found is not None and found.deleted:
            raise StreamDeleted(stream, found.version)
        if found is not None and found.rebased:
            state, _ = self.codec.state_from(found.snapshot)
            if state is not None:
                commands = remember(dict(loaded.commands), found)
                return Loaded(stream, found.version, state, _bounded(self, commands))
        elif found is not None and not found.erased and found.base_version == loaded.version:
            return await fold(self, loaded, [found])
        latest = await self.event_store.latest(stream, after_version=loaded.version)
        if latest is None:
            return loaded
        if latest.deleted:
            raise StreamDeleted(stream, latest.version)
        state, reason = self.codec.state_from(latest.snapshot)
        if state is not None:
            return Loaded(stream, latest.version, state, _bounded(self, commands_of(latest)))
        _log.info("refresh_walk", stream=str(stream), version=latest.version, reason=reason)
        caught_up, _ = await _read_forward(self, stream, loaded.state, loaded.version)
        return caught_up


Repo: TypeAlias = AsyncRepository[Any, Any, Any]


def initial_of(repository: AsyncRepository[S, C, E], stream: StreamName) -> Loaded[S]:
    """``stream`` before any event: the initial state at version 0."""
    return Loaded(stream, 0, repository.aggregate.initial_state())


def events_of(repository: AsyncRepository[S, C, E], chunk: Chunk) -> Iterator[RecordedEvent[E]]:
    """The events of ``chunk`` read back as the repository's aggregate's (upcast, typed)."""
    return repository.codec.recorded(chunk, _key_of(repository, chunk))


def _key_of(repository: Repo, chunk: Chunk) -> Callable[[], str]:
    """The key of ``chunk``, made only if an error names it."""
    return functools.partial(
        repository.event_store.keys.chunk_key, chunk.stream, chunk.version, chunk.number
    )


def evolved(
    repository: AsyncRepository[S, C, E], stream: StreamName, state: S, events: Iterable[E]
) -> S:
    """``state`` of ``stream`` after ``events``, each applied by the aggregate's ``evolve``.

    Raises:
        DomainContractError: ``evolve`` returned None (naming the aggregate, the event's type
            and ``stream``).
    """
    aggregate = repository.aggregate
    evolve = aggregate.evolve
    for event in events:
        state = evolve(state, event)
        if state is None:
            raise DomainContractError(
                f"{type(aggregate).__qualname__}.evolve returned None for an event of "
                f"type {type(event).__qualname__} of stream {stream}: it must return the "
                "state after the event (a forgotten return?)"
            )
    return state


async def fold(
    repository: AsyncRepository[S, C, E], loaded: Loaded[S], chunks: Iterable[Chunk]
) -> Loaded[S]:
    """``loaded`` with the events of ``chunks``, the ones that follow it, applied in order.

    From version 0, every chunk's events are applied: they are the stream as it stands
    (an erasure's fence has none, and the redacted chunk below it folds to its snapshot).
    Onto a state of a later version, which may hold what an erasure removed since, the
    last chunk that is an erasure's fence (``rebased``), or a merged chunk (which may stand
    for one), gives the state instead: its snapshot; or, if it has none this code can use
    (another ``SNAPSHOT_SCHEMA``), the stream replayed from its start up to that chunk's
    version, the only case in which it sends requests. The chunks after it are applied to
    that state.

    .. versionchanged:: 0.2  Fences and merged chunks replace a later state, not fold onto it.
    """
    stream = loaded.stream
    chunks = list(chunks)
    state, version, start = loaded.state, loaded.version, 0
    commands = dict(loaded.commands)
    if version > 0:
        fences = [i for i, chunk in enumerate(chunks) if rebases(chunk)]
        if fences:
            start = fences[-1] + 1
            fence = chunks[fences[-1]]
            state, version = await _rebased(repository, fence), fence.version
    events = repository.codec.events
    for chunk in chunks:
        if chunk.commands:
            remember(commands, chunk)
    for chunk in chunks[start:]:
        state = evolved(repository, stream, state, events(chunk, _key_of(repository, chunk)))
        version = chunk.version
    return Loaded(stream, version, state, _bounded(repository, commands))


def _bounded(repository: Repo, commands: dict[str, int]) -> dict[str, int]:
    """``commands`` (oldest first) cut to the repository's ``command_window`` most recent."""
    return bounded(commands, repository.command_window)


def snapshot_of(
    repository: AsyncRepository[S, C, E], loaded: Loaded[S], version: int | None = None
) -> Snapshot:
    """The snapshot of ``loaded``: its state and its window of command ids.

    Stamped with the current schema, at ``version`` (``loaded``'s unless given: a chunk
    above it that does not change the state, as an erasure's fence). Every snapshot s3es
    writes is made here, so none forgets the window.
    """
    taken = repository.codec.snapshot(loaded.state, loaded.version if version is None else version)
    commands = loaded.commands
    if len(commands) > repository.command_window:
        commands = _bounded(repository, dict(commands))
    return attrs.evolve(taken, commands=commands) if commands else taken


async def _resnapshot(repository: Repo, last: Chunk, loaded: Loaded[Any]) -> None:
    """Store ``last`` again with a snapshot of ``loaded``, where that helps and is safe."""
    stream = str(loaded.stream)
    codec = repository.codec
    if codec.state_from(last.snapshot)[0] is not None:
        # Another load re-snapshotted this version between our LIST of the newest key and
        # our replay's listing: the chunk read last is its re-snapshot, and it is usable.
        _log.debug("rewrite_skipped", stream=stream, reason="already re-snapshotted")
        return
    if last.snapshot is not None and last.snapshot.schema > codec.snapshot_schema:
        # Never overwrite a newer schema's snapshot: during a rolling deploy the newer code
        # would replay and re-snapshot again, back and forth.
        _log.info("rewrite_skipped", stream=stream, reason="newer snapshot schema")
        return
    snapshot = snapshot_of(repository, loaded)
    _, reason = codec.state_from(snapshot)
    if reason:
        # Writing it would make every load replay and write again.
        _log.warning("rewrite_skipped", stream=stream, reason=f"unreadable snapshot: {reason}")
        return
    rewritten = attrs.evolve(last, number=last.number + 1, snapshot=snapshot)
    try:
        key = await repository.event_store.store(rewritten)
    except ObjectAlreadyExists:
        # Another reader re-wrote the same events first: as good.
        _log.debug("rewrite_lost", stream=stream, version=last.version)
    except ChunkTooLarge as error:
        # Loads keep replaying until max_chunk_bytes is raised.
        _log.warning("rewrite_skipped", stream=stream, reason=str(error))
    except ObjectStoreError as error:  # a reader may not be allowed to write
        _log.warning("rewrite_failed", stream=stream, error=str(error))
    else:
        _log.info("rewrite", stream=stream, version=last.version, key=key)


async def recall(
    repository: AsyncRepository[S, C, E], stream: StreamName, command_id: str, version: int
) -> Recalled[S, E]:
    """What command ``command_id`` stored at ``version`` of ``stream``, read back.

    One GET, of that version's first chunk: its events (those the chunk names as the
    command's) and its snapshot (the state at ``version``, window included). If that
    snapshot is unusable (another ``SNAPSHOT_SCHEMA``), the state is the stream replayed
    up to ``version``. If the chunk was erased or merged since (it no longer names the
    command), ``recorded`` is empty.

    Raises:
        StreamDeleted: The stream was deleted since.
    """
    event_store = repository.event_store
    key = event_store.keys.chunk_key(stream, version)
    found = await event_store.read(ChunkKey(stream, version, 0, key))
    chunk = None if found is None else found[0]
    if chunk is None or chunk.erased or chunk.deleted:
        latest = await event_store.latest(stream)
        if latest is not None and latest.deleted:
            raise StreamDeleted(stream, latest.version)
        state = await _state_at(repository, stream, version, None)
        return Recalled(Loaded(stream, version, state), ())
    state = await _state_at(repository, stream, version, chunk.snapshot)
    loaded = Loaded(stream, version, state, _bounded(repository, commands_of(chunk)))
    span = chunk.commands.get(command_id)
    if span is None:
        return Recalled(loaded, ())
    recorded = tuple(events_of(repository, chunk))[span[0] : span[1]]
    return Recalled(loaded, recorded)


async def _state_at(
    repository: AsyncRepository[S, C, E],
    stream: StreamName,
    version: int,
    snapshot: Snapshot | None,
) -> S:
    """The state at ``version``: ``snapshot``'s if usable, else a replay up to it."""
    state, reason = repository.codec.state_from(snapshot)
    if state is not None:
        return state
    _log.info("recall_replay", stream=str(stream), version=version, reason=reason)
    return await _replayed_to(repository, stream, version)


async def _rebased(repository: AsyncRepository[S, C, E], fence: Chunk) -> S:
    """The state at ``fence``'s version: its snapshot, else a replay up to that version."""
    state, reason = repository.codec.state_from(fence.snapshot)
    if state is not None:
        return state
    _log.info("rebase_replay", stream=str(fence.stream), version=fence.version, reason=reason)
    return await _replayed_to(repository, fence.stream, fence.version)


async def _replayed_to(repository: AsyncRepository[S, C, E], stream: StreamName, version: int) -> S:
    """The state of ``stream`` replayed from its start up to ``version``."""
    state = repository.aggregate.initial_state()
    decode = repository.codec.decode
    async for chunk in repository.event_store.chunks(stream):
        key = _key_of(repository, chunk)
        state = evolved(
            repository,
            stream,
            state,
            (
                decode(record, key)[1]
                for record in chunk.events
                if (record.version or chunk.version) <= version
            ),
        )
        if chunk.version >= version:
            break
    return state


async def _read_forward(
    repository: AsyncRepository[S, C, E], stream: StreamName, state: S, version: int
) -> tuple[Loaded[S], Chunk | None]:
    """The state after reading the chunks after ``version``, and the last chunk read.

    Only the last chunk's snapshot is kept (the caller's to compare or re-write): the
    others' would be held until the fold begins, for nothing.
    """
    chunks = [
        chunk
        async for chunk in repository.event_store.chunks(
            stream, after_version=version, older_snapshots=False
        )
    ]
    loaded = await fold(repository, Loaded(stream, version, state), chunks)
    return loaded, (chunks[-1] if chunks else None)


async def append_decisions(
    repository: AsyncRepository[S, C, E],
    loaded: Loaded[S],
    decisions: Sequence[tuple[Sequence[E], Mapping[str, Any] | None]],
    *,
    command_ids: Sequence[str | None] = (),
) -> Appended[S, E]:
    """Store the events of several decisions, in order, as ONE next version after ``loaded``.

    Each decision is its events and the metadata stored with each of them, so the events
    of a group commit stay attributable to their command. Behaves as
    :meth:`AsyncRepository.append` (one PUT, ConcurrencyError, NotJSON before any request);
    the result's events are every decision's, in order. ``command_ids``, if given, holds each
    decision's command id (or None): the chunk names each id with its events, and the new
    snapshot's window of command ids (``loaded``'s, bounded by ``command_window``) gains them.

    .. versionchanged:: 0.2  ``command_ids``.
    """
    stream = loaded.stream
    for _, metadata in decisions:
        if metadata is not None and not isinstance(metadata, Mapping):
            raise NotJSON(
                f"stream {stream}: metadata must be a mapping (a JSON object), not "
                f"{type(metadata).__qualname__}"
            )
    # Read twice below: a generator would be empty the second time.
    decided = [tuple(events) for events, _ in decisions]
    tagged = [
        (event, metadata)
        for events, (_, metadata) in zip(decided, decisions, strict=True)
        for event in events
    ]
    events = [event for event, _ in tagged]
    commands: dict[str, tuple[int, int]] = {}
    start = 0
    for command_id, own in zip(command_ids, decided, strict=False):
        if command_id is not None and own:
            commands[command_id] = (start, start + len(own))
        start += len(own)
    codec, event_store = repository.codec, repository.event_store
    records = []
    for event, metadata in tagged:
        name, data = codec.encode_event(event, stream)
        schema = codec.event_schema(name)
        records.append(event_store.new_event(name, data, metadata, schema=schema))
    version = loaded.version + 1
    window = dict(loaded.commands)
    if repository.command_window:
        window.update(dict.fromkeys(commands, version))
    state = evolved(repository, stream, loaded.state, events)
    new = Loaded(stream, version, state, _bounded(repository, window))
    result = await event_store.append(
        stream,
        records,
        expected_version=loaded.version,
        snapshot=snapshot_of(repository, new),
        commands=commands,
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
    return Appended(new, recorded, result.recovered)
