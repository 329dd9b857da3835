"""Replay at the decode floor, read-ahead over S3, and what a stale cached state costs to refresh.

Three measurements of reading a stream's events:

- **Replay beside its floor** (CPU time, in-memory store): ``Repository.replay`` of a stream of
  ``chunks`` chunks of ``events_per_chunk`` events, next to the least any replay of the same
  stored bytes must do: ``json.loads`` of each chunk, an attrs event built from each event's data,
  and ``evolve`` (the *decode floor*), timed in the same run. Beside them, if the
  ``eventsourcing`` package is installed, its application replaying the same events from its
  in-memory (POPO) recorder.
- **Read-ahead over S3**: a replay of a long stream through a store that makes each request
  take a fixed latency, at several read-ahead depths (0: one GET at a time).
- **Stale refresh**: the requests a command that stores nothing costs when the handler's cached
  state is ``k`` versions behind.

Run one alone with ``python -m bench.replay``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from bench.commands import ledger_handler, ledger_repository
from bench.ledger import Deposit, Deposited, Ledger, LedgerState
from bench.loads import build_stream
from s3es import CommandHandler, EventStore, InMemoryObjectStore, Repository
from s3es.metering import RequestCounts, measure_requests
from s3es.storage import LatencyObjectStore, SimulatedLatency

LedgerRepository = Repository[LedgerState, Deposit, Deposited]


@attrs.frozen
class FloorRun:
    """One stream shape's replay, in CPU seconds, beside the floor and eventsourcing's replay."""

    chunks: int
    events_per_chunk: int
    #: CPU seconds of ``Repository.replay`` (the fastest of the repeats).
    replay_seconds: float
    #: CPU seconds of json.loads + attrs events + evolve over the same stored bytes (the
    #: fastest of the repeats, each timed right after a replay's).
    floor_seconds: float
    #: CPU seconds of the eventsourcing library's replay from its in-memory recorder (the
    #: fastest of the repeats), or None if the package is not installed.
    eventsourcing_seconds: float | None
    #: Requests of one replay.
    requests: RequestCounts

    @property
    def events(self) -> int:
        """Events replayed."""
        return self.chunks * self.events_per_chunk

    @property
    def replay_rate(self) -> float:
        """Events per CPU second of ``Repository.replay``."""
        return self.events / self.replay_seconds

    @property
    def floor_rate(self) -> float:
        """Events per CPU second of the decode floor."""
        return self.events / self.floor_seconds

    @property
    def eventsourcing_rate(self) -> float | None:
        """Events per CPU second of eventsourcing's replay, if measured."""
        seconds = self.eventsourcing_seconds
        return None if seconds is None else self.events / seconds

    @property
    def ratio(self) -> float:
        """``Repository.replay``'s rate as a fraction of the floor's."""
        return self.replay_rate / self.floor_rate


def _fastest_side_by_side(
    actions: Sequence[Callable[[], object]], repeats: int
) -> tuple[float, ...]:
    """Each action's fewest CPU seconds (every thread) over ``repeats`` rounds of all of them.

    The actions take turns, so that on a shared machine each meets the same load as the
    others; and the fastest run of each is kept: other processes only ever slow a run down
    (the least of repeated timings is what the code itself costs, as ``timeit`` advises).
    """
    best = [math.inf] * len(actions)
    for _ in range(repeats):
        for index, action in enumerate(actions):
            gc.collect()
            started = time.process_time()
            action()
            best[index] = min(best[index], time.process_time() - started)
    return tuple(best)


def stored_bodies(repository: LedgerRepository, stream_id: str) -> list[bytes]:
    """The bytes of every chunk of a stream (one per version, no compaction), oldest first."""
    event_store = repository.event_store
    stream = repository.stream(stream_id)
    bodies = []
    version = 1
    while (
        stored := event_store.objects.get(event_store.keys.chunk_key(stream, version))
    ) is not None:
        bodies.append(stored.body)
        version += 1
    return bodies


def decode_floor(bodies: Sequence[bytes]) -> LedgerState:
    """The least a replay of ``bodies`` does: parse, build each event, fold it."""
    ledger = Ledger()
    state = ledger.initial_state()
    loads, evolve = json.loads, ledger.evolve
    for body in bodies:
        for event in loads(body)["events"]:
            state = evolve(state, Deposited(**event["data"]))
    return state


@functools.cache
def _eventsourcing() -> tuple[Any, Any] | None:
    """The eventsourcing library's Application and a ledger aggregate of it, or None.

    Made once: the library registers each aggregate class by its name.
    """
    try:
        from eventsourcing.application import Application  # noqa: PLC0415 - optional
        from eventsourcing.domain import Aggregate, event  # noqa: PLC0415 - optional
    except ImportError:
        return None

    class EsLedger(Aggregate):
        """The bench's ledger as an eventsourcing aggregate: the same fold per deposit."""

        def __init__(self) -> None:
            self.balance, self.entries = 0, 0
            self.recent: tuple[str, ...] = ()

        @event("Deposited")
        def deposit(self, entry_id: str, amount: int) -> None:
            self.balance += amount
            self.entries += 1
            self.recent = (*self.recent, entry_id)[-32:]

    return Application, EsLedger


def _eventsourcing_replay(chunks: int, events_per_chunk: int) -> Callable[[], object] | None:
    """A replay of the same events by the eventsourcing library, or None if it is missing.

    Its application on the in-memory (POPO) recorder, without snapshots or cache: each
    ``repository.get`` reads every stored event and applies it.
    """
    library = _eventsourcing()
    if library is None:
        return None
    application_class, ledger_class = library
    application: Any = application_class(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    ledger = ledger_class()
    application.save(ledger)  # its creation event; one chunk of ours holds no such thing
    for chunk in range(chunks):
        for number in range(events_per_chunk):
            ledger.deposit(f"{chunk}-{number}", 1)
        application.save(ledger)
    ledger_id = ledger.id
    return lambda: application.repository.get(ledger_id)


def floor_runs(
    shapes: Sequence[tuple[int, int]] = ((10_000, 1), (1_000, 10)), *, repeats: int = 3
) -> list[FloorRun]:
    """``Repository.replay`` beside the decode floor, for each (chunks, events per chunk)."""
    runs = []
    for chunks, per_chunk in shapes:
        repository = ledger_repository(InMemoryObjectStore())
        stream_id = f"floor-{chunks}x{per_chunk}"
        build_stream(repository, stream_id, chunks, events_per_append=per_chunk)
        bodies = stored_bodies(repository, stream_id)
        if decode_floor(bodies) != repository.replay(stream_id).state:
            raise AssertionError("the floor and the replay disagree")
        with measure_requests() as meter:
            repository.replay(stream_id)
        replay, floor = _fastest_side_by_side(
            (
                lambda: repository.replay(stream_id),  # noqa: B023
                lambda: decode_floor(bodies),  # noqa: B023
            ),
            repeats,
        )
        theirs = _eventsourcing_replay(chunks, per_chunk)
        theirs_seconds = None if theirs is None else _fastest_side_by_side((theirs,), repeats)[0]
        runs.append(FloorRun(chunks, per_chunk, replay, floor, theirs_seconds, meter.counts))
    return runs


@attrs.frozen
class ReadAheadRun:
    """One replay of a long stream through a store with a latency, at one read-ahead depth."""

    chunks: int
    read_ahead: int
    latency: float
    requests: RequestCounts
    #: Wall-clock seconds; modelled (requests one after the other) when ``modelled``.
    seconds: float
    modelled: bool


def read_ahead_runs(
    chunks: int,
    depths: Sequence[int],
    *,
    latency: float = 0.02,
    budget: float = 60.0,
) -> list[ReadAheadRun]:
    """A replay of a stream of ``chunks`` chunks at ``latency`` per request, at each depth.

    A depth whose replay would wait longer than ``budget`` seconds (one GET at a time) is
    modelled from its request count rather than timed.
    """
    inner = InMemoryObjectStore()
    stream_id = "long"
    build_stream(ledger_repository(inner), stream_id, chunks)
    slow = LatencyObjectStore(inner, SimulatedLatency.fixed(latency))
    runs = []
    for depth in depths:
        plain = Repository(EventStore(inner, read_ahead=depth), Ledger)
        with measure_requests() as meter:
            plain.replay(stream_id)
        serial = meter.counts.total * latency
        if depth == 0 and serial > budget:
            runs.append(ReadAheadRun(chunks, depth, latency, meter.counts, serial, modelled=True))
            continue
        repository = Repository(EventStore(slow, read_ahead=depth), Ledger)
        started = time.perf_counter()
        repository.replay(stream_id)
        seconds = time.perf_counter() - started
        runs.append(ReadAheadRun(chunks, depth, latency, meter.counts, seconds, modelled=False))
    return runs


@attrs.frozen
class StaleRefresh:
    """A command that stores nothing, decided on a cached state ``behind`` versions old."""

    behind: int
    requests: RequestCounts


class _ZeroIsNoOp(Ledger):
    """The ledger, where a deposit of nothing changes nothing: a no-op on any state."""

    def decide(self, command: Deposit, state: LedgerState) -> Sequence[Deposited]:
        """No event for an amount of 0; otherwise as the ledger decides."""
        return [] if command.amount == 0 else super().decide(command, state)


def stale_refreshes(behinds: Sequence[int]) -> list[StaleRefresh]:
    """The requests of a no-op command on a handler whose cached state is ``k`` versions behind.

    One handler caches the stream; another appends ``k`` deposits; the first handler then runs
    a deposit of nothing, which decides no event on any state, so the handler must confirm it
    on the stream's latest state before it stands.
    """
    measured = []
    for behind in behinds:
        objects = InMemoryObjectStore()
        stale = CommandHandler(Repository(EventStore(objects), _ZeroIsNoOp))
        other = ledger_handler(objects)
        stream_id = f"stale-{behind}"
        stale.handle(stream_id, Deposit("first", 1))
        for number in range(behind):
            other.handle(stream_id, Deposit(f"new-{number}", 1))
        result = stale.handle(stream_id, Deposit("nothing", 0))
        if result.recorded or result.version != behind + 1:
            raise AssertionError(f"the no-op stored something or missed a version: {result}")
        measured.append(StaleRefresh(behind, result.requests))
    return measured


@attrs.frozen
class ReplayResults:
    """The three measurements of this module, as ``make bench`` reports them."""

    floor: tuple[FloorRun, ...]
    read_ahead: tuple[ReadAheadRun, ...]
    stale: tuple[StaleRefresh, ...]


def measure(
    shapes: Sequence[tuple[int, int]],
    read_ahead_chunks: int,
    depths: Sequence[int],
    behinds: Sequence[int],
    *,
    latency: float,
    repeats: int = 3,
) -> ReplayResults:
    """Run the three measurements at these sizes."""
    return ReplayResults(
        tuple(floor_runs(shapes, repeats=repeats)),
        tuple(read_ahead_runs(read_ahead_chunks, depths, latency=latency)),
        tuple(stale_refreshes(behinds)),
    )


FLOOR_HEADERS = (
    "stream",
    "events",
    "requests",
    "Repository.replay (events/s)",
    "decode floor (events/s)",
    "replay / floor",
    "eventsourcing POPO (events/s)",
)


def _plural(count: int) -> str:
    return "s" if count > 1 else ""


def floor_rows(runs: Sequence[FloorRun]) -> list[list[str]]:
    """The replay-beside-its-floor table's rows."""
    return [
        [
            f"{run.chunks:,} chunks x {run.events_per_chunk} event{_plural(run.events_per_chunk)}",
            f"{run.events:,}",
            str(run.requests),
            f"{run.replay_rate:,.0f}",
            f"{run.floor_rate:,.0f}",
            f"{run.ratio:.2f}",
            "not installed" if run.eventsourcing_rate is None else f"{run.eventsourcing_rate:,.0f}",
        ]
        for run in runs
    ]


FLOOR_TEXT = (
    "CPU time (every thread of the process) of `Repository.replay` on the in-memory store,"
    " beside the *decode floor* over the same stored bytes: `json.loads` of each chunk, the"
    " attrs event built from each event's data, and `evolve`. The two take turns, 3 times"
    " each, and the fastest of each is shown: on a shared machine other processes only ever"
    " slow a run down, and taking turns gives both the same load. What the replay does beyond"
    " the floor: it lists the stream and parses each key; checks every field of every chunk,"
    " the snapshots it leaves out included (a corrupt chunk is a CorruptChunk naming its key"
    " and field); turns each event into the aggregate's class through the strict converter;"
    " and walks the chain by base_version from the newest chunk, holding each chunk's events"
    " until it reaches the oldest (it keeps no snapshot but the newest's: holding them all was"
    " a fifth of a replay). It parses with orjson (3 to 5 times faster than `json.loads`)."
    " The last column is the eventsourcing library's application replaying the same events"
    " from its in-memory (POPO) recorder, if the package is installed (`pip install"
    " eventsourcing`; it is no dependency of s3es)."
)

READ_AHEAD_HEADERS = ("chunks", "read-ahead", "requests", "seconds")


def read_ahead_rows(runs: Sequence[ReadAheadRun]) -> list[list[str]]:
    """The read-ahead table's rows."""
    return [
        [
            f"{run.chunks:,}",
            "none (one GET at a time)" if run.read_ahead == 0 else f"{run.read_ahead} GETs",
            str(run.requests),
            f"{run.seconds:,.1f}{' (modelled)' if run.modelled else ''}",
        ]
        for run in runs
    ]


def read_ahead_text(runs: Sequence[ReadAheadRun]) -> str:
    """What the read-ahead table shows."""
    latency = runs[0].latency * 1000 if runs else 0
    return (
        f"`Repository.replay` of one long stream through `LatencyObjectStore` at {latency:g} ms"
        " per request, wall clock, at each `EventStore(read_ahead=...)` (default 32). Each GET"
        " of a chain names the next version only once it is read, but the LIST already named"
        " the chunk of every version, so the store fetches the next ones ahead, in the order the"
        " walk needs them, in a bounded thread pool. The requests are the same at every depth:"
        " nothing is fetched that the walk does not read (below a compacted chunk nothing is"
        " fetched until it is read). One GET at a time is modelled: requests times the latency."
        " 10,000 chunks in 10 s need 20 GETs in flight at 20 ms; the LIST pages come first, one"
        " after the other."
    )


STALE_HEADERS = ("versions behind", "requests", "was")


def stale_rows(refreshes: Sequence[StaleRefresh]) -> list[list[str]]:
    """The stale-refresh table's rows."""
    return [
        [
            f"{refresh.behind:,}",
            str(refresh.requests),
            str(RequestCounts(list=1, get=refresh.behind)),
        ]
        for refresh in refreshes
    ]


STALE_TEXT = (
    "A command that stores nothing (a no-op or a refusal), decided on a handler's cached state"
    " some versions behind, must be confirmed on the latest state. It used to read the new"
    " chunks one GET each (the last column); `Repository.refresh` now lists the newest key and,"
    " if the stream moved, GETs the latest chunk alone and takes its snapshot: at most a load,"
    " however far behind. Only a snapshot it cannot use (another `SNAPSHOT_SCHEMA`) makes it"
    " walk the new chunks."
)


def main() -> None:
    """Print the three measurements at ``make bench``'s sizes (or tiny ones with --quick)."""
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("floor", "read-ahead", "stale"))
    args = parser.parse_args()
    if args.only in {None, "floor"}:
        shapes = ((200, 1), (20, 10)) if args.quick else ((10_000, 1), (1_000, 10))
        for run in floor_runs(shapes):
            theirs = run.eventsourcing_rate
            print(
                f"{run.chunks:>6,} x {run.events_per_chunk:<2} replay {run.replay_rate:>9,.0f}/s"
                f"  floor {run.floor_rate:>9,.0f}/s  ratio {run.ratio:.2f}"
                f"  eventsourcing {'-' if theirs is None else f'{theirs:,.0f}/s'}"
                f"  {run.requests}"
            )
    if args.only in {None, "read-ahead"}:
        chunks = 300 if args.quick else 10_000
        for ahead in read_ahead_runs(chunks, (0, 8, 16, 32)):
            print(
                f"{ahead.chunks:,} chunks read-ahead {ahead.read_ahead:>2}: {ahead.seconds:7.2f} s"
                f"{' (modelled)' if ahead.modelled else ''}  {ahead.requests}"
            )
    if args.only in {None, "stale"}:
        for refresh in stale_refreshes((0, 1, 2, 3, 10, 200)):
            print(f"{refresh.behind:>4} behind: {refresh.requests}")


if __name__ == "__main__":
    main()
