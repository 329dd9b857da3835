"""Commands: what each costs in requests and dollars, and how many a hot stream takes per second.

Every writer is a :class:`~s3es.CommandHandler` of its own, as a process of its own would be, with
its own cache of the latest state it knows. Writers on one stream run in threads; the store's
requests take a simulated latency, so the threads spend their time waiting, as they would on S3.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from bench.ledger import Deposit, Deposited, Ledger, LedgerState
from s3es import (
    CommandHandler,
    CommandResult,
    EventStore,
    InMemoryObjectStore,
    Repository,
    RetriesExhausted,
)
from s3es.metering import S3_STANDARD_PRICES, RequestCounts, RequestPrices, measure_requests
from s3es.storage import LatencyObjectStore, ObjectStore, SimulatedLatency

LedgerHandler = CommandHandler[LedgerState, Deposit, Deposited]
LedgerResult = CommandResult[LedgerState, Deposited]

#: The cheapest a command can be: the one PUT that stores its events.
FLOOR = RequestCounts(put=1)


def dollars_per_million(requests: RequestCounts, commands: int, prices: RequestPrices) -> float:
    """What a million commands cost if each sends, on average, ``requests / commands``."""
    return requests.cost(prices) / commands * 1_000_000


def ledger_repository(objects: ObjectStore) -> Repository[LedgerState, Deposit, Deposited]:
    """A repository of ledgers on ``objects``."""
    return Repository(EventStore(objects), Ledger)


def ledger_handler(
    objects: ObjectStore, *, cache_size: int = 10_000, seed: int = 0
) -> LedgerHandler:
    """A command handler of ledgers on ``objects``, its backoff jitter drawn from ``seed``."""
    return CommandHandler(
        ledger_repository(objects), cache_size=cache_size, rng=random.Random(seed)
    )


def stored_entry_ids(objects: ObjectStore, stream_id: str) -> tuple[str, ...]:
    """The entry ids of every deposit a full read of the ledger ``stream_id`` finds, in order."""
    return tuple(recorded.event.entry_id for recorded in ledger_repository(objects).read(stream_id))


def total_requests(results: Iterable[LedgerResult]) -> RequestCounts:
    """The requests the commands of ``results`` sent, added up."""
    total = RequestCounts()
    for result in results:
        total += result.requests
    return total


@attrs.frozen
class CommandCost:
    """The requests a number of commands sent, and what a million such commands cost."""

    scenario: str
    commands: int
    requests: RequestCounts
    prices: RequestPrices = S3_STANDARD_PRICES

    def per_command(self, kind: str) -> float:
        """Requests of ``kind`` (``put``, ``get``, ``list`` or ``total``) per command."""
        count: int = getattr(self.requests, kind)
        return count / self.commands

    @property
    def dollars_per_million(self) -> float:
        """Dollars per million commands."""
        return dollars_per_million(self.requests, self.commands, self.prices)

    @property
    def floor_ratio(self) -> float:
        """Cost relative to the one-PUT floor."""
        return self.dollars_per_million / dollars_per_million(FLOOR, 1, self.prices)


def uncontended(commands: int, *, warm: bool, stream_id: str = "ledger-1") -> CommandCost:
    """``commands`` deposits by one writer on one stream, on an in-memory store.

    Warm: the handler knows the stream's latest state (a cache hit), as a process that handled
    the stream's last command does. Cold: ``cache_size=0``, as a process that never saw the
    stream, so every command loads it first. Before the measured commands, one command creates
    the stream (and warms the cache), so every measured command finds a stream to load.
    """
    handler = ledger_handler(InMemoryObjectStore(), cache_size=10_000 if warm else 0)
    handler.handle(stream_id, Deposit(entry_id="seed", amount=1))
    results = [
        handler.handle(stream_id, Deposit(entry_id=f"c{index}", amount=1))
        for index in range(commands)
    ]
    scenario = "warm (the handler knows the stream)" if warm else "cold (load, decide, append)"
    return CommandCost(f"1 writer, {scenario}", commands, total_requests(results))


@attrs.frozen
class CommandOutcome:
    """One command of a hot-stream run: its result (None if it gave up), requests and time."""

    result: LedgerResult | None
    requests: RequestCounts
    #: Concurrency conflicts met (for a command that gave up: one per attempt).
    conflicts: int
    seconds: float


@attrs.frozen
class HotStreamRun:
    """Writers racing on one stream: what they got stored, how fast, and at what cost."""

    writers: int
    #: Commands each writer ran.
    commands_per_writer: int
    #: Seconds a PUT took (simulated); 0 if requests took no simulated time.
    put_latency: float
    #: Wall-clock seconds from the writers' common start to the last command's end.
    seconds: float
    #: Every command run, by every writer.
    outcomes: tuple[CommandOutcome, ...]
    #: Entry ids of the Deposited events a full read of the stream found, afterwards.
    stored_ids: tuple[str, ...]

    @property
    def results(self) -> tuple[LedgerResult, ...]:
        """The results of the commands that returned one."""
        return tuple(outcome.result for outcome in self.outcomes if outcome.result is not None)

    @property
    def acknowledged(self) -> int:
        """Commands that returned a result: their writer was told the events are stored."""
        return len(self.results)

    @property
    def gave_up(self) -> int:
        """Commands that raised RetriesExhausted: every attempt lost to another writer."""
        return len(self.outcomes) - self.acknowledged

    @property
    def acknowledged_ids(self) -> frozenset[str]:
        """Entry ids of the events the results say were stored."""
        return frozenset(
            recorded.event.entry_id for result in self.results for recorded in result.recorded
        )

    @property
    def lost(self) -> int:
        """Acknowledged events that the final read of the stream does not hold."""
        return len(self.acknowledged_ids - set(self.stored_ids))

    @property
    def requests(self) -> RequestCounts:
        """Requests every command sent, those that gave up included."""
        total = RequestCounts()
        for outcome in self.outcomes:
            total += outcome.requests
        return total

    @property
    def conflicts(self) -> int:
        """Concurrency conflicts met by every command, those that gave up included."""
        return sum(outcome.conflicts for outcome in self.outcomes)

    @property
    def per_second(self) -> float:
        """Acknowledged commands per second."""
        return self.acknowledged / self.seconds if self.seconds else math.inf

    @property
    def limit_per_second(self) -> float:
        """One stream stores at most one version per PUT round trip."""
        return 1 / self.put_latency if self.put_latency else math.inf

    @property
    def share_of_limit(self) -> float:
        """Commands per second as a fraction of :attr:`limit_per_second`."""
        return self.per_second / self.limit_per_second

    def latency_quantile(self, quantile: float) -> float:
        """The command duration (seconds) below which ``quantile`` of all commands ended."""
        durations = sorted(outcome.seconds for outcome in self.outcomes)
        return durations[min(len(durations) - 1, int(quantile * len(durations)))]

    def cost(self, prices: RequestPrices = S3_STANDARD_PRICES) -> CommandCost:
        """The cost of this run, per acknowledged command."""
        return CommandCost(
            f"{self.writers} writers on one stream", self.acknowledged, self.requests, prices
        )


def _run_command(handler: LedgerHandler, stream_id: str, command: Deposit) -> CommandOutcome:
    started = time.perf_counter()
    with measure_requests() as meter:
        try:
            result = handler.handle(stream_id, command)
        except RetriesExhausted as error:
            return CommandOutcome(None, meter.counts, error.attempts, time.perf_counter() - started)
    return CommandOutcome(result, meter.counts, result.conflicts, time.perf_counter() - started)


def hot_stream(
    inner: ObjectStore,
    *,
    writers: int,
    commands_per_writer: int,
    latency: SimulatedLatency,
    seed: int = 0,
    stream_id: str = "hot",
) -> HotStreamRun:
    """``writers`` threads, each with its own handler, deposit on one stream of ``inner``.

    Each writer runs ``commands_per_writer`` deposits back to back, all its requests going
    through ``latency``. They start together (a barrier). Afterwards the stream is read in full,
    without latency, to see which of the acknowledged deposits it holds.
    """
    objects = LatencyObjectStore(inner, latency, seed=seed)
    started: list[float] = []
    barrier = threading.Barrier(writers, action=lambda: started.append(time.perf_counter()))

    def write(writer: int) -> list[CommandOutcome]:
        handler = ledger_handler(objects, seed=seed * 1_000 + writer)
        barrier.wait()
        return [
            _run_command(handler, stream_id, Deposit(f"w{writer}-{index}", 1))
            for index in range(commands_per_writer)
        ]

    with ThreadPoolExecutor(max_workers=writers) as pool:
        outcomes = [outcome for outcomes in pool.map(write, range(writers)) for outcome in outcomes]
    seconds = time.perf_counter() - started[0]
    stored = stored_entry_ids(inner, stream_id)
    return HotStreamRun(
        writers=writers,
        commands_per_writer=commands_per_writer,
        put_latency=latency.put,
        seconds=seconds,
        outcomes=tuple(outcomes),
        stored_ids=stored,
    )


def hot_stream_runs(
    writer_counts: Sequence[int], *, commands: int, latency: SimulatedLatency, seed: int = 0
) -> list[HotStreamRun]:
    """One :func:`hot_stream` run per writer count, each of about ``commands`` commands in all."""
    return [
        hot_stream(
            InMemoryObjectStore(),
            writers=writers,
            commands_per_writer=max(1, commands // writers),
            latency=latency,
            seed=seed,
        )
        for writers in writer_counts
    ]
