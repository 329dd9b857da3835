"""An object-store wrapper that takes as long as S3 would: for measuring speed on one machine."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator

import attrs

from s3es._storage.port import LIST_PAGE_SIZE, ForwardingObjectStore, ObjectStore, StoredObject


@attrs.frozen
class SimulatedLatency:
    """Seconds each kind of request takes, each drawn within ``jitter`` (a fraction) of it.

    The defaults are round figures for S3 Standard seen from EC2 in the same region.
    """

    put: float = attrs.field(default=0.020, validator=attrs.validators.ge(0))
    get: float = attrs.field(default=0.015, validator=attrs.validators.ge(0))
    list: float = attrs.field(default=0.020, validator=attrs.validators.ge(0))
    delete: float = attrs.field(default=0.015, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))

    @classmethod
    def fixed(cls, seconds: float) -> SimulatedLatency:
        """The same latency for every request."""
        return cls(put=seconds, get=seconds, list=seconds, delete=seconds)

    def sample(self, kind: str, rng: random.Random) -> float:
        """A latency for one request of ``kind``."""
        base: float = getattr(self, kind)
        return base * rng.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else base


class LatencyObjectStore(ForwardingObjectStore):
    """An :class:`~s3es.storage.ObjectStore` that waits before each request, then delegates it.

    Requests are counted by the wrapped store.
    """

    def __init__(
        self,
        inner: ObjectStore,
        latency: SimulatedLatency,
        *,
        sleep: Callable[[float], None] = time.sleep,
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
        """The wrapped listing, with a LIST's latency before each page of 1,000 keys."""
        self._wait("list")
        listing = super().list_keys(prefix, start_after=start_after, limit=limit)
        for listed, key in enumerate(listing):
            if listed and listed % LIST_PAGE_SIZE == 0:
                self._wait("list")  # the next page: waited for only if there is a key on it
            yield key

    def list_prefixes(self, prefix: str) -> Iterator[str]:
        """The wrapped listing of common prefixes, with a LIST's latency before each page."""
        self._wait("list")
        for listed, folder in enumerate(super().list_prefixes(prefix)):
            if listed and listed % LIST_PAGE_SIZE == 0:
                self._wait("list")
            yield folder

    def delete(self, key: str) -> None:
        """The wrapped delete, after a DELETE's latency."""
        self._wait("delete")
        super().delete(key)
