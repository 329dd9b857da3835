"""Idempotent commands: ``handle(..., command_id=...)`` stores a command once, however retried."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from s3es import (
    Backoff,
    CommandHandler,
    CommandResult,
    EventStore,
    InMemoryObjectStore,
    InvalidConfiguration,
    Repository,
    RetryPolicy,
    StreamName,
)
from s3es.errors import AppendOutcomeUnknown, ObjectStoreError, WrongExpectedVersion
from s3es.metering import RequestCounts
from s3es.ops import compact, erase
from s3es.storage import ForwardingObjectStore, ObjectStore, StoredObject
from tests.aggregates import (
    Counter,
    CounterState,
    CounterV2,
    Increment,
    IncrementEach,
    Incremented,
    InterceptingStore,
)

STREAM = StreamName("counter", "c-1")
POLICY = RetryPolicy(max_attempts=10, backoff=Backoff(initial=0.0001, maximum=0.001))
Result = CommandResult[CounterState, Any]


def _handler(
    store: ObjectStore, *, window: int = 1_000, aggregate: Any = Counter, **kwargs: Any
) -> CommandHandler[Any, Any, Any]:
    """A handler on ``store`` remembering ``window`` command ids; backoff pauses not slept."""
    repository = Repository(EventStore(store), aggregate, command_window=window)
    return CommandHandler(repository, POLICY, sleep=lambda _: None, **kwargs)


def _chunks(store: ObjectStore) -> list[str]:
    """The keys of STREAM's chunks."""
    return list(store.list_keys(EventStore(store).keys.stream_prefix(STREAM)))


def _same_answer(first: Result, again: Result) -> None:
    """``again`` is ``first`` read back: same version, events (ids and all) and state."""
    assert again.duplicate
    assert not first.duplicate
    assert (again.version, again.state) == (first.version, first.state)
    assert again.recorded == first.recorded


class LosingStore(ForwardingObjectStore):
    """Stores the next PUT, then loses its answer (raises); ``gets_fail`` GETs fail after it."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.lose_next = False
        self.gets_fail = 0

    def put_if_absent(self, key: str, body: bytes) -> str:
        """Put; if armed, store the object and raise as a reset connection would."""
        etag = self.inner.put_if_absent(key, body)
        if self.lose_next:
            self.lose_next = False
            raise ObjectStoreError("PUT", key, "connection reset by peer")
        return etag

    def get(self, key: str) -> StoredObject | None:
        """Get, or fail while ``gets_fail`` says so."""
        if self.gets_fail:
            self.gets_fail -= 1
            raise ObjectStoreError("GET", key, "read timed out")
        return self.inner.get(key)


class TestDuplicates:
    def test_same_id_twice_stores_once(self) -> None:
        """The second command with an id is the first's result, read back; one chunk stored."""
        store = InMemoryObjectStore()
        handler = _handler(store)
        first = handler.handle(STREAM.id, IncrementEach((2, 3)), command_id="k-1")
        again = handler.handle(STREAM.id, IncrementEach((2, 3)), command_id="k-1")
        _same_answer(first, again)
        assert (again.version, again.state) == (1, CounterState(5, 2))
        assert len(_chunks(store)) == 1

    def test_different_command_same_id_is_still_the_first(self) -> None:
        """A duplicate is known by its id alone: another command with it decides nothing."""
        store = InMemoryObjectStore()
        handler = _handler(store)
        first = handler.handle(STREAM.id, Increment(2), command_id="k-1")
        again = handler.handle(STREAM.id, Increment(7), command_id="k-1")
        _same_answer(first, again)
        assert len(_chunks(store)) == 1

    def test_ids_of_other_commands_between(self) -> None:
        """A retry after other commands is answered with its own version, state and events."""
        store = InMemoryObjectStore()
        handler = _handler(store)
        first = handler.handle(STREAM.id, Increment(2), command_id="k-1")
        handler.handle(STREAM.id, Increment(3), command_id="k-2")
        handler.handle(STREAM.id, Increment(4))
        again = handler.handle(STREAM.id, Increment(2), command_id="k-1")
        _same_answer(first, again)
        assert again.state == CounterState(2, 1)
        assert len(_chunks(store)) == 3

    def test_command_storing_nothing_records_no_id(self) -> None:
        """A command that stores no event records nothing: its retry is decided again."""
        store = InMemoryObjectStore()
        handler = _handler(store)
        assert not handler.handle(STREAM.id, Increment(0), command_id="k-1").duplicate
        result = handler.handle(STREAM.id, Increment(4), command_id="k-1")
        assert (result.duplicate, result.version) == (False, 1)

    def test_duplicate_regardless_of_expected_version(self) -> None:
        """A retry expecting the version its first try expected gets the first result."""
        store = InMemoryObjectStore()
        handler = _handler(store)
        first = handler.handle(STREAM.id, Increment(2), command_id="k-1", expected_version=0)
        again = handler.handle(STREAM.id, Increment(2), command_id="k-1", expected_version=0)
        _same_answer(first, again)
        other = _handler(store)
        with pytest.raises(WrongExpectedVersion):
            other.handle(STREAM.id, Increment(2), command_id="k-2", expected_version=0)

    @pytest.mark.parametrize(
        "command_id", ["", "x" * 201, 7, "a\ud800"], ids=["empty", "long", "int", "surrogate"]
    )
    def test_invalid_ids_refused_before_any_request(self, command_id: Any) -> None:
        """An id that is not a str of 1 to 200 characters of Unicode text is refused."""
        store = InterceptingStore(InMemoryObjectStore())
        with pytest.raises(InvalidConfiguration, match="command_id for stream counter/c-1"):
            _handler(store).handle(STREAM.id, Increment(1), command_id=command_id)
        assert store.calls == []


class TestRequests:
    def test_new_id_on_a_warm_stream_is_one_put(self) -> None:
        """Recording an id costs no request: a warm command with a new id is exactly one PUT."""
        handler = _handler(InMemoryObjectStore())
        handler.handle(STREAM.id, Increment(1), command_id="k-1")
        result = handler.handle(STREAM.id, Increment(1), command_id="k-2")
        assert result.requests == RequestCounts(put=1)

    def test_warm_duplicate_is_one_list_and_one_get(self) -> None:
        """A duplicate in the cached window: a LIST (is the cache current?) and a GET."""
        handler = _handler(InMemoryObjectStore())
        handler.handle(STREAM.id, Increment(1), command_id="k-1")
        handler.handle(STREAM.id, Increment(1), command_id="k-2")
        again = handler.handle(STREAM.id, Increment(1), command_id="k-1")
        assert again.duplicate
        assert again.requests == RequestCounts(list=1, get=1)

    def test_cold_duplicate_is_a_load_and_one_get(self) -> None:
        """Another process, its cache cold: a load (1 LIST + 1 GET) and the GET of the chunk."""
        store = InMemoryObjectStore()
        first = _handler(store).handle(STREAM.id, Increment(1), command_id="k-1")
        _handler(store).handle(STREAM.id, Increment(1), command_id="k-2")
        again = _handler(store).handle(STREAM.id, Increment(1), command_id="k-1")
        _same_answer(first, again)
        assert again.requests == RequestCounts(list=1, get=2)


class TestAcrossProcesses:
    def test_after_a_restart(self) -> None:
        """A handler made afresh (a restarted process) knows the id from the snapshot."""
        store = InMemoryObjectStore()
        first = _handler(store).handle(STREAM.id, Increment(2), command_id="k-1")
        again = _handler(store).handle(STREAM.id, Increment(2), command_id="k-1")
        _same_answer(first, again)
        assert len(_chunks(store)) == 1

    def test_stale_cache_loses_its_put_and_finds_the_id(self) -> None:
        """A handler whose cached window is behind decides, loses its PUT to the chunk holding
        the id, and answers from it: the conditional PUT, not the cache, keeps the id once."""
        store = InMemoryObjectStore()
        stale = _handler(store)
        stale.handle(STREAM.id, Increment(1))
        first = _handler(store).handle(STREAM.id, Increment(2), command_id="k-1")
        again = stale.handle(STREAM.id, Increment(2), command_id="k-1")
        _same_answer(first, again)
        assert again.attempts == 2
        assert len(_chunks(store)) == 2

    def test_stale_cache_with_one_attempt_is_still_answered(self) -> None:
        """Losing the PUT to one's own id is no exhausted retry, even with max_attempts=1."""
        store = InMemoryObjectStore()
        stale = _handler(store)
        stale.handle(STREAM.id, Increment(1))
        first = _handler(store).handle(STREAM.id, Increment(2), command_id="k-1")
        again = stale.handle(
            STREAM.id, Increment(2), command_id="k-1", retry=RetryPolicy(max_attempts=1)
        )
        _same_answer(first, again)

    def test_stale_cache_expecting_an_overtaken_version(self) -> None:
        """A stale retry expecting the version its first try saw: a duplicate, no mismatch."""
        store = InMemoryObjectStore()
        stale = _handler(store)
        stale.handle(STREAM.id, Increment(1))
        first = _handler(store).handle(
            STREAM.id, Increment(2), command_id="k-1", expected_version=1
        )
        again = stale.handle(STREAM.id, Increment(2), command_id="k-1", expected_version=1)
        _same_answer(first, again)

    def test_racing_threads_store_once(self) -> None:
        """Eight handlers (processes) sending the same id at once: one chunk, one answer."""
        store = InMemoryObjectStore()
        handlers = [_handler(store) for _ in range(8)]
        for handler in handlers:
            handler.handle(STREAM.id, Increment(0))  # warm: each decides on version 0
        start = threading.Barrier(len(handlers))

        def send(handler: CommandHandler[Any, Any, Any]) -> Result:
            start.wait()
            return handler.handle(STREAM.id, Increment(3), command_id="k-1")

        with ThreadPoolExecutor(len(handlers)) as pool:
            results = list(pool.map(send, handlers))
        assert len(_chunks(store)) == 1
        stored = [result for result in results if not result.duplicate]
        assert len(stored) == 1
        for result in results:
            assert (result.version, result.recorded) == (1, stored[0].recorded)


class TestLostAnswers:
    def test_retry_after_an_unknown_outcome(self) -> None:
        """The PUT landed, its answer and the read-back were lost (AppendOutcomeUnknown): the
        retry, on the same handler, finds the id and stores nothing."""
        inner = InMemoryObjectStore()
        store = LosingStore(inner)
        handler = _handler(store)
        handler.handle(STREAM.id, Increment(1))
        store.lose_next, store.gets_fail = True, 1
        with pytest.raises(AppendOutcomeUnknown):
            handler.handle(STREAM.id, Increment(2), command_id="k-1")
        again = handler.handle(STREAM.id, Increment(2), command_id="k-1")
        assert again.duplicate
        assert (again.version, again.state) == (2, CounterState(3, 2))
        assert [recorded.event for recorded in again.recorded] == [Incremented(2)]
        assert len(_chunks(store)) == 2

    def test_retry_after_a_recovered_answer(self) -> None:
        """The handler recovered a lost answer, but its caller never got it: the retry is a
        duplicate of the recovered result."""
        store = LosingStore(InMemoryObjectStore())
        handler = _handler(store)
        store.lose_next = True
        first = handler.handle(STREAM.id, Increment(2), command_id="k-1")
        assert first.recovered
        again = _handler(store).handle(STREAM.id, Increment(2), command_id="k-1")
        _same_answer(first, again)


class TestWindow:
    def test_oldest_id_is_forgotten(self) -> None:
        """With a window of 3, the 4th newer id evicts the oldest: it is stored again (the
        documented limit); the ids still in the window are duplicates."""
        store = InMemoryObjectStore()
        handler = _handler(store, window=3)
        for index in range(4):
            handler.handle(STREAM.id, Increment(1), command_id=f"k-{index}")
        latest = EventStore(store).latest(STREAM)
        assert latest is not None
        assert latest.snapshot is not None
        assert dict(latest.snapshot.commands) == {"k-1": 2, "k-2": 3, "k-3": 4}
        assert _handler(store, window=3).handle(STREAM.id, Increment(1), command_id="k-1").duplicate
        stored_again = _handler(store, window=3).handle(STREAM.id, Increment(1), command_id="k-0")
        assert (stored_again.duplicate, stored_again.version) == (False, 5)

    def test_window_of_zero_remembers_nothing(self) -> None:
        """``command_window=0``: no id is kept, every command is stored."""
        store = InMemoryObjectStore()
        handler = _handler(store, window=0)
        handler.handle(STREAM.id, Increment(1), command_id="k-1")
        assert not handler.handle(STREAM.id, Increment(1), command_id="k-1").duplicate
        latest = EventStore(store).latest(STREAM)
        assert latest is not None
        assert latest.snapshot is not None
        assert latest.snapshot.commands == {}

    def test_negative_window_refused(self) -> None:
        """A window below 0 is a configuration error."""
        with pytest.raises(InvalidConfiguration, match="command_window"):
            Repository(EventStore(InMemoryObjectStore()), Counter, command_window=-1)

    def test_window_survives_a_snapshot_schema_change(self) -> None:
        """The window is the snapshot's envelope, not its state: a new SNAPSHOT_SCHEMA replays
        the state, keeps the window (the chunks name their ids) and re-snapshots it."""
        store = InMemoryObjectStore()
        first = _handler(store).handle(STREAM.id, Increment(2), command_id="k-1")
        _handler(store).handle(STREAM.id, Increment(3), command_id="k-2")
        upgraded = _handler(store, aggregate=CounterV2)
        again = upgraded.handle(STREAM.id, Increment(2), command_id="k-1")
        assert again.duplicate
        assert (again.version, again.state) == (first.version, first.state)
        latest = EventStore(store).latest(STREAM)
        assert latest is not None
        assert latest.snapshot is not None
        assert (latest.number, dict(latest.snapshot.commands)) == (1, {"k-1": 1, "k-2": 2})

    def test_window_survives_compaction_and_erasure(self) -> None:
        """Maintenance writes snapshots too: a compaction's merged chunk and an erasure's
        merge and fence keep the window, so a retry after either is still a duplicate, never
        stored twice."""
        store = InMemoryObjectStore()
        first = _handler(store).handle(STREAM.id, Increment(2), command_id="k-1")
        _handler(store).handle(STREAM.id, Increment(3), command_id="k-2")
        repository = Repository(EventStore(store), Counter)
        assert compact(repository, STREAM.id).key is not None
        after_compaction = _handler(store).handle(STREAM.id, Increment(2), command_id="k-1")
        assert after_compaction.duplicate
        assert (after_compaction.version, after_compaction.state) == (first.version, first.state)
        assert erase(repository, STREAM.id, lambda event: event).key is not None
        after_erasure = _handler(store).handle(STREAM.id, Increment(3), command_id="k-2")
        assert after_erasure.duplicate
        assert after_erasure.version == 2
        assert repository.load(STREAM.id).commands == {"k-1": 1, "k-2": 2}

    def test_deleted_stream_duplicate_raises(self) -> None:
        """A cached id of a stream deleted since is no answer: the refresh finds the deletion."""
        from s3es.errors import StreamDeleted  # noqa: PLC0415
        from s3es.ops import delete  # noqa: PLC0415

        store = InMemoryObjectStore()
        handler = _handler(store)
        handler.handle(STREAM.id, Increment(2), command_id="k-1")
        delete(Repository(EventStore(store), Counter), STREAM.id)
        with pytest.raises(StreamDeleted):
            handler.handle(STREAM.id, Increment(2), command_id="k-1")


class TestGroupCommit:
    def test_same_id_twice_in_one_group(self) -> None:
        """Two commands with one id queued behind a PUT ride one group: the second is a
        duplicate of the first, sharing its result; the chunk stores the id once."""
        inner = InMemoryObjectStore()
        handler_box: list[CommandHandler[Any, Any, Any]] = []
        queued = threading.Event()

        def hold_first_put(key: str) -> None:
            if queued.is_set():
                return
            handler = handler_box[0]
            while len(handler._lanes._lanes.get(STREAM.id, ())) < 2:
                threading.Event().wait(0.001)
            queued.set()

        store = InterceptingStore(inner, before_put=hold_first_put)
        handler = _handler(store, group_commit=True)
        handler_box.append(handler)
        leader_started = threading.Event()

        def lead() -> Result:
            leader_started.set()
            return handler.handle(STREAM.id, Increment(1), command_id="lead")

        def follow() -> Result:
            leader_started.wait()
            while STREAM.id not in handler._lanes._lanes:
                threading.Event().wait(0.001)
            return handler.handle(STREAM.id, Increment(5), command_id="k-1")

        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(lead), pool.submit(follow), pool.submit(follow)]
            results = [future.result() for future in futures]
        lead_result, *same = results
        assert lead_result.version == 1
        assert sorted(result.duplicate for result in same) == [False, True]
        assert same[0].recorded == same[1].recorded
        assert same[0].version == same[1].version == 2
        assert same[0].requests.put + same[1].requests.put <= 1
        latest = EventStore(inner).latest(STREAM)
        assert latest is not None
        assert dict(latest.commands) == {"k-1": (0, 1)}
        assert latest.snapshot is not None
        assert dict(latest.snapshot.commands) == {"lead": 1, "k-1": 2}
        assert handler.handle(STREAM.id, Increment(5), command_id="k-1").duplicate
