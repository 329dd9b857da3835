"""The key layout: every object key s3es reads or writes under one prefix, and nowhere else.

Under ``{prefix}/`` (or the bucket's root for the empty prefix)::

    {stream_type}/{stream_id}/{MAX_VERSION - v:020d}.{MAX_CHUNK - c:06d}.json   chunk c of version v
    _feed/{stream_type}/{at_ms:013d}.{version:020d}.{stream_id}                 change-feed entry
    _projections/{name}/model.json                                             read-model document
    _projections/{name}/lease.json                                             projector's lease
    _projections/{name}/lease.{shard}-of-{shards}.json                         a shard's lease
    _readmodels/{name}/generations.json                       which generation readers see
    _readmodels/{name}/g{n}/docs/{quoted key}                  a document of generation n
    _readmodels/{name}/g{n}/positions/{stream_type}/{stream_id}   a stream's position in it
    _readmodels/{name}/g{n}/positions/_sha256/{hex digest}     ... where that key is too long
    _readmodels/{name}/g{n}/shards/{shard}-of-{shards}.json   a shard's state in it
    _selftest/{random}                                                         self-test scratch key

A stream type never starts with ``_``, so s3es's own folders never meet a stream's. A chunk's
version and number are counted down from their maximum and zero-padded, so S3's listing order
(ascending UTF-8 bytes) is newest first: a LIST of one key finds the latest chunk of a stream of
any length. Version 1, chunk 0 is ``99999999999999999998.999999.json``; version 2 is
``99999999999999999997.999999.json``; a re-written chunk 1 of version 2 is
``99999999999999999997.999998.json``, listed before chunk 0 of its version.

Every key fits S3's 1,024 bytes of UTF-8. A stream's name is bounded by its chunk and feed keys
(:meth:`StreamKeys.stream_prefix`); a projection's name (a reactor's too) by its longest keys,
when its first key is made: a document key of :data:`MAX_DOCUMENT_KEY_BYTES` percent-encoded
(three bytes for one), a generation, shard and number of shards of 19 digits. A stream's
position in a read model holds both names: where its key would be too long, it is kept under
the SHA-256 of the stream's name instead (``_sha256`` is no stream type's: those never start
with ``_``), so that every stream the event store takes has a position.

The change feed: S3 has no log of what changed across keys. With the feed on, each append (and
each deletion's tombstone) is followed by a PUT of an empty feed entry whose key says it all:
``stream_id`` reached ``version`` at ``at_ms``, the appender's clock in milliseconds, zero-padded
so that a type's entries list in time order. A projector lists the feed of each stream type from
where it stopped, less a look-back that covers clocks that disagree and entries written late,
and reads the streams named there. The feed is a hint: truth comes from the chunks, read from
each stream's checkpoint, so an entry seen twice does nothing, and an entry never written (the
appender died between its two PUTs) is caught by the projector's periodic full scan.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import quote, unquote

import attrs

from s3es.errors import CorruptChunk, InvalidStreamName

#: S3's limit on the UTF-8 length of an object key.
MAX_KEY_BYTES = 1024
#: The longest document key of a read model, in bytes of UTF-8 (percent-encoded in its object
#: key: at most three times as long).
MAX_DOCUMENT_KEY_BYTES = 200
#: Digits of a read model's generation numbers, and of shard numbers, that keys make room for.
COUNT_WIDTH = 19
_LARGEST_COUNT = 10**COUNT_WIDTH - 1
#: The longest key under a projection's ``_projections/{name}/`` folder, past the folder:
#: ``lease.{shard}-of-{shards}.json``.
_PROJECTION_TAIL = len("lease.-of-.json") + 2 * COUNT_WIDTH
#: The longest key under a read model's ``_readmodels/{name}/`` folder, past the folder: a
#: document's, ``g{n}/docs/{key percent-encoded}`` (longer than a position's digest or a
#: shard's state).
_READ_MODEL_TAIL = len("g/docs/") + COUNT_WIDTH + 3 * MAX_DOCUMENT_KEY_BYTES
#: The folder, under a generation's positions, of positions kept under a digest.
_DIGESTS_FOLDER = "_sha256"
#: Digits of the version in a chunk's key: enough for any 64-bit version.
VERSION_WIDTH = 20
#: Digits of the chunk number in a chunk's key.
CHUNK_WIDTH = 6
#: The chunk number of a chunk written by an append. Re-written chunks count up from it.
FIRST_CHUNK = 0
MAX_VERSION = 10**VERSION_WIDTH - 1
MAX_CHUNK = 10**CHUNK_WIDTH - 1

_CHUNK_NAME = re.compile(rf"([0-9]{{{VERSION_WIDTH}}})\.([0-9]{{{CHUNK_WIDTH}}})\.json")
_CHUNK_NAME_LENGTH = VERSION_WIDTH + 1 + CHUNK_WIDTH + len(".json")
#: The folders, under the prefix, of the change feed, of projections' read models and leases,
#: and of the self-test's scratch keys. Stream types cannot start with ``_``.
FEED_FOLDER = "_feed"
PROJECTIONS_FOLDER = "_projections"
READ_MODELS_FOLDER = "_readmodels"
SELF_TEST_FOLDER = "_selftest"
#: Digits of the milliseconds in a change-feed key: enough until the year 2286.
FEED_AT_WIDTH = 13
#: A stream's feed key, ``{root}_feed/{type}/{at}.{version}.{id}``, is this much longer than its
#: prefix ``{root}{type}/{id}/``.
_FEED_KEY_EXTRA = len(FEED_FOLDER) + 1 + FEED_AT_WIDTH + 1 + VERSION_WIDTH + 1 - len("/")
_FEED_ENTRY = re.compile(
    rf"([0-9]{{{FEED_AT_WIDTH}}})\.([0-9]{{{VERSION_WIDTH}}})\.(.+)", re.DOTALL
)


def check_segment(what: str, value: object) -> str:
    """Return ``value`` if it can be one segment of an object key, else raise InvalidStreamName."""
    if not isinstance(value, str):
        raise InvalidStreamName(f"{what} must be a str, not {type(value).__name__}: {value!r}")
    if not value:
        raise InvalidStreamName(f"{what} must not be empty")
    if value in {".", ".."}:
        raise InvalidStreamName(f"{what} must not be {value!r}: {value!r}")
    if "/" in value:
        raise InvalidStreamName(f"{what} must not contain '/': {value!r}")
    for char in value:
        if unicodedata.category(char) in {"Cc", "Cs"}:
            raise InvalidStreamName(
                f"{what} must not contain control or surrogate characters "
                f"(found U+{ord(char):04X}): {value!r}"
            )
    return value


def _check_count(what: str, value: int) -> None:
    """ValueError, naming ``what``, unless ``value`` is an int of 0 to 19 digits."""
    if not 0 <= value <= _LARGEST_COUNT:
        raise ValueError(f"{what} out of range (0 to {_LARGEST_COUNT}): {value}")


@attrs.frozen
class StreamName:
    """The name of one stream: its type (``"order"``) and its id (``"o-1042"``).

    Both are validated when the name is made: neither may be empty, be ``.`` or ``..``, or contain
    ``/`` or control characters, and a stream type must not start with ``_`` (reserved for s3es's
    own objects). So no stream name can reach another stream's or another prefix's keys.
    """

    type: str
    id: str

    def __attrs_post_init__(self) -> None:
        check_segment("stream type", self.type)
        if self.type.startswith("_"):
            raise InvalidStreamName(
                f"stream type must not start with '_' (reserved for s3es): {self.type!r}"
            )
        check_segment(f"stream id (of stream type {self.type!r})", self.id)

    def __str__(self) -> str:
        return f"{self.type}/{self.id}"


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can stand before every key of a store, else raise InvalidStreamName.

    The empty prefix means the bucket's root. Otherwise it is one or more ``/``-separated
    segments, each valid as a key segment, with no leading or trailing ``/``.
    """
    if not isinstance(prefix, str):
        raise InvalidStreamName(f"prefix must be a str, not {type(prefix).__name__}: {prefix!r}")
    if prefix:
        for segment in prefix.split("/"):
            check_segment(f"prefix segment (of prefix {prefix!r})", segment)
    return prefix


@attrs.frozen
class ChunkKey:
    """Where one chunk is stored: its stream, version and chunk number, and the object key."""

    stream: StreamName
    version: int
    number: int
    key: str


@attrs.frozen
class FeedEntry:
    """A change-feed entry: ``stream`` reached ``version`` at ``at_ms`` by its appender's clock."""

    stream: StreamName
    version: int
    at_ms: int
    key: str


def _parse_chunk_key(stream: StreamName, stream_prefix: str, key: str) -> ChunkKey:
    """The chunk ``key`` names, ``stream_prefix`` being ``stream``'s; else CorruptChunk."""
    match = (
        _CHUNK_NAME.fullmatch(key, len(stream_prefix)) if key.startswith(stream_prefix) else None
    )
    if match is None:
        raise CorruptChunk(
            key,
            f"not a chunk key of stream {stream} (expected {stream_prefix}"
            f"{'9' * VERSION_WIDTH}.{'9' * CHUNK_WIDTH}.json)",
        )
    countdown_version, countdown_number = match.groups()
    version = MAX_VERSION - int(countdown_version)
    if version < 1:
        raise CorruptChunk(key, f"version must be at least 1 in a chunk key of stream {stream}")
    return ChunkKey(stream, version, MAX_CHUNK - int(countdown_number), key)


@attrs.frozen
class StreamKeys:
    """The key layout under one prefix: the key of every object s3es stores there.

    Streams' chunks, the change feed, projections' read models and leases, and the self-test's
    scratch keys (see this module's docstring for the whole layout).
    """

    prefix: str = attrs.field(default="", converter=check_prefix)

    @property
    def root(self) -> str:
        """The key prefix under which every stream type lies: ``{prefix}/``, or ``""``."""
        return f"{self.prefix}/" if self.prefix else ""

    def type_prefix(self, stream_type: str) -> str:
        """The key prefix (ending in ``/``) under which every stream of ``stream_type`` lies."""
        return f"{self.root}{StreamName(stream_type, '-').type}/"

    def stream_prefix(self, stream: StreamName) -> str:
        """The key prefix (ending in ``/``) under which every chunk of ``stream`` lies.

        Raises InvalidStreamName if a chunk key of this stream would be longer than S3 allows.
        """
        stream_prefix = f"{self.root}{stream.type}/{stream.id}/"
        longest = len(stream_prefix.encode()) + max(_CHUNK_NAME_LENGTH, _FEED_KEY_EXTRA)
        if longest > MAX_KEY_BYTES:
            raise InvalidStreamName(
                f"stream {stream} under prefix {self.prefix!r} would need keys of {longest} bytes;"
                f" S3 allows at most {MAX_KEY_BYTES}"
            )
        return stream_prefix

    def chunk_key(self, stream: StreamName, version: int, number: int = FIRST_CHUNK) -> str:
        """The object key of ``stream``'s chunk ``number`` of ``version``."""
        if not 1 <= version <= MAX_VERSION:
            raise ValueError(f"version of stream {stream} out of range: {version}")
        if not FIRST_CHUNK <= number <= MAX_CHUNK:
            raise ValueError(f"chunk number of stream {stream} out of range: {number}")
        countdown = (
            f"{MAX_VERSION - version:0{VERSION_WIDTH}d}.{MAX_CHUNK - number:0{CHUNK_WIDTH}d}"
        )
        return f"{self.stream_prefix(stream)}{countdown}.json"

    def parse(self, stream: StreamName, key: str) -> ChunkKey:
        """Read the version and chunk number back from a key under ``stream``'s prefix.

        Raises CorruptChunk if the key is not a chunk key of ``stream``: a stray object in a stream
        is never ignored.
        """
        return _parse_chunk_key(stream, self.stream_prefix(stream), key)

    def parse_listing(self, stream: StreamName, keys: Iterable[str]) -> Iterator[ChunkKey]:
        """Each of ``keys`` (a listing of ``stream``'s prefix) parsed as :meth:`parse` does.

        The stream's prefix is made and checked once for the whole listing, not once per key.
        Lazy: a key is parsed (and raises CorruptChunk if it is no chunk key of ``stream``)
        when it is reached.

        .. versionadded:: 0.2
        """
        return map(self.parser(stream), keys)

    def parser(self, stream: StreamName) -> Callable[[str], ChunkKey]:
        """:meth:`parse` for the keys of ``stream``, its prefix made and checked once for all."""
        return functools.partial(_parse_chunk_key, stream, self.stream_prefix(stream))

    def parse_any_chunk_key(self, key: str) -> ChunkKey | None:
        """The chunk that ``key`` names, of whichever stream; None if it names no chunk here.

        For keys that come from outside the layout (S3 event notifications of a whole bucket):
        a key under another prefix, under s3es's own ``_`` folders (feed, projections, read
        models, self-test), with a stream name s3es would refuse, or whose last segment is not
        a chunk's name, is no chunk of this store, not a corrupt one: None, never an error.

        .. versionadded:: 0.2
        """
        parts = key[len(self.root) :].split("/") if key.startswith(self.root) else ()
        if len(parts) != 3:  # noqa: PLR2004 - type, id, chunk name
            return None
        match = _CHUNK_NAME.fullmatch(parts[2])
        if match is None or int(match[1]) == MAX_VERSION:  # version 0: no chunk's
            return None
        try:
            stream = StreamName(parts[0], parts[1])
        except InvalidStreamName:  # a type starting with "_" among them: s3es's own folders
            return None
        version, number = MAX_VERSION - int(match[1]), MAX_CHUNK - int(match[2])
        return ChunkKey(stream, version, number, key)

    def feed_prefix(self, stream_type: str) -> str:
        """The key prefix (ending in ``/``) of the change-feed entries of ``stream_type``."""
        return f"{self.root}{FEED_FOLDER}/{StreamName(stream_type, '-').type}/"

    def feed_key(self, stream: StreamName, version: int, at_ms: int) -> str:
        """The key of the feed entry saying that ``stream`` reached ``version`` at ``at_ms``."""
        entry = f"{at_ms:0{FEED_AT_WIDTH}d}.{version:0{VERSION_WIDTH}d}.{stream.id}"
        return f"{self.feed_prefix(stream.type)}{entry}"

    def feed_cursor(self, stream_type: str, at_ms: int) -> str:
        """A ``start_after`` key from which the feed entries at ``at_ms`` or later list."""
        return f"{self.feed_prefix(stream_type)}{max(at_ms, 0):0{FEED_AT_WIDTH}d}"

    def parse_feed_key(self, stream_type: str, key: str) -> FeedEntry:
        """The feed entry stored at ``key``; CorruptChunk naming the key if it is none of s3es's."""
        prefix = self.feed_prefix(stream_type)
        match = _FEED_ENTRY.fullmatch(key[len(prefix) :]) if key.startswith(prefix) else None
        if match is None:
            raise CorruptChunk(key, f"not a feed entry of stream type {stream_type!r}")
        try:
            stream = StreamName(stream_type, match[3])
        except InvalidStreamName as error:
            raise CorruptChunk(key, f"not a feed entry: {error}") from error
        return FeedEntry(stream=stream, version=int(match[2]), at_ms=int(match[1]), key=key)

    def _named_prefix(self, folder: str, projection: str, tail: int) -> str:
        """``{root}{folder}/{projection}/``, if keys ``tail`` bytes longer fit S3's limit.

        Raises InvalidStreamName, naming the projection and the prefix, if the name cannot
        be one key segment or leaves too little room for the keys below it.
        """
        prefix = f"{self.root}{folder}/{check_segment('projection name', projection)}/"
        longest = len(prefix.encode()) + tail
        if longest > MAX_KEY_BYTES:
            raise InvalidStreamName(
                f"projection name {projection!r} under prefix {self.prefix!r} would need keys "
                f"of {longest} bytes; S3 allows at most {MAX_KEY_BYTES}"
            )
        return prefix

    def projection_prefix(self, projection: str) -> str:
        """The key prefix (ending in ``/``) of projection ``projection``'s objects.

        Raises InvalidStreamName if the name cannot be one key segment, or if its longest key
        (a shard's lease) would be longer than S3 allows.
        """
        return self._named_prefix(PROJECTIONS_FOLDER, projection, _PROJECTION_TAIL)

    def read_model_key(self, projection: str) -> str:
        """The key of the read-model document of projection ``projection``."""
        return f"{self.projection_prefix(projection)}model.json"

    def lease_key(self, projection: str) -> str:
        """The key of the lease of projection ``projection``'s projector."""
        return f"{self.projection_prefix(projection)}lease.json"

    def shard_lease_key(self, projection: str, shard: int, shards: int) -> str:
        """The key of the lease of shard ``shard`` of ``shards`` of projection ``projection``."""
        _check_count(f"shard of projection {projection!r}", shard)
        _check_count(f"number of shards of projection {projection!r}", shards)
        return f"{self.projection_prefix(projection)}lease.{shard}-of-{shards}.json"

    def read_models_prefix(self, projection: str) -> str:
        """The key prefix (ending in ``/``) of document projection ``projection``'s objects.

        A reactor's name too (its positions). Raises InvalidStreamName if the name cannot be
        one key segment, or if its longest key (a document's, its key of
        :data:`MAX_DOCUMENT_KEY_BYTES` percent-encoded) would be longer than S3 allows.
        """
        return self._named_prefix(READ_MODELS_FOLDER, projection, _READ_MODEL_TAIL)

    def generations_key(self, projection: str) -> str:
        """The key of the record of which generation of ``projection`` readers see."""
        return f"{self.read_models_prefix(projection)}generations.json"

    def generation_prefix(self, projection: str, generation: int) -> str:
        """The key prefix (ending in ``/``) of generation ``generation`` of ``projection``.

        Raises ValueError if ``generation`` is negative or has more than 19 digits.
        """
        _check_count(f"generation of projection {projection!r}", generation)
        return f"{self.read_models_prefix(projection)}g{generation}/"

    def document_prefix(self, projection: str, generation: int) -> str:
        """The key prefix (ending in ``/``) of the documents of a generation."""
        return f"{self.generation_prefix(projection, generation)}docs/"

    def document_key(self, projection: str, generation: int, key: str) -> str:
        """The object key of document ``key``: percent-encoded, so any string is one segment.

        Raises ValueError, naming the document key, if the object key would be longer than
        S3 allows.
        """
        object_key = f"{self.document_prefix(projection, generation)}{quote(key, safe='')}"
        if not key or len(object_key.encode()) > MAX_KEY_BYTES:
            raise ValueError(
                f"document key {key[:80]!r} of projection {projection!r}: empty, or too long "
                f"for an S3 key ({len(object_key.encode())} bytes of at most {MAX_KEY_BYTES})"
            )
        return object_key

    def parse_document_key(self, projection: str, generation: int, object_key: str) -> str:
        """The document key that :meth:`document_key` made ``object_key`` from."""
        return unquote(object_key[len(self.document_prefix(projection, generation)) :])

    def position_key(self, projection: str, generation: int, stream: StreamName) -> str:
        """The object key of ``stream``'s position in a generation.

        ``positions/{type}/{id}`` where that fits S3's limit; else ``positions/_sha256/`` and
        the SHA-256 of ``type/id`` in hex: no two streams share a key.
        """
        positions = f"{self.generation_prefix(projection, generation)}positions/"
        plain = f"{positions}{stream.type}/{stream.id}"
        if len(plain.encode()) <= MAX_KEY_BYTES:
            return plain
        digest = hashlib.sha256(str(stream).encode()).hexdigest()
        return f"{positions}{_DIGESTS_FOLDER}/{digest}"

    def shard_state_key(self, projection: str, generation: int, shard: int, shards: int) -> str:
        """The object key of the state of shard ``shard`` of ``shards`` in a generation."""
        _check_count(f"shard of projection {projection!r}", shard)
        _check_count(f"number of shards of projection {projection!r}", shards)
        shard_states = f"{self.generation_prefix(projection, generation)}shards/"
        return f"{shard_states}{shard}-of-{shards}.json"

    def self_test_prefix(self) -> str:
        """The key prefix (ending in ``/``) of the self-test's scratch keys."""
        return f"{self.root}{SELF_TEST_FOLDER}/"

    def chunk_key_pattern(self) -> str:
        """A glob (``*`` any run of characters, ``?`` one) that every chunk key matches.

        No other key of the layout does: the feed's, projections' and self-test's keys do not
        end in ``{20 digits}.{6 digits}.json``. IAM policies use it in resource ARNs.
        """
        return f"{self.root}*/{'?' * VERSION_WIDTH}.{'?' * CHUNK_WIDTH}.json"
