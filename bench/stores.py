"""Object stores the benchmarks need besides s3es's own: the strawman without conditional writes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from s3es import ObjectAlreadyExists, ObjectStore, RequestCounts, StoredObject


class OverwritingStore:
    """Versioned keys *without* conditional writes: ``put_if_absent`` overwrites, never refuses.

    This is what an event store on S3 looked like before S3 honoured ``If-None-Match``: each
    writer PUTs the key of the version it expects to write, and the last PUT to land wins. Two
    writers that race for a version are both told they succeeded; the first one's events are
    gone. Wraps an atomic store: an overwrite is a DELETE and a PUT under one lock (so the
    wrapped store's request counts include them), which lands as one plain PUT would.
    """

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        #: Puts that replaced an existing object.
        self.overwrites = 0

    @property
    def requests(self) -> RequestCounts:
        """The wrapped store's request counts."""
        return self.inner.requests

    def put_if_absent(self, key: str, body: bytes) -> str:
        """Store ``body`` at ``key``, replacing whatever is there."""
        with self._lock:
            try:
                return self.inner.put_if_absent(key, body)
            except ObjectAlreadyExists:
                self.overwrites += 1
                self.inner.delete(key)
                return self.inner.put_if_absent(key, body)

    def get(self, key: str) -> StoredObject | None:
        """The wrapped get."""
        return self.inner.get(key)

    def list_keys(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> Iterator[str]:
        """The wrapped listing."""
        return self.inner.list_keys(prefix, start_after=start_after, limit=limit)

    def delete(self, key: str) -> None:
        """The wrapped delete."""
        self.inner.delete(key)
