"""The chunk format: what an append stores, read back exactly, and every corruption named."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3es import CorruptChunk, StreamName
from s3es._eventstore.chunk import decode_chunk, encode_chunk
from s3es._storage.keys import ChunkKey
from s3es.errors import NotJSON
from s3es.eventstore import Chunk, EventRecord, Snapshot, StreamKeys

STREAM = StreamName("order", "o-1")
KEYS = StreamKeys("tenant")
WHEN = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)


def _where(stream: StreamName = STREAM, version: int = 1, chunk: int = 0) -> ChunkKey:
    return KEYS.parse(stream, KEYS.chunk_key(stream, version, chunk))


def _event(data: dict[str, Any] | None = None, **changes: Any) -> EventRecord:
    fields: dict[str, Any] = {
        "type": "OrderPlaced",
        "id": "e-1",
        "data": {"sku": "x", "qty": 2} if data is None else data,
        "metadata": {"user": "u-1"},
        "recorded_at": WHEN,
    }
    return EventRecord(**{**fields, **changes})


def _chunk(**changes: Any) -> Chunk:
    fields: dict[str, Any] = {
        "stream": STREAM,
        "version": 1,
        "number": 0,
        "base_version": 0,
        "append_id": "a-1",
        "events": (_event(),),
        "snapshot": Snapshot(schema=1, version=1, state={"total": 2}),
    }
    return Chunk(**{**fields, **changes})


def _document() -> dict[str, Any]:
    """The stored JSON of a valid chunk 1.0 of order/o-1, to break in one place."""
    document: dict[str, Any] = json.loads(encode_chunk(_chunk()))
    return document


def _decode(document: Any, where: ChunkKey | None = None) -> Chunk:
    return decode_chunk(where or _where(), json.dumps(document).encode())


def _corrupt(body: bytes, where: ChunkKey | None = None) -> CorruptChunk:
    """The CorruptChunk that decoding ``body`` raises; it must name the key."""
    where = where or _where()
    with pytest.raises(CorruptChunk) as raised:
        decode_chunk(where, body)
    error = raised.value
    assert error.key == where.key
    assert repr(where.key) in str(error)
    return error


def _with(change: Callable[[dict[str, Any]], object]) -> bytes:
    document = _document()
    change(document)
    return json.dumps(document).encode()


# Round trip

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
zones = st.sampled_from([UTC, timezone(timedelta(hours=-3, minutes=-30)), None])
segments = st.text(
    st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="/"), min_size=1, max_size=10
).filter(lambda s: s not in {".", ".."})
stream_names = st.builds(StreamName, segments.filter(lambda s: not s.startswith("_")), segments)
events = st.builds(
    EventRecord,
    type=st.text(min_size=1, max_size=20),
    id=st.text(max_size=40),
    data=json_objects,
    metadata=json_objects,
    recorded_at=st.datetimes(timezones=zones),
    schema=st.integers(min_value=1, max_value=50),
)


@st.composite
def chunks(draw: st.DrawFn) -> Chunk:
    """Any valid chunk: unicode names, JSON data, metadata and state, with or without snapshot;
    one append's, or a merged one covering several versions (each event naming its own)."""
    version = draw(st.integers(min_value=1, max_value=10**20 - 1))
    span = draw(st.integers(min_value=1, max_value=min(version, 3)))
    if span == 1:
        drawn = draw(st.lists(events, min_size=1, max_size=4))
    else:
        drawn = [
            attrs.evolve(event, version=covered)
            for covered in range(version - span + 1, version + 1)
            for event in draw(st.lists(events, min_size=1, max_size=2))
        ]
    return Chunk(
        stream=draw(stream_names),
        version=version,
        number=draw(st.integers(min_value=0, max_value=10**6 - 1)),
        base_version=version - span,
        append_id=draw(st.text(max_size=40)),
        events=tuple(drawn),
        snapshot=draw(
            st.none()
            | st.builds(
                Snapshot,
                schema=st.integers(min_value=1, max_value=1000),
                version=st.just(version),
                state=json_values,
            )
        ),
    )


class TestRoundTrip:
    @settings(max_examples=60, deadline=None)
    @given(chunk=chunks())
    def test_any_chunk(self, chunk: Chunk) -> None:
        """Any valid chunk decodes, from the bytes it encodes to, to an equal chunk."""
        where = KEYS.parse(chunk.stream, KEYS.chunk_key(chunk.stream, chunk.version, chunk.number))
        assert decode_chunk(where, encode_chunk(chunk)) == chunk

    def test_stored_as_utf8_not_escaped(self) -> None:
        """Non-ASCII text is stored as UTF-8, not as \\u escapes."""
        body = encode_chunk(_chunk(events=(_event({"name": "Zoë \U0001f600"}),)))
        assert "Zoë \U0001f600".encode() in body

    def test_layout(self) -> None:
        """The stored document has the documented fields, format 1 first."""
        document = _document()
        assert list(document) == [
            "format",
            "stream_type",
            "stream_id",
            "version",
            "chunk",
            "base_version",
            "append_id",
            "events",
            "snapshot",
        ]
        assert document["format"] == 1
        assert document["events"][0]["recorded_at"] == WHEN.isoformat()

    def test_extra_fields_ignored(self) -> None:
        """Fields a newer writer may add, at the top or in an event, are ignored on read."""

        def add(document: dict[str, Any]) -> None:
            document["compressed"] = False
            document["events"][0]["causation_id"] = "c-1"
            document["snapshot"]["hash"] = "h"

        assert decode_chunk(_where(), _with(add)) == _chunk()

    def test_no_snapshot(self) -> None:
        """A chunk without a snapshot stores null and reads back None."""
        assert _decode({**_document(), "snapshot": None}) == _chunk(snapshot=None)


class TestNotAJsonObject:
    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            (b"\xff\xfe{}", "not UTF-8"),
            (b'{"format": 1, "version"', "not UTF-8 JSON"),
            (b"", "not UTF-8 JSON"),
            (b"[]", "expected a JSON object, got list"),
            (b'"chunk"', "expected a JSON object, got str"),
            (b"1", "expected a JSON object, got int"),
            (b"null", "expected a JSON object, got NoneType"),
        ],
    )
    def test_not_a_json_object(self, body: bytes, problem: str) -> None:
        """Bytes that are not UTF-8, not JSON, or JSON but not an object raise CorruptChunk
        naming the key and what was found."""
        assert problem in _corrupt(body).reason

    @pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
    def test_non_finite_numbers(self, constant: str) -> None:
        """NaN and the infinities (which Python's json reads by default) are not JSON."""
        body = _with(lambda d: d.update(version="@")).replace(b'"@"', constant.encode())
        assert f"{constant} is not JSON" in _corrupt(body).reason

    @pytest.mark.parametrize("escape", [b"\\ud800", b"\\uDFFF", b"x\\udc00", b"\\ude00\\ud83d"])
    def test_lone_surrogate(self, escape: bytes) -> None:
        """A lone surrogate escape (valid JSON, valid UTF-8, but no Unicode text: no chunk
        can be written with it) is corrupt, naming where it is."""
        body = _with(lambda d: d["events"][0]["metadata"].update(note="@")).replace(
            b'"@"', b'"' + escape + b'"'
        )
        reason = _corrupt(body).reason
        assert reason.startswith("['events'][0]['metadata']['note']: a lone surrogate")

    def test_surrogate_pair_escape(self) -> None:
        """A surrogate pair escape is one character (an emoji): it reads as such."""
        body = _with(lambda d: d["events"][0]["data"].update(sku="@")).replace(
            b'"@"', b'"\\ud83d\\ude00 and \\\\ud800"'
        )
        assert decode_chunk(_where(), body).events[0].data["sku"] == "\U0001f600 and \\ud800"

    def test_non_finite_in_data(self) -> None:
        """A NaN deep in an event's data is refused too."""
        body = _with(lambda d: d["events"][0]["data"].update(qty="@")).replace(b'"@"', b"NaN")
        assert "NaN" in _corrupt(body).reason


class TestFormat:
    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(2, id="newer"),
            pytest.param(0, id="zero"),
            pytest.param("1", id="str"),
            pytest.param(None, id="null"),
            pytest.param(True, id="bool"),
            pytest.param(1.0, id="float"),
        ],
    )
    def test_unknown(self, value: Any) -> None:
        """A format other than the int 1 raises CorruptChunk naming the format found."""
        assert f"chunk format {value!r}" in _corrupt(_with(lambda d: d.update(format=value))).reason

    def test_missing(self) -> None:
        """A document without a format raises CorruptChunk naming the format."""
        assert "chunk format None" in _corrupt(_with(lambda d: d.pop("format"))).reason


TOP_LEVEL = ["stream_type", "stream_id", "version", "chunk", "base_version", "append_id", "events"]
EVENT_FIELDS = ["type", "id", "data", "metadata", "recorded_at"]
SNAPSHOT_FIELDS = ["schema", "version", "state"]


class TestMissingField:
    @pytest.mark.parametrize("field", [*TOP_LEVEL, "snapshot"])
    def test_top_level(self, field: str) -> None:
        """A document without a required field raises CorruptChunk naming the field."""
        error = _corrupt(_with(lambda d: d.pop(field)))
        assert f"missing field {field!r}" in error.reason

    @pytest.mark.parametrize("field", EVENT_FIELDS)
    def test_event_field(self, field: str) -> None:
        """An event without a required field raises CorruptChunk naming the field."""
        error = _corrupt(_with(lambda d: d["events"][0].pop(field)))
        assert "required field missing" in error.reason
        assert f"[0].{field}" in error.reason

    @pytest.mark.parametrize("field", SNAPSHOT_FIELDS)
    def test_snapshot_field(self, field: str) -> None:
        """A snapshot without a required field raises CorruptChunk naming the field."""
        error = _corrupt(_with(lambda d: d["snapshot"].pop(field)))
        assert "required field missing" in error.reason
        assert f".{field}" in error.reason


class TestMistypedField:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            pytest.param("version", "1", id="version-str"),
            pytest.param("version", 1.0, id="version-float"),
            pytest.param("version", True, id="version-bool"),
            pytest.param("version", None, id="version-null"),
            pytest.param("chunk", "0", id="chunk-str"),
            pytest.param("chunk", False, id="chunk-bool"),
            pytest.param("base_version", 0.0, id="base-float"),
            pytest.param("stream_type", 1, id="type-int"),
            pytest.param("stream_id", None, id="id-null"),
            pytest.param("append_id", ["a"], id="append-id-list"),
            pytest.param("version", -1, id="version-negative"),
            pytest.param("chunk", -1, id="chunk-negative"),
        ],
    )
    def test_top_level(self, field: str, value: Any) -> None:
        """A field of the wrong JSON type (a str, float or bool for an int...) raises
        CorruptChunk naming the field and what it holds."""
        error = _corrupt(_with(lambda d: d.update({field: value})))
        assert repr(value) in error.reason
        assert field in error.reason

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("type", 1),
            ("id", None),
            ("data", []),
            ("data", None),
            ("metadata", "m"),
            ("recorded_at", 5),
            ("recorded_at", "yesterday"),
        ],
    )
    def test_event_field(self, field: str, value: Any) -> None:
        """An event field of the wrong type raises CorruptChunk naming the field."""
        error = _corrupt(_with(lambda d: d["events"][0].update({field: value})))
        assert f"[0].{field}" in error.reason

    @pytest.mark.parametrize(("field", "value"), [("schema", "1"), ("version", True)])
    def test_snapshot_field(self, field: str, value: Any) -> None:
        """A snapshot field of the wrong type raises CorruptChunk naming the field."""
        error = _corrupt(_with(lambda d: d["snapshot"].update({field: value})))
        assert f".{field}" in error.reason

    @pytest.mark.parametrize(
        ("change", "path"),
        [
            pytest.param(lambda d: d["events"][0].update(id=None), "events[0].id", id="event-id"),
            pytest.param(
                lambda d: d["snapshot"].update(version=None), "snapshot.version", id="snapshot"
            ),
        ],
    )
    def test_nested_path_from_document(
        self, change: Callable[[dict[str, Any]], object], path: str
    ) -> None:
        """The message gives the full path of a nested field from the document's root."""
        assert path in _corrupt(_with(change)).reason

    @pytest.mark.parametrize("value", ["abc", {"type": "E"}, [1], [None]])
    def test_events_not_a_list_of_objects(self, value: Any) -> None:
        """Events that are not a list of objects raise CorruptChunk."""
        _corrupt(_with(lambda d: d.update(events=value)))

    @pytest.mark.parametrize("value", [5, "s", []])
    def test_snapshot_not_an_object(self, value: Any) -> None:
        """A snapshot that is neither null nor an object raises CorruptChunk."""
        _corrupt(_with(lambda d: d.update(snapshot=value)))

    def test_invalid_stream_name(self) -> None:
        """A stream id that no valid stream has (it holds '/') raises CorruptChunk naming it."""
        error = _corrupt(_with(lambda d: d.update(stream_id="o/1")))
        assert "'o/1'" in error.reason


class TestContradiction:
    @pytest.mark.parametrize(
        ("change", "says"),
        [
            (lambda d: d.update(stream_type="invoice"), "stream invoice/o-1 version 1 chunk 0"),
            (lambda d: d.update(stream_id="o-2"), "stream order/o-2 version 1 chunk 0"),
            (
                lambda d: d.update(version=2, base_version=1, snapshot=None),
                "stream order/o-1 version 2 chunk 0",
            ),
            (lambda d: d.update(chunk=1), "stream order/o-1 version 1 chunk 1"),
        ],
    )
    def test_content_contradicts_key(
        self, change: Callable[[dict[str, Any]], object], says: str
    ) -> None:
        """Content of another stream, version or chunk number than its key says raises
        CorruptChunk naming both."""
        error = _corrupt(_with(change))
        assert f"content says {says}" in error.reason
        assert "the key says stream order/o-1 version 1 chunk 0" in error.reason

    @pytest.mark.parametrize("base", [1, 2])
    def test_base_version_not_below_version(self, base: int) -> None:
        """A base_version at or above the version raises CorruptChunk naming both."""
        error = _corrupt(_with(lambda d: d.update(base_version=base)))
        assert f"base_version ({base}) must be below version (1)" in error.reason

    def test_no_events(self) -> None:
        """A chunk with an empty event list raises CorruptChunk."""
        assert "at least one event" in _corrupt(_with(lambda d: d.update(events=[]))).reason

    def test_snapshot_of_another_version(self) -> None:
        """A snapshot whose version is not the chunk's raises CorruptChunk naming both."""
        error = _corrupt(_with(lambda d: d["snapshot"].update(version=2)))
        assert "snapshot version (2) is not the chunk's (1)" in error.reason


class TestChunkValidation:
    @pytest.mark.parametrize(
        ("changes", "problem"),
        [
            ({"base_version": 1}, "base_version (1) must be below version (1)"),
            ({"events": ()}, "at least one event"),
            ({"snapshot": Snapshot(1, 2, {})}, "snapshot version (2)"),
            ({"version": -1}, "'version' must be >= 0: -1"),
            ({"number": -1}, "'number' must be >= 0: -1"),
        ],
    )
    def test_invalid_chunk_refused(self, changes: dict[str, Any], problem: str) -> None:
        """A Chunk that could not be stored is refused when it is made."""
        with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
            _chunk(**changes)


class TestEncodeErrors:
    @pytest.mark.parametrize(
        ("chunk", "problem"),
        [
            pytest.param(
                _chunk(events=(_event({"when": object()}),)),
                r"event 1 of 1 \(type 'OrderPlaced'\): data\['when'\]: <object object at .*"
                r"\(object\) is not JSON",
                id="object-in-data",
            ),
            pytest.param(
                _chunk(events=(_event({"x": [float("nan")]}),)),
                r"event 1 of 1 \(type 'OrderPlaced'\): data\['x'\]\[0\]: the float nan",
                id="nan-in-data",
            ),
            pytest.param(
                _chunk(events=(_event(metadata={"x": float("inf")}),)),
                r"metadata\['x'\]: the float inf is not JSON",
                id="inf-in-metadata",
            ),
            pytest.param(
                _chunk(events=(_event({"counts": {1: 2}}),)),
                r"data\['counts'\] has the key 1 \(int\): JSON keys are strings",
                id="int-key-in-data",
            ),
            pytest.param(
                _chunk(events=(_event({"counts": {(1, 2): 2}}),)),
                r"data\['counts'\] has the key \(1, 2\) \(tuple\): JSON keys are strings",
                id="tuple-key-in-data",
            ),
            pytest.param(
                _chunk(snapshot=Snapshot(1, 1, {"x": object()})),
                r"snapshot of version 1: state\['x'\]: <object",
                id="object-in-state",
            ),
        ],
    )
    def test_not_json(self, chunk: Chunk, problem: str) -> None:
        """A chunk whose data, metadata or state is not JSON raises NotJSON (a ValueError)
        naming the stream, the event and its type, and the field, before anything is sent."""
        with pytest.raises(NotJSON, match=f"^stream order/o-1, .*{problem}"):
            encode_chunk(chunk)

    def test_lone_surrogate(self) -> None:
        """Text with a lone surrogate (not encodable as UTF-8) raises NotJSON naming the
        stream, the event and the field."""
        with pytest.raises(NotJSON, match=r"order/o-1, event 1 of 1 .*data\['name'\]"):
            encode_chunk(_chunk(events=(_event({"name": "\ud800"}),)))


# An erasure's fence (``"rebased": true``)


def _fence(version: int = 2, snapshot: Snapshot | None = None, **changes: Any) -> Chunk:
    fields: dict[str, Any] = {
        "stream": STREAM,
        "version": version,
        "number": 0,
        "base_version": version - 1,
        "append_id": "erasure-1",
        "events": (),
        "snapshot": snapshot,
        "rebased": True,
    }
    return Chunk(**{**fields, **changes})


class TestFence:
    @pytest.mark.parametrize(
        "snapshot", [None, Snapshot(1, 2, {"total": 2})], ids=["no state", "state"]
    )
    def test_round_trip(self, snapshot: Snapshot | None) -> None:
        """A fence, with its state or without, is stored with "rebased": true and no event,
        and reads back equal (by the fast path and by the converter's)."""
        chunk = _fence(snapshot=snapshot)
        body = encode_chunk(chunk)
        document = json.loads(body)
        assert (document["rebased"], document["events"]) == (True, [])
        assert decode_chunk(_where(version=2), body) == chunk
        document["format_note"] = "an unknown field sends the converter's way"
        document["rebased"] = 1  # not a bool: the fast path declines, the converter names it
        assert "rebased" in _corrupt(json.dumps(document).encode(), _where(version=2)).reason

    def test_older_code_refuses_a_fence(self) -> None:
        """Code that does not know the flag reads a fence as a chunk with no event and no
        tombstone or erased flag: corrupt, never a version with an empty fold onto a state
        that may hold what the erasure removed. So the format stays 1."""
        document = json.loads(encode_chunk(_fence(snapshot=Snapshot(1, 2, {}))))
        del document["rebased"]  # what older code, which ignores unknown fields, sees
        error = _corrupt(json.dumps(document).encode(), _where(version=2))
        assert "at least one event" in error.reason

    @pytest.mark.parametrize(
        ("changes", "problem"),
        [
            ({"events": (_event(),)}, "fence (rebased) holds no event"),
            ({"deleted": True}, "is no fence"),
            ({"erased": True}, "is no fence"),
            ({"snapshot": Snapshot(1, 3, {})}, "snapshot version (3) is not the chunk's (2)"),
        ],
    )
    def test_invalid_fence_refused(self, changes: dict[str, Any], problem: str) -> None:
        """A fence with an event, also a tombstone or erased, or with the snapshot of another
        version is refused when it is made."""
        fields = {"snapshot": None, **changes}
        with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
            _fence(**fields)

    def test_merged_chunk_over_a_fence(self) -> None:
        """A merged chunk may cover a version with no event (a fence it stands for), even
        its own; its events must still name versions in its range, in order."""
        events = (_event(version=1), _event(version=3))
        merged = _chunk(version=4, number=1, base_version=0, events=events, snapshot=None)
        assert decode_chunk(_where(version=4, chunk=1), encode_chunk(merged)) == merged
        with pytest.raises(ValueError, match="must name versions among them, in order"):
            _chunk(version=4, base_version=0, events=events[::-1], snapshot=None)
        with pytest.raises(ValueError, match="must name versions among them, in order"):
            _chunk(version=2, base_version=0, events=events, snapshot=None)


def _with_commands(**changes: Any) -> Chunk:
    """Chunk 2.0 of two events, the first stored by command k-2, with a window of two ids."""
    fields: dict[str, Any] = {
        "version": 2,
        "base_version": 1,
        "events": (_event(), _event(id="e-2")),
        "snapshot": Snapshot(1, 2, {"total": 4}, {"k-1": 1, "k-2": 2}),
        "commands": {"k-2": (0, 1)},
    }
    return _chunk(**{**fields, **changes})


class TestCommands:
    def test_round_trip(self) -> None:
        """A chunk's command ids (with their events) and its snapshot's window read back, by
        the fast path and by the converter alike."""
        from s3es._eventstore.codec import _decode_strictly  # noqa: PLC0415

        chunk = _with_commands()
        body = encode_chunk(chunk)
        document = json.loads(body)
        assert document["commands"] == {"k-2": [0, 1]}
        assert document["snapshot"]["commands"] == {"k-1": 1, "k-2": 2}
        assert decode_chunk(_where(version=2), body) == chunk
        assert _decode_strictly(_where(version=2), document) == chunk

    def test_left_out_when_empty(self) -> None:
        """A chunk without command ids is stored exactly as before the field existed."""
        document = _document()
        assert "commands" not in document
        assert "commands" not in document["snapshot"]
        assert _decode(document).commands == {}
        snapshot = _decode(document).snapshot
        assert snapshot is not None
        assert snapshot.commands == {}

    def test_older_code_ignores_them(self) -> None:
        """Code that does not know the fields reads the chunk as one without them (unknown
        fields are ignored): the events and state are the same, so the format stays 1."""
        chunk = _with_commands()
        document = json.loads(encode_chunk(chunk))
        del document["commands"], document["snapshot"]["commands"]
        expected = attrs.evolve(chunk, commands={}, snapshot=Snapshot(1, 2, {"total": 4}))
        assert _decode(document, _where(version=2)) == expected

    @pytest.mark.parametrize(
        ("change", "problem"),
        [
            (lambda d: d.update(commands={"k-2": [0]}), "commands"),
            (lambda d: d.update(commands={"k-2": "0-1"}), "commands"),
            (lambda d: d.update(commands=["k-2"]), "commands"),
            (lambda d: d.update(commands={"k-2": [0, 3]}), "names events 0 to 3"),
            (lambda d: d.update(commands={"k-2": [1, 1]}), "names events 1 to 1"),
            (lambda d: d["snapshot"].update(commands={"k-1": "1"}), "commands"),
            (lambda d: d["snapshot"].update(commands={"k-1": True}), "commands"),
            (lambda d: d["snapshot"].update(commands=["k-1"]), "commands"),
        ],
    )
    def test_mistyped_commands_are_corrupt(
        self, change: Callable[[dict[str, Any]], object], problem: str
    ) -> None:
        """Command ids that are not a JSON object of event ranges (in the chunk) or of
        versions (in the snapshot) make the chunk corrupt, naming the field."""
        document = json.loads(encode_chunk(_with_commands()))
        change(document)
        error = _corrupt(json.dumps(document).encode(), _where(version=2))
        assert problem in str(error)

    def test_a_command_holds_an_event(self) -> None:
        """A chunk naming a command whose range is empty or past its events is refused."""
        with pytest.raises(ValueError, match="names events 0 to 0"):
            _with_commands(commands={"k-2": (0, 0)})
