"""Defects a black-box audit found (issue 10, item 9), each pinned by a test that failed before.

A snapshot whose ``state`` is a JSON array or string read as a default state; a chunk holding a
lone surrogate escape was accepted on read and broke the next write (and ``s3es compact`` ended
in a traceback); every folder nested in a stream's folder before its chunk keys cost one more
LIST on S3 at every load.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import attrs
import pytest

from s3es import (
    Aggregate,
    CommandHandler,
    CorruptChunk,
    EventStore,
    InMemoryObjectStore,
    Repository,
    StreamName,
)
from s3es._cli.main import main
from s3es.eventstore import StreamKeys
from s3es.storage import ObjectStore
from s3es.testing.embedded_s3 import EmbeddedS3
from tests.aggregates import Counter, CounterState, Increment


@attrs.frozen
class Tally:
    """A state every field of which has a default: ``{}`` reads as a state."""

    total: int = 0
    events: int = 0


@attrs.frozen
class Added:
    """The tally went up by ``amount``."""

    amount: int


class Tallies(Aggregate[Tally, int, Added]):
    """Adds the commanded amount; a state whose fields all have defaults."""

    STREAM_TYPE = "tally"
    EVENT_TYPES = {"Added": Added}  # noqa: RUF012 - the registry is read, never changed

    def initial_state(self) -> Tally:
        """Nothing added yet."""
        return Tally()

    def evolve(self, state: Tally, event: Added) -> Tally:
        """One more amount added."""
        return Tally(state.total + event.amount, state.events + 1)

    def decide(self, command: int, state: Tally) -> Sequence[Added]:
        """Add ``command``."""
        return [Added(command)]


def _rewrite(store: ObjectStore, key: str, change: Any) -> None:
    """Replace the chunk at ``key`` by ``change(document)``, as a damaged or foreign writer."""
    stored = store.get(key)
    assert stored is not None
    document = json.loads(stored.body)
    body = json.dumps(change(document)).encode()  # ensure_ascii: a lone surrogate as \ud800
    store.replace(key, body, etag=stored.etag)


class TestSnapshotOfAnotherShape:
    @pytest.mark.parametrize("state", [[], ["total", 7], "total", ""])
    def test_array_or_string_state_is_replayed(self, state: Any) -> None:
        """A snapshot whose state is a JSON array or string does not fit a state that is a
        JSON object: the load replays the true state (and re-snapshots), never the default."""
        store = InMemoryObjectStore()
        repository = Repository(EventStore(store), Tallies)
        handler = CommandHandler(repository)
        handler.handle("t", 3)
        handler.handle("t", 4)
        key = StreamKeys().chunk_key(StreamName("tally", "t"), 2)

        def damage(document: dict[str, Any]) -> dict[str, Any]:
            document["snapshot"]["state"] = state
            return document

        _rewrite(store, key, damage)
        assert repository.replay("t").state == Tally(7, 2)
        loaded = repository.load("t")
        assert (loaded.version, loaded.state) == (2, Tally(7, 2))
        # The load wrote a fitting snapshot beside the damaged one: the next load is cheap.
        before = store.requests
        assert repository.load("t").state == Tally(7, 2)
        assert str(store.requests - before) == "1 LIST + 1 GET"


def _surrogate_stream(store: ObjectStore) -> str:
    """A counter stream "s" of prefix "p" whose second chunk's metadata holds "\\ud800"."""
    handler = CommandHandler(Repository(EventStore(store, prefix="p"), Counter))
    handler.handle("s", Increment(1))
    handler.handle("s", Increment(2))
    key = StreamKeys("p").chunk_key(StreamName("counter", "s"), 2)

    def damage(document: dict[str, Any]) -> dict[str, Any]:
        document["events"][0]["metadata"] = {"note": "\ud800"}
        return document

    _rewrite(store, key, damage)
    stored = store.get(key)
    assert stored is not None
    assert b"\\ud800" in stored.body
    stored.body.decode("utf-8")  # valid UTF-8 bytes: only the JSON escape is wrong
    return key


class TestLoneSurrogate:
    def test_refused_on_read_naming_the_key(self) -> None:
        """A stored chunk holding a lone surrogate escape is a CorruptChunk naming its key, as
        the writer refuses it, not a chunk the next append fails to write."""
        store = InMemoryObjectStore()
        key = _surrogate_stream(store)
        repository = Repository(EventStore(store, prefix="p"), Counter)
        with pytest.raises(CorruptChunk) as raised:
            repository.load("s")
        assert raised.value.key == key
        assert "surrogate" in raised.value.reason
        with pytest.raises(CorruptChunk, match="surrogate"):
            list(repository.read("s"))

    def test_compact_reports_one_line(self) -> None:
        """``s3es compact`` on such a stream exits 1 with one line naming the key, no
        traceback."""
        store = InMemoryObjectStore()
        key = _surrogate_stream(store)
        out, err = io.StringIO(), io.StringIO()
        argv = ["compact", "--aggregate", "tests.aggregates:Counter", "--bucket", "x"]
        status = main([*argv, "--prefix", "p", "--yes", "s"], store=store, out=out, err=err)
        assert status == 1
        lines = [line for line in (out.getvalue() + err.getvalue()).splitlines() if key in line]
        assert len(lines) == 1
        assert "corrupt chunk" in lines[0]
        assert "surrogate" in lines[0]
        assert "Traceback" not in err.getvalue()


#: Folders a foreign writer (or an event store whose prefix lies inside this stream's folder)
#: left in a stream's folder, each sorting before every chunk key.
_FOLDERS = ("-tmp", ".git", "0", "2024", "9", "90", "99")


def _load_costs(store: ObjectStore) -> str:
    repository = Repository(EventStore(store, prefix="p"), Counter)
    handler = CommandHandler(repository)
    handler.handle("s", Increment(1))
    handler.handle("s", Increment(2))
    for folder in _FOLDERS:
        store.put_if_absent(f"p/counter/s/{folder}/x", b"{}")
    before = store.requests
    loaded = repository.load("s")
    assert (loaded.version, loaded.state) == (2, CounterState(3, 2))
    return str(store.requests - before)


class TestFoldersInAStreamFolder:
    def test_in_memory_load_costs_one_list(self) -> None:
        """On the in-memory store a load lists once, whatever folders the stream holds."""
        assert _load_costs(InMemoryObjectStore()) == "1 LIST + 1 GET"

    def test_s3_load_costs_one_list(self, embedded_s3: EmbeddedS3) -> None:
        """On S3 too: the folders take no LIST of their own (they used to take one each)."""
        embedded_s3.create_bucket("audit-folders")
        assert _load_costs(embedded_s3.object_store("audit-folders")) == "1 LIST + 1 GET"

    @pytest.mark.parametrize(("folders", "lists"), [(0, 1), (32, 1), (33, 2), (40, 2)])
    def test_in_memory_store_counts_as_s3(
        self, embedded_s3: EmbeddedS3, folders: int, lists: int
    ) -> None:
        """Both stores count a folder as an entry of a page, as S3 does: a listing of one key
        after more folders than its first page reaches past costs a second LIST on both."""
        bucket = f"audit-pages-{folders}"
        embedded_s3.create_bucket(bucket)
        stores: list[ObjectStore] = [InMemoryObjectStore(), embedded_s3.object_store(bucket)]
        for store in stores:
            for n in range(folders):
                store.put_if_absent(f"s/{n:03d}/x", b"")
            store.put_if_absent("s/key", b"")
            before = store.requests
            assert list(store.list_keys("s/", limit=1)) == ["s/key"]
            assert (store.requests - before).list == lists
