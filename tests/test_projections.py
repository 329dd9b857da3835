"""Projections: read models folded from the streams, committed with their checkpoints."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import cattrs
import pytest

from s3es import (
    CommandHandler,
    CorruptChunk,
    EventStore,
    InlineProjection,
    InMemoryObjectStore,
    InvalidConfiguration,
    ObjectStoreError,
    Projection,
    Projector,
    RecordedEvent,
    Repository,
)
from s3es.errors import (
    CorruptReadModel,
    InlineProjectionFailed,
    LeaseHeld,
    NotJSON,
    ObjectAlreadyExists,
    ObjectChanged,
    ProjectionFenced,
)
from s3es.metering import RequestCounts
from s3es.ops import compact, delete
from s3es.projections import Batching, Feed, LeaseOptions, ProjectionPass
from s3es.readmodels import S3ReadModelStore
from s3es.storage import ForwardingObjectStore, ObjectStore, StoredObject
from tests.aggregates import (
    Counter,
    CounterState,
    Decrement,
    Increment,
    IncrementEach,
)
from tests.projections import (
    Applied,
    AppliedIds,
    AppliedIdsV2,
    FailingAppliedIds,
    stored_ids,
)


@attrs.define
class Clock:
    """A clock the test moves: ``now`` is seconds since the epoch, read as a UTC datetime."""

    now: float = 1_800_000_000.0

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


@attrs.define
class World:
    """A store, its counter streams, and a way to make projectors over them."""

    store: ObjectStore
    feed: bool = False
    clock: Clock = attrs.Factory(Clock)

    @property
    def events(self) -> EventStore:
        return EventStore(self.store, prefix="es", feed=self.feed, clock=self.clock)

    def datetime(self, behind: float = 0.0) -> datetime:
        """The clock's time as the appenders see it, ``behind`` seconds late."""
        return datetime.fromtimestamp(self.clock.now - behind, UTC)

    @property
    def repository(self) -> Repository[CounterState, Any, Any]:
        return Repository(self.events, Counter)

    def handler(self) -> CommandHandler[CounterState, Any, Any]:
        return CommandHandler(self.repository)

    def add(self, stream_id: str, *amounts: int) -> None:
        handler = self.handler()
        for amount in amounts:
            handler.handle(stream_id, Increment(amount))

    def projector(
        self,
        projection: Projection[Applied] | type[Projection[Applied]] = AppliedIds,
        **options: Any,
    ) -> Projector[Applied]:
        lease = options.get("lease", LeaseOptions())
        if lease.owner is None:
            options["lease"] = attrs.evolve(lease, owner=f"p{id(options)}")
        options.setdefault("feed", self.feed)
        return Projector(self.events, projection, clock=self.clock, **options)

    def assert_exactly_once(self, model: Applied, streams: list[str]) -> None:
        """Every stored event of ``streams`` is in the model once, in order; nothing else."""
        expected = {f"counter/{s}": stored_ids(self.repository, s) for s in streams}
        assert {s: ids for s, ids in model.ids.items() if s in expected} == expected
        assert set(model.ids) <= set(expected)


class PutHook(ForwardingObjectStore):
    """Hands every PUT (put-if-absent or replace) to ``hook(key, write)``, which may call
    ``write()`` (the PUT itself) and may raise before or after it."""

    def __init__(self, inner: ObjectStore, hook: Callable[[str, Callable[[], str]], str]) -> None:
        super().__init__(inner)
        self.hook = hook

    def put_if_absent(self, key: str, body: bytes) -> str:
        return self.hook(key, lambda: self.inner.put_if_absent(key, body))

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        return self.hook(key, lambda: self.inner.replace(key, body, etag=etag))


#: Where the first generation of AppliedIds's model is stored.
MODEL = "es/_readmodels/applied-ids/g1/model.json"


def live_number(world: World) -> int | None:
    """The number of AppliedIds's live generation, as stored (None if none is live)."""
    live = S3ReadModelStore(world.store, "es").generations("applied-ids").live
    return None if live is None else live.number


@pytest.fixture
def world() -> World:
    return World(InMemoryObjectStore())


class TestPasses:
    def test_first_pass_applies_every_event_once(self, world: World) -> None:
        """A pass over many streams applies each event once and commits model and checkpoints."""
        for n in range(5):
            world.add(f"c-{n}", *range(1, n + 2))
        run = world.projector().catch_up()
        assert run.full_scan
        # One commit of the pass's work (the new epoch's stamp, at once, is not counted).
        assert (run.streams, run.events, run.commits) == (5, 15, 1)
        world.assert_exactly_once(run.read_model.model, [f"c-{n}" for n in range(5)])
        stored = world.projector().read()
        assert stored.model == run.read_model.model
        assert stored.checkpoints == {f"counter/c-{n}": n + 1 for n in range(5)}
        assert stored.complete
        assert stored.epoch == 1
        assert stored.model.totals["counter/c-4"] == 15

    def test_next_pass_applies_only_what_is_new(self, world: World) -> None:
        """Events stored after a pass are applied by the next, the others not again."""
        world.add("a", 1, 2)
        world.add("b", 3)
        projector = world.projector()
        projector.catch_up()
        world.add("a", 4)
        world.handler().handle("a", Decrement(5))
        world.add("c", 6)
        run = projector.catch_up()
        assert (run.streams, run.events) == (2, 3)
        world.assert_exactly_once(run.read_model.model, ["a", "b", "c"])
        assert run.read_model.model.totals == {"counter/a": 2, "counter/b": 3, "counter/c": 6}

    def test_idle_pass_costs(self, world: World) -> None:
        """A scan finding nothing new: a LIST per type and per stream, the generations record
        (one GET); not the model (the projector holds the one it committed), no PUT."""
        for n in range(3):
            world.add(f"c-{n}", 1)
        projector = world.projector(lease=LeaseOptions(ttl=60))
        projector.catch_up()
        run = projector.catch_up()
        assert run.events == 0
        assert run.requests == RequestCounts(get=1, list=1 + 3)

    def test_first_pass_of_a_projector_reads_the_model(self, world: World) -> None:
        """A projector that holds no model yet (a new process, the same lease) reads it: one
        GET, then the scan."""
        for n in range(3):
            world.add(f"c-{n}", 1)
        world.projector(lease=LeaseOptions(owner="first", ttl=60)).catch_up()
        world.clock.now += 61
        run = world.projector(lease=LeaseOptions(owner="second", ttl=60)).catch_up()
        # The lease (GET + PUT), the generations record and the model (GETs), its stamp (PUT),
        # the scan (LISTs).
        assert run.requests == RequestCounts(get=1 + 2, put=1 + 1, list=1 + 3)

    def test_changed_stream_costs(self, world: World) -> None:
        """A stream with one new chunk adds a LIST (its new chunks) and a GET, then one PUT."""
        for n in range(3):
            world.add(f"c-{n}", 1)
        projector = world.projector(lease=LeaseOptions(ttl=60))
        projector.catch_up()
        world.add("c-1", 2)
        # The generations record and the new chunk (GETs).
        assert projector.catch_up().requests == RequestCounts(get=2, list=1 + 3 + 1, put=1)

    def test_commits_every_n_events(self, world: World) -> None:
        """With commit_every=2, a pass over 5 single-event streams commits 3 times (after the
        stamp of its new epoch, not counted)."""
        for n in range(5):
            world.add(f"c-{n}", 1)
        run = world.projector(batching=Batching(commit_every=2)).catch_up()
        assert run.commits == 3

    def test_progress_is_reported_per_stream(self, world: World) -> None:
        """A scan tells its progress callback (done, total) after each stream."""
        for n in range(3):
            world.add(f"c-{n}", 1)
        seen: list[tuple[int, int]] = []
        world.projector().catch_up(progress=lambda done, total: seen.append((done, total)))
        assert seen == [(1, 3), (2, 3), (3, 3)]

    def test_rewritten_and_compacted_chunks_apply_nothing_again(self, world: World) -> None:
        """A compaction or a re-snapshot adds chunks, not versions: nothing is applied twice."""
        world.add("a", 1, 2, 3)
        projector = world.projector()
        projector.catch_up()
        compact(world.repository, "a")
        world.add("a", 4)
        compact(world.repository, "a")
        run = projector.catch_up(full_scan=True)
        assert run.events == 1
        world.assert_exactly_once(run.read_model.model, ["a"])

    def test_deleted_stream_is_forgotten_once(self, world: World) -> None:
        """A deleted stream is handed to forget once; later passes leave it alone."""
        world.add("a", 1)
        world.add("b", 2)
        projector = world.projector()
        projector.catch_up()
        delete(world.repository, "a")
        run = projector.catch_up()
        assert run.read_model.model.forgotten == ["counter/a"]
        assert "counter/a" not in run.read_model.model.ids
        assert run.read_model.checkpoints["counter/a"] == 2
        assert projector.catch_up().read_model.model.forgotten == ["counter/a"]

    def test_stream_deleted_before_first_pass(self, world: World) -> None:
        """A stream deleted before the projector saw it is forgotten without error."""
        world.add("a", 1)
        delete(world.repository, "a")
        run = world.projector().catch_up()
        assert run.read_model.model.forgotten == ["counter/a"]

    def test_other_stream_types_and_prefixes_ignored(self, world: World) -> None:
        """Only the sources' streams under the event store's prefix are read."""
        world.add("a", 1)
        other = Repository(EventStore(world.store, prefix="elsewhere"), Counter)
        CommandHandler(other).handle("x", Increment(1))
        world.store.put_if_absent("es/other-type/o-1/99999999999999999998.999999.json", b"{}")
        run = world.projector().catch_up()
        assert set(run.read_model.model.ids) == {"counter/a"}


class TestCrashes:
    def test_crash_mid_pass_keeps_committed_work_and_redoes_the_rest(self, world: World) -> None:
        """A crash after some commits: the stored model holds exactly the committed streams;
        a new projector finishes from there, applying nothing twice."""
        for n in range(6):
            world.add(f"c-{n}", 1, 2)
        poison = {"armed": True}

        def crashes(event: RecordedEvent[Any]) -> bool:
            return poison["armed"] and event.stream.id == "c-3"

        crashing = world.projector(FailingAppliedIds(crashes), batching=Batching(commit_every=2))
        with pytest.raises(RuntimeError, match="crash on event"):
            crashing.catch_up()
        stored = world.projector().read()
        assert set(stored.checkpoints) == {"counter/c-0", "counter/c-1", "counter/c-2"}
        world.assert_exactly_once(stored.model, ["c-0", "c-1", "c-2"])
        poison["armed"] = False
        world.clock.now += 31  # the crashed projector's lease expires
        run = world.projector().catch_up()
        world.assert_exactly_once(run.read_model.model, [f"c-{n}" for n in range(6)])

    def test_lost_commit_answer_is_recovered(self, world: World) -> None:
        """A commit that landed but whose answer was lost is recognised by its commit id."""
        world.add("a", 1)

        def lose_answer(key: str, write: Callable[[], str]) -> str:
            etag = write()
            if key.endswith("model.json"):
                raise ObjectStoreError("PUT", key, "read timeout")
            return etag

        flaky = PutHook(world.store, lose_answer)
        projector = Projector(EventStore(flaky, prefix="es"), AppliedIds, clock=world.clock)
        run = projector.catch_up()
        assert run.commits == 1  # the pass (and the epoch's stamp): both answers lost
        assert world.projector().read().checkpoints == {"counter/a": 1}

    def test_commit_failure_without_answer_propagates(self, world: World) -> None:
        """A commit that failed and did not land raises the store's error, naming the key."""
        world.add("a", 1)

        def fail(key: str, write: Callable[[], str]) -> str:
            if key.endswith("model.json"):
                raise ObjectStoreError("PUT", key, "503 SlowDown")
            return write()

        flaky = PutHook(world.store, fail)
        projector = Projector(EventStore(flaky, prefix="es"), AppliedIds, clock=world.clock)
        with pytest.raises(ObjectStoreError, match=r"es/_readmodels/applied-ids/g1/model\.json"):
            projector.catch_up()
        assert world.projector().read().etag is None

    def test_unjudgeable_conflict_is_a_store_error(self, world: World) -> None:
        """A commit refused (412) whose read-back fails too raises ObjectStoreError naming the
        key, which the run loop survives, not the bare ObjectChanged (soak seed 196775910040)."""
        world.add("a", 1)
        projector = world.projector()
        projector.catch_up()  # the model's ETag is now held: the next commit is an If-Match
        world.add("a", 2)

        class RefusedThenUnreadable(ForwardingObjectStore):
            def replace(self, key: str, body: bytes, *, etag: str) -> str:
                if key.endswith("model.json"):
                    raise ObjectChanged(key)
                return self.inner.replace(key, body, etag=etag)

            def get(self, key: str) -> StoredObject | None:
                if key.endswith("model.json"):
                    raise ObjectStoreError("GET", key, "connection reset")
                return self.inner.get(key)

        projector.event_store.objects = RefusedThenUnreadable(world.store)
        projector.models.objects = projector.event_store.objects
        with pytest.raises(ObjectStoreError, match=r"commit is stored is unknown") as raised:
            projector.catch_up()
        assert raised.value.key == "es/_readmodels/applied-ids/g1/model.json"
        assert isinstance(raised.value.__cause__, ObjectChanged)


class TestHeldModel:
    """Between passes a projector keeps the model it committed: what that saves, and why it
    stays right."""

    def test_failed_pass_forgets_the_model(self, world: World) -> None:
        """A pass that fails after applying events in place (not committed) leaves nothing in
        memory: the next pass reads the document and applies those events once."""
        world.add("a", 1)
        poison = {"armed": False}
        projection = FailingAppliedIds(lambda e: poison["armed"] and e.stream.id == "b")
        projector = world.projector(
            projection, lease=LeaseOptions(ttl=60), batching=Batching(read_concurrency=1)
        )
        projector.catch_up()
        world.add("a", 2)  # applied in place before the poisoned stream...
        world.add("b", 3)
        poison["armed"] = True
        with pytest.raises(RuntimeError, match="crash on event"):
            projector.catch_up()  # ...and never committed
        poison["armed"] = False
        run = projector.catch_up()
        # The generations record, the model again, then a's and b's new chunks.
        assert run.requests.get == 1 + 1 + 2
        world.assert_exactly_once(run.read_model.model, ["a", "b"])
        world.assert_exactly_once(projector.read().model, ["a", "b"])

    def test_new_epoch_reads_and_stamps(self, world: World) -> None:
        """A projector that gave its lease up and takes it again (a new epoch) reads the
        document and stamps its epoch, as a new projector would."""
        world.add("a", 1)
        projector = world.projector(lease=LeaseOptions(ttl=60))
        projector.catch_up()
        projector.release()
        run = projector.catch_up()
        # The lease (GET + PUT), the generations record and the model (GETs), the stamp (PUT),
        # the scan (2 LISTs).
        assert run.requests == RequestCounts(get=1 + 2, put=1 + 1, list=1 + 1)
        assert (run.read_model.epoch, projector.read().epoch) == (2, 2)

    def test_takeover_is_found_at_the_next_commit(self, world: World) -> None:
        """A holder that paused past its lease keeps running idle passes, which write nothing;
        its first commit after the takeover fails its If-Match and it is fenced."""
        world.add("a", 1)
        paused = world.projector(lease=LeaseOptions(owner="paused", ttl=10))
        paused.catch_up()
        world.clock.now += 11
        world.projector(lease=LeaseOptions(owner="new", ttl=10)).catch_up()  # epoch 2, stamped
        world.clock.now -= 11  # the paused one's clock: its lease looks valid to it
        assert paused.catch_up().requests.put == 0
        world.add("a", 2)
        with pytest.raises(ProjectionFenced, match="epoch 1 was fenced by epoch 2"):
            paused.catch_up()
        stored = world.projector().read()
        assert (stored.epoch, stored.checkpoints) == (2, {"counter/a": 1})

    def test_a_pass_does_not_change_the_checkpoints_handed_back_before(self, world: World) -> None:
        """The checkpoints of a pass's ReadModel stay as they were when a later pass moves."""
        world.add("a", 1)
        projector = world.projector()
        first = projector.catch_up()
        world.add("a", 2)
        second = projector.catch_up()
        assert dict(first.read_model.checkpoints) == {"counter/a": 1}
        assert dict(second.read_model.checkpoints) == {"counter/a": 2}


class TestLeases:
    def test_one_projector_at_a_time(self, world: World) -> None:
        """While one holds the lease, another is told who holds it and until when."""
        world.add("a", 1)
        world.projector(lease=LeaseOptions(owner="first")).catch_up()
        with pytest.raises(LeaseHeld, match="run by 'first' \\(epoch 1\\)"):
            world.projector(lease=LeaseOptions(owner="second")).catch_up()

    def test_takeover_after_expiry_fences_the_old_one(self, world: World) -> None:
        """After the lease expires another takes it under epoch 2 and stamps the model with
        it; the old projector's next pass is fenced, and changes nothing."""
        world.add("a", 1)
        old = world.projector(lease=LeaseOptions(owner="old", ttl=10))
        old.catch_up()
        world.clock.now += 11
        new = world.projector(lease=LeaseOptions(owner="new", ttl=10))
        assert new.catch_up().read_model.epoch == 2
        world.add("a", 2)
        with pytest.raises(ProjectionFenced, match="epoch 1 was fenced by epoch 2"):
            old.catch_up()
        assert world.projector().read().checkpoints == {"counter/a": 1}
        assert new.catch_up().events == 1

    def test_paused_projector_cannot_overwrite(self, world: World) -> None:
        """A projector that paused between reading the model and committing it (past its
        lease) finds its commit refused and the newer epoch: it is fenced, nothing is lost."""
        world.add("a", 1)
        world.add("b", 1)
        takeover: dict[str, Projector[Applied]] = {}

        def pause(key: str, write: Callable[[], str]) -> str:
            if key.endswith("model.json") and "done" not in takeover:
                takeover["done"] = takeover["new"]
                world.clock.now += 31
                takeover["new"].catch_up()
            return write()

        paused = Projector(
            EventStore(PutHook(world.store, pause), prefix="es"),
            AppliedIds,
            lease=LeaseOptions(owner="paused"),
            clock=world.clock,
        )
        takeover["new"] = world.projector(lease=LeaseOptions(owner="new"))
        with pytest.raises(ProjectionFenced):
            paused.catch_up()
        stored = world.projector().read()
        assert stored.epoch == 2
        world.assert_exactly_once(stored.model, ["a", "b"])

    def test_release_lets_a_standby_take_over_at_once(self, world: World) -> None:
        """A released lease is taken by the next projector without waiting for it to expire."""
        world.add("a", 1)
        first = world.projector(lease=LeaseOptions(owner="first"))
        first.catch_up()
        first.release()
        assert world.projector(lease=LeaseOptions(owner="second")).catch_up().read_model.epoch == 2

    def test_renewed_when_half_gone(self, world: World) -> None:
        """A pass past half the lease's time renews it (one PUT), keeping the epoch."""
        world.add("a", 1)
        projector = world.projector(lease=LeaseOptions(ttl=10))
        projector.catch_up()
        world.clock.now += 6
        run = projector.catch_up()
        assert run.requests.put == 1
        assert projector.lease is not None
        assert projector.lease.epoch == 1
        assert projector.lease.expires_at == world.clock.now + 10

    def test_rebuild_needs_the_lease_unless_forced(self, world: World) -> None:
        """A rebuild refuses while another runs the projection; forced, it fences that one."""
        world.add("a", 1, 2)
        running = world.projector(lease=LeaseOptions(owner="running"))
        running.catch_up()
        with pytest.raises(LeaseHeld):
            world.projector(lease=LeaseOptions(owner="rebuilder")).rebuild()
        run = world.projector(lease=LeaseOptions(owner="rebuilder")).rebuild(force=True)
        assert run.read_model.epoch == 2
        world.assert_exactly_once(run.read_model.model, ["a"])
        # The rebuild went live in a generation stamped with epoch 2: the fenced projector's
        # next pass finds it there, and writes nothing.
        world.add("a", 3)
        with pytest.raises(ProjectionFenced):
            running.catch_up()
        stored = world.projector().read()
        assert (stored.epoch, stored.checkpoints) == (2, {"counter/a": 2})


class TestRebuilds:
    def test_schema_bump_rebuilds(self, world: World) -> None:
        """A stored model of another SCHEMA is thrown away and rebuilt from every event."""
        world.add("a", 1, 2)
        world.projector().catch_up()
        world.clock.now += 31
        run = world.projector(AppliedIdsV2).catch_up()
        assert run.events == 2
        world.assert_exactly_once(run.read_model.model, ["a"])
        assert run.read_model.schema == 2

    def test_rebuild_starts_from_nothing(self, world: World) -> None:
        """A rebuild applies every event again to a fresh model, under a new epoch."""
        world.add("a", 1, 2)
        projector = world.projector()
        projector.catch_up()
        run = projector.rebuild()
        assert (run.events, run.read_model.epoch) == (2, 2)
        world.assert_exactly_once(run.read_model.model, ["a"])

    def test_first_rebuild_costs(self, world: World) -> None:
        """A rebuild counts every request it sends, and reads nothing it has just written.

        The lease (GET + PUT); the generations record (GET), naming the new generation as
        being built (PUT); the new generation's model stamped with the epoch (PUT; no GET: the
        rebuild created the generation, and the stamp's PUT-if-absent refuses an object
        written meanwhile); the record again (GET: a rebuild elsewhere may have dropped the
        generation before the stamp); the scan (1 LIST, then per stream 2 LISTs and a GET per
        chunk); the commit (PUT); the switch (PUT, conditional on the record read: no GET of
        it, nor of the model just committed).
        """
        world.add("a", 1, 2)
        world.add("b", 3)
        run = world.projector().rebuild()
        assert run.requests == RequestCounts(
            get=1 + 1 + 1 + 3, put=1 + 1 + 1 + 1 + 1, list=1 + 2 * 2
        )
        assert live_number(world) == 1

    def test_rebuild_beside_a_live_generation_drops_its_one_object(self, world: World) -> None:
        """A rebuild beside a live generation costs a first rebuild's requests and one DELETE:
        the old generation is one object, deleted without listing it."""
        world.add("a", 1, 2)
        world.add("b", 3)
        projector = world.projector()
        projector.catch_up()
        run = projector.rebuild()
        assert run.requests == RequestCounts(
            get=1 + 1 + 1 + 3, put=1 + 1 + 1 + 1 + 1, list=1 + 2 * 2, delete=1
        )
        assert (world.store.get(MODEL), live_number(world)) == (None, 2)

    def test_switch_reads_the_record_again_only_if_it_changed(self, world: World) -> None:
        """The switch is conditional on the record the rebuild wrote; rewritten meanwhile by
        another process (here, the same record with a new ETag), it is read again (one GET)
        and the switch made on it."""
        world.add("a", 1)
        puts = {"model": 0}

        def rewrite_record(key: str, write: Callable[[], str]) -> str:
            etag = write()
            if key == MODEL:
                puts["model"] += 1
                if puts["model"] == 2:  # the commit: the stamp was the first
                    store = S3ReadModelStore(world.store, "es")
                    store.set_generations(store.generations("applied-ids"))
            return etag

        projector = Projector(
            EventStore(PutHook(world.store, rewrite_record), prefix="es"),
            AppliedIds,
            clock=world.clock,
        )
        run = projector.rebuild()
        assert live_number(world) == 1
        # A first rebuild's (4 GET, 5 PUT, 3 LIST); the rival's GET and PUT of the record (in
        # this thread, so counted); the switch refused (a PUT, and the store's GET telling a
        # refusal from its own lost write), then made after one more GET of the record.
        assert run.requests == RequestCounts(get=4 + 1 + 1 + 1, put=5 + 1 + 1, list=1 + 2)

    def test_rebuild_elsewhere_before_the_stamp_leaves_no_orphan(self, world: World) -> None:
        """A forced rebuild elsewhere that starts, between this rebuild's record write and its
        stamp, a newer generation (dropping this one): the record read again after the stamp
        shows it, the stamped object is dropped, and this rebuild is fenced."""
        world.add("a", 1)
        world.projector(lease=LeaseOptions(owner="first")).catch_up()
        world.clock.now += 61
        raced = {"done": False}

        def race(key: str, write: Callable[[], str]) -> str:
            etag = write()
            if key.endswith("generations.json") and not raced["done"]:
                raced["done"] = True
                world.projector(lease=LeaseOptions(owner="elsewhere")).rebuild(force=True)
            return etag

        projector = Projector(
            EventStore(PutHook(world.store, race), prefix="es"),
            AppliedIds,
            clock=world.clock,
            lease=LeaseOptions(owner="here"),
        )
        with pytest.raises(ProjectionFenced):
            projector.rebuild(force=True)
        assert world.store.get(MODEL.replace("/g1/", "/g2/")) is None  # not left behind
        assert live_number(world) == 3


class TestFeed:
    @pytest.fixture
    def world(self) -> World:
        return World(InMemoryObjectStore(), feed=True)

    def test_appends_write_feed_entries(self, world: World) -> None:
        """With the feed on, each append costs one more PUT: its feed entry."""
        handler = world.handler()
        assert handler.handle("a", Increment(1)).requests == RequestCounts(list=1, put=2)
        assert handler.handle("a", Increment(2)).requests == RequestCounts(put=2)
        feed = list(world.store.list_keys("es/_feed/counter/"))
        assert [key.rsplit(".", 2)[1:] for key in feed] == [
            ["00000000000000000001", "a"],
            ["00000000000000000002", "a"],
        ]

    def test_feed_pass_reads_only_named_streams(self, world: World) -> None:
        """After a full scan, a pass lists the feed and reads only the streams it names."""
        for n in range(5):
            world.add(f"c-{n}", 1)
        projector = world.projector(lease=LeaseOptions(ttl=60))
        assert projector.catch_up().full_scan
        world.add("c-3", 2)
        run = projector.catch_up()
        assert not run.full_scan
        assert (run.streams, run.events) == (1, 1)
        # The generations record, the feed, the stream's new chunks (LIST, GET), the commit;
        # the model is held.
        assert run.requests == RequestCounts(get=1 + 1, list=1 + 1, put=1)
        idle = projector.catch_up()
        # Nothing new: the generations record and the feed's LIST; not the model (the
        # projector holds the one it committed).
        assert idle.requests == RequestCounts(get=1, list=1)
        world.assert_exactly_once(idle.read_model.model, [f"c-{n}" for n in range(5)])

    @pytest.mark.parametrize(("behind", "seen"), [(20, True), (40, False)])
    def test_late_entry_within_look_back_is_seen(
        self, world: World, behind: float, *, seen: bool
    ) -> None:
        """An entry stamped by a clock 20 s behind is listed within a 30 s look-back; one 40 s
        behind is not (the periodic full scan is there for it)."""
        world.add("a", 1)
        projector = world.projector(lease=LeaseOptions(ttl=600), feed=Feed(lookback=30))
        projector.catch_up()
        world.clock.now += 10
        world.add("b", 1)
        assert projector.catch_up().events == 1
        late = EventStore(world.store, prefix="es", feed=True, clock=lambda: world.datetime(behind))
        CommandHandler(Repository(late, Counter)).handle("c", Increment(5))
        world.clock.now += 1
        run = projector.catch_up()
        assert run.events == (1 if seen else 0)
        if not seen:
            run = projector.catch_up(full_scan=True)
        world.assert_exactly_once(run.read_model.model, ["a", "b", "c"])

    def test_missing_entry_is_caught_by_the_full_scan(self, world: World) -> None:
        """An append whose feed entry was never written is found by the full scan that follows
        the last one by ``full_scan_interval``."""
        world.add("a", 1)
        projector = world.projector(feed=Feed(full_scan_interval=60), lease=LeaseOptions(ttl=600))
        assert projector.catch_up().full_scan
        CommandHandler(Repository(EventStore(world.store, prefix="es"), Counter)).handle(
            "silent", Increment(1)
        )
        world.clock.now += 59
        assert projector.catch_up().events == 0
        world.clock.now += 1
        run = projector.catch_up()
        assert run.full_scan
        world.assert_exactly_once(run.read_model.model, ["a", "silent"])
        assert not projector.catch_up().full_scan

    def test_feed_entry_failure_does_not_fail_the_append(self, world: World) -> None:
        """A feed PUT that fails after the chunk is stored is logged; the command succeeds."""

        def fail_feed(key: str, write: Callable[[], str]) -> str:
            if "/_feed/" in key:
                raise ObjectStoreError("PUT", key, "503 SlowDown")
            return write()

        flaky = PutHook(world.store, fail_feed)
        handler = CommandHandler(Repository(EventStore(flaky, prefix="es", feed=True), Counter))
        assert handler.handle("a", Increment(1)).version == 1
        assert list(world.store.list_keys("es/_feed/counter/")) == []


class TestStoredDocuments:
    def test_corrupt_model_is_named_and_left_alone(self, world: World) -> None:
        """A model document that is not one stops the projector, naming the key and field."""
        world.add("a", 1)
        projector = world.projector()
        projector.catch_up()
        model = world.store.get(MODEL)
        assert model is not None
        document = json.loads(model.body)
        document["checkpoints"]["counter/a"] = "one"
        world.store.replace(
            MODEL,
            json.dumps(document).encode(),
            etag=model.etag,
        )
        with pytest.raises(CorruptReadModel, match=r"model\.json.*checkpoints"):
            projector.read()
        world.add("a", 2)
        # The projector held the model it committed; its next commit finds the document
        # changed, reads it, and stops there.
        with pytest.raises(CorruptReadModel, match=r"model\.json.*checkpoints"):
            projector.catch_up()
        with pytest.raises(CorruptReadModel, match=r"model\.json.*checkpoints"):
            projector.catch_up()  # the failed pass forgot the model: it reads it first now

    def test_model_stored_once_as_converter_made_it(self, world: World) -> None:
        """The document holds the model exactly as CONVERTER unstructured it; a model that
        CONVERTER leaves not JSON is refused before any write, naming the projection and
        where in the model."""

        @attrs.define
        class Stamped:
            at: dict[str, datetime] = attrs.Factory(dict)

        # Not the JSON preset: it reads datetimes back from strings, but leaves them as they
        # are when it unstructures.
        lax = cattrs.Converter()
        lax.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))

        class Stamps(Projection[Stamped]):
            NAME = "stamps"
            SOURCES = (Counter,)
            CONVERTER = lax

            def initial_state(self) -> Stamped:
                return Stamped()

            def evolve(self, model: Stamped, event: RecordedEvent[Any]) -> Stamped:
                model.at[event.stream.id] = event.recorded_at
                return model

        world.add("a", 1)
        with pytest.raises(NotJSON, match=r"projection stamps: .*model\['at'\]\['a'\]"):
            Projector(world.events, Stamps, clock=world.clock).catch_up()
        stamp = world.store.get("es/_readmodels/stamps/g1/model.json")  # the new epoch's
        assert stamp is not None
        assert json.loads(stamp.body)["checkpoints"] == {}
        projector = world.projector()
        projector.catch_up()
        stored = world.store.get(MODEL)
        assert stored is not None
        model = projector.read().model
        assert json.loads(stored.body)["model"] == AppliedIds.CONVERTER.unstructure(model)

    def test_not_json(self, world: World) -> None:
        """A document that is not JSON is named as such."""
        world.projector().catch_up()
        stored = world.store.get(MODEL)
        assert stored is not None
        world.store.replace(MODEL, b"\xff\xfe", etag=stored.etag)
        with pytest.raises(CorruptReadModel, match="not a model document"):
            world.projector().read()

    def test_corrupt_chunk_stops_the_pass(self, world: World) -> None:
        """A chunk that cannot be read stops the pass with its key; nothing is skipped."""
        world.add("a", 1)
        world.store.put_if_absent("es/counter/a/99999999999999999997.999999.json", b"{")
        with pytest.raises(CorruptChunk, match="es/counter/a/99999999999999999997"):
            world.projector().catch_up()
        assert world.projector().read().checkpoints == {}


class TestConfiguration:
    @pytest.mark.parametrize(
        ("attributes", "problem"),
        [
            ({"NAME": "a/b"}, "must not contain '/'"),
            ({"NAME": ""}, "must not be empty"),
            ({"SCHEMA": 0}, "SCHEMA must be an int >= 1"),
            ({"SOURCES": ()}, "SOURCES must list"),
            ({"SOURCES": (int,)}, "not an Aggregate"),
            ({"SOURCES": (Counter, Counter)}, "two SOURCES have stream type 'counter'"),
        ],
    )
    def test_refused(self, world: World, attributes: dict[str, Any], problem: str) -> None:
        """A projection that cannot work is refused when its projector is made, saying why."""
        broken = type("Broken", (AppliedIds,), attributes)
        with pytest.raises(InvalidConfiguration, match=problem):
            world.projector(broken)


class TestInline:
    def test_read_your_writes(self, world: World) -> None:
        """An inline projection has a command's events before handle returns."""
        inline = InlineProjection(AppliedIds)
        handler = CommandHandler(world.repository, inline=[inline])
        result = handler.handle("a", IncrementEach((1, 2)))
        assert inline.model.ids == {"counter/a": [r.id for r in result.recorded]}
        assert inline.checkpoints == {"counter/a": 1}

    def test_gap_is_read_from_the_stream(self, world: World) -> None:
        """Events another process stored are read in before this process's next ones."""
        world.add("a", 1, 2)
        inline = InlineProjection(AppliedIds)
        CommandHandler(world.repository, inline=[inline]).handle("a", Increment(3))
        world.assert_exactly_once(inline.model, ["a"])
        assert inline.model.totals == {"counter/a": 6}

    def test_failure_says_the_events_are_stored(self, world: World) -> None:
        """A failing inline projection raises after the append, which stays stored."""
        inline = InlineProjection(FailingAppliedIds(lambda _: True))
        handler = CommandHandler(world.repository, inline=[inline])
        with pytest.raises(InlineProjectionFailed, match="events are stored"):
            handler.handle("a", Increment(1))
        assert world.repository.load("a").version == 1

    def test_sources_must_include_the_handlers_aggregate(self, world: World) -> None:
        """An inline projection that does not read the handler's stream type is refused."""
        other = type("Other", (Counter,), {"STREAM_TYPE": "other"})
        elsewhere = type("Elsewhere", (AppliedIds,), {"SOURCES": (other,)})
        with pytest.raises(InvalidConfiguration, match="does not read stream type 'counter'"):
            CommandHandler(world.repository, inline=[InlineProjection(elsewhere)])


class TestRunLoop:
    def test_store_failure_is_retried_next_pass(self, world: World) -> None:
        """A pass that S3 fails is logged and run again; the loop goes on."""
        world.add("a", 1)
        stop = threading.Event()

        class FlakyOnce(ForwardingObjectStore):
            failed = False

            def list_prefixes(self, prefix: str) -> Iterator[str]:
                if not self.failed:
                    self.failed = True
                    raise ObjectStoreError("LIST", prefix, "503 SlowDown")
                return super().list_prefixes(prefix)

            def replace(self, key: str, body: bytes, *, etag: str) -> str:
                if key.endswith("model.json") and b"counter/a" in body:
                    stop.set()  # the stream is applied: enough
                return super().replace(key, body, etag=etag)

        flaky = FlakyOnce(world.store)
        Projector(EventStore(flaky, prefix="es"), AppliedIds, clock=world.clock).run(
            stop, interval=0
        )
        assert flaky.failed
        assert world.projector().read().checkpoints == {"counter/a": 1}
        lease = world.projector().read_lease()
        assert lease is not None
        assert lease.expires_at == 0  # released on the way out

    def test_long_pass_renews_its_lease(self, world: World) -> None:
        """A pass that outlasts half its lease renews it between streams, keeping its epoch."""
        for n in range(6):
            world.add(f"c-{n}", 1)

        class SlowLists(ForwardingObjectStore):
            def list_keys(
                self, prefix: str, *, start_after: str | None = None, limit: int | None = None
            ) -> Iterator[str]:
                world.clock.now += 3
                return super().list_keys(prefix, start_after=start_after, limit=limit)

        projector = Projector(
            EventStore(SlowLists(world.store), prefix="es"),
            AppliedIds,
            clock=world.clock,
            lease=LeaseOptions(ttl=10),
        )
        run = projector.catch_up()
        assert run.requests.put > 2  # the lease, renewals, the commit
        assert projector.lease is not None
        assert projector.lease.epoch == 1
        assert projector.lease.expires_at > world.clock.now
        with pytest.raises(LeaseHeld):
            world.projector(lease=LeaseOptions(owner="standby")).catch_up()


def test_run_reports_each_pass(world: World) -> None:
    """run hands each pass's result to on_pass."""
    world.add("a", 1)
    stop = threading.Event()
    runs: list[ProjectionPass[Applied]] = []

    def seen(run: ProjectionPass[Applied]) -> None:
        runs.append(run)
        if len(runs) == 2:
            stop.set()

    world.projector().run(stop, interval=0, on_pass=seen)
    assert [run.events for run in runs] == [1, 0]


def test_inline_failure_starts_the_model_again(world: World) -> None:
    """An apply that fails half-way through (having changed the model in place) leaves no
    half-applied model: the view starts again and reads each stream back whole."""
    world.add("a", 1)
    calls = {"n": 0}

    def second_call_fails(_: RecordedEvent[Any]) -> bool:
        calls["n"] += 1
        return calls["n"] == 2

    inline = InlineProjection(FailingAppliedIds(second_call_fails))
    handler = CommandHandler(world.repository, inline=[inline])
    with pytest.raises(InlineProjectionFailed):
        handler.handle("a", IncrementEach((2, 3)))
    assert inline.model.ids == {}
    handler.handle("a", Increment(4))
    world.assert_exactly_once(inline.model, ["a"])


class TestReviewFindings:
    """Races a review found, each reproduced and fixed."""

    def test_failed_feed_pass_after_a_commit_skips_nothing(self) -> None:
        """A feed pass that commits half-way and then fails keeps the old feed cursor: the next
        pass still lists the entries of the streams it did not apply."""
        world = World(InMemoryObjectStore(), feed=True)
        projector = world.projector(batching=Batching(commit_every=1), lease=LeaseOptions(ttl=600))
        world.add("s0", 1)
        projector.catch_up()
        for stream_id, later in (("s1", 1), ("s2", 10), ("s3", 80)):
            world.clock.now += later
            world.add(stream_id, 1)
        failing = {"armed": True}

        class FailOnS2(ForwardingObjectStore):
            def get(self, key: str) -> StoredObject | None:
                if "/s2/" in key and failing["armed"]:
                    failing["armed"] = False
                    raise ObjectStoreError("GET", key, "503 SlowDown")
                return super().get(key)

        flaky = Projector(
            EventStore(FailOnS2(world.store), prefix="es"),
            AppliedIds,
            feed=True,
            batching=Batching(commit_every=1, read_concurrency=1),
            clock=world.clock,
        )
        world.clock.now += 601  # the first projector's lease is gone
        with pytest.raises(ObjectStoreError):
            flaky.catch_up(full_scan=False)  # commits s1, then fails on s2
        assert set(flaky.read().checkpoints) == {"counter/s0", "counter/s1"}
        run = flaky.catch_up(full_scan=False)  # s2's entry is 80 s before s3's
        world.assert_exactly_once(run.read_model.model, ["s0", "s1", "s2", "s3"])

    def test_appender_clock_ahead_does_not_blind_the_feed(self) -> None:
        """An entry stamped two minutes ahead does not move the cursor past entries that
        appenders with right clocks write after it."""
        world = World(InMemoryObjectStore(), feed=True)
        projector = world.projector(lease=LeaseOptions(ttl=600))
        world.add("a", 1)
        projector.catch_up()
        ahead = EventStore(
            world.store, prefix="es", feed=True, clock=lambda: world.datetime(behind=-120)
        )
        CommandHandler(Repository(ahead, Counter)).handle("fast", Increment(1))
        world.clock.now += 1
        projector.catch_up()
        for _ in range(5):
            world.clock.now += 10
            world.add("slow", 1)
            projector.catch_up()
        model = projector.read().model
        world.assert_exactly_once(model, ["a", "fast", "slow"])

    def test_forced_rebuild_fences_a_running_projector_at_once(self, world: World) -> None:
        """A forced rebuild stamps its epoch before reading any stream: the projector it took
        the lease from cannot commit even once more."""
        for n in range(3):
            world.add(f"c-{n}", 1)
        running = world.projector(
            lease=LeaseOptions(owner="running"), batching=Batching(commit_every=1)
        )
        running.catch_up()
        world.add("c-0", 2)
        rebuild = world.projector(lease=LeaseOptions(owner="ops")).rebuild(force=True)
        assert rebuild.read_model.epoch == 2
        with pytest.raises(ProjectionFenced, match="fenced by epoch 2"):
            running.catch_up()
        world.assert_exactly_once(world.projector().read().model, ["c-0", "c-1", "c-2"])

    def test_same_owner_name_does_not_share_the_lease(self, world: World) -> None:
        """Two processes given the same owner name are two holders: the second waits."""
        world.add("a", 1)
        world.projector(lease=LeaseOptions(owner="replica")).catch_up()
        with pytest.raises(LeaseHeld, match="run by 'replica'"):
            world.projector(lease=LeaseOptions(owner="replica")).catch_up()

    def test_lost_lease_answer_is_recovered(self, world: World) -> None:
        """A lease write that landed but whose answer was lost is recognised as this
        projector's own (its token), not as another holder's."""
        world.add("a", 1)

        def lose_answer(key: str, write: Callable[[], str]) -> str:
            etag = write()
            if key.endswith("lease.json"):
                raise ObjectAlreadyExists(key)  # what botocore's retry of a landed PUT gets
            return etag

        projector = Projector(
            EventStore(PutHook(world.store, lose_answer), prefix="es"),
            AppliedIds,
            clock=world.clock,
        )
        assert projector.catch_up().read_model.epoch == 1


def test_idle_full_scan_of_a_feed_projector_writes_nothing() -> None:
    """The hourly full scan of a feed projector that finds nothing new sends no PUT: its moved
    feed cursor waits for the next commit."""
    world = World(InMemoryObjectStore(), feed=True)
    for n in range(3):
        world.add(f"c-{n}", 1)
    projector = world.projector(lease=LeaseOptions(ttl=600))
    projector.catch_up()
    world.clock.now += 1
    # The generations record, the scan.
    assert projector.catch_up(full_scan=True).requests == RequestCounts(get=1, list=1 + 3)
    world.clock.now += 1
    world.add("c-1", 2)
    run = projector.catch_up()
    assert (run.full_scan, run.events) == (False, 1)


class TestModelTypeChecked:
    def test_unreadable_model_type_refused_when_wired(self) -> None:
        """A model type CONVERTER cannot read is an InvalidConfiguration naming the projection,
        raised when the Projector is made, not a failure at the first read of a stored model."""

        class Board:
            def __init__(self, orders: int) -> None:
                self.orders = orders

        class BoardProjection(Projection[Board]):
            NAME = "board"
            SOURCES = (Counter,)

            def initial_state(self) -> Board:
                return Board(0)

            def evolve(self, model: Board, event: RecordedEvent[Any]) -> Board:
                return Board(model.orders + 1)

        with pytest.raises(InvalidConfiguration, match=r"BoardProjection: CONVERTER cannot read"):
            Projector(EventStore(InMemoryObjectStore()), BoardProjection)
