"""Maintenance under writers: how long delete, erase and compact take while 4 writers append.

Each writer is a :class:`~s3es.CommandHandler` of its own (as a process would be), depositing
back to back on one ledger through the latency store; the maintenance operation runs beside them
on a repository of its own. An operation that gives up (RetriesExhausted) or loses its race
(compaction or erasure that returns no key) is tried again at once, until it finishes or
``cap`` seconds have passed: the duration is from the first try to the one that finished.

What the writers were told is checked as well: after a deletion has returned, no writer may be
told it stored a command (``late``); after an erasure, no stored object may hold the erased id
(``leaks``), counted once the writers, which go on for ``warmup`` seconds after the erasure
returned (each holding the state it last stored, from before the erasure), are stopped. Before
the erasure's fence (a version committed above the redacted stream, whose state a writer that
loses its PUT to it takes), 10 to 16 objects per run still held the erased id.

``python -m bench.maintenance`` runs this section alone and prints its table.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from bench.commands import ledger_handler, ledger_repository
from bench.ledger import Deposit, Deposited
from bench.projections import quantile
from s3es import InMemoryObjectStore, RetriesExhausted, StreamDeleted
from s3es._base.logging import log_to_stderr
from s3es.metering import RequestCounts, measure_requests
from s3es.ops import compact, delete, erase
from s3es.storage import LatencyObjectStore, SimulatedLatency

#: The operations measured, in the order of the table.
OPERATIONS = ("delete", "erase", "compact")
#: The entry id the erasure removes: the ledger's first deposit.
ERASED_ID = "secret-entry"
STREAM = "ledger-m"


def _redact(event: Deposited) -> Deposited:
    return Deposited("[erased]", event.amount) if event.entry_id == ERASED_ID else event


@attrs.frozen
class MaintenanceRun:
    """One operation beside the writers: how long it took to finish, and what it cost."""

    operation: str
    writers: int
    #: From the first try to the end of the one that finished (or to the cap).
    seconds: float
    finished: bool
    #: Tries that raised RetriesExhausted or lost their race before the one that finished.
    lost: int
    #: The operation's requests, every try.
    requests: RequestCounts
    #: Commands the writers stored while it ran.
    appended: int
    #: Commands a writer was told it stored after the deletion returned (must be 0).
    late: int
    #: Objects of the stream holding the erased entry id after the erasure (must be 0).
    leaks: int


@attrs.frozen
class MaintenanceSummary:
    """The runs of one operation: p50 and max of their durations."""

    operation: str
    runs: tuple[MaintenanceRun, ...]

    @property
    def finished(self) -> int:
        """Runs that finished within the cap."""
        return sum(run.finished for run in self.runs)

    def seconds(self, fraction: float) -> float:
        """The duration below which ``fraction`` of the runs lie."""
        return quantile([run.seconds for run in self.runs], fraction)

    @property
    def lost(self) -> int:
        """Tries that gave up or lost, in all runs."""
        return sum(run.lost for run in self.runs)

    @property
    def requests(self) -> RequestCounts:
        """Requests per run, on average (rounded down)."""
        total = RequestCounts()
        for run in self.runs:
            total += run.requests
        count = max(1, len(self.runs))
        return RequestCounts(
            put=total.put // count,
            get=total.get // count,
            list=total.list // count,
            delete=total.delete // count,
        )

    @property
    def late(self) -> int:
        """Commands acknowledged after a deletion returned, in all runs."""
        return sum(run.late for run in self.runs)

    @property
    def leaks(self) -> int:
        """Objects still holding erased data, in all runs."""
        return sum(run.leaks for run in self.runs)


def _attempt(operation: str, repository: Any) -> bool:
    """Run ``operation`` once; whether it finished (False: gave up or lost its race)."""
    try:
        if operation == "delete":
            return delete(repository, STREAM).version > 0
        if operation == "erase":
            return erase(repository, STREAM, _redact).key is not None
        return compact(repository, STREAM).key is not None
    except RetriesExhausted:
        return False


def _writer(
    slow: LatencyObjectStore,
    stop: threading.Event,
    acknowledged: list[float],
    lock: threading.Lock,
    seed: int,
) -> Callable[[int], None]:
    """A writer's loop: deposit back to back until ``stop``; note when each was acknowledged."""

    def write(writer: int) -> None:
        handler = ledger_handler(slow, seed=seed * 100 + writer)
        number = 0
        while not stop.is_set():
            number += 1
            try:
                handler.handle(STREAM, Deposit(f"w{writer}-{number}", 1))
            except RetriesExhausted:
                continue
            except StreamDeleted:
                return
            with lock:
                acknowledged.append(time.perf_counter())

    return write


def under_writers(
    operation: str,
    *,
    writers: int = 4,
    latency: SimulatedLatency,
    seed_appends: int = 5,
    warmup: float = 0.3,
    cap: float = 20.0,
    seed: int = 0,
) -> MaintenanceRun:
    """``operation`` on a ledger of ``seed_appends`` deposits while ``writers`` deposit on it."""
    store = InMemoryObjectStore()
    seeding = ledger_handler(store, seed=seed)
    seeding.handle(STREAM, Deposit(ERASED_ID, 1))
    for index in range(seed_appends - 1):
        seeding.handle(STREAM, Deposit(f"seed-{index}", 1))
    slow = LatencyObjectStore(store, latency, seed=seed)
    stop = threading.Event()
    acknowledged: list[float] = []
    lock = threading.Lock()
    write = _writer(slow, stop, acknowledged, lock, seed)
    threads = [threading.Thread(target=write, args=(w,), daemon=True) for w in range(writers)]
    for thread in threads:
        thread.start()
    time.sleep(warmup)
    repository = ledger_repository(slow)
    lost, finished = 0, False
    with measure_requests() as meter:
        started = time.perf_counter()
        while time.perf_counter() - started < cap:
            if _attempt(operation, repository):
                finished = True
                break
            lost += 1
        ended = time.perf_counter()
    # Writers go on for a while after a deletion (none may be told it stored anything) and
    # after an erasure (their cached states predate it: none may store the erased data again).
    time.sleep(warmup if operation in {"delete", "erase"} else 0)
    stop.set()
    for thread in threads:
        thread.join()
    with lock:
        appended = sum(started <= at <= ended for at in acknowledged)
        late = sum(at > ended for at in acknowledged) if operation == "delete" and finished else 0
    leaks = _leaks(store) if operation == "erase" and finished else 0
    return MaintenanceRun(
        operation=operation,
        writers=writers,
        seconds=ended - started,
        finished=finished,
        lost=lost,
        requests=meter.counts,
        appended=appended,
        late=late,
        leaks=leaks,
    )


def _leaks(store: InMemoryObjectStore) -> int:
    """Objects of the stream whose body holds the erased entry id."""
    found = 0
    for key in store.list_keys(f"ledger/{STREAM}/"):
        stored = store.get(key)
        found += stored is not None and ERASED_ID.encode() in stored.body
    return found


def maintenance_runs(
    *,
    runs: int,
    writers: int = 4,
    latency: SimulatedLatency,
    warmup: float = 0.3,
    cap: float = 20.0,
    operations: Sequence[str] = OPERATIONS,
    progress: Callable[[MaintenanceRun], None] | None = None,
) -> tuple[MaintenanceSummary, ...]:
    """``runs`` runs of each of ``operations`` beside ``writers`` writers."""
    summaries = []
    for operation in operations:
        done = []
        for index in range(runs):
            each = under_writers(
                operation, writers=writers, latency=latency, warmup=warmup, cap=cap, seed=index
            )
            done.append(each)
            if progress is not None:
                progress(each)
        summaries.append(MaintenanceSummary(operation, tuple(done)))
    return tuple(summaries)


def table_rows(summaries: Sequence[MaintenanceSummary]) -> list[list[str]]:
    """One row per operation: runs finished, p50 and max seconds, tries lost, requests, checks."""
    rows = []
    for summary in summaries:
        requests = summary.requests
        rows.append(
            [
                summary.operation,
                f"{summary.finished} of {len(summary.runs)}",
                f"{summary.seconds(0.5):.2f} s",
                f"{summary.seconds(1.0):.2f} s",
                f"{summary.lost:,}",
                f"{requests.put:,} / {requests.get:,} / {requests.list:,} / {requests.delete:,}",
                f"{summary.late:,}",
                f"{summary.leaks:,}",
            ]
        )
    return rows


HEADERS = (
    "operation",
    "finished",
    "p50",
    "max",
    "tries lost",
    "PUT / GET / LIST / DELETE per run",
    "acknowledged after deletion",
    "objects with erased data",
)


def main(argv: Sequence[str] | None = None) -> None:
    """Run this section alone and print its table."""
    parser = argparse.ArgumentParser(prog="python -m bench.maintenance")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.020)
    parser.add_argument("--cap", type=float, default=20.0)
    parser.add_argument("--operation", choices=OPERATIONS, action="append")
    args = parser.parse_args(argv)
    with log_to_stderr(logging.WARNING):
        summaries = maintenance_runs(
            runs=args.runs,
            latency=SimulatedLatency.fixed(args.latency),
            cap=args.cap,
            operations=args.operation or OPERATIONS,
            progress=lambda run: print(
                f"  {run.operation}: {run.seconds:.2f} s, finished={run.finished}, "
                f"lost={run.lost}, late={run.late}, leaks={run.leaks}",
                flush=True,
            ),
        )
    print(" | ".join(HEADERS))
    for row in table_rows(summaries):
        print(" | ".join(row))


if __name__ == "__main__":
    main()
