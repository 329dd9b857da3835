"""The command handler's options and hooks: small frozen values, checked when they are made.

The same objects serve :class:`~s3es.CommandHandler` and :class:`~s3es.aio.AsyncCommandHandler`.
A value that cannot work raises InvalidConfiguration naming the class, the field and the value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from s3es._base.backoff import Backoff
from s3es._domain.values import CommandResult
from s3es._storage.keys import StreamName
from s3es.errors import InvalidConfiguration

__all__ = [
    "MAX_GROUP_COMMANDS",
    "MAX_GROUP_EVENTS",
    "CommandHooks",
    "Conflict",
    "GaveUp",
    "GroupCommit",
    "RetryPolicy",
    "check_handler_options",
]

#: The most commands one group decides unless told otherwise; more wait for the next group.
MAX_GROUP_COMMANDS = 256
#: The most events one group's chunk carries unless told otherwise.
MAX_GROUP_EVENTS = 1_000


def _refuse(instance: object, attribute: attrs.Attribute[Any], value: object, wanted: str) -> None:
    raise InvalidConfiguration(
        f"{type(instance).__qualname__}.{attribute.name} must be {wanted}, not {value!r:.80}"
    )


def _positive_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An int >= 1 (not a bool)."""
    if type(value) is not int or value < 1:
        _refuse(instance, attribute, value, "an int >= 1")


def _optional_callable(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not callable(value):
        _refuse(instance, attribute, value, "a callable or None")


def _backoff(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Backoff):
        _refuse(instance, attribute, value, "a Backoff")


def _default_backoff() -> Backoff:
    return Backoff(initial=0.005, maximum=0.25)


@attrs.frozen
class RetryPolicy:
    """How a command handler answers concurrency conflicts: how often, and how fast.

    Give one to the handler (``CommandHandler(repository, RetryPolicy(max_attempts=30))``), or
    to one call (``handle(..., retry=RetryPolicy(max_attempts=1))``).

    Attributes:
        max_attempts: Decisions in all, an int >= 1 (1: never retry).
        backoff: The pause before each retry: drawn from zero to a bound that grows by
            ``multiplier`` from ``initial`` up to ``maximum`` seconds (full jitter).
    """

    max_attempts: int = attrs.field(default=10, validator=_positive_int)
    backoff: Backoff = attrs.field(factory=_default_backoff, validator=_backoff)


@attrs.frozen
class GroupCommit:
    """Group commit's bounds: ``CommandHandler(..., group_commit=GroupCommit(max_events=100))``.

    Under group commit, the commands one handler receives for a stream while its PUT is in
    flight ride the next PUT together, as one chunk (``group_commit=True`` takes these
    defaults). See docs/design.md, "Fairness on a hot stream".

    Attributes:
        max_commands: The most commands one group decides (an int >= 1); more wait.
        max_events: The most events one group's chunk carries (an int >= 1): the commands
            after them wait for the next PUT (a first command is stored however many it has).
    """

    max_commands: int = attrs.field(default=MAX_GROUP_COMMANDS, validator=_positive_int)
    max_events: int = attrs.field(default=MAX_GROUP_EVENTS, validator=_positive_int)


@attrs.frozen
class Conflict:
    """An append that lost its version to another writer: the handler will decide again.

    What :class:`CommandHooks`'s ``on_conflict`` is given, once per lost PUT.
    """

    #: The stream written to.
    stream: StreamName
    #: The attempt that lost (1: the first).
    attempt: int
    #: The attempts the command's policy allows.
    max_attempts: int
    #: The version the append tried to store, which another writer stored first.
    version: int
    #: How many commands the lost PUT carried and will be decided again (1 but under group
    #: commit).
    commands: int = 1


@attrs.frozen
class GaveUp:
    """A command the handler gave up on: ``handle`` raises ``error``.

    What :class:`CommandHooks`'s ``on_give_up`` is given: RetriesExhausted when every attempt
    lost a race, else the error that failed it (a domain error, WrongExpectedVersion,
    StreamDeleted, a storage error...).
    """

    #: The stream the command was for.
    stream: StreamName
    #: Decisions made (1, plus one per conflict met).
    attempts: int
    #: What ``handle`` raises.
    error: Exception


@attrs.frozen
class CommandHooks:
    """Callbacks a command handler calls as its commands go: to count, log or meter them.

    ``CommandHandler(repository, hooks=CommandHooks(on_conflict=conflicts.append))``. Each is
    a plain function (for the async handler too), called on the caller's thread or event loop
    before ``handle`` returns or raises: it should be quick and must not block. An exception a
    hook raises is not swallowed: it propagates from ``handle`` (from ``on_result``: after the
    command was stored; from ``on_conflict``: it fails the commands of the lost PUT, which
    are not retried).

    Attributes:
        on_result: Given each command's CommandResult (duplicates included).
        on_conflict: Given a :class:`Conflict` for each lost PUT that will be retried.
        on_give_up: Given a :class:`GaveUp` for each command whose ``handle`` raises once
            it has begun (not for InvalidConfiguration about its arguments).
    """

    on_result: Callable[[CommandResult[Any, Any]], object] | None = attrs.field(
        default=None, validator=_optional_callable
    )
    on_conflict: Callable[[Conflict], object] | None = attrs.field(
        default=None, validator=_optional_callable
    )
    on_give_up: Callable[[GaveUp], object] | None = attrs.field(
        default=None, validator=_optional_callable
    )


_UNSET: Any = object()


def check_handler_options(
    *,
    retry: object = _UNSET,
    cache_size: object = _UNSET,
    hooks: object = _UNSET,
    group_commit: object = _UNSET,
) -> None:
    """Check the command handler's options given (each is optional), before any request.

    Raises:
        InvalidConfiguration: Naming the first option of the wrong type or out of range.
    """
    problem = None
    if retry is not _UNSET and not isinstance(retry, RetryPolicy):
        problem = f"retry must be a RetryPolicy, not {retry!r:.80}"
    elif cache_size is not _UNSET and (type(cache_size) is not int or cache_size < 0):
        problem = f"cache_size must be an int >= 0 (0: keep no state), not {cache_size!r:.80}"
    elif hooks is not _UNSET and not isinstance(hooks, CommandHooks):
        problem = f"hooks must be a CommandHooks, not {hooks!r:.80}"
    elif group_commit is not _UNSET and not isinstance(group_commit, bool | GroupCommit):
        problem = f"group_commit must be a bool or a GroupCommit, not {group_commit!r:.80}"
    if problem is not None:
        raise InvalidConfiguration(f"CommandHandler: {problem}")
