"""The chunk: the one JSON object an append writes. Import the chunk's names from here.

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

This module is where the rest of s3es imports the chunk from: the values are in
:mod:`~s3es._eventstore.model`, writing and reading them in :mod:`~s3es._eventstore.codec`,
and what counts as JSON in :mod:`s3es._base.json`.
"""

from s3es._eventstore.codec import CHUNK_FORMAT, MAX_JSON_DEPTH, decode_chunk, encode_chunk
from s3es._eventstore.model import NO_COMMANDS, Chunk, EventRecord, Snapshot

__all__ = [
    "CHUNK_FORMAT",
    "MAX_JSON_DEPTH",
    "NO_COMMANDS",
    "Chunk",
    "EventRecord",
    "Snapshot",
    "decode_chunk",
    "encode_chunk",
]
