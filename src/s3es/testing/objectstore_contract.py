"""The contract of the ObjectStore port, as one test suite that every adapter subclasses.

In the style of eventsourcing's recorder tests: a backend proves itself by passing the same
tests. A subclass (named ``Test...`` so that pytest collects it; this base is not collected)
provides the ``store`` fixture, a fresh and empty store per test, and may override
:meth:`ObjectStoreContract.put_many` when writing a thousand keys through the store would be slow.

:class:`AsyncObjectStoreContract` runs the same tests on an async adapter (``open_store``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import threading
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from s3es._storage._async.port import AsyncObjectStore
from s3es.errors import ObjectAlreadyExists, ObjectChanged, ObjectStoreError
from s3es.metering import RequestCounts
from s3es.storage import ObjectStore, StoredObject

T = TypeVar("T")

#: ListObjectsV2's page size, as S3 documents it (stated here, not read from s3es).
PAGE = 1000
#: S3's limit on the length of an object key, in bytes of UTF-8 (stated here, not read from s3es).
MAX_KEY_BYTES = 1024
#: Writers racing for one key, and how many races.
RACERS = 8
ROUNDS = 5

#: Names whose UTF-8 byte order differs from orders a naive implementation might use:
#: case-insensitive ("B" before "a"), UTF-16 code units (U+FF21 sorts after U+1F600, a surrogate
#: pair, in UTF-16, but before it in UTF-8), Latin-1, or "natural" number order.
ORDER_PROBES = ("a", "B", "z", "é", "ß", "\uff21", "\U0001f600", "10", "9", "~", "a b", "a+b")
#: Keys that need escaping in a URL or in XML, or are unusual Unicode: stored as they are.
AWKWARD_KEYS = (
    "k/a b",
    "k/a+b",
    "k/%41",
    "k/a?b=c&d#e",
    "k/<&>'\"",
    "k/é",
    "k/e\u0301",  # the same é, decomposed: a different key
    "k/\U0001f600",
    "k/\u2028",
    "k/\ufeff",
    "k/\uffff",
)


def utf8(key: str) -> bytes:
    """The sort key S3 lists by."""
    return key.encode()


def _pages(keys: int) -> int:
    """LIST requests a listing of ``keys`` keys takes: one per started page, at least one."""
    return max(1, math.ceil(keys / PAGE))


class ObjectStoreContract:
    """Every promise of :class:`s3es.storage.ObjectStore`, as a pytest suite.

    Subclass it in a test module and provide the ``store`` fixture; pytest collects and runs
    every test of the contract on your adapter (docs/testing.md, "Your own object store:
    ObjectStoreContract").

    Example::

        class TestMyStore(ObjectStoreContract):
            @pytest.fixture
            def store(self) -> ObjectStore:
                return MyStore(...)
    """

    @pytest.fixture
    def store(self) -> ObjectStore:
        """A fresh, empty store: what a subclass must provide.

        Returns:
            The adapter under test, with no object in it.

        Raises:
            NotImplementedError: The subclass did not override it.
        """
        raise NotImplementedError(f"{type(self).__name__} must override the store fixture")

    def put_many(self, store: ObjectStore, keys: Iterable[str]) -> None:
        """Store a small body at each of ``keys``; a subclass may do it faster, uncounted.

        Args:
            store: The store under test.
            keys: The keys to store a body at.
        """
        for key in keys:
            store.put_if_absent(key, b"{}")

    # The port

    def test_is_an_object_store(self, store: ObjectStore) -> None:
        """The adapter satisfies the ObjectStore protocol."""
        assert isinstance(store, ObjectStore)

    # put_if_absent and get

    def test_put_returns_etag_get_returns_it(self, store: ObjectStore) -> None:
        """put_if_absent returns a non-empty ETag; get returns the body and that same ETag."""
        etag = store.put_if_absent("p/one", b'{"n":1}')
        assert isinstance(etag, str)
        assert etag
        stored = store.get("p/one")
        assert stored is not None
        assert (stored.body, stored.etag) == (b'{"n":1}', etag)

    def test_any_bytes_round_trip(self, store: ObjectStore) -> None:
        """Any body, empty, binary or large, is read back byte for byte."""
        bodies = [b"", b"\x00\xff\xfe binary", "é \U0001f600".encode(), bytes(range(256)) * 40]
        for number, body in enumerate(bodies):
            store.put_if_absent(f"p/{number}", body)
        for number, body in enumerate(bodies):
            stored = store.get(f"p/{number}")
            assert stored is not None
            assert stored.body == body, f"body {number}"

    def test_awkward_keys(self, store: ObjectStore) -> None:
        """Keys with URL, XML or unusual Unicode characters are stored, read and listed as is."""
        for key in AWKWARD_KEYS:
            store.put_if_absent(key, key.encode())
        for key in AWKWARD_KEYS:
            stored = store.get(key)
            assert stored is not None, key
            assert stored.body == key.encode(), key
        assert list(store.list_keys("k/")) == sorted(AWKWARD_KEYS, key=utf8)

    @pytest.mark.parametrize("character", ["k", "\u00e9", "\U0001f600"])
    def test_keys_up_to_s3s_limit(self, store: ObjectStore, character: str) -> None:
        """A key of MAX_KEY_BYTES bytes of UTF-8 is stored and read back; one a byte longer is
        refused by put_if_absent and replace with ObjectStoreError naming it, as S3 refuses it
        (KeyTooLongError), and nothing is stored.
        """
        size = len(character.encode())
        longest = "k/" + character * ((MAX_KEY_BYTES - 2) // size)
        longest += "k" * (MAX_KEY_BYTES - len(longest.encode()))
        assert len(longest.encode()) == MAX_KEY_BYTES
        etag = store.put_if_absent(longest, b"fits")
        stored = store.get(longest)
        assert stored is not None
        assert stored.body == b"fits"
        store.replace(longest, b"fits again", etag=etag)
        too_long = longest + character
        assert len(too_long.encode()) > MAX_KEY_BYTES
        with pytest.raises(ObjectStoreError) as raised:
            store.put_if_absent(too_long, b"too long")
        assert raised.value.key == too_long
        with pytest.raises(ObjectStoreError):
            store.replace(too_long, b"too long", etag=etag)
        assert list(store.list_keys("k/")) == [longest]

    def test_put_on_existing_key_raises(self, store: ObjectStore) -> None:
        """A second put_if_absent of a key raises ObjectAlreadyExists naming the key."""
        store.put_if_absent("p/taken", b"first")
        with pytest.raises(ObjectAlreadyExists) as raised:
            store.put_if_absent("p/taken", b"second")
        assert raised.value.key == "p/taken"
        assert "'p/taken'" in str(raised.value)

    def test_put_on_existing_key_keeps_first(self, store: ObjectStore) -> None:
        """A refused put_if_absent leaves the first body and ETag untouched."""
        etag = store.put_if_absent("p/taken", b"first")
        with pytest.raises(ObjectAlreadyExists):
            store.put_if_absent("p/taken", b"second")
        stored = store.get("p/taken")
        assert stored is not None
        assert (stored.body, stored.etag) == (b"first", etag)

    def test_same_body_twice_still_refused(self, store: ObjectStore) -> None:
        """put_if_absent refuses an existing key even when the body is identical."""
        store.put_if_absent("p/same", b"body")
        with pytest.raises(ObjectAlreadyExists):
            store.put_if_absent("p/same", b"body")

    def test_get_missing(self, store: ObjectStore) -> None:
        """Get of a key with no object returns None."""
        store.put_if_absent("p/other", b"x")
        assert store.get("p/missing") is None
        assert store.get("p/othe") is None

    def test_keys_are_exact(self, store: ObjectStore) -> None:
        """Keys that differ only by case or by Unicode normalisation are different objects."""
        store.put_if_absent("p/Key", b"upper")
        store.put_if_absent("p/key", b"lower")
        store.put_if_absent("p/é", b"composed")
        store.put_if_absent("p/e\u0301", b"decomposed")
        bodies = {key: store.get(key) for key in ("p/Key", "p/key", "p/é", "p/e\u0301")}
        assert {key: s.body if s else None for key, s in bodies.items()} == {
            "p/Key": b"upper",
            "p/key": b"lower",
            "p/é": b"composed",
            "p/e\u0301": b"decomposed",
        }

    # list_keys

    def test_list_empty_prefix(self, store: ObjectStore) -> None:
        """Listing a prefix with no keys yields nothing."""
        store.put_if_absent("elsewhere/x", b"x")
        assert list(store.list_keys("p/")) == []

    def test_list_in_utf8_byte_order(self, store: ObjectStore) -> None:
        """Keys are listed in ascending UTF-8 byte order, whatever order they were written in."""
        keys = [f"o/{name}" for name in ORDER_PROBES]
        # The probes are chosen so that byte order is not UTF-16 or case-insensitive order.
        assert sorted(keys, key=utf8) != sorted(keys, key=lambda k: k.encode("utf-16-be"))
        assert sorted(keys, key=utf8) != sorted(keys, key=str.casefold)
        written = list(keys)
        random.Random(7).shuffle(written)
        for key in written:
            store.put_if_absent(key, b"x")
        assert list(store.list_keys("o/")) == sorted(keys, key=utf8)

    def test_list_only_directly_under_prefix(self, store: ObjectStore) -> None:
        """Keys below a further '/' and keys of sibling prefixes are not listed."""
        for key in (
            "a/b",  # the prefix without its slash
            "a/b!",  # sorts just before "a/b/"
            "a/b/1",
            "a/b/2",
            "a/b/c/3",  # one level deeper
            "a/b/c/d/4",
            "a/b0",  # sorts just after "a/b/"
            "a/bc/5",  # a sibling prefix sharing the first letter
            "a/bc",
            "b/b/6",
        ):
            store.put_if_absent(key, b"x")
        assert list(store.list_keys("a/b/")) == ["a/b/1", "a/b/2"]
        assert list(store.list_keys("a/bc/")) == ["a/bc/5"]
        assert list(store.list_keys("a/b/c/")) == ["a/b/c/3"]
        assert list(store.list_keys("a/")) == ["a/b", "a/b!", "a/b0", "a/bc"]

    def test_start_after_is_exclusive(self, store: ObjectStore) -> None:
        """Only keys strictly after start_after are listed, in order."""
        keys = [f"s/{n:03d}" for n in range(10)]
        self.put_many(store, keys)
        assert list(store.list_keys("s/", start_after="s/004")) == keys[5:]
        assert list(store.list_keys("s/", start_after="s/0045")) == keys[5:]
        assert list(store.list_keys("s/", start_after="s/009")) == []

    def test_start_after_outside_prefix(self, store: ObjectStore) -> None:
        """A start_after before the prefix lists all of it; after the prefix, nothing."""
        keys = [f"s/{n:03d}" for n in range(3)]
        self.put_many(store, [*keys, "r/x", "t/x"])
        assert list(store.list_keys("s/", start_after="r/zzz")) == keys
        assert list(store.list_keys("s/", start_after="s/")) == keys
        assert list(store.list_keys("s/", start_after="t/")) == []

    def test_start_after_skips_deeper_keys(self, store: ObjectStore) -> None:
        """With start_after, keys below a further '/' are still not listed."""
        self.put_many(store, ["s/1", "s/1/deeper", "s/2", "s/2/deeper", "s/3"])
        assert list(store.list_keys("s/", start_after="s/1")) == ["s/2", "s/3"]

    def test_paging_beyond_one_page(self, store: ObjectStore) -> None:
        """More than 1,000 keys are all listed, in order, one LIST request per page."""
        keys = [f"m/{n:05d}" for n in range(PAGE + 5)]
        self.put_many(store, ["l/before", *keys, "n/after"])
        before = store.requests
        assert list(store.list_keys("m/")) == keys
        assert store.requests - before == RequestCounts(list=2)

    def test_paging_with_start_after(self, store: ObjectStore) -> None:
        """start_after and pages combine: every key after it, none twice, one LIST per page."""
        keys = [f"m/{n:05d}" for n in range(PAGE + 5)]
        self.put_many(store, keys)
        for skip in (0, 3, 4, 5, 500, PAGE + 4):
            before = store.requests
            listed = list(store.list_keys("m/", start_after=keys[skip]))
            assert listed == keys[skip + 1 :]
            assert store.requests - before == RequestCounts(list=_pages(len(listed)))

    def test_limit(self, store: ObjectStore) -> None:
        """Limit caps the keys listed; a limit within one page costs one LIST."""
        keys = [f"m/{n:05d}" for n in range(PAGE + 5)]
        self.put_many(store, keys)
        for limit in (1, 3, PAGE):
            before = store.requests
            assert list(store.list_keys("m/", limit=limit)) == keys[:limit]
            assert store.requests - before == RequestCounts(list=1)
        before = store.requests
        assert list(store.list_keys("m/", limit=PAGE + 2)) == keys[: PAGE + 2]
        assert store.requests - before == RequestCounts(list=2)

    def test_limit_with_start_after_and_deeper_keys(self, store: ObjectStore) -> None:
        """Limit counts only listed keys: deeper keys and keys before start_after do not use it."""
        self.put_many(store, ["s/1", "s/1/deeper", "s/2", "s/2/deeper", "s/3", "s/4"])
        assert list(store.list_keys("s/", start_after="s/1", limit=2)) == ["s/2", "s/3"]

    def test_limit_past_folders(self, store: ObjectStore) -> None:
        """A limited listing's first LIST reaches past up to 32 folders before the keys.

        S3 counts each folder (common prefix) as an entry of a page: a page of ``limit``
        entries would hold a folder and no key, and the key would cost a LIST of its own. The
        event store lists one key to load a stream, whatever folders are in its folder.
        """
        folders = [f"f/{n:02d}/x" for n in range(32)]
        self.put_many(store, [*folders, "f/a", "f/b"])
        before = store.requests
        assert list(store.list_keys("f/", limit=1)) == ["f/a"]
        assert store.requests - before == RequestCounts(list=1)

    @pytest.mark.parametrize("limit", [0, -1])
    def test_limit_below_one_refused(self, store: ObjectStore, limit: int) -> None:
        """A limit below 1 is refused, naming it."""
        with pytest.raises(ValueError, match=f"limit must be at least 1, not {limit}"):
            list(store.list_keys("m/", limit=limit))

    def test_exactly_one_page(self, store: ObjectStore) -> None:
        """Exactly 1,000 keys take one LIST request."""
        keys = [f"m/{n:05d}" for n in range(PAGE)]
        self.put_many(store, keys)
        before = store.requests
        assert list(store.list_keys("m/")) == keys
        assert store.requests - before == RequestCounts(list=1)

    # list_prefixes

    def test_list_prefixes_directly_under(self, store: ObjectStore) -> None:
        """Each folder directly under the prefix is listed once, ending in '/', in byte order."""
        self.put_many(
            store,
            [
                "p/b/1",
                "p/b/2",
                "p/b/deeper/3",  # the same folder, one level down
                "p/a/1",
                "p/a!",  # a key directly under p/: not a folder
                "p/a0/1",  # sorts after everything under p/a/
                "p/\u00e9/1",
                "p/\U0001f600/1",
                "p/\uff21/1",
                "q/c/1",  # another prefix
                "pp/d/1",
            ],
        )
        expected = ["p/a/", "p/a0/", "p/b/", "p/\u00e9/", "p/\uff21/", "p/\U0001f600/"]
        assert sorted(expected, key=utf8) == expected
        assert list(store.list_prefixes("p/")) == expected
        assert list(store.list_prefixes("p/b/")) == ["p/b/deeper/"]
        assert list(store.list_prefixes("p/a/")) == []
        assert list(store.list_prefixes("none/")) == []

    def test_list_prefixes_pages(self, store: ObjectStore) -> None:
        """More than 1,000 folders are all listed, one LIST per page of 1,000 entries."""
        folders = [f"f/{n:05d}/" for n in range(PAGE + 5)]
        self.put_many(store, [f"{folder}x" for folder in folders])
        before = store.requests
        assert list(store.list_prefixes("f/")) == folders
        assert store.requests - before == RequestCounts(list=2)

    def test_list_prefixes_pages_count_keys_too(self, store: ObjectStore) -> None:
        """Keys directly under the prefix fill pages as folders do, as in S3."""
        self.put_many(store, [f"g/{n:05d}" for n in range(PAGE)])
        self.put_many(store, ["g/zz/1"])
        before = store.requests
        assert list(store.list_prefixes("g/")) == ["g/zz/"]
        assert store.requests - before == RequestCounts(list=2)

    # delete

    # replace

    def test_replace_with_the_etag(self, store: ObjectStore) -> None:
        """Replace with the current ETag stores the new body and returns its ETag; one PUT."""
        etag = store.put_if_absent("r/k", b"first")
        before = store.requests
        new_etag = store.replace("r/k", b"second", etag=etag)
        assert store.requests - before == RequestCounts(put=1)
        stored = store.get("r/k")
        assert stored is not None
        assert (stored.body, stored.etag) == (b"second", new_etag)
        assert new_etag != etag

    def test_replace_with_another_etag(self, store: ObjectStore) -> None:
        """Replace with an ETag that is no longer current raises ObjectChanged naming the key,
        and leaves the object as it is.
        """
        old = store.put_if_absent("r/k", b"first")
        store.replace("r/k", b"second", etag=old)
        with pytest.raises(ObjectChanged) as raised:
            store.replace("r/k", b"third", etag=old)
        assert raised.value.key == "r/k"
        stored = store.get("r/k")
        assert stored is not None
        assert stored.body == b"second"

    def test_replace_missing(self, store: ObjectStore) -> None:
        """Replace of a key with no object raises ObjectChanged and creates nothing."""
        with pytest.raises(ObjectChanged):
            store.replace("r/none", b"x", etag='"0123456789abcdef0123456789abcdef"')
        assert store.get("r/none") is None

    def test_delete_removes(self, store: ObjectStore) -> None:
        """After delete, get returns None and the key is not listed; its neighbours stay."""
        self.put_many(store, ["d/1", "d/2", "d/3"])
        store.delete("d/2")
        assert store.get("d/2") is None
        assert list(store.list_keys("d/")) == ["d/1", "d/3"]

    def test_delete_is_idempotent(self, store: ObjectStore) -> None:
        """Deleting a key twice, or a key that never existed, raises nothing."""
        store.put_if_absent("d/1", b"x")
        store.delete("d/1")
        store.delete("d/1")
        store.delete("d/never")
        assert list(store.list_keys("d/")) == []

    def test_put_after_delete(self, store: ObjectStore) -> None:
        """A deleted key is absent again: put_if_absent stores the new body there."""
        store.put_if_absent("d/1", b"old")
        store.delete("d/1")
        store.put_if_absent("d/1", b"new")
        stored = store.get("d/1")
        assert stored is not None
        assert stored.body == b"new"

    # Request counts

    def test_requests_start_at_zero(self, store: ObjectStore) -> None:
        """A fresh store has sent no requests."""
        assert store.requests == RequestCounts()

    def test_one_put_per_put_if_absent(self, store: ObjectStore) -> None:
        """put_if_absent counts one PUT, whether it stores or is refused."""
        before = store.requests
        store.put_if_absent("c/1", b"x")
        assert store.requests - before == RequestCounts(put=1)
        with pytest.raises(ObjectAlreadyExists):
            store.put_if_absent("c/1", b"x")
        assert store.requests - before == RequestCounts(put=2)

    def test_one_get_per_get(self, store: ObjectStore) -> None:
        """Get counts one GET, whether the object is there or not."""
        store.put_if_absent("c/1", b"x")
        before = store.requests
        store.get("c/1")
        assert store.requests - before == RequestCounts(get=1)
        store.get("c/missing")
        assert store.requests - before == RequestCounts(get=2)

    def test_one_delete_per_delete(self, store: ObjectStore) -> None:
        """Delete counts one DELETE, whether the object was there or not."""
        store.put_if_absent("c/1", b"x")
        before = store.requests
        store.delete("c/1")
        assert store.requests - before == RequestCounts(delete=1)
        store.delete("c/1")
        assert store.requests - before == RequestCounts(delete=2)

    def test_one_list_per_page(self, store: ObjectStore) -> None:
        """A listing of less than a page, even an empty one, counts one LIST."""
        self.put_many(store, ["c/1", "c/2"])
        before = store.requests
        assert len(list(store.list_keys("c/"))) == 2
        assert store.requests - before == RequestCounts(list=1)
        assert list(store.list_keys("empty/")) == []
        assert store.requests - before == RequestCounts(list=2)

    # Concurrency

    def test_concurrent_put_if_absent_one_winner(self, store: ObjectStore) -> None:
        """Of many threads racing put_if_absent on one key, exactly one wins, every round."""
        for round_ in range(ROUNDS):
            key = f"race/{round_}"
            barrier = threading.Barrier(RACERS)

            def racer(writer: int, key: str = key, barrier: threading.Barrier = barrier) -> bool:
                body = f"writer {writer}".encode()
                barrier.wait()
                try:
                    store.put_if_absent(key, body)
                except ObjectAlreadyExists:
                    return False
                return True

            before = store.requests
            with ThreadPoolExecutor(RACERS) as pool:
                won = list(pool.map(racer, range(RACERS)))
            assert won.count(True) == 1, f"round {round_}: {won.count(True)} winners"
            stored = store.get(key)
            assert stored is not None
            assert stored.body == f"writer {won.index(True)}".encode()
            assert (store.requests - before).put == RACERS


class EventLoopThread:
    """An asyncio event loop running in a thread of its own, until :meth:`close`.

    :meth:`run` runs a coroutine on it from any other thread and waits for its outcome: what
    lets the sync contract above drive an async store, with its racing threads' requests in
    flight together on the one loop.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="s3es-contract-loop", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop; return what it returns (or raise what it raises)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        """Finish the loop's async generators, stop it and close it."""
        self.run(self.loop.shutdown_asyncgens())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class BlockingObjectStore:
    """An :class:`~s3es.storage.ObjectStore` that sends each request through an async store.

    Each call runs the async store's on ``runner``'s loop and waits for it; a listing awaits
    one key at a time, so its pages are sent as lazily as the async store sends them.
    """

    def __init__(self, inner: AsyncObjectStore, runner: EventLoopThread) -> None:
        self.inner = inner
        self._run = runner.run

    @property
    def requests(self) -> RequestCounts:
        """The async store's request counts."""
        return self.inner.requests

    def put_if_absent(self, key: str, body: bytes) -> str:
        """The async store's put-if-absent."""
        return self._run(self.inner.put_if_absent(key, body))

    def get(self, key: str) -> StoredObject | None:
        """The async store's get."""
        return self._run(self.inner.get(key))

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        """The async store's replace."""
        return self._run(self.inner.replace(key, body, etag=etag))

    def list_keys(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> Iterator[str]:
        """The async store's listing, a key at a time."""
        return self._iterate(self.inner.list_keys(prefix, start_after=start_after, limit=limit))

    def list_prefixes(self, prefix: str) -> Iterator[str]:
        """The async store's listing of common prefixes, a folder at a time."""
        return self._iterate(self.inner.list_prefixes(prefix))

    def delete(self, key: str) -> None:
        """The async store's delete."""
        self._run(self.inner.delete(key))

    def _iterate(self, listing: AsyncIterator[str]) -> Iterator[str]:
        async def step() -> tuple[str] | None:
            async for item in listing:
                return (item,)
            return None

        while (item := self._run(step())) is not None:
            yield item[0]


class AsyncObjectStoreContract(ObjectStoreContract):
    """Every promise of :class:`s3es.aio.AsyncObjectStore`: the suite above, awaited.

    Each test of :class:`ObjectStoreContract` runs on the async store through a blocking view,
    on an event loop in a thread of its own; the races' threads have their requests in flight
    together on that loop. Subclasses override :meth:`open_store`; the ``store`` fixture is the
    blocking view of what it opens.
    """

    def open_store(self) -> contextlib.AbstractAsyncContextManager[AsyncObjectStore]:
        """A fresh, empty async store, open for an ``async with`` block (entered on the loop).

        What a subclass must provide.

        Returns:
            An async context manager whose ``__aenter__`` gives the adapter under test, empty.

        Raises:
            NotImplementedError: The subclass did not override it.
        """
        raise NotImplementedError(f"{type(self).__name__} must override open_store")

    @pytest.fixture
    def event_loop_thread(self) -> Iterator[EventLoopThread]:
        """An event loop in a thread of its own, for one test.

        Yields:
            The loop's runner, closed after the test.
        """
        runner = EventLoopThread()
        yield runner
        runner.close()

    @pytest.fixture
    def async_store(self, event_loop_thread: EventLoopThread) -> Iterator[AsyncObjectStore]:
        """The store :meth:`open_store` opens, open for one test (on the test's loop).

        Args:
            event_loop_thread: The test's loop.

        Yields:
            The async store, closed (``__aexit__``) after the test.
        """
        opened = self.open_store()
        store = event_loop_thread.run(opened.__aenter__())
        try:
            yield store
        finally:
            event_loop_thread.run(opened.__aexit__(None, None, None))

    @pytest.fixture
    def store(
        self, async_store: AsyncObjectStore, event_loop_thread: EventLoopThread
    ) -> ObjectStore:
        return BlockingObjectStore(async_store, event_loop_thread)

    def test_is_an_async_object_store(self, async_store: AsyncObjectStore) -> None:
        """The adapter satisfies the AsyncObjectStore protocol."""
        assert isinstance(async_store, AsyncObjectStore)
