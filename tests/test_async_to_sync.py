"""tools/async_to_sync.py: what it makes of async code.

That every generated module is current is ``make lint``'s check (``--check``, which needs ruff).
"""

from __future__ import annotations

import textwrap

from tools import async_to_sync


def rewrite(source: str) -> str:
    return async_to_sync._rewrite(textwrap.dedent(source))


class TestRewrite:
    def test_async_and_await_go(self) -> None:
        """``async`` before def, for and with goes, and so does ``await``; comments stay."""
        assert rewrite(
            """
            async def f(store: AsyncObjectStore) -> None:  # noqa: X - kept
                async with lock:
                    async for key in store.list_keys("p/"):
                        await store.delete(key)
            """
        ) == textwrap.dedent(
            """
            def f(store: ObjectStore) -> None:  # noqa: X - kept
                with lock:
                    for key in store.list_keys("p/"):
                        store.delete(key)
            """
        )

    def test_awaitable_unwrapped_and_paths_shortened(self) -> None:
        """``Awaitable[X]`` becomes ``X``; ``._async`` leaves module paths, in code and text."""
        assert rewrite(
            '''
            from s3es._eventstore._async.store import AsyncEventStore
            read: Callable[[int], Awaitable[list[int]]] = f
            """See :class:`~s3es._eventstore._async.store.AsyncEventStore`."""
            '''
        ) == textwrap.dedent(
            '''
            from s3es._eventstore.store import EventStore
            read: Callable[[int], list[int]] = f
            """See :class:`~s3es._eventstore.store.EventStore`."""
            '''
        )

    def test_names_are_whole_words(self) -> None:
        """A name is renamed only as a whole word: ``AsyncEventStoreX`` stays."""
        assert rewrite("x = AsyncEventStoreX(AsyncWorkers)\n") == "x = AsyncEventStoreX(Workers)\n"
