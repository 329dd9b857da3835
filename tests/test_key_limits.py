"""Every key s3es builds fits S3's 1,024 bytes, for every name the library accepts.

The event store bounds a stream's name by its own keys (chunk and change-feed keys); the read
models' keys hold the stream's name too (a position per stream, for projections and reactors
alike), beside the projection's name and a generation: they must fit as well, or a store that
enforces S3's limit (S3, the in-memory store, the embedded endpoint) fails every pass.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3es import InMemoryObjectStore
from s3es._storage.keys import MAX_KEY_BYTES, StreamKeys, StreamName
from s3es.errors import InvalidStreamName
from s3es.readmodels import MAX_DOCUMENT_KEY_BYTES, Change, Generation, S3ReadModelStore, ShardState

#: Characters of 1, 2, 3 and 4 bytes of UTF-8, upper and lower case.
CHARACTERS = st.sampled_from(["a", "B", "-", "\u00e9", "\u00c9", "\u20ac", "\U0001f600", "~"])
#: The largest generation, shard and number of shards the layout makes room for.
LARGEST = 10**19 - 1


def _longest(make: object, character: str = "x", limit: int = MAX_KEY_BYTES) -> str | None:
    """The longest run of ``character`` that ``make`` (a callable) accepts; None if none."""
    assert callable(make)
    low, high = 0, limit + 1
    while high - low > 1:  # the longest accepted run, by bisection
        middle = (low + high) // 2
        try:
            make(character * middle)
        except InvalidStreamName:
            high = middle
        else:
            low = middle
    return character * low if low else None


def _longest_id(keys: StreamKeys, stream_type: str, character: str) -> str | None:
    return _longest(lambda value: keys.stream_prefix(StreamName(stream_type, value)), character)


def _all_keys(
    keys: StreamKeys, projection: str, stream: StreamName, generation: int, shards: int
) -> list[str]:
    """Every object key of the layout that names this projection, stream and generation."""
    document = "\U0001f600" * (MAX_DOCUMENT_KEY_BYTES // 4)
    percent = "%" * MAX_DOCUMENT_KEY_BYTES  # each quoted as "%25": three bytes for one
    return [
        keys.chunk_key(stream, 10**20 - 1, 999_999),
        keys.feed_key(stream, 10**20 - 1, 10**13 - 1),
        keys.read_model_key(projection),
        keys.lease_key(projection),
        keys.shard_lease_key(projection, shards - 1, shards),
        keys.generations_key(projection),
        keys.document_key(projection, generation, document),
        keys.document_key(projection, generation, percent),
        keys.position_key(projection, generation, stream),
        keys.shard_state_key(projection, generation, shards - 1, shards),
    ]


class TestReadModelKeys:
    def test_position_of_the_longest_stream_fits(self) -> None:
        """A 972-character stream id under prefix 'shop' (the longest the event store takes
        there) has a position the S3 store can write, where its plain key would be 1,033 bytes.
        """
        events = StreamKeys("shop")
        stream_id = _longest_id(events, "order", "x")
        assert stream_id is not None
        assert len(stream_id) == 972
        store = S3ReadModelStore(InMemoryObjectStore(), prefix="shop")
        generation = Generation("order-totals-by-customer", 1, 1)
        stream = f"order/{stream_id}"
        plain = f"shop/_readmodels/{generation.projection}/g1/positions/{stream}"
        assert len(plain.encode()) == 1033
        store.commit(generation, [Change("o-1", {"n": 1}, None)], {stream: 3}, ShardState(0, 1, 1))
        assert store.positions(generation, [stream, "order/short"]) == {stream: 3}
        state = store.shard_state(generation, 0, 1)
        assert state is not None
        store.commit(generation, [], {stream: 4}, state)
        assert store.positions(generation, [stream]) == {stream: 4}
        store.drop(generation)
        assert store.positions(generation, [stream]) == {}

    def test_long_positions_stay_apart(self) -> None:
        """Positions too long for a plain key are kept under a digest of the stream: two
        streams never share one, nor meet a plain key."""
        keys = StreamKeys("shop")
        longest = _longest_id(keys, "order", "x")
        assert longest is not None
        streams = [
            StreamName("order", longest),
            StreamName("order", longest[:-1] + "y"),
            StreamName("order", longest[:-1]),
            StreamName("order", "x"),
        ]
        made = [keys.position_key("orders", 7, stream) for stream in streams]
        assert len(set(made)) == len(made)
        assert all(len(key.encode()) <= MAX_KEY_BYTES for key in made)
        assert made[-1].endswith("/positions/order/x")

    @pytest.mark.parametrize("prefix", ["", "shop", "t/" * 150 + "t"])
    def test_too_long_a_projection_name_is_refused(self, prefix: str) -> None:
        """A projection name that leaves no room for its longest keys is refused when its
        first key is made, naming the projection and the prefix: never a key too long."""
        keys = StreamKeys(prefix)
        longest = _longest(keys.read_models_prefix)
        assert longest is not None
        for key in _all_keys(keys, longest, StreamName("order", "o-1"), LARGEST, LARGEST):
            assert len(key.encode()) <= MAX_KEY_BYTES
        with pytest.raises(InvalidStreamName) as raised:
            keys.generations_key(longest + "x")
        assert repr(longest + "x") in str(raised.value)
        assert repr(prefix) in str(raised.value)

    @pytest.mark.parametrize("number", [-1, LARGEST + 1])
    def test_generation_out_of_range(self, number: int) -> None:
        """A generation the layout makes no room for is refused."""
        with pytest.raises(ValueError, match=str(number)):
            StreamKeys().generation_prefix("orders", number)


@st.composite
def _layouts(draw: st.DrawFn) -> tuple[StreamKeys, str, StreamName, int, int]:
    """A prefix, a projection name and a stream the library accepts, often the longest."""
    segments = draw(st.lists(st.text(CHARACTERS, min_size=1, max_size=40), max_size=3))
    keys = StreamKeys("/".join(segments))
    character = draw(CHARACTERS)
    projection = draw(st.text(CHARACTERS, min_size=1, max_size=80))
    if draw(st.booleans()):
        projection = _longest(keys.read_models_prefix, character) or projection
    stream_type = draw(st.text(CHARACTERS, min_size=1, max_size=40).filter(str.isalpha))
    if draw(st.booleans()):
        stream_type = stream_type.swapcase()
    stream_id = draw(st.text(CHARACTERS, min_size=1, max_size=200))
    if draw(st.booleans()):
        stream_id = _longest_id(keys, stream_type, character) or stream_id
    generation = draw(st.sampled_from([0, 1, 9, 10, 12345, LARGEST]))
    shards = draw(st.sampled_from([1, 2, 16, LARGEST]))
    return keys, projection, StreamName(stream_type, stream_id), generation, shards


class TestEveryKeyFits:
    @settings(max_examples=300, deadline=None)
    @given(_layouts())
    def test_every_key_fits(self, layout: tuple[StreamKeys, str, StreamName, int, int]) -> None:
        """For any prefix, projection name, stream and generation the library accepts (the
        longest among them, non-ASCII, case variants), every key of the layout is at most
        1,024 bytes of UTF-8; what it refuses, it refuses as InvalidStreamName when the
        name's first key is made.
        """
        keys, projection, stream, generation, shards = layout
        try:
            keys.stream_prefix(stream)
            keys.read_models_prefix(projection)
            keys.projection_prefix(projection)
        except InvalidStreamName:
            return
        for key in _all_keys(keys, projection, stream, generation, shards):
            assert len(key.encode()) <= MAX_KEY_BYTES, key
