"""Erasing personal data: the stream rewritten through a redacting merge, the originals erased."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import ClassVar

import attrs
import pytest

from s3es import (
    Aggregate,
    Backoff,
    CommandHandler,
    CommandResult,
    EventStore,
    InMemoryObjectStore,
    Loaded,
    ObjectStoreError,
    Repository,
    RetryPolicy,
)
from s3es._domain.repository import fold, initial_of
from s3es.ops import Erasure, compact, erase, repair, verify_stream
from s3es.storage import ForwardingObjectStore, ObjectStore, StoredObject

PERSONAL = "alice@example.com"
FAST = RetryPolicy(max_attempts=50, backoff=Backoff(initial=0.0001, maximum=0.001))


@attrs.frozen
class Write:
    text: str


@attrs.frozen
class Noted:
    text: str


@attrs.frozen
class Notes:
    texts: tuple[str, ...] = ()


class Notebook(Aggregate[Notes, Write, Noted]):
    STREAM_TYPE = "notebook"
    EVENT_TYPES: ClassVar = {"Noted": Noted}

    def initial_state(self) -> Notes:
        return Notes()

    def evolve(self, state: Notes, event: Noted) -> Notes:
        return Notes((*state.texts, event.text))

    def decide(self, command: Write, state: Notes) -> Sequence[Noted]:
        return [Noted(command.text)]


def redact(event: Noted) -> Noted:
    return Noted(event.text.replace(PERSONAL, "[erased]"))


def _bodies(store: InMemoryObjectStore) -> list[bytes]:
    bodies = []
    for key in store.list_keys("notebook/n-1/"):
        stored = store.get(key)
        assert stored is not None
        bodies.append(stored.body)
    return bodies


def written_loaded(result: CommandResult[Notes, Noted]) -> Loaded[Notes]:
    """What a load of the stream should give after ``result``."""
    return Loaded(result.stream, result.version, result.state)


def _notebook(*texts: str) -> tuple[InMemoryObjectStore, Repository[Notes, Write, Noted]]:
    store = InMemoryObjectStore()
    repository = Repository(EventStore(store), Notebook)
    handler = CommandHandler(repository)
    for text in texts:
        handler.handle("n-1", Write(text))
    return store, repository


class TestErase:
    def test_no_stored_object_keeps_the_data(self) -> None:
        """After erasure no object of the stream holds the data: not the events, not any
        snapshot, not the re-written chunks; every key is still there."""
        store, repository = _notebook("hello", f"mail {PERSONAL}", "bye")
        keys_before = list(store.list_keys("notebook/n-1/"))
        assert any(PERSONAL.encode() in body for body in _bodies(store))
        result = erase(repository, "n-1", redact)
        assert (result.version, result.erased) == (3, 3)
        assert not any(PERSONAL.encode() in body for body in _bodies(store))
        assert set(keys_before) <= set(store.list_keys("notebook/n-1/"))

    def test_reads_give_the_redacted_events_with_their_ids(self) -> None:
        """Reads and loads after erasure give the redacted events, with the same ids and
        versions as before, and the state folded from them."""
        _, repository = _notebook("hello", f"mail {PERSONAL}")
        before = list(repository.read("n-1"))
        erase(repository, "n-1", redact)
        after = list(repository.read("n-1"))
        assert [(r.id, r.version) for r in after] == [(r.id, r.version) for r in before]
        assert [r.event.text for r in after] == ["hello", "mail [erased]"]
        expected = Notes(("hello", "mail [erased]"))
        assert repository.load("n-1").state == repository.replay("n-1").state == expected

    def test_writers_go_on_after_erasure(self) -> None:
        """A writer whose version predates the erasure loses its PUT to an erased chunk,
        catches up from the redacted stream (through the fence at version 3), and stores its
        command once."""
        store = InMemoryObjectStore()
        repository = Repository(EventStore(store), Notebook)
        stale, other = CommandHandler(repository, FAST), CommandHandler(repository, FAST)
        stale.handle("n-1", Write("one"))
        other.handle("n-1", Write(f"two {PERSONAL}"))
        erase(repository, "n-1", redact)
        result = stale.handle("n-1", Write("three"))
        assert result.version == 4
        assert result.state == Notes(("one", "two [erased]", "three"))
        assert [r.event.text for r in repository.read("n-1")] == ["one", "two [erased]", "three"]

    def test_stale_writer_stores_no_erased_data(self) -> None:
        """A writer that holds the state from before the erasure loses its PUT to the fence,
        takes the fence's redacted state instead of folding onto its own, decides again, and
        its chunk's snapshot, like every object of the stream, holds no erased value."""
        store = InMemoryObjectStore()
        repository = Repository(EventStore(store), Notebook)
        cached = CommandHandler(repository, FAST)
        cached.handle("n-1", Write(f"mail {PERSONAL}"))  # remembers a state with the secret
        result = erase(repository, "n-1", redact)
        assert (result.version, result.fence) == (1, 2)
        written = cached.handle("n-1", Write("later"))
        assert (written.version, written.attempts) == (3, 2)
        assert written.state == Notes(("mail [erased]", "later"))
        stored = store.get(repository.event_store.keys.chunk_key(repository.stream("n-1"), 3))
        assert stored is not None
        assert b"later" in stored.body
        assert not any(PERSONAL.encode() in body for body in _bodies(store))
        assert repository.load("n-1") == repository.replay("n-1") == written_loaded(written)

    def test_fence_is_a_version_without_events(self) -> None:
        """The fence is the stream's next version: no event, its snapshot the redacted state.
        Reads and replays pass through it, and the redacted merged chunk below folds to the
        same state as its snapshot holds."""
        _, repository = _notebook("hello", f"mail {PERSONAL}")
        result = erase(repository, "n-1", redact)
        assert (result.version, result.fence) == (2, 3)
        chunks = list(repository.event_store.chunks(repository.stream("n-1")))
        fence = chunks[-1]
        assert (fence.version, fence.rebased, fence.events) == (3, True, ())
        assert fence.snapshot is not None
        below = fold(repository, initial_of(repository, fence.stream), chunks[:-1])
        assert repository.codec.state_from(fence.snapshot)[0] == below.state
        assert repository.replay("n-1").state == below.state == repository.load("n-1").state
        assert repository.load("n-1").version == 3
        assert [r.version for r in repository.read("n-1")] == [1, 2]
        assert list(repository.read("n-1", after_version=2)) == []

    def test_erasing_twice(self) -> None:
        """A second erasure merges over the first one's fence (a version with no event) and
        fences again: the stream reads the same, with both redactions applied."""
        _, repository = _notebook(f"a {PERSONAL}", "b bob@example.com")
        erase(repository, "n-1", redact)
        again = erase(repository, "n-1", lambda e: Noted(e.text.replace("bob@example.com", "-")))
        assert (again.version, again.fence) == (3, 4)
        expected = Notes(("a [erased]", "b -"))
        assert repository.load("n-1").state == repository.replay("n-1").state == expected

    def test_empty_stream(self) -> None:
        """Erasing a stream with no chunk writes nothing."""
        store, repository = _notebook()
        result = erase(repository, "n-1", redact)
        assert (result.version, result.key, result.erased) == (0, None, 0)
        assert store.requests.put == 0


class _FailingReplace(ForwardingObjectStore):
    """Fails every replace after the first ``allowed``, as a crash in the middle would."""

    def __init__(self, inner: InMemoryObjectStore, allowed: int) -> None:
        super().__init__(inner)
        self.allowed = allowed

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        if self.allowed == 0:
            raise ObjectStoreError("PUT", key, "connection reset")
        self.allowed -= 1
        return super().replace(key, body, etag=etag)


class TestInterrupted:
    def test_crash_between_merge_and_erasing(self) -> None:
        """An erasure that stopped after its merged chunk and one erased chunk leaves a stream
        that reads redacted; running it again erases what is left."""
        store, _ = _notebook(f"a {PERSONAL}", f"b {PERSONAL}", f"c {PERSONAL}")
        failing = Repository(EventStore(_FailingReplace(store, allowed=1)), Notebook)
        with pytest.raises(ObjectStoreError, match="connection reset"):
            erase(failing, "n-1", redact)
        repository = Repository(EventStore(store), Notebook)
        assert repository.load("n-1").state == Notes(("a [erased]", "b [erased]", "c [erased]"))
        assert any(PERSONAL.encode() in body for body in _bodies(store))
        erase(repository, "n-1", redact)
        assert not any(PERSONAL.encode() in body for body in _bodies(store))

    def test_appends_racing_the_erasure(self) -> None:
        """Writers appending (data-free notes) while the stream is erased lose nothing: every
        acknowledged note is read back once, and once the one erasure returned and the writers
        stopped, no stored object keeps the data (each writer's state was read before the
        merge, after it, or through the fence)."""
        store, repository = _notebook(f"first {PERSONAL}")
        start = threading.Barrier(3)
        acknowledged: list[str] = []
        lock = threading.Lock()

        def write(writer: int) -> None:
            handler = CommandHandler(Repository(EventStore(store), Notebook), FAST, cache_size=0)
            start.wait()
            for n in range(5):
                result = handler.handle("n-1", Write(f"{writer}-{n}"))
                with lock:
                    acknowledged.extend(r.id for r in result.recorded)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(2)]
        for thread in threads:
            thread.start()
        start.wait()
        erase(repository, "n-1", redact)
        for thread in threads:
            thread.join()
        recorded = list(repository.read("n-1"))
        assert sorted(r.id for r in recorded[1:]) == sorted(acknowledged)
        assert recorded[0].event == Noted("first [erased]")
        assert not any(PERSONAL.encode() in body for body in _bodies(store))


def test_read_racing_an_erasure_lists_again() -> None:
    """A read that listed the stream just before an erasure, and meets an erased chunk where it
    expected the original, lists again and reads the merged chunk: no CorruptChunk."""
    store, repository = _notebook("hello", f"mail {PERSONAL}", "bye")

    class EraseBeforeFirstGet(ForwardingObjectStore):
        erased = False

        def get(self, key: str) -> StoredObject | None:
            if not self.erased:
                self.erased = True
                erase(repository, "n-1", redact)  # after the reader's LIST, before its GET
            return super().get(key)

    reader = Repository(EventStore(EraseBeforeFirstGet(store)), Notebook)
    assert [event.event.text for event in reader.read("n-1")] == [
        "hello",
        "mail [erased]",
        "bye",
    ]


class _WriterFirst(ForwardingObjectStore):
    """Lets ``write`` append first when the erasure's first fence is sent: a writer wins."""

    def __init__(
        self, inner: InMemoryObjectStore, fence_key: str, write: Callable[[], object]
    ) -> None:
        super().__init__(inner)
        self.fence_key = fence_key
        self.write: Callable[[], object] | None = write

    def put_if_absent(self, key: str, body: bytes) -> str:
        if key == self.fence_key and self.write is not None:
            write, self.write = self.write, None
            write()
        return super().put_if_absent(key, body)


class TestFenceRounds:
    def test_writer_takes_the_first_fence_version(self) -> None:
        """A stale writer that stores the version the fence aimed at hands its chunk back:
        the erasure redacts it, sends fences at the next two versions at once (the lower
        with the state, the higher without, then re-snapshotted), merges the writer's chunk
        in and erases it. Nothing keeps the data, the writer's command is kept, a load takes
        the re-snapshot (1 LIST + 1 GET) and verification finds nothing wrong."""
        store, _ = _notebook(f"mail {PERSONAL}")
        stale = CommandHandler(Repository(EventStore(store), Notebook), FAST)
        stale.handle("n-1", Write("warm"))  # version 2: it holds a state with the secret
        repository = Repository(EventStore(store), Notebook)
        stream = repository.stream("n-1")
        keys = repository.event_store.keys
        racing = _WriterFirst(
            store, keys.chunk_key(stream, 3), lambda: stale.handle("n-1", Write("racer"))
        )
        result = erase(Repository(EventStore(racing), Notebook), "n-1", redact)
        assert (result.version, result.fence) == (3, 4)
        fence = repository.event_store.read(keys.parse(stream, keys.chunk_key(stream, 5, 1)))
        assert fence is not None
        assert (fence[0].rebased, fence[0].snapshot is not None) == (True, True)
        assert not any(PERSONAL.encode() in body for body in _bodies(store))
        expected = Notes(("mail [erased]", "warm", "racer"))
        before = store.requests
        loaded = repository.load("n-1")
        assert (store.requests - before).total == 2
        assert (loaded.version, loaded.state) == (5, expected)
        assert repository.replay("n-1").state == expected
        assert verify_stream(repository.event_store, stream, aggregate=Notebook).ok
        after = stale.handle("n-1", Write("next"))
        assert (after.version, after.state.texts[-1]) == (6, "next")
        assert not any(PERSONAL.encode() in body for body in _bodies(store))


class _FailingPut(ForwardingObjectStore):
    """Fails the PUT of one key, as a store that answers 409 past every retry would."""

    def __init__(self, inner: ObjectStore, key: str) -> None:
        super().__init__(inner)
        self.key = key

    def put_if_absent(self, key: str, body: bytes) -> str:
        if key == self.key:
            raise ObjectStoreError("PUT", key, "ConditionalRequestConflict, 5 times")
        return super().put_if_absent(key, body)


def test_fence_resnapshot_failing_still_erases() -> None:
    """The top fence's re-snapshot (chunk 1, a load's shortcut) fails to store: the erasure
    still erases every chunk the merged chunk stands for, since the re-snapshot is only a
    shortcut; a load replays through the fence then, and stores the re-snapshot itself."""
    store, _ = _notebook(f"mail {PERSONAL}")
    stale = CommandHandler(Repository(EventStore(store), Notebook), FAST)
    stale.handle("n-1", Write("warm"))
    repository = Repository(EventStore(store), Notebook)
    stream = repository.stream("n-1")
    keys = repository.event_store.keys
    racing = _WriterFirst(
        store, keys.chunk_key(stream, 3), lambda: stale.handle("n-1", Write("racer"))
    )
    failing = _FailingPut(racing, keys.chunk_key(stream, 5, 1))
    result = erase(Repository(EventStore(failing), Notebook), "n-1", redact)
    assert (result.version, result.fence, result.erased) == (3, 4, 4)
    assert not any(PERSONAL.encode() in body for body in _bodies(store))
    expected = Notes(("mail [erased]", "warm", "racer"))
    loaded = repository.load("n-1")
    assert (loaded.version, loaded.state) == (5, expected)
    assert loaded == repository.replay("n-1")
    assert repository.event_store.read(keys.parse(stream, keys.chunk_key(stream, 5, 1)))
    assert verify_stream(repository.event_store, stream, aggregate=Notebook).ok


class Killed(BaseException):
    """The erasure's process dying where a store wrapper raises it: nothing after it runs."""


class _SecondRound(ForwardingObjectStore):
    """The erasure's store: a writer takes the first fence's version (3), so the second round
    sends fences at 4 (with the state) and 5 at once; 5 is stored first, then ``at_lower``
    runs before the PUT of 4 is passed on (it may raise: the PUT fails, or the process dies)."""

    def __init__(
        self,
        inner: InMemoryObjectStore,
        key: Callable[[int], str],
        racer: Callable[[], object],
        at_lower: Callable[[str], None],
    ) -> None:
        super().__init__(inner)
        self.first, self.lower, self.higher = key(3), key(4), key(5)
        self.racer: Callable[[], object] | None = racer
        self.at_lower = at_lower
        self.higher_stored = threading.Event()

    def put_if_absent(self, key: str, body: bytes) -> str:
        if key == self.first and self.racer is not None:
            racer, self.racer = self.racer, None
            racer()
        if key == self.higher:
            try:
                return super().put_if_absent(key, body)
            finally:
                self.higher_stored.set()
        if key == self.lower:
            assert self.higher_stored.wait(timeout=30), "the higher fence was never sent"
            self.at_lower(key)
        return super().put_if_absent(key, body)


@attrs.frozen
class _TwoRounds:
    """``mail PERSONAL`` and ``warm`` (by ``stale``, a writer whose state holds the secret)."""

    store: InMemoryObjectStore
    repository: Repository[Notes, Write, Noted]
    stale: CommandHandler[Notes, Write, Noted]

    @classmethod
    def make(cls) -> _TwoRounds:
        store, _ = _notebook(f"mail {PERSONAL}")
        stale = CommandHandler(Repository(EventStore(store), Notebook), FAST)
        stale.handle("n-1", Write("warm"))
        return cls(store, Repository(EventStore(store), Notebook), stale)

    def erase(self, at_lower: Callable[[str], None]) -> Erasure:
        """An erasure whose first fence (3) the stale writer takes; its second round runs
        ``at_lower`` once fence 5 is stored, before the PUT of fence 4."""
        stream = self.repository.stream("n-1")
        keys = self.repository.event_store.keys
        rounds = _SecondRound(
            self.store,
            lambda version: keys.chunk_key(stream, version),
            lambda: self.stale.handle("n-1", Write("racer")),
            at_lower,
        )
        return erase(Repository(EventStore(rounds), Notebook), "n-1", redact)


UP_TO_RACER = ["mail [erased]", "warm", "racer"]


def _texts(repository: Repository[Notes, Write, Noted]) -> list[str]:
    return [recorded.event.text for recorded in repository.read("n-1")]


class TestFenceGaps:
    """A fence round's higher fence stored before (or without) its lower one: a fence gap."""

    def test_readers_during_the_round(self) -> None:
        """While fence 5 is stored and 4 is not, reads, loads, replays and a command work: the
        stream ends at 3 (fence 5 holds no event). The command takes version 4, the erasure's
        fence there loses to it, 5 is the fence, and the writer's chunk is redacted too."""
        during: dict[str, object] = {}
        rounds = _TwoRounds.make()
        store, repository = rounds.store, rounds.repository
        reader = Repository(EventStore(store), Notebook)

        def readers(_: str) -> None:
            during["read"] = _texts(reader)
            during["load"] = reader.load("n-1")
            during["replay"] = reader.replay("n-1")
            during["after 2"] = [r.version for r in reader.read("n-1", after_version=2)]
            during["command"] = CommandHandler(reader, FAST).handle("n-1", Write("during"))

        assert rounds.erase(readers).fence == 5
        assert during["read"] == UP_TO_RACER
        assert (
            during["load"]
            == during["replay"]
            == Loaded(repository.stream("n-1"), 3, Notes(tuple(UP_TO_RACER)))
        )
        assert during["after 2"] == [3]
        command = during["command"]
        assert isinstance(command, CommandResult)
        assert command.version == 4
        assert _texts(repository) == [*UP_TO_RACER, "during"]
        loaded = repository.load("n-1")
        assert (loaded.version, loaded.state.texts) == (5, (*UP_TO_RACER, "during"))
        assert loaded == repository.replay("n-1")
        assert verify_stream(
            repository.event_store, repository.stream("n-1"), aggregate=Notebook
        ).ok
        assert not any(PERSONAL.encode() in body for body in _bodies(store))
        assert rounds.stale.handle("n-1", Write("next")).version == 6

    def test_lower_fence_put_fails(self) -> None:
        """The PUT of fence 4 fails after fence 5 is stored: the erasure raises, and the stream
        still reads, loads and replays (to version 3); verify names the gap and says how to mend
        it; repair stores the missing fence; the erasure run again finishes its work."""

        def fail(key: str) -> None:
            raise ObjectStoreError("PUT", key, "connection reset")

        rounds = _TwoRounds.make()
        store, repository = rounds.store, rounds.repository
        with pytest.raises(ObjectStoreError, match="connection reset"):
            rounds.erase(fail)
        stream = repository.stream("n-1")
        assert _texts(repository) == UP_TO_RACER
        assert repository.load("n-1") == repository.replay("n-1")
        assert repository.load("n-1").version == 3
        report = verify_stream(repository.event_store, stream, aggregate=Notebook)
        assert [problem.key for problem in report.problems] == [
            repository.event_store.keys.chunk_key(stream, 5)
        ]
        (problem,) = report.problems
        assert "version 4 is missing" in problem.reason
        assert "s3es repair" in problem.reason
        repaired = repair(repository, "n-1")
        assert (repaired.missing, repaired.plugged) == ((4,), (4,))
        assert verify_stream(repository.event_store, stream, aggregate=Notebook).ok
        assert repository.load("n-1") == repository.replay("n-1")
        assert repository.load("n-1").version == 5
        assert repair(repository, "n-1").missing == ()
        erase(repository, "n-1", redact)
        assert not any(PERSONAL.encode() in body for body in _bodies(store))
        assert verify_stream(repository.event_store, stream, aggregate=Notebook).ok
        written = CommandHandler(repository, FAST).handle("n-1", Write("after"))
        assert _texts(repository) == [*UP_TO_RACER, "after"]
        assert repository.load("n-1") == repository.replay("n-1") == written_loaded(written)

    def test_a_writer_fills_the_gap(self) -> None:
        """After the failed PUT of fence 4, a writer's command takes version 4: the stream reads
        through fence 5 again, and the erasure run again finishes."""

        def fail(key: str) -> None:
            raise ObjectStoreError("PUT", key, "connection reset")

        rounds = _TwoRounds.make()
        store, repository = rounds.store, rounds.repository
        with pytest.raises(ObjectStoreError):
            rounds.erase(fail)
        written = CommandHandler(repository, FAST).handle("n-1", Write("after"))
        assert written.version == 4
        assert _texts(repository) == [*UP_TO_RACER, "after"]
        assert repository.load("n-1").version == 5
        assert verify_stream(repository.event_store, repository.stream("n-1")).ok
        erase(repository, "n-1", redact)
        assert not any(PERSONAL.encode() in body for body in _bodies(store))
        assert repository.load("n-1") == repository.replay("n-1")

    def test_killed_between_two_fences(self) -> None:
        """The process dies after fence 5 is stored, before the PUT of fence 4: the stream
        reads, a compaction works, and the erasure run again stores fence 4 itself and
        finishes; nothing keeps the data and verify finds nothing wrong."""

        def die(_: str) -> None:
            raise Killed

        rounds = _TwoRounds.make()
        store, repository = rounds.store, rounds.repository
        with pytest.raises(Killed):
            rounds.erase(die)
        stream = repository.stream("n-1")
        assert _texts(repository) == UP_TO_RACER
        assert repository.load("n-1") == repository.replay("n-1")
        assert compact(repository, "n-1").version == 3
        assert _texts(repository) == UP_TO_RACER
        erased = erase(repository, "n-1", redact)
        assert erased.fence == 4
        assert not any(PERSONAL.encode() in body for body in _bodies(store))
        assert verify_stream(repository.event_store, stream, aggregate=Notebook).ok
        loaded = repository.load("n-1")
        assert (loaded.version, loaded.state.texts) == (5, tuple(UP_TO_RACER))
        assert loaded == repository.replay("n-1")
