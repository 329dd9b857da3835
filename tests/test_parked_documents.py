"""Poison documents are parked, not stalling (issue 17's check).

A document projection whose ``evolve`` raises for an event, or that makes a document no store
keeps (a NaN, a lone surrogate), parks the event with the document: the record names the
projection, the document key, the stream, the version and the error; that stream is held at the
version before the event (no later event of it is applied, to any document) while every other
stream goes on. ``retry`` applies the held stream again now (after a fix: applied; else parked
again); ``skip`` applies it without that event for that document, kept for the record. On the
S3 store (in memory) and SQLite, PostgreSQL once; sync and async; and through ``s3es
projection parked|retry|skip|status``.
"""

from __future__ import annotations

import asyncio
import io
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from s3es import CommandHandler, EventStore, InMemoryObjectStore, RecordedEvent, Repository
from s3es._cli.main import main
from s3es.aio import (
    AsyncDocumentProjector,
    AsyncDocumentReader,
    AsyncEventStore,
    AsyncInMemoryObjectStore,
    AsyncS3ReadModelStore,
)
from s3es.errors import InvalidConfiguration
from s3es.projections import Batching, DocumentProjection, DocumentProjector, DocumentReader
from s3es.readmodels import (
    PostgresReadModelStore,
    ReadModelStore,
    S3ReadModelStore,
    SQLiteReadModelStore,
)
from s3es.storage import ObjectStore
from tests.aggregates import Counter, Increment, Incremented


@attrs.define
class Total:
    """A counter's amounts, and their mean (a float)."""

    amounts: list[int] = attrs.Factory(list)
    label: str = ""
    ratio: float = 0.0


class Totals(DocumentProjection[Total]):
    """One document per counter; 13 makes ``evolve`` raise, 666 a NaN, 777 a lone surrogate,
    999 a document key with U+0000, unless the class is ``FIXED``."""

    NAME = "poison-totals"
    SOURCES: ClassVar[tuple[type[Counter]]] = (Counter,)
    FIXED: ClassVar[bool] = False

    def document_ids(self, event: RecordedEvent[Any]) -> Iterable[str]:
        """The stream's id; 999 names a key no store keeps."""
        assert isinstance(event.event, Incremented)
        return ("bad\x00key",) if event.event.amount == 999 else (event.stream.id,)

    def initial_state(self, key: str) -> Total:
        """No amount yet."""
        return Total()

    def evolve(self, document: Total, event: RecordedEvent[Any]) -> Total:
        """The amount appended; the poison amounts poison it."""
        assert isinstance(event.event, Incremented)
        amount = event.event.amount
        if not self.FIXED:
            if amount == 13:
                raise ValueError("unlucky 13")
            if amount == 666:
                document.ratio = math.nan
            if amount == 777:
                document.label = "\ud800"
        document.amounts.append(amount)
        return document


class FixedTotals(Totals):
    """The same projection, fixed."""

    FIXED = True


@pytest.fixture(params=["s3", "sqlite"])
def read_models(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A factory of the read-model store on an object store: S3 (in memory) or SQLite."""
    opened: list[SQLiteReadModelStore] = []

    def make(objects: ObjectStore) -> ReadModelStore:
        if request.param == "s3":
            return S3ReadModelStore(objects, "p")
        store = SQLiteReadModelStore(tmp_path / "rm.db")
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _handler(objects: ObjectStore) -> CommandHandler[Any, Any, Any]:
    return CommandHandler(Repository(EventStore(objects, prefix="p"), Counter))


def _projector(
    objects: ObjectStore, store: ReadModelStore, projection: type[Totals] = Totals
) -> DocumentProjector[Total]:
    return DocumentProjector(
        EventStore(objects, prefix="p"), projection, store, batching=Batching(commit_every=2)
    )


def _catch_up(projector: DocumentProjector[Total]) -> Any:
    """One pass, its lease released for the next projector."""
    try:
        return projector.catch_up()
    finally:
        projector.release()


def _amounts(store: ReadModelStore) -> dict[str, list[int]]:
    return {k: d.amounts for k, d in DocumentReader(store, Totals).documents()}


class TestParking:
    @pytest.mark.parametrize(
        ("poison", "error"), [(13, "unlucky 13"), (666, "float nan is not JSON")]
    )
    def test_the_stream_is_held_and_the_others_go_on(
        self, read_models: Any, poison: int, error: str
    ) -> None:
        """The poisoned stream stops before its bad event, for good until settled; every other
        stream is applied, and the record names projection, key, stream, version and error."""
        objects = InMemoryObjectStore()
        handler = _handler(objects)
        handler.handle("a", Increment(1))
        bad = handler.handle("a", Increment(poison)).recorded[0]
        handler.handle("a", Increment(2))
        for stream in ("b", "c"):
            handler.handle(stream, Increment(5))
        store = read_models(objects)
        projector = _projector(objects, store)
        run = _catch_up(projector)
        assert [(p.key, p.event_id) for p in run.parked] == [("a", bad.id)]
        assert _amounts(store) == {"a": [1], "b": [5], "c": [5]}
        (record,) = projector.parked()
        assert (record.projection, record.key, record.stream, record.version) == (
            "poison-totals",
            "a",
            "counter/a",
            2,
        )
        assert error in record.error
        assert record.status == "parked"
        handler.handle("b", Increment(6))
        handler.handle("a", Increment(3))
        again = _catch_up(_projector(objects, store))
        assert _amounts(store) == {"a": [1], "b": [5, 6], "c": [5]}
        assert [p.event_id for p in again.parked] == [bad.id]  # tried again: still failing
        assert len(projector.parked()) == 1

    @pytest.mark.parametrize(
        ("poison", "key", "where"),
        [(777, "a", "['label']: a lone surrogate"), (999, "bad\x00key", "hold U+0000")],
    )
    def test_a_document_no_store_keeps_is_parked_naming_where(
        self, read_models: Any, poison: int, key: str, where: str
    ) -> None:
        """A document the store would refuse (a lone surrogate in its body, U+0000 in its key)
        is never committed: its event is parked naming projection, key, stream, version and
        what is wrong, and the other documents of the batch are written."""
        objects = InMemoryObjectStore()
        handler = _handler(objects)
        handler.handle("a", Increment(poison))
        handler.handle("b", Increment(4))
        store = read_models(objects)
        projector = _projector(objects, store)
        _catch_up(projector)
        assert _amounts(store) == {"b": [4]}
        (record,) = projector.parked()
        assert record.key == key
        assert where in record.error
        assert f"projection poison-totals: document {key!r} after event" in record.error
        assert "(counter/a version 1) cannot be stored" in record.error

    def test_retry_after_a_fix_applies_the_stream(self, read_models: Any) -> None:
        """retry while the projection still fails parks the event again; with the fixed
        projection it applies the event and the rest of its stream, and nothing is parked."""
        objects = InMemoryObjectStore()
        handler = _handler(objects)
        bad = handler.handle("a", Increment(13)).recorded[0]
        handler.handle("a", Increment(2))
        store = read_models(objects)
        _catch_up(_projector(objects, store))
        assert _projector(objects, store).retry(bad.id).parked != ()
        assert len(_projector(objects, store).parked()) == 1
        fixed = _projector(objects, store, FixedTotals)
        retried = fixed.retry(bad.id)
        assert retried.parked == ()
        assert retried.events == 2
        assert _amounts(store) == {"a": [13, 2]}
        assert fixed.parked() == []
        assert _catch_up(fixed).events == 0

    def test_skip_applies_the_rest_and_keeps_the_record(self, read_models: Any) -> None:
        """skip applies the stream without the event for that document; parked(skipped=True)
        still lists it, as skipped; later passes do not park it again."""
        objects = InMemoryObjectStore()
        handler = _handler(objects)
        bad = handler.handle("a", Increment(13)).recorded[0]
        handler.handle("a", Increment(2))
        store = read_models(objects)
        projector = _projector(objects, store)
        _catch_up(projector)
        skipped = projector.skip(bad.id)
        assert skipped.parked == ()
        assert _amounts(store) == {"a": [2]}
        assert projector.parked() == []
        (record,) = projector.parked(skipped=True)
        assert (record.event_id, record.status) == (bad.id, "skipped")
        handler.handle("a", Increment(1))
        assert _catch_up(_projector(objects, store)).parked == ()
        assert _amounts(store) == {"a": [2, 1]}

    def test_settling_an_event_not_parked(self, read_models: Any) -> None:
        """retry and skip of an event that is not parked name it."""
        objects = InMemoryObjectStore()
        _handler(objects).handle("a", Increment(1))
        projector = _projector(objects, read_models(objects))
        projector.catch_up()
        with pytest.raises(InvalidConfiguration, match="no event 'nope' is parked"):
            projector.retry("nope")

    def test_a_rebuild_parks_in_its_own_generation(self, read_models: Any) -> None:
        """A rebuild's generation has its own parked documents: the old ones go with the old
        generation, and the event is parked again if it still fails."""
        objects = InMemoryObjectStore()
        _handler(objects).handle("a", Increment(13))
        store = read_models(objects)
        projector = _projector(objects, store)
        projector.catch_up()
        first = projector.parked()[0]
        projector.rebuild()
        (record,) = projector.parked()
        assert record.event_id == first.event_id
        assert record.generation == first.generation + 1


def test_on_postgresql(postgres_conninfo: str) -> None:
    """PostgreSQL parks as SQLite does; a name whose parked table would not fit 63 characters
    is refused when the projector is wired."""
    objects = InMemoryObjectStore()
    handler = _handler(objects)
    bad = handler.handle("a", Increment(13)).recorded[0]
    handler.handle("b", Increment(1))
    with PostgresReadModelStore(postgres_conninfo) as store:
        projector = _projector(objects, store)
        projector.catch_up()
        assert [r.event_id for r in projector.parked()] == [bad.id]
        assert _amounts(store) == {"b": [1]}

        class Long(Totals):
            NAME = "x" * 56

        with pytest.raises(InvalidConfiguration, match="parked documents"):
            _projector(objects, store, Long)


def test_the_async_projector_parks_too() -> None:
    """The async source parks, retries and skips as the sync one does."""

    async def scenario() -> None:
        objects = AsyncInMemoryObjectStore()
        events = AsyncEventStore(objects, prefix="p")
        from s3es.aio import AsyncCommandHandler, AsyncRepository  # noqa: PLC0415

        handler = AsyncCommandHandler(AsyncRepository(events, Counter))
        bad = (await handler.handle("a", Increment(13))).recorded[0]
        await handler.handle("a", Increment(2))
        await handler.handle("b", Increment(1))
        store = AsyncS3ReadModelStore(objects, "p")
        projector = AsyncDocumentProjector(events, Totals, store)
        run = await projector.catch_up()
        assert [p.event_id for p in run.parked] == [bad.id]
        reader = AsyncDocumentReader(store, Totals)
        assert [k async for k, _ in reader.documents()] == ["b"]
        await projector.skip(bad.id)
        assert [k async for k, _ in reader.documents()] == ["a", "b"]
        assert [r.status for r in await projector.parked(skipped=True)] == ["skipped"]

    asyncio.run(scenario())


# The command line ---------------------------------------------------------------------------

_ON = ["--bucket", "x", "--prefix", "p"]
_PROJECTION = ["--projection", "tests.test_parked_documents:Totals"]


def _invoke(argv: list[str], objects: ObjectStore) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, store=objects, out=out, err=err, stdin=io.StringIO())
    return status, out.getvalue(), err.getvalue()


class TestCommandLine:
    def test_parked_status_retry_skip(self) -> None:
        """catch-up names what it parked; status counts it; parked lists it; retry of a still
        broken projection fails (exit 1); skip --yes settles it; parked --all shows it."""
        objects = InMemoryObjectStore()
        handler = _handler(objects)
        bad = handler.handle("a", Increment(13)).recorded[0]
        handler.handle("b", Increment(1))
        status, out, _ = _invoke(["projection", "catch-up", *_ON, *_PROJECTION], objects)
        assert status == 0
        assert f"1 document parked: {bad.id}" in out
        _, out, _ = _invoke(["projection", "status", *_ON, *_PROJECTION], objects)
        assert "parked: 1 document (0 skipped): see `s3es projection parked`" in out
        _, out, _ = _invoke(["projection", "parked", *_ON, *_PROJECTION], objects)
        header, row = out.splitlines()[:2]
        assert header.split() == [
            *["EVENT_ID", "KEY", "STREAM", "VERSION", "TYPE", "PARKED_AT", "ERROR"]
        ]
        assert row.split()[:5] == [bad.id, "a", "counter/a", "1", "Incremented"]
        assert "unlucky 13" in row
        status, _, err = _invoke(["projection", "retry", bad.id, *_ON, *_PROJECTION], objects)
        assert status == 1
        assert "failed again, and stays parked" in err
        assert "unlucky 13" in err
        status, _, err = _invoke(["projection", "skip", bad.id, *_ON, *_PROJECTION], objects)
        assert status == 2
        assert "--yes" in err
        argv = ["projection", "skip", bad.id, *_ON, *_PROJECTION, "--yes"]
        status, out, _ = _invoke(argv, objects)
        assert status == 0
        assert out.startswith(f"skipped event {bad.id} (Incremented, counter/a version 1)")
        _, out, _ = _invoke(["projection", "parked", *_ON, *_PROJECTION, "--all"], objects)
        assert "skipped" in out
        _, out, _ = _invoke(["projection", "status", *_ON, *_PROJECTION], objects)
        assert "parked: 0 documents (1 skipped)" in out

    def test_retry_of_a_fixed_projection(self) -> None:
        """retry with the fixed projection applies the stream: exit 0, nothing parked."""
        objects = InMemoryObjectStore()
        bad = _handler(objects).handle("a", Increment(13)).recorded[0]
        _invoke(["projection", "catch-up", *_ON, *_PROJECTION], objects)
        fixed = ["--projection", "tests.test_parked_documents:FixedTotals"]
        status, out, _ = _invoke(["projection", "retry", bad.id, *_ON, *fixed], objects)
        assert status == 0
        assert "applied; no longer parked" in out
        _, out, _ = _invoke(["projection", "parked", *_ON, *fixed], objects)
        assert "no document is parked" in out
