"""The contract of the read-model store port, as one test suite that every adapter subclasses.

In the style of :class:`~s3es.testing.ObjectStoreContract` and of eventsourcing's recorder
tests: a read-model store (S3 keyed documents, SQLite, PostgreSQL, one of your own) proves
itself by passing the same tests. A subclass (named ``Test...`` so that pytest collects it; this
base is not collected) overrides :meth:`ReadModelStoreContract.make_store` to return a fresh,
empty store, or, when making one needs other fixtures, the ``store`` fixture itself.

The suite asserts what :class:`s3es.readmodels.ReadModelStore` promises, for ``atomic``
stores (a commit applies everything or nothing) and for the others (each document carries its
``applied`` map, a deleted one stays as a tombstone, and documents are written before positions,
positions before the shard state). Where the port leaves a choice open, the suite does not
assert it: revisions are opaque strings (two equal bodies may share one), a key is never empty
and at most :data:`LONGEST_KEY` bytes of UTF-8, and no commit moves a position back.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import attrs
import pytest

from s3es.errors import InvalidConfiguration, ReadModelConflict, UnstorableDocument
from s3es.readmodels import (
    Change,
    Generation,
    Generations,
    ReadModelStore,
    ShardState,
    StoredDocument,
)

_T = TypeVar("_T")

#: The projection the suite's documents belong to, and the generations they are kept in.
PROJECTION = "contract"
GENERATION = Generation(PROJECTION, 1, 1)
#: The next generation of the same projection (a rebuild, a bumped SCHEMA).
NEXT = Generation(PROJECTION, 2, 2)
#: Generation 1 of another projection: the same number, kept apart by the projection's name.
ELSEWHERE = Generation("contract-other", 1, 1)

#: The longest key the suite stores, in bytes of UTF-8 (200 ASCII characters, 100 "é", 50
#: emoji). The port states no limit; S3 allows 1,024 bytes for a whole object key, which the S3
#: store shares between its prefix, its layout and the key percent-encoded (up to three times
#: as long).
LONGEST_KEY = 200
#: Threads committing at once, and how many races on one document.
THREADS = 8
ROUNDS = 3

#: Keys whose ascending order (UTF-8 bytes, which is Python's order of ``str``: code points)
#: differs from the orders a store might use instead: case-insensitive ("B" before "a"), a
#: database collation, "natural" number order, UTF-16 code units (U+FF21 before U+1F600 in
#: UTF-8, after it in UTF-16), or the order of the keys once percent-encoded ("/", "-" and "é").
ORDER_PROBES = (
    "a",
    "B",
    "z",
    "é",
    "ß",
    "\uff21",
    "\U0001f600",
    "10",
    "9",
    "~",
    "a b",
    "a+b",
    "a-b",
    "a/b",
    "a.b",
    "a_b",
    "A",
)
#: Keys with spaces, slashes, '%', characters URLs, XML or SQL quote, and unusual Unicode.
UNUSUAL_KEYS = (
    "with space",
    " leading and trailing ",
    "a/b/c",
    "/leading-slash",
    "trailing-slash/",
    "double//slash",
    ".",
    "..",
    "../up",
    "100%",
    "%41%2F",
    "a+b=c&d?e#f",
    "<&>'\"",
    "semi;colon:comma,",
    "back\\slash",
    "tab\there",
    "é composed",
    "e\u0301 decomposed",
    "\U0001f600 emoji",
    "\u2028 line separator",
    "\ufeff bom",
    "日本語のキー",
    "x" * LONGEST_KEY,
    "é" * (LONGEST_KEY // 2),
    "\U0001f600" * (LONGEST_KEY // 4),
    "a/" * (LONGEST_KEY // 2),
)
#: Bodies of every JSON kind, each stored as one document and read back exactly.
BODIES: Mapping[str, Any] = {
    "empty-object": {},
    "empty-list": [],
    "list": [1, "two", 3.5, True, None, {"six": [7]}],
    "nested": {"a": {"b": {"c": {"d": {"e": [{"f": [[[]]]}]}}}}, "deep": [[[[[[1]]]]]]},
    "unicode": {"é": "ü", "emoji": "\U0001f600", "cjk": "日本語", "sep": "\u2028", "q": "\"'\\"},
    "integers": {"zero": 0, "max": 2**53, "min": -(2**53), "small": -1, "big": 2**53 - 1},
    "floats": {"tenth": 0.1, "pi": 3.141592653589793, "huge": 1e300, "tiny": 1.5e-300, "n": -2.5},
    "float-that-looks-whole": {"one": 1.0, "list": [2.0, -0.5]},
    "booleans": {"yes": True, "no": False, "list": [True, False]},
    "nulls": {"none": None, "list": [None, None], "nested": {"none": None}},
    "strings": {"empty": "", "spaces": "  ", "long": "x" * 10_000, "number-like": "1e3"},
    "keys": {"": "empty key", "a b": 1, "1": "numeric key", "%": "percent"},
}


def _exact(body: Any) -> str:
    """The body's JSON with its keys sorted: equal only if kinds are equal too (1 is not 1.0)."""
    return json.dumps(body, sort_keys=True)


_commit_ids = itertools.count()


def shard_state(
    shard: int = 0,
    shards: int = 1,
    *,
    epoch: int = 1,
    complete: bool = False,
    cursors: Mapping[str, int] | None = None,
    revision: str | None = None,
) -> ShardState:
    """A shard state with a commit id of its own."""
    return ShardState(
        shard=shard,
        shards=shards,
        epoch=epoch,
        complete=complete,
        cursors=dict(cursors or {}),
        commit_id=f"contract-{next(_commit_ids)}",
        revision=revision,
    )


def commit(
    store: ReadModelStore,
    generation: Generation,
    changes: Sequence[Change],
    positions: Mapping[str, int] | None = None,
    *,
    shard: int = 0,
    shards: int = 1,
) -> ShardState:
    """Commit as the shard's current projector: from the state's stored revision."""
    current = store.shard_state(generation, shard, shards)
    state = shard_state(shard, shards, revision=None if current is None else current.revision)
    return store.commit(generation, changes, positions or {}, state)


def put(
    store: ReadModelStore,
    generation: Generation,
    key: str,
    body: Any,
    applied: Mapping[str, int] | None = None,
) -> StoredDocument:
    """Write ``body`` at ``key`` from the revision stored now; the document as read back."""
    current = store.get(generation, key)
    revision = None if current is None else current.revision
    commit(store, generation, [Change(key, body, revision, dict(applied or {}))])
    stored = store.get(generation, key)
    assert stored is not None, f"{key!r} was committed but is not there"
    return stored


def _race(count: int, work: Callable[[int], _T]) -> list[_T]:
    """Run ``work(0)`` ... ``work(count - 1)`` on threads released at once; their results."""
    barrier = threading.Barrier(count)

    def run(number: int) -> _T:
        barrier.wait()
        return work(number)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def _nested(levels: int) -> list[Any]:
    """A list nesting ``levels`` levels of lists."""
    outer: list[Any] = []
    inner = outer
    for _ in range(levels - 1):
        inner.append([])
        inner = inner[0]
    return outer


#: Documents in the domain that stores once refused or changed: each kept exactly.
STORABLE: Mapping[str, Any] = {
    "beyond-64-bits": {"up": 2**64, "down": -(2**63) - 1, "huge": 10**300, "list": [2**100]},
    "edges-of-64-bits": {"max": 2**63 - 1, "min": -(2**63), "unsigned": 2**64 - 1},
    "negative-zero": {"z": -0.0, "list": [-0.0, 0.0]},
    "nul-in-strings": {"s": "a\x00b", "k\x00": "key with U+0000", "l": ["\x00"]},
    "control-characters": {"s": "\x01\x1f\x7f\t\n"},
    "a-tuple": {"t": (1, "two", [3])},
    "scalar-body": 5,
    "string-body": "just a string",
    "x" * LONGEST_KEY: {"longest": "ascii"},
    "\u00e9" * (LONGEST_KEY // 2): {"longest": "two-byte"},
    "\U0001f600" * (LONGEST_KEY // 4): {"longest": "four-byte"},
    "\ufffe\uffff\U0010ffff": {"noncharacters": True},
}
#: Documents outside the domain: (key, body, where in the body the problem is; "" the key).
UNSTORABLE: Sequence[Any] = (
    pytest.param("x" * (LONGEST_KEY + 1), {}, "", id="key-201-ascii"),
    pytest.param("\u00e9" * (LONGEST_KEY // 2) + "x", {}, "", id="key-201-two-byte"),
    pytest.param("\U0001f600" * (LONGEST_KEY // 4 + 1), {}, "", id="key-204-four-byte"),
    pytest.param("", {}, "", id="key-empty"),
    pytest.param("a\x00b", {}, "", id="key-nul"),
    pytest.param("\ud800", {}, "", id="key-surrogate"),
    pytest.param("lone\udfff", {}, "", id="key-lone-low-surrogate"),
    pytest.param(7, {}, "", id="key-not-str"),
    pytest.param("nan", {"n": float("nan")}, "$.n", id="nan"),
    pytest.param("inf", {"list": [1, float("inf")]}, "$.list[1]", id="inf"),
    pytest.param("-inf", float("-inf"), "$", id="minus-inf-body"),
    pytest.param("int-key", {"a": {1: "one"}}, "$.a", id="int-object-key"),
    pytest.param("surrogate-value", {"s": "\udc00"}, "$.s", id="surrogate-value"),
    pytest.param("surrogate-key", {"a b": {"\ud83d": 1}}, '$["a b"]', id="surrogate-object-key"),
    pytest.param("a-set", {"s": {1, 2}}, "$.s", id="set"),
    pytest.param("bytes", [b"x"], "$[0]", id="bytes"),
    pytest.param("too-deep", _nested(129), "$" + "[0]" * 128, id="too-deep"),
)


def _in_domain_key(key: object) -> bool:
    """The domain of keys, as the port states it: a str of 1 to 200 bytes of UTF-8 holding no
    U+0000 and no lone surrogate.
    """
    if not isinstance(key, str) or "\x00" in key:
        return False
    try:
        return 1 <= len(key.encode()) <= LONGEST_KEY
    except UnicodeEncodeError:
        return False


def _in_domain(body: object) -> bool:
    """The domain of bodies, as the port states it (for the shallow bodies generated here)."""
    if isinstance(body, dict):
        return all(_in_domain_text(k) and _in_domain(v) for k, v in body.items())
    if isinstance(body, list | tuple):
        return all(_in_domain(value) for value in body)
    if isinstance(body, float):
        return math.isfinite(body)
    if isinstance(body, str):
        return _in_domain_text(body)
    return body is None or isinstance(body, bool | int)


def _in_domain_text(text: object) -> bool:
    if not isinstance(text, str):
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _generated_keys(st: Any) -> Any:
    """Keys: any text (surrogates and U+0000 among it), the longest and one byte more."""
    characters = st.one_of(
        st.characters(codec=None, exclude_categories=()),
        st.sampled_from(["\x00", "\ud800", "\udfff", "A", "a", "\u00e9", "\U0001f600", "%"]),
    )
    return st.one_of(
        st.text(characters, min_size=1, max_size=12),
        st.text(characters, max_size=60),
        st.sampled_from(
            [
                "x" * LONGEST_KEY,
                "X" * LONGEST_KEY,
                "\u00e9" * (LONGEST_KEY // 2),
                "\u00c9" * (LONGEST_KEY // 2),
                "x" * (LONGEST_KEY + 1),
                "\U0001f600" * (LONGEST_KEY // 4),
                "Key",
                "\u00df",
            ]
        ),
    )


def _generated_bodies(st: Any) -> Any:
    """JSON and near-JSON bodies: huge integers, every float, U+0000, surrogates, int keys."""
    text = st.text(
        st.one_of(
            st.characters(codec=None, exclude_categories=()),
            st.sampled_from(["\x00", "\ud800", "\u00e9", "\U0001f600"]),
        ),
        max_size=8,
    )
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(2**200), max_value=2**200),
        st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63), -(2**63) - 1, 10**40]),
        st.floats(),
        st.sampled_from([-0.0, float("nan"), float("inf"), 1e300, 5e-324]),
        text,
    )
    bodies = st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(text, children, max_size=4),
            st.dictionaries(st.integers(), children, min_size=1, max_size=2),
        ),
        max_leaves=12,
    )
    return bodies.filter(lambda body: body is not None)


class ReadModelStoreContract:
    """Every promise of :class:`s3es.readmodels.ReadModelStore`, as a pytest suite.

    Subclass it in a test module and override :meth:`make_store` (or the ``store`` fixture);
    pytest collects and runs every test of the contract on your store (docs/testing.md, "Your
    own read-model store: ReadModelStoreContract").

    Attributes:
        many_streams: Streams whose positions one commit moves and one call reads back: more
            than SQLite's 999 bound parameters of old, and than a page of S3's listings. A
            subclass whose store pays a request per stream over a slow wire may lower it.
        generated_examples: Keys and bodies the generated test of the value domain tries (one
            generation each).
    """

    many_streams = 1_200
    generated_examples = 30

    def make_store(self) -> ReadModelStore:
        """A fresh, empty store: what a subclass must provide.

        Returns:
            The store under test, with nothing in it.

        Raises:
            NotImplementedError: The subclass did not override it.
        """
        raise NotImplementedError(f"{type(self).__name__} must override make_store")

    @pytest.fixture
    def store(self) -> ReadModelStore:
        """The store a test runs on: :meth:`make_store`'s, unless a subclass overrides this.

        Returns:
            The store under test.
        """
        return self.make_store()

    # The port

    def test_is_a_read_model_store(self, store: ReadModelStore) -> None:
        """The adapter satisfies the ReadModelStore protocol and says whether it is atomic."""
        assert isinstance(store, ReadModelStore)
        assert isinstance(store.atomic, bool)

    # Generations

    def test_check_generation(self, store: ReadModelStore) -> None:
        """A generation the store keeps passes the check; one whose name no store could name
        (1,000 characters) raises InvalidConfiguration naming the projection, with no I/O.
        """
        store.check_generation(GENERATION)
        store.check_generation(NEXT)
        long = attrs.evolve(GENERATION, projection="p" * 1_000)
        with pytest.raises(InvalidConfiguration) as raised:
            store.check_generation(long)
        assert "p" * 1_000 in str(raised.value)

    def test_generations_none_stored(self, store: ReadModelStore) -> None:
        """A projection with no record reads as an empty one: no generation, no revision."""
        assert store.generations(PROJECTION) == Generations(PROJECTION)

    def test_generations_first_write(self, store: ReadModelStore) -> None:
        """A first write (revision None) is stored; it and a read give it with a revision."""
        stored = store.set_generations(Generations(PROJECTION, building=GENERATION))
        assert (stored.projection, stored.live, stored.building) == (PROJECTION, None, GENERATION)
        assert isinstance(stored.revision, str)
        assert stored.revision
        assert store.generations(PROJECTION) == stored

    def test_generations_switch(self, store: ReadModelStore) -> None:
        """A write from the stored revision replaces the record: the built generation goes live."""
        first = store.set_generations(Generations(PROJECTION, building=GENERATION))
        switched = store.set_generations(
            Generations(PROJECTION, live=GENERATION, revision=first.revision)
        )
        assert (switched.live, switched.building) == (GENERATION, None)
        assert store.generations(PROJECTION) == switched
        rebuilding = store.set_generations(
            Generations(PROJECTION, live=GENERATION, building=NEXT, revision=switched.revision)
        )
        assert store.generations(PROJECTION) == rebuilding
        assert (rebuilding.live, rebuilding.building) == (GENERATION, NEXT)

    def test_generations_second_first_write_conflicts(self, store: ReadModelStore) -> None:
        """Of two first writes, the second raises ReadModelConflict and the first is kept."""
        first = store.set_generations(Generations(PROJECTION, building=GENERATION))
        with pytest.raises(ReadModelConflict) as raised:
            store.set_generations(Generations(PROJECTION, building=NEXT))
        assert PROJECTION in str(raised.value)
        assert store.generations(PROJECTION) == first

    def test_generations_stale_revision_conflicts(self, store: ReadModelStore) -> None:
        """A write from a revision that was replaced raises ReadModelConflict; nothing changes."""
        first = store.set_generations(Generations(PROJECTION, building=GENERATION))
        second = store.set_generations(
            Generations(PROJECTION, live=GENERATION, revision=first.revision)
        )
        with pytest.raises(ReadModelConflict) as raised:
            store.set_generations(Generations(PROJECTION, building=NEXT, revision=first.revision))
        assert PROJECTION in str(raised.value)
        assert store.generations(PROJECTION) == second

    def test_generations_per_projection(self, store: ReadModelStore) -> None:
        """Each projection has its own record."""
        mine = store.set_generations(Generations(PROJECTION, live=GENERATION))
        assert store.generations(ELSEWHERE.projection) == Generations(ELSEWHERE.projection)
        theirs = store.set_generations(Generations(ELSEWHERE.projection, building=ELSEWHERE))
        assert store.generations(PROJECTION) == mine
        assert store.generations(ELSEWHERE.projection) == theirs

    # Documents

    def test_absent_document(self, store: ReadModelStore) -> None:
        """A key never written reads as None, and an empty generation lists nothing."""
        assert store.get(GENERATION, "absent") is None
        assert list(store.documents(GENERATION)) == []
        put(store, GENERATION, "present", {"n": 1})
        assert store.get(GENERATION, "absent") is None
        assert store.get(GENERATION, "presen") is None
        assert store.get(GENERATION, "present/") is None

    def test_get_many_reads_what_get_reads(self, store: ReadModelStore) -> None:
        """``get_many`` gives the documents that exist among the keys, as ``get`` gives each;
        absent keys and other generations' documents are left out; a key asked twice, once.
        """
        assert store.get_many(GENERATION, ["a", "b"]) == {}
        keys = [f"doc-{n:04d}" for n in range(1_200)]  # more than a page of the SQL stores
        commit(store, GENERATION, [Change(key, {"n": key}, None) for key in keys])
        put(store, NEXT, "elsewhere", {"n": 0})
        asked = [*keys[::7], "absent", keys[0], "elsewhere"]
        found = store.get_many(GENERATION, asked)
        assert sorted(found) == sorted(set(keys[::7]))
        for key, document in found.items():
            assert document == store.get(GENERATION, key)

    def test_create(self, store: ReadModelStore) -> None:
        """A change from revision None creates the document: its key, body and a revision."""
        commit(store, GENERATION, [Change("doc", {"n": 1}, None)])
        stored = store.get(GENERATION, "doc")
        assert stored is not None
        assert (stored.key, stored.body) == ("doc", {"n": 1})
        assert isinstance(stored.revision, str)
        assert stored.revision

    def test_create_over_existing_conflicts(self, store: ReadModelStore) -> None:
        """A second create of a key raises ReadModelConflict naming it; the first is kept."""
        first = put(store, GENERATION, "doc", {"n": 1})
        with pytest.raises(ReadModelConflict) as raised:
            commit(store, GENERATION, [Change("doc", {"n": 2}, None)])
        assert raised.value.key == "doc"
        assert raised.value.store
        assert store.get(GENERATION, "doc") == first

    def test_update_from_read_revision(self, store: ReadModelStore) -> None:
        """A change from the revision read replaces the body and gives a new revision."""
        first = put(store, GENERATION, "doc", {"n": 1})
        commit(store, GENERATION, [Change("doc", {"n": 2}, first.revision)])
        stored = store.get(GENERATION, "doc")
        assert stored is not None
        assert stored.body == {"n": 2}
        assert stored.revision != first.revision

    def test_update_from_stale_revision_conflicts(self, store: ReadModelStore) -> None:
        """A change from a revision that was replaced raises ReadModelConflict naming the key;
        the document is left as the other writer wrote it.
        """
        first = put(store, GENERATION, "doc", {"n": 1})
        second = put(store, GENERATION, "doc", {"n": 2})
        with pytest.raises(ReadModelConflict) as raised:
            commit(store, GENERATION, [Change("doc", {"n": 3}, first.revision)])
        assert raised.value.key == "doc"
        assert store.get(GENERATION, "doc") == second

    def test_update_of_deleted_document_conflicts(self, store: ReadModelStore) -> None:
        """A change from a revision whose document was deleted since raises ReadModelConflict
        and brings nothing back.
        """
        first = put(store, GENERATION, "doc", {"n": 1})
        commit(store, GENERATION, [Change("doc", None, first.revision)])
        with pytest.raises(ReadModelConflict) as raised:
            commit(store, GENERATION, [Change("doc", {"n": 2}, first.revision)])
        assert raised.value.key == "doc"
        self._assert_deleted(store, "doc", {})

    def test_delete(self, store: ReadModelStore) -> None:
        """A change with body None from the read revision deletes the document: not listed, and
        read as None (atomic) or as a tombstone keeping the change's applied map; its neighbours
        stay.
        """
        put(store, GENERATION, "doc-1", {"n": 1})
        doomed = put(store, GENERATION, "doc-2", {"n": 2}, {"order/2": 1})
        put(store, GENERATION, "doc-3", {"n": 3})
        commit(store, GENERATION, [Change("doc-2", None, doomed.revision, {"order/2": 2})])
        self._assert_deleted(store, "doc-2", {"order/2": 2})
        assert [document.key for document in store.documents(GENERATION)] == ["doc-1", "doc-3"]
        tombstone = store.get(GENERATION, "doc-2")
        if tombstone is not None:
            assert tombstone.revision != doomed.revision

    @staticmethod
    def _assert_deleted(store: ReadModelStore, key: str, applied: Mapping[str, int]) -> None:
        """``key`` reads as deleted: None if the store is atomic, else a tombstone (body None)
        with ``applied``.
        """
        stored = store.get(GENERATION, key)
        if store.atomic:
            assert stored is None, f"{key!r} was deleted: {stored!r}"
            return
        assert stored is not None, f"{key!r} was deleted but left no tombstone"
        assert (stored.key, stored.body, dict(stored.applied)) == (key, None, dict(applied))
        assert stored.revision

    def test_delete_from_stale_revision_conflicts(self, store: ReadModelStore) -> None:
        """A delete from a revision that was replaced raises ReadModelConflict naming the key;
        the document stays as the other writer wrote it.
        """
        first = put(store, GENERATION, "doc", {"n": 1})
        second = put(store, GENERATION, "doc", {"n": 2})
        with pytest.raises(ReadModelConflict) as raised:
            commit(store, GENERATION, [Change("doc", None, first.revision)])
        assert raised.value.key == "doc"
        assert store.get(GENERATION, "doc") == second

    def test_create_after_delete(self, store: ReadModelStore) -> None:
        """A deleted document is created anew by a change from the revision read: None (atomic)
        or the tombstone's. It is listed again.
        """
        first = put(store, GENERATION, "doc", {"n": 1})
        commit(store, GENERATION, [Change("doc", None, first.revision, {"order/1": 2})])
        deleted = store.get(GENERATION, "doc")
        revision = None if deleted is None else deleted.revision
        commit(store, GENERATION, [Change("doc", {"n": 2}, revision, {"order/1": 3})])
        stored = store.get(GENERATION, "doc")
        assert stored is not None
        assert stored.body == {"n": 2}
        assert dict(stored.applied) == ({} if store.atomic else {"order/1": 3})
        assert list(store.documents(GENERATION)) == [stored]

    def test_delete_of_tombstone_from_stale_revision_conflicts(self, store: ReadModelStore) -> None:
        """A second delete from the revision the first deleted raises ReadModelConflict."""
        first = put(store, GENERATION, "doc", {"n": 1})
        commit(store, GENERATION, [Change("doc", None, first.revision, {"order/1": 2})])
        with pytest.raises(ReadModelConflict) as raised:
            commit(store, GENERATION, [Change("doc", None, first.revision, {"order/1": 9})])
        assert raised.value.key == "doc"
        self._assert_deleted(store, "doc", {"order/1": 2})

    def test_many_changes_in_one_commit(self, store: ReadModelStore) -> None:
        """One commit creates, updates and deletes several documents."""
        kept = put(store, GENERATION, "kept", {"n": 0})
        doomed = put(store, GENERATION, "doomed", {"n": 0})
        changes = [
            Change("kept", {"n": 1}, kept.revision),
            Change("doomed", None, doomed.revision),
            *(Change(f"new-{number}", {"n": number}, None) for number in range(20)),
        ]
        commit(store, GENERATION, changes)
        listed = {document.key: document.body for document in store.documents(GENERATION)}
        assert listed == {"kept": {"n": 1}} | {f"new-{n}": {"n": n} for n in range(20)}

    def test_documents_in_ascending_key_order(self, store: ReadModelStore) -> None:
        """Documents are listed in ascending order of their keys' UTF-8 bytes (which is Python's
        order of str), whatever order they were written in, each as get reads it.
        """
        keys = list(ORDER_PROBES)
        # The probes are chosen so that this order is not case-insensitive or UTF-16 order.
        assert sorted(keys, key=str.encode) != sorted(keys, key=str.casefold)
        assert sorted(keys, key=str.encode) != sorted(keys, key=lambda k: k.encode("utf-16-be"))
        random.Random(11).shuffle(keys)
        commit(store, GENERATION, [Change(key, {"key": key}, None) for key in keys])
        listed = list(store.documents(GENERATION))
        assert [document.key for document in listed] == sorted(keys, key=str.encode)
        for document in listed:
            assert document == store.get(GENERATION, document.key)
            assert document.body == {"key": document.key}

    def test_documents_of_one_generation(self, store: ReadModelStore) -> None:
        """Each generation lists and reads only its own documents, also for equal keys."""
        for generation in (GENERATION, NEXT, ELSEWHERE):
            commit(
                store,
                generation,
                [
                    Change("shared", {"in": generation.number}, None),
                    Change(f"only-{generation.projection}-{generation.number}", {}, None),
                ],
            )
        for generation in (GENERATION, NEXT, ELSEWHERE):
            own = f"only-{generation.projection}-{generation.number}"
            listed = [document.key for document in store.documents(generation)]
            assert listed == sorted(["shared", own], key=str.encode)
            shared = store.get(generation, "shared")
            assert shared is not None
            assert shared.body == {"in": generation.number}
        assert store.get(NEXT, f"only-{PROJECTION}-1") is None
        assert store.get(ELSEWHERE, f"only-{PROJECTION}-1") is None

    def test_unusual_keys(self, store: ReadModelStore) -> None:
        """Keys with spaces, slashes, '%', quotes, unusual Unicode, or LONGEST_KEY bytes long
        are stored, read, updated and listed as they are.
        """
        assert max(len(key.encode()) for key in UNUSUAL_KEYS) == LONGEST_KEY
        commit(store, GENERATION, [Change(key, {"key": key}, None) for key in UNUSUAL_KEYS])
        for key in UNUSUAL_KEYS:
            stored = store.get(GENERATION, key)
            assert stored is not None, key
            assert (stored.key, stored.body) == (key, {"key": key})
        listed = list(store.documents(GENERATION))
        assert [document.key for document in listed] == sorted(UNUSUAL_KEYS, key=str.encode)
        commit(store, GENERATION, [Change(d.key, {"again": d.key}, d.revision) for d in listed])
        for key in UNUSUAL_KEYS:
            stored = store.get(GENERATION, key)
            assert stored is not None, key
            assert stored.body == {"again": key}

    def test_keys_are_exact(self, store: ReadModelStore) -> None:
        """Keys that differ only by case, Unicode normalisation or a trailing space are different
        documents.
        """
        keys = ("Key", "key", "é", "e\u0301", "key ")
        commit(store, GENERATION, [Change(key, {"key": key}, None) for key in keys])
        for key in keys:
            stored = store.get(GENERATION, key)
            assert stored is not None, key
            assert stored.body == {"key": key}

    def test_json_bodies_round_trip_exactly(self, store: ReadModelStore) -> None:
        """Bodies of every JSON kind are read back equal and of the same kinds (1.0 stays a
        float, 2**53 an exact int, True a bool), by get and by documents.
        """
        commit(store, GENERATION, [Change(key, body, None) for key, body in BODIES.items()])
        for key, body in BODIES.items():
            stored = store.get(GENERATION, key)
            assert stored is not None, key
            assert stored.body == body, key
            assert _exact(stored.body) == _exact(body), key
        listed = {document.key: document.body for document in store.documents(GENERATION)}
        assert {key: _exact(body) for key, body in listed.items()} == {
            key: _exact(body) for key, body in BODIES.items()
        }

    # The value domain: what every store keeps, and what every store refuses the same way

    def test_storable_values_round_trip(self, store: ReadModelStore) -> None:
        """Values the event store takes are kept exactly by every store: integers beyond 64
        bits, -0.0, U+0000 in strings and object keys, the longest keys (200 bytes of UTF-8).
        """
        commit(store, GENERATION, [Change(key, body, None) for key, body in STORABLE.items()])
        for key, body in STORABLE.items():
            stored = store.get(GENERATION, key)
            assert stored is not None, key
            assert _exact(stored.body) == _exact(body), key
        listed = {document.key: _exact(document.body) for document in store.documents(GENERATION)}
        assert listed == {key: _exact(body) for key, body in STORABLE.items()}

    @pytest.mark.parametrize(("key", "body", "path"), UNSTORABLE)
    def test_unstorable_values_refused_before_writing(
        self, store: ReadModelStore, key: Any, body: Any, path: str
    ) -> None:
        """A document outside the domain (a key too long, empty, with U+0000 or a lone
        surrogate; a body with NaN, an infinity, a key that is not a str, a lone surrogate, a
        value that is not JSON) is refused by ``commit`` with UnstorableDocument naming the key
        and where in the body, before anything of the commit is written.
        """
        put(store, GENERATION, "before", {"n": 0})
        with pytest.raises(UnstorableDocument) as raised:
            self._refused_commit(store, GENERATION, key, body)
        assert (raised.value.path, bool(raised.value.reason)) == (path, True)
        if isinstance(key, str) and not path:
            assert raised.value.key == key
        if path:
            assert raised.value.key == key
            assert repr(key) in str(raised.value)
            assert path in str(raised.value)

    def test_unstorable_keys_read_as_absent(self, store: ReadModelStore) -> None:
        """A key no document can have reads as absent, by get and get_many: no store fails."""
        put(store, GENERATION, "x" * LONGEST_KEY, {"n": 1})
        unstorable = ["x" * (LONGEST_KEY + 1), "", "a\x00b", "\ud800", "é" * 101]
        for key in unstorable:
            assert store.get(GENERATION, key) is None, key
        assert store.get_many(GENERATION, [*unstorable, "x" * LONGEST_KEY]).keys() == {
            "x" * LONGEST_KEY
        }

    def _refused_commit(
        self, store: ReadModelStore, generation: Generation, key: Any, body: Any
    ) -> None:
        """Commit a good change, then ``key`` and ``body``, with a position; assert, once it
        raised, that the store holds what it held before, and re-raise.
        """
        documents = list(store.documents(generation))
        state = store.shard_state(generation, 0, 1)
        changes = [Change("a-good-one", {"n": 1}, None, {"order/1": 1}), Change(key, body, None)]
        try:
            store.commit(
                generation,
                changes,
                {"order/1": 1},
                shard_state(revision=None if state is None else state.revision),
            )
        except UnstorableDocument:
            assert list(store.documents(generation)) == documents
            assert store.get(generation, "a-good-one") is None
            assert store.positions(generation, ["order/1"]) == {}
            assert store.shard_state(generation, 0, 1) == state
            raise

    def test_generated_values_kept_or_refused_alike(self, store: ReadModelStore) -> None:
        """Generated keys and bodies (integers beyond 64 bits, floats with -0.0, NaN and the
        infinities, U+0000, lone surrogates, non-ASCII, keys that are not str, the longest
        keys, case variants of a key) are kept and read back equal if the domain holds them,
        and refused at commit with UnstorableDocument, the store unchanged, if it does not.
        """
        from hypothesis import HealthCheck, given, settings  # noqa: PLC0415 - when used
        from hypothesis import strategies as st  # noqa: PLC0415

        numbers = itertools.count(100)

        @settings(
            max_examples=self.generated_examples,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(key=_generated_keys(st), body=_generated_bodies(st))
        def check(key: str, body: Any) -> None:
            generation = Generation(PROJECTION, next(numbers), 1)
            variants = sorted({key, key.upper(), key.lower(), key.swapcase()})
            if not (_in_domain_key(key) and _in_domain(body)):
                with pytest.raises(UnstorableDocument):
                    self._refused_commit(store, generation, key, body)
                return
            storable = [variant for variant in variants if _in_domain_key(variant)]
            changes = [Change(variant, [variant, body], None) for variant in storable]
            commit(store, generation, changes)
            for variant in storable:
                stored = store.get(generation, variant)
                assert stored is not None, variant
                assert _exact(stored.body) == _exact([variant, body])
            listed = [document.key for document in store.documents(generation)]
            assert listed == sorted(storable, key=str.encode)

        check()

    # Positions

    def test_positions_absent(self, store: ReadModelStore) -> None:
        """Streams with no position are not in the answer; asking for none answers nothing."""
        assert store.positions(GENERATION, ["order/1", "order/2"]) == {}
        commit(store, GENERATION, [], {"order/1": 3})
        assert store.positions(GENERATION, ["order/2", "customer/1"]) == {}
        assert store.positions(GENERATION, []) == {}

    def test_positions_set_by_commit(self, store: ReadModelStore) -> None:
        """A commit sets the positions it carries, with or without documents."""
        commit(store, GENERATION, [Change("doc", {}, None)], {"order/1": 3, "order/2": 1})
        commit(store, GENERATION, [], {"customer/7": 12})
        asked = ["order/1", "order/2", "customer/7", "order/3"]
        assert store.positions(GENERATION, asked) == {"order/1": 3, "order/2": 1, "customer/7": 12}

    def test_positions_move_forward(self, store: ReadModelStore) -> None:
        """A later commit moves a stream's position on; the others keep theirs."""
        commit(store, GENERATION, [], {"order/1": 3, "order/2": 1})
        commit(store, GENERATION, [], {"order/1": 7})
        assert store.positions(GENERATION, ["order/1", "order/2"]) == {"order/1": 7, "order/2": 1}

    def test_only_asked_positions(self, store: ReadModelStore) -> None:
        """Only the streams asked for are answered, even when others have positions."""
        commit(store, GENERATION, [], {"order/1": 3, "order/2": 1, "order/10": 4})
        assert store.positions(GENERATION, ["order/1"]) == {"order/1": 3}
        assert store.positions(GENERATION, {"order/10", "order/2"}) == {"order/10": 4, "order/2": 1}

    def test_positions_of_many_streams(self, store: ReadModelStore) -> None:
        """One commit moves many_streams positions, and one call reads them all back."""
        streams = {f"order/{number:05d}": number + 1 for number in range(self.many_streams)}
        commit(store, GENERATION, [], streams)
        assert store.positions(GENERATION, list(streams)) == streams
        asked = [*list(streams)[::2], *(f"absent/{n}" for n in range(self.many_streams // 2))]
        assert store.positions(GENERATION, asked) == dict(list(streams.items())[::2])

    def test_positions_from_every_shard(self, store: ReadModelStore) -> None:
        """Positions committed by different shards are all read by one call."""
        commit(store, GENERATION, [], {"order/1": 2}, shard=0, shards=2)
        commit(store, GENERATION, [], {"order/2": 5}, shard=1, shards=2)
        assert store.positions(GENERATION, ["order/1", "order/2"]) == {"order/1": 2, "order/2": 5}

    def test_positions_per_generation(self, store: ReadModelStore) -> None:
        """Each generation has its own positions."""
        commit(store, GENERATION, [], {"order/1": 3})
        commit(store, NEXT, [], {"order/1": 9, "order/2": 1})
        commit(store, ELSEWHERE, [], {"order/2": 4})
        asked = ["order/1", "order/2"]
        assert store.positions(GENERATION, asked) == {"order/1": 3}
        assert store.positions(NEXT, asked) == {"order/1": 9, "order/2": 1}
        assert store.positions(ELSEWHERE, asked) == {"order/2": 4}

    # Shard states

    def test_shard_state_absent(self, store: ReadModelStore) -> None:
        """A shard that never committed has no state."""
        assert store.shard_state(GENERATION, 0, 1) is None

    def test_shard_state_round_trip(self, store: ReadModelStore) -> None:
        """A commit stores the state; it returns and a read gives every field, with a revision."""
        cursors = {"order": 1_700_000_000_123, "customer": 5}
        written = ShardState(2, 4, epoch=3, complete=True, cursors=cursors, commit_id="c-1")
        stored = store.commit(GENERATION, [], {}, written)
        assert attrs_without_revision(stored) == attrs_without_revision(written)
        assert isinstance(stored.revision, str)
        assert stored.revision
        assert store.shard_state(GENERATION, 2, 4) == stored

    def test_shard_state_defaults_round_trip(self, store: ReadModelStore) -> None:
        """A state with no cursors, not complete, round-trips as it was written."""
        written = ShardState(0, 1, epoch=1)
        stored = store.commit(GENERATION, [], {}, written)
        assert attrs_without_revision(stored) == attrs_without_revision(written)
        assert store.shard_state(GENERATION, 0, 1) == stored

    def test_shard_state_is_conditional(self, store: ReadModelStore) -> None:
        """A commit from the stored state's revision is accepted; a second first commit, or one
        from a replaced revision (a fenced projector's), raises ReadModelConflict.
        """
        first = store.commit(GENERATION, [], {}, shard_state(epoch=1))
        with pytest.raises(ReadModelConflict):
            store.commit(GENERATION, [], {}, shard_state(epoch=1))
        assert store.shard_state(GENERATION, 0, 1) == first
        second = store.commit(GENERATION, [], {}, shard_state(epoch=2, revision=first.revision))
        assert second.epoch == 2
        assert second.revision != first.revision
        with pytest.raises(ReadModelConflict):
            store.commit(GENERATION, [], {}, shard_state(epoch=1, revision=first.revision))
        assert store.shard_state(GENERATION, 0, 1) == second
        third = store.commit(GENERATION, [], {}, shard_state(epoch=2, revision=second.revision))
        assert store.shard_state(GENERATION, 0, 1) == third

    def test_shard_states_independent(self, store: ReadModelStore) -> None:
        """Each (shard, shards) of each generation has a state of its own."""
        places = [(GENERATION, 0, 1), (GENERATION, 0, 2), (GENERATION, 1, 2), (GENERATION, 0, 4)]
        places += [(NEXT, 0, 1), (ELSEWHERE, 0, 1)]
        stored: dict[tuple[Generation, int, int], ShardState] = {}
        for epoch, (generation, shard, shards) in enumerate(places, start=1):
            assert store.shard_state(generation, shard, shards) is None
            written = ShardState(shard, shards, epoch=epoch, cursors={"order": epoch})
            stored[generation, shard, shards] = store.commit(generation, [], {}, written)
        for (generation, shard, shards), state in stored.items():
            assert store.shard_state(generation, shard, shards) == state
        assert store.shard_state(GENERATION, 1, 4) is None

    # Atomicity, and the applied maps of stores that are not atomic

    def test_applied(self, store: ReadModelStore) -> None:
        """A store that is not atomic keeps each document's applied map (get and documents read
        it; an update replaces it); an atomic store's documents have an empty one.
        """
        put(store, GENERATION, "doc", {"n": 1}, {"order/1": 3, "customer/9": 1})
        updated = put(store, GENERATION, "doc", {"n": 2}, {"order/1": 4, "customer/9": 1})
        expected = {} if store.atomic else {"order/1": 4, "customer/9": 1}
        assert dict(updated.applied) == expected
        (listed,) = store.documents(GENERATION)
        assert dict(listed.applied) == expected

    def test_document_conflict_moves_no_position(self, store: ReadModelStore) -> None:
        """A commit whose last change conflicts raises ReadModelConflict naming that key, and
        moves no position and stores no shard state. An atomic store wrote no document either;
        a store that is not atomic may have written the changes before the conflict, each with
        its applied map (the projector skips, per document, what that map holds).
        """
        stale = put(store, GENERATION, "taken", {"n": 1})
        taken = put(store, GENERATION, "taken", {"n": 2})
        applied = {"order/1": 4}
        changes = [
            Change("new-1", {"n": 1}, None, applied),
            Change("new-2", {"n": 2}, None, applied),
            Change("taken", {"n": 3}, stale.revision, applied),
        ]
        before = store.shard_state(GENERATION, 0, 1)
        assert before is not None
        with pytest.raises(ReadModelConflict) as raised:
            store.commit(GENERATION, changes, {"order/1": 4}, shard_state(revision=before.revision))
        assert raised.value.key == "taken"
        assert store.get(GENERATION, "taken") == taken
        assert store.positions(GENERATION, ["order/1"]) == {}
        assert store.shard_state(GENERATION, 0, 1) == before
        self._assert_partly_written(store, changes[:2])

    def test_state_conflict_writes_nothing_if_atomic(self, store: ReadModelStore) -> None:
        """A commit whose shard state moved since it was read (a fenced projector's) raises
        ReadModelConflict and leaves the newer state. An atomic store wrote no document and no
        position; one that is not atomic may have written documents, each with its applied map.
        """
        fenced = store.commit(GENERATION, [], {}, shard_state(epoch=1))
        newer = store.commit(GENERATION, [], {}, shard_state(epoch=2, revision=fenced.revision))
        changes = [Change("new-1", {"n": 1}, None, {"order/1": 1})]
        with pytest.raises(ReadModelConflict):
            store.commit(GENERATION, changes, {"order/1": 1}, shard_state(revision=fenced.revision))
        assert store.shard_state(GENERATION, 0, 1) == newer
        if store.atomic:
            assert store.positions(GENERATION, ["order/1"]) == {}
        self._assert_partly_written(store, changes)

    @staticmethod
    def _assert_partly_written(store: ReadModelStore, changes: Sequence[Change]) -> None:
        """After a refused commit: none of ``changes`` if atomic; else each absent, or as written
        with its applied map.
        """
        for change in changes:
            stored = store.get(GENERATION, change.key)
            if store.atomic or stored is None:
                assert stored is None, f"{change.key!r} written by a refused atomic commit"
                continue
            assert (stored.body, dict(stored.applied)) == (change.body, dict(change.applied))

    # drop

    def test_drop(self, store: ReadModelStore) -> None:
        """Drop removes the generation's documents, positions and shard states, and nothing of
        the other generations.
        """
        for generation in (GENERATION, NEXT, ELSEWHERE):
            changes = [Change(f"doc-{n}", {"n": n}, None) for n in range(3)]
            commit(store, generation, changes, {"order/1": 2}, shard=0, shards=2)
            commit(store, generation, [], {"order/2": 3}, shard=1, shards=2)
        kept = {
            generation: (
                list(store.documents(generation)),
                store.shard_state(generation, 0, 2),
                store.shard_state(generation, 1, 2),
            )
            for generation in (NEXT, ELSEWHERE)
        }
        store.drop(GENERATION)
        assert list(store.documents(GENERATION)) == []
        assert store.get(GENERATION, "doc-0") is None
        assert store.positions(GENERATION, ["order/1", "order/2"]) == {}
        assert store.shard_state(GENERATION, 0, 2) is None
        assert store.shard_state(GENERATION, 1, 2) is None
        for generation, (documents, first, second) in kept.items():
            assert list(store.documents(generation)) == documents
            assert store.shard_state(generation, 0, 2) == first
            assert store.shard_state(generation, 1, 2) == second
            positions = store.positions(generation, ["order/1", "order/2"])
            assert positions == {"order/1": 2, "order/2": 3}

    def test_drop_then_build_again(self, store: ReadModelStore) -> None:
        """A dropped generation is empty again: a first commit (state revision None) succeeds."""
        commit(store, GENERATION, [Change("doc", {"n": 1}, None)], {"order/1": 1})
        store.drop(GENERATION)
        store.commit(GENERATION, [Change("doc", {"n": 2}, None)], {"order/1": 1}, shard_state())
        stored = store.get(GENERATION, "doc")
        assert stored is not None
        assert stored.body == {"n": 2}
        assert store.positions(GENERATION, ["order/1"]) == {"order/1": 1}

    def test_drop_of_empty_generation(self, store: ReadModelStore) -> None:
        """Dropping a generation that holds nothing, or dropping it twice, raises nothing."""
        commit(store, NEXT, [Change("doc", {}, None)])
        store.drop(GENERATION)
        store.drop(NEXT)
        store.drop(NEXT)
        assert list(store.documents(NEXT)) == []

    # Threads

    def test_concurrent_commits_all_land(self, store: ReadModelStore) -> None:
        """THREADS threads committing at once, each its own shard, document and stream: every
        commit lands.
        """

        def work(number: int) -> ShardState:
            change = Change(f"doc-{number}", {"n": number}, None)
            return commit(
                store, GENERATION, [change], {f"order/{number}": 1}, shard=number, shards=THREADS
            )

        states = _race(THREADS, work)
        listed = {document.key: document.body for document in store.documents(GENERATION)}
        assert listed == {f"doc-{n}": {"n": n} for n in range(THREADS)}
        streams = [f"order/{n}" for n in range(THREADS)]
        assert store.positions(GENERATION, streams) == dict.fromkeys(streams, 1)
        for number, state in enumerate(states):
            assert store.shard_state(GENERATION, number, THREADS) == state

    def test_racing_on_one_document_one_wins(self, store: ReadModelStore) -> None:
        """THREADS threads changing one document from the same revision at once: exactly one
        wins, every other raises ReadModelConflict naming the key and moves no position.
        """
        for round_ in range(ROUNDS):
            key = f"race-{round_}"
            read = put(store, GENERATION, key, {"winner": None})

            def work(
                number: int, key: str = key, read: StoredDocument = read, round_: int = round_
            ) -> ReadModelConflict | None:
                change = Change(key, {"winner": number}, read.revision)
                stream = f"order/{round_}-{number}"
                try:
                    commit(store, GENERATION, [change], {stream: 1}, shard=number, shards=THREADS)
                except ReadModelConflict as conflict:
                    return conflict
                return None

            outcomes = _race(THREADS, work)
            won = [number for number, outcome in enumerate(outcomes) if outcome is None]
            assert len(won) == 1, f"round {round_}: writers {won} won"
            keys = {outcome.key for outcome in outcomes if outcome is not None}
            assert keys == {key}, f"round {round_}: conflicts named {keys}, not {key!r}"
            (winner,) = won
            stored = store.get(GENERATION, key)
            assert stored is not None
            assert stored.body == {"winner": winner}
            streams = [f"order/{round_}-{number}" for number in range(THREADS)]
            assert store.positions(GENERATION, streams) == {f"order/{round_}-{winner}": 1}


def attrs_without_revision(state: ShardState) -> tuple[Any, ...]:
    """A shard state's fields but its revision, to compare what was written with what is read."""
    return (
        state.shard,
        state.shards,
        state.epoch,
        state.complete,
        dict(state.cursors),
        state.commit_id,
    )
