"""What the sync and the async command handler share: every step that does no I/O.

:class:`CommandHandlerBase` is the base class of :class:`~s3es.CommandHandler` and
:class:`~s3es.aio.AsyncCommandHandler` (``_domain/commands.py``, generated from
``_domain/_async/commands.py``), as psycopg's ``_cursor_base.py`` is of its two cursors: the
handlers keep only the steps that read or write (load, append, catch up, wait in a lane), so
the generated module copies no plain logic. Deciding a group of commands, telling a duplicate,
failing the commands out of attempts and settling results are written here once.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import attrs

from s3es._base.logging import get_logger
from s3es._domain.aggregate import Aggregate, AggregateCodec, C, E, RecordedEvent, S
from s3es._domain.cache import LoadedCache
from s3es._domain.expected import ExpectedVersion, admits, pinned
from s3es._domain.options import (
    MAX_GROUP_EVENTS,
    CommandHooks,
    Conflict,
    GaveUp,
    GroupCommit,
    RetryPolicy,
    check_handler_options,
)
from s3es._domain.values import Appended, CommandResult, Decision, Loaded
from s3es._eventstore.values import StreamConflict
from s3es._storage.keys import StreamName
from s3es.errors import (
    ConcurrencyError,
    DomainContractError,
    RetriesExhausted,
    WrongExpectedVersion,
)

__all__ = ["CommandHandlerBase", "PendingLike", "SourceChecked"]

_log = get_logger("s3es.commands")


class PendingLike(Protocol):
    """A command waiting in a handler: the sync and the async ``group.Pending`` both are."""

    command: Any
    metadata: Mapping[str, Any] | None
    max_attempts: int
    expected_version: int | ExpectedVersion
    command_id: str | None
    attempts: int

    def succeed(self, result: CommandResult[Any, Any]) -> None:
        """Settle the command with ``result``."""

    def fail(self, error: BaseException) -> None:
        """Settle the command with ``error``, unless it is settled already."""

    def outcome(self) -> Any:
        """The result, or raise the error."""


P = TypeVar("P", bound=PendingLike)


class SourceChecked(Protocol):
    """An inline view as far as a handler checks it when it is made."""

    def check_source(self, stream_type: str) -> None:
        """Raise InvalidConfiguration unless the view reads streams of ``stream_type``."""


class CommandHandlerBase(Generic[S, C, E]):
    """The part of a command handler that does no I/O: options, decisions, settling.

    Not used alone: :class:`~s3es.CommandHandler` and :class:`~s3es.aio.AsyncCommandHandler`
    derive from it and add the steps that read and write.
    """

    def __init__(
        self,
        aggregate: Aggregate[S, C, E],
        codec: AggregateCodec[S, C, E],
        retry: RetryPolicy,
        *,
        cache_size: int,
        inline: Sequence[SourceChecked],
        hooks: CommandHooks,
        group_commit: bool | GroupCommit,
        rng: random.Random | None,
    ) -> None:
        """Check and keep the options both handlers share (see the handlers' ``__init__``).

        Raises:
            InvalidConfiguration: An option of the wrong type or out of range (naming it), or
                an inline projection of streams of another type.
        """
        check_handler_options(
            retry=retry, cache_size=cache_size, hooks=hooks, group_commit=group_commit
        )
        for view in inline:
            view.check_source(codec.stream_type)
        self._aggregate = aggregate
        self._codec = codec
        self.retry = retry
        self.hooks = hooks
        self.cache: LoadedCache[S] = LoadedCache(cache_size)
        self.group_commit: GroupCommit | None = (
            GroupCommit() if group_commit is True else group_commit or None
        )
        self._rng = rng or random.Random()
        #: The most commands one PUT carries (1 without group commit).
        self._max_commands = self.group_commit.max_commands if self.group_commit else 1

    def _evolved(self, stream: StreamName, state: S, events: Iterable[E]) -> S:
        """``state`` after ``events``: the repository module's ``evolved`` (each handler's own)."""
        raise NotImplementedError

    def _outcome(
        self, stream: StreamName, pending: PendingLike, requests: Any
    ) -> CommandResult[S, E]:
        """The settled ``pending``'s result with ``requests``, told to the hooks; or its error.

        Raises:
            Exception: The command's error (after the ``on_give_up`` hook is told of it).
        """
        hooks = self.hooks
        try:
            outcome: CommandResult[S, E] = pending.outcome()
        except Exception as error:
            if hooks.on_give_up is not None:
                hooks.on_give_up(GaveUp(stream, pending.attempts, error))
            raise
        result = attrs.evolve(outcome, requests=requests)
        if hooks.on_result is not None:
            hooks.on_result(result)
        return result

    def _decide_group(
        self, group: list[P], loaded: Loaded[S]
    ) -> tuple[list[Decision[S, E]], list[P]]:
        """Each command of ``group`` decided in order, each on the state the ones before left.

        Stops before the command that would take the group past MAX_GROUP_EVENTS events (the
        first command always goes in), and before a command that expects an exact version once
        an earlier one writes: that one is decided on the state of the version they make, not
        on a state no version holds. Returns the decisions and the commands left out.
        """
        decisions: list[Decision[S, E]] = []
        state, events = loaded.state, 0
        max_events = self.group_commit.max_events if self.group_commit else MAX_GROUP_EVENTS
        #: The command ids of the group's decisions that write, and which decision has each.
        writes: dict[str, int] = {}
        for index, pending in enumerate(group):
            known = self._known(pending.command_id, loaded, state, writes)
            if known is not None:
                # A duplicate: the first result, whatever the command expects.
                decisions.append(known)
                continue
            if events and pinned(pending.expected_version) is not None:
                return decisions, group[index:]
            # Once an earlier command writes, the state is that of the version to be stored.
            version = loaded.version + 1 if events else loaded.version
            decision = self._decide(
                pending.command,
                loaded,
                state,
                version=version,
                expected_version=pending.expected_version,
            )
            if decisions and events + len(decision.events) > max_events:
                return decisions, group[index:]
            decisions.append(decision)
            if pending.command_id is not None and decision.events:
                writes[pending.command_id] = index
            state, events = decision.state, events + len(decision.events)
        return decisions, []

    @staticmethod
    def _known(
        command_id: str | None, loaded: Loaded[S], state: S, writes: Mapping[str, int]
    ) -> Decision[S, E] | None:
        """The decision for a command whose id is stored (or rides the group), else None."""
        if command_id is None:
            return None
        first = writes.get(command_id)
        if first is not None:
            return Decision((), state, duplicate_of=first)
        version = loaded.commands.get(command_id)
        return None if version is None else Decision((), state, recall=version)

    def _decide(
        self,
        command: C,
        loaded: Loaded[S],
        state: S,
        *,
        version: int | None = None,
        expected_version: int | ExpectedVersion = ExpectedVersion.ANY,
    ) -> Decision[S, E]:
        """``command`` decided on ``state``: where one command's decision is made.

        ``state`` is ``loaded``'s, or under group commit the state after the group's earlier
        decisions on top of it. ``version`` is the version ``state`` counts as: ``loaded``'s
        (the default), or under group commit the one the group will be stored as once an
        earlier decision writes. Unless that version is what ``expected_version`` expects,
        the decision is a WrongExpectedVersion carrying it, and ``decide`` is not called. A
        domain error (whatever ``decide`` or ``evolve`` raise, DomainContractError included) is
        returned in the decision, not raised. Either fails this command only, once the state it
        was decided on is known to be current.
        """
        at = loaded.version if version is None else version
        if not admits(expected_version, at):
            return Decision((), state, WrongExpectedVersion(loaded.stream, expected_version, at))
        try:
            # A decide that yields raises its domain errors while it is read: here too.
            events = self._events(self._aggregate.decide(command, state), loaded)
            after = self._evolved(loaded.stream, state, events)
        except Exception as error:  # noqa: BLE001 - a domain error, settled with its command
            return Decision((), state, error)
        return Decision(events, after)

    @staticmethod
    def _writers(
        group: list[P], decisions: list[Decision[S, E]]
    ) -> tuple[list[tuple[P, Decision[S, E]]], bool]:
        """The commands of ``group`` whose decisions write, and whether any is a mismatch.

        A mismatch (a WrongExpectedVersion, or an id the stream stored) may come of a stale state.
        """
        writers = [
            (pending, decision)
            for pending, decision in zip(group, decisions, strict=True)
            if decision.events
        ]
        mismatch = any(
            isinstance(decision.error, WrongExpectedVersion) or decision.recall is not None
            for decision in decisions
        )
        return writers, mismatch

    @staticmethod
    def _settle_known(
        group: list[P],
        decisions: list[Decision[S, E]],
        loaded: Loaded[S],
        recorded: tuple[RecordedEvent[E], ...],
        appended: Appended[S, E] | None = None,
    ) -> list[tuple[P, int]]:
        """Settle each command of ``group`` with its decision, now that the version stands.

        Returns the commands whose ids an earlier version stored, each with that version: their
        first results are to be read back.
        """
        offset = 0
        results: dict[int, CommandResult[S, E]] = {}
        recalls: list[tuple[P, int]] = []
        for index, (pending, decision) in enumerate(zip(group, decisions, strict=True)):
            if decision.error is not None:
                pending.fail(decision.error)
                continue
            if decision.recall is not None:
                recalls.append((pending, decision.recall))
                continue
            if decision.duplicate_of is not None:
                first = results[decision.duplicate_of]
                pending.succeed(
                    attrs.evolve(first, attempts=pending.attempts, recovered=False, duplicate=True)
                )
                continue
            own = recorded[offset : offset + len(decision.events)]
            offset += len(own)
            results[index] = CommandResult(
                loaded.stream,
                loaded.version,
                decision.state,
                own,
                pending.attempts,
                recovered=appended.recovered if appended is not None and own else False,
            )
            pending.succeed(results[index])
        return recalls

    @staticmethod
    def _pinned_behind(group: list[P], loaded: Loaded[S]) -> list[P]:
        """The commands of ``group`` that expect ``loaded.version`` or an earlier one."""
        return [
            pending
            for pending in group
            if (version := pinned(pending.expected_version)) is not None
            and version <= loaded.version
        ]

    @staticmethod
    def _fail_overtaken(
        group: list[P], candidates: list[P], loaded: Loaded[S], caught: Loaded[S]
    ) -> list[P]:
        """Fail the ``candidates`` the stream, now at ``caught``, has moved past; return the rest.

        A command whose id the stream stored meanwhile is a duplicate, not overtaken.
        """
        overtaken = [pending for pending in candidates if pending.command_id not in caught.commands]
        for pending in overtaken:
            _log.info(
                "wrong_expected_version",
                stream=str(loaded.stream),
                expected_version=pinned(pending.expected_version),
                version=caught.version,
            )
            pending.fail(
                WrongExpectedVersion(loaded.stream, pending.expected_version, caught.version)
            )
        return [pending for pending in group if pending not in overtaken]

    def _tell_conflict(self, group: list[P], loaded: Loaded[S], lost: int) -> None:
        """Give the ``on_conflict`` hook the PUT of ``group`` that attempt ``lost`` lost."""
        if self.hooks.on_conflict is not None:
            head = group[0]
            self.hooks.on_conflict(
                Conflict(loaded.stream, lost, head.max_attempts, loaded.version + 1, len(group))
            )

    def _lost(
        self,
        group: list[P],
        loaded: Loaded[S],
        conflict: ConcurrencyError,
        policy: RetryPolicy,
    ) -> list[P]:
        """After a conflict: settle the commands out of attempts; return those that go on."""
        self._log_conflict(conflict, group[0].attempts, policy)
        going_on = []
        found = conflict.found if isinstance(conflict, StreamConflict) else None
        stored = found.commands if found is not None else {}
        for pending in group:
            # A command the winner stored is answered as a duplicate on the next round.
            if pending.attempts >= pending.max_attempts and pending.command_id not in stored:
                exhausted = RetriesExhausted(loaded.stream, pending.attempts, conflict)
                exhausted.__cause__ = conflict  # as ``raise ... from conflict`` would
                pending.fail(exhausted)
            else:
                pending.attempts += 1
                going_on.append(pending)
        return going_on

    def _events(self, decided: Any, loaded: Loaded[S]) -> tuple[E, ...]:
        """What ``decide`` returned for ``loaded``'s stream, as a tuple of events.

        Raises DomainContractError unless it is a sequence of events (a list, a tuple, or any
        iterable but a str, a mapping or one event).
        """
        one_event = self._codec.is_event(decided)
        if isinstance(decided, Iterable) and not (isinstance(decided, str | Mapping) or one_event):
            return tuple(decided)
        found = (
            "None" if decided is None else f"{decided!r:.80} (of type {type(decided).__qualname__})"
        )
        hint = f" (return [{type(decided).__qualname__}(...)] for one)" if one_event else ""
        raise DomainContractError(
            f"{type(self._aggregate).__qualname__}.decide returned {found} for stream "
            f"{loaded.stream}: it must return a list of events, [] for none{hint}"
        )

    @staticmethod
    def _log_conflict(conflict: ConcurrencyError, attempt: int, policy: RetryPolicy) -> None:
        _log.info(
            "conflict",
            stream=str(conflict.stream),
            attempt=attempt,
            version=conflict.expected_version + 1,
            max_attempts=policy.max_attempts,
        )
