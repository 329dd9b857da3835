"""Projections under random histories: appends on many streams, projector crashes and restarts,
leases expiring, a paused projector racing the one that took over, compactions and deletions.

After every step, the stored read model is exactly the fold of the acknowledged events up to
its checkpoints, each applied once and in order; at the end, a live projector's pass brings it
to every acknowledged event. A threaded test then races two projectors' ``run`` loops against
writers on S3 (moto over HTTP).
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from s3es import (
    CommandHandler,
    EventStore,
    InMemoryObjectStore,
    Projector,
    ReadModel,
    RecordedEvent,
    Repository,
    S3ObjectStore,
    StreamDeleted,
)
from s3es.errors import LeaseHeld, ProjectionFenced
from s3es.ops import compact, delete
from s3es.projections import Batching, Feed, LeaseOptions
from s3es.storage import ForwardingObjectStore, ObjectStore
from tests.aggregates import FAST_RETRY, Counter, Increment
from tests.projections import Applied, AppliedIds, FailingAppliedIds

STREAMS = ("s-0", "s-1", "s-2", "s-3")
LEASE_TTL = 10.0


class _Clock:
    """A clock the test moves: ``now`` is seconds since the epoch, read as a UTC datetime."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


class _Pausable(ForwardingObjectStore):
    """A projector's own view of the store: ``pause``, if set, runs once before the next PUT
    of a read-model document, as if the process froze there."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.pause: Callable[[], None] | None = None

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        self._maybe(key)
        return super().replace(key, body, etag=etag)

    def put_if_absent(self, key: str, body: bytes) -> str:
        self._maybe(key)
        return super().put_if_absent(key, body)

    def _maybe(self, key: str) -> None:
        if self.pause is not None and key.endswith("model.json"):
            pause, self.pause = self.pause, None
            pause()


class _CommitWatcher(ForwardingObjectStore):
    """Reads every read-model document as it is stored, and asserts that none goes back on the
    one before: no stream's checkpoint lower, no epoch lower. (Each document is consistent in
    itself; an overwrite of another projector's work would show up here.)"""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.checkpoints: dict[str, int] = {}
        self.epoch = 0
        self.commits = 0

    def put_if_absent(self, key: str, body: bytes) -> str:
        etag = super().put_if_absent(key, body)
        self._watch(key, body)
        return etag

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        new_etag = super().replace(key, body, etag=etag)
        self._watch(key, body)
        return new_etag

    def _watch(self, key: str, body: bytes) -> None:
        if not key.endswith("model.json"):
            return
        document = json.loads(body)
        for stream, checkpoint in self.checkpoints.items():
            assert document["checkpoints"].get(stream, 0) >= checkpoint, (stream, document)
        assert document["epoch"] >= self.epoch
        self.checkpoints, self.epoch = document["checkpoints"], document["epoch"]
        self.commits += 1


def _attempt(run: Callable[[], object], *expected: type[Exception]) -> None:
    """Run a projector's pass; LeaseHeld and ProjectionFenced (and ``expected``) are outcomes
    a projector meets in a race, counted in hypothesis's statistics, not failures."""
    outcomes: tuple[type[Exception], ...] = (LeaseHeld, ProjectionFenced, *expected)
    try:
        run()
    except outcomes as outcome:
        event(type(outcome).__name__)
    else:
        event("pass committed")


class ProjectionHistory(RuleBasedStateMachine):
    """A store, writers, and two projector slots whose projectors crash and come back."""

    @initialize(feed=st.booleans())
    def start(self, *, feed: bool) -> None:
        self.store = _CommitWatcher(InMemoryObjectStore())
        self.clock = _Clock()
        self.feed = feed
        self.repository = Repository(EventStore(self.store, prefix="p", feed=feed), Counter)
        self.handler = CommandHandler(self.repository, FAST_RETRY)
        #: stream -> version -> event ids, as acknowledged to the writers.
        self.acknowledged: dict[str, dict[int, list[str]]] = {}
        self.deleted: set[str] = set()
        self.owners = itertools.count()
        self.projectors = [self._projector(), self._projector()]
        self.high_water: dict[str, int] = {}
        self.epoch = 0

    def _projector(self, projection: Any = AppliedIds) -> Any:
        return Projector(
            EventStore(_Pausable(self.store), prefix="p"),
            projection,
            lease=LeaseOptions(owner=f"owner-{next(self.owners)}", ttl=LEASE_TTL),
            feed=Feed(full_scan_interval=LEASE_TTL * 2) if self.feed else False,
            batching=Batching(commit_every=2),
            clock=self.clock,
        )

    @rule(stream=st.sampled_from(STREAMS), amounts=st.lists(st.integers(1, 9), max_size=3))
    def append(self, stream: str, amounts: list[int]) -> None:
        """A writer stores a command's events (one per amount) as the next version; a deleted
        stream refuses it."""
        name = f"counter/{stream}"
        for amount in amounts:
            if name in self.deleted:
                with pytest.raises(StreamDeleted):
                    self.handler.handle(stream, Increment(amount))
                continue
            result = self.handler.handle(stream, Increment(amount))
            versions = self.acknowledged.setdefault(name, {})
            versions[result.version] = [r.id for r in result.recorded]

    @rule(slot=st.sampled_from([0, 1]), full_scan=st.sampled_from([None, True]))
    def run_pass(self, slot: int, full_scan: bool | None) -> None:
        """A projector runs a pass; it may find the lease held, or itself fenced."""
        _attempt(lambda: self.projectors[slot].catch_up(full_scan=full_scan))

    @rule(slot=st.sampled_from([0, 1]), after=st.integers(0, 6))
    def crash(self, slot: int, after: int) -> None:
        """A projector dies ``after`` events into a pass; a new process takes its slot."""
        applied = itertools.count()

        def dies(_: RecordedEvent[Any]) -> bool:
            return next(applied) >= after

        doomed = self._projector(FailingAppliedIds(dies))
        _attempt(doomed.catch_up, RuntimeError)  # the crash under test
        self.projectors[slot] = self._projector()

    @rule(seconds=st.sampled_from([1.0, LEASE_TTL / 2 + 0.5, LEASE_TTL + 1]))
    def time_passes(self, seconds: float) -> None:
        """Time passes: leases get renewed, or expire."""
        self.clock.now += seconds

    @rule(slot=st.sampled_from([0, 1]))
    def pause_then_race(self, slot: int) -> None:
        """A projector pauses just before committing; meanwhile its lease expires and the other
        slot's projector runs a pass. Then the paused one goes on."""
        paused, rival = self.projectors[slot], self.projectors[1 - slot]

        def pause() -> None:
            self.clock.now += LEASE_TTL + 1
            _attempt(rival.catch_up)

        paused.event_store.objects.pause = pause
        self.clock.now += LEASE_TTL + 1  # so that the paused one can take the lease first
        _attempt(paused.catch_up)  # fenced by the rival if the rival committed first
        paused.event_store.objects.pause = None

    @precondition(lambda self: len(self.acknowledged) > len(self.deleted))
    @rule(data=st.data())
    def compact_or_delete(self, data: st.DataObject) -> None:
        """An operator compacts a stream, or deletes it."""
        live = sorted(s for s in self.acknowledged if s not in self.deleted)
        stream = data.draw(st.sampled_from(live))
        stream_id = stream.split("/", 1)[1]
        if data.draw(st.booleans()):
            compact(self.repository, stream_id)
        else:
            delete(self.repository, stream_id)
            self.deleted.add(stream)
            self.handler.cache.discard(stream_id)

    def _stored(self) -> ReadModel[Applied]:
        stored: ReadModel[Applied] = self._projector().read()
        return stored

    @invariant()
    def model_is_the_fold_up_to_its_checkpoints(self) -> None:
        """Each stream's ids in the model are its acknowledged ids up to its checkpoint, and no
        commit goes back on an earlier one."""
        if not hasattr(self, "store"):
            return
        stored = self._stored()
        self.check(stored)
        # Committed work is never undone: checkpoints and the epoch only move forward.
        for stream, checkpoint in self.high_water.items():
            assert stored.checkpoints.get(stream, 0) >= checkpoint, stream
        assert stored.epoch >= self.epoch
        self.high_water = dict(stored.checkpoints)
        self.epoch = stored.epoch

    def check(self, stored: ReadModel[Applied]) -> None:
        """``stored`` holds each acknowledged event up to its checkpoints once, in order."""
        model = stored.model
        for stream, checkpoint in stored.checkpoints.items():
            if stream in model.forgotten:
                assert stream in self.deleted
                assert stream not in model.ids
                continue
            versions = self.acknowledged.get(stream, {})
            expected = [i for v in sorted(versions) if v <= checkpoint for i in versions[v]]
            assert model.ids.get(stream, []) == expected, stream
        assert set(model.ids) <= set(stored.checkpoints)
        assert len(model.forgotten) == len(set(model.forgotten))

    def teardown(self) -> None:
        """A live projector, once the leases expired, catches up with everything."""
        if not hasattr(self, "store"):
            return
        self.clock.now += LEASE_TTL + 1
        final = self._projector().catch_up(full_scan=True).read_model
        self.check(final)
        for stream, versions in self.acknowledged.items():
            if stream in self.deleted:
                assert stream in final.model.forgotten
            else:
                assert final.checkpoints[stream] == max(versions)


TestProjectionHistory = ProjectionHistory.TestCase
TestProjectionHistory.settings = settings(
    max_examples=int(os.environ.get("S3ES_PROJECTION_EXAMPLES", "60")),
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_two_projectors_racing_writers_on_s3(s3_store: S3ObjectStore) -> None:
    """Two projectors' run loops race on moto while writers append to several streams: the
    stored model ends with every acknowledged event exactly once, and only one epoch wrote
    at a time (the loser stood by)."""
    events = EventStore(s3_store, prefix="race", feed=True)
    repository = Repository(events, Counter)
    handler = CommandHandler(repository, FAST_RETRY)
    stop = threading.Event()
    projectors = [
        Projector(
            events,
            AppliedIds,
            lease=LeaseOptions(owner=f"p-{n}", ttl=0.5),
            feed=True,
            batching=Batching(commit_every=3),
        )
        for n in range(2)
    ]
    loops = [
        threading.Thread(target=p.run, args=(stop,), kwargs={"interval": 0.01}) for p in projectors
    ]
    for loop in loops:
        loop.start()
    acknowledged: dict[str, list[str]] = {}
    try:
        for n in range(24):
            stream_id = f"r-{n % 4}"
            result = handler.handle(stream_id, Increment(n + 1))
            acknowledged.setdefault(str(result.stream), []).extend(r.id for r in result.recorded)
    finally:
        stop.set()
        for loop in loops:
            loop.join()
    final = Projector(events, AppliedIds, lease=LeaseOptions(owner="final"), feed=True).catch_up(
        full_scan=True
    )
    assert final.read_model.model.ids == acknowledged
    assert final.read_model.epoch >= 2  # the final one took over from a run loop


@pytest.mark.parametrize("feed", [False, True])
def test_run_loop_stands_by_then_takes_over(*, feed: bool) -> None:
    """A second run loop stands by while the first holds the lease, and takes over once the
    first stops and releases it."""
    store = InMemoryObjectStore()
    events = EventStore(store, feed=feed)
    CommandHandler(Repository(events, Counter)).handle("a", Increment(1))
    clock = _Clock()
    first = Projector(events, AppliedIds, lease=LeaseOptions(owner="first"), feed=feed, clock=clock)
    second = Projector(
        events, AppliedIds, lease=LeaseOptions(owner="second"), feed=feed, clock=clock
    )
    first.catch_up()
    stop = threading.Event()
    stop.set()  # one pass each, then out
    with pytest.raises(LeaseHeld):
        second.catch_up()
    first.run(stop)  # releases on the way out
    assert second.catch_up().read_model.epoch == 2
