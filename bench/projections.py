"""Projections: how fast a rebuild reads, what keeping a read model fresh costs, and its lag.

The projection (``LedgerEntries``) keeps every entry id of every ledger stream, in order, so a
run can check that each stored event was applied exactly once. Streams are built fast on an
in-memory store with no latency; rebuilds and the lag run go through the latency store, and the
steady-state costs are request counts, which need no latency.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, ClassVar

import attrs

from bench.commands import total_requests
from bench.ledger import Deposit, Ledger
from bench.loads import build_stream
from s3es import (
    CommandHandler,
    EventStore,
    InMemoryObjectStore,
    Loaded,
    Projection,
    Projector,
    RecordedEvent,
    Repository,
    ops,
)
from s3es.metering import S3_STANDARD_PRICES, RequestCounts, RequestPrices
from s3es.projections import Batching, LeaseOptions
from s3es.storage import LatencyObjectStore, ObjectStore, SimulatedLatency

#: Passes between two full scans of a feed projector: its default ``full_scan_interval`` (an
#: hour) at one pass every 10 s.
FULL_SCAN_EVERY = 360
#: How long a lease lasts by default, and so how often (every half of it) a holder renews it.
LEASE_TTL = 30.0
SECONDS_PER_DAY = 86_400


@attrs.define
class Entries:
    """Entry ids applied, by stream (``"ledger/id"``), in the order they were applied."""

    by_stream: dict[str, list[str]] = attrs.Factory(dict)


class LedgerEntries(Projection[Entries]):
    """Every deposit's entry id, by ledger stream."""

    NAME = "ledger-entries"
    SCHEMA = 1
    SOURCES: ClassVar[tuple[type[Ledger], ...]] = (Ledger,)

    def initial_state(self) -> Entries:
        """Nothing applied."""
        return Entries()

    def evolve(self, model: Entries, event: RecordedEvent[Any]) -> Entries:
        """Append the deposit's entry id to its stream's list."""
        model.by_stream.setdefault(str(event.stream), []).append(event.event.entry_id)
        return model


class LedgerEntriesByFeed(LedgerEntries):
    """The same projection under another name, for a second projector on the same streams."""

    NAME = "ledger-entries-feed"


def mismatches(model: Entries, expected: Mapping[str, Sequence[str]]) -> int:
    """Streams whose applied entry ids are not exactly ``expected``'s, in order (extra ones too)."""
    streams = set(model.by_stream) | set(expected)
    return sum(list(model.by_stream.get(s, [])) != list(expected.get(s, [])) for s in streams)


def stored_entries(events: EventStore) -> dict[str, list[str]]:
    """Every ledger stream's entry ids, as a full read of the store finds them."""
    repository = Repository(events, Ledger)
    return {
        str(stream): [recorded.event.entry_id for recorded in repository.read(stream.id)]
        for stream in events.streams(Ledger.STREAM_TYPE)
    }


def quantile(values: Sequence[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank); NaN if none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# Rebuild throughput ---------------------------------------------------------------------------


@attrs.frozen
class RebuildMeasurement:
    """One ``Projector.rebuild()`` through the latency store: what it read, sent and took."""

    layout: str
    streams: int
    #: Events stored in all the streams.
    events: int
    read_concurrency: int
    #: Events the rebuild applied.
    applied: int
    #: Streams whose applied entry ids differ from the stored ones (0: each applied once).
    mismatched: int
    commits: int
    requests: RequestCounts
    seconds: float

    @property
    def streams_per_second(self) -> float:
        """Streams read and applied per second."""
        return self.streams / self.seconds if self.seconds else math.inf

    @property
    def events_per_second(self) -> float:
        """Events applied per second."""
        return self.applied / self.seconds if self.seconds else math.inf

    @property
    def requests_per_stream(self) -> float:
        """Requests per stream, the lease, the model's GET and the commits included."""
        return self.requests.total / self.streams

    def seconds_for(self, streams: int) -> float:
        """Seconds a rebuild of ``streams`` such streams takes at this rate."""
        return streams / self.streams_per_second


def _build_ledgers(
    inner: ObjectStore, streams: int, appends: int, *, compact: bool
) -> dict[str, list[str]]:
    """``streams`` ledger streams of ``appends`` one-event appends; their entry ids by stream."""
    repository = Repository(EventStore(inner), Ledger)
    expected = {}
    for index in range(streams):
        stream_id = f"r-{index:05d}"
        build_stream(repository, stream_id, appends)
        if compact:
            ops.compact(repository, stream_id)
        expected[f"{Ledger.STREAM_TYPE}/{stream_id}"] = [
            f"{stream_id}-{append}-0" for append in range(appends)
        ]
    return expected


def rebuilds(
    streams: int,
    appends: int,
    concurrencies: Sequence[int],
    *,
    latency: SimulatedLatency,
    compacted_concurrencies: Sequence[int] = (),
) -> list[RebuildMeasurement]:
    """Rebuild a projection of ``streams`` streams at each read concurrency, timed.

    Each stream holds ``appends`` appends of one event. The streams are built once, with no
    latency; each rebuild then runs through the latency store by a projector of its own, which
    releases the lease afterwards. With ``compacted_concurrencies``, the same streams compacted
    into one chunk each are rebuilt at those concurrencies too.
    """
    layouts = [(f"plain: {appends} chunks of 1 event", False, concurrencies)]
    if compacted_concurrencies:
        layouts.append((f"compacted: 1 chunk of {appends}", True, compacted_concurrencies))
    measured = []
    for layout, compact, levels in layouts:
        inner = InMemoryObjectStore()
        expected = _build_ledgers(inner, streams, appends, compact=compact)
        events = EventStore(LatencyObjectStore(inner, latency))
        for concurrency in levels:
            projector = Projector(
                events,
                LedgerEntries,
                lease=LeaseOptions(owner=f"rebuild-{concurrency}"),
                batching=Batching(read_concurrency=concurrency),
            )
            started = time.perf_counter()
            run = projector.rebuild()
            seconds = time.perf_counter() - started
            projector.release()
            measured.append(
                RebuildMeasurement(
                    layout=layout,
                    streams=streams,
                    events=streams * appends,
                    read_concurrency=concurrency,
                    applied=run.events,
                    mismatched=mismatches(run.read_model.model, expected),
                    commits=run.commits,
                    requests=run.requests,
                    seconds=seconds,
                )
            )
    return measured


# Steady state -------------------------------------------------------------------------------


@attrs.frozen
class PassCost:
    """One pass's requests; with ``scan_every``, one pass in that many is ``scan`` instead."""

    mode: str
    moved: int
    #: Events the pass applied.
    applied: int
    requests: RequestCounts
    scan_every: int = 0
    scan: RequestCounts = attrs.field(factory=RequestCounts)

    def average(self, kind: str) -> float:
        """Requests of ``kind`` per pass, on average over ``scan_every`` passes."""
        count: int = getattr(self.requests, kind)
        if not self.scan_every:
            return count
        scanned: int = getattr(self.scan, kind)
        return (count * (self.scan_every - 1) + scanned) / self.scan_every

    def dollars(self, prices: RequestPrices = S3_STANDARD_PRICES) -> float:
        """Dollars per pass, on average over ``scan_every`` passes."""
        cost = self.requests.cost(prices)
        if not self.scan_every:
            return cost
        return (cost * (self.scan_every - 1) + self.scan.cost(prices)) / self.scan_every

    def dollars_per_day(self, interval: float, prices: RequestPrices = S3_STANDARD_PRICES) -> float:
        """Dollars per day at one pass every ``interval`` seconds."""
        return self.dollars(prices) * SECONDS_PER_DAY / interval


@attrs.frozen
class SteadyState:
    """What keeping a projection fresh costs over ``streams`` streams, per pass and per day."""

    streams: int
    moved: int
    #: Seconds between passes, for the per-day figures.
    interval: float
    passes: tuple[PassCost, ...]
    #: Warm commands appended without, then with, the change feed.
    appends: int
    append_plain: RequestCounts
    append_feed: RequestCounts
    #: Streams whose applied entry ids differ from the stored ones, after the last passes.
    mismatched: int

    @property
    def feed_dollars_per_million_appends(self) -> float:
        """What the feed adds to a million appends: their entries' PUTs."""
        extra = self.append_feed - self.append_plain
        return extra.cost(S3_STANDARD_PRICES) / self.appends * 1_000_000

    @property
    def lease_dollars_per_day(self) -> float:
        """The lease renewals of one projector (a PUT every half lease), per day."""
        renewals = SECONDS_PER_DAY / (LEASE_TTL / 2)
        return RequestCounts(put=1).cost(S3_STANDARD_PRICES) * renewals


class _Clock:
    """A clock the bench moves, shared by appenders and projectors; ``now`` is Unix seconds."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


def _warm_appends(commands: int, *, feed: bool) -> RequestCounts:
    """The requests of ``commands`` deposits by one writer that knows its stream."""
    handler = CommandHandler(Repository(EventStore(InMemoryObjectStore(), feed=feed), Ledger))
    handler.handle("warm", Deposit("seed", 1))
    return total_requests(handler.handle("warm", Deposit(f"c{n}", 1)) for n in range(commands))


def steady_state(
    streams: int,
    moved: int,
    *,
    interval: float = 10.0,
    appends: int = 100,
    full_scan_every: int = FULL_SCAN_EVERY,
) -> SteadyState:
    """The requests of one pass over ``streams`` streams, idle and after ``moved`` moved.

    Writers append with the feed on. Two projectors of the same projection (under two names)
    follow the streams: one scans every stream each pass, the other lists the change feed. Each
    first runs the full pass that makes its model complete; a minute later (a clock the bench
    moves, so that the feed's look-back holds none of the entries the build wrote) each runs an
    idle pass, then ``moved`` streams get one deposit each and each runs a pass again.
    """
    clock = _Clock()
    events = EventStore(InMemoryObjectStore(), feed=True, clock=clock)
    repository = Repository(events, Ledger)
    expected: dict[str, list[str]] = {}
    for index in range(streams):
        stream_id = f"s-{index:05d}"
        build_stream(repository, stream_id, 1)
        expected[f"{Ledger.STREAM_TYPE}/{stream_id}"] = [f"{stream_id}-0-0"]
    # No latency here: one read thread spares the thread hand-offs, and sends the same requests.
    options: dict[str, Any] = {"clock": clock, "batching": Batching(read_concurrency=1)}
    scanner = Projector(
        events, LedgerEntries, lease=LeaseOptions(owner="scan", ttl=SECONDS_PER_DAY), **options
    )
    follower = Projector(
        events,
        LedgerEntriesByFeed,
        lease=LeaseOptions(owner="feed", ttl=SECONDS_PER_DAY),
        feed=True,
        **options,
    )
    clock.now += 60
    scanner.catch_up()
    follower.catch_up()
    clock.now += 60
    scan_idle, feed_idle = scanner.catch_up(), follower.catch_up()
    clock.now += interval
    handler = CommandHandler(repository)
    for index in range(moved):
        stream_id = f"s-{index * streams // moved:05d}"
        handler.handle(stream_id, Deposit(f"moved-{index}", 1))
        expected[f"{Ledger.STREAM_TYPE}/{stream_id}"].append(f"moved-{index}")
    scan_moved, feed_moved = scanner.catch_up(), follower.catch_up()
    passes = [
        PassCost("full scan", 0, scan_idle.events, scan_idle.requests),
        PassCost("full scan", moved, scan_moved.events, scan_moved.requests),
        PassCost("change feed", 0, feed_idle.events, feed_idle.requests),
        PassCost("change feed", moved, feed_moved.events, feed_moved.requests),
    ]
    passes += [
        attrs.evolve(
            each,
            mode=f"change feed + a full scan every {full_scan_every} passes",
            scan_every=full_scan_every,
            scan=scan_idle.requests if each.moved == 0 else scan_moved.requests,
        )
        for each in passes[2:]
    ]
    return SteadyState(
        streams=streams,
        moved=moved,
        interval=interval,
        passes=tuple(passes),
        appends=appends,
        append_plain=_warm_appends(appends, feed=False),
        append_feed=_warm_appends(appends, feed=True),
        mismatched=mismatches(scan_moved.read_model.model, expected)
        + mismatches(feed_moved.read_model.model, expected),
    )


# Lag ----------------------------------------------------------------------------------------


@attrs.frozen
class LagMeasurement:
    """Writers appending while a feed projector runs passes back to back.

    Each lag is from a command's acknowledgement (``handle`` returned) to the end of the first
    pass whose committed checkpoints include its version.
    """

    writers: int
    streams: int
    seconds: float
    acknowledged: int
    passes: int
    full_scans: int
    pass_seconds: tuple[float, ...]
    requests: RequestCounts
    lags: tuple[float, ...]
    #: Appends committed by a pass that ended before their command returned (lag counted as 0).
    before_ack: int
    mismatched: int

    @property
    def appends_per_second(self) -> float:
        """Acknowledged appends per second, all writers together."""
        return self.acknowledged / self.seconds if self.seconds else math.inf

    @property
    def requests_per_pass(self) -> float:
        """Requests per pass, on average."""
        return self.requests.total / self.passes


@attrs.frozen
class _Ack:
    stream: str
    version: int
    at: float


@attrs.frozen
class _PassEnd:
    at: float
    checkpoints: Mapping[str, int]


class _LagRecorder:
    """The acknowledgements the writers report, and the passes the projector runs."""

    def __init__(self, projector: Projector[Entries]) -> None:
        self.projector = projector
        self.acks: list[_Ack] = []
        self.ends: list[_PassEnd] = []
        self.durations: list[float] = []
        self.requests = RequestCounts()
        self.full_scans = 0
        self._lock = threading.Lock()

    def acknowledged(self, stream: str, version: int) -> None:
        """A writer's command that stored ``version`` of ``stream`` returned just now."""
        at = time.perf_counter()
        with self._lock:
            self.acks.append(_Ack(stream, version, at))

    def one_pass(self) -> list[_Ack]:
        """Run a pass; the acknowledged appends its checkpoints do not include yet."""
        started = time.perf_counter()
        run = self.projector.catch_up()
        ended = time.perf_counter()
        self.durations.append(ended - started)
        self.requests += run.requests
        self.full_scans += run.full_scan
        checkpoints = dict(run.read_model.checkpoints)
        self.ends.append(_PassEnd(ended, checkpoints))
        with self._lock:
            return [ack for ack in self.acks if checkpoints.get(ack.stream, 0) < ack.version]

    def lags(self) -> tuple[list[float], int]:
        """Each append's lag, and how many were committed before they were acknowledged."""
        lags, before_ack = [], 0
        for ack in self.acks:
            end = next(
                end for end in self.ends if end.checkpoints.get(ack.stream, 0) >= ack.version
            )
            before_ack += end.at < ack.at
            lags.append(max(0.0, end.at - ack.at))
        return lags, before_ack


def lag(
    *,
    writers: int,
    streams_per_writer: int,
    seconds: float,
    latency: SimulatedLatency,
    read_concurrency: int = 8,
    drain_passes: int = 50,
) -> LagMeasurement:
    """``writers`` threads deposit for ``seconds`` while a feed projector runs passes.

    Each writer deposits at least once, however late its thread starts on a loaded machine.
    Each writer has a handler of its own and streams of its own, taken in turn, so writers never
    conflict. The projector runs ``catch_up`` back to back from before the first append until a
    pass has committed every acknowledged append (at most ``drain_passes`` passes after the
    writers stop; AssertionError naming the appends left otherwise). Clocks are real: the feed
    entries are stamped, and listed with the default look-back, as in production.
    """
    objects = LatencyObjectStore(InMemoryObjectStore(), latency, seed=7)
    events = EventStore(objects, feed=True)
    recorder = _LagRecorder(
        Projector(
            events,
            LedgerEntries,
            lease=LeaseOptions(owner="lag"),
            feed=True,
            batching=Batching(read_concurrency=read_concurrency),
        )
    )

    def write(writer: int, deadline: float) -> None:
        handler = CommandHandler(Repository(events, Ledger))
        sent = 0
        # At least one append each, however late the thread starts on a loaded machine.
        while sent == 0 or time.perf_counter() < deadline:
            stream_id = f"w{writer}-{sent % streams_per_writer}"
            result = handler.handle(stream_id, Deposit(f"w{writer}-{sent}", 1))
            recorder.acknowledged(str(result.stream), result.version)
            sent += 1

    recorder.one_pass()  # the first pass scans every stream (none yet): the model is complete
    with ThreadPoolExecutor(writers) as pool:
        started = time.perf_counter()
        futures = [pool.submit(write, writer, started + seconds) for writer in range(writers)]
        while not all(future.done() for future in futures):
            recorder.one_pass()
        for future in futures:
            future.result()
        wrote = time.perf_counter() - started
    left = recorder.one_pass()
    for _ in range(drain_passes):
        if not left:
            break
        left = recorder.one_pass()
    if left:
        named = ", ".join(sorted({f"{ack.stream} v{ack.version}" for ack in left})[:5])
        raise AssertionError(
            f"{len(left)} appends not committed after the writers stopped: {named}"
        )
    lags, before_ack = recorder.lags()
    return LagMeasurement(
        writers=writers,
        streams=writers * streams_per_writer,
        seconds=wrote,
        acknowledged=len(recorder.acks),
        passes=len(recorder.durations),
        full_scans=recorder.full_scans,
        pass_seconds=tuple(recorder.durations),
        requests=recorder.requests,
        lags=tuple(lags),
        before_ack=before_ack,
        mismatched=mismatches(
            recorder.projector.read().model, stored_entries(EventStore(objects.inner))
        ),
    )


# One read-model document at scale -------------------------------------------------------------


@attrs.frozen
class ReadModelScale:
    """What the orders example's order list, one JSON document, costs over ``streams`` orders.

    One order per stream, on the in-memory store, followed by a ``Projector(feed=True)``.

    Times are the process's CPU seconds (no latency here: a busy machine does not inflate them),
    the median of a few runs (the rebuild runs once); requests are those of the last run.
    """

    streams: int
    #: The stored document's size.
    document_bytes: int
    #: A feed pass that finds one stream moved by one event, applies it and commits.
    one_event_seconds: float
    one_event_requests: RequestCounts
    #: A feed pass that finds nothing new, by a projector that committed before.
    idle_seconds: float
    idle_requests: RequestCounts
    #: ``Projector.read()``: the document's GET and decode.
    read_seconds: float
    #: ``Projector.rebuild()`` from every stream (default ``commit_every``).
    rebuild_seconds: float
    rebuild_commits: int
    #: Orders in the model that differ from a fold of each stream's events (0: exact).
    mismatched: int

    @property
    def rebuild_streams_per_second(self) -> float:
        """Streams read and applied per second by the rebuild."""
        return self.streams / self.rebuild_seconds if self.rebuild_seconds else math.inf


def _median(values: Sequence[float]) -> float:
    return sorted(values)[len(values) // 2]


def read_model_scale(streams: int, *, repeats: int = 3) -> ReadModelScale:
    """Measure the order list (``OrdersByStatus``) over ``streams`` orders, one event each.

    The orders are placed straight through the repository (no handler, no latency), with the
    feed on and a clock the bench moves. A projector rebuilds the model, runs the first full
    scan, then ``repeats`` idle feed passes and ``repeats`` passes after one payment each;
    ``read`` is timed ``repeats`` times.
    """
    from examples.orders.domain import Order, OrderLine, OrderPlaced, PaymentRecorded  # noqa: PLC0415 - bench-only
    from examples.orders.projections import OrdersByStatus  # noqa: PLC0415 - bench-only

    clock = _Clock()
    objects = InMemoryObjectStore()
    events = EventStore(objects, feed=True, clock=clock)
    orders = Repository(events, Order)
    lines = (OrderLine("mug", 2, 899),)
    for index in range(streams):
        order_id = f"o-{index:06d}"
        new = Loaded(orders.stream(order_id), 0, orders.aggregate.initial_state())
        orders.append(new, [OrderPlaced(order_id, lines, 1798)])
    projector = Projector(
        events,
        OrdersByStatus,
        lease=LeaseOptions(owner="scale", ttl=SECONDS_PER_DAY),
        feed=True,
        clock=clock,
        batching=Batching(read_concurrency=1),  # no latency: one thread spares the hand-offs
    )
    clock.now += 60
    started = time.process_time()
    rebuilt = projector.rebuild()
    rebuild_seconds = time.process_time() - started
    clock.now += 60
    projector.catch_up()  # this projector's first pass scans every stream
    idle: list[float] = []
    one_event: list[float] = []
    for repeat in range(repeats):
        clock.now += 60
        started = time.process_time()
        idle_run = projector.catch_up()
        idle.append(time.process_time() - started)
        order_id = f"o-{(repeat + 1) * streams // (repeats + 1):06d}"
        loaded = orders.load(order_id)
        orders.append(loaded, [PaymentRecorded(f"p-{repeat}", 1798)])
        clock.now += 1
        started = time.process_time()
        moved_run = projector.catch_up()
        one_event.append(time.process_time() - started)
        if (idle_run.events, moved_run.events) != (0, 1):
            raise AssertionError(f"passes applied {idle_run.events} and {moved_run.events}")
    reads: list[float] = []
    for _ in range(repeats):
        started = time.process_time()
        stored = projector.read()
        reads.append(time.process_time() - started)
    projector.release()
    document = objects.get(events.keys.read_model_key(OrdersByStatus.NAME))
    paid = {f"o-{(r + 1) * streams // (repeats + 1):06d}" for r in range(repeats)}
    mismatched = sum(
        summary.paid != (order_id in paid) or summary.events != 1 + (order_id in paid)
        for order_id, summary in stored.model.orders.items()
    ) + abs(len(stored.model.orders) - streams)
    return ReadModelScale(
        streams=streams,
        document_bytes=0 if document is None else len(document.body),
        one_event_seconds=_median(one_event),
        one_event_requests=moved_run.requests,
        idle_seconds=_median(idle),
        idle_requests=idle_run.requests,
        read_seconds=_median(reads),
        rebuild_seconds=rebuild_seconds,
        rebuild_commits=rebuilt.commits,
        mismatched=mismatched,
    )
