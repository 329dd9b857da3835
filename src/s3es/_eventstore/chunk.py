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

A chunk stored by commands that carried a command id (``CommandHandler.handle(...,
command_id=...)``) also names them, with the events each stored (``"commands": {"<id>": [0,
1]}``: events 0 up to 1), and its snapshot holds the window of the stream's most recent
command ids with the version that stored each (``"commands": {"<id>": 3, ...}``). Both are left
out when empty.

``events`` are the events that took the stream from ``base_version`` to ``version``
(``base_version == version - 1`` for an append). A chunk re-written for the same version
(``chunk`` > 0) carries the same events and a new snapshot. A tombstone (``"deleted": true``,
no events, no snapshot) marks the version at which the stream was deleted; an erased chunk
(``"erased": true``, no events, no snapshot) keeps the key of a chunk whose content an erasure
removed, after a merged chunk took over its (redacted) events. An erasure's fence
(``"rebased": true``, no events) is a version committed above the redacted stream: its
snapshot, when it has one, is the state a reader catching up through it takes instead of
folding onto the state it held (which may hold what the erasure removed).
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

import attrs
import cattrs
import orjson
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


#: No command ids: the one shared (immutable) empty mapping of most chunks and snapshots.
NO_COMMANDS: Final[Mapping[str, Any]] = MappingProxyType({})


@attrs.frozen
class Snapshot:
    """The state after ``version``, as JSON, stamped with the schema of the code that wrote it.

    ``commands`` is the window of the stream's most recent command ids, each with the version
    that stored it, oldest first (see :class:`~s3es.CommandHandler`): part of the snapshot's
    envelope, not of the state, so it reads whatever the state's schema.

    .. versionchanged:: 0.2  ``commands``.
    """

    schema: int
    version: int
    state: Any
    commands: Mapping[str, int] = NO_COMMANDS


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
    #: An erasure's fence: no event, and the stream rewritten below it. Its snapshot (None
    #: when the erasure could not know the state, see docs/chunk-format.md) replaces the
    #: state of a reader that catches up through it, instead of a fold onto that state.
    rebased: bool = False
    #: The command ids of the commands whose events this chunk stores, each with the range of
    #: its events (start, stop: indexes into ``events``). Empty for commands without an id.
    commands: Mapping[str, tuple[int, int]] = NO_COMMANDS

    def __attrs_post_init__(self) -> None:
        if not self.base_version < self.version:
            raise ValueError(
                f"base_version ({self.base_version}) must be below version ({self.version})"
            )
        if self.commands:
            self._check_commands()
        if self.deleted or self.erased:
            self._check_no_content()
            return
        if self.rebased:
            if self.events:
                raise ValueError("an erasure's fence (rebased) holds no event")
            self._check_snapshot_version()
            return
        if not self.events:
            raise ValueError("a chunk holds at least one event")
        if self.version - self.base_version > 1:
            self._check_event_versions()
        else:
            version = self.version
            for event in self.events:
                if event.version is not None and event.version != version:
                    raise ValueError(f"an event of a chunk of version {version} names another")
        self._check_snapshot_version()

    def _check_no_content(self) -> None:
        if self.events or self.snapshot is not None or self.rebased:
            raise ValueError(
                "a tombstone or an erased chunk holds no event, no snapshot and is no fence"
            )

    def _check_commands(self) -> None:
        """Each command named holds a range of the chunk's events, at least one."""
        count = len(self.events)
        for command_id, (start, stop) in self.commands.items():
            if not 0 <= start < stop <= count:
                raise ValueError(
                    f"command {command_id!r} names events {start} to {stop} of a chunk of "
                    f"{count} events"
                )

    def _check_snapshot_version(self) -> None:
        if self.snapshot is not None and self.snapshot.version != self.version:
            raise ValueError(
                f"snapshot version ({self.snapshot.version}) is not the chunk's ({self.version})"
            )

    def _check_event_versions(self) -> None:
        """A chunk covering several versions names each event's version, in order, in range.

        A version it covers may have no event: an erasure's fence, which a merged chunk
        (compaction's or erasure's) stands for with the versions around it.
        """
        versions = [event.version for event in self.events if event.version is not None]
        if len(versions) != len(self.events):
            raise ValueError(
                f"a chunk of versions {self.base_version + 1} to {self.version} must name the "
                "version of every event"
            )
        covered = range(self.base_version + 1, self.version + 1)
        if versions != sorted(versions) or not all(version in covered for version in versions):
            raise ValueError(
                f"the events of a chunk of versions {covered.start} to {covered.stop - 1} must "
                f"name versions among them, in order; they name {versions}"
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


#: Made once: ``json.loads`` with an option makes a decoder per call.
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


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


#: Every byte a digit "0", an opening bracket "[" (for "[" and "{") or a space: a body so
#: translated holds 19 zeros in a row where it holds a run of 19 digits, maybe a number orjson
#: reads other than json does (an integer beyond 64 bits, -9999999999999999999, as a float,
#: -1e19; json keeps it an int), and a "[" for each "[" or "{", the most levels it can nest.
#: One pass for both; seven times faster than a regular expression.
_SCAN: Final = bytes(
    48 if 48 <= byte <= 57 else 91 if byte in {91, 123} else 32  # noqa: PLR2004 - "0"-"9", "[", "{"
    for byte in range(256)
)
_LONG_NUMBER: Final = b"0" * 19
_UNPARSED: Final = object()


def _orjson_loads(body: bytes, scanned: bytes) -> Any:
    """``body`` parsed by orjson (3 to 5 times faster than json); ``_UNPARSED`` if it cannot say.

    orjson reads JSON as json does (and refuses NaN, the infinities, lone surrogates and invalid
    UTF-8 too), except for integers beyond 64 bits, so a body with a long run of digits (in
    ``scanned``, the body translated by :data:`_SCAN`) is left to json; and so is any body
    orjson refuses, for json to name the problem as it always has.
    """
    if _LONG_NUMBER in scanned:
        return _UNPARSED
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _UNPARSED


def _parse(key: str, body: bytes) -> Any:
    r"""The JSON document in ``body``.

    Raises CorruptChunk naming ``key`` if it is not UTF-8 JSON, nests deeper than
    :data:`MAX_JSON_DEPTH` (never RecursionError), or holds a lone surrogate escape
    (``"\ud800"``), which no chunk can be written with.
    """
    scanned = body.translate(_SCAN)
    document = _orjson_loads(body, scanned)
    # orjson refuses a lone surrogate escape: only a document json read may hold one.
    lone_surrogates = False
    if document is _UNPARSED:
        try:
            document = _DECODER.decode(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise CorruptChunk(key, f"not UTF-8 JSON: {error}") from error
        lone_surrogates = _SURROGATE_ESCAPE.search(body) is not None
    if _nested_deeper(document, scanned.count(b"[")):
        raise CorruptChunk(key, f"its JSON nests deeper than {MAX_JSON_DEPTH} levels")
    if lone_surrogates:
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
    chunk takes its state (see :meth:`~s3es.Repository.fold`).
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
