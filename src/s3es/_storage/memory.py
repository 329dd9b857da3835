"""An in-memory object store whose put-if-absent is atomic, as S3's is.

For tests, examples and benchmarks: it answers like S3 (ordering, pages, ETags, request counts)
without a network. Its contents live as long as the object.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from collections.abc import Iterator

from s3es._storage.keys import MAX_KEY_BYTES
from s3es._storage.metering import RequestCounter, RequestCounts
from s3es._storage.port import LIST_PAGE_SIZE, StoredObject, keys_wanted, list_page_size
from s3es.errors import ObjectAlreadyExists, ObjectChanged, ObjectStoreError


def _check_key(key: str) -> None:
    """ObjectStoreError, as S3's KeyTooLongError, if ``key`` is longer than S3 allows."""
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise ObjectStoreError(
            "PUT",
            key,
            f"KeyTooLongError: the key is {size} bytes of UTF-8; S3 allows at most {MAX_KEY_BYTES}",
        )


class InMemoryObjectStore:
    """An :class:`~s3es.storage.ObjectStore` in a dict behind one lock, for tests and examples.

    It answers like S3 (key order, pages, ETags, request counts) without a network, and its
    contents live as long as the object. It refuses what S3 refuses that a test could meet: a
    key longer than 1,024 bytes of UTF-8 (ObjectStoreError, as the S3 adapter raises for S3's
    KeyTooLongError). Each method keeps the port's contract::

        store = InMemoryObjectStore()
        events = EventStore(store)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, StoredObject] = {}
        self._sorted_keys: list[str] = []  # str order is code point order, which is UTF-8 order
        self._counter = RequestCounter()

    @property
    def requests(self) -> RequestCounts:
        """Requests answered so far, by kind.

        Returns:
            A snapshot of the counts.
        """
        return self._counter.snapshot()

    def put_if_absent(self, key: str, body: bytes) -> str:
        """Store ``body`` at ``key`` only if no object is there, atomically.

        Args:
            key: Where to store it.
            body: The object's bytes.

        Returns:
            The ETag: the quoted MD5 of ``body``, as S3's.

        Raises:
            ObjectAlreadyExists: An object is there.
            ObjectStoreError: ``key`` is longer than 1,024 bytes of UTF-8.
        """
        self._counter.add("put")
        _check_key(key)
        stored = StoredObject(body=bytes(body), etag=f'"{hashlib.md5(body).hexdigest()}"')  # noqa: S324 - S3's ETag
        with self._lock:
            if key in self._objects:
                raise ObjectAlreadyExists(key)
            self._objects[key] = stored
            bisect.insort(self._sorted_keys, key)
        return stored.etag

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        """Store ``body`` at ``key`` only if the object there has ``etag``, atomically.

        Args:
            key: Where to store it.
            body: The object's new bytes.
            etag: The ETag the object there must have (quoted or not).

        Returns:
            The new ETag.

        Raises:
            ObjectChanged: The object there has another ETag, or there is none.
            ObjectStoreError: ``key`` is longer than 1,024 bytes of UTF-8.
        """
        self._counter.add("put")
        _check_key(key)
        stored = StoredObject(body=bytes(body), etag=f'"{hashlib.md5(body).hexdigest()}"')  # noqa: S324 - S3's ETag
        with self._lock:
            current = self._objects.get(key)
            if current is None or current.etag.strip('"') != etag.strip('"'):
                raise ObjectChanged(key)
            self._objects[key] = stored
        return stored.etag

    def get(self, key: str) -> StoredObject | None:
        """Read the object at ``key``.

        Args:
            key: The object's key.

        Returns:
            Its bytes and ETag, or None if there is no object there.
        """
        self._counter.add("get")
        with self._lock:
            return self._objects.get(key)

    def list_keys(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> Iterator[str]:
        """Keys directly under ``prefix``, in ascending UTF-8 byte order, paged as S3 pages them.

        A page holds as many entries as S3's would (``limit`` + 32 first, 1,000 after), and each
        folder among the keys takes one, as S3's common prefixes do: requests are counted as S3
        would count them.

        Args:
            prefix: The folder to list; it ends in ``/``.
            start_after: List only the keys after this one.
            limit: List at most this many keys (at least 1); None for all.

        Yields:
            Each key, whole (prefix included).

        Raises:
            ValueError: ``limit`` is below 1.
        """
        left = keys_wanted(limit)
        # "\0" makes the least string after start_after
        after = start_after is not None and start_after >= prefix
        cursor = f"{start_after}\0" if after else prefix
        first = True
        while left:
            self._counter.add("list")
            page_size = list_page_size(left, first=first)
            first = False
            with self._lock:
                page, cursor, more = self._page(prefix, cursor, page_size)
            for key in page:
                yield key
                left -= 1
                if not left:
                    return
            if not more:
                return

    def _page(self, prefix: str, cursor: str, size: int) -> tuple[list[str], str, bool]:
        """The keys of a page of ``size`` entries from ``cursor``; the next cursor; if more.

        Call with the lock held.
        """
        keys: list[str] = []
        entries = 0
        index = bisect.bisect_left(self._sorted_keys, cursor)
        while index < len(self._sorted_keys) and self._sorted_keys[index].startswith(prefix):
            if entries == size:
                return keys, cursor, True
            key = self._sorted_keys[index]
            entries += 1
            segment, slash, _ = key[len(prefix) :].partition("/")
            if slash:  # below a further "/": S3 rolls it into one common prefix, one entry
                cursor = f"{prefix}{segment}0"  # "0" follows "/": past the whole folder
                index = bisect.bisect_left(self._sorted_keys, cursor)
            else:
                keys.append(key)
                cursor = f"{key}\0"
                index += 1
        return keys, cursor, False

    def list_prefixes(self, prefix: str) -> Iterator[str]:
        """The "folders" directly under ``prefix``, paged as S3 pages them.

        Args:
            prefix: The folder to list; it ends in ``/``.

        Yields:
            Each folder, whole (prefix included) and ending in ``/``, in ascending order.
        """
        cursor = prefix
        while True:
            self._counter.add("list")
            page: list[str] = []
            with self._lock:
                index = bisect.bisect_left(self._sorted_keys, cursor)
                entries = 0
                while entries < LIST_PAGE_SIZE and index < len(self._sorted_keys):
                    key = self._sorted_keys[index]
                    if not key.startswith(prefix):
                        break
                    segment, slash, _ = key[len(prefix) :].partition("/")
                    if slash:
                        folder = f"{prefix}{segment}/"
                        page.append(folder)
                        entries += 1
                        cursor = f"{prefix}{segment}0"  # "0" follows "/": past the whole folder
                    else:
                        entries += 1  # a key directly under the prefix fills the page too
                        cursor = f"{key}\0"  # the least string after the key
                    index = bisect.bisect_left(self._sorted_keys, cursor)
                more = entries == LIST_PAGE_SIZE and index < len(self._sorted_keys)
                more = more and self._sorted_keys[index].startswith(prefix)
            yield from page
            if not more:
                return

    def delete(self, key: str) -> None:
        """Remove the object at ``key``; no error if there is none.

        Args:
            key: The object's key.
        """
        self._counter.add("delete")
        with self._lock:
            if self._objects.pop(key, None) is not None:
                index = bisect.bisect_left(self._sorted_keys, key)
                del self._sorted_keys[index]
