"""Growing states: what a state that grows with its stream costs to store, load and replay.

Every chunk carries a snapshot of the whole state after its events, so a state that gains an
item per append makes the n-th chunk hold n items, and the stream ``n(n + 1) / 2`` in all:
storage grows with the square of the stream, and so does the JSON a replay parses. Two
ledgers take the same deposits: :class:`~bench.ledger.Ledger`, whose state is fixed in size
(the balance, the count and the last 32 entry ids), and :class:`HistoryLedger`, whose state
keeps every entry id it has seen. Each is measured beside yardsticks from the same run: the
bytes of its events alone, a bare ``json.loads`` of the chunk a load reads, and of every chunk.
Everything runs on the in-memory store, without latency: the times are the CPU's share.
"""

from __future__ import annotations

import json
import statistics
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from bench.ledger import Deposit, Deposited, Ledger
from s3es import Aggregate, EventStore, InMemoryObjectStore, Repository
from s3es.metering import RequestCounts, measure_requests
from s3es.ops import compact

#: The snapshot interval that the "snapshot every k versions" design is modelled with.
SNAPSHOT_EVERY = 100


@attrs.frozen
class History:
    """The balance and the id of every deposit ever made: it grows by one id per deposit."""

    balance: int
    entries: tuple[str, ...]


class HistoryLedger(Aggregate[History, Deposit, Deposited]):
    """A ledger that refuses any deposit id it has ever seen, so its state keeps them all."""

    STREAM_TYPE = "history"
    SNAPSHOT_SCHEMA = 1
    EVENT_TYPES: ClassVar[Mapping[str, type[Any]]] = {"Deposited": Deposited}

    def initial_state(self) -> History:
        """An empty ledger."""
        return History(balance=0, entries=())

    def evolve(self, state: History, event: Deposited) -> History:
        """Add the deposit and keep its id, with every id before it."""
        return History(
            balance=state.balance + event.amount, entries=(*state.entries, event.entry_id)
        )

    def decide(self, command: Deposit, state: History) -> Sequence[Deposited]:
        """One Deposited, unless ``command.entry_id`` was ever deposited."""
        if command.entry_id in state.entries:
            return []
        return [Deposited(entry_id=command.entry_id, amount=command.amount)]


#: The two states compared, by name: the same deposits, a fixed-size state and a growing one.
STATES: dict[str, type[Aggregate[Any, Deposit, Deposited]]] = {
    "fixed": Ledger,
    "growing": HistoryLedger,
}


@attrs.frozen
class StateMeasurement:
    """One stream of ``appends`` one-deposit appends: what it stores, and what reading it costs."""

    #: A key of ``STATES``.
    state: str
    appends: int
    #: True once ``s3es.ops.compact`` has merged the stream (its chunks are all kept).
    compacted: bool
    #: Bytes of every object in the stream's folder.
    stored_bytes: int
    #: Bytes of the events' JSON alone, each event once: the yardstick of what the stream holds.
    events_bytes: int
    #: Bytes of the chunk a load reads (the latest), and of the snapshot's JSON in it.
    latest_bytes: int
    snapshot_bytes: int
    #: Bytes of every object compressed with zlib (level 6): what compressing chunks would give.
    compressed_bytes: int
    #: Bytes the stream would store with a snapshot in every SNAPSHOT_EVERY-th version only.
    sparse_bytes: int
    load_requests: RequestCounts
    #: CPU seconds of ``Repository.load`` (median), and of a bare ``json.loads`` of its chunk.
    load_seconds: float
    parse_latest_seconds: float
    replay_requests: RequestCounts
    #: CPU seconds of ``Repository.replay`` (median), and of a bare ``json.loads`` of every chunk.
    replay_seconds: float
    parse_all_seconds: float

    @property
    def events_ratio(self) -> float:
        """How many times the bytes of the events alone the stream stores."""
        return self.stored_bytes / self.events_bytes


def _append_deposits(
    repository: Repository[Any, Deposit, Deposited], stream_id: str, n: int
) -> None:
    """Append ``n`` times to a new stream, one deposit each, as ``build_stream`` does."""
    loaded = repository.load(stream_id)
    for append in range(n):
        event = Deposited(entry_id=f"{stream_id}-{append}-0", amount=1)
        loaded = repository.append(loaded, [event]).loaded


def _median_seconds(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _metered(work: Callable[[], object], repeats: int) -> tuple[RequestCounts, float]:
    """The requests of one run of ``work`` and the median seconds of ``repeats`` runs."""
    started = time.perf_counter()
    with measure_requests() as meter:
        work()
    first = time.perf_counter() - started
    return meter.counts, statistics.median(
        [first, *(_median_seconds(work, 1) for _ in range(repeats - 1))]
    )


def _json_bytes(value: Any) -> int:
    """Bytes of ``value`` as a chunk stores it: compact separators, UTF-8."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _sparse_bytes(documents: Sequence[tuple[int, int, dict[str, Any]]], every: int) -> int:
    """Bytes of the chunks if only every ``every``-th version (and the first) kept a snapshot.

    ``documents`` are (version, size, parsed chunk). A modelled figure: each chunk less the
    bytes of its ``"snapshot":...`` member.
    """
    total = 0
    for version, size, document in documents:
        snapshot = document.get("snapshot")
        keep = version % every == 0 or version == 1 or snapshot is None
        total += size if keep else size - _json_bytes(snapshot) - len(',"snapshot":')
    return total


def measure_state(
    repository: Repository[Any, Deposit, Deposited],
    state: str,
    stream_id: str,
    appends: int,
    *,
    compacted: bool,
    repeats: int,
) -> StateMeasurement:
    """Measure the stored stream ``stream_id`` of ``appends`` appends, as it is now."""
    objects = repository.event_store.objects
    stream = repository.stream(stream_id)
    keys = list(objects.list_keys(repository.event_store.keys.stream_prefix(stream)))
    bodies = []
    for key in keys:
        stored = objects.get(key)
        if stored is None:
            raise LookupError(f"chunk {key!r} of stream {stream} vanished")
        bodies.append((key, stored.body))
    wheres = [repository.event_store.keys.parse(stream, key) for key, _ in bodies]
    documents = [
        (where.version, len(body), json.loads(body))
        for where, (_, body) in zip(wheres, bodies, strict=True)
    ]
    # Keys count down: the first is the latest chunk, the one a load reads.
    latest = bodies[0][1]
    # Chunk 0 of each version holds its events; a merged chunk (number 1 up) holds them again.
    events = sum(
        _json_bytes(document["events"])
        for where, (_, _, document) in zip(wheres, documents, strict=True)
        if where.number == 0
    )
    load_requests, load_seconds = _metered(lambda: repository.load(stream_id), repeats)
    replay_requests, replay_seconds = _metered(lambda: repository.replay(stream_id), repeats)
    return StateMeasurement(
        state=state,
        appends=appends,
        compacted=compacted,
        stored_bytes=sum(len(body) for _, body in bodies),
        events_bytes=events,
        latest_bytes=len(latest),
        snapshot_bytes=_json_bytes(json.loads(latest).get("snapshot")),
        compressed_bytes=sum(len(zlib.compress(body)) for _, body in bodies),
        sparse_bytes=_sparse_bytes(documents, SNAPSHOT_EVERY),
        load_requests=load_requests,
        load_seconds=load_seconds,
        parse_latest_seconds=_median_seconds(lambda: json.loads(latest), repeats),
        replay_requests=replay_requests,
        replay_seconds=replay_seconds,
        parse_all_seconds=_median_seconds(
            lambda: [json.loads(body) for _, body in bodies], repeats
        ),
    )


def growing_states(sizes: Sequence[int], *, repeats: int = 3) -> list[StateMeasurement]:
    """Each state's stream at each size; then the longest of each again, once compacted.

    Streams are built with ``Repository.append`` on an in-memory store, each append one
    deposit and the snapshot after it, as a command's append is.
    """
    measurements = []
    for name, aggregate in STATES.items():
        repository = Repository(EventStore(InMemoryObjectStore()), aggregate)
        for size in sizes:
            _append_deposits(repository, f"s-{size}", size)
            measurements.append(
                measure_state(repository, name, f"s-{size}", size, compacted=False, repeats=repeats)
            )
        longest = max(sizes)
        compact(repository, f"s-{longest}")
        measurements.append(
            measure_state(
                repository, name, f"s-{longest}", longest, compacted=True, repeats=repeats
            )
        )
    return measurements
