# Generated from src/s3es/_domain/_async/commands.py by tools/async_to_sync.py: do not edit.
"""Command handling: load, decide, append; on a conflict, catch up and decide again.

With ``group_commit``, the commands one handler receives for a stream while its PUT is in
flight ride the next PUT together: how writers share a hot stream without starving one another
(docs/design.md, "Fairness on a hot stream").

Only the steps that read, write or wait are here: those that do no I/O (deciding a group,
settling results, failing commands out of attempts) are ``_domain/command_base.py``'s, which
the sync and the async handler share.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias

import structlog

from s3es._base.concurrency import pause, shielded
from s3es._base.logging import get_logger
from s3es._base.tracing import annotate, traced
from s3es._domain.aggregate import C, E, RecordedEvent, S
from s3es._domain.command_base import CommandHandlerBase
from s3es._domain.expected import ExpectedVersion, validated
from s3es._domain.group import Lanes, Pending
from s3es._domain.options import (
    MAX_GROUP_EVENTS,
    CommandHooks,
    Conflict,
    GaveUp,
    GroupCommit,
    RetryPolicy,
    check_handler_options,
)
from s3es._domain.repository import (
    Repository,
    append_decisions,
    evolved,
    recall,
)
from s3es._domain.values import (
    MAX_COMMAND_ID_LENGTH,
    Appended,
    CommandResult,
    Decision,
    Loaded,
    attempted,
    check_command_id,
    handle_span,
    handled,
)
from s3es._storage.keys import StreamName
from s3es._storage.metering import measure_requests
from s3es.errors import (
    ChunkTooLarge,
    ConcurrencyError,
    CorruptChunk,
    StreamDeleted,
)

__all__ = [
    "MAX_COMMAND_ID_LENGTH",
    "MAX_GROUP_EVENTS",
    "CommandHandler",
    "CommandHooks",
    "CommandResult",
    "Conflict",
    "Decision",
    "GaveUp",
    "GroupCommit",
    "InlineView",
    "RetryPolicy",
]

_log = get_logger("s3es.commands")

#: A command waiting to be decided, settled with a result or an error.
PendingCommand: TypeAlias = Pending[Any, "CommandResult[Any, Any]"]


class InlineView(Protocol):
    """What a command handler tells of each append it stores: an inline projection.

    The handler lies below the read side, so it knows views only by this protocol;
    :class:`~s3es.InlineProjection` implements it.
    """

    def check_source(self, stream_type: str) -> None:
        """Raise InvalidConfiguration unless the view reads streams of ``stream_type``."""

    def appended(
        self, repository: Repository[Any, Any, Any], recorded: Sequence[RecordedEvent[Any]]
    ) -> None:
        """Take in ``recorded``, the events one append stored through ``repository``."""


class CommandHandler(CommandHandlerBase[S, C, E]):
    """Runs commands against the streams of one aggregate: load, decide, append, and retry.

    ``await handler.handle(stream_id, command)`` loads the stream's state (or takes the one it
    keeps of the last ``cache_size`` streams), calls the aggregate's ``decide``, and stores the
    events as the next version. If another writer stored that version first, it applies what
    is new and decides again, as ``retry`` allows. Errors ``decide`` raises propagate unchanged
    and are never retried. ``hooks`` are told of each result, conflict and failure;
    ``inline`` projections are given each stored chunk's events. Safe to share between threads
    and tasks. What each step costs, and group commit: docs/design.md, "The command handler".

    .. versionchanged:: 0.2  ``group_commit``, ``hooks``; ``handle(..., expected_version=...,
       command_id=...)``.
    """

    def __init__(
        self,
        repository: Repository[S, C, E],
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - a frozen value
        *,
        cache_size: int = 10_000,
        inline: Sequence[InlineView] = (),
        hooks: CommandHooks = CommandHooks(),  # noqa: B008 - a frozen value
        group_commit: bool | GroupCommit = False,
        sleep: Callable[[float], None] = pause,
        rng: random.Random | None = None,
    ) -> None:
        """Make a handler; nothing is read or written yet.

        Args:
            repository: The repository of the aggregate whose streams it writes.
            retry: How often to decide again after a conflict, and the pause before each.
            cache_size: How many streams' latest states to keep (0: none; each command loads).
            inline: Projections given the events of each append, once stored.
            hooks: Callbacks told of each result, conflict and failure.
            group_commit: True (or a :class:`GroupCommit` with its bounds) to store the
                commands for one stream that arrive while its PUT is in flight as one chunk.
            sleep: Pauses between attempts (a test's, to record them).
            rng: Draws the pauses' jitter (a seeded one repeats them).

        Raises:
            InvalidConfiguration: An option of the wrong type or out of range (naming it), or
                an inline projection of streams of another type.
        """
        super().__init__(
            repository.aggregate,
            repository.codec,
            retry,
            cache_size=cache_size,
            inline=inline,
            hooks=hooks,
            group_commit=group_commit,
            rng=rng,
        )
        self.inline = tuple(inline)
        self.repository = repository
        self._sleep = sleep
        self._lanes: Lanes[Any, CommandResult[Any, Any]] = Lanes(self._max_commands)

    @traced(start=handle_span, end=handled)
    def handle(
        self,
        stream_id: str,
        command: C,
        *,
        metadata: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        expected_version: int | ExpectedVersion = ExpectedVersion.ANY,
        command_id: str | None = None,
    ) -> CommandResult[S, E]:
        """Decide ``command`` on the stream's current state and store its events.

        Args:
            stream_id: The stream's id (its type is the aggregate's).
            command: What the aggregate's ``decide`` is given.
            metadata: Stored with every event of the command (a JSON object).
            retry: This call's policy instead of the handler's (under group commit, the pauses
                follow the policy of the command that leads the group).
            expected_version: What the caller expects of the stream: the exact version it saw
                (an int >= 0, e.g. from an HTTP ``If-Match``), ``ExpectedVersion.NO_STREAM``
                (create only), ``ExpectedVersion.STREAM_EXISTS``, or ``ExpectedVersion.ANY``
                (no check). With an exact version, the result's ``version`` is that plus one.
            command_id: 1 to MAX_COMMAND_ID_LENGTH characters that make the command
                idempotent: if the stream stored a command with that id within its window of
                recent ids, nothing is decided or stored, and the result is the first one, read
                back (``duplicate`` True), whatever ``expected_version`` says. A command that
                stored no event records no id.

        Returns:
            The stream, version and state after the command, the events it stored, and the
            attempts and object-store requests this call made.

        Raises:
            RetriesExhausted: Every attempt lost its PUT to a concurrent writer.
            WrongExpectedVersion: The stream is not (or, having lost the PUT, no longer) at
                ``expected_version``; nothing is stored, and it is never retried.
            InvalidConfiguration: Before any request, for an ``expected_version``,
                ``command_id`` or ``retry`` it cannot use.
            StreamDeleted: The stream was deleted.
            Exception: Whatever ``decide`` or ``evolve`` raise, unchanged; or a hook.
        """
        stream = self.repository.stream(stream_id)
        expected = validated(expected_version, stream)
        check_command_id(command_id, stream)
        if retry is not None:
            check_handler_options(retry=retry)
        policy = retry or self.retry
        pending: PendingCommand = Pending(
            command, metadata, policy.max_attempts, expected, command_id
        )
        # Log lines below (the event store's too) carry the stream and the attempt.
        with (
            measure_requests() as meter,
            structlog.contextvars.bound_contextvars(stream=str(stream), attempt=1),
        ):
            if not self.group_commit:
                self._settle(stream_id, [pending], policy)
            # None: settled in another caller's group. A caller that leads a group of more
            # than its own command works for the others too: cancelling its task stops only
            # its own wait, and the group's PUT goes on for them (its command with it).
            elif (group := self._lanes.join(stream_id, pending)) is None:
                pass
            elif len(group) > 1:
                shielded(self._lead, stream_id, group, policy)
            else:
                self._lead(stream_id, group, policy)
        annotate(lambda: attempted(pending.attempts, meter.counts))
        return self._outcome(stream, pending, meter.counts)

    def _lead(self, stream_id: str, group: list[PendingCommand], policy: RetryPolicy) -> None:
        """Settle ``group``, which this caller leads in its stream's lane.

        Then its commands wake, and the lane's next group gets its leader.
        """
        try:
            self._settle(stream_id, group, policy)
        finally:
            self._lanes.done(stream_id, group)

    def _settle(self, stream_id: str, group: list[PendingCommand], policy: RetryPolicy) -> None:
        """Decide and store ``group``'s commands, in bounded chunks; settle every one.

        An error that is not one command's own (the store failed, the stream is deleted)
        settles every command not settled yet.
        """
        try:
            rest = group
            while rest:
                rest = self._run(stream_id, rest, policy)
        except BaseException as error:
            if isinstance(error, StreamDeleted | CorruptChunk):
                # A deleted stream stays deleted; a corrupt chunk met while catching up from a
                # cached state may lie below the latest one, which a fresh load reads instead.
                self.cache.discard(stream_id)
            for pending in group:
                pending.fail(error)
            if not isinstance(error, Exception):
                raise

    def _run(
        self, stream_id: str, group: list[PendingCommand], policy: RetryPolicy
    ) -> list[PendingCommand]:
        """Decide ``group`` on the stream's state and store it as one version, retrying.

        Returns the commands left for the next version (past a group's bounds); every other
        command of ``group`` is settled.
        """
        repository = self.repository
        cached = self.cache.get(stream_id)
        # fresh: the state was read in this call, not remembered from an earlier one.
        loaded, fresh = (repository.load(stream_id), True) if cached is None else (cached, False)
        later: list[PendingCommand] = []
        while True:
            decisions, cut = self._decide_group(group, loaded)
            # Left out now: before those left out by an earlier round of this loop.
            group, later = group[: len(decisions)], cut + later
            head = group[0]
            structlog.contextvars.bind_contextvars(attempt=head.attempts)
            writers, mismatch = self._writers(group, decisions)
            writing = [(decision.events, pending.metadata) for pending, decision in writers]
            if not fresh and (not writing or mismatch):
                # A decision that writes nothing, a cached state that disagrees with an expected
                # version or knows the command's id: the state may be behind (or deleted), so
                # read what is new first.
                loaded, fresh = self._refresh(loaded), True
                continue
            if not writing:
                self.cache.put(stream_id, loaded)
                self._settle_decided(group, decisions, loaded, ())
                return later
            try:
                appended = append_decisions(
                    repository,
                    loaded,
                    writing,
                    command_ids=[pending.command_id for pending, _ in writers],
                )
            except ChunkTooLarge:
                if len(group) == 1:
                    raise
                # Too many decisions for one chunk: store the first half, then the rest.
                return self._halve(stream_id, group, policy, later)
            except ConcurrencyError as conflict:
                caught, group = self._overtaken(stream_id, group, loaded, conflict)
                if group:
                    group = self._lost(group, loaded, conflict, policy)
                if not group:
                    if caught is None:
                        self.cache.discard(stream_id)
                    return later
                lost = group[0].attempts - 1  # the attempt that lost
                self._tell_conflict(group, loaded, lost)
                loaded = self._catch_up(stream_id, loaded, conflict, lost, policy, caught=caught)
                fresh = True
                _log.debug(
                    "retry",
                    stream=str(loaded.stream),
                    version=loaded.version + 1,
                    attempt=group[0].attempts,
                )
                continue
            self._stored(stream_id, appended)
            self._settle_decided(group, decisions, appended.loaded, appended.recorded, appended)
            return later

    def _halve(
        self,
        stream_id: str,
        group: list[PendingCommand],
        policy: RetryPolicy,
        later: list[PendingCommand],
    ) -> list[PendingCommand]:
        """Store the first half of ``group`` as its own version; the rest goes on with ``later``."""
        half = len(group) // 2
        rest = self._run(stream_id, group[:half], policy)
        return rest + group[half:] + later

    def _settle_decided(
        self,
        group: list[PendingCommand],
        decisions: list[Decision[S, E]],
        loaded: Loaded[S],
        recorded: tuple[RecordedEvent[E], ...],
        appended: Appended[S, E] | None = None,
    ) -> None:
        """Settle each command of ``group`` with its decision, now that the version stands."""
        recalls = self._settle_known(group, decisions, loaded, recorded, appended)
        for pending, version in recalls:
            self._recall(loaded.stream, pending, version)

    def _recall(self, stream: StreamName, pending: PendingCommand, version: int) -> None:
        """Settle ``pending``, whose id ``version`` stored, with its first result, read back."""
        assert pending.command_id is not None  # noqa: S101 - only commands with ids are known
        _log.info(
            "duplicate_command", stream=str(stream), command_id=pending.command_id, version=version
        )
        try:
            recalled = recall(self.repository, stream, pending.command_id, version)
        except Exception as error:  # noqa: BLE001 - settled with its command, as any error
            pending.fail(error)
            return
        pending.succeed(
            CommandResult(
                stream,
                version,
                recalled.loaded.state,
                recalled.recorded,
                pending.attempts,
                duplicate=True,
            )
        )

    def _stored(self, stream_id: str, appended: Appended[S, E]) -> None:
        """Remember a stored version; tell the inline projections."""
        new = appended.loaded
        self.cache.put(stream_id, new)
        _log.debug("handled", stream=str(new.stream), version=new.version)
        for projection in self.inline:
            projection.appended(self.repository, appended.recorded)

    def _overtaken(
        self,
        stream_id: str,
        group: list[PendingCommand],
        loaded: Loaded[S],
        conflict: ConcurrencyError,
    ) -> tuple[Loaded[S] | None, list[PendingCommand]]:
        """After a conflict: fail the commands that expect a version the stream has moved past.

        Another writer stored ``loaded.version + 1``: a command expecting ``loaded.version`` or
        an earlier one can no longer pass, and deciding it again on the newer state is what
        its expectation forbids. Each gets WrongExpectedVersion with the version the stream is
        found at (no request when the winning chunk came with the conflict). Returns that state,
        now cached (None if no command was overtaken), and the commands that go on.
        """
        candidates = self._pinned_behind(group, loaded)
        if not candidates:
            return None, group
        caught = self.repository.refresh(loaded, conflict)
        self.cache.put(stream_id, caught)
        return caught, self._fail_overtaken(group, candidates, loaded, caught)

    def _catch_up(
        self,
        stream_id: str,
        loaded: Loaded[S],
        conflict: ConcurrencyError,
        lost: int,
        policy: RetryPolicy,
        *,
        caught: Loaded[S] | None = None,
    ) -> Loaded[S]:
        """The state to decide on again after attempt ``lost`` lost ``loaded.version + 1``.

        Pauses as ``policy`` says first. The winning chunk comes free with the first conflict
        (``caught``: the state after it, when already applied). Losing again means the stream
        is hot and moves on while we back off: walking it one version per attempt would let us
        fall behind, so load its latest state instead.
        """
        self._sleep(policy.backoff.delay(lost, self._rng))
        if lost == 1:
            if caught is not None:
                return caught
            return self.repository.refresh(loaded, conflict)
        return self.repository.load(stream_id)

    def _refresh(self, cached: Loaded[S]) -> Loaded[S]:
        """``cached`` brought up to date before a decision that writes nothing stands."""
        loaded = self.repository.refresh(cached)
        _log.debug(
            "cache_refreshed",
            stream=str(cached.stream),
            cached_version=cached.version,
            version=loaded.version,
        )
        return loaded

    def _evolved(self, stream: StreamName, state: S, events: Iterable[E]) -> S:
        return evolved(self.repository, stream, state, events)
