"""An in-memory object store for asyncio: :class:`~s3es.storage.InMemoryObjectStore`, awaited.

For tests, examples and benchmarks of the async API. It answers exactly as the sync in-memory
store does (it is one: ``sync``), so the two count the same requests for the same calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from s3es._storage.memory import InMemoryObjectStore
from s3es._storage.metering import RequestCounts
from s3es._storage.port import StoredObject


class AsyncInMemoryObjectStore:
    """An :class:`~s3es.aio.AsyncObjectStore` in memory.

    Each request is answered at once, without giving way to other tasks: put-if-absent is
    atomic, as S3's is. Each method answers, and raises, as
    :class:`~s3es.storage.InMemoryObjectStore`'s does.

    Args:
        sync: The same objects seen through the sync port (a fresh store if None): a test can
            read and write one store through both APIs.
    """

    def __init__(self, sync: InMemoryObjectStore | None = None) -> None:
        self.sync = InMemoryObjectStore() if sync is None else sync

    @property
    def requests(self) -> RequestCounts:
        """Requests answered so far, by kind (through either port)."""
        return self.sync.requests

    async def put_if_absent(self, key: str, body: bytes) -> str:
        """Store ``body`` at ``key`` unless an object is there (ObjectAlreadyExists)."""
        return self.sync.put_if_absent(key, body)

    async def replace(self, key: str, body: bytes, *, etag: str) -> str:
        """Store ``body`` at ``key`` if the object there has ``etag`` (ObjectChanged if not)."""
        return self.sync.replace(key, body, etag=etag)

    async def get(self, key: str) -> StoredObject | None:
        """The object at ``key``, or None."""
        return self.sync.get(key)

    async def list_keys(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> AsyncIterator[str]:
        """Keys directly under ``prefix`` after ``start_after``, paged as S3 pages them."""
        for key in self.sync.list_keys(prefix, start_after=start_after, limit=limit):
            yield key

    async def list_prefixes(self, prefix: str) -> AsyncIterator[str]:
        """Common prefixes directly under ``prefix``, paged as S3 pages them."""
        for folder in self.sync.list_prefixes(prefix):
            yield folder

    async def delete(self, key: str) -> None:
        """Remove the object at ``key`` if there is one."""
        self.sync.delete(key)
