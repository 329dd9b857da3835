"""What cancelling the task of ``AsyncCommandHandler.handle`` means, with and without group commit.

A PUT is held at a gate, either before it reaches the store (the request is not sent yet) or
after (the object is stored, its answer not back yet), while tasks are cancelled; then the
gate opens. What was stored is read back, and the command ids say which commands were: a retry
with the same id is a duplicate exactly when the first try was stored. docs/async.md,
"Cancellation", says the same in prose.

Every scenario runs under ``asyncio.timeout``: a task that waits for ever (a stream's lane that
nobody leads any more) fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio

import pytest

from s3es import CommandResult
from s3es.aio import (
    AsyncCommandHandler,
    AsyncEventStore,
    AsyncForwardingObjectStore,
    AsyncInMemoryObjectStore,
    AsyncRepository,
)
from s3es.errors import ObjectStoreError
from tests.aggregates import Counter, CounterCommand, CounterEvent, CounterState, Increment

#: Seconds a scenario may take; each takes milliseconds.
TIMEOUT = 10.0

Result = CommandResult[CounterState, CounterEvent]
Handler = AsyncCommandHandler[CounterState, CounterCommand, CounterEvent]


class _GatedPuts(AsyncForwardingObjectStore):
    """Holds each PUT at a gate: before it reaches the store (``sent=False``) or after."""

    def __init__(self, *, sent: bool) -> None:
        super().__init__(AsyncInMemoryObjectStore())
        self.sent = sent
        self.gate = asyncio.Event()
        self.gate.set()
        self.arrived = asyncio.Event()

    async def put_if_absent(self, key: str, body: bytes) -> str:
        self.arrived.set()
        if not self.sent:
            await self.gate.wait()
            return await super().put_if_absent(key, body)
        etag = await super().put_if_absent(key, body)
        await self.gate.wait()
        return etag

    def hold(self) -> None:
        """Hold the next PUTs at the gate."""
        self.gate.clear()
        self.arrived.clear()


async def _handler(*, sent: bool, group_commit: bool) -> tuple[Handler, _GatedPuts]:
    objects = _GatedPuts(sent=sent)
    repository = AsyncRepository(AsyncEventStore(objects), Counter)
    handler = AsyncCommandHandler(repository, group_commit=group_commit)
    await handler.handle("c-1", Increment(1000))  # warm: the stream exists, its state cached
    objects.hold()
    return handler, objects


def _send(handler: Handler, amount: int, name: str) -> asyncio.Task[Result]:
    return asyncio.create_task(handler.handle("c-1", Increment(amount), command_id=name))


async def _stored(handler: Handler, names: str) -> set[str]:
    """The commands among ``names`` (their ids) that the stream stored."""
    stored = set()
    for name in names:
        retry = await handler.handle("c-1", Increment(1), command_id=name)
        if retry.duplicate:
            stored.add(name)
    return stored


async def _outcomes(tasks: dict[str, asyncio.Task[Result]]) -> dict[str, str]:
    """Each task's outcome once all are done: ``cancelled``, or the version it answered."""
    await asyncio.wait(tasks.values())
    return {
        name: "cancelled" if task.cancelled() else f"v{task.result().version}"
        for name, task in tasks.items()
    }


#: Each mode of the handler, with each point the PUT in flight is held at.
MODES = [
    pytest.param(group_commit, sent, id=f"group_commit={group_commit}-sent={sent}")
    for group_commit in (False, True)
    for sent in (False, True)
]


class TestCancellingTheLeader:
    """The task whose PUT is in flight is cancelled."""

    @pytest.mark.parametrize(("group_commit", "sent"), MODES)
    def test_stored_if_and_only_if_its_put_reached_the_store(
        self,
        group_commit: bool,
        sent: bool,
    ) -> None:
        """Its command is stored exactly when its PUT reached the store before the cancel; the
        commands that waited behind it are stored either way."""

        async def scenario() -> tuple[dict[str, str], set[str]]:
            async with asyncio.timeout(TIMEOUT):
                handler, objects = await _handler(sent=sent, group_commit=group_commit)
                tasks = {"a": _send(handler, 1, "a")}
                await objects.arrived.wait()
                tasks |= {"b": _send(handler, 10, "b"), "c": _send(handler, 100, "c")}
                await asyncio.sleep(0)
                tasks["a"].cancel()
                await asyncio.sleep(0)
                objects.gate.set()
                return await _outcomes(tasks), await _stored(handler, "abc")

        outcomes, stored = asyncio.run(scenario())
        assert outcomes["a"] == "cancelled"
        assert stored == ({"a", "b", "c"} if sent else {"b", "c"})
        assert outcomes["b"] != "cancelled"
        assert outcomes["c"] != "cancelled"


class TestCancellingAWaitingCommand:
    """A task waiting behind another's PUT is cancelled before its own decision is made."""

    @pytest.mark.parametrize(("group_commit", "sent"), MODES)
    def test_not_stored_and_the_others_go_on(
        self,
        group_commit: bool,
        sent: bool,
    ) -> None:
        """The cancelled command is not stored; every other command is, and answers. (Under
        group commit, the cancelled command was next to lead its stream's queue: nobody led it
        any more, and every later command on the stream waited for ever.)"""

        async def scenario() -> tuple[dict[str, str], set[str]]:
            async with asyncio.timeout(TIMEOUT):
                handler, objects = await _handler(sent=sent, group_commit=group_commit)
                tasks = {"a": _send(handler, 1, "a")}
                await objects.arrived.wait()
                tasks |= {"b": _send(handler, 10, "b"), "c": _send(handler, 100, "c")}
                await asyncio.sleep(0)
                tasks["b"].cancel()
                await asyncio.sleep(0)
                objects.gate.set()
                outcomes = await _outcomes(tasks)
                later = await handler.handle("c-1", Increment(5))
                assert later.state.total == 1000 + 1 + 100 + 5
                return outcomes, await _stored(handler, "abc")

        outcomes, stored = asyncio.run(scenario())
        assert outcomes["b"] == "cancelled"
        assert stored == {"a", "c"}


class _HeldPuts(AsyncForwardingObjectStore):
    """Holds each PUT, once ``holding``, until the test releases it: before it reaches the
    store (``sent=False``) or after. Once ``fail`` is set, a released PUT that has not reached
    the store fails instead."""

    def __init__(self, *, sent: bool) -> None:
        super().__init__(AsyncInMemoryObjectStore())
        self.sent = sent
        self.fail = False
        self.holding = False
        #: Each held PUT's release, in the order the PUTs arrived.
        self.arrivals: asyncio.Queue[asyncio.Event] = asyncio.Queue()

    async def put_if_absent(self, key: str, body: bytes) -> str:
        if not self.holding:
            return await super().put_if_absent(key, body)
        release = asyncio.Event()
        self.arrivals.put_nowait(release)
        if self.sent:
            etag = await super().put_if_absent(key, body)
            await release.wait()
            return etag
        await release.wait()
        if self.fail:
            raise ObjectStoreError("PUT", key, "the store is down")
        return await super().put_if_absent(key, body)


async def _cancel_a_group_leader(
    objects: _HeldPuts, *, fail: bool = False
) -> tuple[Handler, dict[str, asyncio.Task[Result]]]:
    """``a``'s PUT in flight, ``b`` and ``c`` queue behind it and ride the next PUT as one
    group, which ``b`` leads; ``b`` is cancelled while that PUT is held; then it is released
    (to fail, with ``fail``). Returns the handler and the tasks, all done."""
    repository = AsyncRepository(AsyncEventStore(objects), Counter)
    handler = AsyncCommandHandler(repository, group_commit=True)
    await handler.handle("c-1", Increment(1000))  # warm: the stream exists, its state cached
    objects.holding = True
    tasks = {"a": _send(handler, 1, "a")}
    first = await objects.arrivals.get()  # a's PUT (a leads alone)
    # b and c run up to the stream's queue before a's PUT goes on (tasks start in order).
    tasks |= {"b": _send(handler, 10, "b"), "c": _send(handler, 100, "c")}
    first.set()
    group = await objects.arrivals.get()  # the PUT of b's group: b and c
    tasks["b"].cancel()
    await asyncio.wait([tasks["b"]])
    objects.fail = fail
    group.set()
    await asyncio.wait(tasks.values())
    objects.holding = objects.fail = False
    return handler, tasks


class TestCancellingTheLeaderOfAGroup:
    """The task that leads a group of commands is cancelled while the group's PUT is in flight.

    Only that task is cancelled: the others of its group were not, so each gets its command's
    real outcome (once they got CancelledError too, their commands stored or not).
    """

    @pytest.mark.parametrize("sent", [False, True], ids=["sent=False", "sent=True"])
    def test_the_others_get_their_results(self, sent: bool) -> None:
        """The PUT goes on for the others: each answers its version, every command of the group
        (the leader's with them) is stored once, and the leader gets CancelledError."""

        async def scenario() -> tuple[dict[str, str], set[str], Result]:
            async with asyncio.timeout(TIMEOUT):
                handler, tasks = await _cancel_a_group_leader(_HeldPuts(sent=sent))
                outcomes = await _outcomes(tasks)
                stored = await _stored(handler, "abc")
                return outcomes, stored, await handler.handle("c-1", Increment(5))

        outcomes, stored, later = asyncio.run(scenario())
        assert outcomes == {"a": "v2", "b": "cancelled", "c": "v3"}
        assert stored == {"a", "b", "c"}
        # One version for b's and c's commands, each stored once.
        assert (later.version, later.state.total) == (4, 1000 + 1 + 10 + 100 + 5)

    def test_the_others_get_the_error_of_a_failed_put(self) -> None:
        """The PUT fails: the others get its error, not CancelledError; nothing of the group is
        stored, and the stream goes on."""

        async def scenario() -> tuple[dict[str, asyncio.Task[Result]], set[str], Result]:
            async with asyncio.timeout(TIMEOUT):
                handler, tasks = await _cancel_a_group_leader(_HeldPuts(sent=False), fail=True)
                later = await handler.handle("c-1", Increment(5))
                return tasks, await _stored(handler, "abc"), later

        tasks, stored, later = asyncio.run(scenario())
        assert tasks["a"].result().version == 2
        assert tasks["b"].cancelled()
        error = tasks["c"].exception()
        assert isinstance(error, ObjectStoreError)
        assert "the store is down" in str(error)
        assert stored == {"a"}
        assert (later.version, later.state.total) == (3, 1000 + 1 + 5)
