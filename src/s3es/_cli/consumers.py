"""``s3es projection`` of a document projection, and ``s3es reactor``: shards, leases, passes.

Both run a consumer: a :class:`~s3es._projections.document_projector.DocumentProjector` or a
:class:`~s3es._projections.reactor.ReactorRunner`, its positions and shard states kept in the
read-model store that ``--store`` names (``s3``, the default: beside the event store;
``sqlite:PATH``; a ``postgresql://`` URL). ``--shards N`` must be the number every process of
the consumer runs with; ``--shard I`` (repeatable) picks the shards this process runs.

- ``status`` reads, and never writes: the generations, then one line per shard (its lease,
  its state in each generation, how old its feed cursors are; with ``--lag``, a scan of the
  streams behind their positions).
- ``catch-up`` runs one pass per shard, each under its own lease taken and released, and
  prints what each did and the requests it sent; ``rebuild`` does the same after starting a
  new generation.
- ``run`` loops until SIGTERM or Ctrl-C (the first stops it after the pass under way, and the
  leases are released; a second stops it at once): one such process per shard, under an
  ordinary scheduler, is how a consumer is deployed (docs/operations.md).
- ``parked``, ``retry EVENT_ID`` and ``skip EVENT_ID`` list and settle the events whose
  reaction kept failing (a reactor's) or that a document could not take (a projection's).
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import inspect
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import attrs

from s3es._cli.invocation import PROBLEM, Invocation, _import, described, one_line, plural
from s3es._cli.progress import ProgressBar
from s3es._cli.streams import table
from s3es._domain.aggregate import Aggregate
from s3es._projections.consumer import Consumer, ShardPass, shard_of
from s3es._projections.document_projector import DocumentPass, DocumentProjector
from s3es._projections.documents import DocumentProjection
from s3es._projections.lease import Lease
from s3es._projections.options import LeaseOptions, Shards
from s3es._projections.reactor import ReactorPass, ReactorRunner
from s3es._projections.values import ParkedDocument
from s3es._readmodels.port import Generation, Generations, ReadModelStore, ShardState
from s3es._readmodels.postgres import PostgresReadModelStore
from s3es._readmodels.s3 import S3ReadModelStore
from s3es._readmodels.sqlite import SQLiteReadModelStore
from s3es._storage.keys import StreamName
from s3es._storage.metering import measure_requests
from s3es.errors import InvalidConfiguration, LeaseHeld, ObjectStoreError, ReadModelStoreError

#: Threads reading the streams' versions for ``status --lag``.
_LAG_CONCURRENCY = 8
#: The schemes of a PostgreSQL ``--store``.
_POSTGRES = ("postgresql://", "postgres://")
#: Failures of S3 or of the store: not a reaction's, so ``retry`` does not report them as one.
_STORE_FAILURES = (ObjectStoreError, ReadModelStoreError)


# --store --------------------------------------------------------------------------------------


@attrs.frozen
class StoreSpec:
    """A read-model store named on the command line: ``s3``, ``sqlite:PATH`` or a URL."""

    #: "s3", "sqlite" or "postgres".
    kind: str
    #: The SQLite file, or the PostgreSQL URL; "" for s3.
    location: str = ""


def store_spec(value: str) -> StoreSpec:
    """``value`` read as a ``--store``; argparse's error, naming what is accepted, otherwise."""
    if value == "s3":
        return StoreSpec("s3")
    if value.startswith("sqlite:"):
        path = value.removeprefix("sqlite:")
        if not path:
            message = "sqlite: needs the database file, as sqlite:/var/lib/app/read-models.db"
            raise argparse.ArgumentTypeError(message)
        return StoreSpec("sqlite", path)
    if value.startswith(_POSTGRES):
        return StoreSpec("postgres", value)
    # A mistyped URL may hold a password: only what comes before its "://" is repeated.
    shown = repr(value) if "://" not in value else f"{value.partition('://')[0]!r}://..."
    message = f"must be s3, sqlite:PATH or a postgresql://... URL, not {shown}"
    raise argparse.ArgumentTypeError(message)


@contextlib.contextmanager
def open_store(invocation: Invocation) -> Iterator[ReadModelStore]:
    """The read-model store ``--store`` names (closed after the block)."""
    spec: StoreSpec = invocation.arguments.store or StoreSpec("s3")
    if spec.kind == "s3":
        yield S3ReadModelStore(invocation.objects, invocation.arguments.prefix)
        return
    store: SQLiteReadModelStore | PostgresReadModelStore
    if spec.kind == "sqlite":
        store = SQLiteReadModelStore(spec.location)
    else:
        try:
            store = PostgresReadModelStore(spec.location)
        except ImportError as error:
            invocation.usage_error(f"--store postgresql://...: {error}")
        except InvalidConfiguration as error:
            invocation.usage_error(f"--store: {error}")
    try:
        yield store
    finally:
        store.close()


# --projection, --reactor: a class, or a factory ---------------------------------------------


def load_consumer(spec: str, option: str, kinds: Sequence[type[Any]], what: str) -> Any:
    """The consumer ``spec`` (``module:name``) names, made: an instance of one of ``kinds``.

    ``name`` is a class of one of ``kinds`` that takes no arguments, or any callable that
    takes none and returns an instance of one of them (a factory, for a consumer that needs
    arguments: ``def fulfilment(): return Fulfilment(os.environ["WAREHOUSE_ID"])``).
    ``what`` names the consumer in messages ("reactor", "projection").

    Raises ValueError, in one line, if the module does not import, ``name`` is neither, a
    class needs arguments, or the factory raises or returns something else.
    """
    module_name, found = _import(spec, option, "Class")
    name = spec.partition(":")[2]
    if isinstance(found, type) and issubclass(found, tuple(kinds)):
        try:
            inspect.signature(found).bind()
        except TypeError as error:
            raise ValueError(
                f"{option} {spec!r}: {found.__qualname__}() needs arguments ({error}): name a "
                f"factory instead, module:callable returning the {what}"
            ) from error
        except ValueError:
            pass  # no signature to inspect (a builtin's): try it
    elif isinstance(found, type) or not callable(found):
        nor = "".join(f", nor {kind.__name__}" for kind in kinds[1:])
        raise ValueError(  # noqa: TRY004 - a wrong command line: a usage error
            f"{option} {spec!r}: {module_name} has no {kinds[0].__name__} {name!r}{nor}, nor a "
            "factory of one"
        )
    try:
        made = found()
    except Exception as error:
        raise ValueError(
            f"{option} {spec!r}: calling it raised {type(error).__name__}: {one_line(error)}"
        ) from error
    if not isinstance(made, tuple(kinds)):
        expected = " or ".join(kind.__name__ for kind in kinds)
        raise ValueError(f"{option} {spec!r} returned {made!r}, not a {expected}")  # noqa: TRY004
    return made


# Arguments ------------------------------------------------------------------------------------


def _positive(value: str) -> int:
    number = _int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, not {value!r}")
    return number


def _shard_number(value: str) -> int:
    number = _int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be an int >= 0, not {value!r}")
    return number


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int, not {value!r}") from None


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, not {value!r}")
    return seconds


def consumer_arguments(parser: argparse.ArgumentParser, *, kind: str) -> None:
    """The options of a consumer's shards, store, feed and loop (``kind``: what it runs)."""
    parser.add_argument(
        "--store",
        type=store_spec,
        metavar="STORE",
        help=f"where the {kind}'s positions and shard states live: s3 (the default: beside "
        "the event store, under its bucket and prefix), sqlite:PATH, or a postgresql:// URL",
    )
    parser.add_argument(
        "--shards",
        type=_positive,
        metavar="N",
        help=f"how many shards the {kind} runs as: the number every process of it runs with "
        "(default 1)",
    )
    parser.add_argument(
        "--shard",
        type=_shard_number,
        action="append",
        metavar="I",
        help="a shard this process runs or shows, from 0 to N-1; repeatable (default: all)",
    )
    parser.add_argument(
        "--owner",
        metavar="NAME",
        help="the name its leases carry (default: host:pid:random; a pod's name reads well)",
    )
    parser.add_argument(
        "--interval",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="run: the time between passes (default 1)",
    )
    parser.add_argument(
        "--lag",
        action="store_true",
        help="status: count, per shard, the streams and versions behind their positions (a "
        "scan: 1 LIST per 1,000 streams, 1 LIST per stream, and the positions' reads: 1 GET "
        "per stream on the s3 store)",
    )


def shards_option(invocation: Invocation) -> Shards:
    """``--shards`` and ``--shard``: the shards this process runs; a usage error if wrong."""
    arguments = invocation.arguments
    count: int = arguments.shards or 1
    chosen: list[int] = arguments.shard or list(range(count))
    wrong = [number for number in chosen if number >= count]
    if wrong:
        invocation.usage_error(
            f"--shard {wrong[0]} is not a shard of --shards {count} (0 to {count - 1})"
        )
    if len(set(chosen)) != len(chosen):
        invocation.usage_error(f"--shard names a shard twice: {chosen}")
    return Shards(count, sorted(chosen))


def lease_option(invocation: Invocation) -> LeaseOptions:
    """``--owner``: the leases a consumer takes (``s3es projection`` and ``s3es reactor``)."""
    try:
        return LeaseOptions(owner=invocation.arguments.owner)
    except InvalidConfiguration as error:
        invocation.usage_error(f"--owner: {error}")


# Status ---------------------------------------------------------------------------------------


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _span(seconds: float) -> str:
    """``0.4s``, ``42s``, ``3m05s``, ``2h10m``, ``3d04h``."""
    seconds = max(seconds, 0.0)
    if seconds < 10:  # noqa: PLR2004 - tenths matter below ten seconds
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    if not minutes:
        return f"{rest}s"
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes}m{rest:02d}s"
    days, hours = divmod(hours, 24)
    return f"{hours}h{minutes:02d}m" if not days else f"{days}d{hours:02d}h"


def _lease_text(lease: Lease | None, now: float) -> str:
    if lease is None:
        return "lease never taken"
    if not lease.expires_at:
        return f"lease released by {lease.owner!r} (epoch {lease.epoch})"
    if lease.expires_at <= now:
        return (
            f"lease of {lease.owner!r} (epoch {lease.epoch}) EXPIRED "
            f"{_span(now - lease.expires_at)} ago: no process runs it"
        )
    return (
        f"lease held by {lease.owner!r}, epoch {lease.epoch}, until "
        f"{_when(lease.expires_at)} (in {_span(lease.expires_at - now)})"
    )


def _state_text(label: str, generation: Generation, state: ShardState | None, now: float) -> str:
    where = f"{label} generation {generation.number}"
    if state is None:
        return f"{where}: no state (never ran)"
    parts = [f"epoch {state.epoch}", "scanned" if state.complete else "NOT scanned yet"]
    for stream_type, cursor in sorted(state.cursors.items()):
        at = cursor / 1000
        parts.append(f"feed {stream_type} up to {_when(at)} ({_span(now - at)} ago)")
    return f"{where}: {', '.join(parts)}"


def _generations_line(record: Generations) -> str:
    def text(generation: Generation | None) -> str:
        return "none" if generation is None else f"{generation.number} (SCHEMA {generation.schema})"

    return f"generations: live {text(record.live)}, building {text(record.building)}"


@attrs.frozen
class _Lag:
    """The streams of one shard, and how many are behind their positions, by how much."""

    streams: int = 0
    behind: int = 0
    versions: int = 0

    def __str__(self) -> str:
        if not self.behind:
            return f"lag: none ({plural(self.streams, 'stream')} up to date)"
        return (
            f"lag: {self.behind:,} of {plural(self.streams, 'stream')} behind, by "
            f"{plural(self.versions, 'version')}"
        )


def _lag(
    consumer: Consumer[Any], stream_types: Sequence[str], generation: Generation | None
) -> dict[int, _Lag]:
    """Per shard of ``consumer``, its streams and those behind their positions in ``generation``.

    A scan: one LIST per 1,000 streams of each type, one LIST per stream of the shards (its
    latest version), and the positions' reads. Versions, not events: an append may hold
    several events.
    """
    mine = set(consumer.shard_ids)
    streams = [
        stream
        for stream_type in stream_types
        for stream in consumer.event_store.streams(stream_type)
        if shard_of(stream, consumer.shards) in mine
    ]

    def version(stream: StreamName) -> int:
        return consumer.event_store.version(stream)

    with ThreadPoolExecutor(_LAG_CONCURRENCY, "s3es-lag") as pool:
        futures = [pool.submit(contextvars.copy_context().run, version, s) for s in streams]
        versions = [future.result() for future in futures]
    names = [str(stream) for stream in streams]
    positions = {} if generation is None else consumer.store.positions(generation, names)
    lags = dict.fromkeys(consumer.shard_ids, _Lag())
    for stream, name, latest in zip(streams, names, versions, strict=True):
        shard = shard_of(stream, consumer.shards)
        behind = max(latest - positions.get(name, 0), 0)
        lag = lags[shard]
        lags[shard] = _Lag(lag.streams + 1, lag.behind + bool(behind), lag.versions + behind)
    return lags


def status_lines(
    consumer: Consumer[Any],
    sources: Sequence[type[Aggregate[Any, Any, Any]]],
    *,
    lag: bool,
) -> list[str]:
    """The generations, then a line per shard: lease, state per generation, feed cursors, lag."""
    now = datetime.now(UTC).timestamp()
    record = consumer.store.generations(consumer.name)
    lines = [_generations_line(record)]
    leases = consumer.leases()
    generations = [
        (label, generation)
        for label, generation in (("live", record.live), ("building", record.building))
        if generation is not None
    ]
    lags: dict[int, _Lag] = {}
    if lag:
        stream_types = [source.STREAM_TYPE for source in sources]
        lags = _lag(consumer, stream_types, record.live or record.building)
    seen = False
    for number in consumer.shard_ids:
        lease = leases[number]
        parts = [_lease_text(lease, now)]
        for label, generation in generations:
            state = consumer.store.shard_state(generation, number, consumer.shards)
            seen = seen or state is not None
            parts.append(_state_text(label, generation, state, now))
        if not generations:
            parts.append("no generation yet")
        if number in lags:
            parts.append(str(lags[number]))
        seen = seen or lease is not None
        lines.append(f"shard {number} of {consumer.shards}: {'; '.join(parts)}")
    if not seen:
        lines.append(
            f"no shard of {consumer.shards} has a lease or a state: never run, or run with "
            "another --shards?"
        )
    return lines


# Passes ---------------------------------------------------------------------------------------


def _shard_pass_text(shard_pass: ShardPass, shards: int) -> str:
    scan = "a full scan" if shard_pass.full_scan else "the change feed"
    switched = ", now live" if shard_pass.switched else ""
    return (
        f"shard {shard_pass.shard} of {shards}: {scan}, {plural(shard_pass.events, 'event')} "
        f"of {plural(shard_pass.streams, 'stream')}, {plural(shard_pass.commits, 'commit')}, "
        f"{plural(shard_pass.documents, 'document')} written, generation "
        f"{shard_pass.generation.number}{switched}"
    )


def _reactions_text(run: ReactorPass) -> str:
    text = (
        f"{plural(run.commands, 'command')} sent ({run.duplicates:,} already stored), "
        f"{plural(len(run.parked), 'event')} parked"
    )
    return text + (f": {', '.join(run.parked)}" if run.parked else "")


def _parked_text(run: DocumentPass) -> str:
    ids = ", ".join(dict.fromkeys(record.event_id for record in run.parked))
    return f"{plural(len(run.parked), 'document')} parked: {ids}"


def pass_lines(run: DocumentPass | ReactorPass, shards: int) -> list[str]:
    """A line per shard a pass ran, and per shard it left to another process or lost."""
    lines = [_shard_pass_text(p, shards) for p in run.passes]
    if isinstance(run, ReactorPass) and run.passes:
        lines[-1] += f"; {_reactions_text(run)}"
    if isinstance(run, DocumentPass) and run.passes and run.parked:
        lines[-1] += f"; {_parked_text(run)}"
    lines += [
        f"shard {n} of {shards}: held by another process, left to it" for n in run.held_elsewhere
    ]
    lines += [
        f"shard {n} of {shards}: fenced by a newer epoch during the pass; its work is not kept"
        for n in run.fenced
    ]
    return lines


Pass = DocumentPass | ReactorPass


def catch_up_each(
    invocation: Invocation,
    make: Callable[[Shards], DocumentProjector[Any] | ReactorRunner],
    shards: Shards,
    *,
    rebuild: bool,
) -> int:
    """One pass of each shard in turn, under its own lease, taken then released.

    Prints each shard's pass and its requests, a line on stderr for a shard another process
    holds (exit status 1: its pass did not run here), then the requests of them all.
    """
    action = invocation.arguments.action
    failed = 0
    begun = False
    with measure_requests() as meter:
        for number in shards.chosen:
            consumer = make(Shards(shards.count, [number]))
            bar = ProgressBar(f"{action} shard {number}", out=invocation.err)
            try:
                with measure_requests() as shard_meter:
                    if rebuild and not begun and isinstance(consumer, DocumentProjector):
                        # Starts the build once it holds the shard (LeaseHeld: nothing begun,
                        # the next shard starts it); the later shards' scans fill it.
                        run: Pass = consumer.rebuild(progress=bar)
                        begun = True
                    else:
                        # Asked for the feed, read the feed: a process's first pass would scan.
                        scan = True if rebuild else (False if consumer.feed else None)
                        run = consumer.catch_up(full_scan=scan, progress=bar)
            except LeaseHeld as held:
                failed += 1
                bar.clear()
                invocation.problem(f"shard {number} of {consumer.shards}: {described(held)}")
                continue
            finally:
                bar.close()
                consumer.release(quietly=True)
            lines = pass_lines(run, consumer.shards)
            failed += len(run.fenced)
            invocation.print(*lines[:-1], f"{lines[-1]}; {shard_meter.counts}")
    invocation.requests(meter.counts)
    return PROBLEM if failed else 0


@contextlib.contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[list[str]]:
    """Let SIGTERM and SIGINT set ``stop``; yield the names of those received.

    A second signal raises KeyboardInterrupt: stop now. Only in the main thread, where Python
    runs signal handlers; elsewhere nothing is installed.
    """
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handle(number: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # asked twice: stop now (the leases are still released)
        received.append(signal.Signals(number).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@attrs.define
class _Tally:
    passes: int = 0
    events: int = 0
    commits: int = 0


def run_until_stopped(
    invocation: Invocation,
    runner: Any,
    describe: Callable[[Any], list[str]],
    *,
    title: str,
) -> int:
    """Run ``runner.run`` (a consumer's or a Projector's) until SIGTERM or Ctrl-C.

    Prints ``title`` first, then the lines ``describe`` makes of each pass that did something
    (flushed: a journal shows them as they come), then what the run did and its requests.
    """
    stop = threading.Event()
    tally = _Tally()

    def on_pass(run: Any) -> None:
        tally.passes += 1
        tally.events += run.events
        tally.commits += sum(getattr(p, "commits", 0) for p in getattr(run, "passes", [run]))
        lines = describe(run)
        if lines:
            invocation.print(*lines)
            invocation.out.flush()

    invocation.print(f"{title}; SIGTERM or Ctrl-C stops it after the pass under way")
    invocation.out.flush()
    with measure_requests() as meter, _stopped_by_signals(stop) as received:
        runner.run(stop, interval=invocation.arguments.interval, on_pass=on_pass)
    by = f" by {received[0]}" if received else ""
    invocation.print(
        f"stopped{by} after {plural(tally.passes, 'pass')}: {plural(tally.events, 'event')}, "
        f"{plural(tally.commits, 'commit')}; leases released"
    )
    invocation.requests(meter.counts)
    return 0


def _busy_lines(run: Pass, shards: int) -> list[str]:
    """What ``run`` of a process's loop did, in one line; none if it did nothing."""
    busy = [p for p in run.passes if p.events or p.commits or p.switched]
    reacted = run.parked or (isinstance(run, ReactorPass) and run.commands)
    if not (busy or run.fenced or reacted):
        return []
    parts = [_shard_pass_text(p, shards) for p in busy]
    parts += [f"shard {n} fenced by a newer epoch" for n in run.fenced]
    if isinstance(run, ReactorPass):
        parts.append(_reactions_text(run))
    elif run.parked:
        parts.append(_parked_text(run))
    return [f"{'; '.join(parts)}; {run.requests}"]


def run_consumer(
    invocation: Invocation, consumer: DocumentProjector[Any] | ReactorRunner, kind: str
) -> int:
    ids = consumer.shard_ids
    how = "the change feed" if consumer.feed else "full scans"
    title = (
        f"{kind} {consumer.name}: running {'shard' if len(ids) == 1 else 'shards'} "
        f"{', '.join(map(str, ids))} of {consumer.shards} as {consumer.owner!r}, reading "
        f"{how}, a pass every {invocation.arguments.interval:g}s"
    )
    return run_until_stopped(
        invocation, consumer, lambda run: _busy_lines(run, consumer.shards), title=title
    )


# s3es projection (a DocumentProjection) -----------------------------------------------------


def run_document_projection(invocation: Invocation, projection: DocumentProjection[Any]) -> int:
    """``s3es projection ACTION`` for a document projection."""
    arguments = invocation.arguments
    if arguments.force:
        invocation.usage_error(
            "--force is for a Projection: a DocumentProjection's rebuild fills a new generation "
            "beside the live one, which the running projectors join"
        )
    check_settling(invocation, "projection")
    shards, lease = shards_option(invocation), lease_option(invocation)
    with open_store(invocation) as store:

        def make(chosen: Shards) -> DocumentProjector[Any]:
            return DocumentProjector(
                invocation.event_store,
                projection,
                store,
                shards=chosen,
                feed=arguments.feed,
                lease=lease,
            )

        if arguments.action == "status":
            with measure_requests() as meter:
                projector = make(shards)
                invocation.print(
                    f"projection {projector.name} ({type(projection).__qualname__}, SCHEMA "
                    f"{projection.SCHEMA}) in {store!r}, {plural(shards.count, 'shard')}",
                    *status_lines(projector, projection.SOURCES, lag=arguments.lag),
                    *parked_count(projector, noun="document", command="projection"),
                )
            invocation.requests(meter.counts)
            return 0
        if arguments.action in {"parked", "retry", "skip"}:
            with measure_requests() as meter:
                projector = make(shards)
                if arguments.action == "parked":
                    lines, failed = parked_table(
                        projector, projector.parked, _PARKED_DOCUMENTS, every=arguments.all
                    )
                else:
                    lines, failed = _settle_document(invocation, projector, arguments.event_id)
            invocation.print(*lines)
            invocation.requests(meter.counts)
            return PROBLEM if failed else 0
        if arguments.action == "run":
            return run_consumer(invocation, make(shards), "projection")
        return catch_up_each(invocation, make, shards, rebuild=arguments.action == "rebuild")


# Parked documents -----------------------------------------------------------------------------


def has_run(consumer: Consumer[Any]) -> bool:
    """Whether ``consumer`` has a generation, live or building (one never run parked nothing)."""
    record = consumer.store.generations(consumer.name)
    return record.live is not None or record.building is not None


def parked_count(
    consumer: DocumentProjector[Any] | ReactorRunner, *, noun: str, command: str
) -> list[str]:
    """The status line of what ``consumer`` parked (none for one never run).

    Args:
        consumer: The projector or reactor runner.
        noun: What it parks: ``document``, ``event``.
        command: The ``s3es`` command that lists them: ``projection``, ``reactor``.

    Returns:
        The line, or no line.
    """
    if not has_run(consumer):
        return []
    records = consumer.parked(skipped=True)
    parked = sum(record.status == "parked" for record in records)
    see = f": see `s3es {command} parked`" if parked else ""
    return [f"parked: {plural(parked, noun)} ({len(records) - parked:,} skipped){see}"]


class _ParkedRecord(Protocol):
    """What :func:`parked_table` reads of a parked record, beside its own columns."""

    @property
    def status(self) -> str: ...
    @property
    def error(self) -> str: ...


_R = TypeVar("_R", bound=_ParkedRecord)
_R_co = TypeVar("_R_co", bound=_ParkedRecord, covariant=True)


class _ParkedOf(Protocol[_R_co]):
    """A consumer's ``parked``: its parked records (with ``skipped``, those skipped too)."""

    def __call__(self, *, skipped: bool = False) -> Sequence[_R_co]: ...


@attrs.frozen
class ParkedColumns(Generic[_R]):
    """How ``s3es projection|reactor parked`` lists a consumer's parked records.

    Attributes:
        kind: The consumer, as its messages name it: ``projection``, ``reactor``.
        noun: What it parks: ``document``, ``event``.
        columns: The columns of a record before its status and error.
        cells: A record's cells in ``columns``.
    """

    kind: str
    noun: str
    columns: tuple[str, ...]
    cells: Callable[[_R], list[str]]


def parked_table(
    consumer: Consumer[Any], parked: _ParkedOf[_R], listing: ParkedColumns[_R], *, every: bool
) -> tuple[list[str], bool]:
    """The table of what ``consumer`` parked (``s3es projection|reactor parked``).

    Args:
        consumer: The projector or reactor runner.
        parked: Its ``parked``.
        listing: How to list its records.
        every: The skipped records too, with a STATUS column.

    Returns:
        The lines to print, and False (listing never fails).
    """
    name = f"{listing.kind} {consumer.name}"
    if not has_run(consumer):
        return [f"{name} has not run yet: nothing is parked"], False
    records = parked(skipped=every)
    if not records:
        return [f"{name}: no {listing.noun} is parked"], False
    header = [*listing.columns, *(["STATUS", "ERROR"] if every else ["ERROR"])]
    rows = []
    for record in records:
        error = " ".join(record.error.split())  # one line, whatever the exception said
        rows.append([*listing.cells(record), *([record.status, error] if every else [error])])
    return table([header, *rows]), False


def _parked_document(record: ParkedDocument) -> list[str]:
    return [
        record.event_id,
        repr(record.key)[1:-1],  # a key with spaces or control characters stays one cell
        record.stream,
        str(record.version),
        record.type,
        record.parked_at.isoformat(timespec="seconds"),
    ]


_PARKED_DOCUMENTS = ParkedColumns(
    kind="projection",
    noun="document",
    columns=("EVENT_ID", "KEY", "STREAM", "VERSION", "TYPE", "PARKED_AT"),
    cells=_parked_document,
)


def settling_arguments(parser: argparse.ArgumentParser, *, noun: str) -> None:
    """The arguments of ``parked``, ``retry`` and ``skip`` (``noun``: what is parked).

    :func:`check_settling` refuses those that do not fit the action.
    """
    parser.add_argument(
        "event_id", nargs="?", metavar="EVENT_ID", help="retry, skip: the parked event"
    )
    parser.add_argument(
        "--all", action="store_true", help=f"parked: the skipped {noun} too, with their status"
    )
    parser.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="skip: do not ask for confirmation (needed when stdin is not a terminal)",
    )


def check_settling(invocation: Invocation, consumer: str) -> None:
    """Refuse the action's arguments that do not fit, with a usage error.

    ``retry`` and ``skip`` need an EVENT_ID and no other action takes one; a ``skip`` off a
    terminal needs ``--yes``, since it writes to the ``consumer``'s store.
    """
    arguments = invocation.arguments
    settling = arguments.action in {"retry", "skip"}
    if settling and not arguments.event_id:
        invocation.usage_error(f"{arguments.action} needs the EVENT_ID of a parked event")
    if not settling and arguments.event_id:
        invocation.usage_error(f"{arguments.action} takes no EVENT_ID")
    if arguments.action == "skip" and not arguments.yes and not invocation.stdin.isatty():
        invocation.usage_error(
            f"skip writes to the {consumer}'s store: confirm with --yes (stdin is not a "
            "terminal to ask on)"
        )


def confirmed(invocation: Invocation, question: str) -> bool:
    """Ask ``question`` on stderr, read the answer from stdin: only ``y`` or ``yes`` goes on."""
    invocation.err.write(f"{question} [y/N] ")
    invocation.err.flush()
    return invocation.stdin.readline().strip().lower() in {"y", "yes"}


def _settle_document(
    invocation: Invocation, projector: DocumentProjector[Any], event_id: str
) -> tuple[list[str], bool]:
    """Retry or skip parked event ``event_id``: the lines to print, and whether it failed."""
    action = invocation.arguments.action
    records = (
        [r for r in projector.parked() if r.event_id == event_id] if has_run(projector) else []
    )
    if not records:
        raise InvalidConfiguration(f"projection {projector.name}: no event {event_id!r} is parked")
    record = records[0]
    keys = ", ".join(repr(r.key) for r in records)
    what = f"event {event_id} ({record.type}, {record.stream} version {record.version})"
    if action == "skip":
        question = (
            f"skip {what} for document {keys}: it will not be applied to it (it is kept, "
            "marked skipped)?"
        )
        if not invocation.arguments.yes and not confirmed(invocation, question):
            invocation.problem("not confirmed; nothing written")
            return [], True
        run = projector.skip(event_id)
    else:
        run = projector.retry(event_id)
    again = [r for r in run.parked if r.event_id == event_id]
    if again:
        invocation.problem(f"{what} failed again, and stays parked: {again[0].error}")
        return [], True
    applied = f"{plural(run.events, 'event')} of {record.stream} applied"
    if run.parked:
        applied += f", then {_parked_text(run)}"
    if action == "skip":
        return [f"skipped {what} for document {keys}, {applied}; kept as skipped"], False
    return [f"retried {what}: {applied}; no longer parked"], False
