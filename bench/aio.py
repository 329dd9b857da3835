"""The asyncio API beside the sync one: commands per second on distinct streams, at 20 ms a request.

One :class:`~s3es.aio.AsyncCommandHandler` on one event loop keeps 1, 100 or 1,000 commands in
flight, each task working through streams of its own; one :class:`~s3es.CommandHandler` serves
the same load from 8 or 32 threads. Every request takes the simulated latency (the async
wrapper waits with ``asyncio.sleep``, the sync one with ``time.sleep``), so a task or a thread
spends its time waiting, as it would on S3. Each stream takes ``commands_per_stream`` deposits
back to back: the first loads the stream (one LIST, an empty stream) and PUTs; the next find
its state in the handler's cache and PUT alone. Both APIs send the same requests per command.

``python -m bench.aio`` prints the table; ``make bench`` puts it, with :func:`explanation`, in
docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from bench.ledger import Deposit, Ledger
from s3es import CommandHandler, EventStore, InMemoryObjectStore, Repository
from s3es.aio import (
    AsyncCommandHandler,
    AsyncEventStore,
    AsyncInMemoryObjectStore,
    AsyncLatencyObjectStore,
    AsyncRepository,
)
from s3es.metering import RequestCounts
from s3es.storage import LatencyObjectStore, SimulatedLatency


@attrs.frozen
class Throughput:
    """One run: which API, how many commands in flight (tasks or threads), and what it did."""

    api: str
    #: Commands in flight at once: tasks of one loop (async) or threads (sync).
    in_flight: int
    streams: int
    commands: int
    seconds: float
    requests: RequestCounts

    @property
    def per_second(self) -> float:
        """Commands per second."""
        return self.commands / self.seconds if self.seconds else math.inf

    @property
    def requests_per_command(self) -> float:
        """Requests (of every kind) per command."""
        return self.requests.total / self.commands


@attrs.frozen
class AioBenchConfig:
    """The runs: (commands in flight, streams) for each API, deposits per stream, latency."""

    latency: float = 0.020
    commands_per_stream: int = 3
    async_runs: tuple[tuple[int, int], ...] = ((1, 50), (100, 400), (1_000, 3_000))
    sync_runs: tuple[tuple[int, int], ...] = ((8, 200), (32, 400))


#: Tiny sizes, for the tests and a quick look.
QUICK = AioBenchConfig(
    latency=0.0, commands_per_stream=2, async_runs=((1, 3), (10, 20)), sync_runs=((4, 20),)
)


def _workload(streams: int, commands_per_stream: int) -> Iterator[tuple[str, list[Deposit]]]:
    for stream in range(streams):
        deposits = [Deposit(f"s{stream}-{n}", 1) for n in range(commands_per_stream)]
        yield f"ledger-{stream}", deposits


def async_throughput(
    in_flight: int, streams: int, *, commands_per_stream: int, latency: SimulatedLatency
) -> Throughput:
    """``in_flight`` tasks of one loop, through one async handler, deposit on ``streams``."""
    memory = AsyncInMemoryObjectStore()
    objects = AsyncLatencyObjectStore(memory, latency)
    handler = AsyncCommandHandler(AsyncRepository(AsyncEventStore(objects), Ledger))
    work = _workload(streams, commands_per_stream)

    async def worker() -> int:
        done = 0
        for stream_id, deposits in work:  # shared: each stream goes to one task
            for deposit in deposits:
                await handler.handle(stream_id, deposit)
                done += 1
        return done

    async def main() -> tuple[int, float]:
        started = time.perf_counter()
        done = await asyncio.gather(*(worker() for _ in range(in_flight)))
        return sum(done), time.perf_counter() - started

    commands, seconds = asyncio.run(main())
    return Throughput("async", in_flight, streams, commands, seconds, memory.requests)


def sync_throughput(
    threads: int, streams: int, *, commands_per_stream: int, latency: SimulatedLatency
) -> Throughput:
    """``threads`` threads, through one sync handler, deposit on ``streams``."""
    memory = InMemoryObjectStore()
    handler = CommandHandler(Repository(EventStore(LatencyObjectStore(memory, latency)), Ledger))
    work = _workload(streams, commands_per_stream)
    lock = threading.Lock()

    def worker(_: int) -> int:
        done = 0
        while True:
            with lock:
                taken = next(work, None)
            if taken is None:
                return done
            stream_id, deposits = taken
            for deposit in deposits:
                handler.handle(stream_id, deposit)
                done += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        commands = sum(pool.map(worker, range(threads)))
    seconds = time.perf_counter() - started
    return Throughput("sync", threads, streams, commands, seconds, memory.requests)


def throughput_runs(config: AioBenchConfig = AioBenchConfig()) -> list[Throughput]:
    """Every run of ``config``: the async ones, then the sync ones."""
    latency = SimulatedLatency.fixed(config.latency)
    per_stream = config.commands_per_stream
    runs = [
        async_throughput(n, streams, commands_per_stream=per_stream, latency=latency)
        for n, streams in config.async_runs
    ]
    runs += [
        sync_throughput(n, streams, commands_per_stream=per_stream, latency=latency)
        for n, streams in config.sync_runs
    ]
    return runs


def table(runs: Sequence[Throughput]) -> str:
    """The runs as a Markdown table."""
    lines = [
        "| API | in flight | streams | commands | commands/s | requests/command |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    lines += [
        f"| {run.api} | {run.in_flight:,} {_workers(run)} "
        f"| {run.streams:,} | {run.commands:,} | {run.per_second:,.0f} "
        f"| {run.requests_per_command:.2f} ({run.requests}) |"
        for run in runs
    ]
    return "\n".join(lines) + "\n"


def _workers(run: Throughput) -> str:
    noun = "task" if run.api == "async" else "thread"
    return noun if run.in_flight == 1 else f"{noun}s"


def explanation(config: AioBenchConfig) -> str:
    """What the asyncio API's table of docs/benchmarks.md measures."""
    per_stream = config.commands_per_stream
    return (
        f"Every request takes {config.latency * 1000:g} ms. Each stream takes {per_stream} "
        "deposits back to back (the first loads the empty stream, one LIST, then PUTs; the "
        "next PUT alone). One `AsyncCommandHandler` keeps that many commands in flight as "
        "tasks of one event loop; one `CommandHandler` serves the same kind of load from "
        "threads. Both send the same requests per command. A task waiting on S3 costs a "
        "coroutine where a thread costs a stack and the GIL's hand-offs: a thousand tasks on "
        "one loop outrun 32 threads until the loop's own CPU is the limit."
    )


def main() -> None:
    """Run the default runs; print the table."""
    print(table(throughput_runs()), end="")


if __name__ == "__main__":
    main()
