"""Loads: what reading a stream's state costs at each length, and how fast events replay.

Streams are built fast, by appending directly on an in-memory store with no latency; the loads
are then measured through a store that adds a simulated latency to each request, as S3 would.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence

import attrs

from bench.commands import ledger_repository
from bench.ledger import Deposit, Deposited, LedgerState, LedgerV2
from s3es import InMemoryObjectStore, Repository
from s3es._eventstore.chunk import decode_chunk
from s3es.metering import RequestCounts, measure_requests
from s3es.storage import LatencyObjectStore, SimulatedLatency

LedgerRepository = Repository[LedgerState, Deposit, Deposited]


def build_stream(
    repository: LedgerRepository, stream_id: str, appends: int, *, events_per_append: int = 1
) -> int:
    """Append ``appends`` times to a new stream, each append ``events_per_append`` deposits.

    Returns the stream's version. Each append carries a snapshot, as a command's does.
    """
    loaded = repository.load(stream_id)
    for append in range(appends):
        events = [
            Deposited(entry_id=f"{stream_id}-{append}-{event}", amount=1)
            for event in range(events_per_append)
        ]
        loaded = repository.append(loaded, events).loaded
    return loaded.version


def list_all_get_newest(repository: LedgerRepository, stream_id: str) -> LedgerState:
    """The design s3es does not use: LIST every key of the stream, then GET the newest chunk.

    Its LIST requests grow with the stream: one per page of 1,000 keys.
    """
    event_store = repository.event_store
    stream = repository.stream(stream_id)
    newest = max(
        (
            event_store.keys.parse(stream, key)
            for key in event_store.objects.list_keys(event_store.keys.stream_prefix(stream))
        ),
        key=lambda where: (where.version, where.number),
    )
    stored = event_store.objects.get(newest.key)
    if stored is None:
        raise LookupError(f"chunk {newest.key!r} of stream {stream} vanished")
    snapshot = decode_chunk(newest, stored.body).snapshot
    if snapshot is None:
        raise LookupError(f"chunk {newest.key!r} of stream {stream} has no snapshot")
    state: LedgerState = repository.aggregate.CONVERTER.structure(snapshot.state, LedgerState)
    return state


#: A way to load a stream's state: a function of the repository and the stream id.
Design = Callable[[LedgerRepository, str], object]

#: The designs compared, by name: s3es's load, and two that read more.
DESIGNS: dict[str, Design] = {
    "s3es load": lambda repository, stream_id: repository.load(stream_id),
    "LIST all, GET newest": list_all_get_newest,
    "GET every chunk (replay)": lambda repository, stream_id: repository.replay(stream_id),
}


@attrs.frozen
class LoadMeasurement:
    """One design's load of a stream of ``appends`` appends: requests sent and seconds taken."""

    appends: int
    design: str
    requests: RequestCounts
    #: Seconds of processing alone (no latency): decoding, folding.
    cpu_seconds: float
    #: Seconds with the simulated latency: measured (median of the repeats), or modelled.
    seconds: float
    #: True if ``seconds`` is ``cpu_seconds`` plus each request's latency, not a measurement.
    modelled: bool


def simulated_wait(
    requests: RequestCounts, latency: SimulatedLatency, *, gets_in_flight: int = 1
) -> float:
    """Seconds that ``requests`` spend waiting on the store.

    One after the other, but for GETs: ``gets_in_flight`` at a time, as a read of a stream's
    chunks reads ahead.
    """
    return (
        requests.put * latency.put
        + math.ceil(requests.get / max(gets_in_flight, 1)) * latency.get
        + requests.list * latency.list
        + requests.delete * latency.delete
    )


def _timed(design: Design, repository: LedgerRepository, stream_id: str) -> float:
    started = time.perf_counter()
    design(repository, stream_id)
    return time.perf_counter() - started


def cold_loads(
    sizes: Sequence[int],
    *,
    latency: SimulatedLatency,
    repeats: int = 3,
    budget: float = 30.0,
    designs: dict[str, Design] = DESIGNS,
) -> list[LoadMeasurement]:
    """Each design's load of a stream of each size, as a process that never saw it would load it.

    First one load on the store without latency counts the requests and the processing time.
    Then, if the requests would wait at most ``budget`` seconds, loads through the latency store
    are timed (the median of ``repeats``, or a single one if the repeats would exceed the
    budget); otherwise the time is modelled: processing plus the latency of each request, one
    after the other but for GETs, which a read of the chunks sends ``read_ahead`` at a time.
    """
    inner = InMemoryObjectStore()
    plain = ledger_repository(inner)
    slow = ledger_repository(LatencyObjectStore(inner, latency))
    for size in sizes:
        build_stream(plain, f"s-{size}", size)
    measurements = []
    for size in sizes:
        stream_id = f"s-{size}"
        for name, design in designs.items():
            with measure_requests() as meter:
                cpu_seconds = _timed(design, plain, stream_id)
            wait = simulated_wait(meter.counts, latency, gets_in_flight=slow.event_store.read_ahead)
            if wait <= budget:
                runs = repeats if wait * repeats <= budget else 1
                times = [_timed(design, slow, stream_id) for _ in range(runs)]
                seconds, modelled = statistics.median(times), False
            else:
                seconds, modelled = cpu_seconds + wait, True
            measurements.append(
                LoadMeasurement(size, name, meter.counts, cpu_seconds, seconds, modelled)
            )
    return measurements


@attrs.frozen
class ReplayMeasurement:
    """Events folded from a stream on the in-memory store (no latency): the CPU's share."""

    what: str
    chunks: int
    events: int
    requests: RequestCounts
    seconds: float

    @property
    def events_per_second(self) -> float:
        """Events decoded and applied per second."""
        return self.events / self.seconds


def replay_throughput(
    appends: int, *, events_per_append: Sequence[int] = (1, 10), repeats: int = 3
) -> list[ReplayMeasurement]:
    """Events per second of ``Repository.replay``, and of a load after a snapshot schema bump.

    ``replay`` reads, decodes and folds every chunk: it is what the schema fallback does. Each
    stream holds ``appends`` events in all, in chunks of ``events_per_append`` events; each
    replay is timed ``repeats`` times (median). Then a load by ``LedgerV2`` (a newer snapshot
    schema) of the first stream runs the fallback itself, re-snapshot included, once.
    """
    objects = InMemoryObjectStore()
    repository = ledger_repository(objects)
    measurements = []
    for per_append in events_per_append:
        stream_id = f"replay-{per_append}"
        chunks = build_stream(
            repository, stream_id, max(1, appends // per_append), events_per_append=per_append
        )
        replay = DESIGNS["GET every chunk (replay)"]
        with measure_requests() as meter:
            times = [_timed(replay, repository, stream_id)]
        times += [_timed(replay, repository, stream_id) for _ in range(repeats - 1)]
        measurements.append(
            ReplayMeasurement(
                f"replay, {per_append} event{'s' if per_append > 1 else ''} per chunk",
                chunks,
                chunks * per_append,
                meter.counts,
                statistics.median(times),
            )
        )
    first = measurements[0]
    newer = Repository(repository.event_store, LedgerV2)
    stream_id = f"replay-{events_per_append[0]}"
    with measure_requests() as meter:
        started = time.perf_counter()
        newer.load(stream_id)
        seconds = time.perf_counter() - started
    measurements.append(
        ReplayMeasurement(
            "load after a schema bump (replay and re-snapshot)",
            first.chunks,
            first.events,
            meter.counts,
            seconds,
        )
    )
    return measurements
