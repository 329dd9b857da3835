"""What ``make bench`` runs, at which sizes, and everything it measured."""

from __future__ import annotations

import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import attrs

from bench import aio, readside
from bench.commands import CommandCost, HotStreamRun, hot_stream, hot_stream_runs, uncontended
from bench.contention import ContentionRun, contention
from bench.loads import LoadMeasurement, ReplayMeasurement, cold_loads, replay_throughput
from bench.maintenance import MaintenanceSummary, maintenance_runs
from bench.projections import (
    LagMeasurement,
    ReadModelScale,
    RebuildMeasurement,
    SteadyState,
    lag,
    read_model_scale,
    rebuilds,
    steady_state,
)
from bench.replay import ReplayResults, measure
from bench.states import StateMeasurement, growing_states
from bench.stores import OverwritingStore
from s3es import InMemoryObjectStore, RetryPolicy
from s3es.storage import SimulatedLatency


@attrs.frozen
class BenchConfig:
    """The sizes of every benchmark. The defaults are ``make bench``'s: minutes on 2 cores."""

    #: Seconds each simulated S3 request takes (every kind alike).
    latency: float = 0.020
    #: Commands of each uncontended cost measurement.
    uncontended_commands: int = 1_000
    #: Writer counts of the hot-stream runs; the largest is also the strawman's.
    writer_counts: tuple[int, ...] = (1, 2, 4, 8)
    #: Commands of each hot-stream run, shared among its writers.
    hot_stream_commands: int = 320
    #: Appends of the streams whose cold loads are compared.
    load_sizes: tuple[int, ...] = (10, 100, 1_000, 3_000, 10_000)
    #: Timed loads per design and size (the median is reported).
    load_repeats: int = 3
    #: A load whose requests would wait longer than this (seconds) is modelled, not timed.
    load_budget: float = 30.0
    #: Events of each replayed stream.
    replay_events: int = 10_000
    #: Streams of the projection rebuilds, and the one-event appends of each.
    rebuild_streams: int = 200
    rebuild_appends: int = 5
    #: Read concurrencies of the rebuilds, and of the rebuilds of the same streams compacted.
    rebuild_concurrency: tuple[int, ...] = (1, 8, 32)
    compacted_concurrency: tuple[int, ...] = (8, 32)
    #: Streams of the steady-state projection passes, and how many move between two passes.
    steady_streams: int = 10_000
    steady_moved: int = 100
    #: Seconds between two passes of a projector, for the dollars per day.
    pass_interval: float = 10.0
    #: The lag run: writer threads, streams of each writer, and seconds of writing.
    lag_writers: int = 2
    lag_streams_per_writer: int = 10
    lag_seconds: float = 5.0
    #: Orders (one stream each) of the order list measured as one read-model document.
    read_model_streams: tuple[int, ...] = (1_000, 10_000, 100_000)
    #: Appends of the streams whose fixed-size and growing states are compared.
    state_sizes: tuple[int, ...] = (250, 1_000, 4_000)
    #: One hot stream under contention: writers in separate processes, the commands of each
    #: run, runs per variant (the median is reported), and the thread counts of group commit.
    contention_writers: int = 8
    contention_commands: int = 320
    contention_repeats: int = 1
    group_threads: tuple[int, ...] = (2, 4, 8, 32)
    #: Replay beside the decode floor: (chunks, events per chunk) of each stream; the chunks
    #: of the stream read through the latency store at each read-ahead depth; the versions a
    #: cached state is behind when a no-op is confirmed.
    floor_shapes: tuple[tuple[int, int], ...] = ((10_000, 1), (1_000, 10))
    read_ahead_chunks: int = 10_000
    read_ahead_depths: tuple[int, ...] = (0, 8, 16, 32)
    stale_behind: tuple[int, ...] = (0, 1, 2, 3, 10, 200)
    #: Runs of each maintenance operation (delete, erase, compact) beside 4 writers appending
    #: back to back, how long writers run before and after it, and when a run gives up.
    maintenance_runs: int = 5
    maintenance_warmup: float = 0.3
    #: Seconds per request of the maintenance runs (None: ``latency``). Not 0: with no I/O,
    #: writers in one process append thousands of versions a second, and an erasure, which
    #: reads the whole stream to merge it, chases a stream it cannot catch.
    maintenance_latency: float | None = None
    maintenance_cap: float = 20.0
    #: Read models at scale (bench.readside): order streams of one event each, by size; the
    #: sizes moto's embedded S3 runs at too (every request an HTTP round trip to moto on the
    #: same cores: 1,000 streams take it about 2 minutes); the stores; the timed passes of each.
    readside_streams: tuple[int, ...] = (1_000, 10_000, 100_000)
    readside_moto_streams: tuple[int, ...] = (1_000,)
    readside_stores: tuple[str, ...] = readside.STORES
    readside_repeats: int = 15
    #: The asyncio API beside the sync one (bench.aio).
    asyncio_api: aio.AioBenchConfig = attrs.field(factory=aio.AioBenchConfig)
    seed: int = 3

    @property
    def simulated_latency(self) -> SimulatedLatency:
        """The latency every measurement through the latency store uses."""
        return SimulatedLatency.fixed(self.latency)


#: Tiny sizes, for a quick look (``python -m bench --quick``) and the tests.
QUICK = BenchConfig(
    latency=0.001,
    uncontended_commands=20,
    writer_counts=(1, 2),
    hot_stream_commands=6,
    load_sizes=(10, 30),
    load_repeats=1,
    load_budget=0.02,
    replay_events=60,
    rebuild_streams=6,
    rebuild_appends=2,
    rebuild_concurrency=(1, 4),
    compacted_concurrency=(4,),
    steady_streams=30,
    steady_moved=3,
    lag_streams_per_writer=2,
    lag_seconds=0.2,
    read_model_streams=(30,),
    state_sizes=(10, 40),
    contention_writers=2,
    contention_commands=6,
    group_threads=(2,),
    floor_shapes=((30, 1), (3, 10)),
    read_ahead_chunks=20,
    read_ahead_depths=(0, 4),
    stale_behind=(0, 3),
    maintenance_runs=1,
    maintenance_warmup=0.02,
    maintenance_latency=0.001,
    maintenance_cap=5.0,
    readside_streams=(30,),
    readside_moto_streams=(30,),
    readside_repeats=2,
    asyncio_api=aio.QUICK,
)


@attrs.frozen
class Machine:
    """Where the benchmarks ran."""

    cores: int
    cpu: str
    python: str
    system: str

    @classmethod
    def this(cls) -> Machine:
        """This machine."""
        return cls(
            cores=os.cpu_count() or 1,
            cpu=_cpu_model(),
            python=f"{platform.python_implementation()} {platform.python_version()}",
            system=f"{platform.system()} {platform.release()}",
        )


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name" and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


@attrs.frozen
class BenchResults:
    """Everything one run measured, with where and when."""

    config: BenchConfig
    machine: Machine
    started: datetime
    #: Wall-clock seconds the whole run took.
    seconds: float
    costs: tuple[CommandCost, ...]
    hot_stream: tuple[HotStreamRun, ...]
    loads: tuple[LoadMeasurement, ...]
    replays: tuple[ReplayMeasurement, ...]
    #: The strawman (no conditional writes) and s3es, under the same contention.
    strawman: HotStreamRun
    ours: HotStreamRun
    #: Projections: rebuilds at each read concurrency, the cost of a pass, and the lag.
    rebuilds: tuple[RebuildMeasurement, ...]
    steady: SteadyState
    lag: LagMeasurement
    #: Attempts the handlers' (default) retry policy allows per command.
    max_attempts: int = RetryPolicy().max_attempts
    #: Streams of a fixed-size state and of a growing one, by length, then compacted.
    states: tuple[StateMeasurement, ...] = ()
    #: The orders example's order list, one document, at each size of ``read_model_streams``.
    read_model_scale: tuple[ReadModelScale, ...] = ()
    #: One hot stream: writers in separate processes, then group commit in one.
    contention: tuple[ContentionRun, ...] = ()
    #: Replay beside its decode floor, read-ahead over the latency store, stale refreshes.
    replay: ReplayResults | None = None
    #: Deletion, erasure and compaction beside writers appending back to back.
    maintenance: tuple[MaintenanceSummary, ...] = ()
    #: Document projections on each read-model store, by streams held.
    read_models: readside.ReadSideResults | None = None
    asyncio_api: tuple[aio.Throughput, ...] = ()


def run(config: BenchConfig = BenchConfig()) -> BenchResults:
    """Run every benchmark at ``config``'s sizes."""
    started, clock = datetime.now(UTC), time.perf_counter()
    latency = config.simulated_latency
    costs = [
        uncontended(config.uncontended_commands, warm=True),
        uncontended(config.uncontended_commands, warm=False),
    ]
    runs = hot_stream_runs(
        config.writer_counts,
        commands=config.hot_stream_commands,
        latency=latency,
        seed=config.seed,
    )
    costs += [each.cost() for each in runs if each.writers > 1]
    ours = max(runs, key=lambda each: each.writers)
    strawman = hot_stream(
        OverwritingStore(InMemoryObjectStore()),
        writers=ours.writers,
        commands_per_writer=ours.commands_per_writer,
        latency=latency,
        seed=config.seed,
    )
    loads = cold_loads(
        config.load_sizes,
        latency=latency,
        repeats=config.load_repeats,
        budget=config.load_budget,
    )
    replays = replay_throughput(config.replay_events)
    rebuilt = rebuilds(
        config.rebuild_streams,
        config.rebuild_appends,
        config.rebuild_concurrency,
        latency=latency,
        compacted_concurrencies=config.compacted_concurrency,
    )
    steady = steady_state(config.steady_streams, config.steady_moved, interval=config.pass_interval)
    lagged = lag(
        writers=config.lag_writers,
        streams_per_writer=config.lag_streams_per_writer,
        seconds=config.lag_seconds,
        latency=latency,
    )
    states = growing_states(config.state_sizes, repeats=config.load_repeats)
    scaled = [read_model_scale(streams) for streams in config.read_model_streams]
    contended = contention(
        writers=config.contention_writers,
        commands=config.contention_commands,
        latency=config.latency,
        group_threads=config.group_threads,
        repeats=config.contention_repeats,
        seed=config.seed,
    )
    replayed = measure(
        config.floor_shapes,
        config.read_ahead_chunks,
        config.read_ahead_depths,
        config.stale_behind,
        latency=config.latency,
        repeats=config.load_repeats,
    )
    maintained = maintenance_runs(
        runs=config.maintenance_runs,
        latency=SimulatedLatency.fixed(
            config.latency if config.maintenance_latency is None else config.maintenance_latency
        ),
        warmup=config.maintenance_warmup,
        cap=config.maintenance_cap,
    )
    asyncio_api = tuple(aio.throughput_runs(config.asyncio_api))
    read_side = readside.readside(
        config.readside_streams,
        stores=config.readside_stores,
        moto_sizes=config.readside_moto_streams,
        repeats=config.readside_repeats,
    )
    return BenchResults(
        config=config,
        machine=Machine.this(),
        started=started,
        seconds=time.perf_counter() - clock,
        costs=tuple(costs),
        hot_stream=tuple(runs),
        loads=tuple(loads),
        replays=tuple(replays),
        strawman=strawman,
        ours=ours,
        rebuilds=tuple(rebuilt),
        steady=steady,
        lag=lagged,
        states=tuple(states),
        read_model_scale=tuple(scaled),
        contention=tuple(contended),
        replay=replayed,
        maintenance=maintained,
        read_models=read_side,
        asyncio_api=asyncio_api,
    )
