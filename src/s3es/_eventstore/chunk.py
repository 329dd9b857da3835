"""The chunk: the one JSON object an append writes, and its (de)serialisation.

A chunk holds the events of one append and a snapshot of the state after them::

    {
      "format": 1,
      "stream_type": "order", "stream_id": "o-1",
      "version": 3, "chunk": 0, "base_version": 2,
      "append_id": "5f0c...",
      "events": [
        {"type": "PaymentRecorded", "id": "9b1e...", "data": {...}, "metadata": {...},
         "recorded_at": "2026-11-26T12:00:00.123456+00:00"}
      ],
      "snapshot": {"schema": 1, "version": 3, "state": {...}}
    }

``events`` are the events that took the stream from ``base_version`` to ``version``
(``base_version == version - 1`` for an append). A chunk re-written for the same version
(``chunk`` > 0) carries the same events and a new snapshot. A tombstone (``"deleted": true``,
no events, no snapshot) marks the version at which the stream was deleted; an erased chunk
(``"erased": true``, no events, no snapshot) keeps the key of a chunk whose content an erasure
removed, after a merged chunk took over its (redacted) events.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from s3es._base.converter import make_strict_converter
from s3es._storage.keys import ChunkKey, StreamName
from s3es.errors import CorruptChunk, NotJSON

#: The chunk format this code writes and the newest it reads.
CHUNK_FORMAT: Final = 1
#: How deeply a chunk's JSON may nest, the document itself being level 1 (its events' data
#: starts at level 5). Deeper chunks are refused when written and corrupt when read: parsing,
#: converting and re-writing them recurse, and would stop at Python's recursion limit with a
#: RecursionError. serde_json's default limit is the same.
MAX_JSON_DEPTH: Final = 128


@attrs.frozen
class EventRecord:
    """One stored event: its registered type name, a unique id, and JSON data and metadata.

    ``schema`` is the version of the event type's data shape (1 unless the aggregate says
    otherwise; upcasters bring older ones up to date). ``version`` is the stream version whose
    append stored the event, given only in a chunk that covers several versions (a compacted
    one); None means the chunk's own version. Both are left out of the JSON at their default.
    """

    type: str
    id: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any]
    recorded_at: datetime
    schema: int = 1
    version: int | None = None


@attrs.frozen
class Snapshot:
    """The state after ``version``, as JSON, stamped with the schema of the code that wrote it."""

    schema: int
    version: int
    state: Any


@attrs.frozen
class Chunk:
    """The content of one chunk object, as stored."""

    stream: StreamName
    version: int = attrs.field(validator=attrs.validators.ge(0))
    number: int = attrs.field(validator=attrs.validators.ge(0))
    base_version: int = attrs.field(validator=attrs.validators.ge(0))
    append_id: str
    events: tuple[EventRecord, ...]
    snapshot: Snapshot | None
    #: A tombstone: the stream was deleted at this version. It holds no event and no snapshot.
    deleted: bool = False
    #: What an erasure left of a chunk: its key and version, no event, no snapshot.
    erased: bool = False

    def __attrs_post_init__(self) -> None:
        if not self.base_version < self.version:
            raise ValueError(
                f"base_version ({self.base_version}) must be below version ({self.version})"
            )
        if self.deleted or self.erased:
            if self.events or self.snapshot is not None:
                raise ValueError("a tombstone or an erased chunk holds no event and no snapshot")
            return
        if not self.events:
            raise ValueError("a chunk holds at least one event")
        if self.version - self.base_version > 1:
            self._check_event_versions()
        elif any(e.version not in {None, self.version} for e in self.events):
            raise ValueError(f"an event of a chunk of version {self.version} names another")
        if self.snapshot is not None and self.snapshot.version != self.version:
            raise ValueError(
                f"snapshot version ({self.snapshot.version}) is not the chunk's ({self.version})"
            )

    def _check_event_versions(self) -> None:
        """A chunk covering several versions names each event's, in order, each at least once."""
        versions = [event.version for event in self.events if event.version is not None]
        if len(versions) != len(self.events):
            raise ValueError(
                f"a chunk of versions {self.base_version + 1} to {self.version} must name the "
                "version of every event"
            )
        covered = range(self.base_version + 1, self.version + 1)
        if versions != sorted(versions) or sorted(set(versions)) != list(covered):
            raise ValueError(
                f"the events of a chunk of versions {covered.start} to {covered.stop - 1} must "
                f"cover each of them, in order; they name {versions}"
            )


def _make_converter() -> cattrs.Converter:
    # Fields this code does not know are read and ignored (docs/chunk-format.md).
    converter = make_strict_converter(forbid_extra_keys=False)
    converter.register_unstructure_hook(
        EventRecord,
        make_dict_unstructure_fn(
            EventRecord,
            converter,
            schema=override(omit_if_default=True),
            version=override(omit_if_default=True),
        ),
    )
    return converter


_converter: Final = _make_converter()


def encode_chunk(chunk: Chunk) -> bytes:
    """The chunk as UTF-8 JSON bytes, as stored.

    Raises NotJSON (a ValueError naming the stream, the event, its type and the field) if an
    event's data or metadata, or the snapshot's state, is not JSON once converted (see
    :func:`json_problem`), or if the chunk nests deeper than :data:`MAX_JSON_DEPTH`.
    """
    try:
        events = _converter.unstructure(chunk.events)
        snapshot = _converter.unstructure(chunk.snapshot)
    except (TypeError, ValueError, RecursionError) as error:
        raise _unconvertible(chunk, error) from error
    _check_json(chunk, events, snapshot)
    document = {
        "format": CHUNK_FORMAT,
        "stream_type": chunk.stream.type,
        "stream_id": chunk.stream.id,
        "version": chunk.version,
        "chunk": chunk.number,
        "base_version": chunk.base_version,
        "append_id": chunk.append_id,
        "events": events,
        "snapshot": snapshot,
    }
    if chunk.deleted:
        document["deleted"] = True
    if chunk.erased:
        document["erased"] = True
    try:
        return _dumps(document)
    except (TypeError, ValueError, RecursionError) as error:
        raise NotJSON(
            f"chunk {chunk.version}.{chunk.number} of stream {chunk.stream} is not JSON: {error}"
        ) from error


def _event_problem(chunk: Chunk, index: int, event_type: str, problem: str) -> NotJSON:
    return NotJSON(
        f"stream {chunk.stream}, event {index} of {len(chunk.events)} "
        f"(type {event_type!r}): {problem}"
    )


def _check_json(chunk: Chunk, events: Any, snapshot: Any) -> None:
    """Raise NotJSON, naming the stream, event, type and field, for a part that is not JSON.

    ``events`` and ``snapshot`` are ``chunk``'s, converted.
    """
    for index, event in enumerate(events, start=1):
        for name in ("data", "metadata"):
            value = event[name]
            problem = (
                json_problem(value, name)
                if isinstance(value, Mapping)
                else f"{name} must be a mapping (a JSON object), not {type(value).__qualname__}"
            )
            if problem:
                raise _event_problem(chunk, index, event["type"], problem)
    if snapshot is not None:
        problem = json_problem(snapshot["state"], "state")
        if problem:
            raise NotJSON(
                f"stream {chunk.stream}, snapshot of version {snapshot['version']}: {problem}"
            )


def _unconvertible(chunk: Chunk, error: Exception) -> NotJSON:
    """The NotJSON for a chunk the converter failed on: which event and field, if it can tell."""
    for index, event in enumerate(chunk.events, start=1):
        for name, value in (("data", event.data), ("metadata", event.metadata)):
            try:
                _converter.unstructure(value, Mapping[str, Any])
            except (TypeError, ValueError, RecursionError) as failure:
                # A key that is not a str (a tuple becomes an unhashable list) is the usual one.
                problem = json_problem(value, name, keys_only=True) or f"{name}: {failure}"
                return _event_problem(chunk, index, event.type, problem)
    return NotJSON(
        f"chunk {chunk.version}.{chunk.number} of stream {chunk.stream} is not JSON: {error}"
    )


def _scalar_problem(value: Any) -> str | None:
    """Why ``value``, neither object nor array, is not JSON; None if it is."""
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"the float {value!r} is not JSON"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            return f"a lone surrogate {value[error.start]!r} is not Unicode text"
        return None
    return (
        f"{value!r:.80} ({type(value).__qualname__}) is not JSON: not an object, array, string, "
        "number, bool or null"
    )


def _key_problem(node: Mapping[Any, Any], where: str) -> str | None:
    for key in node:
        if not isinstance(key, str):
            return (
                f"{where or 'the value'} has the key {key!r} ({type(key).__qualname__}): "
                "JSON keys are strings"
            )
    return None


def json_problem(value: Any, path: str = "", *, keys_only: bool = False) -> str | None:
    """What makes ``value`` not JSON, naming where (``data['lines'][0]``), or None if it is.

    JSON is mappings with str keys, lists or tuples, str (valid Unicode: no lone surrogate),
    int, finite float, bool and None. A key that is not a str is refused even where
    ``json.dumps`` would turn it into one: ``{1: ...}`` would read back as ``{"1": ...}``.
    Objects and arrays below :data:`MAX_JSON_DEPTH` levels are not looked into (storing them
    fails on their depth). ``keys_only`` looks at keys alone. The walk goes without recursion.
    """
    if not isinstance(value, Mapping | list | tuple):
        problem = None if keys_only else _scalar_problem(value)
        return f"{path}: {problem}" if problem and path else problem
    pending: list[tuple[Any, str, int]] = [(value, path, 1)]
    while pending:
        node, where, depth = pending.pop()
        if isinstance(node, Mapping):
            problem = _key_problem(node, where)
            if problem is not None:
                return problem
            items: Any = node.items()
        else:
            items = enumerate(node)
        if depth > MAX_JSON_DEPTH:
            continue
        for key, child in items:
            if isinstance(child, Mapping | list | tuple):
                pending.append((child, f"{where}[{key!r}]", depth + 1))
            elif not keys_only and (problem := _scalar_problem(child)) is not None:
                return f"{where}[{key!r}]: {problem}"
    return None


def _dumps(document: dict[str, Any]) -> bytes:
    """``document`` as compact UTF-8 JSON; ValueError if it is not JSON or nests too deeply."""
    text = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    if _nested_deeper(document, text.count("[") + text.count("{")):
        raise ValueError(f"it nests deeper than {MAX_JSON_DEPTH} levels")
    return text.encode()  # a lone surrogate passes json.dumps and fails here


#: The JSON escape of a UTF-16 surrogate, which json.loads reads into a str only when it is
#: not part of a pair.
_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _nested_deeper(document: Any, brackets: int, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``document`` nests more than ``limit`` levels of objects and arrays.

    ``brackets`` counts the ``[`` and ``{`` of its text: a document cannot nest deeper than
    that, so most chunks need no walk. The walk goes level by level, without recursion.
    """
    if brackets <= limit:
        return False
    level = [document] if isinstance(document, dict | list) else []
    for _ in range(limit):
        level = [
            child
            for value in level
            for child in (value.values() if isinstance(value, dict) else value)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def _parse(key: str, body: bytes) -> Any:
    r"""The JSON document in ``body``.

    Raises CorruptChunk naming ``key`` if it is not UTF-8 JSON, nests deeper than
    :data:`MAX_JSON_DEPTH` (never RecursionError), or holds a lone surrogate escape
    (``"\ud800"``), which no chunk can be written with.
    """
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CorruptChunk(key, f"not UTF-8 JSON: {error}") from error
    if _nested_deeper(document, body.count(b"[") + body.count(b"{")):
        raise CorruptChunk(key, f"its JSON nests deeper than {MAX_JSON_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(body):
        # "\ud800" is valid JSON and valid UTF-8, but no Unicode text: writing it fails.
        problem = json_problem(document)
        if problem is not None:
            raise CorruptChunk(key, problem)
    return document


def _field(key: str, document: Mapping[str, Any], name: str, kind: Any) -> Any:
    """Field ``name`` of the chunk stored at ``key``, as ``kind``; CorruptChunk naming it if not.

    Every int field of a chunk (version, chunk, base_version) counts, so a negative one is corrupt.
    """
    if name not in document:
        raise CorruptChunk(key, f"missing field {name!r}")
    try:
        value = _converter.structure(document[name], kind)
    except cattrs.BaseValidationError as error:
        raise CorruptChunk(key, "; ".join(cattrs.transform_error(error, path=name))) from error
    except (TypeError, ValueError) as error:
        raise CorruptChunk(key, f"field {name!r}: {error}") from error
    if kind is int and value < 0:
        raise CorruptChunk(key, f"field {name!r} must be >= 0, not {value}")
    return value


def decode_chunk(where: ChunkKey, body: bytes) -> Chunk:
    """Read the chunk stored at ``where``; raise CorruptChunk naming the key if it is not one.

    Besides the JSON and its fields, the content must agree with the key: the same stream,
    version and chunk number.
    """
    key = where.key
    document = _parse(key, body)
    if not isinstance(document, dict):
        raise CorruptChunk(key, f"expected a JSON object, got {type(document).__name__}")
    chunk_format = document.get("format")
    if type(chunk_format) is not int or chunk_format != CHUNK_FORMAT:
        raise CorruptChunk(
            key, f"chunk format {chunk_format!r} is not one this s3es reads ({CHUNK_FORMAT})"
        )

    def field(name: str, kind: Any) -> Any:
        return _field(key, document, name, kind)

    try:
        named = (field("stream_type", str), field("stream_id", str))
        # The key's stream is validated already; only a differing name needs validating.
        same = named == (where.stream.type, where.stream.id)
        chunk = Chunk(
            stream=where.stream if same else StreamName(type=named[0], id=named[1]),
            version=field("version", int),
            number=field("chunk", int),
            base_version=field("base_version", int),
            append_id=field("append_id", str),
            events=field("events", tuple[EventRecord, ...]),
            snapshot=field("snapshot", Snapshot | None),
            deleted=field("deleted", bool) if "deleted" in document else False,
            erased=field("erased", bool) if "erased" in document else False,
        )
    except (TypeError, ValueError) as error:
        raise CorruptChunk(key, str(error)) from error
    found = (chunk.stream, chunk.version, chunk.number)
    expected = (where.stream, where.version, where.number)
    if found != expected:
        raise CorruptChunk(
            key,
            f"content says stream {chunk.stream} version {chunk.version} chunk {chunk.number}, "
            f"the key says stream {where.stream} version {where.version} chunk {where.number}",
        )
    return chunk
