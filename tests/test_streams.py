"""Stream names and their keys: validation, the key layout, parsing, and tenant isolation."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3es import CorruptChunk, StreamName
from s3es.errors import InvalidStreamName
from s3es.eventstore import StreamKeys

#: S3's documented limit on an object key, in bytes of UTF-8.
S3_MAX_KEY_BYTES = 1024
#: A chunk's name after its stream prefix: ``{20 digits}.{6 digits}.json``.
CHUNK_NAME_BYTES = len("00000000000000000001.000000.json")
#: A feed entry's key, "_feed/{type}/{13-digit ms}.{20-digit version}.{id}", has this much more
#: than its stream's "{type}/{id}/": the longest key a stream needs.
FEED_KEY_EXTRA = len("_feed/") + len("0000000000000.00000000000000000001.") - len("/")
LARGEST_VERSION = 10**20 - 1
LARGEST_CHUNK = 10**6 - 1

STREAM = StreamName("order", "o-1")

#: Segments no stream type, stream id or prefix segment may be, and why (a word of the message).
BAD_SEGMENTS = [
    pytest.param("", "empty", id="empty"),
    pytest.param(".", "'.'", id="dot"),
    pytest.param("..", "'..'", id="dotdot"),
    pytest.param("a/b", "'/'", id="slash"),
    pytest.param("/", "'/'", id="only-slash"),
    pytest.param("a\x00b", "U+0000", id="nul"),
    pytest.param("a\nb", "U+000A", id="newline"),
    pytest.param("a\tb", "U+0009", id="tab"),
    pytest.param("a\x7fb", "U+007F", id="delete"),
    pytest.param("a\x85b", "U+0085", id="c1-control"),
    pytest.param("a\ud800b", "U+D800", id="lone-high-surrogate"),
    pytest.param("\udfff", "U+DFFF", id="lone-low-surrogate"),
]
NOT_STR = [
    pytest.param(None, "NoneType", id="none"),
    pytest.param(7, "int", id="int"),
    pytest.param(b"order", "bytes", id="bytes"),
]


class TestStreamName:
    def test_valid(self) -> None:
        """A type and an id of ordinary, Unicode or punctuation characters make a name."""
        for type_, id_ in [
            ("order", "o-1"),
            ("Ordre", "é \U0001f600"),
            ("a.b", "...x"),
            ("x", ".a"),
        ]:
            name = StreamName(type_, id_)
            assert (name.type, name.id, str(name)) == (type_, id_, f"{type_}/{id_}")

    @pytest.mark.parametrize(("bad", "why"), BAD_SEGMENTS)
    def test_bad_type(self, bad: str, why: str) -> None:
        """A stream type that is empty, '.', '..', or holds '/', a control character or a
        surrogate is refused, and the message names the stream type and the problem."""
        with pytest.raises(InvalidStreamName) as raised:
            StreamName(bad, "o-1")
        message = str(raised.value)
        assert message.startswith("stream type ")
        assert why in message
        if bad:
            assert repr(bad) in message

    @pytest.mark.parametrize(("bad", "why"), BAD_SEGMENTS)
    def test_bad_id(self, bad: str, why: str) -> None:
        """A stream id with the same problems is refused; the message names the stream id, its
        stream type and the problem."""
        with pytest.raises(InvalidStreamName) as raised:
            StreamName("order", bad)
        message = str(raised.value)
        assert message.startswith("stream id (of stream type 'order')")
        assert why in message
        if bad:
            assert repr(bad) in message

    @pytest.mark.parametrize(("bad", "type_name"), NOT_STR)
    def test_not_str(self, bad: Any, type_name: str) -> None:
        """A type or id that is not a str is refused, naming the part and the type found."""
        with pytest.raises(
            InvalidStreamName, match=rf"^stream type must be a str, not {type_name}"
        ):
            StreamName(bad, "o-1")
        with pytest.raises(
            InvalidStreamName, match=rf"^stream id .* must be a str, not {type_name}"
        ):
            StreamName("order", bad)

    @pytest.mark.parametrize("type_", ["_", "_snapshots", "__x"])
    def test_type_reserved_underscore(self, type_: str) -> None:
        """A stream type starting with '_' is reserved for s3es; the message names it."""
        with pytest.raises(InvalidStreamName, match="reserved") as raised:
            StreamName(type_, "o-1")
        assert repr(type_) in str(raised.value)

    def test_id_may_start_with_underscore(self) -> None:
        """Only the stream type is reserved: an id may start with '_'."""
        assert StreamName("order", "_1").id == "_1"

    def test_is_invalid_stream_name_and_value_error(self) -> None:
        """InvalidStreamName is a ValueError, so callers validating input can catch either."""
        with pytest.raises(ValueError, match="stream id"):
            StreamName("order", "")


class TestPrefix:
    @pytest.mark.parametrize("prefix", ["", "a", "a/b", "tenant-1/prod", "é/\U0001f600/x"])
    def test_valid(self, prefix: str) -> None:
        """The empty prefix (the bucket's root) and '/'-separated valid segments are accepted."""
        assert StreamKeys(prefix).prefix == prefix

    def test_default_is_root(self) -> None:
        """With no prefix, a stream's keys start at the bucket's root."""
        assert StreamKeys().stream_prefix(STREAM) == "order/o-1/"

    @pytest.mark.parametrize(
        ("prefix", "why"),
        [
            ("/a", "empty"),
            ("a/", "empty"),
            ("/", "empty"),
            ("a//b", "empty"),
            ("a/../b", "'..'"),
            ("./a", "'.'"),
            ("a/\nb", "U+000A"),
            ("a/\ud800", "U+D800"),
        ],
    )
    def test_invalid(self, prefix: str, why: str) -> None:
        """A leading, trailing or double '/', '.' or '..' segments, control characters and
        surrogates are refused; the message names the prefix and the problem."""
        with pytest.raises(InvalidStreamName) as raised:
            StreamKeys(prefix)
        assert f"prefix {prefix!r}" in str(raised.value)
        assert why in str(raised.value)

    def test_not_str(self) -> None:
        """A prefix that is not a str is refused, naming the type found."""
        with pytest.raises(InvalidStreamName, match="prefix must be a str, not bytes"):
            StreamKeys(b"a")  # type: ignore[arg-type]


def _id_of_bytes(size: int) -> str:
    """A stream id of exactly ``size`` UTF-8 bytes, mostly 4-byte characters."""
    fours, rest = divmod(size, 4)
    return "\U0001f600" * fours + "x" * rest


class TestKeyLength:
    def test_multibyte_id_over_limit(self) -> None:
        """A 300-character id of 4-byte characters (1,200 bytes) is refused, naming the stream
        and the key's length in bytes, before any request."""
        stream = StreamName("order", "\U0001f600" * 300)
        with pytest.raises(InvalidStreamName) as raised:
            StreamKeys().chunk_key(stream, 1)
        message = str(raised.value)
        assert str(stream) in message
        assert f"{len(b'order/') + 1200 + 1 + FEED_KEY_EXTRA} bytes" in message
        assert str(S3_MAX_KEY_BYTES) in message

    @pytest.mark.parametrize("prefix", ["", "tenant", "t/" * 20 + "t"])
    def test_longest_key_accepted(self, prefix: str) -> None:
        """A stream whose longest key (its change-feed key) is exactly 1,024 bytes is accepted;
        one byte more is refused, naming the stream and the prefix."""
        keys = StreamKeys(prefix)
        fixed = len(f"{prefix}/".encode()) if prefix else 0
        fixed += len(b"order/") + len(b"/") + FEED_KEY_EXTRA
        assert FEED_KEY_EXTRA > CHUNK_NAME_BYTES
        fitting = StreamName("order", _id_of_bytes(S3_MAX_KEY_BYTES - fixed))
        key = keys.feed_key(fitting, LARGEST_VERSION, at_ms=10**13 - 1)
        assert len(key.encode()) == S3_MAX_KEY_BYTES
        chunk_key = keys.chunk_key(fitting, LARGEST_VERSION, LARGEST_CHUNK)
        assert len(chunk_key.encode()) < len(key.encode())
        too_long = StreamName("order", _id_of_bytes(S3_MAX_KEY_BYTES - fixed + 1))
        with pytest.raises(InvalidStreamName) as raised:
            keys.stream_prefix(too_long)
        assert str(too_long) in str(raised.value)
        assert f"prefix {prefix!r}" in str(raised.value)

    def test_long_prefix_counts(self) -> None:
        """The prefix counts towards the limit: a short id under a long prefix is refused."""
        keys = StreamKeys("/".join(["p" * 200] * 5))
        with pytest.raises(InvalidStreamName, match="order/o-1"):
            keys.chunk_key(STREAM, 1)


class TestChunkKey:
    def test_layout(self) -> None:
        """A chunk key is prefix, type, id, then the version counted down from 20 nines and the
        chunk number counted down from 6 nines."""
        keys = StreamKeys("tenant-1")
        assert keys.chunk_key(STREAM, 1) == "tenant-1/order/o-1/99999999999999999998.999999.json"
        assert (
            keys.chunk_key(STREAM, 42, 3) == "tenant-1/order/o-1/99999999999999999957.999996.json"
        )
        assert keys.stream_prefix(STREAM) == "tenant-1/order/o-1/"

    @pytest.mark.parametrize("version", [0, -1, LARGEST_VERSION + 1])
    def test_version_out_of_range(self, version: int) -> None:
        """A version below 1 or above 20 digits is refused, naming the stream and the version."""
        with pytest.raises(ValueError, match=rf"version of stream order/o-1 .*: {version}$"):
            StreamKeys().chunk_key(STREAM, version)

    @pytest.mark.parametrize("chunk", [-1, LARGEST_CHUNK + 1])
    def test_chunk_out_of_range(self, chunk: int) -> None:
        """A chunk number below 0 or above 6 digits is refused, naming the stream and number."""
        with pytest.raises(ValueError, match=rf"chunk number of stream order/o-1 .*: {chunk}$"):
            StreamKeys().chunk_key(STREAM, 1, chunk)


class TestLayout:
    """Every key s3es stores under a prefix comes from StreamKeys."""

    @pytest.mark.parametrize(("prefix", "root"), [("", ""), ("tenant/es", "tenant/es/")])
    def test_own_folders(self, prefix: str, root: str) -> None:
        """The feed, projections and the self-test each have a folder under the prefix whose
        name starts with '_', which no stream type may."""
        keys = StreamKeys(prefix)
        assert keys.feed_prefix("order") == f"{root}_feed/order/"
        assert keys.feed_key(STREAM, 7, at_ms=1234) == (
            f"{root}_feed/order/0000000001234.00000000000000000007.o-1"
        )
        assert keys.feed_cursor("order", -5) == f"{root}_feed/order/0000000000000"
        assert keys.read_model_key("balances") == f"{root}_projections/balances/model.json"
        assert keys.lease_key("balances") == f"{root}_projections/balances/lease.json"
        assert keys.self_test_prefix() == f"{root}_selftest/"

    def test_feed_key_round_trip(self) -> None:
        """parse_feed_key reads back the stream, version and time of a feed key."""
        keys = StreamKeys("t")
        key = keys.feed_key(STREAM, 42, at_ms=10**12)
        entry = keys.parse_feed_key("order", key)
        assert (entry.stream, entry.version, entry.at_ms, entry.key) == (STREAM, 42, 10**12, key)

    @pytest.mark.parametrize("name", ["", "a/b", ".."])
    def test_bad_projection_name(self, name: str) -> None:
        """A projection name that cannot be one key segment is refused, naming it."""
        with pytest.raises(InvalidStreamName, match="projection name"):
            StreamKeys().read_model_key(name)

    def test_chunk_key_pattern(self) -> None:
        """The chunk key glob matches chunk keys, and no feed, projection or self-test key."""
        keys = StreamKeys("t")
        glob = re.compile(
            re.escape(keys.chunk_key_pattern()).replace(r"\*", ".*").replace(r"\?", ".")
        )
        assert glob.fullmatch(keys.chunk_key(STREAM, LARGEST_VERSION, LARGEST_CHUNK))
        assert glob.fullmatch(keys.chunk_key(StreamName("a", "b"), 1))
        others = [
            keys.feed_key(StreamName("order", "00000000000000000001.000000.json"), 1, at_ms=0),
            keys.read_model_key("p"),
            keys.lease_key("p"),
            keys.self_test_prefix() + "0" * 32,
        ]
        assert not [key for key in others if glob.fullmatch(key)]


class TestParse:
    def test_round_trip(self) -> None:
        """parse reads the stream, version and chunk number back from a chunk key."""
        keys = StreamKeys("t")
        key = keys.chunk_key(STREAM, 12, 3)
        where = keys.parse(STREAM, key)
        assert (where.stream, where.version, where.number, where.key) == (STREAM, 12, 3, key)

    @pytest.mark.parametrize(
        "name",
        [
            "notes.txt",
            "1.0.json",
            "00000000000000000001.json",
            "00000000000000000001.000000.JSON",
            "00000000000000000001.000000.json.tmp",
            "0000000000000000001.000000.json",  # 19 digits
            "000000000000000000001.000000.json",  # 21 digits
            "00000000000000000001.00000.json",  # 5 digits
            "0000000000000000000x.000000.json",
            "-0000000000000000001.000000.json",
            "00000000000000000001-000000.json",
            "sub/00000000000000000001.000000.json",
            "",
        ],
    )
    def test_stray_key(self, name: str) -> None:
        """A key in the stream's folder that is not a chunk key raises CorruptChunk naming it."""
        keys = StreamKeys("t")
        key = keys.stream_prefix(STREAM) + name
        with pytest.raises(CorruptChunk) as raised:
            keys.parse(STREAM, key)
        assert raised.value.key == key
        assert repr(key) in str(raised.value)
        assert "not a chunk key of stream order/o-1" in raised.value.reason

    def test_non_ascii_digits(self) -> None:
        """Digits of other scripts (which \\d and int() accept) do not make a chunk key."""
        keys = StreamKeys()
        key = keys.stream_prefix(STREAM) + "\u0661" * 20 + ".000000.json"
        with pytest.raises(CorruptChunk, match="not a chunk key"):
            keys.parse(STREAM, key)

    def test_version_zero(self) -> None:
        """A chunk key of version 0 is refused: versions start at 1."""
        keys = StreamKeys()
        key = keys.stream_prefix(STREAM) + "9" * 20 + ".999999.json"
        with pytest.raises(CorruptChunk, match="version must be at least 1") as raised:
            keys.parse(STREAM, key)
        assert raised.value.key == key

    @pytest.mark.parametrize(
        ("prefix", "other_prefix", "other"),
        [
            ("t", "t", StreamName("order", "o-2")),
            ("t", "t", StreamName("order", "o-10")),
            ("t", "t", StreamName("invoice", "o-1")),
            ("t", "u", STREAM),
            ("t", "", StreamName("t", "order")),
        ],
    )
    def test_key_of_another_stream(self, prefix: str, other_prefix: str, other: StreamName) -> None:
        """A chunk key of another stream, or of the same stream under another prefix, raises
        CorruptChunk naming the key and the stream expected."""
        key = StreamKeys(other_prefix).chunk_key(other, 1)
        with pytest.raises(CorruptChunk) as raised:
            StreamKeys(prefix).parse(STREAM, key)
        assert raised.value.key == key
        assert "stream order/o-1" in raised.value.reason


class TestParseListing:
    def test_same_as_parse(self) -> None:
        """parse_listing reads each key of a listing as parse does, in the listing's order."""
        keys = StreamKeys("t")
        listed = [
            keys.chunk_key(STREAM, version, number) for version, number in ((3, 1), (3, 0), (2, 0))
        ]
        assert list(keys.parse_listing(STREAM, listed)) == [
            keys.parse(STREAM, key) for key in listed
        ]

    def test_stray_key_raises_when_reached(self) -> None:
        """A key that is not a chunk key of the stream raises parse's CorruptChunk, naming it,
        when the listing reaches it: the keys before it are read."""
        keys = StreamKeys("t")
        good = keys.chunk_key(STREAM, 2)
        stray = keys.stream_prefix(STREAM) + "notes.txt"
        other = keys.chunk_key(StreamName("order", "o-2"), 1)
        for bad in (stray, other):
            parsed = keys.parse_listing(STREAM, [good, bad])
            assert next(parsed) == keys.parse(STREAM, good)
            with pytest.raises(CorruptChunk) as raised:
                next(parsed)
            assert raised.value.key == bad
            assert "not a chunk key of stream order/o-1" in raised.value.reason

    def test_version_zero(self) -> None:
        """A chunk key of version 0 is refused in a listing too."""
        keys = StreamKeys()
        key = keys.stream_prefix(STREAM) + "9" * 20 + ".999999.json"
        with pytest.raises(CorruptChunk, match="version must be at least 1"):
            list(keys.parse_listing(STREAM, [key]))

    def test_too_long_stream_raises_before_any_key(self) -> None:
        """A stream whose keys S3 could not hold raises InvalidStreamName at the first key, as
        parse does for each."""
        stream = StreamName("order", "x" * S3_MAX_KEY_BYTES)
        with pytest.raises(InvalidStreamName):
            next(StreamKeys().parse_listing(stream, ["order/x/00000000000000000001.000000.json"]))


# Properties


def segments(alphabet: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[str]:
    """Valid key segments: no '/', control or surrogate characters; not '.' or '..'."""
    characters = (
        st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="/")
        if alphabet is None
        else alphabet
    )
    return st.text(characters, min_size=1, max_size=12).filter(lambda s: s not in {".", ".."})


def stream_names(alphabet: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[StreamName]:
    """Valid stream names."""
    return st.builds(
        StreamName,
        segments(alphabet).filter(lambda s: not s.startswith("_")),
        segments(alphabet),
    )


def prefixes(alphabet: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[str]:
    """Valid prefixes: the root, or one to three segments."""
    return st.lists(segments(alphabet), max_size=3).map("/".join)


#: A tiny alphabet, so that distinct names often share segments and look alike.
TINY = st.sampled_from("ab._")
versions = st.integers(min_value=1, max_value=LARGEST_VERSION)
chunks = st.integers(min_value=0, max_value=LARGEST_CHUNK)


class TestKeyProperties:
    @settings(max_examples=150, deadline=None)
    @given(prefix=prefixes(), stream=stream_names(), version=versions, chunk=chunks)
    def test_parse_round_trip(
        self, prefix: str, stream: StreamName, version: int, chunk: int
    ) -> None:
        """Any valid name's chunk keys parse back to their stream, version and chunk number,
        and lie directly under the stream's prefix."""
        keys = StreamKeys(prefix)
        key = keys.chunk_key(stream, version, chunk)
        where = keys.parse(stream, key)
        assert (where.stream, where.version, where.number, where.key) == (
            stream,
            version,
            chunk,
            key,
        )
        stream_prefix = keys.stream_prefix(stream)
        assert key.startswith(stream_prefix)
        assert "/" not in key[len(stream_prefix) :]

    @settings(max_examples=100, deadline=None)
    @given(
        prefix=prefixes(),
        stream=stream_names(),
        numbers=st.lists(st.tuples(versions, chunks), min_size=2, max_size=20, unique=True),
    )
    def test_keys_sort_in_version_chunk_order(
        self, prefix: str, stream: StreamName, numbers: list[tuple[int, int]]
    ) -> None:
        """A stream's chunk keys sort, as UTF-8 bytes, newest first: descending (version,
        chunk) order."""
        keys = StreamKeys(prefix)
        by_key = sorted(numbers, key=lambda n: keys.chunk_key(stream, *n).encode())
        assert by_key == sorted(numbers, reverse=True)

    @settings(max_examples=300, deadline=None)
    @given(
        first=st.tuples(prefixes(TINY), stream_names(TINY)),
        second=st.tuples(prefixes(TINY), stream_names(TINY)),
        version=versions,
        chunk=chunks,
    )
    def test_tenant_isolation(
        self,
        first: tuple[str, StreamName],
        second: tuple[str, StreamName],
        version: int,
        chunk: int,
    ) -> None:
        """Two distinct (prefix, stream) pairs never share a key, and no chunk key of one lies
        directly under the other's stream prefix (where a '/'-delimited LIST would find it)."""
        if first == second:
            return
        first_keys, second_keys = StreamKeys(first[0]), StreamKeys(second[0])
        key = second_keys.chunk_key(second[1], version, chunk)
        assert key != first_keys.chunk_key(first[1], version, chunk)
        assert first_keys.stream_prefix(first[1]) != second_keys.stream_prefix(second[1])
        stream_prefix = first_keys.stream_prefix(first[1])
        directly_under = key.startswith(stream_prefix) and "/" not in key[len(stream_prefix) :]
        assert not directly_under
        with pytest.raises(CorruptChunk):
            first_keys.parse(first[1], key)
