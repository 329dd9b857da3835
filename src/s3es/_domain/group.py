# Generated from src/s3es/_domain/_async/group.py by tools/async_to_sync.py: do not edit.
"""Group commit's queue: commands for one stream that wait while its PUT is in flight.

One caller (a thread, or a task) at a time leads a stream's lane: it decides and stores a
group of commands. Commands that arrive meanwhile queue up in order; when the leader is done,
the first of them leads the next group, which takes every command queued by then (up to a
bound). So a stream in one process has at most one PUT in flight, and each PUT carries every
decision that queued behind the one before it.

A group with commands of other callers is settled to its end even if its leader stops waiting
(its task cancelled): the command handler runs it in a task the leader's cancellation does not
reach, which wakes each command with its outcome and then hands the lane on.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import attrs

from s3es._base.concurrency import Signal
from s3es._domain.expected import ExpectedVersion
from s3es._domain.options import MAX_GROUP_COMMANDS

C = TypeVar("C")
R = TypeVar("R")


@attrs.define(eq=False)
class Pending(Generic[C, R]):
    """A command waiting to be decided and stored, and, once it is, its outcome."""

    command: C
    metadata: Mapping[str, Any] | None
    #: Attempts this command's policy allows, and the one it is at (1, plus one per conflict).
    max_attempts: int
    #: What the caller expects of the stream's version (an int: that exact version).
    expected_version: int | ExpectedVersion = ExpectedVersion.ANY
    #: The caller's id of the command (an Idempotency-Key), if any.
    command_id: str | None = None
    attempts: int = 1
    result: R | None = None
    error: BaseException | None = None
    done: bool = False
    #: The group this command is to lead (handed over by the previous leader), if any.
    group: list[Pending[C, R]] | None = None
    #: Set when the command waits in a lane: the leader sets it once the command is settled or
    #: is to lead.
    ready: Signal | None = None

    def succeed(self, result: R) -> None:
        """Settle the command with ``result``."""
        self.result, self.done = result, True

    def fail(self, error: BaseException) -> None:
        """Settle the command with ``error``, unless it is settled already."""
        if not self.done:
            self.error, self.done = error, True

    def wake(self) -> None:
        """Let the command that waits in its lane go on: it is settled, or it is to lead."""
        if self.ready is not None:
            self.ready.set()

    def outcome(self) -> R:
        """The result, or raise the error."""
        if self.error is not None:
            raise self.error
        assert self.result is not None  # noqa: S101 - settled with one or the other
        return self.result


class Lanes(Generic[C, R]):
    """Each stream's queue of commands waiting for the PUT in flight. Thread-safe.

    A group takes at most ``max_commands`` of them. Its lock is never held across an
    ``await``: the async lanes take it as the threads' do.
    """

    def __init__(self, max_commands: int = MAX_GROUP_COMMANDS) -> None:
        #: The most commands one group takes; more wait for the next group.
        self.max_commands = max_commands
        self._lock = threading.Lock()
        #: A stream has a lane while a leader works on it; the lane holds those who wait.
        self._lanes: dict[str, deque[Pending[C, R]]] = {}

    def join(self, stream_id: str, pending: Pending[C, R]) -> list[Pending[C, R]] | None:
        """Queue ``pending``; return the group it is to lead, or None once it is settled.

        Waits while another caller leads the stream and ``pending`` waits its turn.
        """
        with self._lock:
            lane = self._lanes.get(stream_id)
            if lane is None:
                self._lanes[stream_id] = deque()
                return [pending]
            ready = pending.ready = Signal()
            lane.append(pending)
        try:
            ready.wait()  # set by the leader that settles it or hands it the lead
        except BaseException:
            self._abandon(stream_id, pending)
            raise
        return pending.group

    def _abandon(self, stream_id: str, pending: Pending[C, R]) -> None:
        """``pending``'s caller stopped waiting (its task was cancelled): let the lane go on.

        A command still queued leaves the lane, undecided: it is not stored. One handed the
        lead of a group hands it on to the next command of that group, or, alone, lets the
        lane's next group start: else nobody would lead the stream's lane again, and every
        later command on it would wait for ever. A command already taken into another
        leader's group is decided and stored with it, as if its caller still waited.
        """
        with self._lock:
            group = pending.group
            if group is None:
                lane = self._lanes.get(stream_id)
                if lane is not None and pending in lane:
                    lane.remove(pending)
                return
        rest = group[1:]
        if rest:
            rest[0].group = rest
            rest[0].wake()
        else:
            self.done(stream_id, group)

    def done(self, stream_id: str, group: list[Pending[C, R]]) -> None:
        """The leader settled ``group``: wake its commands; the next group gets a leader."""
        with self._lock:
            lane = self._lanes[stream_id]
            nxt = [lane.popleft() for _ in range(min(len(lane), self.max_commands))]
            if nxt:
                nxt[0].group = nxt
            else:
                del self._lanes[stream_id]
        for pending in group[1:]:
            pending.wake()
        if nxt:
            nxt[0].wake()
