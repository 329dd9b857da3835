"""The object-store port for asyncio: :class:`~s3es.storage.ObjectStore`'s requests, awaited.

An async adapter (aiobotocore, in-memory) implements :class:`AsyncObjectStore`; the async event
store relies on exactly this contract, the same as the sync one's: the same requests, errors,
pages and request accounting (:mod:`s3es._storage.metering`). The async contract suite
(:class:`~s3es.testing.AsyncObjectStoreContract`) checks an adapter against the sync suite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from s3es._storage.metering import RequestCounts
from s3es._storage.port import StoredObject


@runtime_checkable
class AsyncObjectStore(Protocol):
    """What s3es's async API needs from an object store: safe to call from many tasks at once.

    Each method keeps the promise of its namesake in :class:`~s3es.storage.ObjectStore`
    (read there what each does, raises and sends), awaited. Transport failures that survive
    the adapter's own retries raise :class:`~s3es.ObjectStoreError`.
    """

    async def put_if_absent(self, key: str, body: bytes) -> str:
        """As :meth:`ObjectStore.put_if_absent <s3es.storage.ObjectStore.put_if_absent>`."""
        ...

    async def get(self, key: str) -> StoredObject | None:
        """As :meth:`ObjectStore.get <s3es.storage.ObjectStore.get>`."""
        ...

    async def replace(self, key: str, body: bytes, *, etag: str) -> str:
        """As :meth:`ObjectStore.replace <s3es.storage.ObjectStore.replace>`."""
        ...

    def list_keys(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> AsyncIterator[str]:
        """As :meth:`ObjectStore.list_keys <s3es.storage.ObjectStore.list_keys>`: pages lazily."""
        ...

    def list_prefixes(self, prefix: str) -> AsyncIterator[str]:
        """As :meth:`ObjectStore.list_prefixes <s3es.storage.ObjectStore.list_prefixes>`."""
        ...

    async def delete(self, key: str) -> None:
        """As :meth:`ObjectStore.delete <s3es.storage.ObjectStore.delete>`."""
        ...

    @property
    def requests(self) -> RequestCounts:
        """Requests this store has sent so far, by kind (retries and pages included)."""
        ...


class AsyncForwardingObjectStore:
    """An :class:`AsyncObjectStore` that passes every request on to ``inner``.

    Subclass it and override the calls to change: a latency, a fault... The requests are
    counted by ``inner``.
    """

    def __init__(self, inner: AsyncObjectStore) -> None:
        self.inner = inner

    @property
    def requests(self) -> RequestCounts:
        """The wrapped store's request counts."""
        return self.inner.requests

    async def put_if_absent(self, key: str, body: bytes) -> str:
        """The wrapped put-if-absent."""
        return await self.inner.put_if_absent(key, body)

    async def get(self, key: str) -> StoredObject | None:
        """The wrapped get."""
        return await self.inner.get(key)

    async def replace(self, key: str, body: bytes, *, etag: str) -> str:
        """The wrapped replace."""
        return await self.inner.replace(key, body, etag=etag)

    def list_keys(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> AsyncIterator[str]:
        """The wrapped listing."""
        return self.inner.list_keys(prefix, start_after=start_after, limit=limit)

    def list_prefixes(self, prefix: str) -> AsyncIterator[str]:
        """The wrapped listing of common prefixes."""
        return self.inner.list_prefixes(prefix)

    async def delete(self, key: str) -> None:
        """The wrapped delete."""
        await self.inner.delete(key)
