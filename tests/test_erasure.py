"""Erasing personal data: the stream rewritten through a redacting merge, the originals erased."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import ClassVar

import attrs
import pytest

from s3es import (
    Aggregate,
    Backoff,
    CommandHandler,
    EventStore,
    InMemoryObjectStore,
    ObjectStoreError,
    Repository,
    RetryPolicy,
)
from s3es.ops import erase
from s3es.storage import ForwardingObjectStore, StoredObject

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
        catches up from the redacted stream, and stores its command once."""
        store = InMemoryObjectStore()
        repository = Repository(EventStore(store), Notebook)
        stale, other = CommandHandler(repository, FAST), CommandHandler(repository, FAST)
        stale.handle("n-1", Write("one"))
        other.handle("n-1", Write(f"two {PERSONAL}"))
        erase(repository, "n-1", redact)
        result = stale.handle("n-1", Write("three"))
        assert result.version == 3
        assert result.state == Notes(("one", "two [erased]", "three"))
        assert [r.event.text for r in repository.read("n-1")] == ["one", "two [erased]", "three"]

    def test_rerun_removes_data_a_cached_state_brought_back(self) -> None:
        """A writer that held the state from before the erasure stores its snapshot with the
        data again; running the erasure again removes it."""
        store = InMemoryObjectStore()
        repository = Repository(EventStore(store), Notebook)
        cached = CommandHandler(repository, FAST)
        cached.handle("n-1", Write(f"mail {PERSONAL}"))  # remembers a state with the secret
        erase(repository, "n-1", redact)
        # Its PUT at version 2 wins (nobody took it): the snapshot it stores is its own state.
        cached.handle("n-1", Write("later"))
        assert any(PERSONAL.encode() in body for body in _bodies(store))
        again = erase(repository, "n-1", redact)
        assert again.version == 2
        assert not any(PERSONAL.encode() in body for body in _bodies(store))
        assert repository.load("n-1").state == Notes(("mail [erased]", "later"))

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
        acknowledged note is read back once, and no stored object keeps the data."""
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
        erase(repository, "n-1", redact)  # what came after the first run's merge
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
