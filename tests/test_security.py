"""Hostile input: names crafted to leave a tenant's prefix, oversized keys and chunks, stored bytes
that are not a chunk, and event types that are not registered.

What must hold: no object is ever written outside ``{prefix}/{type}/{id}/`` (or the prefix's own
change feed), and a refused name sends no request; a chunk too large to load is never written,
and one found stored is corrupt; any stored bytes read as a chunk or raise CorruptChunk naming
the key, never RecursionError, MemoryError or anything else; an unknown event type stops the
read that meets it, names the type and the key, and nothing is written.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from s3es import (
    CommandHandler,
    CorruptChunk,
    EventStore,
    InMemoryObjectStore,
    InvalidConfiguration,
    Loaded,
    Repository,
    S3ObjectStore,
    StreamName,
)
from s3es._eventstore.chunk import MAX_JSON_DEPTH, Chunk, decode_chunk, encode_chunk
from s3es._eventstore.store import DEFAULT_MAX_CHUNK_BYTES
from s3es._storage.keys import MAX_KEY_BYTES
from s3es.errors import ChunkTooLarge, InvalidStreamName
from s3es.eventstore import Snapshot
from s3es.metering import RequestCounts
from s3es.ops import compact
from s3es.storage import ObjectStore
from tests.aggregates import (
    Counter,
    CounterState,
    CounterV2,
    Decrement,
    Increment,
    IncrementEach,
    Incremented,
)

TENANT = "tenants/t1"
STREAM_ID = "c-1"
STREAM = StreamName("counter", STREAM_ID)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
#: Another tenant's stream, written first: it must come out of every attempt untouched.
VICTIM_PREFIX = "tenants/t2"

#: Pieces of names that try to leave a folder, hide a separator, or fool a reader.
FRAGMENTS = [
    "..",
    ".",
    "/",
    "\\",
    "%2F",
    "%2f",
    "%2e%2e",
    "%00",
    "%5C",
    "\u2215",  # DIVISION SLASH
    "\uff0f",  # FULLWIDTH SOLIDUS
    "\u2044",  # FRACTION SLASH
    "\u2025",  # TWO DOT LEADER
    "\uff0e",  # FULLWIDTH FULL STOP
    "\x00",
    "\n",
    "\r",
    "\t",
    "\x7f",
    "\x85",
    "\u2028",
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\ufeff",
    "\u200b",
    "\ud800",
    "\ufffe",
    "?list-type=2",
    "#",
    "&prefix=",
    "+",
    " ",
    "~",
    "*",
    "counter",
    "t2",
    "tenants",
    "e\u0301",
    "\U0001f600",
]

#: Names tried over HTTP too: each fragment alone, and combinations that look like escapes.
CRAFTED_IDS = [
    *FRAGMENTS,
    "../t2/counter/victim",
    "..%2F..%2Ft2",
    "..\\..\\t2",
    "\u2025\u2215t2",
    "\uff0e\uff0e\uff0ft2",
    "victim\x00",
    "a\r\nb",
    "x" * 1_000,
    "\u00e9" * 500,
]


def crafted_ids() -> st.SearchStrategy[str]:
    """Stream ids built from escape fragments and any text, and some very long ones."""
    pieces = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3))
    long = st.builds(
        lambda piece, times: piece * times,
        st.sampled_from(["x", "\u00e9", "\U0001f600", "../"]),
        st.integers(min_value=200, max_value=1_100),
    )
    return st.one_of(st.lists(pieces, max_size=6).map("".join), long)


def all_keys(objects: ObjectStore) -> set[str]:
    """Every key in the store, listed without a delimiter."""
    if isinstance(objects, InMemoryObjectStore):
        return set(objects._objects)
    assert isinstance(objects, S3ObjectStore)
    pages = objects.client.get_paginator("list_objects_v2").paginate(Bucket=objects.bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def acceptable(name: str) -> bool:
    """What a key segment may be: not empty, '.' or '..', no '/', control or surrogate."""
    return (
        name not in {"", ".", ".."}
        and "/" not in name
        and not any(unicodedata.category(char) in {"Cc", "Cs"} for char in name)
    )


def _store(objects: ObjectStore, prefix: str, *, feed: bool = False) -> EventStore:
    return EventStore(objects, prefix=prefix, feed=feed, clock=lambda: NOW)


def _handler(events: EventStore) -> CommandHandler[Any, Any, Any]:
    return CommandHandler(Repository(events, Counter))


def attempt(objects: ObjectStore, prefix: str, stream_id: str, *, feed: bool = False) -> bool:
    """Send one command to ``stream_id``: True if it was stored, False if the name was
    refused, which must happen before any request."""
    before = objects.requests
    try:
        result = _handler(_store(objects, prefix, feed=feed)).handle(stream_id, Increment(1))
    except InvalidStreamName as error:
        refusal = str(error)
    else:
        assert result.version == 1
        return True
    assert objects.requests == before
    assert "stream id" in refusal or f"stream counter/{stream_id} " in refusal
    return False


def check_confined(
    objects: ObjectStore, prefix: str, accepted: list[str], *, feed: bool, victim: set[str]
) -> None:
    """The store holds the victim's keys and, per accepted id, its chunk (and feed entry)
    directly under ``{prefix}/counter/{id}/``: nothing else anywhere."""
    root = f"{prefix}/" if prefix else ""
    expected = set(victim)
    events = _store(objects, prefix)
    for stream_id in accepted:
        assert acceptable(stream_id)
        folder = f"{root}counter/{stream_id}/"
        key = events.keys.chunk_key(StreamName("counter", stream_id), 1)
        assert key.startswith(folder)
        assert "/" not in key[len(folder) :]
        assert len(key.encode()) <= MAX_KEY_BYTES
        expected.add(key)
        if feed:
            entry = events.keys.feed_key(
                StreamName("counter", stream_id), 1, int(NOW.timestamp() * 1000)
            )
            assert entry.startswith(f"{root}_feed/counter/")
            expected.add(entry)
    assert all_keys(objects) == expected
    for key in expected - victim:
        assert all(segment not in {"", ".", ".."} for segment in key.split("/"))


def _write_victim(objects: ObjectStore) -> set[str]:
    _handler(_store(objects, VICTIM_PREFIX)).handle("victim", Increment(7))
    return all_keys(objects)


def _victim_intact(objects: ObjectStore) -> None:
    loaded = Repository(_store(objects, VICTIM_PREFIX), Counter).load("victim")
    assert (loaded.version, loaded.state) == (1, CounterState(total=7, events=1))


class TestTenantEscape:
    @settings(max_examples=150, deadline=None)
    @given(
        prefix=st.one_of(
            st.just(TENANT), st.lists(crafted_ids(), min_size=1, max_size=3).map("/".join)
        ),
        stream_ids=st.lists(crafted_ids(), min_size=1, max_size=4, unique=True),
        feed=st.booleans(),
    )
    def test_crafted_names_in_memory(self, prefix: str, stream_ids: list[str], feed: bool) -> None:
        """Whatever the prefix and stream ids, a command either stores one chunk directly
        under its stream's folder or is refused before any request; nothing else is written,
        and another tenant's stream is untouched."""
        assume(prefix != VICTIM_PREFIX)
        objects = InMemoryObjectStore()
        victim = _write_victim(objects)
        before = objects.requests
        try:
            _store(objects, prefix)
        except InvalidStreamName:
            assert objects.requests == before
            assert not all(map(acceptable, prefix.split("/")))
            event("prefix refused")
            return
        accepted = [i for i in stream_ids if attempt(objects, prefix, i, feed=feed)]
        event(f"stream ids accepted: {len(accepted)} of {len(stream_ids)}")
        check_confined(objects, prefix, accepted, feed=feed, victim=victim)
        _victim_intact(objects)

    def test_crafted_ids_over_http(self, s3_store: S3ObjectStore) -> None:
        """Over HTTP to moto (keys URL-encoded in paths and XML listings) the crafted ids stay
        in their folders too, and each accepted stream loads back from its own key."""
        victim = _write_victim(s3_store)
        accepted = [i for i in CRAFTED_IDS if attempt(s3_store, TENANT, i)]
        refused = set(CRAFTED_IDS) - set(accepted)
        too_long = {i for i in CRAFTED_IDS if len(i.encode(errors="surrogatepass")) >= 1_000}
        assert refused == {i for i in CRAFTED_IDS if not acceptable(i)} | too_long
        check_confined(s3_store, TENANT, accepted, feed=False, victim=victim)
        repository = Repository(_store(s3_store, TENANT), Counter)
        assert {i: repository.load(i).version for i in accepted} == dict.fromkeys(accepted, 1)
        _victim_intact(s3_store)

    @pytest.mark.parametrize(
        "prefix",
        [
            "..",
            "../t2",
            "t1/..",
            "t1/../t2",
            "t1//t2",
            "/t1",
            "t1/",
            ".",
            "t1/./t2",
            "t1\x00",
            "t\n1",
        ],
    )
    def test_crafted_prefixes_refused(self, prefix: str) -> None:
        """A prefix with an empty, '.' or '..' segment, a leading or trailing '/', or a
        control character is refused when the event store is made."""
        with pytest.raises(InvalidStreamName, match="prefix"):
            EventStore(InMemoryObjectStore(), prefix=prefix)

    @pytest.mark.parametrize("stream_type", ["..", "a/b", "_feed", "_projections", "", "t\x00"])
    def test_crafted_stream_types_refused(self, stream_type: str) -> None:
        """An aggregate whose STREAM_TYPE could leave its folder, or take s3es's own, is
        refused when its repository is made."""
        aggregate = type("Crafted", (Counter,), {"STREAM_TYPE": stream_type})
        with pytest.raises(InvalidConfiguration, match="STREAM_TYPE"):
            Repository(EventStore(InMemoryObjectStore()), aggregate)


class TestOversizedKeys:
    @pytest.mark.parametrize("character", ["x", "\u00e9", "\U0001f600"])
    def test_longest_key_fits_and_one_more_byte_is_refused(
        self, s3_store: S3ObjectStore, character: str
    ) -> None:
        """The longest stream id accepted gives keys S3 stores (moto enforces 1,024 bytes);
        one character more is refused with InvalidStreamName before any request."""
        events = _store(s3_store, TENANT, feed=True)
        size = len(character.encode())
        longest = next(
            n for n in range(MAX_KEY_BYTES // size, 0, -1) if _fits(events, character * n)
        )
        assert attempt(s3_store, TENANT, character * longest, feed=True)
        assert not attempt(s3_store, TENANT, character * (longest + 1), feed=True)
        assert max(len(key.encode()) for key in all_keys(s3_store)) <= MAX_KEY_BYTES


def _fits(events: EventStore, stream_id: str) -> bool:
    try:
        events.keys.stream_prefix(StreamName("counter", stream_id))
    except InvalidStreamName:
        return False
    return True


class TestOversizedChunks:
    def test_default_limit(self) -> None:
        """Chunks are limited to 16 MiB unless the event store is told otherwise; the limit
        must be positive."""
        assert EventStore(InMemoryObjectStore()).max_chunk_bytes == DEFAULT_MAX_CHUNK_BYTES
        assert DEFAULT_MAX_CHUNK_BYTES == 16 * 1024 * 1024
        with pytest.raises(ValueError, match="max_chunk_bytes must be at least 1, not 0"):
            EventStore(InMemoryObjectStore(), max_chunk_bytes=0)

    def test_append_too_large_is_refused(self) -> None:
        """A command whose chunk would exceed max_chunk_bytes fails with ChunkTooLarge naming
        the stream, version and sizes; no PUT is sent and nothing is stored."""
        objects = InMemoryObjectStore()
        handler = _handler(EventStore(objects, max_chunk_bytes=2_000))
        handler.handle(STREAM_ID, Increment(1))
        before = objects.requests
        with pytest.raises(ChunkTooLarge) as raised:
            handler.handle(STREAM_ID, IncrementEach(tuple(range(1, 40))))
        error = raised.value
        assert (error.stream, error.version, error.limit) == (STREAM, 2, 2_000)
        assert error.size > 2_000
        assert f"stream {STREAM}" in str(error)
        assert f"{error.size:,} bytes" in str(error)
        assert isinstance(error, ValueError)
        assert objects.requests - before == RequestCounts()  # the cached state needed no read
        assert len(all_keys(objects)) == 1
        assert handler.handle(STREAM_ID, Increment(2)).version == 2

    def test_stored_chunk_too_large_is_corrupt(self) -> None:
        """A stored chunk larger than max_chunk_bytes is corrupt to that store, named by key
        and size, before it is parsed; a store allowing more reads it."""
        objects = InMemoryObjectStore()
        _handler(EventStore(objects)).handle(STREAM_ID, IncrementEach(tuple(range(1, 100))))
        (key,) = all_keys(objects)
        size = len(objects._objects[key].body)
        small = Repository(EventStore(objects, max_chunk_bytes=size - 1), Counter)
        for read in (small.load, small.replay):
            with pytest.raises(CorruptChunk) as raised:
                read(STREAM_ID)
            assert raised.value.key == key
            assert f"{size:,} bytes, more than max_chunk_bytes ({size - 1:,})" in str(raised.value)
        exact = Repository(EventStore(objects, max_chunk_bytes=size), Counter)
        assert exact.load(STREAM_ID).version == 1

    def test_compaction_too_large_writes_nothing(self) -> None:
        """Compaction into a chunk larger than max_chunk_bytes fails with ChunkTooLarge and
        writes nothing; the stream reads as before."""
        objects = InMemoryObjectStore()
        handler = _handler(EventStore(objects, max_chunk_bytes=1_000))
        for amount in range(1, 8):
            handler.handle(STREAM_ID, Increment(amount))
        keys = all_keys(objects)
        assert max(len(objects._objects[key].body) for key in keys) < 500
        with pytest.raises(ChunkTooLarge, match=f"stream {STREAM}"):
            compact(handler.repository, STREAM_ID)
        assert all_keys(objects) == keys
        assert handler.repository.replay(STREAM_ID).state == CounterState(total=28, events=7)

    def test_resnapshot_too_large_is_skipped(self) -> None:
        """A load that replays (no snapshot) skips a re-snapshot that would exceed the limit:
        the state is returned and nothing is written."""
        objects = InMemoryObjectStore()
        raw = EventStore(objects)
        raw.append(STREAM, [raw.new_event("Incremented", {"amount": 3})], expected_version=0)
        (key,) = all_keys(objects)
        size = len(objects._objects[key].body)
        repository = Repository(EventStore(objects, max_chunk_bytes=size + 10), Counter)
        loaded = repository.load(STREAM_ID)
        assert (loaded.version, loaded.state) == (1, CounterState(total=3, events=1))
        assert all_keys(objects) == {key}


def nested(depth: int) -> Any:
    """A JSON array ``depth`` levels deep."""
    value: Any = 1
    for _ in range(depth - 1):
        value = [value]
    return [value] if depth else value


def _chunk_body(events: EventStore, data: dict[str, Any], event_type: str = "Incremented") -> bytes:
    record = events.new_event(event_type, data)
    snapshot = Snapshot(schema=1, version=1, state={"total": 1, "events": 1})
    return encode_chunk(Chunk(STREAM, 1, 0, 0, "rogue", (record,), snapshot))


def _valid_body() -> bytes:
    return _chunk_body(EventStore(InMemoryObjectStore()), {"amount": 1})


def _replace_field(body: bytes, field: str, value: Any) -> bytes:
    document = json.loads(body)
    document[field] = value
    return json.dumps(document).encode()


#: Bodies that are not a chunk, by what is wrong with them. Each must read as CorruptChunk.
HOSTILE_BODIES: dict[str, Callable[[], bytes]] = {
    "not-utf8": lambda: b'{"format": 1, "stream_id": "\xff\xfe"}',
    "overlong-utf8-slash": lambda: b'{"format": 1, "stream_id": "\xc0\xaf"}',
    "utf16": lambda: _valid_body().decode().encode("utf-16"),
    "utf8-bom": lambda: b"\xef\xbb\xbf" + _valid_body(),
    "deeply-nested-array": lambda: b"[" * 200_000 + b"]" * 200_000,
    "deeply-nested-object": lambda: b'{"a":' * 200_000 + b"1" + b"}" * 200_000,
    "nested-past-the-limit-in-data": lambda: _valid_body().replace(
        b'"amount":1', b'"amount":1,"x":' + json.dumps(nested(MAX_JSON_DEPTH)).encode()
    ),
    "nested-below-recursion-limit": lambda: _valid_body().replace(
        b'"amount":1', b'"amount":1,"x":' + json.dumps(nested(700)).encode()
    ),
    "huge-integer": lambda: _replace_field(_valid_body(), "version", 0).replace(
        b'"version": 0', b'"version": ' + b"9" * 100_000
    ),
    "huge-exponent": lambda: _replace_field(_valid_body(), "version", 0).replace(
        b'"version": 0', b'"version": 1e999999'
    ),
    "nan": lambda: _replace_field(_valid_body(), "version", 0).replace(b": 0", b": NaN", 1),
    "lone-surrogate-escape": lambda: _replace_field(_valid_body(), "stream_id", "\\ud800").replace(
        b"\\\\ud800", b"\\ud800"
    ),
    "stream-id-escaping": lambda: _replace_field(_valid_body(), "stream_id", "../c-1"),
    "array": lambda: b"[]",
    "empty": lambda: b"",
    "type-not-a-string": lambda: _valid_body().replace(b'"type":"Incremented"', b'"type":5'),
    "data-not-an-object": lambda: _valid_body().replace(b'"data":{"amount":1}', b'"data":[1]'),
}


class TestHostileChunks:
    @pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
    def test_reads_raise_corrupt_chunk(self, name: str) -> None:
        """Load, replay, a command, and a writer that meets the chunk after a 412 all raise
        CorruptChunk naming its key; nothing is written."""
        objects = InMemoryObjectStore()
        events = EventStore(objects)
        key = events.keys.chunk_key(STREAM, 1)
        objects.put_if_absent(key, HOSTILE_BODIES[name]())
        repository = Repository(events, Counter)
        handler = CommandHandler(repository)
        for read in (
            lambda: repository.load(STREAM_ID),
            lambda: repository.replay(STREAM_ID),
            lambda: handler.handle(STREAM_ID, Increment(1)),
            # A writer that never read the stream: its PUT meets the chunk, which it reads back.
            lambda: repository.append(Loaded(STREAM, 0, CounterState(0, 0)), [Incremented(1)]),
        ):
            with pytest.raises(CorruptChunk) as raised:
                read()
            assert raised.value.key == key
            assert repr(key) in str(raised.value)
        assert all_keys(objects) == {key}

    @settings(max_examples=150, deadline=None)
    @given(body=st.binary(max_size=300))
    def test_any_bytes(self, body: bytes) -> None:
        """Any bytes decode to a chunk or raise CorruptChunk naming the key."""
        _decode_or_corrupt(body)

    @settings(max_examples=150, deadline=None)
    @given(
        field=st.sampled_from(
            [
                "format",
                "stream_type",
                "stream_id",
                "version",
                "chunk",
                "base_version",
                "append_id",
                "events",
                "snapshot",
                "deleted",
            ]
        ),
        value=st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=5), children, max_size=3)
            ),
            max_leaves=8,
        ),
    )
    def test_any_field_value(self, field: str, value: Any) -> None:
        """A valid chunk with any JSON value in place of one field decodes to a chunk or
        raises CorruptChunk naming the key."""
        _decode_or_corrupt(_replace_field(_valid_body(), field, value))

    def test_depth_limit_boundary(self) -> None:
        """A chunk nesting exactly MAX_JSON_DEPTH levels is written and read back; one level
        more is refused before any request, naming the stream."""
        objects = InMemoryObjectStore()
        events = EventStore(objects)
        # The document is level 1, events 2, the event 3, its data 4: data values start at 5.
        deepest = nested(MAX_JSON_DEPTH - 4)
        record = events.new_event("Incremented", {"amount": 1, "x": deepest})
        result = events.append(STREAM, [record], expected_version=0)
        assert [c.events for c in events.chunks(STREAM)] == [result.events]
        before = objects.requests
        for depth in (MAX_JSON_DEPTH - 3, 5_000):
            too_deep = events.new_event("Incremented", {"amount": 1, "x": nested(depth)})
            with pytest.raises(ValueError, match=f"stream {STREAM}") as raised:
                events.append(STREAM, [too_deep], expected_version=1)
            assert not isinstance(raised.value, RecursionError)
        assert objects.requests == before


def _decode_or_corrupt(body: bytes) -> None:
    events = EventStore(InMemoryObjectStore())
    where = events.keys.parse(STREAM, events.keys.chunk_key(STREAM, 1))
    try:
        chunk = decode_chunk(where, body)
    except CorruptChunk as error:
        named = error.key
    else:
        assert (chunk.stream, chunk.version, chunk.number) == (STREAM, 1, 0)
        event("a chunk")
        return
    assert named == where.key
    event("corrupt")


class _Retired(Counter):
    """A counter with no decrements registered."""

    EVENT_TYPES: ClassVar[dict[str, type[Any]]] = {"Incremented": Incremented}


@attrs.frozen
class Unregistered:
    """An event class no aggregate registers."""

    amount: int


class _Leaky(Counter):
    """A counter whose decide returns an event class it does not register."""

    def decide(self, command: Any, state: CounterState) -> list[Any]:
        return [Unregistered(1)]


class TestUnknownEventTypes:
    @pytest.mark.parametrize(
        "event_type", ["Hacked", "", "__class__", "Incremented\x00", "incremented", "toString"]
    )
    def test_reads_name_type_key_and_stream(self, event_type: str) -> None:
        """A replay meeting an event type the aggregate does not register raises
        CorruptChunk naming the type, the key (and so the stream) and the registered types;
        a load that must replay writes no re-snapshot."""
        objects = InMemoryObjectStore()
        events = EventStore(objects)
        key = events.keys.chunk_key(STREAM, 1)
        objects.put_if_absent(key, _chunk_body(events, {"amount": 1}, event_type))
        repository = Repository(events, Counter)
        with pytest.raises(CorruptChunk) as raised:
            repository.replay(STREAM_ID)
        message = str(raised.value)
        assert raised.value.key == key
        assert f"unknown event type {event_type!r}" in message
        assert f"/{STREAM.type}/{STREAM.id}/" in f"/{key}"
        assert "Decremented, Incremented" in message
        bumped = Repository(events, CounterV2)  # its schema makes the load replay
        with pytest.raises(CorruptChunk, match="unknown event type"):
            bumped.load(STREAM_ID)
        assert all_keys(objects) == {key}

    def test_writer_catching_up_stops(self) -> None:
        """A writer that loses a version to a chunk with an unknown event type stops with
        CorruptChunk naming that chunk, and writes nothing after it."""
        objects = InMemoryObjectStore()
        events = EventStore(objects)
        handler = _handler(events)
        handler.handle(STREAM_ID, Increment(1))  # cached at version 1
        rogue = _chunk_body(events, {"amount": 1}, "Hacked").replace(
            b'"version":1,"chunk":0,"base_version":0', b'"version":2,"chunk":0,"base_version":1'
        )
        rogue = rogue.replace(b'"schema":1,"version":1', b'"schema":1,"version":2')
        key = events.keys.chunk_key(STREAM, 2)
        objects.put_if_absent(key, rogue)
        with pytest.raises(CorruptChunk, match="'Hacked'") as raised:
            handler.handle(STREAM_ID, Increment(1))
        assert raised.value.key == key
        assert len(all_keys(objects)) == 2

    def test_retired_type_is_unknown(self) -> None:
        """An aggregate that no longer registers a stored type (and has no upcaster for it)
        refuses to replay the stream rather than skip the event."""
        objects = InMemoryObjectStore()
        handler = _handler(EventStore(objects))
        handler.handle(STREAM_ID, Increment(5))
        handler.handle(STREAM_ID, Decrement(2))
        retired = Repository(EventStore(objects), _Retired)
        with pytest.raises(CorruptChunk, match="unknown event type 'Decremented'"):
            retired.replay(STREAM_ID)

    def test_decide_returning_unregistered_class(self) -> None:
        """A decide that returns an unregistered event class fails with InvalidConfiguration
        naming the class and the stream, before any PUT."""
        objects = InMemoryObjectStore()
        handler = CommandHandler(Repository(EventStore(objects), _Leaky))
        with pytest.raises(InvalidConfiguration, match=f"Unregistered for stream {STREAM}"):
            handler.handle(STREAM_ID, Increment(1))
        assert objects.requests == RequestCounts(list=1)
        assert all_keys(objects) == set()
