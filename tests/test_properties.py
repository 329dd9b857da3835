"""Properties under random histories: concurrent writers, snapshots, schema bumps.

The concurrency property runs many writers (threads) through CommandHandler on one stream and
checks what an event store must guarantee: gapless versions, every acknowledged append stored
exactly once, nothing stored that was not acknowledged, and a state that adds up. It runs on the
in-memory store and on moto over HTTP (whose writes the ``embedded_s3`` fixture serialises so
that its conditional PUT is atomic, as S3's is). Hypothesis cannot use function-scoped fixtures,
so each example makes its store, or a prefix of its own on the module's bucket.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import random
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeAlias

import attrs
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from s3es import (
    Backoff,
    CommandHandler,
    CommandResult,
    EventStore,
    InMemoryObjectStore,
    Repository,
    RetriesExhausted,
    RetryPolicy,
    S3ObjectStore,
)
from s3es.metering import RequestCounts
from s3es.storage import ObjectStore
from s3es.testing.embedded_s3 import EmbeddedS3
from tests.aggregates import (
    Counter,
    CounterCommand,
    CounterError,
    CounterV2,
    Increment,
    IncrementEach,
    counter_total,
)
from tests.strategies import histories, stream_ids, writer_plans

STREAM_ID = "shared"
#: Tiny pauses keep the runs fast; the attempts are drawn per example (few: some give up).
_BACKOFF = Backoff(initial=0.0001, maximum=0.002)
_prefixes = itertools.count()


@pytest.fixture(scope="module")
def moto_store(embedded_s3: EmbeddedS3) -> S3ObjectStore:
    """One bucket for the module; each example writes under a prefix of its own."""
    embedded_s3.create_bucket("properties")
    return embedded_s3.object_store("properties")


@attrs.frozen
class Outcome:
    """What one command of one writer came to: its result, or how it was refused."""

    tag: str
    command: CounterCommand
    result: CommandResult[Any, Any] | None
    #: "refused" (a domain error) or "exhausted" (RetriesExhausted); None when handled.
    refusal: str | None
    #: Decisions made: the result's attempts, or RetriesExhausted's.
    attempts: int


def _run_writers(
    objects: ObjectStore, prefix: str, plans: list[list[CounterCommand]], policy: RetryPolicy
) -> list[list[Outcome]]:
    """Each plan's commands, in order, by a thread of its own; all threads start together."""
    barrier = threading.Barrier(len(plans), timeout=60)

    def write(writer: int, commands: list[CounterCommand]) -> list[Outcome]:
        # Each writer is a process of its own: its own event store, repository and handler.
        repository = Repository(EventStore(objects, prefix=prefix), Counter)
        handler = CommandHandler(repository, policy, rng=random.Random(writer))
        outcomes = []
        barrier.wait()
        for index, command in enumerate(commands):
            tag = f"{writer}.{index}"
            try:
                result = handler.handle(STREAM_ID, command, metadata={"command": tag})
            except RetriesExhausted as error:
                outcomes.append(Outcome(tag, command, None, "exhausted", error.attempts))
            except CounterError:
                outcomes.append(Outcome(tag, command, None, "refused", 0))
            else:
                outcomes.append(Outcome(tag, command, result, None, result.attempts))
        return outcomes

    with _frequent_thread_switches(), ThreadPoolExecutor(max_workers=len(plans)) as pool:
        futures = [pool.submit(write, writer, plan) for writer, plan in enumerate(plans)]
        return [future.result() for future in futures]


@contextlib.contextmanager
def _frequent_thread_switches() -> Iterator[None]:
    """Let the interpreter switch threads far more often, so writers interleave mid-command."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


#: Runs each plan's commands by a writer of its own, as _run_writers does (tests/test_aio_*).
Writers: TypeAlias = Callable[[str, list[list[CounterCommand]], RetryPolicy], list[list[Outcome]]]


def check_concurrent_appends(
    objects: ObjectStore,
    prefix: str,
    plans: list[list[CounterCommand]],
    max_attempts: int,
    *,
    writers: Writers | None = None,
) -> None:
    """Race ``plans`` on one stream, then check the stream holds exactly what was acknowledged.

    The writers are threads of CommandHandlers on ``objects`` unless ``writers`` runs them
    (the async handler's tasks); the checks read ``objects``.
    """
    policy = RetryPolicy(max_attempts=max_attempts, backoff=_BACKOFF)
    if writers is None:
        by_writer = _run_writers(objects, prefix, plans, policy)
    else:
        by_writer = writers(prefix, plans, policy)
    outcomes = [outcome for outcomes in by_writer for outcome in outcomes]
    acknowledged = [o.result for o in outcomes if o.result is not None and o.result.recorded]
    exhausted = [o for o in outcomes if o.refusal == "exhausted"]
    assert all(o.attempts == max_attempts for o in exhausted)
    assert all(1 <= r.attempts <= max_attempts for r in acknowledged)
    event(
        f"races lost: {'some' if exhausted or any(r.conflicts for r in acknowledged) else 'none'}"
    )
    event(f"commands given up: {'some' if exhausted else 'none'}")

    event_store = EventStore(objects, prefix=prefix)
    repository = Repository(event_store, Counter)
    stream = repository.stream(STREAM_ID)
    chunks = list(event_store.chunks(stream))  # raises CorruptChunk on a gap
    assert [chunk.version for chunk in chunks] == list(range(1, len(chunks) + 1))
    assert len(chunks) == len(acknowledged)

    stored_ids = collections.Counter(record.id for chunk in chunks for record in chunk.events)
    acknowledged_ids = collections.Counter(r.id for result in acknowledged for r in result.recorded)
    assert stored_ids == acknowledged_ids
    assert set(stored_ids.values()) <= {1}
    assert sum(stored_ids.values()) == sum(len(result.recorded) for result in acknowledged)

    # Each acknowledged append is the whole chunk of the version its result names.
    by_version = {chunk.version: chunk for chunk in chunks}
    for result in acknowledged:
        chunk = by_version[result.version]
        assert [record.id for record in chunk.events] == [r.id for r in result.recorded]
    stored_tags = {record.metadata["command"] for chunk in chunks for record in chunk.events}
    assert stored_tags == {o.tag for o in outcomes if o.result is not None and o.result.recorded}
    assert not stored_tags & {o.tag for o in outcomes if o.refusal is not None}

    # A writer's commands are stored in the order it sent them.
    for outcomes_of_writer in by_writer:
        versions = [o.result.version for o in outcomes_of_writer if o.result and o.result.recorded]
        assert versions == sorted(set(versions))

    loaded = repository.load(STREAM_ID)
    assert loaded == repository.replay(STREAM_ID)
    assert loaded.version == len(chunks)
    total = sum(counter_total(result.events) for result in acknowledged)
    assert loaded.state.total == total >= 0
    assert loaded.state.events == sum(stored_ids.values())


class TestConcurrentAppends:
    @settings(max_examples=25, deadline=None)
    @given(plans=writer_plans(), max_attempts=st.sampled_from([2, 50]))
    def test_in_memory(self, plans: list[list[CounterCommand]], max_attempts: int) -> None:
        """Racing writers on the in-memory store leave exactly the acknowledged appends."""
        check_concurrent_appends(InMemoryObjectStore(), "", plans, max_attempts)

    @settings(max_examples=8, deadline=None)
    @given(plans=writer_plans(), max_attempts=st.sampled_from([2, 50]))
    def test_moto(
        self, moto_store: S3ObjectStore, plans: list[list[CounterCommand]], max_attempts: int
    ) -> None:
        """Racing writers on moto over HTTP leave exactly the acknowledged appends."""
        check_concurrent_appends(moto_store, f"example-{next(_prefixes)}", plans, max_attempts)


def _model_total(commands: list[CounterCommand]) -> tuple[int, int]:
    """The total and the number of appends a single writer's commands make, worked out apart
    from the aggregate: an append per command that changes anything."""
    total = appends = 0
    for command in commands:
        if isinstance(command, Increment):
            changes = [command.amount] if command.amount else []
        elif isinstance(command, IncrementEach):
            changes = list(command.amounts)
        else:
            changes = [-command.amount] if command.amount <= total else []
        total += sum(changes)
        appends += bool(changes)
    return total, appends


def _write_history(store: ObjectStore, stream_id: str, commands: list[CounterCommand]) -> None:
    handler = CommandHandler(Repository(EventStore(store), Counter))
    for command in commands:
        with contextlib.suppress(CounterError):
            handler.handle(stream_id, command)


class TestSnapshots:
    @settings(max_examples=50, deadline=None)
    @given(stream_id=stream_ids(), commands=histories())
    def test_snapshot_equals_replay(self, stream_id: str, commands: list[CounterCommand]) -> None:
        """The state from the latest snapshot is the full replay and what the commands add up
        to, and costs one LIST and one GET."""
        store = InMemoryObjectStore()
        _write_history(store, stream_id, commands)
        repository = Repository(EventStore(store), Counter)
        before = store.requests
        loaded = repository.load(stream_id)
        assert store.requests - before == RequestCounts(list=1, get=int(loaded.version > 0))
        assert loaded == repository.replay(stream_id)
        assert (loaded.state.total, loaded.version) == _model_total(commands)

    @settings(max_examples=50, deadline=None)
    @given(stream_id=stream_ids(), commands=histories(min_size=1))
    def test_schema_bump_preserves_state(
        self, stream_id: str, commands: list[CounterCommand]
    ) -> None:
        """After a schema bump the re-snapshotted state is the state before it, and the next
        load reads it from one chunk."""
        store = InMemoryObjectStore()
        _write_history(store, stream_id, commands)
        before_bump = Repository(EventStore(store), Counter).load(stream_id)
        bumped = Repository(EventStore(store), CounterV2)
        assert bumped.load(stream_id) == before_bump
        sent = store.requests
        assert bumped.load(stream_id) == before_bump
        assert store.requests - sent == RequestCounts(list=1, get=int(before_bump.version > 0))
