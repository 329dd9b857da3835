"""The document projector: keeps a document projection up to date in a read-model store.

It is a consumer (see :mod:`s3es._projections.consumer` for shards, leases, generations and
passes) whose batches are folded into the documents their events name, then committed with
the positions of their streams and the shard's state (see :mod:`s3es._readmodels.port` for
what "together" means on each store). Readers use a :class:`DocumentReader`.
"""

from __future__ import annotations

import collections
import hashlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Collection
from contextlib import aclosing
from typing import Any, Generic, Unpack, cast

import attrs
import cattrs

from s3es._base.backoff import Backoff
from s3es._base.clock import Clock, utc_now
from s3es._base.coerce import as_instance
from s3es._base.concurrency import async_pause
from s3es._base.converter import make_strict_converter
from s3es._base.progress import Progress
from s3es._base.tracing import Attributes, traced
from s3es._domain.aggregate import RecordedEvent
from s3es._eventstore._async.store import AsyncEventStore
from s3es._projections._async.consumer import AsyncConsumer
from s3es._projections._async.notifications import AsyncChangeNotifications
from s3es._projections.documents import D, DocumentCodec, DocumentProjection
from s3es._projections.options import (
    Batching,
    Feed,
    LeaseOptions,
    OldKeywords,
    Shards,
    consumer_options,
)
from s3es._projections.values import (
    Batch,
    DocumentConflict,
    DocumentPass,
    Lease,
    ParkedDocument,
    ShardPass,
    document_pass_attributes,
    shard_of,
)
from s3es._readmodels._async.port import AsyncReadModelStore
from s3es._readmodels.port import Body, Change, Generation, ShardState, StoredDocument
from s3es._readmodels.values import check_document
from s3es._storage.keys import StreamName
from s3es._storage.metering import measure_requests
from s3es.errors import (
    CorruptReadModel,
    DomainContractError,
    GenerationChanged,
    InvalidConfiguration,
    ObjectStoreError,
    ReadModelConflict,
    ReadModelStoreError,
    StreamDeleted,
    UnstorableDocument,
)

#: How often a commit is folded again after another shard wrote one of its documents, and
#: how long it waits before each new attempt (jittered: contending shards spread out).
_COMMIT_ATTEMPTS = 20
_COMMIT_BACKOFF = Backoff(initial=0.002, maximum=0.2)
#: Documents a reader reads before it checks that their generation is still live, and gives
#: them; and how often a read the switch of generations overtook is made.
READ_PAGE = 500
_READ_ATTEMPTS = 2
#: The suffix of the name under which a projection's parked documents are kept, per
#: generation, beside its documents (not among them: SQL readers of its view would see them).
PARKED_SUFFIX = "__parked"
#: Parked documents are documents of that namespace, stored strictly.
_CONVERTER = make_strict_converter(forbid_extra_keys=True)
#: Failures of S3 or of the store: never an event's fault, so never parked.
_STORE_FAILURES = (ObjectStoreError, ReadModelStoreError, CorruptReadModel)


class _Poisoned(Exception):  # noqa: N818 - a signal: park this event for this document
    """``event`` could not be applied to document ``key`` (``error`` says why)."""

    def __init__(self, event: RecordedEvent[Any], key: str, error: str) -> None:
        super().__init__(error)
        self.event, self.key, self.error = event, key, error


class _Unstorable(Exception):  # noqa: N818 - a signal: find the event that made it so
    """Document ``key``, folded, is no document a store keeps."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _described(error: BaseException) -> str:
    return f"{type(error).__qualname__}: {error}"


def _parked_key(event_id: str, key: str) -> str:
    """The key of the record of ``event_id`` parked for document ``key`` (both bounded)."""
    return f"{event_id[:120]}~{hashlib.sha256(f'{event_id}/{key}'.encode()).hexdigest()[:32]}"


@attrs.define
class _Working(Generic[D]):
    """A document being changed by a batch: as read, and as folded so far."""

    revision: str | None
    #: The stream versions the stored document holds: events up to them are skipped. (Not
    #: the versions folded so far: the events of one version, one append, share it.)
    stored: dict[str, int]
    document: D | None
    changed: bool = False
    #: The stream versions the document will hold once the batch is committed.
    applied: dict[str, int] = attrs.Factory(dict)

    def __attrs_post_init__(self) -> None:
        self.applied = dict(self.stored)


def _pass_span(verb: str, name: str) -> tuple[str, Attributes]:
    return f"{verb} {name}", {"s3es.projection.name": name}


class AsyncDocumentProjector(AsyncConsumer[DocumentPass], Generic[D]):
    """Runs a :class:`DocumentProjection` over ``event_store``'s streams into ``store``.

    ``catch_up`` runs one pass of each of its shards: takes or renews the shard's lease (a shard
    whose lease another projector holds is left to it), brings the shard's documents up to
    date, and commits every ``batching.commit_every`` events and at the end; ``run`` loops
    passes. With a feed, a shard's first pass, and passes ``full_scan_interval`` seconds after
    its last full scan, scan all its streams anyway: the feed is a hint, the scan the net.
    Streams are read ahead in ``batching.read_concurrency`` threads (tasks, in the asyncio API);
    the fold stays in one, so ``evolve`` needs no locks.

    The keywords ``shard_ids``, ``owner``, ``lease_ttl``, ``feed_lookback``,
    ``full_scan_interval``, ``commit_every`` and ``read_concurrency`` still work this release,
    mapped to ``shards``, ``lease``, ``feed`` and ``batching``; they go in the next.
    """

    def __init__(
        self,
        event_store: AsyncEventStore,
        projection: DocumentProjection[D] | type[DocumentProjection[D]],
        store: AsyncReadModelStore,
        *,
        shards: int | Shards = 1,
        feed: bool | Feed | AsyncChangeNotifications = False,
        lease: LeaseOptions | None = None,
        batching: Batching | None = None,
        clock: Clock = utc_now,
        **old: Unpack[OldKeywords],
    ) -> None:
        """Make the projector; no request.

        Args:
            event_store: The streams it reads.
            projection: The projection (or its class, made with no arguments).
            store: Where the documents, positions and shard states are kept.
            shards: The number of shards (an int), or a Shards naming those it runs.
            feed: False (scan every pass), True or a Feed (list ``_feed/``), or notifications.
            lease: Its leases' owner and ttl (default: ``LeaseOptions()``).
            batching: Its commits and reads ahead (default: ``Batching()``).
            clock: Times leases, scans and the feed.
            **old: The keywords of the release before (see above).

        Raises:
            InvalidConfiguration: Naming the projection or option that cannot work.
        """
        self.projection: DocumentProjection[D] = as_instance(projection)
        self._codec = DocumentCodec(self.projection)
        options = consumer_options(
            type(self).__qualname__,
            shards=shards,
            feed=feed,
            lease=lease,
            batching=batching,
            old=old,
        )
        super().__init__(
            event_store,
            store,
            name=self._codec.name,
            schema=self._codec.schema,
            codecs=self._codec.codecs,
            options=options,
            clock=clock,
        )
        self._parked_name = f"{self.name}{PARKED_SUFFIX}"
        if self.name.endswith(PARKED_SUFFIX):
            raise InvalidConfiguration(
                f"projection {self.name!r}: a NAME ending in {PARKED_SUFFIX!r} is kept for "
                "another projection's parked documents: rename it"
            )
        self._check_parked_name(Generation(self.name, 1, self._schema, self.shards))
        self._parked: list[ParkedDocument] = []

    def _check_parked_name(self, generation: Generation) -> None:
        """InvalidConfiguration if the store cannot keep ``generation``'s parked documents."""
        try:
            self.store.check_generation(self._parked_generation(generation))
        except InvalidConfiguration as error:
            raise InvalidConfiguration(
                f"projection {self.name!r}: its parked documents of generation "
                f"{generation.number}, kept as {self._parked_name!r}, would not fit the store "
                f"({error}): shorten its NAME"
            ) from error

    def _parked_generation(self, generation: Generation) -> Generation:
        """Where the documents parked in ``generation`` are kept."""
        return attrs.evolve(generation, projection=self._parked_name)

    def reader(self) -> AsyncDocumentReader[D]:
        """A reader of the live generation's documents (no lease needed).

        Returns:
            A reader over this projector's store and projection.
        """
        return AsyncDocumentReader(self.store, self.projection)

    @traced(start=lambda self, **_: _pass_span("catch_up", self.name), end=document_pass_attributes)
    async def catch_up(
        self, *, full_scan: bool | None = None, progress: Progress | None = None
    ) -> DocumentPass:
        """One pass of each of this projector's shards.

        A shard fenced by a newer epoch during the pass is reported in ``fenced`` (its lease is
        dropped, its uncommitted work forgotten) and taken again at a later pass.

        Args:
            full_scan: True forces, False forbids a scan of every stream; a shard scans anyway
                without a feed, before its first full scan is applied, and when it has no feed
                cursor yet. None: as the feed's ``full_scan_interval`` says.
            progress: Told ``(streams done, streams)`` per shard.

        Returns:
            What each shard's pass did, the shards held elsewhere or fenced, the requests
            sent, and the documents parked.

        Raises:
            LeaseHeld: Another projector holds every one of its shards.
        """
        self._parked = []
        passes, held, fenced, requests = await self._passes(full_scan=full_scan, progress=progress)
        return DocumentPass(tuple(passes), held, fenced, requests, tuple(self._parked))

    async def rebuild(self, *, progress: Progress | None = None) -> DocumentPass:
        """Build a new generation from every event beside the live one, then switch to it.

        Readers keep the live generation, complete, until the new one is: then one write
        switches them, and the old generation is dropped. With several shards in several
        processes, each one's next passes join the build; the shard that completes it last
        switches.

        Args:
            progress: Told ``(streams done, streams)`` per shard.

        Returns:
            The first pass over this projector's shards (a full scan), counting every request
            of the rebuild (the leases' and the generations record's too).

        Raises:
            LeaseHeld: Other projectors hold every one of its shards; nothing was started.
        """
        with measure_requests() as meter:
            await self._hold_any_lease()
            await self._begin_build(force=True)
            for shard in self._shards:
                shard.invalidate()
            run = await self.catch_up(full_scan=True, progress=progress)
        return attrs.evolve(run, requests=meter.counts)

    # Commits -------------------------------------------------------------------------------

    def _fold(
        self,
        generation: Generation,
        batch: Batch,
        stored: dict[str, StoredDocument],
        *,
        held: dict[str, int],
        skipped: set[tuple[str, str]],
        watch: str | None = None,
    ) -> dict[str, _Working[D]]:
        """The documents ``batch`` changes, folded from ``stored`` with its events.

        A store that is not atomic may hold a document ahead of its stream's position (a
        commit that died half-way): the events its ``applied`` map holds are skipped. The
        events of a stream in ``held`` from its version on are left out, and each event of
        ``skipped`` for its document. Raises _Poisoned for an event ``evolve`` fails on (and,
        with ``watch``, for the first after which document ``watch`` cannot be stored).
        """
        keys = self._keys(batch)
        working = {key: self._working(generation, key, stored.get(key)) for key in keys}
        for item in batch.events:
            if isinstance(item, StreamDeleted):
                name = str(item.stream)
                for key in self.projection.forgotten_ids(item.stream):
                    doc = working[key]
                    if doc.document is None or doc.stored.get(name, 0) >= item.version:
                        continue
                    doc.document = self.projection.forget(doc.document, item.stream)
                    doc.applied[name] = item.version
                    doc.changed = True
                self._log.info("stream_deleted", stream=name, version=item.version)
                continue
            name = str(item.stream)
            if item.version >= held.get(name, item.version + 1):
                continue
            for key in self._codec.keys(item):
                doc = working[key]
                if doc.stored.get(name, 0) < item.version and (item.id, key) not in skipped:
                    self._apply(doc, item, key, watched=key == watch)
        return working

    def _apply(
        self, doc: _Working[D], item: RecordedEvent[Any], key: str, *, watched: bool
    ) -> None:
        """Apply ``item`` to ``doc``; _Poisoned if ``evolve`` fails.

        ``watched``: _Poisoned too if the document can no longer be stored after it.
        """
        current = doc.document
        try:
            if current is None:
                current = self.projection.initial_state(key)
            doc.document = self._codec.evolve(current, item, key)
        except (*_STORE_FAILURES, DomainContractError):
            # The store's failure, not the event's: the pass fails, and runs again; or the
            # projection breaks its contract (evolve returned None), for every event.
            raise
        except Exception as error:
            raise _Poisoned(item, key, _described(error)) from error
        doc.applied[str(item.stream)] = item.version
        doc.changed = True
        problem = self._unstorable(key, doc.document) if watched else None
        if problem is not None:
            raise _Poisoned(
                item,
                key,
                f"projection {self.name}: document {key!r} after event {item.id} "
                f"({item.stream} version {item.version}) cannot be stored: {problem}",
            )

    def _unstorable(self, key: str, document: D | None) -> str | None:
        """Why no store keeps ``document`` (the converter's JSON of it); None if one does."""
        return None if document is None else self._encoded(key, document)[1]

    def _encoded(self, key: str, document: D) -> tuple[Body, str | None]:
        """``document``'s JSON, and why no store keeps it (None if one does)."""
        try:
            body = self._codec.encode(key, document)
            check_document(key, body)
        except UnstorableDocument as error:
            return None, str(error)
        except _STORE_FAILURES:
            raise
        except Exception as error:  # noqa: BLE001 - NotJSON, a converter's
            return None, _described(error)
        return body, None

    def _keys(self, batch: Batch) -> dict[str, None]:
        """The keys of the documents ``batch`` changes (or tells of a deletion), in order."""
        keys: dict[str, None] = {}
        for item in batch.events:
            if isinstance(item, StreamDeleted):
                keys.update(dict.fromkeys(self.projection.forgotten_ids(item.stream)))
            else:
                keys.update(dict.fromkeys(self._codec.keys(item)))
        return keys

    def _working(
        self, generation: Generation, key: str, stored: StoredDocument | None
    ) -> _Working[D]:
        if stored is None:
            return _Working(None, {}, None)
        where = f"{self.name} generation {generation.number} document {key!r}"
        document = None if stored.body is None else self._codec.decode(key, stored.body, where)
        return _Working(stored.revision, dict(stored.applied), document)

    async def _prepare(
        self, generation: Generation, batch: Batch
    ) -> tuple[list[Change], dict[str, int], list[tuple[ParkedDocument, str | None]]]:
        """The changes ``batch`` makes, the positions to commit, and the documents to park.

        An event that ``evolve`` fails on for a document, or after which the document is no
        longer one a store keeps, holds its stream: the stream's events from its version on
        are left out (of every document) and its position stays before it; it is parked,
        unless an operator skipped it for that document. The fold runs again without it, so
        that one poisoned document stalls neither the batch nor the shard.
        """
        stored = await self.store.get_many(generation, self._keys(batch))
        held: dict[str, int] = {}
        skipped: set[tuple[str, str]] = set()
        parking: list[tuple[ParkedDocument, str | None]] = []
        while True:
            try:
                try:
                    working = self._fold(generation, batch, stored, held=held, skipped=skipped)
                    changes = self._changes(working)
                except _Unstorable as unstorable:
                    key = unstorable.key
                    self._fold(generation, batch, stored, held=held, skipped=skipped, watch=key)
                    # No event made it so: forget() did, for a deleted stream.
                    raise DomainContractError(
                        f"projection {self.name}: document {key!r} cannot be stored after "
                        f"forget(): {self._unstorable(key, working[key].document)}"
                    ) from None
            except _Poisoned as poisoned:
                event, key = poisoned.event, poisoned.key
                place = self._parked_generation(generation)
                found = await self.store.get(place, _parked_key(event.id, key))
                record = None if found is None or found.body is None else self._record(found)
                if record is not None and record.status == "skipped":
                    skipped.add((event.id, key))
                    continue
                held[str(event.stream)] = event.version
                parked = ParkedDocument(
                    self.name,
                    generation.number,
                    key,
                    event.id,
                    str(event.stream),
                    event.version,
                    event.type,
                    poisoned.error,
                    self._clock(),
                )
                # A record of this event and document parked already is kept as it is.
                revision = "" if record is not None else None if found is None else found.revision
                parking.append((parked, revision))
                continue
            positions = dict(batch.positions)
            for stream, version in held.items():
                positions[stream] = version - 1
            return changes, positions, parking

    def _changes(self, working: dict[str, _Working[D]]) -> list[Change]:
        """The changes of the documents changed; _Unstorable for one no store keeps."""
        changes = []
        for key, doc in working.items():
            if not doc.changed:
                continue
            body: Body = None
            if doc.document is not None:
                body, problem = self._encoded(key, doc.document)
                if problem is not None:
                    raise _Unstorable(key)
            changes.append(
                Change(key, body, doc.revision, doc.applied if not self.store.atomic else {})
            )
        return changes

    async def _process(
        self,
        generation: Generation,
        batch: Batch,
        state: ShardState,
        lease: Lease,
        counts: collections.Counter[str],
    ) -> ShardState:
        """Fold ``batch`` into the documents it names and commit them with its positions.

        A document another shard wrote meanwhile is read again and the batch folded again
        (an atomic store wrote nothing of the refused commit; the S3 store's documents skip
        what they hold already). The documents parked are stored first, beside the
        generation; their streams' positions stay before their events.
        """
        for attempt in range(_COMMIT_ATTEMPTS):
            if attempt:
                await async_pause(_COMMIT_BACKOFF.delay(attempt, self._random))
            changes, positions, parking = await self._prepare(generation, batch)
            await self._park(generation, state.shard, parking)
            try:
                stored = await self._commit_state(generation, changes, positions, state, lease)
            except DocumentConflict:
                self._log.info("documents_changed", generation=generation.number)
                continue
            batch.positions.update(positions)  # what this projector knows of them from now
            counts["commits"] += 1
            counts["documents"] += len(changes)
            self._parked.extend(record for record, _ in parking)
            return stored
        raise ObjectStoreError(
            "PUT",
            f"{self.name} generation {generation.number}",
            f"documents changed under each of {_COMMIT_ATTEMPTS} commits (shards contending)",
        )

    # Parked documents ----------------------------------------------------------------------

    async def _drop(self, generation: Generation) -> None:
        await self.store.drop(generation)
        await self.store.drop(self._parked_generation(generation))

    def _record(self, stored: StoredDocument) -> ParkedDocument:
        try:
            return _CONVERTER.structure(stored.body, ParkedDocument)
        except (cattrs.BaseValidationError, TypeError, ValueError) as error:
            raise CorruptReadModel(
                f"{self.name} parked document {stored.key}", repr(error)
            ) from error

    async def _park(
        self,
        generation: Generation,
        shard: int,
        parking: list[tuple[ParkedDocument, str | None]],
    ) -> None:
        """Store the records of ``parking`` not stored yet (revision "": kept as it is)."""
        changes = [
            Change(_parked_key(record.event_id, record.key), self._body(record), revision)
            for record, revision in parking
            if revision != ""
        ]
        for record, _ in parking:
            self._log.warning(
                "document_parked",
                key=record.key,
                event_id=record.event_id,
                stream=record.stream,
                version=record.version,
                error=record.error,
            )
        if changes:
            await self._commit_parked(generation, shard, changes)

    @staticmethod
    def _body(record: ParkedDocument) -> Body:
        return _CONVERTER.unstructure(record)

    async def _commit_parked(
        self, generation: Generation, shard: int, changes: list[Change]
    ) -> None:
        """Commit ``changes`` to the parked documents of ``generation`` under ``shard``'s state.

        A change whose record moved meanwhile (an operator's retry or skip) is made again on
        the record as it is now.
        """
        place = self._parked_generation(generation)
        self._check_parked_name(generation)
        for _ in range(_COMMIT_ATTEMPTS):
            state = await self.store.shard_state(place, shard, self.shards)
            if state is None:
                state = ShardState(shard, self.shards, 0)
            try:
                await self.store.commit(
                    place, changes, {}, attrs.evolve(state, commit_id=uuid.uuid4().hex)
                )
            except ReadModelConflict:
                found = await self.store.get_many(place, [change.key for change in changes])
                changes = [
                    attrs.evolve(
                        change,
                        revision=None if change.key not in found else found[change.key].revision,
                    )
                    for change in changes
                ]
                continue
            return
        raise ObjectStoreError(
            "PUT", f"{self.name} parked documents", "the records kept changing under each attempt"
        )

    async def _writing_generation(self) -> Generation:
        """The generation passes write (being built, else live), where they park."""
        record = await self._named_record()
        generation = record.building or record.live
        if generation is None:
            raise InvalidConfiguration(f"projection {self.name} has not run yet: nothing is parked")
        return generation

    async def parked(self, *, skipped: bool = False) -> list[ParkedDocument]:
        """The documents parked in the generation passes write, by stream and version.

        A record whose stream has moved past its event since (a projector started with fixed
        code applied it) is not listed.

        Args:
            skipped: List those an operator skipped too.

        Returns:
            The parked (and skipped) documents, by stream, version and key.

        Raises:
            InvalidConfiguration: The projection has not run yet.
        """
        generation = await self._writing_generation()
        records = [
            self._record(stored)
            async for stored in self.store.documents(self._parked_generation(generation))
        ]
        held = [r for r in records if r.status == "parked"]
        positions = await self.store.positions(generation, {r.stream for r in held})
        return sorted(
            (
                r
                for r in records
                if (r.status == "parked" and positions.get(r.stream, 0) < r.version)
                or (skipped and r.status == "skipped")
            ),
            key=lambda r: (r.stream, r.version, r.key),
        )

    async def retry(self, event_id: str) -> DocumentPass:
        """Apply the stream held by parked event ``event_id`` now, from that event on.

        The records of the event are removed first; if it fails again (the projection is not
        fixed yet) it is parked again, which the result's ``parked`` says.

        Args:
            event_id: The id of a parked event, as :meth:`parked` lists it.

        Returns:
            The pass that applied the stream.

        Raises:
            InvalidConfiguration: No such event is parked, or its shard has no state.
        """
        return await self._settle(event_id, skip=False)

    async def skip(self, event_id: str) -> DocumentPass:
        """Apply the stream held by parked event ``event_id``, without it for its documents.

        The event is applied to the other documents it names; the records are kept, marked
        skipped.

        Args:
            event_id: The id of a parked event, as :meth:`parked` lists it.

        Returns:
            The pass that applied the stream.

        Raises:
            InvalidConfiguration: No such event is parked, or its shard has no state.
        """
        return await self._settle(event_id, skip=True)

    async def _settle(self, event_id: str, *, skip: bool) -> DocumentPass:
        records = [r for r in await self.parked() if r.event_id == event_id]
        if not records:
            raise InvalidConfiguration(f"projection {self.name}: no event {event_id!r} is parked")
        generation = await self._writing_generation()
        stream_type, _, stream_id = records[0].stream.partition("/")
        stream = StreamName(stream_type, stream_id)
        shard = shard_of(stream, self.shards)
        if await self.store.shard_state(generation, shard, self.shards) is None:
            raise InvalidConfiguration(
                f"projection {self.name}: {stream} is in shard {shard} of {self.shards}, which "
                "has no state: give the number of shards the projection runs with"
            )
        with measure_requests() as meter:
            place = self._parked_generation(generation)
            found = await self.store.get_many(
                place, [_parked_key(r.event_id, r.key) for r in records]
            )
            await self._commit_parked(
                generation,
                shard,
                [
                    Change(
                        stored.key,
                        self._body(attrs.evolve(self._record(stored), status="skipped"))
                        if skip
                        else None,
                        stored.revision,
                    )
                    for stored in found.values()
                ],
            )
            self._parked = []
            shard_pass = await self._apply_held(generation, stream, shard)
            self._log.warning(
                "parked_event_skipped" if skip else "parked_event_retried",
                event_id=event_id,
                stream=str(stream),
                parked_again=len(self._parked),
            )
        return DocumentPass((shard_pass,), (), (), meter.counts, tuple(self._parked))

    async def _apply_held(
        self, generation: Generation, stream: StreamName, shard: int
    ) -> ShardPass:
        """Apply ``stream`` past its position now, committed with its shard's state as stored.

        A projector running the shard sees its state changed at its next commit, and starts
        its pass again on what is stored.
        """
        name = str(stream)
        for _ in range(_COMMIT_ATTEMPTS):
            state = await self.store.shard_state(generation, shard, self.shards)
            if state is None:  # pragma: no cover - checked by the caller
                raise InvalidConfiguration(f"projection {self.name}: shard {shard} has no state")
            position = (await self.store.positions(generation, [name])).get(name, 0)
            fetched = await self._fetch((stream, None, position))
            batch = Batch()
            if isinstance(fetched, StreamDeleted):
                batch.events.append(fetched)
                batch.positions[name] = fetched.version
            elif fetched is not None:
                batch.events.extend(self._events(fetched))
                batch.positions[name] = fetched[-1].version
            changes, positions, parking = await self._prepare(generation, batch)
            await self._park(generation, shard, parking)
            try:
                await self.store.commit(
                    generation, changes, positions, attrs.evolve(state, commit_id=uuid.uuid4().hex)
                )
            except ReadModelConflict:
                continue
            self._parked.extend(record for record, _ in parking)
            moved = positions.get(name, position)
            applied = sum(
                1
                for event in batch.events
                if not isinstance(event, StreamDeleted) and event.version <= moved
            )
            return ShardPass(
                shard,
                generation,
                full_scan=False,
                streams=1,
                events=applied,
                commits=1,
                documents=len(changes),
            )
        raise ObjectStoreError(
            "PUT",
            f"{self.name} shard {shard}",
            "the shard's state kept changing under each attempt",
        )


class AsyncDocumentReader(Generic[D]):
    """Reads a document projection's live generation: what readers (web handlers) use.

    Make one from the projector's store and projection (or with its projector's ``reader()``);
    it takes no lease. Each call reads which generation is live, then the documents: two GETs
    for a document in S3, two queries in SQL (where readers can also query the projection's
    view directly). A call returns what one generation holds, whole, even while a rebuild
    switches readers to a new generation and drops the old one: a read the switch overtook
    is read again, once, or raises :class:`~s3es.errors.GenerationChanged` (see Generations in
    docs/projections.md).
    """

    def __init__(
        self,
        store: AsyncReadModelStore,
        projection: DocumentProjection[D] | type[DocumentProjection[D]],
    ) -> None:
        """Make the reader; no request.

        Args:
            store: The read-model store the projection's projectors write.
            projection: The projection (or its class, made with no arguments).
        """
        self.store = store
        self.projection: DocumentProjection[D] = as_instance(projection)
        self._codec = DocumentCodec(self.projection)

    @property
    def generation(self) -> Awaitable[Generation | None]:
        """The live generation; None until the first build is complete.

        Read at each access: one GET of the generations record (a query in SQL). Awaited in
        the asyncio API: ``await reader.generation``.
        """
        return self._live()

    async def _live(self) -> Generation | None:
        return (await self.store.generations(self._codec.name)).live

    def _decode(self, generation: Generation, key: str, body: Body) -> D:
        where = f"{self._codec.name} generation {generation.number} document {key!r}"
        return self._codec.decode(key, body, where)

    async def get(self, key: str) -> D | None:
        """Document ``key`` of the live generation.

        Found, it costs no read of the generations record again; missing, the record is read
        again, and the document read on the new generation if a switch overtook the read.

        Args:
            key: The document's key.

        Returns:
            The document; None if there is none, or no live generation.

        Raises:
            GenerationChanged: The document was missing, and the live generation had changed
                under the read and again under the read on the new one.
            CorruptReadModel: The stored document does not fit the projection's type.
            ObjectStoreError: A request of an S3 store failed.
            ReadModelStoreError: A SQL store failed.
        """
        return (await self._get_many([key])).get(key)

    async def get_many(self, keys: Collection[str]) -> dict[str, D]:
        """The documents at ``keys`` of the live generation that exist, by key.

        All of one generation; one query per 500 keys in SQL, parallel GETs on S3. As for
        :meth:`get`, the generations record is read again only when a document is missing.

        Args:
            keys: The documents' keys (a key given twice is read once).

        Returns:
            The documents found, by key; empty if there is no live generation.

        Raises:
            GenerationChanged: A document was missing, and the live generation had changed
                under the read and again under the read on the new one.
            CorruptReadModel: A stored document does not fit the projection's type.
            ObjectStoreError: A request of an S3 store failed.
            ReadModelStoreError: A SQL store failed.
        """
        return await self._get_many(list(dict.fromkeys(keys)))

    async def _get_many(self, keys: list[str]) -> dict[str, D]:
        generation = await self._live()
        for attempt in range(_READ_ATTEMPTS):
            if generation is None:
                return {}
            if len(keys) == 1:
                one = await self.store.get(generation, keys[0])
                stored = {} if one is None else {one.key: one}
            else:
                stored = await self.store.get_many(generation, keys)
            if len(stored) < len(keys):  # one missing: was it dropped under this read?
                live = await self._live()
                if live != generation:
                    if attempt + 1 == _READ_ATTEMPTS:
                        raise GenerationChanged(self._codec.name, generation, live)
                    generation = live
                    continue
            return {
                key: self._decode(generation, key, document.body)
                for key, document in stored.items()
                if document.body is not None
            }
        raise AssertionError("unreachable")  # pragma: no cover

    async def documents(self) -> AsyncIterator[tuple[str, D]]:
        """Every document of the live generation, by key in ascending order.

        The documents come in pages of :data:`READ_PAGE`: each is given once the generations
        record, read again, says its generation is still live. A read the switch overtook
        before it gave anything starts again on the new generation, once.

        Yields:
            ``(key, document)`` pairs, all of one generation; none if there is no live
            generation.

        Raises:
            GenerationChanged: The live generation changed after some documents were given,
                or changed under the read and again under the read on the new one.
            CorruptReadModel: A stored document does not fit the projection's type.
            ObjectStoreError: A request of an S3 store failed.
            ReadModelStoreError: A SQL store failed.
        """
        generation = await self._live()
        given = False
        for attempt in range(_READ_ATTEMPTS):
            if generation is None:
                return
            page: list[StoredDocument] = []
            live: Generation | None = generation
            # Every store's documents() is a generator: closed once this read stops early.
            listing = cast("AsyncGenerator[StoredDocument, None]", self.store.documents(generation))
            async with aclosing(listing) as stored:
                async for document in stored:
                    page.append(document)
                    if len(page) < READ_PAGE:
                        continue
                    live = await self._live()
                    if live != generation:
                        break
                    for read in page:
                        yield read.key, self._decode(generation, read.key, read.body)
                    given = True
                    page = []
                else:
                    live = await self._live()
            if live == generation:
                for read in page:
                    yield read.key, self._decode(generation, read.key, read.body)
                return
            if given or attempt + 1 == _READ_ATTEMPTS:
                raise GenerationChanged(self._codec.name, generation, live)
            generation = live


__all__ = [
    "AsyncDocumentProjector",
    "AsyncDocumentReader",
    "DocumentPass",
]
