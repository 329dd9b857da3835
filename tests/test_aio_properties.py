"""The concurrency property of tests/test_properties.py, on the async command handler.

Racing writers must leave gapless versions, every acknowledged append stored exactly once and
nothing else. Here the writers are AsyncCommandHandlers: many tasks on one event loop (on the
in-memory store, each request preceded by a random number of yields, so tasks interleave
mid-command as a network would make them; and on moto over HTTP through aiobotocore), and
threads each running an event loop of their own on one shared store. The checks are
test_properties.py's own, reading the store through the sync API.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3es import RetriesExhausted, RetryPolicy, S3ObjectStore
from s3es.aio import (
    AsyncCommandHandler,
    AsyncEventStore,
    AsyncForwardingObjectStore,
    AsyncInMemoryObjectStore,
    AsyncObjectStore,
    AsyncRepository,
)
from s3es.storage import StoredObject
from s3es.testing import EmbeddedS3
from tests.aggregates import Counter, CounterCommand, CounterError
from tests.strategies import writer_plans
from tests.test_aio import connect
from tests.test_properties import (
    STREAM_ID,
    Outcome,
    Writers,
    _frequent_thread_switches,
    check_concurrent_appends,
)

_prefixes = itertools.count()


class Interleaving(AsyncForwardingObjectStore):
    """Lets other tasks run a random number of times (0 to 2) before each request."""

    def __init__(self, inner: AsyncObjectStore, seed: int) -> None:
        super().__init__(inner)
        self._rng = random.Random(seed)

    async def _yield(self) -> None:
        for _ in range(self._rng.randrange(3)):
            await asyncio.sleep(0)

    async def put_if_absent(self, key: str, body: bytes) -> str:
        await self._yield()
        return await super().put_if_absent(key, body)

    async def get(self, key: str) -> StoredObject | None:
        await self._yield()
        return await super().get(key)


async def _write(  # noqa: PLR0917 - a writer, as _run_writers has it
    objects: AsyncObjectStore,
    prefix: str,
    writer: int,
    commands: list[CounterCommand],
    policy: RetryPolicy,
    start: Callable[[], Any],
) -> list[Outcome]:
    """One writer's commands, in order, through an async handler of its own."""
    repository = AsyncRepository(AsyncEventStore(objects, prefix=prefix), Counter)
    handler = AsyncCommandHandler(repository, policy, rng=random.Random(writer))
    await start()
    outcomes = []
    for index, command in enumerate(commands):
        tag = f"{writer}.{index}"
        try:
            result = await handler.handle(STREAM_ID, command, metadata={"command": tag})
        except RetriesExhausted as error:
            outcomes.append(Outcome(tag, command, None, "exhausted", error.attempts))
        except CounterError:
            outcomes.append(Outcome(tag, command, None, "refused", 0))
        else:
            outcomes.append(Outcome(tag, command, result, None, result.attempts))
    return outcomes


def tasks_on_one_loop(objects: Callable[[int], AsyncObjectStore]) -> Writers:
    """Each plan by a task of its own, all on one event loop; ``objects(writer)`` its store."""

    def run(prefix: str, plans: list[list[CounterCommand]], policy: RetryPolicy) -> Any:
        async def main() -> list[list[Outcome]]:
            started = asyncio.Event()
            writers = [
                _write(objects(writer), prefix, writer, plan, policy, started.wait)
                for writer, plan in enumerate(plans)
            ]
            started.set()
            return list(await asyncio.gather(*writers))

        return asyncio.run(main())

    return run


def loops_in_threads(objects: AsyncInMemoryObjectStore) -> Writers:
    """Each plan by a thread of its own, running an event loop of its own, on one store."""

    def run(prefix: str, plans: list[list[CounterCommand]], policy: RetryPolicy) -> Any:
        barrier = threading.Barrier(len(plans), timeout=60)

        async def start() -> None:
            barrier.wait()

        def thread(writer: int, plan: list[CounterCommand]) -> list[Outcome]:
            return asyncio.run(_write(objects, prefix, writer, plan, policy, start))

        with _frequent_thread_switches(), ThreadPoolExecutor(max_workers=len(plans)) as pool:
            futures = [pool.submit(thread, writer, plan) for writer, plan in enumerate(plans)]
            return [future.result() for future in futures]

    return run


class TestConcurrentAppends:
    @settings(max_examples=25, deadline=None)
    @given(plans=writer_plans(), max_attempts=st.sampled_from([2, 50]), seed=st.integers(0, 99))
    def test_tasks_in_memory(
        self, plans: list[list[CounterCommand]], max_attempts: int, seed: int
    ) -> None:
        """Racing tasks on one loop, interleaved before each request, leave exactly the
        acknowledged appends."""
        memory = AsyncInMemoryObjectStore()
        writers = tasks_on_one_loop(lambda writer: Interleaving(memory, seed * 100 + writer))
        check_concurrent_appends(memory.sync, "", plans, max_attempts, writers=writers)

    @settings(max_examples=15, deadline=None)
    @given(plans=writer_plans(), max_attempts=st.sampled_from([2, 50]))
    def test_threads_in_memory(self, plans: list[list[CounterCommand]], max_attempts: int) -> None:
        """Racing threads, each with its own event loop, on one store leave exactly the
        acknowledged appends."""
        memory = AsyncInMemoryObjectStore()
        writers = loops_in_threads(memory)
        check_concurrent_appends(memory.sync, "", plans, max_attempts, writers=writers)


@pytest.fixture(scope="module")
def bucket(embedded_s3: EmbeddedS3) -> str:
    """One bucket for the module; each example writes under a prefix of its own."""
    embedded_s3.create_bucket("aio-properties")
    return "aio-properties"


@settings(max_examples=6, deadline=None)
@given(plans=writer_plans(), max_attempts=st.sampled_from([2, 50]))
def test_tasks_on_moto(
    embedded_s3: EmbeddedS3, bucket: str, plans: list[list[CounterCommand]], max_attempts: int
) -> None:
    """Racing tasks on one loop, over HTTP to moto through aiobotocore, leave exactly the
    acknowledged appends."""

    def run(prefix: str, plans: list[list[CounterCommand]], policy: RetryPolicy) -> Any:
        async def main() -> list[list[Outcome]]:
            async with connect(embedded_s3.endpoint_url, bucket) as store:
                started = asyncio.Event()
                writers = [
                    _write(store, prefix, writer, plan, policy, started.wait)
                    for writer, plan in enumerate(plans)
                ]
                started.set()
                return list(await asyncio.gather(*writers))

        return asyncio.run(main())

    sync: S3ObjectStore = embedded_s3.object_store(bucket)
    check_concurrent_appends(sync, f"example-{next(_prefixes)}", plans, max_attempts, writers=run)
