"""What a pass of the consumer engine reads: nothing it wrote or read earlier in the pass."""

from __future__ import annotations

from s3es import CommandHandler, EventStore, InMemoryObjectStore, Repository
from s3es.metering import RequestCounts
from s3es.projections import DocumentProjector
from s3es.readmodels import S3ReadModelStore
from tests.aggregates import Counter, Increment
from tests.consumers_cli_fixtures import CounterIds, Ids


def _projector(streams: int) -> DocumentProjector[Ids]:
    objects = InMemoryObjectStore()
    events = EventStore(objects, prefix="p")
    handler = CommandHandler(Repository(events, Counter))
    for n in range(streams):
        handler.handle(f"c{n}", Increment(1))
    return DocumentProjector(events, CounterIds, S3ReadModelStore(objects, "p"))


class TestDocumentProjectorPasses:
    def test_first_pass_reads_the_record_twice_and_its_new_state_never(self) -> None:
        """A first pass builds generation 1: the lease (GET + PUT); the generations record
        (one GET, kept for the pass), naming the build (PUT); the shard's state created (PUT,
        if absent: no GET); the record again (GET: a rebuild elsewhere may have dropped the
        generation); the scan (1 LIST, 2 per stream, a GET per chunk); each document (GET, PUT)
        and position (PUT), the state (PUT); the switch (PUT: no GET of the record, nor of the
        state just committed)."""
        run = _projector(2).catch_up()
        assert run.requests == RequestCounts(
            get=1 + 1 + 1 + 2 + 2, put=1 + 1 + 1 + 2 * 2 + 1 + 1, list=1 + 2 * 2
        )

    def test_rebuild_reads_the_record_twice(self) -> None:
        """A rebuild (its lease held) counts all it sends: the generations record (GET),
        naming the build (PUT); the new shard's state created (PUT, no GET); the record again
        (GET); the scan, documents, positions and state as in a first pass; the switch (PUT,
        no GET); then generation 1 dropped: listed (a LIST and a listing of folders per
        folder, 5 folders) and deleted (its 2 documents, 2 positions, state), and its empty
        parked generation listed (2)."""
        projector = _projector(2)
        projector.catch_up()
        run = projector.rebuild()
        assert run.requests == RequestCounts(
            get=1 + 1 + 2 + 2,
            put=1 + 1 + 2 * 2 + 1 + 1,
            list=1 + 2 * 2 + 2 * 5 + 2,
            delete=2 + 2 + 1,
        )
