# Generated from src/s3es/_projections/_async/projector.py by tools/async_to_sync.py: do not edit.
"""The projector of a whole-model projection: a consumer of one shard and one document.

A :class:`~s3es.projections.Projection` folds events into one model. Its projector is a
consumer (see :mod:`s3es._projections.consumer`: the lease, generations, the scan, the
feed, the reads and the run loop are the ones document projectors and reactors use) whose
store, an :class:`ModelStore`, keeps each generation in one S3 object: the model, the
version of each stream applied to it (its checkpoints), the shard's epoch, whether a full scan
is applied, and the feed cursors. One conditional PUT commits them together, so an event is
never applied twice or skipped, whatever crashes.
"""

from __future__ import annotations

import collections
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, NewType, Unpack

import attrs
import cattrs

from s3es._base.clock import Clock, utc_now
from s3es._base.coerce import as_instance
from s3es._base.converter import make_strict_converter
from s3es._base.json import dumps, json_problem, loads
from s3es._base.progress import Progress
from s3es._base.tracing import Attributes, request_attributes, traced
from s3es._eventstore.store import EventStore
from s3es._projections.consumer import Consumer
from s3es._projections.inline import evolve_model
from s3es._projections.options import Batching, Feed, LeaseOptions, OldKeywords, consumer_options
from s3es._projections.projection import M, Projection, ProjectionCodec, ProjectionPass, ReadModel
from s3es._projections.values import Batch, Lease
from s3es._readmodels.port import Change, Generation, ShardState, StoredDocument
from s3es._readmodels.s3 import S3ReadModelStore
from s3es._storage.metering import measure_requests
from s3es.errors import (
    CorruptReadModel,
    NotJSON,
    ObjectAlreadyExists,
    ObjectChanged,
    ObjectStoreError,
    ReadModelConflict,
    StreamDeleted,
)

#: The format tag of a generation's model object.
MODEL_FORMAT = "s3es.model/1"
#: The key of the one document of a whole-model projection.
MODEL_KEY = "model"

#: A model as the projection's ``CONVERTER`` unstructured it (or as JSON read it back): the
#: object converter passes it through as it is, rather than walk it a second time.
_UnstructuredModel = NewType("_UnstructuredModel", object)
_CONVERTER = make_strict_converter(forbid_extra_keys=True)
_CONVERTER.register_unstructure_hook(_UnstructuredModel, lambda model: model)
_CONVERTER.register_structure_hook(_UnstructuredModel, lambda model, _: model)


@attrs.frozen
class _ModelObject:
    """A generation's one object, as stored."""

    format: str
    projection: str
    schema: int
    epoch: int
    complete: bool
    commit_id: str
    updated_at: datetime
    #: ``"type/id"`` -> the last version of that stream applied to the model.
    checkpoints: dict[str, int]
    cursors: dict[str, int]
    #: None until a commit carries a model (the stamp of a new epoch does not).
    model: _UnstructuredModel | None


@attrs.frozen
class _Stored:
    found: _ModelObject
    etag: str


class ModelStore(S3ReadModelStore):
    """A read-model store of one document per generation, kept in one S3 object.

    The object holds the document, its checkpoints (the positions) and the one shard's state:
    a commit is one conditional PUT, all or nothing (``atomic``). The generations record is
    the S3 store's. ``clock`` stamps each commit's ``updated_at``.
    """

    atomic = True

    def __init__(self, objects: Any, prefix: str = "", *, clock: Clock = utc_now) -> None:
        super().__init__(objects, prefix)
        self._clock = clock
        #: Each generation's object as this store last read or wrote it, by key.
        self._last: dict[str, _Stored] = {}

    def _key(self, generation: Generation) -> str:
        return f"{self.keys.generation_prefix(generation.projection, generation.number)}model.json"

    def read(self, generation: Generation, *, revision: str | None = None) -> _Stored | None:
        """The generation's object; CorruptReadModel, naming the key and field, if not one.

        The one last read or written if its ETag is ``revision`` (no request), else one GET.
        """
        key = self._key(generation)
        last = self._last.get(key)
        if revision is not None and last is not None and last.etag == revision:
            return last
        stored = self.objects.get(key)
        if stored is None:
            self._last.pop(key, None)
            return None
        try:
            found = _CONVERTER.structure(loads(stored.body), _ModelObject)
        except (ValueError, TypeError, RecursionError) as error:
            raise CorruptReadModel(key, f"not a model document: {error}") from error
        except cattrs.BaseValidationError as error:
            detail = "; ".join(cattrs.transform_error(error, path="document"))
            raise CorruptReadModel(key, detail) from error
        if found.format != MODEL_FORMAT:
            raise CorruptReadModel(key, f"format {found.format!r}, not {MODEL_FORMAT}")
        if found.projection != generation.projection:
            raise CorruptReadModel(
                key, f"the model of {found.projection!r}, not {generation.projection!r}"
            )
        self._last[key] = _Stored(found, stored.etag)
        return self._last[key]

    def last(self, generation: Generation) -> _Stored:
        """The generation's object as this store last read or wrote it (KeyError if never)."""
        return self._last[self._key(generation)]

    def get(self, generation: Generation, key: str) -> StoredDocument | None:
        """The model as a document (its ``applied``: the checkpoints), or None. One GET."""
        stored = self.read(generation) if key == MODEL_KEY else None
        if stored is None or stored.found.model is None:
            return None
        return StoredDocument(MODEL_KEY, stored.found.model, stored.etag, stored.found.checkpoints)

    def get_many(self, generation: Generation, keys: Collection[str]) -> dict[str, StoredDocument]:
        """The model, if asked for and stored."""
        found = self.get(generation, MODEL_KEY) if MODEL_KEY in keys else None
        return {} if found is None else {MODEL_KEY: found}

    def documents(self, generation: Generation) -> Iterator[StoredDocument]:
        """The model, if stored."""
        found = self.get(generation, MODEL_KEY)
        if found is not None:
            yield found

    def positions(self, generation: Generation, streams: Collection[str]) -> dict[str, int]:
        """The checkpoints of ``streams``, from the object as last read or written (else a GET).

        Safe without a GET: every commit is conditional on the object that the state read
        came from, so positions of another version of it lose their commit.
        """
        stored = self._last.get(self._key(generation)) or self.read(generation)
        if stored is None:
            return {}
        checkpoints = stored.found.checkpoints
        return {stream: checkpoints[stream] for stream in streams if stream in checkpoints}

    def shard_state(self, generation: Generation, shard: int, shards: int) -> ShardState | None:
        """The one shard's state, or None. One GET."""
        stored = self.read(generation)
        if stored is None or (shard, shards) != (0, 1):
            return None
        found = stored.found
        return ShardState(
            0, 1, found.epoch, found.complete, found.cursors, found.commit_id, stored.etag
        )

    def commit(
        self,
        generation: Generation,
        changes: Sequence[Change],
        positions: Mapping[str, int],
        state: ShardState,
    ) -> ShardState:
        """Write the model, its checkpoints and ``state`` in one PUT, if-match ``state``'s.

        Raises ReadModelConflict if the object is no longer the one ``state`` was read from,
        NotJSON, naming the projection, if the model is not JSON, and ObjectStoreError if the
        PUT failed and reading the object back cannot tell whether it is stored.
        """
        key = self._key(generation)
        base = None
        if state.revision is not None:
            base = self.read(generation, revision=state.revision)
            if base is None or base.etag != state.revision:
                raise ReadModelConflict(self.name, key, "the model changed")
        model = None if base is None else base.found.model
        checkpoints = {} if base is None else dict(base.found.checkpoints)
        for change in changes:
            if change.key != MODEL_KEY or change.revision != state.revision:
                raise ReadModelConflict(self.name, key, f"document {change.key!r} changed")
            model = change.body
        for stream, version in positions.items():
            checkpoints[stream] = max(version, checkpoints.get(stream, 0))
        written = _ModelObject(
            MODEL_FORMAT,
            generation.projection,
            generation.schema,
            state.epoch,
            state.complete,
            state.commit_id,
            self._clock(),
            checkpoints,
            dict(state.cursors),
            None if model is None else _UnstructuredModel(model),
        )
        try:
            body = dumps(_CONVERTER.unstructure(written))
        except (TypeError, ValueError, RecursionError) as error:
            problem = json_problem(model, "model") or str(error)
            raise NotJSON(
                f"projection {generation.projection}: CONVERTER did not turn the model into "
                f"JSON: {problem}"
            ) from error
        try:
            etag = self._write(key, body, state.revision)
        except (ObjectAlreadyExists, ObjectChanged, ObjectStoreError) as error:
            etag = self._judge(generation, error, state.commit_id)
        self._last[key] = _Stored(written, etag)
        return attrs.evolve(state, revision=etag)

    def drop(self, generation: Generation) -> None:
        """Delete the generation's one object. One DELETE (no LIST: it holds nothing else)."""
        key = self._key(generation)
        self._last.pop(key, None)
        self.objects.delete(key)

    def _judge(
        self,
        generation: Generation,
        error: ObjectAlreadyExists | ObjectChanged | ObjectStoreError,
        commit_id: str,
    ) -> str:
        """After a PUT that did not say it succeeded: ours (its ETag), or why not (raised)."""
        key = self._key(generation)
        try:
            found = self.read(generation)
        except ObjectStoreError as check_error:
            if isinstance(error, ObjectStoreError):
                raise error from None
            raise ObjectStoreError(
                "PUT",
                key,
                f"{error}; reading the model back failed too ({check_error.detail}), so "
                "whether this commit is stored is unknown",
            ) from error
        if found is not None and commit_id and found.found.commit_id == commit_id:
            return found.etag  # ours: its first answer was lost
        if isinstance(error, ObjectStoreError):
            raise error
        raise ReadModelConflict(self.name, key, "the model changed") from error


def _pass_span(verb: str, name: str) -> tuple[str, Attributes]:
    return f"{verb} {name}", {"s3es.projection.name": name}


def _passed(run: ProjectionPass[Any]) -> Attributes:
    return {
        "s3es.projection.full_scan": run.full_scan,
        "s3es.projection.stream_count": run.streams,
        "s3es.projection.event_count": run.events,
        "s3es.projection.commit_count": run.commits,
        **request_attributes(run.requests),
    }


class Projector(Consumer[ProjectionPass[M]], Generic[M]):
    """Runs a whole-model :class:`Projection` over the streams of ``event_store``.

    ``read`` returns the model readers see (no lease). ``catch_up`` takes or renews the lease,
    brings the model up to date, and commits it every ``batching.commit_every`` events and at
    the end; ``run`` loops passes, standing by while another projector holds the lease. A
    bumped ``SCHEMA``, or ``rebuild``, builds a new generation beside the one readers see, and
    switches them to it once it is complete. What each costs: the one-document projection and
    the requests table in docs/projections.md.

    The keywords ``owner``, ``lease_ttl``, ``feed_lookback``, ``full_scan_interval``,
    ``commit_every`` and ``read_concurrency`` still work this release, mapped to ``lease``,
    ``feed`` and ``batching``; they go in the next.
    """

    SHARDS_MAKE_A_GENERATION = False
    KIND = "model"

    def __init__(
        self,
        event_store: EventStore,
        projection: Projection[M] | type[Projection[M]],
        *,
        feed: bool | Feed = False,
        lease: LeaseOptions | None = None,
        batching: Batching | None = None,
        clock: Clock = utc_now,
        **old: Unpack[OldKeywords],
    ) -> None:
        """Make the projector; no request.

        Args:
            event_store: The streams it reads; the model is kept beside them.
            projection: The projection (or its class, made with no arguments).
            feed: False (scan every pass), True or a Feed (list ``_feed/``, which the
                appenders' event store writes with ``feed=True``; a full scan still runs on
                the first pass and every ``full_scan_interval`` seconds).
            lease: Its lease's owner and ttl (default: ``LeaseOptions()``).
            batching: Its commits and reads ahead (default: ``Batching()``): streams are
                read ahead in ``read_concurrency`` threads (tasks, in asyncio), the fold stays
                in one, so ``evolve`` needs no locks.
            clock: Times the lease, scans and the feed; stamps ``updated_at``.
            **old: The keywords of the release before (see above).

        Raises:
            InvalidConfiguration: Naming the projection or option that cannot work.
        """
        self.projection: Projection[M] = as_instance(projection)
        self._codec = ProjectionCodec(self.projection, event_store.keys)
        if "shard_ids" in old:  # one shard: it never took shard_ids
            raise TypeError(f"{type(self).__qualname__}() got an unexpected keyword 'shard_ids'")
        options = consumer_options(
            type(self).__qualname__,
            shards=1,
            feed=feed,
            lease=lease,
            batching=batching,
            old=old,
        )
        #: The store of the model's generations, on the event store's objects and prefix.
        self.models = ModelStore(event_store.objects, event_store.keys.prefix, clock=clock)
        super().__init__(
            event_store,
            self.models,
            name=self._codec.name,
            schema=self._codec.schema,
            codecs=self._codec.codecs,
            options=options,
            clock=clock,
        )
        #: The model as this projector last committed or read it: its generation and ETag.
        self._held: tuple[Generation, str, M] | None = None

    @property
    def lease(self) -> Lease | None:
        """The lease this projector holds, as it last wrote it; None if it holds none.

        No request: what it holds may have been taken over since (see :meth:`read_lease`).
        """
        return self._shards[0].lease

    def read_lease(self) -> Lease | None:
        """The projection's lease as stored, whoever holds it. One GET.

        Returns:
            The lease; None if the projection never had one.

        Raises:
            CorruptReadModel: The lease object is not this projection's lease.
            InvalidConfiguration: The lease is another kind of consumer's of the same NAME.
            ObjectStoreError: The GET failed.
        """
        return self._shards[0].keeper.read()

    def read(self) -> ReadModel[M]:
        """The model readers see. No lease; two GETs (the generations record, the model).

        Returns:
            The live generation's model if it is of this code's ``SCHEMA``, else the one being
            built (not ``complete``), else the initial model.

        Raises:
            CorruptReadModel: The model's object is not one, or its model does not fit the
                projection's type.
            ObjectStoreError: A GET failed.
        """
        record = self.models.generations(self.name)
        for generation in (record.live, record.building):
            if generation is not None and generation.schema == self._schema:
                stored = self.models.read(generation)
                if stored is not None:
                    return self._read_model(generation, stored.etag, None)
        return self._codec.initial()

    def _read_model(self, generation: Generation, etag: str, model: Any) -> ReadModel[M]:
        """The read model of ``generation``'s object as this store last saw it (ETag ``etag``)."""
        found = self.models.last(generation).found
        if model is None:
            model = self._decode(generation, found.model)
        return ReadModel(
            projection=self.name,
            schema=generation.schema,
            model=model,
            checkpoints=found.checkpoints,
            epoch=found.epoch,
            complete=found.complete,
            updated_at=found.updated_at,
            etag=etag,
        )

    def _decode(self, generation: Generation, body: Any) -> M:
        if body is None:
            return self.projection.initial_state()
        try:
            model: M = self._codec.converter.structure(body, self._codec.model_type)
        except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as error:
            raise CorruptReadModel(
                f"{self.name} generation {generation.number} model",
                f"the model does not fit {self._codec.model_type!r}: {error!r}",
            ) from error
        return model

    @traced(start=lambda self, **_: _pass_span("catch_up", self.name), end=_passed)
    def catch_up(
        self, *, full_scan: bool | None = None, progress: Progress | None = None
    ) -> ProjectionPass[M]:
        """One pass: take or renew the lease, apply what is new, commit.

        Between passes the projector keeps the model it last committed or read: a pass that
        finds nothing new decodes nothing.

        Args:
            full_scan: True forces, False forbids a scan of every stream; a pass scans anyway
                without a feed, before a full scan is applied, and with no feed cursor yet.
                None: as the feed's ``full_scan_interval`` says.
            progress: Told ``(streams done, streams)``.

        Returns:
            The read model as the pass left it, and what it read, committed and sent. Its
            model is the one the projector keeps: with an ``evolve`` that changes the model
            in place, it changes at the next pass.

        Raises:
            LeaseHeld: Another projector holds the lease.
            Fenced: A newer epoch took the projection over since this projector last wrote
                (nothing it had not committed is kept).
            InvalidConfiguration: A generation of a newer ``SCHEMA`` is being built, or the
                projection's NAME is another kind of consumer's.
            DomainContractError: ``evolve`` returned None.
            NotJSON: The projection's ``CONVERTER`` did not turn the model into JSON.
            CorruptReadModel: The model's object is not one, or its model does not fit.
            ObjectStoreError: A request failed.
            Exception: What ``evolve`` raises: the events since the last commit are applied
                again at the next pass.
        """
        with measure_requests() as meter:
            passes, _, fenced, _ = self._passes(full_scan=full_scan, progress=progress)
            if fenced:
                self._held = None
                raise self._fenced[fenced[0]]
            (shard_pass,) = passes
            generation = shard_pass.generation
            held = self._held
            if held is not None and held[0] == generation:
                read_model = self._read_model(generation, held[1], held[2])
            else:
                # Read or written by this pass (its stamp, its switch): no request.
                state = self._shards[0].state
                revision = None if state is None else state.revision
                stored = self.models.read(generation, revision=revision)
                if stored is None:  # pragma: no cover - every pass commits its stamp first
                    raise ObjectStoreError("GET", self.name, "the model vanished")
                read_model = self._read_model(generation, stored.etag, None)
                self._held = (generation, stored.etag, read_model.model)
        return ProjectionPass(
            read_model,
            shard_pass.full_scan,
            shard_pass.streams,
            shard_pass.events,
            shard_pass.commits,
            meter.counts,
        )

    def rebuild(
        self, *, force: bool = False, progress: Progress | None = None
    ) -> ProjectionPass[M]:
        """Build the model again from every event, beside the one readers see; then switch.

        Takes the lease under a new epoch first, then runs one pass with a full scan.

        Args:
            force: Take the lease even from another projector that holds it: that one is
                fenced at its next write.
            progress: Told ``(streams done, streams)``.

        Returns:
            The pass, counting every request of the rebuild: the lease's and the
            generations record's too.

        Raises:
            LeaseHeld: Another projector holds the lease (and not ``force``); nothing was
                started.
            Exception: What :meth:`catch_up` raises.
        """
        with measure_requests() as meter:
            shard = self._shards[0]
            shard.lease = shard.keeper.acquire(force=force)
            shard.invalidate()
            self._held = None
            self._begin_build(force=True)
            run = self.catch_up(full_scan=True, progress=progress)
        return attrs.evolve(run, requests=meter.counts)

    def _process(
        self,
        generation: Generation,
        batch: Batch,
        state: ShardState,
        lease: Lease,
        counts: collections.Counter[str],
    ) -> ShardState:
        """Fold ``batch`` into the model and commit it with its checkpoints and ``state``."""
        held, self._held = self._held, None  # given back only once the commit is stored
        if held is not None and held[:2] == (generation, state.revision):
            model = held[2]
        else:
            stored = None
            if state.revision is not None:
                stored = self.models.read(generation, revision=state.revision)
            model = self._decode(generation, None if stored is None else stored.found.model)
        for item in batch.events:
            if isinstance(item, StreamDeleted):
                model = self.projection.forget(model, item.stream)
                self._log.info("stream_deleted", stream=str(item.stream), version=item.version)
            else:
                model = evolve_model(self.projection, model, item)
        body = self._codec.converter.unstructure(model, self._codec.model_type)
        stored_state = self._commit_state(
            generation, [Change(MODEL_KEY, body, state.revision)], batch.positions, state, lease
        )
        counts["commits"] += 1
        counts["documents"] += 1
        self._held = (generation, stored_state.revision or "", model)
        return stored_state


__all__ = ["MODEL_FORMAT", "ModelStore", "ProjectionPass", "Projector"]
