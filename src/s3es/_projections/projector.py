"""The projector: keeps a projection's read model up to date from the event streams.

One pass finds the streams that moved since the read model's checkpoints (by a full scan, or
from the change feed), reads their new chunks, applies the events, and commits the model with
its checkpoints in one conditional PUT. Only the holder of the projection's lease runs passes.
"""

from __future__ import annotations

import collections
import contextvars
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic

import attrs

from s3es._base.clock import Clock, utc_now
from s3es._base.coerce import as_instance
from s3es._base.logging import get_logger
from s3es._base.progress import Progress
from s3es._base.tracing import Attributes, request_attributes, traced
from s3es._eventstore.chunk import Chunk
from s3es._eventstore.store import EventStore
from s3es._projections.inline import apply_event
from s3es._projections.lease import Lease, LeaseKeeper
from s3es._projections.projection import Committed, M, Projection, ProjectionCodec, ReadModel
from s3es._storage.keys import StreamName
from s3es._storage.metering import RequestCounts, measure_requests
from s3es.errors import (
    LeaseHeld,
    ObjectAlreadyExists,
    ObjectChanged,
    ObjectStoreError,
    ProjectionFenced,
    StreamDeleted,
)

_log = get_logger("s3es.projector")

#: What reading a stream found: its new chunks, its tombstone, or nothing new.
_Fetched = list[Chunk] | StreamDeleted | None

#: How often a pass starts again after another write to the read model came first.
_PASS_ATTEMPTS = 3


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@attrs.frozen
class ProjectionPass(Generic[M]):
    """What one pass did, and the read model it left."""

    read_model: ReadModel[M]
    #: True for a pass over every stream; False for one over the streams the feed named.
    full_scan: bool
    #: Streams whose new chunks were read.
    streams: int
    events: int
    #: Conditional PUTs of the read model.
    commits: int
    requests: RequestCounts


class _Superseded(Exception):  # noqa: N818 - internal signal: start the pass again
    """Another write to the read model, of this epoch or an older one, came first."""


@attrs.define
class _Pass(Generic[M]):
    """The read model being brought forward by one pass, and what it has not committed."""

    model: M
    checkpoints: dict[str, int]
    feed_cursors: dict[str, int]
    complete: bool
    epoch: int
    etag: str | None
    dirty: bool = False
    events: int = 0
    uncommitted_events: int = 0
    streams: int = 0
    commits: int = 0

    def read_model(self, codec: ProjectionCodec[M]) -> ReadModel[M]:
        """The model as this pass has it, under its epoch."""
        return ReadModel(
            projection=codec.name,
            schema=codec.schema,
            model=self.model,
            checkpoints=self.checkpoints,
            epoch=self.epoch,
            complete=self.complete,
            updated_at=None,
            etag=self.etag,
        )


def _pass_span(verb: str, projector: Projector[M]) -> tuple[str, Attributes]:
    """The span of one projector pass (``verb``: catch_up or rebuild): name, first attributes."""
    return f"{verb} {projector.name}", {"s3es.projection.name": projector.name}


def _passed(run: ProjectionPass[M]) -> Attributes:
    """What a pass's span tells: how it found streams, what it read, applied and committed."""
    return {
        "s3es.projection.full_scan": run.full_scan,
        "s3es.projection.stream_count": run.streams,
        "s3es.projection.event_count": run.events,
        "s3es.projection.commit_count": run.commits,
        **request_attributes(run.requests),
    }


class Projector(Generic[M]):
    """Runs ``projection`` over the streams of ``event_store``.

    ``read`` returns the stored read model (one GET) to anyone. ``catch_up`` takes the lease if
    this projector does not hold it (LeaseHeld if another projector does), brings the model up
    to date, and commits it every ``commit_every`` events and at the end. With ``feed`` (the
    appenders' EventStore must have ``feed=True``), a pass lists the change feed instead of
    every stream; its first pass, and the first after ``full_scan_interval`` seconds since its
    last full scan, scans all streams anyway (for appends whose feed entry is missing). ``run``
    repeats passes until stopped, standing by while another projector holds the lease.
    ``read_concurrency`` threads read the streams' chunks ahead of the events being applied,
    which stays in one thread: ``apply`` needs no locks. ``clock`` returns the time as an aware
    UTC datetime, as the event store's ``clock`` does: it times the lease, full scans and the
    feed cursor, and stamps the model's ``updated_at``.

    Between passes the projector keeps the model it last committed (or read), with that
    document's ETag, so that a pass that finds nothing new downloads and decodes nothing (see
    ``catch_up``). The model a :class:`ProjectionPass` hands back is that model: with an
    ``apply`` that changes the model in place, the next pass changes it too. ``read`` returns
    one of the caller's own.
    """

    def __init__(
        self,
        event_store: EventStore,
        projection: Projection[M] | type[Projection[M]],
        *,
        owner: str | None = None,
        lease_ttl: float = 30.0,
        feed: bool = False,
        feed_lookback: float = 30.0,
        full_scan_interval: float = 3600.0,
        commit_every: int = 1000,
        read_concurrency: int = 8,
        clock: Clock = utc_now,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        for option, value in [
            ("commit_every", commit_every),
            ("read_concurrency", read_concurrency),
        ]:
            if value < 1:
                raise ValueError(f"{option} must be at least 1, not {value}")
        self.event_store = event_store
        self.projection: Projection[M] = as_instance(projection)
        self._codec = ProjectionCodec(self.projection, event_store.keys)
        self.owner = owner or default_owner()
        self.feed = feed
        self.feed_lookback = feed_lookback
        if full_scan_interval < 0 or feed_lookback < 0:
            raise ValueError(
                f"full_scan_interval and feed_lookback must be >= 0, not {full_scan_interval} "
                f"and {feed_lookback}"
            )
        self.full_scan_interval = full_scan_interval
        self.commit_every = commit_every
        self.read_concurrency = read_concurrency
        self._clock = clock
        self._new_id = new_id
        self._leases = LeaseKeeper(
            event_store.objects,
            self._codec.lease_key,
            projection=self._codec.name,
            owner=self.owner,
            ttl=lease_ttl,
            clock=clock,
        )
        self._lease: Lease | None = None
        #: The document as this projector's last pass left it (committed or read, under that
        #: ETag, by this lease's epoch); None after a failed pass, to be read again.
        self._held: _Pass[M] | None = None
        #: When this projector's last full scan began (its clock), None before the first.
        self._scanned_at: float | None = None
        self._log = _log.bind(projection=self._codec.name, owner=self.owner)

    @property
    def name(self) -> str:
        """The projection's name."""
        return self._codec.name

    @property
    def lease(self) -> Lease | None:
        """The lease this projector holds, as it last wrote it; None if it holds none."""
        return self._lease

    def read_lease(self) -> Lease | None:
        """The projection's lease as stored, whoever holds it; None if it never had one."""
        return self._leases.read()

    def read(self) -> ReadModel[M]:
        """The stored read model (the initial one if none is stored). One GET, no lease."""
        return self._load().read_model

    def _load(self) -> Committed:
        stored = self.event_store.objects.get(self._codec.key)
        if stored is None:
            return Committed(self._codec.initial(), {}, "")
        committed, usable = self._codec.decode(stored.body, stored.etag)
        if not usable:
            self._log.info("model_schema_changed", schema=self._codec.schema)
        return committed

    @traced(
        start=lambda self, **_: _pass_span("catch_up", self),
        end=_passed,
    )
    def catch_up(
        self, *, full_scan: bool | None = None, progress: Progress | None = None
    ) -> ProjectionPass[M]:
        """One pass: take or renew the lease, apply what is new, commit.

        ``full_scan`` forces (True) or forbids (False) a scan of every stream; a pass scans
        anyway when there is no feed (False would have nothing to follow), when the model is
        not complete, or when it has no feed cursor yet. By default it scans on this
        projector's first pass and ``full_scan_interval`` seconds after the last scan.
        ``progress`` is told ``(streams done, streams)``. Raises LeaseHeld if another
        projector holds the lease, and ProjectionFenced if a newer epoch took over since this
        projector last wrote.

        A pass after a pass that ended well, under the same lease epoch, starts from the model
        that pass left in memory, without a GET: an idle feed pass costs one LIST per source
        type. That model is the stored one as long as the document's ETag is the one this
        projector last wrote or read, and every write of the document is conditional on it:
        if anyone wrote it since (a newer epoch's stamp, a forced rebuild), this projector's
        next commit fails its ``If-Match``, and it then reads the document and stops with
        ProjectionFenced, as a projector that read it first would have. A pass that commits
        nothing writes nothing, so until then a fenced projector changes nothing; its next
        lease renewal (every half ``lease_ttl``) fences it too. A pass that fails forgets the
        model (``apply`` may have changed it in place): the next pass reads the document.
        """
        with measure_requests() as meter:
            lease = self._hold_lease(force=False)
            run = self._run(lease, scan=full_scan, reset=False, progress=progress)
        return attrs.evolve(run, requests=meter.counts)

    @traced(
        start=lambda self, **_: _pass_span("rebuild", self),
        end=_passed,
    )
    def rebuild(
        self, *, force: bool = False, progress: Progress | None = None
    ) -> ProjectionPass[M]:
        """Throw the stored model away and apply every event of every stream again.

        Takes the lease under a new epoch first (LeaseHeld if another projector holds it,
        unless ``force``: that one is fenced). Readers see the model start again from nothing;
        ``complete`` stays False until the pass is done.
        """
        with measure_requests() as meter:
            self._lease = None
            lease = self._hold_lease(force=force)
            run = self._run(lease, scan=True, reset=True, progress=progress)
        return attrs.evolve(run, requests=meter.counts)

    def run(
        self,
        stop: threading.Event,
        *,
        interval: float = 1.0,
        on_pass: Callable[[ProjectionPass[M]], None] | None = None,
    ) -> None:
        """Run passes every ``interval`` seconds until ``stop`` is set; then release the lease.

        While another projector holds the lease, or after this one was fenced, it stands by
        and tries again each interval; a pass that S3 failed (ObjectStoreError) is logged and
        run again. Any other error (a corrupt chunk, a failing ``apply``) ends the loop.
        ``on_pass`` is given each pass's :class:`ProjectionPass`: its events, requests, model.
        """
        try:
            while not stop.is_set():
                try:
                    run = self.catch_up()
                    if on_pass is not None:
                        on_pass(run)
                except LeaseHeld as held:
                    self._log.debug("standing_by", holder=held.owner, epoch=held.epoch)
                except ProjectionFenced as fenced:
                    self._log.warning("fenced", epoch=fenced.epoch, newer=fenced.newer_epoch)
                    self._lease = None
                except ObjectStoreError as error:
                    # S3 failing after the adapter's retries: nothing half-done is kept (the
                    # model and its checkpoints commit together), so the next pass redoes it.
                    self._log.warning("pass_failed", error=str(error))
                stop.wait(interval)
        finally:
            self.release(quietly=True)

    def release(self, *, quietly: bool = False) -> None:
        """Give the lease up now, so that a standby need not wait for it to expire.

        ``quietly``: a failure to write the lease is logged, not raised (the lease then
        expires on its own), so that it does not hide an error already on its way out.
        """
        lease, self._lease = self._lease, None
        self._held = None  # the next lease has a new epoch: its first pass reads the document
        if lease is None:
            return
        try:
            self._leases.release(lease)
        except ObjectStoreError as error:
            if not quietly:
                raise
            self._log.warning("lease_release_failed", epoch=lease.epoch, error=str(error))

    def _hold_lease(self, *, force: bool) -> Lease:
        if self._lease is None:
            self._lease = self._leases.acquire(force=force)
        elif self._leases.expiring(self._lease):
            try:
                self._lease = self._leases.renew(self._lease)
            except ProjectionFenced:
                self._lease = None
                raise
        return self._lease

    def _run(
        self, lease: Lease, *, scan: bool | None, reset: bool, progress: Progress | None
    ) -> ProjectionPass[M]:
        for attempt in range(1, _PASS_ATTEMPTS + 1):
            try:
                return self._pass(lease, scan=scan, reset=reset, progress=progress)
            except _Superseded:
                self._log.info("pass_superseded", attempt=attempt)
        # Each attempt lost to a write of an older epoch (the first commit of a pass stamps
        # this one's): a projector that does not yet know it is fenced. Transient, like S3's
        # own refusals: the next pass tries again.
        raise ObjectStoreError(
            "PUT",
            self._codec.key,
            f"the read model changed under each of {_PASS_ATTEMPTS} passes (an older projector "
            "still writing)",
        )

    def _begin(self, lease: Lease, *, reset: bool) -> _Pass[M]:
        """The stored model to bring forward (the initial one for a rebuild).

        The model the last pass left, if it ended well under ``lease``'s epoch (no request: see
        ``catch_up`` for why it is still the stored one); else the stored document, stamped
        with ``lease``'s epoch if it is not yet; ProjectionFenced if it has a newer one.
        """
        held, self._held = self._held, None  # given back by _pass only if the pass ends well
        if held is not None and not reset and held.epoch == lease.epoch:
            return _Pass(
                model=held.model,
                # Shared with the last pass's ReadModel until something moves (see _pass).
                checkpoints=held.checkpoints,
                feed_cursors=dict(held.feed_cursors),
                complete=held.complete,
                epoch=held.epoch,
                etag=held.etag,
            )
        committed = self._load()
        stored = committed.read_model
        if stored.epoch > lease.epoch:
            self._lease = None
            raise ProjectionFenced(self.name, lease.epoch, stored.epoch)
        start = self._codec.initial() if reset else stored
        work: _Pass[M] = _Pass(
            model=start.model,
            checkpoints=dict(start.checkpoints),
            feed_cursors={} if reset else dict(committed.feed_cursors),
            complete=start.complete,
            epoch=lease.epoch,
            etag=stored.etag,
        )
        if reset or stored.epoch < lease.epoch:
            # Stamped at once (one PUT per lease taken): from here on every older projector's
            # conditional write fails, and the epoch it then reads tells it why.
            self._commit(work, lease)
        return work

    def _pass(
        self, lease: Lease, *, scan: bool | None, reset: bool, progress: Progress | None
    ) -> ProjectionPass[M]:
        work = self._begin(lease, reset=reset)
        started_ms = int(self._clock().timestamp() * 1000)
        scan = self._scan_needed(work, asked=scan, now_ms=started_ms)
        moved_cursors: dict[str, int] = {}
        streams = self._scanned() if scan else self._from_feed(work, started_ms, moved_cursors)
        if streams:
            # The checkpoints handed back by the last pass stay as they were.
            work.checkpoints = dict(work.checkpoints)
        for done, (stream, fetched) in enumerate(self._fetched(streams, work), 1):
            lease = self._hold_lease(force=False)  # renewed on a long pass, before it runs out
            self._apply(work, stream, fetched)
            if progress is not None:
                progress(done, len(streams))
        if scan:
            work.complete, work.dirty = True, work.dirty or not work.complete
            if self.feed:
                # Entries from before the scan began name nothing it did not see.
                moved_cursors = dict.fromkeys(self._codec.codecs, started_ms)
        for stream_type, cursor in moved_cursors.items():
            # Only now that every stream they named is applied: a commit in the middle of the
            # pass keeps the old cursors, so a pass that fails after it skips nothing. A moved
            # cursor rides along with the next commit rather than cost a PUT of its own (the
            # old one only lists a little more), unless the type had none: then every pass
            # would scan again.
            if stream_type not in work.feed_cursors:
                work.dirty = True
            work.feed_cursors[stream_type] = max(cursor, work.feed_cursors.get(stream_type, 0))
        if work.dirty:
            self._commit(work, lease)
        if scan:
            self._scanned_at = started_ms / 1000
        # Stored under work.etag, but for feed cursors that moved without a commit (they ride
        # along with the next one): the next pass lists the feed from them, which skips nothing.
        self._held = work
        read_model = work.read_model(self._codec)
        self._log.info(
            "pass",
            epoch=lease.epoch,
            full_scan=scan,
            streams=work.streams,
            events=work.events,
            commits=work.commits,
        )
        return ProjectionPass(
            read_model, scan, work.streams, work.events, work.commits, RequestCounts()
        )

    def _scan_needed(self, work: _Pass[M], *, asked: bool | None, now_ms: int) -> bool:
        """Whether this pass scans every stream rather than follow the feed.

        Always without the feed, when the model is not complete, and when a source type has no
        feed cursor yet (it was never scanned with the feed on). Else as ``asked``, or by
        default on this projector's first pass and ``full_scan_interval`` after its last scan.
        """
        unscanned = any(t not in work.feed_cursors for t in self._codec.codecs)
        if not self.feed or not work.complete or unscanned or asked:
            return True
        if asked is False:
            return False
        last = self._scanned_at
        return last is None or now_ms / 1000 - last >= self.full_scan_interval

    def _scanned(self) -> list[tuple[StreamName, int | None]]:
        """Every stream of the sources, its version not read yet."""
        return [
            (stream, None)
            for stream_type in self._codec.codecs
            for stream in self.event_store.streams(stream_type)
        ]

    def _from_feed(
        self, work: _Pass[M], started_ms: int, moved_cursors: dict[str, int]
    ) -> list[tuple[StreamName, int | None]]:
        """The streams the change feed names past their checkpoints, with the version named.

        Lists each source type's feed from its cursor less the look-back, and puts in
        ``moved_cursors`` the newest entry listed, but never later than ``started_ms`` (this
        projector's clock): an appender whose clock runs ahead must not move the cursor past
        entries that the others have yet to write.
        """
        newest: dict[StreamName, int] = {}
        keys = self.event_store.keys
        lookback_ms = int(self.feed_lookback * 1000)
        for stream_type in self._codec.codecs:
            cursor = work.feed_cursors.get(stream_type, 0)
            listed = self.event_store.objects.list_keys(
                keys.feed_prefix(stream_type),
                start_after=keys.feed_cursor(stream_type, cursor - lookback_ms),
            )
            for key in listed:
                entry = keys.parse_feed_key(stream_type, key)
                cursor = max(cursor, min(entry.at_ms, started_ms))
                known = max(work.checkpoints.get(str(entry.stream), 0), newest.get(entry.stream, 0))
                if entry.version > known:
                    newest[entry.stream] = entry.version
            moved_cursors[stream_type] = cursor
        return list(newest.items())

    def _fetched(
        self, streams: list[tuple[StreamName, int | None]], work: _Pass[M]
    ) -> Iterator[tuple[StreamName, _Fetched]]:
        """Each of ``streams`` with its chunks after its checkpoint, in order.

        ``read_concurrency`` threads read ahead of the caller (a bounded window of streams).
        """
        with ThreadPoolExecutor(self.read_concurrency, "s3es-projector") as pool:
            window: collections.deque[tuple[StreamName, Future[_Fetched]]] = collections.deque()
            pending = iter(streams)
            while True:
                while len(window) < 4 * self.read_concurrency:
                    stream, named = next(pending, (None, None))
                    if stream is None:
                        break
                    after = work.checkpoints.get(str(stream), 0)
                    # The thread counts its requests in this pass's meter: same context.
                    context = contextvars.copy_context()
                    window.append(
                        (stream, pool.submit(context.run, self._fetch, stream, named, after))
                    )
                if not window:
                    return
                stream, future = window.popleft()
                yield stream, future.result()

    def _fetch(self, stream: StreamName, named: int | None, after: int) -> _Fetched:
        """``stream``'s chunks after version ``after``; None if it has none."""
        # A scan reads each stream's version (one LIST); the feed names it.
        version = self.event_store.version(stream) if named is None else named
        if version <= after:
            return None
        try:
            chunks = list(self.event_store.chunks(stream, after_version=after))
        except StreamDeleted as deleted:
            return deleted
        # None too if the stream ends below a fence gap at or before ``after``: a fence round
        # whose lower fence is not stored (yet), above versions already read.
        return chunks or None

    def _apply(self, work: _Pass[M], stream: StreamName, fetched: _Fetched) -> None:
        """Apply the events of ``stream`` fetched; commit if enough are pending."""
        name = str(stream)
        if isinstance(fetched, StreamDeleted):
            if work.checkpoints.get(name, 0) < fetched.version:
                work.model = self.projection.forget(work.model, stream)
                work.checkpoints[name] = fetched.version
                work.dirty = True
                self._log.info("stream_deleted", stream=name, version=fetched.version)
            return
        if not fetched:
            return
        work.streams += 1
        keys = self.event_store.keys
        for chunk in fetched:
            key = keys.chunk_key(stream, chunk.version, chunk.number)
            for event in self._codec.recorded(chunk, key):
                work.model = apply_event(self.projection, work.model, event)
                work.events += 1
                work.uncommitted_events += 1
        work.checkpoints[name] = fetched[-1].version
        work.dirty = True
        if work.uncommitted_events >= self.commit_every:
            self._commit(work, self._hold_lease(force=False))

    def _commit(self, work: _Pass[M], lease: Lease) -> None:
        """Store the model with its checkpoints, if the stored one is still the one read."""
        commit_id = self._new_id()
        body = self._codec.encode(
            work.read_model(self._codec),
            feed_cursors=work.feed_cursors,
            commit_id=commit_id,
            updated_at=self._clock(),
        )
        objects, key = self.event_store.objects, self._codec.key
        try:
            if work.etag is None:
                etag = objects.put_if_absent(key, body)
            else:
                etag = objects.replace(key, body, etag=work.etag)
        except (ObjectAlreadyExists, ObjectChanged, ObjectStoreError) as error:
            etag = self._judge_commit(error, commit_id, lease)
        work.etag, work.dirty, work.uncommitted_events = etag, False, 0
        work.commits += 1

    def _judge_commit(
        self,
        error: ObjectAlreadyExists | ObjectChanged | ObjectStoreError,
        commit_id: str,
        lease: Lease,
    ) -> str:
        """After a commit that did not say it succeeded: ours (its ETag), or why not (raised)."""
        try:
            found = self._load()
        except ObjectStoreError as check_error:
            if isinstance(error, ObjectStoreError):
                raise error from None
            # A 412 that cannot be judged: a rival's commit, or ours whose first answer was lost
            # and whose retry met it. Either way the store failed; the run loop retries it.
            raise ObjectStoreError(
                "PUT",
                self._codec.key,
                f"{error}; reading the read model back failed too ({check_error.detail}), so "
                "whether this commit is stored is unknown",
            ) from error
        if found.commit_id == commit_id and found.read_model.etag is not None:
            self._log.info("commit_recovered", cause=str(error))
            return found.read_model.etag
        if isinstance(error, ObjectStoreError):
            raise error
        if found.read_model.epoch > lease.epoch:
            self._lease = None
            raise ProjectionFenced(self.name, lease.epoch, found.read_model.epoch) from error
        raise _Superseded from error
