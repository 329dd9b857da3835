"""Verification: sound streams pass; each kind of damage is one problem naming stream and key."""

from __future__ import annotations

import attrs
import pytest

from s3es import CommandHandler, EventStore, InMemoryObjectStore, Repository, StreamName
from s3es._eventstore.chunk import encode_chunk
from s3es._ops.verify import chain, read_stored_chunks
from s3es.eventstore import Chunk, Snapshot
from s3es.metering import RequestCounts
from s3es.ops import VerifyProblem, compact, delete, erase, verify_prefix, verify_stream
from s3es.storage import ForwardingObjectStore, StoredObject
from tests.aggregates import Counter, CounterV2, Increment

PREFIX = "p"


def _store(**streams: int) -> tuple[InMemoryObjectStore, EventStore]:
    """An in-memory store with a Counter stream of ``n`` versions for each ``id=n``."""
    objects = InMemoryObjectStore()
    event_store = EventStore(objects, prefix=PREFIX)
    handler = CommandHandler(Repository(event_store, Counter))
    for stream_id, versions in streams.items():
        for amount in range(1, versions + 1):
            handler.handle(stream_id, Increment(amount))
    return objects, event_store


def _stream(stream_id: str) -> StreamName:
    return StreamName("counter", stream_id)


def _key(event_store: EventStore, stream_id: str, version: int, chunk: int = 0) -> str:
    return event_store.keys.chunk_key(_stream(stream_id), version, chunk)


def _overwrite(objects: InMemoryObjectStore, key: str, body: bytes) -> None:
    objects.delete(key)
    objects.put_if_absent(key, body)


def _reasons(problems: tuple[VerifyProblem, ...]) -> list[tuple[str, str]]:
    return [(problem.key, problem.reason) for problem in problems]


class TestSoundStreams:
    def test_stream(self) -> None:
        """A stream of appends passes: every chunk read, one LIST and one GET per chunk."""
        _, event_store = _store(a=3)
        report = verify_stream(event_store, _stream("a"), aggregate=Counter)
        assert report.ok
        assert (report.version, report.chunks, report.events) == (3, 3, 3)
        assert report.snapshot_checked
        assert not report.deleted
        assert report.requests == RequestCounts(list=1, get=3)

    def test_prefix(self) -> None:
        """A prefix passes; it lists the types, the streams of each, then reads each stream."""
        _, event_store = _store(a=3, b=1)
        calls: list[tuple[int, int]] = []
        report = verify_prefix(
            event_store, aggregates={"counter": Counter}, progress=lambda *c: calls.append(c)
        )
        assert report.ok
        assert [r.stream.id for r in report.streams] == ["a", "b"]
        assert (report.chunks, report.events, report.snapshots_checked) == (4, 4, 2)
        assert report.requests == RequestCounts(list=4, get=4)
        assert calls == [(1, 2), (2, 2)]
        assert report.summary() == (
            "verified 2 streams, 4 chunks, 4 events (2 snapshots compared with a full replay): "
            "no problem"
        )

    def test_named_streams(self) -> None:
        """With stream ids, only those are read (a missing one is an empty, sound stream)."""
        _, event_store = _store(a=2, b=2)
        report = verify_prefix(event_store, stream_types=["counter"], stream_ids=["b", "zz"])
        assert [(r.stream.id, r.version) for r in report.streams] == [("b", 2), ("zz", 0)]
        assert report.requests == RequestCounts(list=2, get=2)

    def test_stream_ids_need_one_type(self) -> None:
        """Stream ids with no stream type, or several, are refused."""
        _, event_store = _store(a=1)
        with pytest.raises(ValueError, match="exactly one stream type"):
            verify_prefix(event_store, stream_types=["x", "y"], stream_ids=["a"])

    def test_compacted_erased_and_resnapshotted(self) -> None:
        """Merged, erased and re-snapshotted chunks are sound: each stands for its versions."""
        _, event_store = _store(merged=3, erased=3, resnapshot=2)
        repository = Repository(event_store, Counter)
        compact(repository, "merged")
        erase(repository, "erased", lambda event: event)
        Repository(event_store, CounterV2).load("resnapshot")  # stores chunk 1 of version 2
        report = verify_prefix(event_store, aggregates={"counter": CounterV2})
        assert report.ok, report.problems
        by_id = {r.stream.id: r for r in report.streams}
        assert by_id["merged"].chunks == 4
        assert by_id["resnapshot"].chunks == 3
        assert by_id["resnapshot"].snapshot_checked
        # Snapshots of schema 1 are replayed by CounterV2's loads: not compared, not a fault.
        assert not by_id["merged"].snapshot_checked

    def test_deleted_stream(self) -> None:
        """A deleted stream is sound when every version below its tombstone keeps a fence and
        nothing else; each is read."""
        _, event_store = _store(a=3)
        delete(Repository(event_store, Counter), "a")
        report = verify_stream(event_store, _stream("a"))
        assert report.ok, report.problems
        assert (report.deleted, report.version) == (True, 4)
        assert report.requests == RequestCounts(list=1, get=4)

    def test_deleted_stream_without_a_fence(self) -> None:
        """A version below the tombstone whose chunk 0 is gone, or still holds events, is a
        problem naming its key: a stale writer could store it, or the sweep did not finish."""
        objects, event_store = _store(a=3)
        delete(Repository(event_store, Counter), "a")
        objects.delete(_key(event_store, "a", 1))
        objects.delete(_key(event_store, "a", 2))
        event = event_store.new_event("Incremented", {"amount": 2})
        event_store.store(Chunk(_stream("a"), 2, 0, 1, "x", (event,), None))  # not swept
        report = verify_stream(event_store, _stream("a"))
        assert [(p.key, p.reason.split(":")[0]) for p in report.problems] == [
            (_key(event_store, "a", 2), "below the tombstone at version 4 and not a fence"),
            (_key(event_store, "a", 1), "missing"),
        ]


class TestProblems:
    def test_corrupt_chunk(self) -> None:
        """A chunk that is not JSON is a problem naming its key; the chain through it breaks."""
        objects, event_store = _store(a=3)
        key = _key(event_store, "a", 2)
        _overwrite(objects, key, b"{not json")
        report = verify_prefix(event_store)
        assert not report.ok
        assert [str(p.stream) for p in report.problems] == ["counter/a", "counter/a"]
        assert report.problems[0].key == key
        assert report.problems[0].reason.startswith("not UTF-8 JSON")
        assert _reasons(report.problems)[1] == (
            _key(event_store, "a", 3),
            "no readable chunk of version 2, which this chunk's events follow",
        )
        assert str(report.problems[0]).startswith(f"counter/a: {key}: not UTF-8 JSON")
        assert report.summary() == "verified 1 stream, 3 chunks, 1 event: 2 problems"

    def test_missing_version(self) -> None:
        """A version whose chunk 0 is gone is a gap in the chain and a lost lock."""
        objects, event_store = _store(a=3)
        objects.delete(_key(event_store, "a", 2))
        report = verify_stream(event_store, _stream("a"))
        assert _reasons(report.problems) == [
            (
                _key(event_store, "a", 3),
                "no readable chunk of version 2, which this chunk's events follow",
            ),
            (
                _key(event_store, "a", 2),
                (
                    "missing: version 2 has lost its chunk 0, the lock that keeps a writer "
                    "holding an older version from storing it again"
                ),
            ),
        ]

    def test_lost_lock_under_a_merged_chunk(self) -> None:
        """A compacted stream reads fine without old chunk 0s, but a lost lock is reported."""
        objects, event_store = _store(a=3)
        compact(Repository(event_store, Counter), "a")
        objects.delete(_key(event_store, "a", 1))
        report = verify_stream(event_store, _stream("a"), aggregate=Counter)
        assert [p.key for p in report.problems] == [_key(event_store, "a", 1)]
        assert report.snapshot_checked

    def test_stray_key(self) -> None:
        """An object in a stream's folder that is not a chunk is a problem naming it."""
        objects, event_store = _store(a=1)
        objects.put_if_absent(f"{PREFIX}/counter/a/notes.txt", b"hello")
        (problem,) = verify_stream(event_store, _stream("a")).problems
        assert problem.key == f"{PREFIX}/counter/a/notes.txt"
        assert "not a chunk key" in problem.reason

    def test_folder_that_is_no_stream(self) -> None:
        """A folder under a type that no stream name maps to is a problem without a stream."""
        objects, event_store = _store(a=1)
        objects.put_if_absent(f"{PREFIX}/counter/tab\there/x.json", b"{}")
        report = verify_prefix(event_store)
        (problem,) = report.problems
        assert (problem.stream, problem.key) == (None, f"{PREFIX}/counter/tab\there/")
        assert problem.reason.startswith("not the folder of a stream")
        assert str(problem).startswith("no stream: ")

    def test_snapshot_differs_from_replay(self) -> None:
        """With the aggregate, a snapshot that a full replay does not give is a problem;
        without it, the stream looks sound."""
        _, event_store = _store(a=2)
        record = event_store.new_event("Incremented", {"amount": 1})
        wrong = Snapshot(schema=1, version=3, state={"total": 1_000, "events": 3})
        event_store.append(_stream("a"), [record], expected_version=2, snapshot=wrong)
        assert verify_stream(event_store, _stream("a")).ok
        report = verify_stream(event_store, _stream("a"), aggregate=Counter)
        (problem,) = report.problems
        assert problem.key == _key(event_store, "a", 3)
        assert problem.reason == (
            "the snapshot is not the state a full replay of 3 events gives: "
            "CounterState(total=1000, events=3) in the snapshot, "
            "CounterState(total=4, events=3) replayed"
        )

    def test_unreadable_snapshot(self) -> None:
        """A snapshot of the aggregate's schema that does not fit its state is a problem."""
        _, event_store = _store(a=1)
        record = event_store.new_event("Incremented", {"amount": 1})
        bad = Snapshot(schema=1, version=2, state={"nonsense": True})
        event_store.append(_stream("a"), [record], expected_version=1, snapshot=bad)
        (problem,) = verify_stream(event_store, _stream("a"), aggregate=Counter).problems
        assert problem.reason.startswith("the snapshot cannot be read")

    def test_unknown_event_type(self) -> None:
        """With the aggregate, an event it does not register is a problem naming the key."""
        _, event_store = _store(a=1)
        record = event_store.new_event("Exploded", {"how": "loudly"})
        event_store.append(_stream("a"), [record], expected_version=1)
        (problem,) = verify_stream(event_store, _stream("a"), aggregate=Counter).problems
        assert problem.key == _key(event_store, "a", 2)
        assert "unknown event type 'Exploded'" in problem.reason

    def test_merged_chunk_with_other_events(self) -> None:
        """A merged chunk whose events are not those of the versions it covers is a problem."""
        _, event_store = _store(a=2)
        chunks = list(event_store.chunks(_stream("a")))
        forged = attrs.evolve(chunks[0].events[0], id="forged")
        chunks[0] = attrs.evolve(chunks[0], events=(forged,))
        events = tuple(attrs.evolve(e, version=c.version) for c in chunks for e in c.events)
        merged = attrs.evolve(
            chunks[-1],
            number=1,
            base_version=0,
            events=events,
            snapshot=Snapshot(1, 2, {"total": 3, "events": 2}),
        )
        event_store.store(merged)
        (problem,) = verify_stream(event_store, _stream("a"), aggregate=Counter).problems
        assert problem.key == _key(event_store, "a", 2, 1)
        assert problem.reason.startswith(
            "its events of version 1 are not those of that version's chunk 0 (event ids "
            "['forged'] against"
        )

    def test_aggregate_of_another_type(self) -> None:
        """An aggregate of another stream type than the stream's is refused."""
        _, event_store = _store(a=1)

        class Other(Counter):
            STREAM_TYPE = "other"

        with pytest.raises(ValueError, match="of stream type 'other', not of stream counter/a"):
            verify_stream(event_store, _stream("a"), aggregate=Other)

    def test_vanished_chunk(self) -> None:
        """A chunk listed, then deleted before its GET, is a problem, not an error."""
        objects, _ = _store(a=2)

        class Vanishing(ForwardingObjectStore):
            def get(self, key: str) -> StoredObject | None:
                return (
                    None if key.endswith("99999999999999999998.999999.json") else super().get(key)
                )

        event_store = EventStore(Vanishing(objects), prefix=PREFIX)
        report = verify_stream(event_store, _stream("a"))
        assert _reasons(report.problems)[0] == (
            _key(event_store, "a", 1),
            "listed, then gone before it was read",
        )


def _replace(
    objects: InMemoryObjectStore,
    event_store: EventStore,
    version: int,
    *,
    deleted: bool = False,
    erased: bool = False,
) -> str:
    """Store over chunk 0 of ``version`` of stream ``a`` that chunk made a tombstone or erased."""
    (chunk,) = [c for c in event_store.chunks(_stream("a")) if c.version == version]
    emptied = attrs.evolve(chunk, events=(), snapshot=None, deleted=deleted, erased=erased)
    key = _key(event_store, "a", version)
    _overwrite(objects, key, encode_chunk(emptied))
    return key


class TestChainBreaks:
    """Each break of the chain the event store walks is a problem of verification."""

    def test_erased_chunk_in_the_chain(self) -> None:
        """An erased chunk no merged chunk stands for is a problem naming it; the stream is
        read once (one LIST, one GET a chunk), not listed again as a load would."""
        objects, event_store = _store(a=3)
        key = _replace(objects, event_store, 2, erased=True)
        report = verify_stream(event_store, _stream("a"))
        assert _reasons(report.problems) == [
            (key, "an erased chunk in the chain: no merged chunk stands for it")
        ]
        assert report.events == 1
        assert report.requests == RequestCounts(list=1, get=3)

    def test_tombstone_below_the_top(self) -> None:
        """A tombstone below the latest version is a problem naming it and the version above."""
        objects, event_store = _store(a=3)
        key = _replace(objects, event_store, 2, deleted=True)
        report = verify_stream(event_store, _stream("a"))
        assert _reasons(report.problems) == [(key, "a tombstone below version 3, stored after it")]
        assert not report.deleted
        assert report.requests == RequestCounts(list=1, get=3)

    def test_chain_of_a_compacted_stream(self) -> None:
        """chain() follows the chunks EventStore.chunks reads: the merged chunk, then the
        versions after it."""
        _, event_store = _store(a=3)
        compact(Repository(event_store, Counter), "a")
        CommandHandler(Repository(event_store, Counter)).handle("a", Increment(9))
        stored = read_stored_chunks(event_store, _stream("a"))
        links, problems = chain(_stream("a"), stored)
        assert problems == []
        read = [(c.version, c.number) for c in event_store.chunks(_stream("a"))]
        assert [(link.version, link.number) for link in links] == read == [(3, 1), (4, 0)]


class TestReadAsTheEventStoreReads:
    """Verification reads each chunk as EventStore.read does, refusing what a load refuses."""

    def test_chunk_larger_than_max_chunk_bytes(self) -> None:
        """A chunk larger than the event store's max_chunk_bytes is a problem naming it, as
        loads refuse it; the chain starts below it. With a larger limit the stream is sound."""
        objects, event_store = _store(a=1)
        record = event_store.new_event("Incremented", {"amount": 1}, {"note": "x" * 1_000})
        event_store.append(_stream("a"), [record], expected_version=1)
        small = EventStore(objects, prefix=PREFIX, max_chunk_bytes=1_000)
        report = verify_stream(small, _stream("a"))
        (problem,) = report.problems
        assert problem.key == _key(event_store, "a", 2)
        assert "more than max_chunk_bytes (1,000) allows" in problem.reason
        assert (report.chunks, report.events) == (2, 1)
        assert verify_stream(event_store, _stream("a")).ok


class TestErasureFences:
    def test_fenced_stream_is_sound(self) -> None:
        """An erased stream, its fence and the appends after it pass; the fence's snapshot is
        compared with the replay up to it, like the latest one."""
        _, event_store = _store(a=3)
        repository = Repository(event_store, Counter)
        assert erase(repository, "a", lambda event: event).fence == 4
        CommandHandler(repository).handle("a", Increment(1))
        report = verify_stream(event_store, _stream("a"), aggregate=Counter)
        assert report.ok, report.problems
        assert (report.version, report.events, report.snapshot_checked) == (5, 4, True)

    def test_fence_whose_snapshot_differs_from_replay(self) -> None:
        """A fence below the top whose snapshot is not the state the stream folds to there is
        a problem naming its key: a writer catching up through it would take that state."""
        objects, event_store = _store(a=2)
        repository = Repository(event_store, Counter)
        erase(repository, "a", lambda event: event)
        CommandHandler(repository).handle("a", Increment(1))
        key = _key(event_store, "a", 3)
        fence = event_store.read(event_store.keys.parse(_stream("a"), key))
        assert fence is not None
        assert fence[0].rebased
        wrong = Snapshot(schema=1, version=3, state={"total": 99, "events": 2})
        _overwrite(objects, key, encode_chunk(attrs.evolve(fence[0], snapshot=wrong)))
        assert verify_stream(event_store, _stream("a")).ok
        report = verify_stream(event_store, _stream("a"), aggregate=Counter)
        (problem,) = report.problems
        assert problem.key == key
        assert problem.reason == (
            "an erasure's fence whose snapshot is not the state a replay up to version 3 "
            "gives: a writer catching up through it would take CounterState(total=99, "
            "events=2), the stream folds to CounterState(total=3, events=2)"
        )
