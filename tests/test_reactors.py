"""Reactors: events turned into commands once, with correlation, retries and parking.

The reactor under test mirrors each increment of a counter onto a "mirror" counter (and, for
amounts of 7, takes it from a "sink" counter, which refuses when it holds too little: a
reaction that fails until an operator fills the sink).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from s3es import Backoff, CommandHandler, EventStore, InMemoryObjectStore, RecordedEvent, Repository
from s3es.errors import InvalidConfiguration, LeaseHeld, ObjectStoreError
from s3es.projections import LeaseOptions, Shards
from s3es.reactors import CAUSATION_ID, CORRELATION_ID, ReactionRetry, Reactor, ReactorRunner, Send
from s3es.readmodels import ReadModelStore, S3ReadModelStore, SQLiteReadModelStore
from s3es.storage import ForwardingObjectStore, ObjectStore
from tests.aggregates import FAST_RETRY, Counter, Increment
from tests.consumers_cli_fixtures import Mirror

#: Retries of a failing reaction, fast.
FAST_BACKOFF = Backoff(initial=0.0001, maximum=0.001)


@pytest.fixture(params=["s3", "sqlite"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[ObjectStore], Any]]:
    """A fresh reactor store of each kind (SQLite ones closed after the test)."""
    if request.param == "s3":
        yield lambda objects: S3ReadModelStore(objects, "p")
        return
    with contextlib.ExitStack() as stores:
        yield lambda _: stores.enter_context(SQLiteReadModelStore(tmp_path / "reactor.db"))


class Shop:
    """Counters, a handler, and what writers were told."""

    def __init__(self, make_store: Callable[[ObjectStore], ReadModelStore]) -> None:
        self.objects = InMemoryObjectStore()
        self.events = EventStore(self.objects, prefix="p", feed=True)
        self.repository = Repository(self.events, Counter)
        self.handler = CommandHandler(self.repository, FAST_RETRY)
        self.store = make_store(self.objects)

    def runner(self, **options: Any) -> ReactorRunner:
        """A runner of the mirror on this shop."""
        options.setdefault("retry", ReactionRetry(max_attempts=2, backoff=FAST_BACKOFF))
        return ReactorRunner(self.events, Mirror, self.store, **options)

    def total(self, stream_id: str) -> int:
        """A counter's total as stored."""
        return int(self.repository.load(stream_id).state.total)


@pytest.fixture
def shop(make_store: Callable[[ObjectStore], ReadModelStore]) -> Shop:
    """A shop on the test's store."""
    return Shop(make_store)


def test_each_event_is_reacted_to_once_with_correlation_and_causation(shop: Shop) -> None:
    """Mirrors hold the sums; each mirrored event names its cause and the flow's first event."""
    shop.handler.handle("c-1", Increment(2))
    placed = shop.handler.handle("c-1", Increment(3), metadata={CORRELATION_ID: "flow-9"})
    shop.handler.handle("c-2", Increment(4))
    runner = shop.runner()
    run = runner.catch_up()
    assert (run.events, run.commands, run.duplicates, run.parked, run.conflicts) == (
        3,
        3,
        0,
        (),
        0,
    )
    assert shop.total("mirror-c-1") == 5
    assert shop.total("mirror-c-2") == 4
    assert runner.catch_up(full_scan=True).commands == 0
    runner.release()
    assert shop.runner(lease=LeaseOptions(owner="restarted")).catch_up(full_scan=True).commands == 0
    mirrored = list(shop.repository.read("mirror-c-1"))
    assert [e.metadata[CAUSATION_ID] for e in mirrored] == [
        *(e.id for e in shop.repository.read("c-1")),
    ]
    assert mirrored[0].metadata[CORRELATION_ID] == mirrored[0].metadata[CAUSATION_ID]
    assert mirrored[1].metadata[CORRELATION_ID] == "flow-9"
    assert mirrored[1].metadata[CAUSATION_ID] == placed.recorded[0].id


class _DiesOnce(ForwardingObjectStore):
    """Fails the first PUT of a stream's position: the process died after sending commands."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.armed = True

    def put_if_absent(self, key: str, body: bytes) -> str:
        self._die(key)
        return super().put_if_absent(key, body)

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        self._die(key)
        return super().replace(key, body, etag=etag)

    def _die(self, key: str) -> None:
        # c-1's own position: the mirror stream's moves too, in parallel, and may come first.
        if self.armed and key.endswith("/positions/counter/c-1") and self.stamped:
            self.armed = False
            raise ObjectStoreError("PUT", key, "injected: died before the position was stored")

    stamped = False


def test_a_crash_after_the_commands_sends_them_again_as_duplicates_with_one_effect() -> None:
    """At-least-once delivery, one effect: the command ids derived from the event's."""
    objects = InMemoryObjectStore()
    events = EventStore(objects, prefix="p")
    repository = Repository(events, Counter)
    handler = CommandHandler(repository, FAST_RETRY)
    handler.handle("c-1", Increment(2))
    dying = _DiesOnce(objects)
    runner = ReactorRunner(
        events, Mirror, S3ReadModelStore(dying, "p"), retry=ReactionRetry(backoff=FAST_BACKOFF)
    )
    runner.catch_up()  # stamps its state, reacts, commits: nothing injected yet
    handler.handle("c-1", Increment(5))
    dying.stamped = True
    with pytest.raises(ObjectStoreError, match="injected"):
        runner.catch_up()
    again = runner.catch_up()
    assert (again.commands, again.duplicates) == (1, 1)
    assert repository.load("mirror-c-1").state.total == 7


def test_a_reaction_that_keeps_failing_is_parked_then_retried_or_skipped(shop: Shop) -> None:
    """The sink refuses a 7 until it holds 7: the event is parked, the stream goes on; once
    the sink is filled an operator's retry sends it; another is skipped and kept."""
    shop.handler.handle("c-1", Increment(7))
    shop.handler.handle("c-1", Increment(1))
    shop.handler.handle("c-2", Increment(7))
    runner = shop.runner()
    run = runner.catch_up()
    assert len(run.parked) == 2
    assert shop.total("mirror-c-1") == 8  # the mirror's own increment went, and the next event
    parked = {p.stream: p for p in runner.parked()}
    assert set(parked) == {"counter/c-1", "counter/c-2"}
    assert parked["counter/c-1"].attempts == 2
    assert "CounterError" in parked["counter/c-1"].error
    assert runner.catch_up().parked == ()  # parked events are not tried again by passes
    shop.handler.handle("sink", Increment(7))
    results = runner.retry(parked["counter/c-1"].event_id)
    assert [r.duplicate for r in results] == [True, False]  # the mirror's went the first time
    assert shop.total("sink") == 0
    runner.skip(parked["counter/c-2"].event_id)
    assert runner.parked() == []
    (skipped,) = runner.parked(skipped=True)
    assert (skipped.stream, skipped.status) == ("counter/c-2", "skipped")
    with pytest.raises(InvalidConfiguration, match="no event 'nope' is parked"):
        runner.retry("nope")
    runner.catch_up()  # the running holder's state moved under it: it starts again, fine


def test_a_store_failure_fails_the_pass_and_parks_nothing(shop: Shop) -> None:
    """S3 failing while a command is sent is not the event's fault."""

    class Broken(ForwardingObjectStore):
        def put_if_absent(self, key: str, body: bytes) -> str:
            if "/mirror-" in key:
                raise ObjectStoreError("PUT", key, "injected: S3 is down")
            return super().put_if_absent(key, body)

    shop.handler.handle("c-1", Increment(2))
    events = EventStore(Broken(shop.objects), prefix="p")
    runner = ReactorRunner(events, Mirror, shop.store, retry=ReactionRetry(backoff=FAST_BACKOFF))
    with pytest.raises(ObjectStoreError, match="S3 is down"):
        runner.catch_up()
    runner.release()
    healthy = shop.runner(lease=LeaseOptions(owner="healthy")).catch_up()
    assert (healthy.commands, healthy.parked) == (1, ())


def test_two_shards_in_threads_send_every_command_once(shop: Shop) -> None:
    """Two runners, one shard each, share the streams."""
    for n in range(12):
        shop.handler.handle(f"c-{n}", Increment(n + 1 if n + 1 != 7 else 1))
    runners = [
        shop.runner(shards=Shards(2, ids=[s]), lease=LeaseOptions(owner=f"r{s}")) for s in range(2)
    ]
    threads = [threading.Thread(target=r.catch_up) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in range(12):
        assert shop.total(f"mirror-c-{n}") == (n + 1 if n + 1 != 7 else 1)
    with pytest.raises(LeaseHeld):
        shop.runner(shards=Shards(2, ids=[0]), lease=LeaseOptions(owner="late")).catch_up()


def test_bad_reactors_are_refused_by_name() -> None:
    """NAME, SOURCES, attempts and what react yields are checked."""
    events = EventStore(InMemoryObjectStore())
    store = S3ReadModelStore(events.objects)

    class Nameless(Reactor):
        SOURCES = (Counter,)

        def react(self, event: RecordedEvent[Any]) -> Iterator[Send]:
            yield from ()

    with pytest.raises(InvalidConfiguration, match="reactor NAME"):
        ReactorRunner(events, Nameless, store)
    with pytest.raises(InvalidConfiguration, match="attempts"):
        ReactorRunner(events, Mirror, store, retry=ReactionRetry(max_attempts=0))


def test_react_giving_something_else_than_send_parks_the_event_naming_it() -> None:
    """A reaction that yields a bare command is parked with an error that says what to do."""

    class Bare(Mirror):
        NAME = "bare"

        def react(self, event: RecordedEvent[Any]) -> Iterator[Any]:
            yield Increment(1)

    events = EventStore(InMemoryObjectStore())
    CommandHandler(Repository(events, Counter)).handle("c-1", Increment(1))
    runner = ReactorRunner(
        events,
        Bare,
        S3ReadModelStore(events.objects),
        retry=ReactionRetry(max_attempts=1, backoff=FAST_BACKOFF),
    )
    assert len(runner.catch_up().parked) == 1
    (parked,) = runner.parked()
    assert "react yields Send(...)" in parked.error


def test_another_number_of_shards_keeps_the_positions_and_parked_events(shop: Shop) -> None:
    """Resharding a reactor reacts to nothing again and loses no parked event."""
    shop.handler.handle("c-1", Increment(7))  # parked: the sink is empty
    shop.handler.handle("c-2", Increment(2))
    one = shop.runner()
    assert len(one.catch_up().parked) == 1
    one.release()
    two = shop.runner(shards=2, lease=LeaseOptions(owner="two"))
    again = two.catch_up()
    assert (again.commands, again.parked) == (0, ())
    assert [p.stream for p in two.parked()] == ["counter/c-1"]


def test_commands_that_lose_their_version_are_counted_as_conflicts(shop: Shop) -> None:
    """A command whose stream moved under it is decided again; the pass counts the loss."""

    class Racing(ForwardingObjectStore):
        """A rival writer takes mirror-c-1's version 1 just before the reactor's PUT."""

        raced = False

        def put_if_absent(self, key: str, body: bytes) -> str:
            if not self.raced and "/mirror-c-1/" in key:
                self.raced = True
                shop.handler.handle("mirror-c-1", Increment(100))
            return super().put_if_absent(key, body)

    shop.handler.handle("c-1", Increment(2))
    events = EventStore(Racing(shop.objects), prefix="p", feed=True)
    run = ReactorRunner(
        events, Mirror, shop.store, retry=ReactionRetry(backoff=FAST_BACKOFF)
    ).catch_up()
    assert (run.commands, run.conflicts) == (1, 1)
    assert shop.total("mirror-c-1") == 102
