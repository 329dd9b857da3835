"""What the sync and the async repository and command handler share: values and pure steps.

The repository and the command handler are written once, for asyncio, in ``_async/``; their
sync modules are generated from it (tools/async_to_sync.py). The values here are the same
objects for both: a Loaded state or a CommandResult from either is one class.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, Generic

import attrs

from s3es._base.tracing import Attributes, request_attributes
from s3es._domain.aggregate import E, RecordedEvent, S
from s3es._eventstore.chunk import Chunk
from s3es._storage.keys import StreamName
from s3es._storage.metering import RequestCounts
from s3es.errors import InvalidConfiguration

#: How many of a stream's most recent command ids a Repository remembers unless told otherwise.
DEFAULT_COMMAND_WINDOW = 100


def _no_commands() -> dict[str, int]:
    return {}


@attrs.frozen
class Loaded(Generic[S]):
    """An aggregate's state at a version of its stream (0: no events yet).

    ``commands`` is the stream's window of recent command ids at that version, each with the
    version that stored it, oldest first: what tells a retried command from a new one.

    .. versionchanged:: 0.2  ``commands``.
    """

    stream: StreamName
    version: int
    state: S
    commands: Mapping[str, int] = attrs.field(factory=_no_commands, repr=False)


@attrs.frozen
class Recalled(Generic[S, E]):
    """What a command stored before, read back: the version, the state there, its events."""

    loaded: Loaded[S]
    recorded: tuple[RecordedEvent[E], ...]


@attrs.frozen
class Appended(Generic[S, E]):
    """What an append stored: the new state and version, and the events with their ids."""

    loaded: Loaded[S]
    recorded: tuple[RecordedEvent[E], ...]
    #: True when the PUT's answer was lost and the chunk was found to be ours afterwards.
    recovered: bool


def load_span(repository: Any, stream_id: str) -> tuple[str, Attributes]:
    """The span of one ``load`` of a repository: its name and first attributes."""
    stream_type = repository.codec.stream_type
    return f"load {stream_type}", {
        "s3es.stream.type": stream_type,
        "s3es.stream.id": stream_id,
        "s3es.load.replayed": False,
    }


def remember(commands: dict[str, int], chunk: Chunk) -> dict[str, int]:
    """``commands`` (a window, oldest first) plus the ids ``chunk`` stores.

    Each at the version that stored it: in a merged chunk, which covers several, its first
    event's.
    """
    for command_id, (start, _) in chunk.commands.items():
        commands.setdefault(command_id, chunk.events[start].version or chunk.version)
    return commands


def commands_of(chunk: Chunk) -> dict[str, int]:
    """The window of command ids at ``chunk``'s version: its snapshot's, and its own."""
    window = dict(chunk.snapshot.commands) if chunk.snapshot is not None else {}
    return remember(window, chunk)


def rebases(chunk: Chunk) -> bool:
    """Whether catching up through ``chunk`` from an older state must take its state instead.

    An erasure's fence does; so does a chunk merged over several versions, which may stand for
    fences among them (the events of an erasure's merged chunk are redacted, an older state's
    are not).
    """
    return chunk.rebased or chunk.version - chunk.base_version > 1


def bounded(commands: dict[str, int], window: int) -> dict[str, int]:
    """``commands`` (oldest first) cut to the ``window`` most recent."""
    excess = len(commands) - window
    if excess <= 0:
        return commands
    return dict(itertools.islice(commands.items(), excess, None))


#: The longest command id ``handle`` takes, in characters.
MAX_COMMAND_ID_LENGTH = 200


@attrs.frozen
class CommandResult(Generic[S, E]):
    """A handled command: the stream's new state and version, and what it stored.

    ``recorded`` is empty (and nothing was written) when ``decide`` returned no events. Under
    group commit, ``version`` is the version whose chunk holds the command's events (shared with
    the other commands of its group), ``state`` the state right after the command's own
    decision, and ``requests`` is zero for a command whose events rode another's PUT.

    A ``duplicate`` is the answer to a command whose ``command_id`` the stream had stored
    already: nothing was stored this time, and the result is the first one as read back:
    ``version`` the version that stored the command, ``recorded`` its events as stored then
    (the same ids, data, metadata and times), and ``state`` the state at that version (under
    group commit: after the whole group's chunk, not right after the command's own decision).
    ``attempts`` and ``requests`` are this call's. ``recorded`` is empty if the chunk that
    stored the command was erased or merged by maintenance since.

    .. versionchanged:: 0.2  ``duplicate``.
    """

    stream: StreamName
    version: int
    state: S
    recorded: tuple[RecordedEvent[E], ...]
    #: Decisions made: 1, plus one per concurrency conflict met.
    attempts: int
    #: True when the PUT's answer was lost and the stored chunk was found to be ours afterwards.
    recovered: bool = False
    #: Object-store requests this command sent, retries and loads included.
    requests: RequestCounts = attrs.field(factory=RequestCounts)
    #: True when the command's id was stored already: this is the first result, read back.
    duplicate: bool = False

    @property
    def events(self) -> tuple[E, ...]:
        """The domain events the command stored."""
        return tuple(recorded.event for recorded in self.recorded)

    @property
    def conflicts(self) -> int:
        """Concurrency conflicts met before the command's events were stored."""
        return self.attempts - 1


@attrs.frozen
class Decision(Generic[S, E]):
    """One command decided on a state: its events and the state after them, or its error."""

    events: tuple[E, ...]
    state: S
    error: Exception | None = None
    #: Under group commit: the index of the earlier decision of the group with the same
    #: command id, whose result this command shares.
    duplicate_of: int | None = None
    #: The version that stored the command's id before: its result is read back from there.
    recall: int | None = None


def handle_span(
    handler: Any, stream_id: str, command: object, **_: object
) -> tuple[str, Attributes]:
    """The span of one ``handle`` call of a command handler: its name and first attributes."""
    command_type = type(command).__qualname__
    return f"handle {command_type}", {
        "s3es.stream.type": handler.repository.codec.stream_type,
        "s3es.stream.id": stream_id,
        "s3es.command.type": command_type,
    }


def attempted(attempts: int, requests: RequestCounts) -> Attributes:
    """What a handled command's span tells, stored or failed: decisions and requests."""
    return {
        "s3es.command.attempt_count": attempts,
        "s3es.command.conflict_count": attempts - 1,
        **request_attributes(requests),
    }


def handled(result: CommandResult[Any, Any]) -> Attributes:
    """What a stored command's span tells besides: the version stored, events, recovery."""
    return {
        "s3es.stream.version": result.version,
        "s3es.command.event_count": len(result.recorded),
        "s3es.command.recovered": result.recovered,
    }


def check_command_id(command_id: object, stream: StreamName) -> None:
    """InvalidConfiguration, naming ``stream``, unless ``command_id`` is None or a usable id."""
    if command_id is None:
        return
    problem = None
    if not isinstance(command_id, str):
        problem = f"a str, not {type(command_id).__qualname__}"
    elif not 1 <= len(command_id) <= MAX_COMMAND_ID_LENGTH:
        problem = f"1 to {MAX_COMMAND_ID_LENGTH} characters long, not {len(command_id)}"
    else:
        try:
            command_id.encode("utf-8")
        except UnicodeEncodeError:
            problem = "Unicode text (it holds a lone surrogate)"
    if problem is not None:
        raise InvalidConfiguration(
            f"command_id for stream {stream} must be {problem}: {command_id!r:.80}"
        )
