"""The change feed: an empty object per append, written by the appender, listed by projectors.

S3 has no log of what changed across keys. With the feed on, each append (and each deletion's
tombstone) is followed by a PUT of ``{prefix}/_feed/{stream_type}/{at}.{version}.{stream_id}``,
``at`` being the appender's clock in milliseconds. A projector lists the feed of each stream
type from where it stopped, less a look-back that covers clocks that disagree and entries
written late, and reads the streams named there. The feed is a hint: truth comes from the
chunks, read from each stream's checkpoint, so an entry seen twice does nothing, and an entry
never written (the appender died between its two PUTs) is caught by the projector's periodic
full scan.
"""

from __future__ import annotations

import re

import attrs

from s3es._storage.keys import FEED_AT_WIDTH as AT_WIDTH
from s3es._storage.keys import VERSION_WIDTH, StreamKeys, StreamName
from s3es.errors import CorruptChunk, InvalidStreamName

FEED_FOLDER = "_feed"
_ENTRY = re.compile(rf"([0-9]{{{AT_WIDTH}}})\.([0-9]{{{VERSION_WIDTH}}})\.(.+)", re.DOTALL)


@attrs.frozen
class FeedEntry:
    """One feed entry: ``stream`` reached ``version`` at ``at_ms`` by its appender's clock."""

    stream: StreamName
    version: int
    at_ms: int
    key: str


def feed_prefix(keys: StreamKeys, stream_type: str) -> str:
    """The key prefix of the feed entries of ``stream_type``."""
    return f"{keys.root}{FEED_FOLDER}/{StreamName(stream_type, '-').type}/"


def feed_key(keys: StreamKeys, stream: StreamName, version: int, at_ms: int) -> str:
    """The key of the feed entry saying that ``stream`` reached ``version`` at ``at_ms``."""
    entry = f"{at_ms:0{AT_WIDTH}d}.{version:0{VERSION_WIDTH}d}.{stream.id}"
    return f"{feed_prefix(keys, stream.type)}{entry}"


def feed_cursor(keys: StreamKeys, stream_type: str, at_ms: int) -> str:
    """A ``start_after`` key from which the entries at ``at_ms`` or later list."""
    return f"{feed_prefix(keys, stream_type)}{max(at_ms, 0):0{AT_WIDTH}d}"


def parse_feed_key(keys: StreamKeys, stream_type: str, key: str) -> FeedEntry:
    """The entry stored at ``key``; CorruptChunk naming the key if it is none of s3es's."""
    prefix = feed_prefix(keys, stream_type)
    match = _ENTRY.fullmatch(key[len(prefix) :]) if key.startswith(prefix) else None
    if match is None:
        raise CorruptChunk(key, f"not a feed entry of stream type {stream_type!r}")
    try:
        stream = StreamName(stream_type, match[3])
    except InvalidStreamName as error:
        raise CorruptChunk(key, f"not a feed entry: {error}") from error
    return FeedEntry(stream=stream, version=int(match[2]), at_ms=int(match[1]), key=key)
