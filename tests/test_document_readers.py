"""Readers of a document projection across generation switches: one generation whole, or an error.

A rebuild (or a bumped SCHEMA) fills a new generation beside the live one, switches readers to
it, then drops the old one. A reader that began on the old generation must not come back with
part of it: ``documents()``, ``get`` and ``get_many`` return what one generation holds, whole,
or raise :class:`~s3es.errors.GenerationChanged`; a read that the switch overtook before it
gave anything is read again on the new generation, once, by the reader itself. On the S3 store,
SQLite and PostgreSQL, sync and asyncio.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from s3es import CommandHandler, EventStore, InMemoryObjectStore, Repository
from s3es.aio import (
    AsyncDocumentProjector,
    AsyncDocumentReader,
    AsyncEventStore,
    AsyncInMemoryObjectStore,
    AsyncReadModels,
    AsyncReadModelStore,
    AsyncS3ReadModelStore,
)
from s3es.errors import GenerationChanged
from s3es.projections import DocumentProjector, DocumentReader
from s3es.readmodels import (
    Generations,
    ReadModelStore,
    S3ReadModelStore,
    SQLiteReadModelStore,
)
from tests.aggregates import FAST_RETRY, Counter, Increment
from tests.consumers_cli_fixtures import CounterIds, Ids

#: More documents than one page of any store's listing (SQL: 500, S3: 256).
DOCUMENTS = 600


def _filled(count: int = DOCUMENTS) -> tuple[InMemoryObjectStore, EventStore]:
    """Counters c-000, c-001... of one increment each."""
    objects = InMemoryObjectStore()
    events = EventStore(objects, prefix="p")
    handler = CommandHandler(Repository(events, Counter), FAST_RETRY)
    for number in range(count):
        handler.handle(f"c-{number:03d}", Increment(1))
    return objects, events


@pytest.fixture(params=["s3", "sqlite", "postgres"])
def store_of(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[InMemoryObjectStore], ReadModelStore]]:
    """A read-model store of the test's kind, made for an event store's objects."""
    opened: list[Any] = []

    def make(objects: InMemoryObjectStore) -> ReadModelStore:
        if request.param == "s3":
            return S3ReadModelStore(objects, "p")
        if request.param == "sqlite":
            opened.append(SQLiteReadModelStore(tmp_path / "read.db"))
        else:
            from s3es.readmodels import PostgresReadModelStore  # noqa: PLC0415

            opened.append(PostgresReadModelStore(request.getfixturevalue("postgres_conninfo")))
        return opened[-1]  # type: ignore[no-any-return]

    yield make
    for store in opened:
        store.close()


class _Hooked:
    """A read-model store that runs ``hook`` after each of its first ``times`` reads of a
    generations record (the reader has its generation; the hook switches it under it), and
    counts those reads."""

    def __init__(self, store: ReadModelStore, hook: Callable[[], object], times: int = 1) -> None:
        self.store = store
        self.atomic = store.atomic
        self.hook = hook
        self.times = times
        self.reads = 0

    def generations(self, projection: str) -> Generations:
        record = self.store.generations(projection)
        self.reads += 1
        if self.reads <= self.times:
            self.hook()
        return record

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _whole(documents: dict[str, Ids], count: int = DOCUMENTS) -> None:
    assert sorted(documents) == [f"c-{number:03d}" for number in range(count)]
    assert all(len(document.ids) == 1 for document in documents.values())


class TestSync:
    def test_an_iteration_overtaken_by_a_switch_is_whole_or_refused(
        self, store_of: Callable[[InMemoryObjectStore], ReadModelStore]
    ) -> None:
        """documents() begun on the live generation, a rebuild run to completion (the old
        generation dropped), then the iteration finished: every document, or GenerationChanged,
        never part of the model in silence."""
        objects, events = _filled()
        store = store_of(objects)
        projector = DocumentProjector(events, CounterIds, store)
        projector.catch_up()
        iteration = DocumentReader(store, CounterIds).documents()
        read = dict([next(iteration) for _ in range(10)])
        projector.rebuild()
        changed: GenerationChanged | None = None
        try:
            read.update(iteration)
        except GenerationChanged as error:
            changed = error
        if changed is None:
            _whole(read)
        else:
            assert changed.projection == "counter-ids"
            assert changed.read.number == 1
            assert changed.live is not None
            assert changed.live.number == 2
        _whole(dict(DocumentReader(store, CounterIds).documents()))

    def test_a_read_the_switch_overtook_before_it_gave_anything_is_read_again(
        self, store_of: Callable[[InMemoryObjectStore], ReadModelStore]
    ) -> None:
        """A rebuild completed between the reader's read of the live generation and its read
        of the documents: get, get_many and documents() read the new generation, whole."""
        objects, events = _filled()
        store = store_of(objects)
        projector = DocumentProjector(events, CounterIds, store)
        projector.catch_up()
        reads: list[tuple[Callable[[DocumentReader[Ids]], dict[str, Ids | None]], int]] = [
            (lambda reader: {"c-007": reader.get("c-007")}, 1),
            (lambda reader: dict(reader.get_many(["c-007", "c-599", "nope"])), 2),
            (lambda reader: dict(reader.documents()), DOCUMENTS),
        ]
        for read, count in reads:
            hooked = _Hooked(store, projector.rebuild)
            documents = read(DocumentReader(hooked, CounterIds))
            assert len(documents) == count
            assert all(d is not None and len(d.ids) == 1 for d in documents.values())

    def test_a_generation_that_keeps_changing_is_refused(
        self, store_of: Callable[[InMemoryObjectStore], ReadModelStore]
    ) -> None:
        """Switched again under the second read too: GenerationChanged, naming the projection
        and both generations."""
        objects, events = _filled(5)
        store = store_of(objects)
        projector = DocumentProjector(events, CounterIds, store)
        projector.catch_up()
        for read in (
            lambda reader: reader.get("c-001"),
            lambda reader: reader.get_many(["c-001"]),
            lambda reader: dict(reader.documents()),
        ):
            hooked = _Hooked(store, projector.rebuild, times=2)
            with pytest.raises(GenerationChanged, match="counter-ids"):
                read(DocumentReader(hooked, CounterIds))

    def test_a_found_document_costs_no_second_read_of_the_generations(
        self, store_of: Callable[[InMemoryObjectStore], ReadModelStore]
    ) -> None:
        """get of a document that exists reads the generations record once; of one that does
        not, twice (is the generation still live?); documents() once more at its end."""
        objects, events = _filled(5)
        store = store_of(objects)
        DocumentProjector(events, CounterIds, store).catch_up()
        hooked = _Hooked(store, lambda: None, times=0)
        reader = DocumentReader(hooked, CounterIds)
        assert reader.get("c-001") is not None
        assert hooked.reads == 1
        assert reader.get("absent") is None
        assert hooked.reads == 3
        assert reader.get_many(["c-001", "c-002"]).keys() == {"c-001", "c-002"}
        assert hooked.reads == 4
        _whole(dict(reader.documents()), 5)
        assert hooked.reads == 6


class _AsyncHooked:
    """_Hooked for the async port."""

    def __init__(self, store: AsyncReadModelStore, hook: Callable[[], Any], times: int = 1) -> None:
        self.store = store
        self.atomic = store.atomic
        self.hook = hook
        self.times = times
        self.reads = 0

    async def generations(self, projection: str) -> Generations:
        record = await self.store.generations(projection)
        self.reads += 1
        if self.reads <= self.times:
            await self.hook()
        return record

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture(params=["s3", "sqlite"])
def async_store_of(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[AsyncInMemoryObjectStore], AsyncReadModelStore]]:
    """An async read-model store of the test's kind: S3, or SQLite through the thread adapter."""
    opened: list[SQLiteReadModelStore] = []

    def make(objects: AsyncInMemoryObjectStore) -> AsyncReadModelStore:
        if request.param == "s3":
            return AsyncS3ReadModelStore(objects, "p")
        opened.append(SQLiteReadModelStore(tmp_path / "read.db"))
        return AsyncReadModels(opened[-1])

    yield make
    for store in opened:
        store.close()


async def _collect(iteration: AsyncIterator[tuple[str, Ids]]) -> dict[str, Ids]:
    return {key: document async for key, document in iteration}


class TestAsync:
    def test_an_iteration_overtaken_by_a_switch_is_whole_or_refused(
        self, async_store_of: Callable[[AsyncInMemoryObjectStore], AsyncReadModelStore]
    ) -> None:
        """As in the sync API: every document, or GenerationChanged."""
        objects, _ = _filled()

        async def run() -> None:
            aio_objects = AsyncInMemoryObjectStore(objects)
            store = async_store_of(aio_objects)
            events = AsyncEventStore(aio_objects, prefix="p")
            projector = AsyncDocumentProjector(events, CounterIds, store)
            await projector.catch_up()
            iteration = AsyncDocumentReader(store, CounterIds).documents()
            read = dict([await anext(iteration) for _ in range(10)])
            await projector.rebuild()
            changed: GenerationChanged | None = None
            try:
                read.update(await _collect(iteration))
            except GenerationChanged as error:
                changed = error
            if changed is None:
                _whole(read)
            else:
                assert changed.read.number == 1
            _whole(await _collect(AsyncDocumentReader(store, CounterIds).documents()))

        asyncio.run(run())

    def test_a_read_the_switch_overtook_is_read_again_or_refused(
        self, async_store_of: Callable[[AsyncInMemoryObjectStore], AsyncReadModelStore]
    ) -> None:
        """get, get_many and documents() overtaken once read the new generation; overtaken
        twice, they raise GenerationChanged."""
        objects, _ = _filled()

        async def run() -> None:
            aio_objects = AsyncInMemoryObjectStore(objects)
            store = async_store_of(aio_objects)
            events = AsyncEventStore(aio_objects, prefix="p")
            projector = AsyncDocumentProjector(events, CounterIds, store)
            await projector.catch_up()
            hooked = _AsyncHooked(store, projector.rebuild)
            reader = AsyncDocumentReader(hooked, CounterIds)
            assert await reader.get("c-007") is not None
            hooked = _AsyncHooked(store, projector.rebuild)
            reader = AsyncDocumentReader(hooked, CounterIds)
            assert (await reader.get_many(["c-007", "nope"])).keys() == {"c-007"}
            hooked = _AsyncHooked(store, projector.rebuild)
            _whole(await _collect(AsyncDocumentReader(hooked, CounterIds).documents()))
            hooked = _AsyncHooked(store, projector.rebuild, times=2)
            with pytest.raises(GenerationChanged):
                await AsyncDocumentReader(hooked, CounterIds).get("c-007")
            hooked = _AsyncHooked(store, projector.rebuild, times=2)
            with pytest.raises(GenerationChanged):
                await _collect(AsyncDocumentReader(hooked, CounterIds).documents())

        asyncio.run(run())
