# Generated from src/s3es/_storage/_async/port.py by tools/async_to_sync.py: do not edit.
"""The object-store port: the requests s3es needs from S3, and their accounting.

An adapter (S3 via boto3 or aiobotocore, in memory) implements :class:`ObjectStore`. The
event store relies on exactly this contract, the same for both APIs: the same requests, errors,
pages and request accounting (:mod:`s3es._storage.metering`); the contract suites of
:mod:`s3es.testing` check it for every adapter. What the ports share that does no I/O (stored
objects, how listings page) is ``_storage/port_base.py``'s, re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from s3es._storage.metering import RequestCounts
from s3es._storage.port_base import (
    LIST_FOLDER_ALLOWANCE,
    LIST_PAGE_SIZE,
    StoredObject,
    keys_wanted,
    list_page_size,
)

__all__ = [
    "LIST_FOLDER_ALLOWANCE",
    "LIST_PAGE_SIZE",
    "ForwardingObjectStore",
    "ObjectStore",
    "StoredObject",
    "keys_wanted",
    "list_page_size",
]


@runtime_checkable
class ObjectStore(Protocol):
    """What s3es needs from an object store. Every method is safe to call concurrently.

    From many threads (the sync port), or many tasks of one event loop (the async one: each
    request awaited). Transport failures that survive the adapter's own retries raise
    :class:`~s3es.ObjectStoreError`.
    """

    def put_if_absent(self, key: str, body: bytes) -> str:
        """Store ``body`` at ``key`` only if no object is there, atomically; return the ETag.

        Raises ObjectAlreadyExists if an object is there, also when that object is one an
        earlier, unanswered attempt of this very call stored.
        """
        ...

    def get(self, key: str) -> StoredObject | None:
        """The object at ``key``, or None if there is none."""
        ...

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        """Store ``body`` at ``key`` only if the object there has ``etag``, atomically.

        Returns the new ETag. Raises ObjectChanged if it has another, or if there is none.
        """
        ...

    def list_keys(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> Iterator[str]:
        """Keys directly under ``prefix`` (which ends in ``/``), in ascending UTF-8 byte order.

        Keys further down (with another ``/`` after the prefix) are not listed. Only keys after
        ``start_after`` are listed, and at most ``limit`` of them. Sends one LIST request per
        page, lazily: a page holds up to 1,000 entries, a key or a folder each (S3 counts the
        folders among the keys). With a ``limit``, the first page asks for ``limit`` + 32
        entries (at most 1,000), so up to 32 folders before the keys cost no LIST.
        """
        ...

    def list_prefixes(self, prefix: str) -> Iterator[str]:
        """The "folders" directly under ``prefix`` (which ends in ``/``), each ending in ``/``.

        They are S3's common prefixes: ``p/a/`` for keys ``p/a/1`` and ``p/a/b/2``. Listed in
        ascending UTF-8 byte order. Sends one LIST request per page of 1,000 entries (S3 counts
        the keys directly under ``prefix`` in a page too), lazily.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object at ``key``; no error if there is none."""
        ...

    @property
    def requests(self) -> RequestCounts:
        """Requests this store has sent so far, by kind (retries and pages included)."""
        ...


class ForwardingObjectStore:
    """An :class:`ObjectStore` that passes every request on to ``inner``.

    Subclass it and override the calls to change: a latency, a fault, a rival writer... The
    requests are counted by ``inner``.
    """

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner

    @property
    def requests(self) -> RequestCounts:
        """The wrapped store's request counts."""
        return self.inner.requests

    def put_if_absent(self, key: str, body: bytes) -> str:
        """The wrapped put-if-absent."""
        return self.inner.put_if_absent(key, body)

    def get(self, key: str) -> StoredObject | None:
        """The wrapped get."""
        return self.inner.get(key)

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        """The wrapped replace."""
        return self.inner.replace(key, body, etag=etag)

    def list_keys(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> Iterator[str]:
        """The wrapped listing."""
        return self.inner.list_keys(prefix, start_after=start_after, limit=limit)

    def list_prefixes(self, prefix: str) -> Iterator[str]:
        """The wrapped listing of common prefixes."""
        return self.inner.list_prefixes(prefix)

    def delete(self, key: str) -> None:
        """The wrapped delete."""
        self.inner.delete(key)
