"""Work in flight beside the caller, and waiting for it: threads for the sync API, tasks for async.

The async source of the event store, the repository and the command handler (the ``_async``
folders) is written with the ``Async...`` names of this module; ``tools/async_to_sync.py``
maps each to its twin here when it generates the sync modules, so the logic that uses them is
written once. Each pair behaves alike: a call started in the background runs in the caller's
context (its request meters and bound log values), and its outcome is waited for where it is
needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "AsyncFuture",
    "AsyncSignal",
    "AsyncWorkers",
    "Future",
    "Signal",
    "Workers",
    "async_outcome",
    "async_pause",
    "async_shielded",
    "async_wait",
    "forget",
    "outcome",
    "pause",
    "shielded",
    "wait",
]

_A = TypeVar("_A")
_R = TypeVar("_R")
_P = ParamSpec("_P")

#: What an async call started in the background hands back (a task); the sync twin's is a
#: ``concurrent.futures.Future``.
AsyncFuture = asyncio.Future
#: Waits a number of seconds: the sync twin blocks the thread, the async one the task.
pause = time.sleep
async_pause = asyncio.sleep
#: Set once, waited for by others: a thread's event, or a task's.
Signal = threading.Event
AsyncSignal = asyncio.Event


class Workers:
    """Calls run in a pool of at most ``size`` threads, made at the first call.

    Its idle threads end when the pool's owner (and so the pool) is collected.
    """

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self._name = name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, call: Callable[[_A], _R], argument: _A) -> Future[_R]:
        """Run ``call(argument)`` in the pool, in the caller's context."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.size, thread_name_prefix=self._name
                )
            pool = self._pool
        return pool.submit(contextvars.copy_context().run, call, argument)


class AsyncWorkers:
    """Calls run as tasks of the running event loop: the async twin of :class:`Workers`.

    A task runs in a copy of the caller's context, as :class:`Workers`' threads do. ``size``
    is kept for symmetry: the caller bounds what it keeps in flight.
    """

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self._name = name

    def submit(self, call: Callable[[_A], Awaitable[_R]], argument: _A) -> AsyncFuture[_R]:
        """Start ``call(argument)`` as a task, in the caller's context."""
        return asyncio.ensure_future(call(argument))


def wait(signal: Signal, seconds: float) -> bool:
    """Wait until ``signal`` is set, at most ``seconds``; whether it is set."""
    return signal.wait(seconds)


async def async_wait(signal: AsyncSignal, seconds: float) -> bool:
    """Wait until ``signal`` is set, at most ``seconds``; whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(signal.wait(), seconds)
    return signal.is_set()


def outcome(future: Future[_R]) -> _R:
    """What ``future``'s call returned (or raise what it raised), once it is done."""
    return future.result()


async def async_outcome(future: AsyncFuture[_R]) -> _R:
    """What ``future``'s task returned (or raise what it raised), once it is done."""
    return await future


def shielded(call: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """What ``call(*args, **kwargs)`` returns: a thread is never cancelled, so nothing to shield."""
    return call(*args, **kwargs)


#: The tasks :func:`async_shielded` started whose callers may have stopped waiting: the event
#: loop keeps only weak references to its tasks.
_shielded: set[asyncio.Task[Any]] = set()


async def async_shielded(
    call: Callable[_P, Awaitable[_R]], *args: _P.args, **kwargs: _P.kwargs
) -> _R:
    """What ``call(*args, **kwargs)`` returns, run as a task its caller's cancellation spares.

    Cancelled, the caller stops waiting (CancelledError), and the task goes on to its end. For
    work done on behalf of others besides the caller (a group commit's PUT). What the task
    raises once its caller is gone is read and dropped, so the work must hand its outcome to
    whoever waits for it.
    """
    task = asyncio.ensure_future(call(*args, **kwargs))
    _shielded.add(task)
    task.add_done_callback(_shielded.discard)
    return await asyncio.shield(task)


def forget(future: Future[Any] | AsyncFuture[Any]) -> None:
    """Cancel ``future`` if it has not started; never hear of its outcome.

    A call already running ends on its own, and what it raised is read and dropped, so that no
    task's exception is reported as never retrieved.
    """
    future.cancel()
    future.add_done_callback(_drop_outcome)


def _drop_outcome(future: Future[Any] | AsyncFuture[Any]) -> None:
    if not future.cancelled():
        future.exception()
