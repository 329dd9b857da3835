"""Consumers of the event streams: the one engine of projectors and reactors.

A consumer runs as ``shards`` shards: a stream belongs to shard ``shard_of(stream, shards)``
(a stable hash), and each shard has its own lease (and epoch), its own state in a read-model
store and its own feed cursors, so that as many processes as shards share one consumer; a
process may hold several. One pass of a shard finds the streams that moved (a full scan, or
the change feed), reads their positions, reads their new chunks, hands the events to the
consumer in batches (a document projector folds them into documents, a whole-model projector
into its model, a reactor sends commands), and commits the batch's positions and the shard's
state with what the batch produced.

Generations: what a consumer writes lives in a numbered generation of its store. Readers see
the ``live`` one; a rebuild, or a ``SCHEMA`` that differs from the live generation's, fills a
new one (``building``) beside it, and the shard that completes the last full scan switches
readers to it in one conditional write, then drops the old one.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import random
import uuid
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing
from typing import Any, Generic, TypeVar, cast

import attrs

from s3es._base.clock import Clock
from s3es._base.concurrency import (
    AsyncFuture,
    AsyncSignal,
    AsyncWorkers,
    async_outcome,
    async_wait,
)
from s3es._base.concurrency import (
    forget as cancel,
)
from s3es._base.logging import get_logger
from s3es._base.progress import Progress
from s3es._domain.aggregate import AggregateCodec, RecordedEvent
from s3es._eventstore._async.store import AsyncEventStore
from s3es._eventstore.chunk import Chunk
from s3es._projections._async.lease import AsyncLeaseKeeper
from s3es._projections._async.notifications import AsyncChangeNotifications
from s3es._projections.notifications import Notified
from s3es._projections.options import ConsumerOptions
from s3es._projections.values import (
    Batch,
    DocumentConflict,
    Lease,
    ShardPass,
    Superseded,
    default_owner,
    shard_of,
)
from s3es._readmodels._async.port import AsyncReadModelStore
from s3es._readmodels.port import Change, Generation, Generations, ShardState
from s3es._storage.keys import StreamName
from s3es._storage.metering import RequestCounts, measure_requests
from s3es.errors import (
    Fenced,
    InvalidConfiguration,
    LeaseHeld,
    ObjectStoreError,
    ReadModelConflict,
    ReadModelStoreError,
    StreamDeleted,
)

_log = get_logger("s3es.consumer")

#: How often a pass starts again after its shard's state was written by another consumer.
_PASS_ATTEMPTS = 3
#: Streams whose positions are read, and chunks fetched, per window of a pass.
_WINDOW = 256

P = TypeVar("P")


@attrs.define
class _Shard:
    """What this consumer knows of one of its shards between passes."""

    number: int
    keeper: AsyncLeaseKeeper
    lease: Lease | None = None
    #: The state as this consumer last committed it, with its generation; None: read it.
    state: ShardState | None = None
    generation: Generation | None = None
    #: When this shard's last full scan began (clock seconds), None before the first.
    scanned_at: float | None = None
    #: Positions read or committed under ``state``'s epoch and generation, which no other
    #: consumer writes meanwhile (a newer epoch's first commit fences this one's): a stream
    #: the feed names again, or a scan finds unmoved, costs no read of its position.
    positions: dict[str, int] = attrs.field(factory=dict)
    #: True once this consumer created the shard's state in ``generation``: every commit
    #: writes the state, so no stream of the shard has a position there yet, and a build's
    #: first scan reads none (one request per stream fewer on S3).
    fresh: bool = False

    def invalidate(self) -> None:
        """Drop what is cached: read the state, and positions, from the store at the next pass."""
        self.state, self.generation = None, None
        self.positions.clear()
        self.fresh = False


class AsyncConsumer(abc.ABC, Generic[P]):
    """What projectors and reactors share: shards, leases, generations, passes, the feed.

    Document projectors, whole-model projectors and reactor runners are its kinds.

    A subclass says what a batch of events does (``_process``) and what a pass over its shards
    returns (``_passed``).
    """

    #: Whether the number of shards is part of a generation's identity, as its schema is: for
    #: a projector, another number of shards builds another generation (its documents are
    #: rebuilt); a reactor keeps its generation, and so its positions and parked events,
    #: whatever the number of shards (positions are per stream), since building a new one
    #: would react to every event again.
    SHARDS_MAKE_A_GENERATION = True
    #: What this consumer is, stamped on its generations record and its leases: a reactor
    #: and a projection of one NAME would share generations, positions and leases.
    KIND = "projection"

    def __init__(
        self,
        event_store: AsyncEventStore,
        store: AsyncReadModelStore,
        *,
        name: str,
        schema: int,
        codecs: dict[str, AggregateCodec[Any, Any, Any]],
        options: ConsumerOptions,
        clock: Clock,
    ) -> None:
        self.event_store = event_store
        self.store = store
        self.name = name
        self._schema = schema
        self._codecs = codecs
        #: What this consumer was made with: its shards, feed, leases and batching.
        self.options = options
        self.shards = options.shards.count
        self.owner = options.lease.owner or default_owner()
        #: The feed, or None: every pass scans.
        self.feed = options.feed
        # A Feed serves the sync and asyncio consumers both: its notifications are this kind's.
        notifications = None if options.feed is None else options.feed.notifications
        self._notifications = cast("AsyncChangeNotifications | None", notifications)
        self._clock = clock
        self._random = random.Random()
        keys = event_store.keys
        shards, lease_ttl = self.shards, options.lease.ttl
        self._shards = [
            _Shard(
                number,
                AsyncLeaseKeeper(
                    event_store.objects,
                    keys.shard_lease_key(self.name, number, shards),
                    projection=f"{self.name} shard {number} of {shards}",
                    owner=self.owner,
                    kind=self.KIND,
                    ttl=lease_ttl,
                    clock=clock,
                ),
            )
            for number in options.shards.chosen
        ]
        self._log = _log.bind(projection=self.name, owner=self.owner)
        #: Read streams ahead of the fold: ``read_concurrency`` threads (tasks, in asyncio).
        self._readers = AsyncWorkers(options.batching.read_concurrency, "s3es-consumer")
        #: The live generation as the last pass read it.
        self._live: Generation | None = None
        #: Why each shard fenced in the last pass was (by shard number).
        self._fenced: dict[int, Fenced] = {}
        #: What the current pass of a shard (or the rebuild that runs it) knows, forgotten
        #: when the pass ends: the generations record as it last read or wrote it (None: read
        #: it), so that each pass reads it once and sees a build begun, or a switch made, by
        #: another process; and the generation it created, in which no shard has a state yet
        #: (a state's first write is a PUT-if-absent, which refuses one written meanwhile).
        self._known_record: Generations | None = None
        self._created: Generation | None = None

    @property
    def _listing(self) -> bool:
        """Whether passes list the ``_feed/`` objects (a feed without notifications)."""
        return self.feed is not None and self.feed.notifications is None

    @property
    def shard_ids(self) -> tuple[int, ...]:
        """The numbers of the shards this consumer runs, as its ``Shards`` option chose them.

        Every shard from 0 to ``shards - 1`` unless ``Shards(ids=...)`` named some.
        """
        return tuple(shard.number for shard in self._shards)

    async def leases(self) -> dict[int, Lease | None]:
        """Each of its shards' leases as stored, whoever holds it. One GET per shard.

        Returns:
            The lease of each shard this consumer runs, by shard number; None for a shard
            whose lease was never taken.

        Raises:
            CorruptReadModel: A lease object is not a lease of this consumer's shard.
            InvalidConfiguration: A lease belongs to another kind of consumer of the same NAME
                (a reactor's, for a projection).
            ObjectStoreError: A GET failed.
        """
        return {shard.number: await shard.keeper.read() for shard in self._shards}

    # Passes --------------------------------------------------------------------------------

    @abc.abstractmethod
    async def catch_up(
        self, *, full_scan: bool | None = None, progress: Progress | None = None
    ) -> P:
        """One pass of each of this consumer's shards."""

    @abc.abstractmethod
    async def _process(
        self,
        generation: Generation,
        batch: Batch,
        state: ShardState,
        lease: Lease,
        counts: collections.Counter[str],
    ) -> ShardState:
        """Do what ``batch`` calls for and commit it with its positions and ``state``."""

    def _recorded(self, chunk: Chunk, key: str) -> Iterator[RecordedEvent[Any]]:
        return self._codecs[chunk.stream.type].recorded(chunk, key)

    async def _passes(
        self, *, full_scan: bool | None, progress: Progress | None
    ) -> tuple[list[ShardPass], tuple[int, ...], tuple[int, ...], RequestCounts]:
        """One pass of each shard: the passes, the shards held elsewhere and fenced, requests.

        Raises LeaseHeld if another consumer holds every one of its shards.
        """
        with measure_requests() as meter:
            # Received once for every shard this process runs: the messages of the others'
            # streams are theirs, in their own queue (one queue per process: see
            # docs/change-feeds.md). Acknowledged only once every pass went through.
            notified = None if self._notifications is None else await self._notifications.receive()
            passes: list[ShardPass] = []
            held: list[tuple[int, LeaseHeld]] = []
            fenced: list[int] = []
            self._fenced = {}
            for shard in self._shards:
                try:
                    passes.append(
                        await self._run(shard, scan=full_scan, progress=progress, notified=notified)
                    )
                except LeaseHeld as error:
                    held.append((shard.number, error))
                except Fenced as error:
                    self._log.warning(
                        "fenced", shard=shard.number, epoch=error.epoch, newer=error.newer_epoch
                    )
                    shard.lease = None
                    shard.invalidate()
                    fenced.append(shard.number)
                    self._fenced[shard.number] = error
            if held and len(held) == len(self._shards):
                raise held[0][1]
            if notified is not None and self._notifications is not None:
                await self._notifications.acknowledge(notified)
        return passes, tuple(number for number, _ in held), tuple(fenced), meter.counts

    async def run(
        self,
        stop: AsyncSignal,
        *,
        interval: float = 1.0,
        on_pass: Callable[[P], None] | None = None,
    ) -> None:
        """Run passes every ``interval`` seconds until ``stop`` is set; then release the leases.

        While other consumers hold every shard, or after this one was fenced, it stands by; a
        pass that the store failed (ObjectStoreError, ReadModelStoreError) is logged and run
        again. The leases are released (quietly) however the loop ends.

        Args:
            stop: Set it to end the loop; the wait between passes ends as soon as it is.
            interval: Seconds between the end of a pass and the start of the next.
            on_pass: Called with the result of each pass that ran.

        Raises:
            Exception: Any other error of a pass (a corrupt chunk, a whole-model projection's
                failing ``evolve``, an InvalidConfiguration), or of ``on_pass``, ends the loop.
        """
        try:
            while not stop.is_set():
                try:
                    run = await self.catch_up()
                    if on_pass is not None:
                        on_pass(run)
                except LeaseHeld as held:
                    self._log.debug("standing_by", holder=held.owner, epoch=held.epoch)
                except Fenced as fenced:  # a whole-model projector's: it takes the lease anew
                    self._log.warning("fenced", epoch=fenced.epoch, newer=fenced.newer_epoch)
                except (ObjectStoreError, ReadModelStoreError) as error:
                    self._log.warning("pass_failed", error=str(error))
                    for shard in self._shards:
                        shard.invalidate()
                await async_wait(stop, interval)
        finally:
            await self.release(quietly=True)

    async def release(self, *, quietly: bool = False) -> None:
        """Give every lease up now, so that standbys need not wait for them to expire.

        Each lease is stored expired, keeping its epoch; what this consumer cached of its
        shards is dropped, so that the next pass reads them again.

        Args:
            quietly: Log a release that failed rather than raise; the others are still tried.

        Raises:
            ObjectStoreError: A release failed (not ``quietly``); the leases after it are
                kept.
        """
        for shard in self._shards:
            lease, shard.lease = shard.lease, None
            shard.invalidate()
            if lease is None:
                continue
            try:
                await shard.keeper.release(lease)
            except ObjectStoreError as error:
                if not quietly:
                    raise
                self._log.warning("lease_release_failed", shard=shard.number, error=str(error))

    async def _hold_any_lease(self) -> None:
        """Take the leases of this consumer's shards that are free; LeaseHeld if none is."""
        held: list[LeaseHeld] = []
        for shard in self._shards:
            try:
                try:
                    await self._hold_lease(shard)
                except Fenced:  # its lease was taken while it held it: take it anew
                    await self._hold_lease(shard)
            except LeaseHeld as error:
                held.append(error)
        if len(held) == len(self._shards):
            raise held[0]

    async def _hold_lease(self, shard: _Shard) -> Lease:
        if shard.lease is None:
            shard.lease = await shard.keeper.acquire()
            shard.invalidate()  # a new epoch: read (and stamp) the state again
        elif shard.keeper.expiring(shard.lease):
            try:
                shard.lease = await shard.keeper.renew(shard.lease)
            except Fenced:
                shard.lease = None
                raise
        return shard.lease

    async def _run(
        self,
        shard: _Shard,
        *,
        scan: bool | None,
        progress: Progress | None,
        notified: Notified | None,
    ) -> ShardPass:
        try:
            for attempt in range(1, _PASS_ATTEMPTS + 1):
                try:
                    return await self._pass(shard, scan=scan, progress=progress, notified=notified)
                except Superseded:
                    shard.invalidate()
                    self._forget_pass()
                    self._log.info("pass_superseded", shard=shard.number, attempt=attempt)
                except BaseException:
                    # ``evolve`` may have failed, or the store: what this consumer holds in
                    # memory may be ahead of the store. The next pass reads the store again.
                    shard.invalidate()
                    raise
        finally:
            self._forget_pass()
        raise ObjectStoreError(
            "PUT",
            f"{self.name} shard {shard.number}",
            f"the shard's state changed under each of {_PASS_ATTEMPTS} passes (an older "
            "consumer still writing)",
        )

    # Generations ---------------------------------------------------------------------------

    def _forget_pass(self) -> None:
        """Forget what the current pass knows of the generations: the next one reads them."""
        self._known_record, self._created = None, None

    async def _drop(self, generation: Generation) -> None:
        """Drop ``generation`` (a subclass drops what it keeps beside it too)."""
        await self.store.drop(generation)

    async def _named_record(self) -> Generations:
        """The generations record of this consumer's NAME. One GET.

        Raises InvalidConfiguration if it is another kind of consumer's (a reactor's, for a
        projection).
        """
        record = await self.store.generations(self.name)
        if record.kind is not None and record.kind != self.KIND:
            raise InvalidConfiguration(
                f"{self.KIND} {self.name!r}: {self.store!r} keeps the generations and "
                f"positions of a {record.kind} of that name; a reactor and a projection may "
                "not share a NAME in one store: rename one"
            )
        return record

    async def _pass_record(self) -> Generations:
        """The generations record as the current pass last read or wrote it, else read.

        Safe without a GET: what the pass writes next is conditional on it, so a change made
        meanwhile by another process fails that write rather than go unseen.
        """
        if self._known_record is None:
            self._known_record = await self._named_record()
        return self._known_record

    async def _set_record(self, record: Generations) -> Generations:
        """Store ``record`` if the stored one is still its revision; the record as stored.

        Raises ReadModelConflict (and forgets the record known) if it is not.
        """
        try:
            self._known_record = await self.store.set_generations(record)
        except ReadModelConflict:
            self._known_record = None
            raise
        return self._known_record

    async def _target(self) -> Generation:
        """The generation this consumer's passes write: live, or the one being built."""
        record = await self._pass_record()
        if record.revision is not None and record.kind is None:
            # Stored before kinds were: stamped once, so that a namesake is refused from now on.
            with contextlib.suppress(ReadModelConflict):
                record = await self._set_record(attrs.evolve(record, kind=self.KIND))
        self._live = record.live
        schema = self._schema
        building, live = record.building, record.live
        if building is not None and self._fits(building):
            return building
        if live is not None and self._fits(live):
            return live
        if building is not None and building.schema > schema:
            raise InvalidConfiguration(
                f"projection {self.name}: generation {building.number} is being built with "
                f"SCHEMA {building.schema}, newer than this code's {schema}: run the new code"
            )
        return await self._begin_build(force=False)

    def _fits(self, generation: Generation) -> bool:
        """Whether ``generation`` was built for this consumer's configuration."""
        if generation.schema != self._schema:
            return False
        return generation.shards == self.shards or not self.SHARDS_MAKE_A_GENERATION

    async def _begin_build(self, *, force: bool) -> Generation:
        """Start a generation of this code's schema and shards beside the live one.

        A build of another configuration under way is abandoned (dropped): run one
        configuration of a consumer at a time.
        """
        for _ in range(_PASS_ATTEMPTS):
            # Read by this pass already (``_target``), or read again after a conflict.
            record = await self._pass_record()
            building = record.building
            if not force and building is not None and self._fits(building):
                return building
            numbers = [g.number for g in (record.live, building) if g is not None]
            generation = Generation(
                self.name, max(numbers, default=0) + 1, self._schema, self.shards
            )
            try:
                await self._set_record(attrs.evolve(record, building=generation, kind=self.KIND))
            except ReadModelConflict:
                continue
            self._created = generation
            if building is not None:
                try:
                    await self._drop(building)  # an abandoned build, of an older schema or rebuild
                except BaseException:
                    self._forget_pass()
                    raise
            self._log.info("build_started", generation=generation.number)
            return generation
        raise ObjectStoreError(
            "PUT", f"{self.name} generations", "the record changed under each attempt"
        )

    async def _switch(self, generation: Generation) -> bool:
        """Make ``generation`` live if every shard has completed its scan; True if switched.

        The switch is conditional on the record as this pass read it: a shard that switched
        meanwhile, or a newer build, makes it fail; then the record is read again, and the
        switch tried once more if ``generation`` is still the one being built. The states of
        this consumer's shards that completed their scan in this pass are not read again
        (``complete`` never goes back in a generation).
        """
        checked = False
        for _ in range(2):
            record = await self._pass_record()
            if record.building != generation:
                return False  # live already, switched by another shard, or a newer build began
            if not checked:
                for number in range(self.shards):
                    if self._completed(generation, number):
                        continue
                    state = await self.store.shard_state(generation, number, self.shards)
                    if state is None or not state.complete:
                        return False
                checked = True
            try:
                await self._set_record(
                    attrs.evolve(record, live=generation, building=None, kind=self.KIND)
                )
            except ReadModelConflict:
                continue
            break
        else:
            return False
        if record.live is not None:
            await self._drop(record.live)
        self._log.info("generation_live", generation=generation.number)
        return True

    def _completed(self, generation: Generation, number: int) -> bool:
        """Whether this consumer committed shard ``number``'s scan of ``generation`` complete."""
        return any(
            shard.number == number
            and shard.generation == generation
            and shard.state is not None
            and shard.state.complete
            for shard in self._shards
        )

    # One pass ------------------------------------------------------------------------------

    async def _begin(self, shard: _Shard, lease: Lease) -> tuple[Generation, ShardState]:
        generation = await self._target()
        state = shard.state
        if state is not None and shard.generation == generation and state.epoch == lease.epoch:
            return generation, state
        shard.invalidate()
        stored = None
        if generation != self._created:  # created by this pass: no state there yet
            stored = await self.store.shard_state(generation, shard.number, self.shards)
        if stored is not None and stored.epoch > lease.epoch:
            shard.lease = None
            raise Fenced(self.name, lease.epoch, stored.epoch)
        if stored is None or stored.epoch < lease.epoch:
            # Stamped at once: from here on an older consumer's commit of this shard fails.
            fresh = ShardState(shard.number, self.shards, lease.epoch)
            base = fresh if stored is None else attrs.evolve(stored, epoch=lease.epoch)
            created = stored is None
            stored = await self._commit_state(generation, [], {}, base, lease)
            if created and not await self._current(generation):
                # The generation was dropped (a rebuild went live) between reading the record
                # and creating this state, which nothing then refused: take the state back
                # and start again on the generation that is current now.
                await self._drop(generation)
                raise Superseded
            # Positions are per stream: with a generation that outlives a number of shards,
            # a new shard's streams may have positions from the shards before.
            shard.fresh = created and self.SHARDS_MAKE_A_GENERATION
        shard.generation = generation
        return generation, stored

    async def _current(self, generation: Generation) -> bool:
        """Whether ``generation`` is still the live one or the one being built (read again)."""
        record = self._known_record = await self._named_record()
        return generation in (record.live, record.building)

    async def _pass(
        self,
        shard: _Shard,
        *,
        scan: bool | None,
        progress: Progress | None,
        notified: Notified | None,
    ) -> ShardPass:
        lease = await self._hold_lease(shard)
        generation, state = await self._begin(shard, lease)
        started_ms = int(self._clock().timestamp() * 1000)
        scanning = self._scan_needed(shard, state, asked=scan, now_ms=started_ms)
        cursors = dict(state.cursors)
        if scanning:
            streams = await self._scanned(shard.number)
        elif notified is None:
            streams = await self._from_feed(shard.number, cursors, started_ms)
        else:
            streams = self._from_notifications(shard.number, notified)
        counts = collections.Counter[str]()
        state, batch = await self._apply_streams(
            shard,
            generation=generation,
            state=state,
            streams=streams,
            counts=counts,
            progress=progress,
        )
        # A moved cursor rides along with the next commit rather than cost a write of its own
        # (the old one only lists a little more), unless a type had none: then every pass
        # would scan again.
        dirty = bool(batch.events or batch.positions)
        if scanning:
            dirty = dirty or not state.complete
            state = attrs.evolve(state, complete=True)
            if self._listing:
                cursors = dict.fromkeys(self._codecs, started_ms)
        dirty = dirty or any(t not in state.cursors for t in cursors)
        state = attrs.evolve(state, cursors=cursors)
        if dirty:
            state = await self._process(generation, batch, state, lease, counts)
            shard.positions.update(batch.positions)
        shard.state = state
        switched = False
        if scanning:
            shard.scanned_at = started_ms / 1000
            # A live generation has nothing to switch to: no read of the record again.
            switched = generation != self._live and await self._switch(generation)
        self._log.info(
            "pass",
            shard=shard.number,
            generation=generation.number,
            full_scan=scanning,
            streams=counts["streams"],
            events=counts["events"],
            commits=counts["commits"],
        )
        return ShardPass(
            shard.number,
            generation,
            scanning,
            counts["streams"],
            counts["events"],
            counts["commits"],
            counts["documents"],
            switched,
        )

    async def _apply_streams(
        self,
        shard: _Shard,
        *,
        generation: Generation,
        state: ShardState,
        streams: list[tuple[StreamName, int | None]],
        counts: collections.Counter[str],
        progress: Progress | None,
    ) -> tuple[ShardState, Batch]:
        """Read ``streams`` past their positions, committing every ``commit_every`` events.

        Returns the state as last committed and the batch not committed yet.
        """
        batch = Batch()
        done = 0
        for window_start in range(0, len(streams), _WINDOW):
            window = streams[window_start : window_start + _WINDOW]
            positions = shard.positions
            unknown = [str(s) for s, _ in window if str(s) not in positions]
            if unknown:
                found = {} if shard.fresh else await self.store.positions(generation, unknown)
                positions.update(dict.fromkeys(unknown, 0) | found)
            async with aclosing(self._fetched(window, positions)) as fetches:
                async for stream, fetched in fetches:
                    lease = await self._hold_lease(shard)  # renewed on a long pass, in time
                    done += 1
                    if progress is not None:
                        progress(done, len(streams))
                    if fetched is None:
                        continue
                    if isinstance(fetched, StreamDeleted):
                        batch.events.append(fetched)
                        batch.positions[str(stream)] = fetched.version
                        continue
                    counts["streams"] += 1
                    for event in self._events(fetched):
                        batch.events.append(event)
                        counts["events"] += 1
                    batch.positions[str(stream)] = fetched[-1].version
                    if len(batch) >= self.options.batching.commit_every:
                        state = await self._process(generation, batch, state, lease, counts)
                        positions.update(batch.positions)
                        batch = Batch()
        return state, batch

    def _scan_needed(
        self, shard: _Shard, state: ShardState, *, asked: bool | None, now_ms: int
    ) -> bool:
        unscanned = self._listing and any(t not in state.cursors for t in self._codecs)
        if self.feed is None or not state.complete or unscanned or asked:
            return True
        if asked is False:
            return False
        last = shard.scanned_at
        return last is None or now_ms / 1000 - last >= self.feed.full_scan_interval

    def _mine(self, stream: StreamName, shard: int) -> bool:
        return self.shards == 1 or shard_of(stream, self.shards) == shard

    async def _scanned(self, shard: int) -> list[tuple[StreamName, int | None]]:
        return [
            (stream, None)
            for stream_type in self._codecs
            async for stream in self.event_store.streams(stream_type)
            if self._mine(stream, shard)
        ]

    async def _from_feed(
        self, shard: int, cursors: dict[str, int], started_ms: int
    ) -> list[tuple[StreamName, int | None]]:
        """The streams of this shard the ``_feed/`` names since the cursors, newest version.

        Moves ``cursors`` to the newest entry listed, never later than ``started_ms``.
        """
        newest: dict[StreamName, int] = {}
        keys = self.event_store.keys
        lookback_ms = 0 if self.feed is None else int(self.feed.lookback * 1000)
        for stream_type in self._codecs:
            cursor = cursors.get(stream_type, 0)
            listed = self.event_store.objects.list_keys(
                keys.feed_prefix(stream_type),
                start_after=keys.feed_cursor(stream_type, cursor - lookback_ms),
            )
            async for key in listed:
                entry = keys.parse_feed_key(stream_type, key)
                cursor = max(cursor, min(entry.at_ms, started_ms))
                if self._mine(entry.stream, shard):
                    newest[entry.stream] = max(entry.version, newest.get(entry.stream, 0))
            cursors[stream_type] = cursor
        return list(newest.items())

    def _from_notifications(
        self,
        shard: int,
        notified: Notified,
    ) -> list[tuple[StreamName, int | None]]:
        newest: dict[StreamName, int] = {}
        for stream, version in notified.changes:
            if stream.type in self._codecs and self._mine(stream, shard):
                newest[stream] = max(version, newest.get(stream, 0))
        return list(newest.items())

    async def _fetched(
        self, streams: list[tuple[StreamName, int | None]], positions: dict[str, int]
    ) -> AsyncGenerator[tuple[StreamName, list[Chunk] | StreamDeleted | None], None]:
        """Each of ``streams`` with its chunks past its position, in order, read ahead.

        At most four reads per reader are in flight; those not started yet when the iterator
        is closed are cancelled.
        """
        window: collections.deque[
            tuple[StreamName, AsyncFuture[list[Chunk] | StreamDeleted | None]]
        ] = collections.deque()
        pending = iter(streams)
        try:
            while True:
                while len(window) < 4 * self.options.batching.read_concurrency:
                    stream, named = next(pending, (None, None))
                    if stream is None:
                        break
                    after = positions.get(str(stream), 0)
                    window.append(
                        (stream, self._readers.submit(self._fetch, (stream, named, after)))
                    )
                if not window:
                    return
                stream, future = window.popleft()
                yield stream, await async_outcome(future)
        finally:
            for _, future in window:
                cancel(future)

    async def _fetch(
        self, read: tuple[StreamName, int | None, int]
    ) -> list[Chunk] | StreamDeleted | None:
        """The chunks of ``read``'s stream past its position (None if it has not moved)."""
        stream, named, after = read
        version = await self.event_store.version(stream) if named is None else named
        if version <= after:
            return None
        try:
            chunks = [chunk async for chunk in self.event_store.chunks(stream, after_version=after)]
        except StreamDeleted as deleted:
            return deleted
        # None too if the stream ends below a fence gap at or before ``after``: a fence round
        # whose lower fence is not stored (yet), above versions already read.
        return chunks or None

    def _events(self, chunks: list[Chunk]) -> Iterator[RecordedEvent[Any]]:
        keys = self.event_store.keys
        for chunk in chunks:
            key = keys.chunk_key(chunk.stream, chunk.version, chunk.number)
            yield from self._recorded(chunk, key)

    async def _commit_state(
        self,
        generation: Generation,
        changes: list[Change],
        positions: dict[str, int],
        state: ShardState,
        lease: Lease,
    ) -> ShardState:
        """Commit, and judge a refusal: fenced, superseded, or a document to fold again."""
        state = attrs.evolve(state, commit_id=uuid.uuid4().hex)
        try:
            return await self.store.commit(generation, changes, positions, state)
        except ReadModelConflict as conflict:
            stored = await self.store.shard_state(generation, state.shard, state.shards)
            if stored is not None and stored.epoch > lease.epoch:
                raise Fenced(self.name, lease.epoch, stored.epoch) from conflict
            if (stored is None) != (state.revision is None) or (
                stored is not None and stored.revision != state.revision
            ):
                raise Superseded from conflict
            raise DocumentConflict from conflict


__all__ = [
    "AsyncConsumer",
    "Batch",
    "DocumentConflict",
    "ShardPass",
    "shard_of",
]
