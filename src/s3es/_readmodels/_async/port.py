"""The read-model store port for asyncio: :class:`~s3es.readmodels.ReadModelStore`, awaited.

The async consumers (:class:`~s3es.aio.AsyncDocumentProjector`,
:class:`~s3es.aio.AsyncReactorRunner`) rely on exactly this contract, the same as the sync
one's (see :mod:`s3es._readmodels.port`): the same generations, documents, positions, shard
states, fences, errors and requests. :class:`~s3es.aio.AsyncS3ReadModelStore` implements it on
an async object store; :class:`AsyncReadModels` offers any sync store (SQLite, PostgreSQL)
to async code, each call run in a thread.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Protocol, runtime_checkable

from s3es._readmodels.port import (
    Change,
    Generation,
    Generations,
    ReadModelStore,
    ShardState,
    StoredDocument,
)

#: Documents an :class:`AsyncReadModels` reads per trip to a thread.
_PAGE = 256


@runtime_checkable
class AsyncReadModelStore(Protocol):
    """What an async document projection needs from the store its read model lives in.

    Each method keeps the promise of its namesake in :class:`~s3es.readmodels.ReadModelStore`
    (read there what each does and raises), awaited; :meth:`documents` is an async iterator.
    Every method is safe to call from many tasks at once.
    """

    #: True if :meth:`commit` applies everything or nothing.
    atomic: bool

    def check_generation(self, generation: Generation) -> None:
        """The store's refusal of a generation it cannot keep; no I/O, so not awaited.

        As :meth:`~s3es.readmodels.ReadModelStore.check_generation` of the sync port.
        """
        ...

    async def generations(self, projection: str) -> Generations:
        """As :meth:`ReadModelStore.generations <s3es.readmodels.ReadModelStore.generations>`."""
        ...

    async def set_generations(self, record: Generations) -> Generations:
        """As :meth:`~s3es.readmodels.ReadModelStore.set_generations` of the sync port."""
        ...

    async def get(self, generation: Generation, key: str) -> StoredDocument | None:
        """As :meth:`ReadModelStore.get <s3es.readmodels.ReadModelStore.get>`."""
        ...

    async def get_many(
        self, generation: Generation, keys: Collection[str]
    ) -> dict[str, StoredDocument]:
        """As :meth:`ReadModelStore.get_many <s3es.readmodels.ReadModelStore.get_many>`."""
        ...

    def documents(self, generation: Generation) -> AsyncIterator[StoredDocument]:
        """As :meth:`ReadModelStore.documents <s3es.readmodels.ReadModelStore.documents>`."""
        ...

    async def positions(self, generation: Generation, streams: Collection[str]) -> dict[str, int]:
        """As :meth:`ReadModelStore.positions <s3es.readmodels.ReadModelStore.positions>`."""
        ...

    async def shard_state(
        self, generation: Generation, shard: int, shards: int
    ) -> ShardState | None:
        """As :meth:`ReadModelStore.shard_state <s3es.readmodels.ReadModelStore.shard_state>`."""
        ...

    async def commit(
        self,
        generation: Generation,
        changes: Sequence[Change],
        positions: Mapping[str, int],
        state: ShardState,
    ) -> ShardState:
        """As :meth:`ReadModelStore.commit <s3es.readmodels.ReadModelStore.commit>`."""
        ...

    async def drop(self, generation: Generation) -> None:
        """As :meth:`ReadModelStore.drop <s3es.readmodels.ReadModelStore.drop>`."""
        ...


class AsyncReadModels:
    """A sync :class:`~s3es.readmodels.ReadModelStore` offered to async code: each call in a thread.

    For the SQL stores (:class:`~s3es.readmodels.SQLiteReadModelStore`,
    :class:`~s3es.readmodels.PostgresReadModelStore`): sqlite3 has no async driver, and the
    stores' transactions, fences and schema are written once, on the DB-API. Each call runs
    in a thread of the loop's default executor (``asyncio.to_thread``, in the caller's
    context), so the loop goes on while the database works; :meth:`documents` reads a page of
    documents per trip. The store must be safe to call from several threads, as every
    ``ReadModelStore`` is.
    """

    def __init__(self, store: ReadModelStore) -> None:
        self.store = store
        self.atomic = store.atomic

    def __repr__(self) -> str:
        return f"AsyncReadModels({self.store!r})"

    def check_generation(self, generation: Generation) -> None:
        """The store's own check (no I/O)."""
        self.store.check_generation(generation)

    async def generations(self, projection: str) -> Generations:
        """The projection's generations record, read in a thread."""
        return await asyncio.to_thread(self.store.generations, projection)

    async def set_generations(self, record: Generations) -> Generations:
        """Store ``record`` conditionally, in a thread."""
        return await asyncio.to_thread(self.store.set_generations, record)

    async def get(self, generation: Generation, key: str) -> StoredDocument | None:
        """The document at ``key``, read in a thread."""
        return await asyncio.to_thread(self.store.get, generation, key)

    async def get_many(
        self, generation: Generation, keys: Collection[str]
    ) -> dict[str, StoredDocument]:
        """The documents at ``keys``, read in a thread."""
        return await asyncio.to_thread(self.store.get_many, generation, keys)

    async def documents(self, generation: Generation) -> AsyncIterator[StoredDocument]:
        """Every document of ``generation`` in key order, a page at a time from a thread."""
        iterator = iter(self.store.documents(generation))
        while True:
            page = await asyncio.to_thread(lambda: list(itertools.islice(iterator, _PAGE)))
            for document in page:
                yield document
            if len(page) < _PAGE:
                return

    async def positions(self, generation: Generation, streams: Collection[str]) -> dict[str, int]:
        """The positions of ``streams``, read in a thread."""
        return await asyncio.to_thread(self.store.positions, generation, streams)

    async def shard_state(
        self, generation: Generation, shard: int, shards: int
    ) -> ShardState | None:
        """A shard's state, read in a thread."""
        return await asyncio.to_thread(self.store.shard_state, generation, shard, shards)

    async def commit(
        self,
        generation: Generation,
        changes: Sequence[Change],
        positions: Mapping[str, int],
        state: ShardState,
    ) -> ShardState:
        """Commit in a thread (one transaction of the sync store)."""
        return await asyncio.to_thread(self.store.commit, generation, changes, positions, state)

    async def drop(self, generation: Generation) -> None:
        """Drop ``generation`` in a thread."""
        await asyncio.to_thread(self.store.drop, generation)


__all__ = ["AsyncReadModelStore", "AsyncReadModels"]
