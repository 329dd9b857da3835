"""Fence gaps: a version missing below an erasure's fences, as a fence round cut short leaves.

An erasure sends a round of fences at once (tests/test_erasure.py::TestFenceGaps makes one);
here the gap is stored directly: the stream's appends, then a fence (rebased, no event) two
versions up, the version between them missing. Readers of every kind take the stream as ending
below the gap, and read on once it is filled (by a writer, or by ``s3es repair``).
"""

from __future__ import annotations

import io

import pytest

from s3es import CommandHandler, EventStore, InMemoryObjectStore, Repository
from s3es._eventstore.chunk import Chunk
from s3es.ops import repair, verify_stream
from s3es.projections import DocumentProjector, DocumentReader, Projector
from s3es.readmodels import S3ReadModelStore
from tests.aggregates import FAST_RETRY, Counter, Increment
from tests.consumers_cli_fixtures import CounterIds, Ids
from tests.projections import AppliedIds


def _fence(events: EventStore, stream_id: str, version: int) -> None:
    """An erasure's fence (no event, no snapshot) at ``version`` of counter ``stream_id``."""
    stream = Repository(events, Counter).stream(stream_id)
    events.commit(
        Chunk(
            stream=stream,
            version=version,
            number=0,
            base_version=version - 1,
            append_id="fence",
            events=(),
            snapshot=None,
            rebased=True,
        )
    )


class TestProjectors:
    def test_projectors_stop_below_a_gap_and_go_on_once_filled(self) -> None:
        """A whole-model projector and a document projector that read a stream up to its
        version 2 pass over it while version 3 is missing below a fence at 4 (nothing new
        for them), and apply version 3 once a writer stores it, then nothing twice."""
        objects = InMemoryObjectStore()
        events = EventStore(objects)
        handler = CommandHandler(Repository(events, Counter), FAST_RETRY)
        ids = [handler.handle("c-1", Increment(n)).recorded[0].id for n in (1, 2)]
        model = Projector(events, AppliedIds)
        documents = DocumentProjector(events, CounterIds, S3ReadModelStore(objects, ""))
        reader = DocumentReader(S3ReadModelStore(objects, ""), CounterIds)
        model.catch_up()
        documents.catch_up()
        _fence(events, "c-1", 4)
        assert model.catch_up().read_model.model.ids == {"counter/c-1": ids}
        documents.catch_up()
        assert reader.get("c-1") == Ids(ids)
        third = handler.handle("c-1", Increment(3))
        assert third.version == 3
        ids.append(third.recorded[0].id)
        assert model.catch_up().read_model.model.ids == {"counter/c-1": ids}
        documents.catch_up()
        assert reader.get("c-1") == Ids(ids)


class TestRepair:
    def test_repair_plugs_every_gap_from_the_lowest(self) -> None:
        """Two gaps (3, and 5-6 below fences at 4 and 7): reads end at 2; repair stores fences
        at 3, 5 and 6, lowest first; then the stream reads through to 7 and verifies clean."""
        objects = InMemoryObjectStore()
        events = EventStore(objects)
        repository = Repository(events, Counter)
        handler = CommandHandler(repository, FAST_RETRY)
        for amount in (1, 2):
            handler.handle("c-1", Increment(amount))
        _fence(events, "c-1", 4)
        _fence(events, "c-1", 7)
        assert repository.load("c-1").version == 2
        stream = repository.stream("c-1")
        report = verify_stream(events, stream)
        assert [problem.reason.split(" below")[0] for problem in report.problems] == [
            "versions 5 to 6 are missing",
            "version 3 is missing",
        ]
        dry = repair(repository, "c-1", dry_run=True)
        assert (dry.missing, dry.plugged, dry.requests.put) == ((3, 5, 6), (), 0)
        done = repair(repository, "c-1")
        assert (done.missing, done.plugged, done.requests.put) == ((3, 5, 6), (3, 5, 6), 3)
        assert verify_stream(events, stream, aggregate=Counter).ok
        loaded = repository.load("c-1")
        assert loaded == repository.replay("c-1")
        assert loaded.version == 7
        assert handler.handle("c-1", Increment(5)).version == 8

    def test_a_gap_below_events_is_not_repaired(self) -> None:
        """A version missing below a chunk with events is damage repair cannot mend (the
        events are gone): it stores nothing, and reads still refuse the stream."""
        objects = InMemoryObjectStore()
        events = EventStore(objects)
        repository = Repository(events, Counter)
        handler = CommandHandler(repository, FAST_RETRY)
        for amount in (1, 2, 3):
            handler.handle("c-1", Increment(amount))
        stream = repository.stream("c-1")
        objects.delete(events.keys.chunk_key(stream, 2))
        assert repair(repository, "c-1").missing == ()
        with pytest.raises(Exception, match="has no version 2"):
            list(repository.read("c-1"))


class TestCommand:
    def test_s3es_repair(self) -> None:
        """`s3es repair` asks first; --dry-run names the missing versions and writes nothing;
        --yes stores the fences; then `s3es verify` finds nothing wrong."""
        from s3es._cli.main import main  # noqa: PLC0415 - the CLI, as a user runs it

        objects = InMemoryObjectStore()
        events = EventStore(objects)
        handler = CommandHandler(Repository(events, Counter), FAST_RETRY)
        handler.handle("c-1", Increment(1))
        _fence(events, "c-1", 3)
        base = ["--bucket", "events", "--aggregate", "tests.aggregates:Counter"]

        def run(*argv: str) -> tuple[int, str, str]:
            out, err = io.StringIO(), io.StringIO()
            code = main([*argv], store=objects, out=out, err=err, stdin=io.StringIO(""))
            return code, out.getvalue(), err.getvalue()

        code, out, err = run("verify", "--bucket", "events")
        assert code == 1
        assert "version 2 is missing" in out
        assert "s3es repair" in out
        code, out, _ = run("repair", *base, "c-1", "--dry-run")
        assert code == 0
        assert "versions missing below an erasure's fences: 2" in out
        assert (
            objects.get(events.keys.chunk_key(Repository(events, Counter).stream("c-1"), 2)) is None
        )
        code, _, err = run("repair", *base, "c-1")
        assert code == 2
        assert "--yes" in err
        code, out, _ = run("repair", *base, "--all", "--yes")
        assert code == 0
        assert "stored a fence at version 2" in out
        code, out, _ = run("verify", "--bucket", "events")
        assert code == 0, out
