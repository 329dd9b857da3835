"""The chunk model: the stored event, the snapshot and the chunk, as values.

What a chunk means is told in :mod:`s3es._eventstore.chunk`; how it is written and read, in
:mod:`s3es._eventstore.codec`. These classes check only what makes a chunk one: versions that
fit, events in range, no content in a tombstone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

import attrs

from s3es._storage.keys import StreamName


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
