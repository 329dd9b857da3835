"""The document projector: keeps a document projection up to date in a read-model store.

It is a consumer (see :mod:`s3es._projections.consumer` for shards, leases, generations and
passes) whose batches are folded into the documents their events name, then committed with
the positions of their streams and the shard's state (see :mod:`s3es._readmodels.port` for
what "together" means on each store). Readers use a :class:`DocumentReader`.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Collection, Sequence
from contextlib import aclosing
from typing import Generic, cast

import attrs

from s3es._base.backoff import Backoff
from s3es._base.clock import Clock, utc_now
from s3es._base.coerce import as_instance
from s3es._base.concurrency import async_pause
from s3es._base.progress import Progress
from s3es._base.tracing import Attributes, traced
from s3es._eventstore._async.store import AsyncEventStore
from s3es._projections._async.consumer import AsyncConsumer
from s3es._projections._async.notifications import AsyncChangeNotifications
from s3es._projections.documents import D, DocumentCodec, DocumentProjection
from s3es._projections.values import (
    Batch,
    DocumentConflict,
    DocumentPass,
    Lease,
    document_pass_attributes,
)
from s3es._readmodels._async.port import AsyncReadModelStore
from s3es._readmodels.port import Body, Change, Generation, ShardState, StoredDocument
from s3es.errors import (
    GenerationChanged,
    ObjectStoreError,
    StreamDeleted,
)

#: How often a commit is folded again after another shard wrote one of its documents, and
#: how long it waits before each new attempt (jittered: contending shards spread out).
_COMMIT_ATTEMPTS = 20
_COMMIT_BACKOFF = Backoff(initial=0.002, maximum=0.2)
#: Documents a reader reads before it checks that their generation is still live, and gives
#: them; and how often a read the switch of generations overtook is made.
READ_PAGE = 500
_READ_ATTEMPTS = 2


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

    ``shards`` is how many shards the projection runs as (the same number in every process);
    ``shard_ids`` the ones this projector runs (all of them by default). ``catch_up`` runs one
    pass of each: takes or renews the shard's lease (a shard whose lease another projector
    holds is left to it), brings the shard's documents up to date, and commits every
    ``commit_every`` events and at the end. ``feed``: False scans every stream each pass; True
    lists the event store's ``_feed/`` objects (its appenders need ``EventStore(feed=True)``);
    a :class:`ChangeNotifications` receives S3 event notifications. With a feed, a shard's
    first pass, and the first ``full_scan_interval`` seconds after its last full scan, scans
    all its streams anyway: the feed is a hint, the scan the net. ``read_concurrency`` threads
    (tasks, in the asyncio API) read streams ahead of the fold, which stays in one thread (one
    task): ``apply`` needs no locks.
    """

    def __init__(
        self,
        event_store: AsyncEventStore,
        projection: DocumentProjection[D] | type[DocumentProjection[D]],
        store: AsyncReadModelStore,
        *,
        shards: int = 1,
        shard_ids: Sequence[int] | None = None,
        owner: str | None = None,
        lease_ttl: float = 30.0,
        feed: bool | AsyncChangeNotifications = False,
        feed_lookback: float = 30.0,
        full_scan_interval: float = 3600.0,
        commit_every: int = 1000,
        read_concurrency: int = 8,
        clock: Clock = utc_now,
    ) -> None:
        self.projection: DocumentProjection[D] = as_instance(projection)
        self._codec = DocumentCodec(self.projection)
        super().__init__(
            event_store,
            store,
            name=self._codec.name,
            schema=self._codec.schema,
            codecs=self._codec.codecs,
            shards=shards,
            shard_ids=shard_ids,
            owner=owner,
            lease_ttl=lease_ttl,
            feed=feed,
            feed_lookback=feed_lookback,
            full_scan_interval=full_scan_interval,
            commit_every=commit_every,
            read_concurrency=read_concurrency,
            clock=clock,
        )

    def reader(self) -> AsyncDocumentReader[D]:
        """A reader of the live generation's documents (no lease needed)."""
        return AsyncDocumentReader(self.store, self.projection)

    @traced(start=lambda self, **_: _pass_span("catch_up", self.name), end=document_pass_attributes)
    async def catch_up(
        self, *, full_scan: bool | None = None, progress: Progress | None = None
    ) -> DocumentPass:
        """One pass of each of this projector's shards.

        ``full_scan`` forces (True) or forbids (False) a scan of every stream; a shard scans
        anyway without a feed, before its first full scan is applied, and when it has no feed
        cursor yet. ``progress`` is told ``(streams done, streams)`` per shard. Raises LeaseHeld
        if another projector holds every one of its shards; a shard fenced by a newer epoch
        during the pass is reported in ``fenced`` (its lease is dropped, its uncommitted work
        forgotten) and taken again at a later pass.
        """
        passes, held, fenced, requests = await self._passes(full_scan=full_scan, progress=progress)
        return DocumentPass(tuple(passes), held, fenced, requests)

    async def rebuild(self, *, progress: Progress | None = None) -> DocumentPass:
        """Build a new generation from every event beside the live one, then switch to it.

        Readers keep the live generation, complete, until the new one is: then one write
        switches them, and the old generation is dropped. With several shards in several
        processes, each one's next passes join the build; the shard that completes it last
        switches. Returns the first pass over this projector's shards (a full scan). Raises
        LeaseHeld, having started nothing, if other projectors hold every one of its shards.
        """
        await self._hold_any_lease()
        await self._begin_build(force=True)
        for shard in self._shards:
            shard.forget()
        return await self.catch_up(full_scan=True, progress=progress)

    # Commits -------------------------------------------------------------------------------

    async def _fold(self, generation: Generation, batch: Batch) -> dict[str, _Working[D]]:
        """The documents ``batch`` changes, read from the store and folded with its events.

        A store that is not atomic may hold a document ahead of its stream's position (a
        commit that died half-way): the events its ``applied`` map holds are skipped.
        """
        keys = self._keys(batch)
        stored = await self.store.get_many(generation, keys)  # the batch's documents, at once
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
            for key in self._codec.keys(item):
                doc = working[key]
                if doc.stored.get(name, 0) >= item.version:
                    continue
                current = doc.document
                if current is None:
                    current = self.projection.initial_document(key)
                doc.document = self._codec.apply(current, item, key)
                doc.applied[name] = item.version
                doc.changed = True
        return working

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
        what they hold already).
        """
        for attempt in range(_COMMIT_ATTEMPTS):
            if attempt:
                await async_pause(_COMMIT_BACKOFF.delay(attempt, self._random))
            working = await self._fold(generation, batch)
            changes = [
                Change(
                    key,
                    None if doc.document is None else self._codec.encode(key, doc.document),
                    doc.revision,
                    doc.applied if not self.store.atomic else {},
                )
                for key, doc in working.items()
                if doc.changed
            ]
            try:
                stored = await self._commit_state(
                    generation, changes, batch.positions, state, lease
                )
            except DocumentConflict:
                self._log.info("documents_changed", generation=generation.number)
                continue
            counts["commits"] += 1
            counts["documents"] += len(changes)
            return stored
        raise ObjectStoreError(
            "PUT",
            f"{self.name} generation {generation.number}",
            f"documents changed under each of {_COMMIT_ATTEMPTS} commits (shards contending)",
        )


class AsyncDocumentReader(Generic[D]):
    """Reads a document projection's live generation: what readers (web handlers) use.

    Each call reads which generation is live, then the documents: two GETs for a document in
    S3, two queries in SQL (where readers can also query the projection's view directly).

    A read returns what one generation holds, whole, even while a rebuild switches readers
    to a new generation and drops the old one: the switch names the new generation live
    before the old one is dropped, so a read that finds its generation still live afterwards
    read it before any of it was dropped. So ``get`` and ``get_many`` read the generations
    record again when a document is missing (not when all are found), and ``documents()``
    after each page of :data:`READ_PAGE` documents and at its end. A read the switch overtook
    is read again on the new generation, once, if it has given nothing yet; otherwise it
    raises :class:`~s3es.errors.GenerationChanged`, as it does when the generation changed
    again under the second read.
    """

    def __init__(
        self,
        store: AsyncReadModelStore,
        projection: DocumentProjection[D] | type[DocumentProjection[D]],
    ) -> None:
        self.store = store
        self.projection: DocumentProjection[D] = as_instance(projection)
        self._codec = DocumentCodec(self.projection)

    @property
    def generation(self) -> Awaitable[Generation | None]:
        """The live generation; None until the first build is complete.

        (Awaited in the asyncio API: ``await reader.generation``.)
        """
        return self._live()

    async def _live(self) -> Generation | None:
        return (await self.store.generations(self._codec.name)).live

    def _decode(self, generation: Generation, key: str, body: Body) -> D:
        where = f"{self._codec.name} generation {generation.number} document {key!r}"
        return self._codec.decode(key, body, where)

    async def get(self, key: str) -> D | None:
        """Document ``key`` of the live generation; None if there is none (or no live one).

        Raises GenerationChanged if the live generation changed under two reads in a row.
        """
        return (await self._get_many([key])).get(key)

    async def get_many(self, keys: Collection[str]) -> dict[str, D]:
        """The documents at ``keys`` of the live generation that exist, by key.

        All of one generation; one query per 500 keys in SQL, parallel GETs on S3.

        Raises GenerationChanged if the live generation changed under two reads in a row.
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

        Raises GenerationChanged if the live generation changed after some documents were
        given, or under two reads in a row.
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
