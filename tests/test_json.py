"""The one JSON of s3es (``s3es._base.json``) and the chunk's two decoders.

orjson reads and writes (fast); the standard library reads what orjson reads otherwise (an
integer beyond 64 bits) and names what is not JSON. These tests hold the fast reading to the
strict one on every input, and the chunk codec's fast path to its converter's.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from s3es import CorruptChunk, StreamName
from s3es._base.json import MAX_DEPTH, dumps, json_problem, loads, strict_loads
from s3es._eventstore.chunk import decode_chunk, encode_chunk
from s3es._eventstore.codec import _decode_strictly, _fast_chunk
from s3es._storage.keys import ChunkKey
from s3es.eventstore import Chunk, EventRecord, Snapshot, StreamKeys

STREAM = StreamName("order", "o-1")
KEYS = StreamKeys("tenant")
WHEN = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)


def _where(version: int = 1) -> ChunkKey:
    return KEYS.parse(STREAM, KEYS.chunk_key(STREAM, version, 0))


def _same(left: Any, right: Any) -> bool:
    """Equal, and of the same types all the way down (1 is not 1.0, -0.0 is not 0.0).

    Without recursion: the documents compared nest up to 1,500 levels.
    """
    pending = [(left, right)]
    while pending:
        one, other = pending.pop()
        if type(one) is not type(other):
            return False
        if isinstance(one, dict):
            if list(one) != list(other):
                return False
            pending.extend((one[key], other[key]) for key in one)
        elif isinstance(one, list):
            if len(one) != len(other):
                return False
            pending.extend(zip(one, other, strict=True))
        elif repr(one) != repr(other):
            return False
    return True


#: Every kind of text: ASCII, non-ASCII, U+0000, and surrogates (paired by the JSON escape or
#: lone, which no UTF-8 holds).
_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=8)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)  # around 64 bits, both sides
    | st.floats()  # NaN and the infinities too
    | _TEXT
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)


def _deep(depth: int, inner: str) -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    """Bytes that are JSON, nearly JSON, or not at all."""
    kind = draw(st.sampled_from(["value", "deep", "duplicates", "mutated", "bytes"]))
    if kind == "deep":
        return _deep(draw(st.integers(1, 1_500)), draw(st.sampled_from(["", "1", "NaN"])))
    if kind == "bytes":
        return draw(st.binary(max_size=40))
    if kind == "duplicates":
        key = json.dumps(draw(_TEXT))
        first, second = draw(_SCALARS), draw(_SCALARS)
        text = f"{{{key}:{json.dumps(first)},{key}:{json.dumps(second)}}}"
        return text.encode("utf-8", "surrogatepass")
    # allow_nan writes NaN and Infinity; without ensure_ascii, a lone surrogate is written raw
    text = json.dumps(draw(_VALUES), ensure_ascii=draw(st.booleans()), allow_nan=True)
    body = text.encode("utf-8", "surrogatepass")
    if kind == "mutated" and body:
        at = draw(st.integers(0, len(body) - 1))
        byte = draw(st.sampled_from([b"\x00", b"\xff", b'"', b"\\", b"{", b"1", b"e", b""]))
        body = body[:at] + byte + body[at + 1 :]
    return body


def _outcome(read: Any, body: bytes) -> tuple[str, Any]:
    try:
        return ("value", read(body))
    except ValueError as error:
        return ("error", type(error))
    # Any other exception (RecursionError, TypeError) fails the test: loads raises ValueError.


class TestLoads:
    @given(body=_bodies())
    @example(body=b"18446744073709551616")  # beyond 64 bits: orjson would read a float
    @example(body=b"-9223372036854775809")
    @example(body=b"123456789012345678901234567890.5")
    @example(body=b"[NaN]")
    @example(body=b"-Infinity")
    @example(body=b"1e400")  # a number no float holds
    @example(body=b'"\\ud800"')  # a lone surrogate escape
    @example(body=b'"\\ud83d\\ude00"')  # a pair: one character
    @example(body=b'"\x00"')  # a raw NUL: a control character
    @example(body=b'"\\u0000"')
    @example(body=b'{"a":1,"a":2}')
    @example(body='{"café":"ü€😀"}'.encode())
    @example(body=b"\xef\xbb\xbf{}")  # a byte order mark
    @example(body=_deep(100_000, ""))
    @settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
    def test_fast_and_strict_agree(self, body: bytes) -> None:
        """loads (orjson, the standard library where they differ) reads every input as
        strict_loads (the standard library alone) does: the same value, of the same types, or
        a ValueError both."""
        fast, strict = _outcome(loads, body), _outcome(strict_loads, body)
        assert fast[0] == strict[0], (fast, strict)
        if fast[0] == "value":
            assert _same(fast[1], strict[1]), (fast, strict)
        else:
            assert fast == strict

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            (b"[NaN]", "NaN is not JSON"),
            (b"[-Infinity]", "-Infinity is not JSON"),
            (b"[1e400]", "the number 1e400 is too large for a float"),
            (b'{"a":"\\udc00"}', "['a']: a lone surrogate '\\udc00' is not Unicode text"),
            (b"\xff", "not UTF-8 JSON"),
            (_deep(100_000, ""), "not UTF-8 JSON"),
        ],
    )
    def test_refused_named(self, body: bytes, problem: str) -> None:
        """What is not JSON is a ValueError naming why, whichever reader reads it."""
        for read in (loads, strict_loads):
            with pytest.raises(ValueError, match=re.escape(problem)):
                read(body)

    def test_long_integers_kept(self) -> None:
        """Integers beyond 64 bits read back exactly, not as floats."""
        assert loads(b"[18446744073709551616, -9223372036854775809]") == [
            2**64,
            -(2**63) - 1,
        ]

    def test_max_depth(self) -> None:
        """A document nesting exactly ``max_depth`` levels is read; one more is refused."""
        assert loads(_deep(MAX_DEPTH, ""), max_depth=MAX_DEPTH) is not None
        with pytest.raises(ValueError, match=f"nests deeper than {MAX_DEPTH} levels"):
            loads(_deep(MAX_DEPTH + 1, ""), max_depth=MAX_DEPTH)

    def test_str_read_as_its_utf8(self) -> None:
        """A str body (SQL's text) reads as its UTF-8 bytes would."""
        assert loads('{"k":"ü","n":18446744073709551616}') == {"k": "ü", "n": 2**64}


class _Colour(Enum):
    RED = "red"


class TestDumps:
    @given(value=_VALUES)
    @settings(max_examples=300)
    def test_json_round_trips(self, value: Any) -> None:
        """A value json_problem calls JSON is written (orjson, or the standard library beyond
        64 bits) and read back the same, by either reader; any other is refused."""
        problem = json_problem(value)
        if problem is not None:
            with pytest.raises(ValueError, match="not"):
                dumps(value)
            return
        body = dumps(value)
        assert body == dumps(value, checked=True)
        assert _same(loads(body), value)
        assert _same(strict_loads(body), value)

    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            ({"x": math.nan}, r"\['x'\]: the float nan is not JSON"),  # orjson: null
            ([math.inf], r"\[0\]: the float inf is not JSON"),  # orjson: null
            ({"id": uuid.UUID(int=1)}, r"\['id'\]: .*\(UUID\) is not JSON"),  # orjson: a str
            ([_Colour.RED], r"\(_Colour\) is not JSON"),  # orjson: "red"
            ([WHEN], r"\(datetime\) is not JSON"),  # orjson: ISO 8601
            ({1: "one"}, "has the key 1 \\(int\\): JSON keys are strings"),  # json: "1"
            (["\ud800"], "a lone surrogate"),
        ],
    )
    def test_not_json_refused(self, value: Any, problem: str) -> None:
        """What orjson or the standard library would write but is not JSON (or would not read
        back as it was) is refused, naming where."""
        with pytest.raises(ValueError, match=problem):
            dumps(value)

    def test_compact_utf8(self) -> None:
        """Compact, and non-ASCII as UTF-8 (U+0000 escaped)."""
        assert dumps({"k": ["é", 1, 2**70, "\x00"]}) == (
            b'{"k":["\xc3\xa9",1,1180591620717411303424,"\\u0000"]}'
        )


def _chunk_document() -> dict[str, Any]:
    chunk = Chunk(
        STREAM,
        1,
        0,
        0,
        "a-1",
        (EventRecord("OrderPlaced", "e-1", {"sku": "x"}, {"user": "u"}, WHEN),),
        Snapshot(1, 1, {"total": 2}),
    )
    document: dict[str, Any] = json.loads(encode_chunk(chunk))
    return document


_FIELDS = st.sampled_from(
    [
        ("stream_type",),
        ("stream_id",),
        ("version",),
        ("chunk",),
        ("base_version",),
        ("append_id",),
        ("events",),
        ("snapshot",),
        ("deleted",),
        ("erased",),
        ("rebased",),
        ("commands",),
        ("events", 0),
        ("events", 0, "type"),
        ("events", 0, "id"),
        ("events", 0, "data"),
        ("events", 0, "metadata"),
        ("events", 0, "recorded_at"),
        ("events", 0, "schema"),
        ("events", 0, "version"),
        ("snapshot", "schema"),
        ("snapshot", "version"),
        ("snapshot", "state"),
        ("snapshot", "commands"),
    ]
)
_FIELD_VALUES = (
    _VALUES
    | st.sampled_from([0, 1, 2, -1, True, False, "order", "o-1", "2026-11-26T12:00:00+00:00"])
    | st.builds(lambda: {"k": [0, 1]})  # a fresh one each time: the test changes them
    | st.builds(lambda: [0, 1])
)


def _change(document: dict[str, Any], changes: list[tuple[tuple[Any, ...], Any]]) -> None:
    """Set each path of ``changes`` whose container ``document`` has to its value."""
    for path, value in changes:
        node: Any = document
        for step in path[:-1]:
            node = _child(node, step)
        if _child(node, path[-1]) is not None or isinstance(node, dict):
            node[path[-1]] = value


def _child(node: Any, step: str | int) -> Any:
    """``node[step]`` if ``node`` has it, else None."""
    if isinstance(node, dict) and isinstance(step, str):
        return node.get(step)
    if isinstance(node, list) and isinstance(step, int) and step < len(node):
        return node[step]
    return None


class TestChunkDecoders:
    @given(changes=st.lists(st.tuples(_FIELDS, _FIELD_VALUES), max_size=3))
    @settings(max_examples=500)
    def test_fast_path_agrees_with_the_converter(
        self, changes: list[tuple[tuple[Any, ...], Any]]
    ) -> None:
        """Whatever a chunk's fields hold, the fast path either declines it or reads the chunk
        the converter reads; and decode_chunk gives the converter's chunk or CorruptChunk."""
        document = _chunk_document()
        _change(document, changes)
        where = _where()
        body = json.dumps(document).encode()  # NaN and lone surrogates as they would be stored
        try:
            stored = strict_loads(body)
        except ValueError:
            with pytest.raises(CorruptChunk):
                decode_chunk(where, body)
            return
        try:
            strict: Chunk | None = _decode_strictly(where, stored)
        except CorruptChunk:
            strict = None
        fast = _fast_chunk(where, stored)
        if fast is not None:
            assert fast == strict
        if strict is None:
            with pytest.raises(CorruptChunk):
                decode_chunk(where, body)
        else:
            assert decode_chunk(where, body) == strict

    def test_number_beyond_a_float_is_corrupt(self) -> None:
        """A chunk holding a number no float holds (1e400, read as infinity) is corrupt: it
        could not be written back, as NaN and Infinity cannot."""
        body = encode_chunk(
            Chunk(
                STREAM,
                1,
                0,
                0,
                "a-1",
                (EventRecord("OrderPlaced", "e-1", {"qty": 7}, {}, WHEN),),
                None,
            )
        ).replace(b'"qty":7', b'"qty":1e400')
        with pytest.raises(CorruptChunk, match="the number 1e400 is too large for a float"):
            decode_chunk(_where(), body)

    def test_lone_surrogate_key_is_corrupt(self) -> None:
        """A chunk whose data has a key holding a lone surrogate escape is corrupt, naming
        where, as a lone surrogate in a value is: it could not be written back."""
        body = encode_chunk(
            Chunk(
                STREAM,
                1,
                0,
                0,
                "a-1",
                (EventRecord("OrderPlaced", "e-1", {"qty": 7}, {}, WHEN),),
                None,
            )
        ).replace(b'"qty":7', b'"\\ud800":7')
        with pytest.raises(CorruptChunk, match=r"\['data'\] has the key '\\ud800': a lone"):
            decode_chunk(_where(), body)
