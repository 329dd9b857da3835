# Generated from src/s3es/_storage/_async/latency.py by tools/async_to_sync.py: do not edit.
"""An object-store wrapper that takes as long as S3 would: for measuring speed on one machine."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator

from s3es._base.concurrency import pause
from s3es._storage.latency_model import SimulatedLatency
from s3es._storage.port import LIST_PAGE_SIZE, ForwardingObjectStore, ObjectStore, StoredObject

__all__ = ["LatencyObjectStore", "SimulatedLatency"]


class LatencyObjectStore(ForwardingObjectStore):
    """An :class:`ObjectStore` that waits before each request, then delegates it.

    For measuring speed on one machine: the in-memory store answers at once, this one as late as
    S3 would. Requests are counted by the wrapped store; each method takes and returns what the
    port's does::

        slow = LatencyObjectStore(objects, SimulatedLatency(jitter=0.2), seed=1)

    Args:
        inner: The store every request is passed on to.
        latency: How long each kind of request waits.
        sleep: How to wait (a test passes one that records the delays).
        seed: Seeds the jitter's random draws, for runs that repeat; None for a fresh seed.
    """

    def __init__(
        self,
        inner: ObjectStore,
        latency: SimulatedLatency,
        *,
        sleep: Callable[[float], None] = pause,
        seed: int | None = None,
    ) -> None:
        super().__init__(inner)
        self.latency = latency
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def _wait(self, kind: str) -> None:
        with self._rng_lock:
            delay = self.latency.sample(kind, self._rng)
        if delay:
            self._sleep(delay)

    def put_if_absent(self, key: str, body: bytes) -> str:
        """The wrapped put-if-absent, after a PUT's latency."""
        self._wait("put")
        return super().put_if_absent(key, body)

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        """The wrapped replace, after a PUT's latency."""
        self._wait("put")
        return super().replace(key, body, etag=etag)

    def get(self, key: str) -> StoredObject | None:
        """The wrapped get, after a GET's latency."""
        self._wait("get")
        return super().get(key)

    def list_keys(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> Iterator[str]:
        """The wrapped listing, with a LIST's latency before each page of 1,000 keys.

        A page after the first is waited for only if a key is on it.
        """
        self._wait("list")
        on_page = LIST_PAGE_SIZE  # keys the page waited for may still hold
        for key in super().list_keys(prefix, start_after=start_after, limit=limit):
            if not on_page:
                self._wait("list")  # the next page: waited for only if there is a key on it
                on_page = LIST_PAGE_SIZE
            on_page -= 1
            yield key

    def list_prefixes(self, prefix: str) -> Iterator[str]:
        """The wrapped listing of common prefixes, with a LIST's latency before each page."""
        self._wait("list")
        on_page = LIST_PAGE_SIZE
        for folder in super().list_prefixes(prefix):
            if not on_page:
                self._wait("list")
                on_page = LIST_PAGE_SIZE
            on_page -= 1
            yield folder

    def delete(self, key: str) -> None:
        """The wrapped delete, after a DELETE's latency."""
        self._wait("delete")
        super().delete(key)
