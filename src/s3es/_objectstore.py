"""The object-store port: the requests s3es needs from S3, and their accounting.

An adapter (S3 via boto3, in-memory) implements :class:`ObjectStore`. The event store relies on
exactly this contract; ``tests/objectstore_contract.py`` checks it for every adapter.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import attrs

from s3es._errors import S3esError

#: ListObjectsV2 returns at most this many entries (keys and common prefixes) per request.
LIST_PAGE_SIZE = 1000


class ObjectAlreadyExists(S3esError):  # noqa: N818 - it is the answer, not a failure
    """A put-if-absent found an object at its key (S3 answered 412 Precondition Failed)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"an object already exists at {key!r}")


def keys_wanted(limit: int | None) -> float:
    """How many keys a listing with ``limit`` may still yield (``inf`` for no limit)."""
    if limit is None:
        return float("inf")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    return limit


class ObjectChanged(S3esError):  # noqa: N818 - it is the answer, not a failure
    """A replace found another object at its key than the one whose ETag it had, or none.

    S3 answered 412 (or 404) to ``If-Match``.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"the object at {key!r} is not the one expected (or is gone)")


@attrs.frozen
class StoredObject:
    """An object's bytes and its ETag."""

    body: bytes
    etag: str


@attrs.frozen
class RequestPrices:
    """Dollars per request of each kind. The defaults: S3 Standard, us-east-1."""

    put: float = 0.005 / 1000
    get: float = 0.0004 / 1000
    list: float = 0.005 / 1000
    delete: float = 0.0


S3_STANDARD_PRICES = RequestPrices()


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

    def __str__(self) -> str:
        """``1 LIST + 1 GET + 1 PUT``: the kinds that are not zero (``no request`` if none)."""
        kinds = [("LIST", self.list), ("GET", self.get), ("PUT", self.put), ("DELETE", self.delete)]
        return " + ".join(f"{count:,} {kind}" for kind, count in kinds if count) or "no request"

    def cost(self, prices: RequestPrices = S3_STANDARD_PRICES) -> float:
        """What these requests cost, in dollars."""
        return (
            self.put * prices.put
            + self.get * prices.get
            + self.list * prices.list
            + self.delete * prices.delete
        )

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


class RequestMeter:
    """Requests sent, by any object store, in the context where :func:`measure_requests` runs."""

    def __init__(self) -> None:
        self._counter = RequestCounter()

    @property
    def counts(self) -> RequestCounts:
        """Requests counted so far."""
        return self._counter.snapshot()

    def _add(self, kind: str) -> None:
        self._counter.add(kind, meters=False)


_active_meters: contextvars.ContextVar[tuple[RequestMeter, ...]] = contextvars.ContextVar(
    "s3es_request_meters", default=()
)


@contextlib.contextmanager
def measure_requests() -> Iterator[RequestMeter]:
    """Count the object-store requests sent by this thread (this context) inside the block.

    Unlike a store's own counts, which add up every thread's requests, a meter sees only the
    requests its own code caused. Meters nest.
    """
    meter = RequestMeter()
    token = _active_meters.set((*_active_meters.get(), meter))
    try:
        yield meter
    finally:
        _active_meters.reset(token)


class RequestCounter:
    """A thread-safe tally of requests by kind, kept by an adapter.

    Each request counted is also counted by the :func:`measure_requests` meters active in the
    calling context.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(("put", "get", "list", "delete"), 0)

    def add(self, kind: str, *, meters: bool = True) -> None:
        """Count one request of ``kind`` (``put``, ``get``, ``list`` or ``delete``)."""
        with self._lock:
            self._counts[kind] += 1
        if meters:
            for meter in _active_meters.get():
                meter._add(kind)  # noqa: SLF001 - the meter's private door for counters

    def snapshot(self) -> RequestCounts:
        """The counts so far."""
        with self._lock:
            return RequestCounts(**self._counts)


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
        page of 1,000 keys (or of ``limit``, if fewer), lazily.
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
