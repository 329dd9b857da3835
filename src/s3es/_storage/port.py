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
    request awaited). Implement it to keep events in another store, and prove the adapter with
    :class:`~s3es.testing.ObjectStoreContract`. Every method raises
    :class:`~s3es.ObjectStoreError` for a transport failure that survives the adapter's own
    retries.
    """

    def put_if_absent(self, key: str, body: bytes) -> str:
        """Store ``body`` at ``key`` only if no object is there, atomically. One PUT.

        Args:
            key: Where to store it.
            body: The object's bytes.

        Returns:
            The stored object's ETag.

        Raises:
            ObjectAlreadyExists: An object is there, also when it is one an earlier,
                unanswered attempt of this very call stored.
            ObjectStoreError: The request failed.
        """
        ...

    def get(self, key: str) -> StoredObject | None:
        """Read the object at ``key``. One GET.

        Args:
            key: The object's key.

        Returns:
            Its bytes and ETag, or None if there is no object there.

        Raises:
            ObjectStoreError: The request failed.
        """
        ...

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        """Store ``body`` at ``key`` only if the object there has ``etag``, atomically. One PUT.

        Args:
            key: Where to store it.
            body: The object's new bytes.
            etag: The ETag the object there must have, as :meth:`get` returned it.

        Returns:
            The stored object's new ETag.

        Raises:
            ObjectChanged: The object there has another ETag, or there is none.
            ObjectStoreError: The request failed.
        """
        ...

    def list_keys(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> Iterator[str]:
        """Keys directly under ``prefix``, in ascending UTF-8 byte order.

        Keys further down (with another ``/`` after the prefix) are not listed. Sends one LIST
        request per page, lazily: a page holds up to 1,000 entries, a key or a folder each (S3
        counts the folders among the keys). With a ``limit``, the first page asks for
        ``limit`` + 32 entries (at most 1,000), so up to 32 folders before the keys cost no
        LIST.

        Args:
            prefix: The folder to list; it ends in ``/``.
            start_after: List only the keys after this one.
            limit: List at most this many keys (at least 1); None for all.

        Yields:
            Each key, whole (prefix included).

        Raises:
            ValueError: ``limit`` is below 1.
            ObjectStoreError: A LIST failed.
        """
        ...

    def list_prefixes(self, prefix: str) -> Iterator[str]:
        """The "folders" directly under ``prefix``, in ascending UTF-8 byte order.

        They are S3's common prefixes: ``p/a/`` for keys ``p/a/1`` and ``p/a/b/2``. Sends one
        LIST request per page of 1,000 entries (S3 counts the keys directly under ``prefix`` in
        a page too), lazily.

        Args:
            prefix: The folder to list; it ends in ``/``.

        Yields:
            Each folder, whole (prefix included) and ending in ``/``.

        Raises:
            ObjectStoreError: A LIST failed.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object at ``key``; no error if there is none. One DELETE.

        Args:
            key: The object's key.

        Raises:
            ObjectStoreError: The request failed.
        """
        ...

    @property
    def requests(self) -> RequestCounts:
        """Requests this store has sent so far, by kind (retries and pages included).

        Returns:
            A snapshot of the counts; subtract two to measure the requests between them.
        """
        ...


class ForwardingObjectStore:
    """An :class:`ObjectStore` that passes every request on to ``inner``.

    Subclass it and override the calls to change: a latency, a fault, a rival writer... The
    requests are counted by ``inner``. Each method takes and returns what the port's does.

    Args:
        inner: The store every request is passed on to.
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
