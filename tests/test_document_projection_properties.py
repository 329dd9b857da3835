"""Document projections under random histories, on every read-model store, with shards.

A hypothesis state machine drives a :class:`~s3es.projections.DocumentProjector` of one
projection that keeps a document per counter stream (the ids of the events applied to it) and
one shared document (every stream's ids, per stream) that every shard writes, so that shards
contend for it. Its rules: appends on several streams; a pass of one of two projector slots
(each holds every shard, or one of two); a projection whose ``evolve`` raises after k
applications (the pass dies, a new process takes the slot); time passing (leases renewed, or
expired); a projector paused just before a commit while the other slot's takes its lease and
commits (the paused one goes on and must be fenced); compaction and deletion of streams; a
rebuild now and then. The machine runs on the S3 store (over the in-memory object store),
SQLite and PostgreSQL (the session's server, from ``tests/conftest.py``).

What holds after every step, for the generation readers see (proved in ``check_live``):

- it is None until a first build completes, then always a generation whose every shard has
  completed its full scan, and its number never goes down;
- each document holds a prefix of its stream's acknowledged event ids, in order, each once,
  and so does each of the shared document's lists; an atomic store's (SQL) hold exactly the
  events up to their stream's stored position, the S3 store's at least those (a commit that
  was cut off, or fenced after its documents, leaves documents ahead of positions);
- a deleted stream's document and shared list are gone, and its position is past its last
  event, in a generation where a pass of its shard that began after the deletion completed.

Readers read across passes, rebuilds and switches: an iteration of ``documents()`` begun
(one document read), left while other steps run, then finished; and ``get``, ``get_many`` and
``documents()`` whose generation a pass or a rebuild switches between their read of the live
generation and their read of the documents. A completed read is one generation whole: every
document a whole read held when it began (of a stream not deleted since) is there, holding at
least what it held then, and each is a prefix of its stream's events; or it raises
GenerationChanged (only an iteration that had given documents before the switch may).

At the end, once every lease expired, a new projector of every shard runs full-scan passes
until nothing is new: every document then holds every acknowledged event, every deleted
stream is gone, and every position is its stream's version.

``S3ES_PROJECTION_EXAMPLES`` sets the examples per store (default 20: the file runs in under a
minute on two cores).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from s3es import (
    CommandHandler,
    EventStore,
    InMemoryObjectStore,
    RecordedEvent,
    Repository,
    StreamName,
)
from s3es.errors import GenerationChanged, LeaseHeld, StreamDeleted
from s3es.ops import compact, delete
from s3es.projections import (
    Batching,
    DocumentPass,
    DocumentProjection,
    DocumentProjector,
    DocumentReader,
    Feed,
    LeaseOptions,
    Shards,
    shard_of,
)
from s3es.readmodels import (
    Change,
    Generation,
    Generations,
    PostgresReadModelStore,
    ReadModelStore,
    S3ReadModelStore,
    ShardState,
    SQLiteReadModelStore,
    StoredDocument,
)
from tests.aggregates import FAST_RETRY, Counter, IncrementEach

#: Two streams of each shard when there are two (shard_of: s-0, s-1 -> 1; s-4, s-5 -> 0).
STREAMS = ("s-0", "s-1", "s-4", "s-5")
SHARED = "_shared"
LEASE_TTL = 10.0


@attrs.define
class Applied:
    """A stream's document (``ids``) or the shared one (``by_stream``): event ids, in order."""

    key: str
    ids: list[str] = attrs.Factory(list)
    by_stream: dict[str, list[str]] = attrs.Factory(dict)


class CrashError(RuntimeError):
    """The process running ``evolve`` died."""


class Ledger(DocumentProjection[Applied]):
    """Each event goes to its stream's document and to the shared one.

    ``crash_after``: once that many applications went through, ``evolve`` raises CrashError.
    """

    NAME = "ledger"
    SOURCES: ClassVar[tuple[type[Counter]]] = (Counter,)

    def __init__(self) -> None:
        self.crash_after: int | None = None
        self.applications = 0

    def document_ids(self, event: RecordedEvent[Any]) -> Iterable[str]:
        """The stream's document, and the shared one."""
        return (event.stream.id, SHARED)

    def initial_state(self, key: str) -> Applied:
        """No event yet."""
        return Applied(key)

    def evolve(self, document: Applied, event: RecordedEvent[Any]) -> Applied:
        """The event's id appended (in place); CrashError once ``crash_after`` applications ran."""
        if self.crash_after is not None and self.applications >= self.crash_after:
            raise CrashError(f"died after {self.applications} applications")
        self.applications += 1
        if document.key == SHARED:
            document.by_stream.setdefault(str(event.stream), []).append(event.id)
        else:
            document.ids.append(event.id)
        return document

    def forgotten_ids(self, stream: StreamName) -> Iterable[str]:
        """The stream's document, and the shared one."""
        return (stream.id, SHARED)

    def forget(self, document: Applied, stream: StreamName) -> Applied | None:
        """The stream's document goes; the shared one drops the stream's list."""
        if document.key != SHARED:
            return None
        document.by_stream.pop(str(stream), None)
        return document


class _Clock:
    """A clock the test moves, shared by the event store and the projectors."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


class _Pausable:
    """A projector's own view of the read-model store: ``pause``, if set, runs once before
    its next commit (with the commit's generation and shard), as if the process froze there."""

    def __init__(self, inner: ReadModelStore) -> None:
        self.inner = inner
        self.atomic = inner.atomic
        self.pause: Callable[[Generation, int], None] | None = None

    def generations(self, projection: str) -> Generations:
        return self.inner.generations(projection)

    def check_generation(self, generation: Generation) -> None:
        self.inner.check_generation(generation)

    def set_generations(self, record: Generations) -> Generations:
        return self.inner.set_generations(record)

    def get(self, generation: Generation, key: str) -> StoredDocument | None:
        return self.inner.get(generation, key)

    def get_many(self, generation: Generation, keys: Collection[str]) -> dict[str, StoredDocument]:
        return self.inner.get_many(generation, keys)

    def documents(self, generation: Generation) -> Iterator[StoredDocument]:
        return self.inner.documents(generation)

    def positions(self, generation: Generation, streams: Collection[str]) -> dict[str, int]:
        return self.inner.positions(generation, streams)

    def shard_state(self, generation: Generation, shard: int, shards: int) -> ShardState | None:
        return self.inner.shard_state(generation, shard, shards)

    def commit(
        self,
        generation: Generation,
        changes: Sequence[Change],
        positions: Mapping[str, int],
        state: ShardState,
    ) -> ShardState:
        if self.pause is not None:
            pause, self.pause = self.pause, None
            pause(generation, state.shard)
        return self.inner.commit(generation, changes, positions, state)

    def drop(self, generation: Generation) -> None:
        self.inner.drop(generation)


@attrs.define
class _Slot:
    """A projector process: the shards it runs, its projection (to crash) and its store."""

    shard_ids: tuple[int, ...] | None
    projector: DocumentProjector[Applied]
    projection: Ledger
    store: _Pausable


@attrs.define
class _Reading:
    """An iteration of ``documents()`` under way: what it gave so far, and what a whole read
    held (and which streams were deleted) when it began."""

    iteration: Iterator[tuple[str, Applied]]
    read: dict[str, Applied]
    before: dict[str, Applied]
    deleted: set[str]


class _Hooked:
    """A reader's store that runs ``hook`` once, right after the reader's first read of the
    generations record: the live generation may change under the read."""

    def __init__(self, store: ReadModelStore, hook: Callable[[], object]) -> None:
        self.store = store
        self.atomic = store.atomic
        self.hook: Callable[[], object] | None = hook

    def generations(self, projection: str) -> Generations:
        record = self.store.generations(projection)
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        return record

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class DocumentProjectionHistory(RuleBasedStateMachine):
    """An event store, writers, a read-model store, and two projector slots."""

    #: "s3", "sqlite" or "postgres": set by each store's subclass.
    store_kind: ClassVar[str]
    #: The session's PostgreSQL server, set by the PostgreSQL test case's fixture.
    postgres_uri: ClassVar[str | None] = None

    @initialize(
        shards=st.sampled_from([1, 2]),
        holdings=st.lists(st.sampled_from([None, 0, 1]), min_size=2, max_size=2),
        feed=st.booleans(),
        commit_every=st.sampled_from([1, 3]),
    )
    def start(
        self, *, shards: int, holdings: list[int | None], feed: bool, commit_every: int
    ) -> None:
        """A store of the subclass's kind; two slots, each of every shard or of one."""
        self.shards = shards
        self.feed = feed
        self.commit_every = commit_every
        self.clock = _Clock()
        self.objects = InMemoryObjectStore()
        self.events = EventStore(self.objects, prefix="p", feed=True, clock=self.clock)
        self.repository = Repository(self.events, Counter)
        self.handler = CommandHandler(self.repository, FAST_RETRY)
        self._closers: list[Callable[[], None]] = []
        self._shared_store = self._make_store()
        self.reader_store = self._store()
        self.owners = itertools.count()
        #: stream id -> [(version, event ids)], as acknowledged to the writers.
        self.acknowledged: dict[str, list[tuple[int, list[str]]]] = {}
        self.deleted: set[str] = set()
        #: generation number -> streams whose deletion a completed pass applied to it.
        self.forgotten: dict[int, set[str]] = {}
        self.live_seen: int | None = None
        self.reading: _Reading | None = None
        self.slots = [
            self._slot(None if shards == 1 or held is None else (held,)) for held in holdings
        ]
        event(f"{self.store_kind}, {shards} shard(s), slots {[s.shard_ids for s in self.slots]}")

    # Stores and projectors ------------------------------------------------------------------

    def _make_store(self) -> ReadModelStore | None:
        """The store that every projector shares (None for S3: each process has its own)."""
        if self.store_kind == "sqlite":
            sqlite = SQLiteReadModelStore(":memory:")
            self._closers.append(sqlite.close)
            return sqlite
        if self.store_kind == "postgres":
            import psycopg  # noqa: PLC0415 - the postgres extra

            uri = self.postgres_uri
            assert uri is not None, "the PostgreSQL test case sets the session's server"
            schema = f"history_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(uri, autocommit=True) as connection:
                connection.execute(f'CREATE SCHEMA "{schema}"')
            postgres = PostgresReadModelStore(
                psycopg.conninfo.make_conninfo(uri, options=f"-csearch_path={schema}")
            )

            def close() -> None:
                postgres.close()
                with psycopg.connect(uri, autocommit=True) as connection:
                    connection.execute(f'DROP SCHEMA "{schema}" CASCADE')

            self._closers.append(close)
            return postgres
        return None

    def _store(self) -> ReadModelStore:
        if self._shared_store is not None:
            return self._shared_store
        return S3ReadModelStore(self.objects, "p")

    def _projector(
        self, shard_ids: tuple[int, ...] | None
    ) -> tuple[DocumentProjector[Applied], Ledger, _Pausable]:
        projection = Ledger()
        store = _Pausable(self._store())
        projector = DocumentProjector(
            self.events,
            projection,
            store,
            shards=Shards(self.shards, ids=shard_ids),
            lease=LeaseOptions(owner=f"owner-{next(self.owners)}", ttl=LEASE_TTL),
            feed=Feed(full_scan_interval=LEASE_TTL * 2) if self.feed else False,
            batching=Batching(commit_every=self.commit_every, read_concurrency=2),
            clock=self.clock,
        )
        return projector, projection, store

    def _slot(self, shard_ids: tuple[int, ...] | None) -> _Slot:
        return _Slot(shard_ids, *self._projector(shard_ids))

    def _run(
        self, projector: DocumentProjector[Applied], *, rebuild: bool = False
    ) -> DocumentPass | None:
        """A pass (or a rebuild) of ``projector``; None if other projectors hold every shard.

        Notes, per generation written, the deleted streams of each shard whose pass completed.
        """
        deleted = set(self.deleted)
        try:
            run = projector.rebuild() if rebuild else projector.catch_up()
        except LeaseHeld:
            event("LeaseHeld")
            return None
        for shard_pass in run.passes:
            self.forgotten.setdefault(shard_pass.generation.number, set()).update(
                s for s in deleted if self._shard(s) == shard_pass.shard
            )
        if run.fenced:
            event("fenced")
        if any(p.switched for p in run.passes):
            event("switched")
        return run

    def _shard(self, stream_id: str) -> int:
        return shard_of(f"counter/{stream_id}", self.shards)

    # Rules ----------------------------------------------------------------------------------

    @rule(stream=st.sampled_from(STREAMS), amounts=st.lists(st.integers(1, 9), max_size=3))
    def append(self, stream: str, amounts: list[int]) -> None:
        """A writer stores one command's events (one per amount) as the stream's next version;
        a deleted stream refuses it."""
        if not amounts:
            return
        if stream in self.deleted:
            with pytest.raises(StreamDeleted):
                self.handler.handle(stream, IncrementEach(tuple(amounts)))
            return
        result = self.handler.handle(stream, IncrementEach(tuple(amounts)))
        self.acknowledged.setdefault(stream, []).append(
            (result.version, [r.id for r in result.recorded])
        )

    @rule(slot=st.sampled_from([0, 1]))
    def run_pass(self, slot: int) -> None:
        """A slot's projector runs a pass over its shards."""
        self._run(self.slots[slot].projector)

    @rule(slot=st.sampled_from([0, 1]))
    def rebuild(self, slot: int) -> None:
        """A slot's projector starts a new generation and runs a full scan of its shards."""
        self._rebuild(self.slots[slot].projector)

    def _rebuild(self, projector: DocumentProjector[Applied]) -> list[DocumentPass | None]:
        return [self._run(projector, rebuild=True)]

    @rule(slot=st.sampled_from([0, 1]), after=st.integers(0, 6))
    def crash(self, slot: int, after: int) -> None:
        """A slot's projector dies ``after`` applications into a pass (if it gets that far);
        a new process, with a new owner, takes the slot. The dead one's leases stay."""
        dying = self.slots[slot]
        dying.projection.crash_after = after
        try:
            self._run(dying.projector)
        except CrashError:
            event("crashed")
        self.slots[slot] = self._slot(dying.shard_ids)

    @rule(seconds=st.sampled_from([1.0, LEASE_TTL / 2 + 0.5, LEASE_TTL + 1]))
    def time_passes(self, seconds: float) -> None:
        """Time passes: leases get renewed, or expire."""
        self.clock.now += seconds

    @rule(slot=st.sampled_from([0, 1]), rival_rebuilds=st.booleans())
    def pause_then_race(self, slot: int, *, rival_rebuilds: bool) -> None:
        """A projector pauses just before its first commit; meanwhile its leases expire and the
        other slot's projector runs a pass (or a rebuild). Then the paused one goes on: for a
        shard the rival passed in the generation the paused commit was for, it is fenced."""
        paused, rival = self.slots[slot], self.slots[1 - slot]
        at: list[tuple[Generation, int]] = []
        rival_runs: list[DocumentPass | None] = []

        def pause(generation: Generation, shard: int) -> None:
            at.append((generation, shard))
            self.clock.now += LEASE_TTL + 1
            if rival_rebuilds:
                rival_runs.extend(self._rebuild(rival.projector))
            else:
                rival_runs.append(self._run(rival.projector))

        paused.store.pause = pause
        self.clock.now += LEASE_TTL + 1  # so that the paused one can take the leases first
        run = self._run(paused.projector)
        paused.store.pause = None
        if not at or run is None:
            return
        generation, shard = at[0]
        rival_passes = [p for r in rival_runs if r is not None for p in r.passes]
        if any(p.shard == shard and p.generation == generation for p in rival_passes):
            event("paused projector raced")
            assert shard in run.fenced, (shard, run)
            assert all(p.shard != shard for p in run.passes), run

    @precondition(lambda self: len(self.acknowledged) > len(self.deleted))
    @rule(data=st.data())
    def compact_or_delete(self, data: st.DataObject) -> None:
        """An operator compacts a stream, or deletes it."""
        live = sorted(s for s in self.acknowledged if s not in self.deleted)
        stream = data.draw(st.sampled_from(live))
        if data.draw(st.booleans()):
            compact(self.repository, stream)
        else:
            delete(self.repository, stream)
            self.deleted.add(stream)
            self.handler.cache.discard(stream)

    # Readers --------------------------------------------------------------------------------

    def _whole_read(self) -> dict[str, Applied]:
        return dict(DocumentReader(self.reader_store, Ledger).documents())

    @precondition(lambda self: getattr(self, "reading", 0) is None)
    @rule()
    def start_reading(self) -> None:
        """A reader begins iterating the live generation's documents: it reads one, then
        waits while other steps run."""
        before = self._whole_read()
        iteration = DocumentReader(self.reader_store, Ledger).documents()
        first = next(iteration, None)
        if first is not None:
            self.reading = _Reading(iteration, dict([first]), before, set(self.deleted))

    @precondition(lambda self: getattr(self, "reading", None) is not None)
    @rule()
    def finish_reading(self) -> None:
        """The reader finishes its iteration: the generation it began on, whole (as it was
        then, or later), or GenerationChanged."""
        reading, self.reading = self.reading, None
        assert reading is not None
        try:
            reading.read.update(reading.iteration)
        except GenerationChanged:
            event("reader: generation changed under an iteration")
            return
        self._check_read(reading.before, reading.read)

    @rule(
        slot=st.sampled_from([0, 1]),
        rebuild=st.booleans(),
        how=st.sampled_from(["get", "get_many", "documents"]),
        key=st.sampled_from((*STREAMS, SHARED)),
    )
    def read_overtaken(self, slot: int, *, rebuild: bool, how: str, key: str) -> None:
        """A reader reads which generation is live; a slot's projector runs a pass or a
        rebuild (which may switch it and drop the one read); then the reader reads documents.
        It must give one generation whole, reading again by itself if it was switched."""
        before = self._whole_read()
        store = _Hooked(
            self.reader_store, lambda: self._run(self.slots[slot].projector, rebuild=rebuild)
        )
        reader = DocumentReader(store, Ledger)
        if how == "get":
            document = reader.get(key)
            read = {} if document is None else {key: document}
            before = {k: d for k, d in before.items() if k == key}
        elif how == "get_many":
            read = reader.get_many([*STREAMS, SHARED])
        else:
            read = dict(reader.documents())
        event(f"reader overtaken: {how}")
        self._check_read(before, read)

    def _check_read(self, before: dict[str, Applied], read: dict[str, Applied]) -> None:
        """``read`` holds every document of ``before`` whose stream was not deleted, each with
        at least what it held there; every document a prefix of its stream's events."""
        every = {s: [i for _, batch in v for i in batch] for s, v in self.acknowledged.items()}
        for key, document in read.items():
            assert document.key == key
            if key != SHARED:
                assert document.ids == every[key][: len(document.ids)], (key, document)
            for name, ids in document.by_stream.items():
                stream = name.removeprefix("counter/")
                assert ids == every[stream][: len(ids)], (key, name, ids)
        for key, document in before.items():
            live = [n for n in document.by_stream if n.removeprefix("counter/") not in self.deleted]
            if key in self.deleted or (key == SHARED and not live):
                continue  # a rebuild does not make it again (nor a shared one only they wrote)
            assert key in read, ("a document is missing from a read", key, sorted(read))
            assert len(read[key].ids) >= len(document.ids), (key, document, read[key])
            for name, ids in document.by_stream.items():
                if name.removeprefix("counter/") not in self.deleted:
                    assert len(read[key].by_stream.get(name, [])) >= len(ids), (key, name)

    # Invariants -----------------------------------------------------------------------------

    @invariant()
    def check_live(self) -> None:
        """What readers see: see the module's docstring."""
        if not hasattr(self, "slots"):
            return
        reader = DocumentReader(self.reader_store, Ledger)
        live = reader.generation
        if live is None:
            assert self.live_seen is None, "readers lost the live generation"
            return
        assert self.live_seen is None or live.number >= self.live_seen, (live, self.live_seen)
        self.live_seen = live.number
        for shard in range(self.shards):
            state = self.reader_store.shard_state(live, shard, self.shards)
            assert state is not None, (live, shard)
            assert state.complete, (live, state)
        self.check(live, dict(reader.documents()))

    def check(
        self, live: Generation, documents: dict[str, Applied], *, final: bool = False
    ) -> None:
        """``documents`` (of ``live``) hold what the module's docstring says; ``final``: every
        acknowledged event, and every position is its stream's version."""
        assert set(documents) <= {SHARED, *self.acknowledged}, set(documents)
        assert all(document.key == key for key, document in documents.items())
        shared = documents.get(SHARED)
        listed = {} if shared is None else shared.by_stream
        assert set(listed) <= {f"counter/{s}" for s in self.acknowledged}, set(listed)
        names = [f"counter/{s}" for s in self.acknowledged]
        positions = self.reader_store.positions(live, names)
        forgotten = self.forgotten.get(live.number, set())
        for stream, versions in self.acknowledged.items():
            name = f"counter/{stream}"
            position = positions.get(name, 0)
            document = documents.get(stream)
            for where, ids in [
                (f"document {stream}", None if document is None else document.ids),
                (f"shared list of {stream}", listed.get(name)),
            ]:
                self._check_ids(
                    where,
                    ids,
                    versions,
                    position,
                    deleted=stream in self.deleted,
                    forgotten=stream in forgotten or (final and stream in self.deleted),
                    final=final,
                )

    def _check_ids(
        self,
        where: str,
        ids: list[str] | None,
        versions: list[tuple[int, list[str]]],
        position: int,
        *,
        deleted: bool,
        forgotten: bool,
        final: bool,
    ) -> None:
        every = [i for _, batch in versions for i in batch]
        top = versions[-1][0]
        context = (where, ids, every, position, self.store_kind)
        if ids is not None:
            assert ids == every[: len(ids)], context  # a prefix: in order, each once
        if forgotten:
            assert ids is None, context
            assert position > top, context  # the tombstone's version
            return
        if position > top:  # only a tombstone is past the last event
            assert deleted, context
            assert ids is None, context
            return
        upto = [i for version, batch in versions if version <= position for i in batch]
        if self.reader_store.atomic:
            assert (ids or []) == upto, context
        elif ids is None:
            assert position == 0 or deleted, context  # S3: a tombstone may be ahead
        else:
            assert len(ids) >= len(upto), context  # S3: documents may be ahead
        if final:
            assert not deleted, context
            assert position == top, context
            assert ids == every, context

    def teardown(self) -> None:
        """Once every lease expired, a new projector of every shard runs full scans until
        nothing is new: every document then holds every acknowledged event."""
        if not hasattr(self, "slots"):
            return
        try:
            self.clock.now += LEASE_TTL + 1
            final, _, _ = self._projector(None)
            for _ in range(self.shards + 2):
                run = final.catch_up(full_scan=True)
                record = self.reader_store.generations(Ledger.NAME)
                if run.events == 0 and record.building is None and record.live is not None:
                    break
            assert run.events == 0, run
            reader = DocumentReader(self.reader_store, Ledger)
            live = reader.generation
            assert live is not None
            documents = dict(reader.documents())
            self.check(live, documents, final=True)
            streams = set(self.acknowledged) - self.deleted
            assert set(documents) - {SHARED} == streams, documents
            assert SHARED in documents or not streams, documents  # it stays, maybe empty
        finally:
            for close in self._closers:
                close()


_SETTINGS = settings(
    max_examples=int(os.environ.get("S3ES_PROJECTION_EXAMPLES", "20")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class S3History(DocumentProjectionHistory):
    """On the S3 store, over the in-memory object store: documents ahead of positions."""

    store_kind = "s3"


class SQLiteHistory(DocumentProjectionHistory):
    """On SQLite (in memory): atomic commits."""

    store_kind = "sqlite"


class PostgresHistory(DocumentProjectionHistory):
    """On PostgreSQL, a schema per example of the session's server: atomic commits."""

    store_kind = "postgres"


TestS3History = S3History.TestCase
TestS3History.settings = _SETTINGS
TestSQLiteHistory = SQLiteHistory.TestCase
TestSQLiteHistory.settings = _SETTINGS


class TestPostgresHistory(PostgresHistory.TestCase):  # type: ignore[valid-type,misc]
    """The machine on PostgreSQL: the session's server, started once (tests/conftest.py)."""

    settings = _SETTINGS

    @pytest.fixture(autouse=True)
    def _server(self, postgres_uri: str) -> None:
        PostgresHistory.postgres_uri = postgres_uri


# Regressions the machine found ---------------------------------------------------------------


@pytest.fixture(params=["s3", "sqlite", "postgres"])
def read_models(
    request: pytest.FixtureRequest, memory_store: InMemoryObjectStore
) -> Iterator[ReadModelStore]:
    """A fresh read-model store of each kind, the S3 one over ``memory_store``."""
    if request.param == "s3":
        yield S3ReadModelStore(memory_store, "p")
        return
    store: SQLiteReadModelStore | PostgresReadModelStore
    if request.param == "sqlite":
        store = SQLiteReadModelStore(":memory:")
    else:
        store = PostgresReadModelStore(request.getfixturevalue("postgres_conninfo"))
    with store:
        yield store


def test_every_event_of_an_append_of_several_is_applied(
    memory_store: InMemoryObjectStore, read_models: ReadModelStore
) -> None:
    """One command recording two events stores them as one version: both reach the document.

    ``_fold`` skips an event whose version the document's ``applied`` map holds, and moves the
    map to each event's version as it applies it, so the second event of a version is taken for
    one applied already (on every store: the map is the batch's on SQL).
    """
    events = EventStore(memory_store, prefix="p")
    result = CommandHandler(Repository(events, Counter)).handle("s-0", IncrementEach((1, 2)))
    DocumentProjector(events, Ledger, read_models).catch_up()
    ids = [recorded.id for recorded in result.recorded]
    assert len(ids) == 2
    reader = DocumentReader(read_models, Ledger)
    assert reader.get("s-0") == Applied("s-0", ids=ids)
    assert reader.get(SHARED) == Applied(SHARED, by_stream={"counter/s-0": ids})


def test_a_rebuild_by_a_projector_whose_lease_was_taken_raises_lease_held(
    memory_store: InMemoryObjectStore,
) -> None:
    """A projector whose lease expired and was taken by another: rebuild starts nothing and
    raises LeaseHeld, as its docstring says (it raised ProjectionFenced from the renewal)."""
    clock = _Clock()
    events = EventStore(memory_store, prefix="p", clock=clock)
    CommandHandler(Repository(events, Counter)).handle("s-0", IncrementEach((1,)))
    store = S3ReadModelStore(memory_store, "p")

    def projector(owner: str) -> DocumentProjector[Applied]:
        return DocumentProjector(
            events, Ledger, store, lease=LeaseOptions(owner=owner, ttl=10), clock=clock
        )

    first = projector("first")
    first.catch_up()
    clock.now += 11  # first's lease expires
    projector("second").catch_up()  # takes it, epoch 2
    with pytest.raises(LeaseHeld):
        first.rebuild()
    record = store.generations(Ledger.NAME)
    assert record.building is None  # nothing started


def test_a_projector_paused_while_a_rebuild_dropped_its_generation_is_fenced(
    memory_store: InMemoryObjectStore,
) -> None:
    """A projector pauses before stamping its shard's state in generation 1; its lease expires,
    a successor passes (generation 1 goes live) and rebuilds (generation 2 goes live, 1 is
    dropped). The paused one goes on: it must be fenced, not stamp generation 1 afresh (no
    state there any more, so no fence) and write into a dropped generation."""
    clock = _Clock()
    events = EventStore(memory_store, prefix="p", clock=clock)
    store = S3ReadModelStore(memory_store, "p")
    pausable = _Pausable(store)
    paused = DocumentProjector(
        events, Ledger, pausable, lease=LeaseOptions(owner="paused", ttl=LEASE_TTL), clock=clock
    )
    successor = DocumentProjector(
        events, Ledger, store, lease=LeaseOptions(owner="successor", ttl=LEASE_TTL), clock=clock
    )

    def pause(_generation: Generation, _shard: int) -> None:
        clock.now += LEASE_TTL + 1
        successor.catch_up()
        successor.rebuild()

    pausable.pause = pause
    run = paused.catch_up()
    live = store.generations(Ledger.NAME).live
    assert live is not None
    assert live.number == 2
    assert run.fenced == (0,), run
