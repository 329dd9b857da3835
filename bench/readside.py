"""Read models at scale: document projections on each read-model store, by streams held.

One order stream per order, each holding one ``OrderPlaced``, built fast on an in-memory store
(no latency, no feed). The orders example's document projection (``OrderSummaries``: one
summary per order) runs into each store by a ``DocumentProjector``:

- the **S3 keyed documents** store on the in-memory object store, and on moto's embedded S3
  server (HTTP on 127.0.0.1: real requests, but each costs milliseconds of moto's CPU on this
  machine's 2 cores, so it runs at the smaller sizes only);
- **SQLite** (a WAL file in a temporary folder) and **PostgreSQL** (pgserver's PostgreSQL 16,
  over its Unix socket).

Per store and size it measures a pass that applies one event (the feed on: one stream moved by
one ``PaymentRecorded``), an idle pass, and the events per second of a rebuild with 1 shard and
with 8 (8 projectors holding one shard each, run at once in 8 threads), with the growth of the
process's resident memory during each rebuild. Two yardsticks are measured in the same run, as
the machine is shared and noisy: a bare SQLite WAL transaction (one document row upserted, one
checkpoint row upserted, committed) and the time to read every stream (what a rebuild reads: a
stream's version, then its chunks, at the projector's read concurrency). Times are wall-clock
(``perf_counter``): the SQL stores wait on their files and sockets.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import math
import os
import resource
import sqlite3
import statistics
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import attrs

from bench.projections import ReadModelScale, read_model_scale
from examples.orders.domain import Order, OrderLine, OrderPlaced, PaymentRecorded
from examples.orders.projections import OrderSummaries
from s3es import EventStore, InMemoryObjectStore, Loaded, Repository
from s3es.metering import RequestCounts
from s3es.projections import Batching, DocumentProjector, DocumentReader, LeaseOptions, Shards
from s3es.readmodels import (
    PostgresReadModelStore,
    ReadModelStore,
    S3ReadModelStore,
    SQLiteReadModelStore,
)
from s3es.storage import ForwardingObjectStore, ObjectStore

SECONDS_PER_DAY = 86_400
#: The stores measured, in the order of the table.
S3_MEMORY = "S3 documents (in-memory)"
S3_MOTO = "S3 documents (moto)"
SQLITE = "SQLite"
POSTGRES = "PostgreSQL"
STORES = (S3_MEMORY, S3_MOTO, SQLITE, POSTGRES)
#: The shard counts of the rebuilds.
SHARDS = (1, 8)


class _Clock:
    """A clock the bench moves, shared by appenders and projectors; ``now`` is Unix seconds."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


class PutBytes(ForwardingObjectStore):
    """Passes every request on, adding up the bytes of every PUT (new objects and replaces)."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self._lock = threading.Lock()
        self.bytes = 0

    def put_if_absent(self, key: str, body: bytes) -> str:
        """The wrapped put-if-absent, its body counted."""
        with self._lock:
            self.bytes += len(body)
        return self.inner.put_if_absent(key, body)

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        """The wrapped replace, its body counted."""
        with self._lock:
            self.bytes += len(body)
        return self.inner.replace(key, body, etag=etag)


# Measurements -------------------------------------------------------------------------------


@attrs.frozen
class PassMeasurement:
    """One kind of pass: its median and best wall-clock seconds, the last one's requests and bytes.

    The best (the minimum of the repeats) is what the pass costs with the least of the shared
    machine's noise, which only ever adds time: the targets compare it.
    """

    seconds: float
    #: Object-store requests (the event store's, and the S3 store's documents).
    requests: RequestCounts
    #: Bytes PUT to the read-model store (S3 stores only; None where the store cannot tell).
    bytes_written: int | None
    #: Events the last pass applied.
    events: int
    best: float = math.nan


@attrs.frozen
class RebuildRun:
    """A build of every document from every stream, by ``shards`` shards."""

    shards: int
    seconds: float
    events: int
    commits: int
    requests: RequestCounts
    #: Growth of the process's resident memory during the build (peak over start), bytes.
    memory_bytes: int

    @property
    def events_per_second(self) -> float:
        """Events applied per second."""
        return self.events / self.seconds if self.seconds else math.inf


@attrs.frozen
class StoreRun:
    """One store at one size: its passes, its rebuilds and the yardsticks beside them."""

    store: str
    streams: int
    one_event: PassMeasurement
    idle: PassMeasurement
    rebuilds: tuple[RebuildRun, ...]
    #: Seconds to read every stream as a rebuild does (version, then chunks), same concurrency.
    read_seconds: float
    #: Median seconds of a bare SQLite WAL transaction (a row upserted, a checkpoint upserted),
    #: run between the one-event passes.
    bare_sqlite_seconds: float
    #: Documents that differ from what the streams hold, or missing, or extra (0: exact).
    mismatched: int
    #: The fastest bare SQLite transaction.
    bare_sqlite_best: float = math.nan

    def rebuild(self, shards: int) -> RebuildRun:
        """The rebuild with ``shards`` shards."""
        return next(each for each in self.rebuilds if each.shards == shards)

    @property
    def rebuild_read_ratio(self) -> float:
        """The 1-shard rebuild's seconds over the seconds to read the same streams."""
        return self.rebuild(1).seconds / self.read_seconds if self.read_seconds else math.inf

    @property
    def bare_ratio(self) -> float:
        """The best one-event pass's seconds over the best bare SQLite transaction's."""
        return self.one_event.best / self.bare_sqlite_best


@attrs.frozen
class ReadSideResults:
    """Every store at every size, and how large each order's stream build was."""

    runs: tuple[StoreRun, ...]
    #: Seconds the largest size's streams took to build.
    build_seconds: float
    #: Why a store was left out at some size, by store.
    skipped: tuple[tuple[str, str], ...] = ()

    def of(self, store: str) -> list[StoreRun]:
        """The runs of ``store``, by size."""
        return sorted((r for r in self.runs if r.store == store), key=lambda r: r.streams)


# Streams ----------------------------------------------------------------------------------


def order_id(index: int) -> str:
    """The id of the ``index``-th order."""
    return f"o-{index:06d}"


def build_orders(objects: ObjectStore, streams: int, *, threads: int = 1) -> float:
    """``streams`` order streams of one ``OrderPlaced`` each; the seconds it took.

    Straight through the repository (no handler, no feed), from ``threads`` threads (more than
    one for a store whose requests wait on a network).
    """
    orders = Repository(EventStore(objects), Order)
    lines = (OrderLine("mug", 2, 899),)

    def place(index: int) -> None:
        placed = order_id(index)
        new = Loaded(orders.stream(placed), 0, orders.aggregate.initial_state())
        orders.append(new, [OrderPlaced(placed, lines, 1798)])

    started = time.perf_counter()
    if threads == 1:
        for index in range(streams):
            place(index)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(place, range(streams)))
    return time.perf_counter() - started


def read_streams(events: EventStore, stream_type: str, read_concurrency: int) -> float:
    """Seconds to read every stream of ``stream_type`` as a rebuild does; its yardstick.

    Lists the streams, then for each, in ``read_concurrency`` threads: its version (a LIST),
    then its chunks (a LIST, then a GET each), decoded.
    """

    def read(stream: Any) -> int:
        events.version(stream)
        return sum(len(chunk.events) for chunk in events.chunks(stream))

    started = time.perf_counter()
    with ThreadPoolExecutor(read_concurrency) as pool:
        read_events = sum(pool.map(read, events.streams(stream_type)))
    seconds = time.perf_counter() - started
    if read_events == 0:
        raise AssertionError("the read pass found no events")
    return seconds


class BareSQLite:
    """The yardstick: one SQLite WAL transaction upserting a document row and a checkpoint row.

    The tables hold ``rows`` rows first, so that their B-trees are as deep as a store's. Close
    it (or use it as a context manager) when done.
    """

    BODY = '{"status":"placed","lines":1,"total_cents":1798,"paid":false,"events":1}'

    def __init__(self, path: Path, rows: int) -> None:
        self.rows = rows
        self._done = 0
        self._connection = sqlite3.connect(path, isolation_level=None)
        connection = self._connection
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE docs (key TEXT PRIMARY KEY, body TEXT) WITHOUT ROWID")
        connection.execute(
            "CREATE TABLE checkpoints (stream TEXT PRIMARY KEY, version INTEGER) WITHOUT ROWID"
        )
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO docs VALUES (?, ?)", ((order_id(i), self.BODY) for i in range(rows))
        )
        connection.executemany(
            "INSERT INTO checkpoints VALUES (?, 1)",
            ((f"order/{order_id(i)}",) for i in range(rows)),
        )
        connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._connection.close()

    def transaction(self) -> float:
        """Seconds of one transaction (on a row spread over the table, in turn)."""
        self._done += 1
        key = order_id(self._done * 7919 % self.rows)
        connection = self._connection
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT INTO docs VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET body = excluded.body",
            (key, self.BODY),
        )
        connection.execute(
            "INSERT INTO checkpoints VALUES (?, ?) "
            "ON CONFLICT (stream) DO UPDATE SET version = excluded.version",
            (f"order/{key}", self._done + 1),
        )
        connection.execute("COMMIT")
        return time.perf_counter() - started


# Memory -------------------------------------------------------------------------------------


def _rss() -> int:
    """The process's resident memory now, in bytes (0 where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _trim_heap() -> None:
    """Give the C heap's free memory back to the system (glibc's ``malloc_trim``), if it can."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return


class PeakMemory:
    """The growth of resident memory while the block runs: RSS sampled every 10 ms.

    The heap is trimmed first (``gc.collect``, then glibc's ``malloc_trim``), so that memory
    freed by earlier steps does not absorb the growth.

    Falls back to ``getrusage``'s peak (which only grows past the process's earlier peak) where
    /proc is missing.
    """

    def __init__(self) -> None:
        self.growth = 0
        self._stop = threading.Event()
        self._start = 0
        self._peak = 0

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self._peak = max(self._peak, _rss())

    def __enter__(self) -> Self:
        # Memory freed by earlier steps, still held by the allocator, would hide the growth.
        gc.collect()
        _trim_heap()
        self._start = self._peak = _rss()
        self._maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self._thread = threading.Thread(target=self._sample, name="bench-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, _rss())
        if self._start:
            self.growth = self._peak - self._start
        else:
            self.growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self._maxrss


# One store ----------------------------------------------------------------------------------

#: Makes a fresh, empty read-model store (a new prefix, file or schema) each time it is called,
#: and the PutBytes wrapper counting its writes, if it has one.
StoreFactory = Callable[[], tuple[ReadModelStore, PutBytes | None]]


def _timed_rebuild(
    events: EventStore,
    projection: type[OrderSummaries],
    store: ReadModelStore,
    shards: int,
    *,
    read_concurrency: int,
    clock: _Clock,
    feed: bool,
) -> tuple[RebuildRun, list[DocumentProjector[Any]]]:
    """Build every document into the empty ``store`` by ``shards`` projectors, one shard each.

    One shard: ``rebuild()``. Several: each projector's ``catch_up()`` in a thread of its own,
    all started at once; the first to begin the build wins the generation record, the others
    join it, and the last to finish its scan switches readers to it.
    """
    projectors = [
        DocumentProjector(
            events,
            projection,
            store,
            shards=Shards(shards, ids=[number]),
            lease=LeaseOptions(owner=f"bench-{shards}-{number}", ttl=SECONDS_PER_DAY),
            feed=feed,
            batching=Batching(read_concurrency=read_concurrency),
            clock=clock,
        )
        for number in range(shards)
    ]
    with PeakMemory() as memory:
        started = time.perf_counter()
        if shards == 1:
            passes = [projectors[0].rebuild()]
        else:
            with ThreadPoolExecutor(shards) as pool:
                passes = list(pool.map(lambda projector: projector.catch_up(), projectors))
        seconds = time.perf_counter() - started
    generations = store.generations(projection.NAME)
    if generations.live is None or generations.building is not None:
        raise AssertionError(f"the {shards}-shard build did not switch readers: {generations}")
    requests = RequestCounts()
    for each in passes:
        requests += each.requests
    return (
        RebuildRun(
            shards=shards,
            seconds=seconds,
            events=sum(each.events for each in passes),
            commits=sum(each.commits for each in passes),
            requests=requests,
            memory_bytes=memory.growth,
        ),
        projectors,
    )


def _check(store: ReadModelStore, streams: int, payments: Mapping[str, int]) -> int:
    """Documents that differ from their streams (placed, then paid so many times), or missing."""
    seen = wrong = 0
    for key, summary in DocumentReader(store, OrderSummaries).documents():
        seen += 1
        paid = payments.get(key, 0)
        wrong += summary.paid != bool(paid) or summary.events != 1 + paid
    return wrong + abs(streams - seen)


def measure_store(
    name: str,
    objects: ObjectStore,
    make_store: StoreFactory,
    streams: int,
    *,
    bare: BareSQLite,
    read_seconds: float,
    payments: dict[str, int],
    repeats: int = 15,
    read_concurrency: int = 8,
    shards: Sequence[int] = SHARDS,
) -> StoreRun:
    """One store over the ``streams`` order streams already in ``objects``.

    The 1-shard rebuild builds the store's documents; a feed projector (the one that rebuilt)
    then runs one idle pass to settle, and ``repeats`` times: an idle pass, three ``bare``
    transactions, then a pass after one order was paid (``payments`` counts each order's
    payments, over every store run on these streams). The passes are timed (median) and
    metered; the last one's requests and PUT bytes are kept. Then the other shard counts
    rebuild into fresh stores. Every document is checked against its stream after each build.
    """
    projection = OrderSummaries
    clock = _Clock()
    store, put_bytes = make_store()
    rebuilt, (projector,) = _timed_rebuild(
        EventStore(objects, clock=clock),
        projection,
        store,
        1,
        read_concurrency=read_concurrency,
        clock=clock,
        feed=True,
    )
    runs = [rebuilt]
    orders = Repository(EventStore(objects, feed=True, clock=clock), Order)
    clock.now += 60
    projector.catch_up()  # settles: the feed's cursor, the lease
    idle: list[float] = []
    one_event: list[float] = []
    yardstick: list[float] = []
    idle_bytes = one_event_bytes = 0
    idle_run = moved_run = None
    for repeat in range(repeats):
        clock.now += 60
        before = put_bytes.bytes if put_bytes else 0
        started = time.perf_counter()
        idle_run = projector.catch_up()
        idle.append(time.perf_counter() - started)
        idle_bytes = (put_bytes.bytes if put_bytes else 0) - before
        moved = order_id((repeat + 1) * streams // (repeats + 1))
        orders.append(orders.load(moved), [PaymentRecorded(f"p-{repeat}", 1798)])
        payments[moved] = payments.get(moved, 0) + 1
        yardstick += [bare.transaction() for _ in range(3)]
        clock.now += 1
        before = put_bytes.bytes if put_bytes else 0
        started = time.perf_counter()
        moved_run = projector.catch_up()
        one_event.append(time.perf_counter() - started)
        one_event_bytes = (put_bytes.bytes if put_bytes else 0) - before
        if (idle_run.events, moved_run.events) != (0, 1):
            raise AssertionError(
                f"{name}: passes applied {idle_run.events} and {moved_run.events} events, "
                "not 0 and 1"
            )
    if idle_run is None or moved_run is None:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    projector.release()
    mismatched = _check(store, streams, payments)
    with contextlib.suppress(AttributeError):
        store.close()  # type: ignore[attr-defined]
    for count in shards:
        if count == 1:
            continue
        fresh, _ = make_store()
        run, projectors = _timed_rebuild(
            EventStore(objects, clock=clock),
            projection,
            fresh,
            count,
            read_concurrency=read_concurrency,
            clock=clock,
            feed=False,
        )
        for each in projectors:
            each.release()
        mismatched += _check(fresh, streams, payments)
        with contextlib.suppress(AttributeError):
            fresh.close()  # type: ignore[attr-defined]
        runs.append(run)
    return StoreRun(
        store=name,
        streams=streams,
        one_event=PassMeasurement(
            statistics.median(one_event),
            moved_run.requests,
            one_event_bytes if put_bytes else None,
            moved_run.events,
            min(one_event),
        ),
        idle=PassMeasurement(
            statistics.median(idle),
            idle_run.requests,
            idle_bytes if put_bytes else None,
            idle_run.events,
            min(idle),
        ),
        rebuilds=tuple(runs),
        read_seconds=read_seconds,
        bare_sqlite_seconds=statistics.median(yardstick),
        mismatched=mismatched,
        bare_sqlite_best=min(yardstick),
    )


# Stores -----------------------------------------------------------------------------------


def _s3_stores(objects: ObjectStore, tag: str) -> StoreFactory:
    made = iter(range(1_000_000))

    def make() -> tuple[ReadModelStore, PutBytes | None]:
        counted = PutBytes(objects)
        return S3ReadModelStore(counted, f"rm-{tag}-{next(made)}"), counted

    return make


def _sqlite_stores(folder: Path, tag: str) -> StoreFactory:
    made = iter(range(1_000_000))

    def make() -> tuple[ReadModelStore, PutBytes | None]:
        store: ReadModelStore = SQLiteReadModelStore(folder / f"rm-{tag}-{next(made)}.sqlite")
        return store, None

    return make


@contextlib.contextmanager
def _postgres(folder: Path) -> Iterator[str]:
    """A PostgreSQL 16 server (pgserver) for the run: its URI."""
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (root shells) as pgserver is imported.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from pgserver.postgres_server import get_server  # noqa: PLC0415 - the dev extra

    server = get_server(folder / "pg", cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def _postgres_stores(uri: str, tag: str) -> StoreFactory:
    import psycopg  # noqa: PLC0415 - the postgres extra

    made = iter(range(1_000_000))

    def make() -> tuple[ReadModelStore, PutBytes | None]:
        schema = f"rm_{tag}_{next(made)}"
        with psycopg.connect(uri, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{schema}"')
        conninfo = psycopg.conninfo.make_conninfo(uri, options=f"-csearch_path={schema}")
        store: ReadModelStore = PostgresReadModelStore(conninfo)
        return store, None

    return make


# The whole section -------------------------------------------------------------------------


def readside(
    sizes: Sequence[int],
    *,
    stores: Sequence[str] = STORES,
    moto_sizes: Sequence[int] = (),
    repeats: int = 15,
    read_concurrency: int = 8,
    progress: Callable[[str], None] | None = None,
) -> ReadSideResults:
    """Every store of ``stores`` at every size of ``sizes`` (moto's at ``moto_sizes`` only).

    Each size's streams are built once on an in-memory store, which the in-memory S3 store,
    SQLite and PostgreSQL all read; moto's streams are built on moto, through HTTP.
    """
    say = progress or (lambda _: None)
    runs: list[StoreRun] = []
    skipped = []
    build_seconds = 0.0
    if S3_MOTO in stores:
        skipped.append(
            (
                S3_MOTO,
                (
                    f"{', '.join(f'{n:,}' for n in sizes if n not in moto_sizes)} streams not"
                    " run: every request is an HTTP round trip to moto on the same 2 cores"
                ),
            )
        )
    with tempfile.TemporaryDirectory(prefix="s3es-readside-") as temporary:
        folder = Path(temporary)
        with contextlib.ExitStack() as stack:
            uri = stack.enter_context(_postgres(folder)) if POSTGRES in stores else ""
            for streams in sizes:
                objects = InMemoryObjectStore()
                build_seconds = build_orders(objects, streams)
                say(f"built {streams:,} streams in {build_seconds:.1f} s")
                bare = stack.enter_context(BareSQLite(folder / f"bare-{streams}.sqlite", streams))
                read = read_streams(EventStore(objects), "order", read_concurrency)
                payments: dict[str, int] = {}
                factories: list[tuple[str, StoreFactory]] = []
                if S3_MEMORY in stores:
                    factories.append((S3_MEMORY, _s3_stores(objects, str(streams))))
                if SQLITE in stores:
                    factories.append((SQLITE, _sqlite_stores(folder, str(streams))))
                if POSTGRES in stores:
                    factories.append((POSTGRES, _postgres_stores(uri, str(streams))))
                for name, factory in factories:
                    run = measure_store(
                        name,
                        objects,
                        factory,
                        streams,
                        bare=bare,
                        read_seconds=read,
                        payments=payments,
                        repeats=repeats,
                        read_concurrency=read_concurrency,
                    )
                    say(f"{name} at {streams:,}: rebuild {run.rebuild(1).seconds:.1f} s")
                    runs.append(run)
                del objects
                if S3_MOTO in stores and streams in moto_sizes:
                    runs.append(
                        _moto_run(
                            streams,
                            bare=bare,
                            repeats=repeats,
                            read_concurrency=read_concurrency,
                        )
                    )
                    say(f"{S3_MOTO} at {streams:,} done")
    return ReadSideResults(tuple(runs), build_seconds, tuple(skipped))


def _moto_run(streams: int, *, bare: BareSQLite, repeats: int, read_concurrency: int) -> StoreRun:
    from botocore.config import Config  # noqa: PLC0415 - the testing extra

    from s3es.testing import EmbeddedS3  # noqa: PLC0415 - the testing extra

    with EmbeddedS3() as s3:
        s3.create_bucket("readside")
        # 8 shards x 8 read threads, and the store's 16 writers: more than botocore's 50.
        objects = s3.object_store(
            "readside", client_config=Config(max_pool_connections=8 * read_concurrency + 32)
        )
        build_orders(objects, streams, threads=read_concurrency)
        read = read_streams(EventStore(objects), "order", read_concurrency)
        return measure_store(
            S3_MOTO,
            objects,
            _s3_stores(objects, "moto"),
            streams,
            bare=bare,
            read_seconds=read,
            payments={},
            repeats=repeats,
            read_concurrency=read_concurrency,
        )


# The report -----------------------------------------------------------------------------------

HEADERS = [
    "Store",
    "Streams",
    "1-event pass ms",
    "1-event pass requests",
    "1-event bytes",
    "Idle pass ms",
    "Idle pass requests",
    "Rebuild events/s, 1 / 8 shards",
    "Rebuild memory MB, 1 / 8",
    "Read all s",
    "Rebuild / read",
    "Bare SQLite ms",
    "Applied once",
]

#: The old one-document ``Projector``'s rows (bench.projections.read_model_scale).
OLD_PROJECTOR = "one document (Projector, in-memory)"


def _mb(count: int) -> str:
    return f"{count / 1_000_000:,.0f}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.2f}"


def rows(results: ReadSideResults, old: Sequence[ReadModelScale] = ()) -> list[list[str]]:
    """One row per store and size; the old one-document projector's rows first."""
    table = [
        [
            OLD_PROJECTOR,
            f"{each.streams:,}",
            _ms(each.one_event_seconds),
            str(each.one_event_requests),
            f"{each.document_bytes:,}",
            _ms(each.idle_seconds),
            str(each.idle_requests),
            f"{each.rebuild_streams_per_second:,.0f} / -",
            "-",
            "-",
            "-",
            "-",
            "yes" if each.mismatched == 0 else f"NO: {each.mismatched:,}",
        ]
        for each in old
    ]
    for store in STORES:
        for run in results.of(store):
            one, eight = run.rebuild(1), next((r for r in run.rebuilds if r.shards > 1), None)
            table.append(
                [
                    store,
                    f"{run.streams:,}",
                    _ms(run.one_event.seconds),
                    str(run.one_event.requests),
                    "-"
                    if run.one_event.bytes_written is None
                    else f"{run.one_event.bytes_written:,}",
                    _ms(run.idle.seconds),
                    str(run.idle.requests),
                    f"{one.events_per_second:,.0f} / "
                    + ("-" if eight is None else f"{eight.events_per_second:,.0f}"),
                    f"{_mb(one.memory_bytes)} / "
                    + ("-" if eight is None else _mb(eight.memory_bytes)),
                    f"{run.read_seconds:,.2f}",
                    f"{run.rebuild_read_ratio:.2f}x",
                    _ms(run.bare_sqlite_seconds),
                    "yes" if run.mismatched == 0 else f"NO: {run.mismatched:,}",
                ]
            )
    return table


@attrs.frozen
class Target:
    """One of the keyed read models' targets, for one store: the ratio against its limit."""

    target: str
    store: str
    measured: str
    ratio: float
    limit: float

    @property
    def met(self) -> bool:
        """True if the ratio is within the limit."""
        return self.ratio <= self.limit


def targets(results: ReadSideResults) -> list[Target]:
    """The keyed read models' targets, per store: each a ratio of two figures of one run.

    A pass (one event, idle) at the largest size over the smallest (within 2x); a one-event
    pass on SQLite over the bare SQLite transaction (within 10x); a 1-shard rebuild at the
    largest size over reading the same streams (within 2x).
    """
    found = []
    for store in STORES:
        runs = results.of(store)
        if not runs:
            continue
        small, large = runs[0], runs[-1]
        if large.streams > small.streams:
            for kind in ("one_event", "idle"):
                before, after = getattr(small, kind).best, getattr(large, kind).best
                found.append(
                    Target(
                        f"{'one-event' if kind == 'one_event' else 'idle'} pass,"
                        f" {large.streams:,} over {small.streams:,} streams",
                        store,
                        f"{_ms(after)} ms / {_ms(before)} ms",
                        after / before,
                        2.0,
                    )
                )
        if store == SQLITE:
            found += [
                Target(
                    f"one-event pass over a bare SQLite transaction, {run.streams:,} streams",
                    store,
                    f"{_ms(run.one_event.best)} ms / {_ms(run.bare_sqlite_best)} ms",
                    run.bare_ratio,
                    10.0,
                )
                for run in runs
            ]
        found.append(
            Target(
                f"1-shard rebuild over reading the streams, {large.streams:,} streams",
                store,
                f"{large.rebuild(1).seconds:,.2f} s / {large.read_seconds:,.2f} s",
                large.rebuild_read_ratio,
                2.0,
            )
        )
    return found


TARGET_HEADERS = ["Target", "Store", "Measured", "Ratio", "Limit", "Met"]


def target_rows(results: ReadSideResults) -> list[list[str]]:
    """Each target as a row: what was measured, the ratio, the limit, met or not."""
    return [
        [
            each.target,
            each.store,
            each.measured,
            f"{each.ratio:.2f}x",
            f"{each.limit:g}x",
            "met" if each.met else "NOT MET",
        ]
        for each in targets(results)
    ]


def text(results: ReadSideResults, old: Sequence[ReadModelScale] = ()) -> str:
    """What the table measured, and how."""
    skipped = " ".join(f"{store}: {why}." for store, why in results.skipped)
    old_text = (
        " The first rows are the old one-document `Projector` (the orders example's"
        " `OrdersByStatus`, the section below), measured in the same run in CPU time: its"
        " *1-event bytes* is the size of the document a commit rewrites."
        if old
        else ""
    )
    return (
        "Keyed read models: the orders example's `DocumentProjection` of one summary"
        " document per order (`OrderSummaries`) run by a"
        " `DocumentProjector` into each read-model store, over order streams of one"
        " `OrderPlaced` each (built on an in-memory object store, which the in-memory S3 store,"
        " SQLite and PostgreSQL all read; no simulated latency, so every figure is this"
        " machine's CPU and I/O). The S3 store runs on `InMemoryObjectStore` and on moto's"
        " embedded S3 server (`EmbeddedS3`, HTTP on 127.0.0.1); SQLite is a WAL file in a"
        " temporary folder; PostgreSQL 16 is pgserver's, over a Unix socket. *1-event pass*:"
        " with the change feed on, one order gets a `PaymentRecorded`, then `catch_up()` (the"
        " median of the repeats, wall-clock); its requests are the object store's, the event"
        " store's and the S3 store's together (the SQL stores' statements are not counted), and"
        " *bytes* what it PUT to the S3 store (documents, positions, shard state). *Idle pass*:"
        " the same projector finding nothing new. *Rebuild*: every document built into a fresh"
        " store, by one projector's `rebuild()`, and by 8 projectors holding one shard each,"
        " whose `catch_up()` run at once in 8 threads (one process: they share its GIL); its"
        " memory is the growth of the process's resident memory during the build (RSS sampled"
        " every 10 ms, after a `gc.collect()` and glibc's `malloc_trim`). Two yardsticks are"
        " measured in the same run, the machine being shared"
        " and noisy: *read all*, reading every stream as a rebuild does (its version, then its"
        " chunks, decoded, 8 threads), and *bare SQLite*, one WAL transaction upserting a"
        " document row and a checkpoint row in tables of as many rows, run between the"
        " one-event passes. Every document is checked against its stream after each build."
        + old_text
        + (f" {skipped}" if skipped else "")
    )


TARGETS_TEXT = (
    "Each target is a ratio of two figures of the same run, never a time against a constant:"
    " the machine is shared and its timings move. Passes and bare transactions are compared by"
    " their best of the repeats (as `timeit` does: noise only adds time), the table above"
    " shows their medians; a rebuild runs once. A pass should cost the same at any number of"
    " streams (the largest size over the smallest, within 2x); a one-event pass on SQLite"
    " should stay within 10x of a bare SQLite transaction (its fsync included); a rebuild"
    " should stay within 2x of reading the streams it folds."
)


def section(
    sizes: Sequence[int] = (1_000, 10_000, 100_000),
    *,
    moto_sizes: Sequence[int] = (1_000,),
    old_sizes: Sequence[int] = (1_000, 10_000, 100_000),
) -> str:
    """Run this section alone and render it as ``docs/benchmarks.md`` would (Markdown).

    ``old_sizes``: the sizes the old one-document projector is measured at, for its rows.
    """
    from bench.report import table  # noqa: PLC0415 - the report imports this module

    results = readside(sizes, moto_sizes=moto_sizes, progress=print)
    old = [read_model_scale(streams) for streams in old_sizes]
    return "\n\n".join(
        [
            "## Read models at scale",
            table(HEADERS, rows(results, old)),
            text(results, old),
            "## Read models at scale: the targets",
            table(TARGET_HEADERS, target_rows(results)),
            TARGETS_TEXT,
        ]
    )


if __name__ == "__main__":
    import logging

    from s3es._base.logging import log_to_stderr

    with log_to_stderr(logging.WARNING):
        print(section())
