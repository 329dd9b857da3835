"""The object-store port: the four requests s3es needs from S3, and their accounting.

An adapter (S3 via boto3, in-memory) implements :class:`ObjectStore`. The event store relies on
exactly this contract; ``tests/objectstore_contract.py`` checks it for every adapter.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import attrs

from s3es._errors import S3esError

#: ListObjectsV2 returns at most this many keys per request.
LIST_PAGE_SIZE = 1000


class ObjectAlreadyExists(S3esError):  # noqa: N818 - it is the answer, not a failure
    """A put-if-absent found an object at its key (S3 answered 412 Precondition Failed)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"an object already exists at {key!r}")


@attrs.frozen
class StoredObject:
    """An object's bytes and its ETag."""

    body: bytes
    etag: str


@attrs.frozen
class RequestCounts:
    """How many requests of each kind an object store sent. Subtract two to count an operation."""

    put: int = 0
    get: int = 0
    list: int = 0
    delete: int = 0

    @property
    def total(self) -> int:
        """All requests of every kind."""
        return self.put + self.get + self.list + self.delete

    def __sub__(self, other: RequestCounts) -> RequestCounts:
        return RequestCounts(
            put=self.put - other.put,
            get=self.get - other.get,
            list=self.list - other.list,
            delete=self.delete - other.delete,
        )

    def __add__(self, other: RequestCounts) -> RequestCounts:
        return RequestCounts(
            put=self.put + other.put,
            get=self.get + other.get,
            list=self.list + other.list,
            delete=self.delete + other.delete,
        )


class RequestCounter:
    """A thread-safe tally of requests by kind, kept by an adapter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = RequestCounts()

    def add(self, kind: str) -> None:
        """Count one request of ``kind`` (``put``, ``get``, ``list`` or ``delete``)."""
        with self._lock:
            self._counts = attrs.evolve(self._counts, **{kind: getattr(self._counts, kind) + 1})

    def snapshot(self) -> RequestCounts:
        """The counts so far."""
        with self._lock:
            return self._counts


@runtime_checkable
class ObjectStore(Protocol):
    """What s3es needs from an object store. Every method is safe to call from many threads.

    Transport failures that survive the adapter's own retries raise
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

    def list_keys(self, prefix: str, *, start_after: str | None = None) -> Iterator[str]:
        """Keys directly under ``prefix`` (which ends in ``/``), in ascending UTF-8 byte order.

        Keys further down (with another ``/`` after the prefix) are not listed. Only keys after
        ``start_after`` are listed. Sends one LIST request per page of 1,000 keys, lazily.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object at ``key``; no error if there is none."""
        ...

    @property
    def requests(self) -> RequestCounts:
        """Requests this store has sent so far, by kind (retries and pages included)."""
        ...
