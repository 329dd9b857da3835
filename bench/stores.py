"""Object stores the benchmarks need besides s3es's own: the strawman without conditional writes."""

from __future__ import annotations

import threading

from s3es.errors import ObjectAlreadyExists
from s3es.storage import ForwardingObjectStore, ObjectStore


class OverwritingStore(ForwardingObjectStore):
    """Versioned keys *without* conditional writes: ``put_if_absent`` overwrites, never refuses.

    This is what an event store on S3 looked like before S3 honoured ``If-None-Match``: each
    writer PUTs the key of the version it expects to write, and the last PUT to land wins. Two
    writers that race for a version are both told they succeeded; the first one's events are
    gone. Wraps an atomic store: an overwrite is a DELETE and a PUT under one lock (so the
    wrapped store's request counts include them), which lands as one plain PUT would.
    """

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self._lock = threading.Lock()
        #: Puts that replaced an existing object.
        self.overwrites = 0

    def put_if_absent(self, key: str, body: bytes) -> str:
        """Store ``body`` at ``key``, replacing whatever is there."""
        with self._lock:
            try:
                return self.inner.put_if_absent(key, body)
            except ObjectAlreadyExists:
                self.overwrites += 1
                self.inner.delete(key)
                return self.inner.put_if_absent(key, body)
