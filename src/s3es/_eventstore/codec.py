"""The chunk codec: a :class:`~s3es._eventstore.model.Chunk` to the bytes stored, and back.

:func:`encode_chunk` checks that every event's data and metadata and the snapshot's state are
JSON (naming the stream, the event, its type and the field when not) and writes the chunk with
:func:`s3es._base.json.dumps`. :func:`decode_chunk` reads it with :func:`s3es._base.json.loads`
and has two ways to a Chunk: a fast one of plain type checks, taken by every well-formed chunk,
and the strict converter's, field by field, for whatever the fast one declines, which raises the
CorruptChunk naming what is wrong. The two agree (tests/test_json.py holds them to it).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from s3es._base.converter import make_strict_converter
from s3es._base.json import MAX_DEPTH, dumps, json_problem, loads, nested_deeper
from s3es._eventstore.model import NO_COMMANDS, Chunk, EventRecord, Snapshot
from s3es._storage.keys import ChunkKey, StreamName
from s3es.errors import CorruptChunk, NotJSON

#: The chunk format this code writes and the newest it reads.
CHUNK_FORMAT: Final = 1
#: How deeply a chunk's JSON may nest, the document itself being level 1 (its events' data
#: starts at level 5). Deeper chunks are refused when written and corrupt when read.
MAX_JSON_DEPTH: Final = MAX_DEPTH


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
    converter.register_unstructure_hook(
        Snapshot,
        make_dict_unstructure_fn(Snapshot, converter, commands=override(omit_if_default=True)),
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
    if chunk.rebased:
        document["rebased"] = True
    if chunk.commands:
        document["commands"] = {
            command_id: [start, stop] for command_id, (start, stop) in chunk.commands.items()
        }
    where = f"chunk {chunk.version}.{chunk.number} of stream {chunk.stream}"
    try:
        # checked: _check_json looked into all a caller gives, down to the deepest level kept
        body = dumps(document, checked=True)
    except (TypeError, ValueError, RecursionError) as error:
        raise NotJSON(f"{where} is not JSON: {error}") from error
    if nested_deeper(document, body.count(b"[") + body.count(b"{")):
        raise NotJSON(f"{where} is not JSON: it nests deeper than {MAX_JSON_DEPTH} levels")
    return body


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


def _parse(key: str, body: bytes) -> Any:
    r"""The JSON document in ``body``.

    Raises CorruptChunk naming ``key`` if it is not UTF-8 JSON, nests deeper than
    :data:`MAX_JSON_DEPTH` (never RecursionError), or holds a NaN, an infinity or a lone
    surrogate escape (``"\ud800"``), which no chunk can be written with.
    """
    try:
        return loads(body, max_depth=MAX_JSON_DEPTH)
    except ValueError as error:
        raise CorruptChunk(key, str(error)) from error


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


#: The fields every stored event has, and every chunk: one lookup for all of them.
_EVENT_FIELDS: Final = operator.itemgetter("type", "id", "data", "metadata", "recorded_at")
_CHUNK_FIELDS: Final = operator.itemgetter(
    "stream_type",
    "stream_id",
    "version",
    "chunk",
    "base_version",
    "append_id",
    "events",
    "snapshot",
)


def _fast_events(events: Any) -> tuple[EventRecord, ...] | None:
    """``events`` (a chunk's JSON) as EventRecords, or None if anything is off.

    Every field must be exactly what the strict converter accepts; what is not, the converter
    reads again to say what is wrong.
    """
    if type(events) is not list:
        return None
    records = []
    for event in events:
        if type(event) is not dict:
            return None
        try:
            kind, event_id, data, metadata, recorded_at = _EVENT_FIELDS(event)
        except KeyError:
            return None
        get = event.get
        schema, version = get("schema", 1), get("version")
        if (
            type(kind) is not str
            or type(event_id) is not str
            or type(data) is not dict
            or type(metadata) is not dict
            or type(recorded_at) is not str
            or type(schema) is not int
            or not (version is None or type(version) is int)
        ):
            return None
        try:
            when = datetime.fromisoformat(recorded_at)
        except ValueError:
            return None
        records.append(EventRecord(kind, event_id, data, metadata, when, schema, version))
    return tuple(records)


def _fast_snapshot(snapshot: Any, version: int, *, keep: bool) -> tuple[Snapshot | None] | None:
    """``snapshot`` (the JSON of a chunk of ``version``) as a 1-tuple of a Snapshot.

    Of None for null, or when not ``keep`` (it is checked all the same). None if anything is
    off, a snapshot of another version too.
    """
    if snapshot is None:
        return (None,)
    if type(snapshot) is not dict or "state" not in snapshot:
        return None
    schema, of_version = snapshot.get("schema"), snapshot.get("version")
    if type(schema) is not int or type(of_version) is not int or of_version != version:
        return None
    if "commands" not in snapshot:
        return (Snapshot(schema, version, snapshot["state"]) if keep else None,)
    commands = snapshot["commands"]
    if type(commands) is not dict or not all(type(at) is int for at in commands.values()):
        return None
    return (Snapshot(schema, version, snapshot["state"], commands) if keep else None,)


def _fast_commands(commands: Any) -> dict[str, tuple[int, int]] | None:
    """A chunk's ``commands`` (JSON: ids to [start, stop]) as ranges; None if anything is off."""
    if type(commands) is not dict:
        return None
    ranges = {}
    for command_id, span in commands.items():
        if type(span) is not list or len(span) != 2:  # noqa: PLR2004 - start and stop
            return None
        start, stop = span
        if type(start) is not int or type(stop) is not int:
            return None
        ranges[command_id] = (start, stop)
    return ranges


def _fast_chunk(
    where: ChunkKey, document: dict[str, Any], *, with_snapshot: bool = True
) -> Chunk | None:
    """The chunk in ``document`` if it is well-formed and agrees with ``where``; else None.

    The fast path of :func:`decode_chunk`: plain type checks instead of the converter's
    dispatch per field. It accepts nothing the converter refuses; whatever it declines goes
    the converter's way, which raises the CorruptChunk naming what is wrong.
    """
    try:
        stream_type, stream_id, version, number, base_version, append_id, events, snapshot = (
            _CHUNK_FIELDS(document)
        )
    except KeyError:
        return None
    get = document.get
    deleted, erased, rebased = get("deleted", False), get("erased", False), get("rebased", False)
    stream = where.stream
    if (
        stream_type != stream.type
        or stream_id != stream.id
        or type(stream_type) is not str
        or type(stream_id) is not str
        or type(version) is not int
        or type(number) is not int
        or type(base_version) is not int
        or type(append_id) is not str
        or type(deleted) is not bool
        or type(erased) is not bool
        or type(rebased) is not bool
        or version != where.version
        or number != where.number
        or base_version < 0
    ):
        return None
    records = _fast_events(events)
    keep = with_snapshot or rebased or version - base_version > 1
    stored_snapshot = _fast_snapshot(snapshot, version, keep=keep)
    if records is None or stored_snapshot is None:
        return None
    commands = _fast_commands(document["commands"]) if "commands" in document else NO_COMMANDS
    if commands is None:
        return None
    try:
        return Chunk(
            stream,
            version,
            number,
            base_version,
            append_id,
            records,
            stored_snapshot[0],
            deleted,
            erased,
            rebased,
            commands,
        )
    except (TypeError, ValueError):
        return None


def decode_chunk(where: ChunkKey, body: bytes, *, with_snapshot: bool = True) -> Chunk:
    """Read the chunk stored at ``where``; raise CorruptChunk naming the key if it is not one.

    Besides the JSON and its fields, the content must agree with the key: the same stream,
    version and chunk number. ``with_snapshot=False`` checks the stored snapshot as strictly
    but leaves it out of the chunk (``snapshot`` None): for a reader that folds events and
    holds many chunks at once, whose snapshots would cost more memory and time than the rest.
    The snapshot of an erasure's fence (``rebased``) and of a chunk covering several versions
    (a merged chunk, which may stand for fences) is kept: a reader catching up through such a
    chunk takes its state (see ``fold`` in s3es._domain.repository).
    """
    key = where.key
    document = _parse(key, body)
    if type(document) is dict:
        chunk_format = document.get("format")
        if type(chunk_format) is int and chunk_format == CHUNK_FORMAT:
            fast = _fast_chunk(where, document, with_snapshot=with_snapshot)
            if fast is not None:
                return fast
    chunk = _decode_strictly(where, document)
    if with_snapshot or chunk.rebased or chunk.version - chunk.base_version > 1:
        return chunk
    return attrs.evolve(chunk, snapshot=None)


def _commands_field(key: str, document: Mapping[str, Any]) -> Mapping[str, tuple[int, int]]:
    """The chunk's ``commands`` (ids to event ranges), if any; CorruptChunk if mistyped."""
    if "commands" not in document:
        return NO_COMMANDS
    if type(document["commands"]) is not dict:
        raise CorruptChunk(
            key, f"field 'commands' must be a JSON object, not {document['commands']!r:.80}"
        )
    commands: dict[str, tuple[int, int]] = _field(
        key, document, "commands", dict[str, tuple[int, int]]
    )
    return commands


def _decode_strictly(where: ChunkKey, document: Any) -> Chunk:
    """The chunk in ``document``, read field by field with the converter; or CorruptChunk."""
    key = where.key
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
            rebased=field("rebased", bool) if "rebased" in document else False,
            commands=_commands_field(key, document),
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
