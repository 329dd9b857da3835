"""One hot stream under contention: writers in separate processes, group commit within one.

Two ways for many writers to share one stream, measured side by side at the same simulated
latency:

- **Separate processes**: each writer is a :class:`~s3es.CommandHandler` of its own (its own
  cache, as a process of its own would have) in a thread of its own; they share nothing but the
  store. Run with the default retry policy and with ``max_attempts=1000``.
- **One process, group commit**: threads share one ``CommandHandler(group_commit=True)``;
  commands that arrive while the stream's PUT is in flight ride the next PUT together.

Every writer runs deposits back to back. Each variant reports the commands that gave up, the
commands per second, the requests per command, the p50 and p99 command durations and the
longest run of consecutive versions one writer stored.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from bench.commands import LedgerHandler, dollars_per_million, ledger_repository, stored_entry_ids
from bench.ledger import Deposit
from s3es import CommandHandler, InMemoryObjectStore, RetriesExhausted, RetryPolicy
from s3es.metering import S3_STANDARD_PRICES, RequestCounts, measure_requests
from s3es.storage import LatencyObjectStore, ObjectStore, SimulatedLatency

#: Builds writer ``index``'s handler on the shared store (called once per writer, or once).
HandlerFactory = Callable[[ObjectStore, int], LedgerHandler]


@attrs.frozen
class Variant:
    """A way to run the writers: their handlers, and whether they share one."""

    name: str
    factory: HandlerFactory
    #: True: every writer thread uses the one handler the factory builds for writer 0.
    shared: bool = False


def separate(policy: RetryPolicy) -> HandlerFactory:
    """Each writer a handler of its own with ``policy``, its jitter seeded by its index."""

    def build(objects: ObjectStore, index: int) -> LedgerHandler:
        import random  # noqa: PLC0415 - keeps the factory self-contained

        return CommandHandler(ledger_repository(objects), policy, rng=random.Random(index))

    return build


def grouped(objects: ObjectStore, index: int) -> LedgerHandler:  # noqa: ARG001 - one for all
    """The one handler every writer thread shares, committing in groups."""
    return CommandHandler(ledger_repository(objects), group_commit=True)


#: The separate-process variants, in the order of the table.
PROCESS_VARIANTS = (
    Variant("default policy (10 attempts, backoff 5-250 ms)", separate(RetryPolicy())),
    Variant("default policy, max_attempts=1000", separate(RetryPolicy(max_attempts=1000))),
)


@attrs.frozen
class Outcome:
    """One command: who ran it, whether it was stored, its requests and its duration."""

    writer: int
    stored: bool
    requests: RequestCounts
    seconds: float


@attrs.frozen
class ContentionRun:
    """Writers depositing back to back on one stream, and what came of it."""

    variant: str
    writers: int
    #: Seconds a request took (simulated).
    latency: float
    #: From the writers' common start to the last command's end.
    seconds: float
    outcomes: tuple[Outcome, ...]
    #: The writer of each stored deposit, in stream order.
    stored_writers: tuple[int, ...]
    #: Acknowledged deposits a full read of the stream does not hold.
    lost: int
    #: Deposits the stream holds more than once.
    doubled: int

    @property
    def commands(self) -> int:
        """Commands run, stored or not."""
        return len(self.outcomes)

    @property
    def stored(self) -> int:
        """Commands whose writer was told they are stored."""
        return sum(outcome.stored for outcome in self.outcomes)

    @property
    def gave_up(self) -> int:
        """Commands that raised RetriesExhausted."""
        return self.commands - self.stored

    @property
    def per_second(self) -> float:
        """Stored commands per second."""
        return self.stored / self.seconds if self.seconds else math.inf

    @property
    def limit(self) -> float:
        """One version per PUT round trip: the most one stream takes without group commit."""
        return 1 / self.latency if self.latency else math.inf

    @property
    def requests(self) -> RequestCounts:
        """Every request sent, by commands stored or not."""
        total = RequestCounts()
        for outcome in self.outcomes:
            total += outcome.requests
        return total

    @property
    def requests_per_command(self) -> float:
        """Requests per stored command."""
        return self.requests.total / max(self.stored, 1)

    @property
    def dollars_per_million(self) -> float:
        """Request dollars per million stored commands."""
        return dollars_per_million(self.requests, max(self.stored, 1), S3_STANDARD_PRICES)

    def quantile(self, fraction: float) -> float:
        """The command duration (seconds) that ``fraction`` of the commands did not exceed."""
        durations = sorted(outcome.seconds for outcome in self.outcomes)
        return durations[min(len(durations) - 1, int(fraction * len(durations)))]

    @property
    def longest_run(self) -> int:
        """The most consecutive deposits of the stream that one writer stored."""
        longest = run = 0
        previous = None
        for writer in self.stored_writers:
            run = run + 1 if writer == previous else 1
            previous = writer
            longest = max(longest, run)
        return longest


def contention_run(
    variant: Variant, *, writers: int, commands_per_writer: int, latency: float, seed: int = 0
) -> ContentionRun:
    """``writers`` threads run ``commands_per_writer`` deposits each on one stream."""
    inner = InMemoryObjectStore()
    objects = LatencyObjectStore(inner, SimulatedLatency.fixed(latency), seed=seed)
    shared = variant.factory(objects, 0) if variant.shared else None
    started: list[float] = []
    barrier = threading.Barrier(writers, action=lambda: started.append(time.perf_counter()))

    def write(writer: int) -> list[Outcome]:
        handler = shared or variant.factory(objects, seed * 1_000 + writer)
        barrier.wait()
        outcomes = []
        for index in range(commands_per_writer):
            begun = time.perf_counter()
            with measure_requests() as meter:
                try:
                    handler.handle("hot", Deposit(f"w{writer}-{index}", 1))
                    stored = True
                except RetriesExhausted:
                    stored = False
            outcomes.append(Outcome(writer, stored, meter.counts, time.perf_counter() - begun))
        return outcomes

    with ThreadPoolExecutor(max_workers=writers) as pool:
        outcomes = [outcome for each in pool.map(write, range(writers)) for outcome in each]
    seconds = time.perf_counter() - started[0]
    ids = stored_entry_ids(inner, "hot")
    acknowledged = {f"w{o.writer}-{n}" for o, n in _numbered(outcomes) if o.stored}
    return ContentionRun(
        variant=variant.name,
        writers=writers,
        latency=latency,
        seconds=seconds,
        outcomes=tuple(outcomes),
        stored_writers=tuple(int(entry.split("-")[0][1:]) for entry in ids),
        lost=len(acknowledged - set(ids)),
        doubled=len(ids) - len(set(ids)),
    )


def _numbered(outcomes: Sequence[Outcome]) -> list[tuple[Outcome, int]]:
    """Each outcome with its index among its writer's commands (the entry id's number)."""
    seen: dict[int, int] = {}
    numbered = []
    for outcome in outcomes:
        index = seen.get(outcome.writer, 0)
        seen[outcome.writer] = index + 1
        numbered.append((outcome, index))
    return numbered


def median_run(
    variant: Variant,
    *,
    writers: int,
    commands: int,
    latency: float,
    repeats: int,
    seed: int = 0,
) -> ContentionRun:
    """Of ``repeats`` runs of ``commands`` in all, the one with the median commands/s."""
    runs = [
        contention_run(
            variant,
            writers=writers,
            commands_per_writer=max(1, commands // writers),
            latency=latency,
            seed=seed + repeat,
        )
        for repeat in range(repeats)
    ]
    middle = statistics.median_low([run.per_second for run in runs])
    return next(run for run in runs if run.per_second == middle)


def contention(
    *,
    writers: int,
    commands: int,
    latency: float,
    group_threads: Sequence[int],
    repeats: int = 1,
    seed: int = 0,
) -> list[ContentionRun]:
    """Every variant: separate processes with ``writers`` writers, then group commit."""
    runs = [
        median_run(
            variant,
            writers=writers,
            commands=commands,
            latency=latency,
            repeats=repeats,
            seed=seed,
        )
        for variant in PROCESS_VARIANTS
    ]
    for threads in group_threads:
        variant = Variant(f"group commit, {threads} threads, one handler", grouped, shared=True)
        runs.append(
            median_run(
                variant,
                writers=threads,
                commands=commands,
                latency=latency,
                repeats=repeats,
                seed=seed,
            )
        )
    return runs


#: Headers of the contention table.
HEADERS = (
    "Variant",
    "Gave up",
    "Commands/s",
    "x limit",
    "Requests/cmd",
    "$ per 1M",
    "p50 ms",
    "p99 ms",
    "Longest run",
    "Lost",
)


def rows(runs: Sequence[ContentionRun]) -> list[list[str]]:
    """One row of :data:`HEADERS` per run."""
    return [
        [
            f"{run.variant} ({run.writers} writers)" if "group" not in run.variant else run.variant,
            f"{run.gave_up} of {run.commands}",
            f"{run.per_second:.1f}",
            f"{run.per_second / run.limit:.2f}x",
            f"{run.requests_per_command:.2f}",
            f"${run.dollars_per_million:,.2f}",
            f"{run.quantile(0.5) * 1000:,.0f}",
            f"{run.quantile(0.99) * 1000:,.0f}",
            f"{run.longest_run} of {run.commands // run.writers}",
            str(run.lost + run.doubled),
        ]
        for run in runs
    ]


def text(runs: Sequence[ContentionRun], repeats: int) -> str:
    """What the contention table shows, with the figures of this run."""
    if not runs:
        return ""
    limit = runs[0].limit
    grouped = [run for run in runs if "group" in run.variant]
    best = max(grouped, key=lambda run: run.per_second) if grouped else None
    median = f"the median of {repeats} runs" if repeats > 1 else "one run each"
    text = (
        f"Writers deposit back to back on one stream ({median}). The first rows are writers in"
        " separate processes (threads with a CommandHandler each, sharing nothing but the"
        f" store); the limit for them is one version per PUT round trip, {limit:,.0f} commands"
        " per second. Longest run is the most consecutive versions one writer stored. The default"
        " policy lets the writer that wins keep the stream: it holds the new state and PUTs"
        " the next version at once, while a loser pays a failed PUT, a GET and a backoff."
        " More attempts turn give-ups into long waits. Taking turns cannot fix this for"
        " writers that share only the store: each hand-over leaves the stream idle a round"
        " trip (docs/design.md, 'Fairness on a hot stream')."
    )
    if best is not None:
        text += (
            " The last rows share one `CommandHandler(group_commit=True)` between threads of"
            " one process: commands that arrive while the stream's PUT is in flight ride the"
            f" next PUT together, so the rate can pass the limit (here {best.per_second:,.0f}"
            f" commands per second, {best.per_second / best.limit:.2f}x the limit, with"
            f" {best.writers} threads) and a command costs"
            f" {best.requests_per_command:.2f} requests."
            " Lost counts acknowledged deposits a full read of the stream does not hold, or"
            " holds twice."
        )
    return text
