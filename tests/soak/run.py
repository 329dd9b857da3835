"""Run soak schedules through the fault proxy, and check what must hold after each one."""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
import boto3
from botocore.config import Config
from botocore.retries.standard import ExponentialBackoff

from s3es import (
    Backoff,
    CommandHandler,
    CorruptChunk,
    EventStore,
    ObjectStoreError,
    Projector,
    Repository,
    RetriesExhausted,
    S3esError,
    S3ObjectStore,
    StreamDeleted,
)
from s3es.errors import AppendOutcomeUnknown, LeaseHeld
from s3es.eventstore import StreamKeys, StreamName
from s3es.ops import compact, delete, erase, repair, verify_stream
from s3es.projections import Batching, DocumentProjector, DocumentReader, LeaseOptions
from s3es.readmodels import S3ReadModelStore
from s3es.storage import ForwardingObjectStore, ObjectStore
from s3es.testing import EmbeddedS3, Fault, FaultProxy, Rule, Seen
from tests.aggregates import FAST_RETRY, Counter, CounterState, Increment
from tests.consumers_cli_fixtures import CounterIds, Ids
from tests.projections import AppliedIds
from tests.soak.plan import STREAM_TYPE, WRITERS, Kind, Plan, Step

ROOT = Path(__file__).resolve().parents[2]
#: The client's read timeout: what a DELAY costs a writer.
READ_TIMEOUT = 0.5
#: S3ObjectStore's own pauses between 409/503 retries: a millisecond or so.
QUICK = Backoff(initial=0.001, maximum=0.004)
#: The longest a writer process may take to start and send its PUT.
KILL_WAIT = 60.0

_runs = itertools.count()


class FeedAppliedIds(AppliedIds):
    """The soak's projection, run by the change-feed projector under a name of its own."""

    NAME: ClassVar[str] = "applied-ids-feed"


@contextlib.contextmanager
def quick_botocore_backoff() -> Iterator[None]:
    """Scale botocore's retry sleeps (up to 1 s after a 503 SlowDown) down to milliseconds."""
    config: dict[str, float] = vars(ExponentialBackoff)["_DEFAULT_BACKOFF_CONFIG"]
    saved = dict(config)
    config.update(throttling_base_scale=0.002, non_throttling_base_scale=0.002)
    try:
        yield
    finally:
        config.clear()
        config.update(saved)


@attrs.frozen
class Environment:
    """What the schedules share: the embedded S3 server, the proxy in front of it, a bucket."""

    s3: EmbeddedS3
    proxy: FaultProxy
    bucket: str
    #: The bucket without the proxy: what the checks read.
    direct: S3ObjectStore
    session: boto3.Session

    @classmethod
    def make(cls, s3: EmbeddedS3, proxy: FaultProxy, bucket: str) -> Environment:
        """Create ``bucket`` on ``s3``; the proxy must be in front of ``s3``."""
        s3.create_bucket(bucket)
        session = boto3.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto accepts any
            region_name="us-east-1",
        )
        return cls(s3, proxy, bucket, s3.object_store(bucket), session)


@attrs.frozen
class Outcome:
    """What one step came to: a label for the table, when it ran, its result or error."""

    step: Step
    label: str
    started: float
    ended: float
    result: Any = None
    error: BaseException | None = None
    #: A killed writer's PUT, as the proxy that held its answer saw it.
    held: Seen | None = None
    #: A projector pass: the event ids of each stream in the model, and its checkpoints.
    model: tuple[dict[str, list[str]], dict[str, int]] | None = None


@attrs.frozen
class ReaderRead:
    """One whole read of the document model by a reader beside a rebuild: what it gave.

    ``known`` holds the keys the reader's earlier reads gave: a document never leaves the
    model unless its stream is deleted, so a read without one of them is short.
    """

    documents: dict[str, list[str]]
    known: frozenset[str]
    #: Keys of ``known`` that ``get`` answered None for, after the read.
    missed: tuple[str, ...] = ()


@attrs.define
class Totals:
    """What the schedules tried came to, for the table."""

    schedules: int = 0
    outcomes: collections.Counter[tuple[str, str]] = attrs.field(factory=collections.Counter)
    #: Requests faulted, by (operation, fault).
    faults: collections.Counter[tuple[str, str]] = attrs.field(factory=collections.Counter)
    #: Readers' reads, short reads, erasure rounds cut, repairs...
    counts: collections.Counter[str] = attrs.field(factory=collections.Counter)
    failures: list[str] = attrs.field(factory=list)

    def table(self) -> str:
        """The outcome counts by step kind, the checks' counts, the faults fired, as a table."""
        rows = [("step", "outcome", "count"), ("---", "---", "---:")]
        rows += [(kind, label, f"{n:,}") for (kind, label), n in sorted(self.outcomes.items())]
        rows += [("checked", name, f"{n:,}") for name, n in sorted(self.counts.items())]
        rows += [
            ("request faulted", f"{operation} {fault}", f"{n:,}")
            for (operation, fault), n in sorted(self.faults.items())
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        return "\n".join(
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            + " |"
            for row in rows
        )


class SoakFailure(AssertionError):  # noqa: N818 - reads as what happened
    """A schedule broke an invariant: the message names the seed, the plan and what broke."""


def _label(error: BaseException) -> str:
    return type(error).__name__


class Killed(BaseException):
    """The erasure's process dying between two fences: raised past every ``except Exception``."""


def _unchanged(event: Any) -> Any:
    """The soak's redaction: every event as it is (the amounts are what the checks add up)."""
    return event


@attrs.frozen
class _Append(Rule):
    """DELAY every PUT of a chunk 0 (an append) of ``stream``; ``first`` and ``times`` do not count.

    A killed writer's held PUT must be its append, and its first PUT under the stream is not
    always that: a load whose latest chunk has no usable snapshot (an erasure's fence above the
    lowest of its round) replays and stores a re-snapshot (chunk 1 of that version) first.
    Holding that one's answer killed the writer before it sent its append, and the checks took
    the re-snapshot's 200 for the append's. Of a writer's PUTs only its appends are chunks 0, and
    the process is killed at the first one held, so no second is hit.
    """

    keys: StreamKeys = attrs.field(kw_only=True, eq=False)
    stream: StreamName = attrs.field(kw_only=True)

    def hits(self, operation: str, key: str, counts: collections.Counter[tuple[str, str]]) -> bool:
        """Whether the request is a PUT of a chunk 0 of ``stream``."""
        return (
            operation == "PUT"
            and key.startswith(self.keys.stream_prefix(self.stream))
            and self.keys.parse(self.stream, key).number == 0
        )


class _CutRound(ForwardingObjectStore):
    """An erasure's store that cuts its second fence round short, as :data:`CUTS` says.

    The erasure's first chunk-0 PUT of the stream is its first fence: ``racer`` (a writer's
    command) runs before it, takes that version, and so the second round sends fences at the
    next two versions at once. The higher is passed on first; then the lower one's PUT fails
    ("fault": an ObjectStoreError, as a lost connection) or the process dies ("kill": Killed)
    instead of being sent, or is sent ("round").
    """

    def __init__(
        self,
        inner: ObjectStore,
        keys: StreamKeys,
        stream: StreamName,
        cut: str,
        racer: Callable[[], None],
    ) -> None:
        super().__init__(inner)
        self.keys, self.stream, self.cut, self.racer = keys, stream, cut, racer
        self.prefix = keys.stream_prefix(stream)
        self.first: int | None = None
        self.higher_sent = threading.Event()
        self.lock = threading.Lock()
        #: Whether the lower fence's PUT was cut (failed, or the process died before it).
        self.fired = False

    def put_if_absent(self, key: str, body: bytes) -> str:
        if not key.startswith(self.prefix) or self.keys.parse(self.stream, key).number != 0:
            return super().put_if_absent(key, body)  # the merged chunk, a feed entry
        version = self.keys.parse(self.stream, key).version
        with self.lock:
            first = self.first is None
            if first:
                self.first = version
        if first:
            self.racer()
            return super().put_if_absent(key, body)
        assert self.first is not None
        if version == self.first + 2:
            try:
                return super().put_if_absent(key, body)
            finally:
                self.higher_sent.set()
        if version == self.first + 1 and self.cut in {"fault", "kill"}:
            self.higher_sent.wait(timeout=KILL_WAIT)
            self.fired = True
            if self.cut == "kill":
                raise Killed
            raise ObjectStoreError("PUT", key, "connection reset (the soak's cut fence round)")
        return super().put_if_absent(key, body)


class _Schedule:
    """One schedule's clients: writers, maintenance and projectors through the proxy."""

    def __init__(self, env: Environment, plan: Plan) -> None:
        self.env = env
        self.plan = plan
        self.prefix = f"soak-{plan.seed}-{next(_runs)}"
        self.store = S3ObjectStore.connect(
            env.bucket,
            endpoint_url=env.proxy.endpoint_url,
            session=env.session,
            client_config=Config(read_timeout=READ_TIMEOUT, connect_timeout=2),
            backoff=QUICK,
        )
        self.events = EventStore(self.store, prefix=self.prefix, feed=True)
        # Each writer has its own handler, and so its own cache, as processes would.
        self.writers = [
            CommandHandler(Repository(self.events, Counter), FAST_RETRY) for _ in range(WRITERS)
        ]
        self.maintenance = Repository(self.events, Counter)
        self.scanner = Projector(
            self.events,
            AppliedIds,
            lease=LeaseOptions(owner="scanner"),
            batching=Batching(read_concurrency=4),
        )
        self.follower = Projector(
            self.events,
            FeedAppliedIds,
            lease=LeaseOptions(owner="follower"),
            feed=True,
            batching=Batching(read_concurrency=1),
        )
        self.documents = DocumentProjector(
            self.events,
            CounterIds,
            S3ReadModelStore(self.store, self.prefix),
            lease=LeaseOptions(owner="rebuilder"),
        )
        self.reader = DocumentReader(S3ReadModelStore(self.store, self.prefix), CounterIds)
        # A projector runs one pass at a time, as in a process of its own; lanes that both
        # project take turns on it (each projection has one projector: its lease is not raced).
        self.projecting = {
            id(projector): threading.Lock()
            for projector in (self.scanner, self.follower, self.documents)
        }
        self.stream_ids = plan.stream_ids()
        #: Outcomes of commands run inside another step (an erasure's racer), and the lock.
        self.extra: list[Outcome] = []
        self.lock = threading.Lock()
        #: Readers' whole reads, and the counts of reads that raised, by error.
        self.reads: list[ReaderRead] = []
        self.counts: collections.Counter[str] = collections.Counter()

    def run(self) -> tuple[list[Outcome], list[Seen]]:
        """Arm the proxy, run the lanes side by side, disarm; what each step came to."""
        outcomes: list[Outcome] = []
        lock = threading.Lock()

        def lane(steps: tuple[Step, ...]) -> None:
            for step in steps:
                outcome = self.step(step)
                with lock:
                    outcomes.append(outcome)

        self.env.proxy.arm(self.plan.rules_under(self.prefix))
        try:
            threads = [threading.Thread(target=lane, args=(steps,)) for steps in self.plan.lanes]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            seen = self.env.proxy.disarm()
        return outcomes + self.extra, seen

    def step(self, step: Step) -> Outcome:
        """Run one step; its outcome. Only a bug (an error s3es should not raise) is kept raw."""
        started = time.monotonic()
        stream_id = self.stream_ids[step.stream]
        done: Callable[..., Outcome] = lambda label, **more: Outcome(  # noqa: E731
            step, label, started, time.monotonic(), **more
        )
        try:
            if step.kind is Kind.KILL:
                return self.kill(step, started)
            return done(**self.act(step, stream_id))
        except (ObjectStoreError, RetriesExhausted, StreamDeleted, LeaseHeld) as error:
            return done(_label(error), error=error)
        except Exception as error:  # a bug: the checks report it with the schedule
            return done(f"UNEXPECTED {_label(error)}", error=error)

    def act(self, step: Step, stream_id: str) -> dict[str, Any]:
        """Run a step in this process: its outcome's label and result (and model)."""
        if step.kind is Kind.COMMAND:
            result = self.writers[step.writer].handle(
                stream_id, Increment(step.amount), metadata={"command": step.tag}
            )
            return {"label": "recovered" if result.recovered else "stored", "result": result}
        if step.kind is Kind.COMPACT:
            compaction = compact(self.maintenance, stream_id)
            return {"label": "merged" if compaction.key else "left as is", "result": compaction}
        if step.kind is Kind.DELETE:
            deletion = delete(self.maintenance, stream_id)
            return {"label": "deleted" if deletion.version else "no stream", "result": deletion}
        if step.kind is Kind.ERASE:
            return self.erase(step, stream_id)
        if step.kind is Kind.REBUILD:
            return self.rebuild()
        projector = self.scanner if step.kind is Kind.PROJECT else self.follower
        with self.projecting[id(projector)]:
            run = projector.catch_up(full_scan=None if step.kind is Kind.PROJECT else False)
        model = run.read_model
        ids = {stream: list(ids) for stream, ids in model.model.ids.items()}
        return {
            "label": "full scan" if run.full_scan else "feed pass",
            "result": run,
            "model": (ids, dict(model.checkpoints)),
        }

    def erase(self, step: Step, stream_id: str) -> dict[str, Any]:
        """Erase the stream; with a cut, a racer takes the first fence and round 2 is cut."""
        stream = StreamName(STREAM_TYPE, stream_id)
        racer_step = Step(Kind.COMMAND, step.stream, step.writer, step.amount, step.tag)

        def racer() -> None:
            if not step.cut:
                return
            outcome = self.step(racer_step)
            with self.lock:
                self.extra.append(outcome)

        cut = _CutRound(self.store, self.events.keys, stream, step.cut, racer)
        erasing = Repository(EventStore(cut, prefix=self.prefix, feed=True), Counter)
        try:
            erasure = erase(erasing, stream_id, _unchanged)
        except Killed:
            return {"label": "killed between fences"}
        except ObjectStoreError as error:
            if not cut.fired:
                raise
            return {"label": "fence PUT failed", "error": error}
        label = "erased" if erasure.key else "run again" if erasure.version else "no stream"
        if cut.first is not None and erasure.fence > cut.first:
            label += ", fenced in a later round"
        return {"label": label, "result": erasure}

    def rebuild(self) -> dict[str, Any]:
        """Rebuild the document projection while a reader reads it, whole, again and again."""
        stop = threading.Event()
        failures: list[BaseException] = []

        def read() -> None:
            known: frozenset[str] = frozenset()
            while True:
                last = stop.is_set()
                try:
                    documents = {key: list(doc.ids) for key, doc in self.reader.documents()}
                    missed = tuple(key for key in sorted(known) if self.reader.get(key) is None)
                except S3esError as error:  # GenerationChanged, or a faulted request
                    with self.lock:
                        self.counts[f"reader reads: {_label(error)}"] += 1
                except Exception as error:  # a bug: the checks report it
                    failures.append(error)
                    return
                else:
                    with self.lock:
                        self.reads.append(ReaderRead(documents, known, missed))
                    known |= documents.keys()
                if last:
                    return

        with self.projecting[id(self.documents)]:
            reader = threading.Thread(target=read)
            try:
                self.documents.catch_up()
                reader.start()
                run = self.documents.rebuild()
            finally:
                stop.set()
                if reader.is_alive():
                    reader.join()
        if failures:
            raise failures[0]
        return {"label": "rebuilt", "result": run}

    def kill(self, step: Step, started: float) -> Outcome:
        """A writer process whose append's PUT lands and whose answer is held, killed with
        SIGKILL (a re-snapshot its load stores first passes: see :class:`_Append`)."""
        stream_id = self.stream_ids[step.stream]
        stream = StreamName(STREAM_TYPE, stream_id)
        append = _Append(Fault.DELAY, "PUT", 0, keys=self.events.keys, stream=stream)
        with FaultProxy(self.env.s3.endpoint_url) as holder:
            holder.arm([append])
            process = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
                [
                    sys.executable,
                    "-m",
                    "tests.soak.writer",
                    holder.endpoint_url,
                    self.env.bucket,
                    self.prefix,
                    stream_id,
                    str(step.amount),
                    step.tag,
                ],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            held = None
            deadline = time.monotonic() + KILL_WAIT
            try:
                while held is None and process.poll() is None and time.monotonic() < deadline:
                    held = holder.wait_held(0.05)
            finally:
                if process.poll() is None:
                    process.send_signal(signal.SIGKILL)
                out, err = process.communicate(timeout=KILL_WAIT)
        ended = time.monotonic()
        if held is not None:
            label = "killed, PUT stored" if held.status == 200 else f"killed, PUT {held.status}"
            return Outcome(step, label, started, ended, held=held)
        if process.returncode == 0 and out:
            answer = json.loads(out)
            label = answer.get("error", "stored")
            return Outcome(step, f"process: {label}", started, ended, result=answer)
        detail = f"exit {process.returncode}: {err.decode(errors='replace')[-2000:]}"
        return Outcome(step, "UNEXPECTED writer process", started, ended, result=detail)


class _Checks:
    """The invariants after a schedule, read fault-free; each broken one is a problem line."""

    def __init__(self, schedule: _Schedule, outcomes: list[Outcome], seen: list[Seen]) -> None:
        self.schedule = schedule
        self.outcomes = outcomes
        self.problems: list[str] = []
        self.events = EventStore(schedule.env.direct, prefix=schedule.prefix)
        self.repository = Repository(self.events, Counter)
        self.late_put = any(s.late and s.operation == "PUT" for s in seen)
        #: Stream (str) -> its events' (command tag, event id, version), of live streams.
        self.live: dict[str, list[tuple[str, str, int]]] = {}
        #: Stream (str) -> its version (fences, which hold no event, count), of live streams.
        self.tops: dict[str, int] = {}
        self.deleted: dict[str, int] = {}
        self.counts: collections.Counter[str] = collections.Counter()

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def run(self) -> list[str]:
        for outcome in self.outcomes:
            if outcome.label.startswith("UNEXPECTED") or isinstance(outcome.error, CorruptChunk):
                self.problem(f"{outcome.step}: {outcome.label}: {outcome.error or outcome.result}")
        try:
            for index, stream_id in enumerate(self.schedule.stream_ids):
                mine = [o for o in self.outcomes if o.step.stream == index]
                try:
                    self.repository.load(stream_id)
                except StreamDeleted as gone:
                    self.check_deleted(stream_id, gone.version, mine)
                else:
                    self.check_repaired(stream_id)
                    self.check_live(stream_id, mine)
            self.check_projections()
            self.check_readers()
            self.check_proceeds()
        except Exception as error:  # a read that should work did not: that is what broke
            self.problem(f"checking: {_label(error)}: {error}")
        return self.problems

    def check_repaired(self, stream_id: str) -> None:
        """The stream verifies clean; or only fence gaps are wrong, it reads anyway (to below
        the gap), and ``repair`` mends it so that it verifies clean."""
        stream = self.repository.stream(stream_id)
        report = verify_stream(self.events, stream, aggregate=Counter)
        gaps = [p for p in report.problems if "s3es repair" in p.reason]
        for other in report.problems:
            if other not in gaps:
                self.problem(f"verify: {other}")
        if not gaps:
            return
        self.counts["fence gaps found by verify"] += len(gaps)
        loaded = self.repository.load(stream_id)
        if loaded != self.repository.replay(stream_id):
            self.problem(f"{stream}: with a fence gap, load {loaded} differs from a replay")
        repaired = repair(self.repository, stream_id)
        self.counts["streams repaired"] += 1
        self.counts["fences stored by repair"] += len(repaired.plugged)
        after = verify_stream(self.events, stream, aggregate=Counter)
        if not after.ok:
            self.problem(f"{stream}: after repair {repaired}: {list(map(str, after.problems))}")

    def check_live(self, stream_id: str, mine: list[Outcome]) -> None:
        """Gapless (versions with no event are fences), load = replay, each command once as
        acknowledged, nothing failed stored."""
        stream = self.repository.stream(stream_id)
        records = list(self.repository.read(stream_id))
        stored = [(r.metadata["command"], r.id, r.version) for r in records]
        self.live[str(stream)] = stored
        loaded, replayed = self.repository.load(stream_id), self.repository.replay(stream_id)
        top = self.tops[str(stream)] = loaded.version
        versions = [version for _, _, version in stored]
        if versions != sorted(set(versions)) or not set(versions) <= set(range(1, top + 1)):
            self.problem(f"{stream}: event versions {versions} do not rise within 1..{top}")
        firsts = sorted(
            where.version
            for key in self.schedule.env.direct.list_keys(self.events.keys.stream_prefix(stream))
            if (where := self.events.keys.parse(stream, key)).number == 0
        )
        if firsts != list(range(1, top + 1)):
            self.problem(f"{stream}: chunk 0 of versions {firsts}, not of 1..{top}")
        for version in sorted(set(range(1, top + 1)) - set(versions)):
            key = self.events.keys.chunk_key(stream, version)
            found = self.events.read(self.events.keys.parse(stream, key))
            if found is None or not (found[0].erased or (found[0].rebased and not found[0].events)):
                self.problem(f"{stream}: version {version} has no event and is not a fence")
        if (loaded.version, loaded.state) != (replayed.version, replayed.state):
            self.problem(f"{stream}: load {loaded} differs from replay {replayed}")
        tags = collections.Counter(tag for tag, _, _ in stored)
        if doubled := [tag for tag, n in tags.items() if n > 1]:
            self.problem(f"{stream}: commands stored more than once: {doubled}")
        amounts = {o.step.tag: o.step.amount for o in mine if o.step.tag}
        if phantoms := set(tags) - set(amounts):
            self.problem(f"{stream}: events of no command of this stream: {sorted(phantoms)}")
        total = sum(amounts.get(tag, 0) for tag in tags)
        if replayed.state != CounterState(total=total, events=len(stored)):
            self.problem(f"{stream}: state {replayed.state}, not the fold of {sorted(tags)}")
        by_tag = {tag: (event_id, version) for tag, event_id, version in stored}
        for outcome in mine:
            self.check_command(stream, outcome, by_tag)

    def check_command(
        self, stream: StreamName, outcome: Outcome, by_tag: dict[str, tuple[str, int]]
    ) -> None:
        step, error = outcome.step, outcome.error
        if step.kind is Kind.KILL:
            self.check_killed(stream, outcome, by_tag)
            return
        if step.kind is not Kind.COMMAND:
            return
        if outcome.result is not None:
            (event,) = outcome.result.recorded
            if by_tag.get(step.tag) != (event.id, outcome.result.version):
                self.problem(
                    f"{step}: acknowledged as {event.id} at version {outcome.result.version}, "
                    f"stored as {by_tag.get(step.tag)}"
                )
        elif isinstance(error, StreamDeleted):
            self.problem(f"{step}: StreamDeleted, but {stream} is not deleted")
        elif isinstance(error, AppendOutcomeUnknown) or (
            isinstance(error, ObjectStoreError) and self.late_put
        ):
            return  # unknown; or a PUT answered after its client gave up may have landed
        elif error is not None and step.tag in by_tag:
            self.problem(f"{step}: failed ({_label(error)}: {error}) but is stored")

    def check_killed(
        self, stream: StreamName, outcome: Outcome, by_tag: dict[str, tuple[str, int]]
    ) -> None:
        """A killed writer's chunk: stored once with its append id if its PUT said 200, else not."""
        step, held = outcome.step, outcome.held
        if held is None:
            if isinstance(outcome.result, dict) and outcome.result.get("error") == "StreamDeleted":
                self.problem(f"{step}: the writer process met StreamDeleted on a live stream")
            return
        if self.events.keys.parse(stream, held.key).number != 0:
            self.problem(f"{step}: the PUT held was {held.key!r}, not an append (a chunk 0)")
            return
        if held.status != 200:
            if step.tag in by_tag:
                self.problem(f"{step}: its PUT was refused ({held.status}) but it is stored")
            return
        if step.tag not in by_tag:
            self.problem(f"{step}: its PUT was stored (200) but its event is not in {stream}")
            return
        found = self.events.read(self.events.keys.parse(stream, held.key))
        if found is None:
            self.problem(f"{step}: its chunk {held.key!r} is gone")
        elif not found[0].append_id.startswith(f"{step.tag}."):
            self.problem(f"{step}: {held.key!r} holds append {found[0].append_id}, not its own")

    def check_deleted(self, stream_id: str, tombstone: int, mine: list[Outcome]) -> None:
        """Reads as deleted; no command acknowledged at or above the tombstone, or after it."""
        stream = self.repository.stream(stream_id)
        self.deleted[str(stream)] = tombstone
        for read in (
            lambda: self.repository.replay(stream_id),
            lambda: list(self.repository.read(stream_id)),
        ):
            try:
                read()
            except StreamDeleted:
                continue
            self.problem(f"{stream}: tombstone at {tombstone}, yet a read did not say deleted")
        deletions = [o for o in mine if o.step.kind is Kind.DELETE]
        if not any(
            o.label == "deleted" or isinstance(o.error, ObjectStoreError) for o in deletions
        ):
            self.problem(f"{stream}: deleted, yet no deletion stored a tombstone or may have")
        done = min((o.ended for o in deletions if o.label == "deleted"), default=None)
        for outcome in mine:
            self.check_before_tombstone(stream, tombstone, done, outcome)
        # A second deletion removes what the first did not: then no event is left, only
        # tombstones (and whatever keeps each version's key taken: a fence is one too).
        again = delete(self.repository, stream_id)
        if again.version != tombstone:
            self.problem(f"{stream}: a second deletion found the tombstone at {again.version}")
        for key in self.schedule.env.direct.list_keys(self.events.keys.stream_prefix(stream)):
            found = self.events.read(self.events.keys.parse(stream, key))
            if found is not None and (found[0].events or not found[0].deleted):
                self.problem(f"{stream}: {key!r} still holds events after a second deletion")

    def check_before_tombstone(
        self, stream: StreamName, tombstone: int, done: float | None, outcome: Outcome
    ) -> None:
        """What a step on a deleted stream was told it stored lies below the tombstone."""
        step, result, held = outcome.step, outcome.result, outcome.held
        if step.kind is Kind.COMMAND and result is not None:
            if result.version >= tombstone:
                self.problem(
                    f"{step}: acknowledged at version {result.version}, tombstone at {tombstone}"
                )
            if done is not None and outcome.started > done:
                self.problem(
                    f"{step}: began after the deletion of {stream} returned, and was "
                    f"acknowledged at version {result.version} (tombstone at {tombstone})"
                )
        if step.kind is Kind.KILL and held is not None and held.status == 200:
            where = self.events.keys.parse(stream, held.key)
            if where.version >= tombstone:
                self.problem(f"{step}: stored {held.key!r}, at or above the tombstone")

    def check_passes(self, expected: dict[str, list[str]]) -> None:
        """Each pass during the schedule applied a prefix of each live stream, checkpointed."""
        for outcome in self.outcomes:
            if outcome.model is None:
                continue
            ids, checkpoints = outcome.model
            for stream, applied in ids.items():
                if stream in self.deleted:
                    continue
                if applied != expected.get(stream, [])[: len(applied)]:
                    self.problem(f"{outcome.step}: {stream} applied {applied}, stored {expected}")
                # At or past the version of the last event applied, before the next event's.
                versions = [version for _, _, version in self.live.get(stream, [])]
                low = versions[len(applied) - 1] if applied else 0
                high = versions[len(applied)] - 1 if len(applied) < len(versions) else None
                checkpoint = checkpoints.get(stream, 0)
                if checkpoint < low or (high is not None and checkpoint > high):
                    self.problem(
                        f"{outcome.step}: {stream} checkpoint {checkpoint} after "
                        f"{len(applied)} events (versions {versions})"
                    )

    def check_projections(self) -> None:
        """Passes saw a prefix of each stream; a final pass (fault-free) sees every event."""
        expected = {
            stream: [event_id for _, event_id, _ in stored]
            for stream, stored in self.live.items()
            if stored
        }
        self.check_passes(expected)
        for projector in (self.schedule.scanner, self.schedule.follower):
            try:
                run = projector.catch_up(full_scan=True)
            except S3esError as error:
                self.problem(f"final pass of {projector.name}: {_label(error)}: {error}")
                continue
            model = run.read_model
            if model.model.ids != expected or not model.complete:
                self.problem(
                    f"final pass of {projector.name}: ids {model.model.ids}, stored {expected}"
                )
            totals = {
                stream: sum(self._amount(stream, tag) for tag, _, _ in self.live[stream])
                for stream in expected
            }
            if model.model.totals != totals:
                self.problem(f"final pass of {projector.name}: totals {model.model.totals}")

    def check_readers(self) -> None:
        """Each read beside a rebuild gave every document earlier reads gave (of a live
        stream), each a prefix of its stream's events; a final pass gives the fold."""
        live = {stream.partition("/")[2]: [i for _, i, _ in s] for stream, s in self.live.items()}
        deleted = {stream.partition("/")[2] for stream in self.deleted}
        reads = self.schedule.reads
        self.counts["reader reads"] += len(reads)
        for name, n in self.schedule.counts.items():
            self.counts[name] += n
        for read in reads:
            lost = sorted(key for key in read.known - read.documents.keys() if key not in deleted)
            missed = [key for key in read.missed if key not in deleted]
            if lost or missed:
                self.counts["short reads"] += 1
                self.problem(f"a reader's read lacks documents {lost} (get: None for {missed})")
            for key, ids in read.documents.items():
                if key in live and ids != live[key][: len(ids)]:
                    self.problem(f"a reader read {key} as {ids}, stored {live[key]}")
        if not any(o.step.kind is Kind.REBUILD for o in self.outcomes):
            return
        direct = S3ReadModelStore(self.schedule.env.direct, self.schedule.prefix)
        try:
            self.schedule.documents.catch_up()  # the proxy is disarmed: no fault
        except S3esError as error:
            self.problem(f"final pass of the document projection: {_label(error)}: {error}")
            return
        documents = dict(DocumentReader(direct, CounterIds).documents())
        expected = {key: Ids(ids) for key, ids in live.items() if ids}
        if documents != expected:
            self.problem(f"final documents {documents}, stored {expected}")

    def _amount(self, stream: str, tag: str) -> int:
        index = self.schedule.stream_ids.index(stream.partition("/")[2])
        return next(
            s.amount for s in self.schedule.plan.steps() if s.tag == tag and s.stream == index
        )

    def check_proceeds(self) -> None:
        """A fresh writer appends to each live stream; a deleted one says it is deleted."""
        handler = CommandHandler(self.repository, FAST_RETRY)
        for stream_id in self.schedule.stream_ids:
            stream = str(self.repository.stream(stream_id))
            try:
                result = handler.handle(stream_id, Increment(1), metadata={"command": "after"})
            except StreamDeleted:
                if stream not in self.deleted:
                    self.problem(f"{stream}: a fresh writer met StreamDeleted")
                continue
            if stream in self.deleted or result.version != self.tops[stream] + 1:
                self.problem(f"{stream}: a fresh writer stored version {result.version}")


def run_schedule(env: Environment, plan: Plan, totals: Totals) -> None:
    """Run ``plan``, check it, add its outcomes to ``totals``; SoakFailure if anything broke."""
    schedule = _Schedule(env, plan)
    try:
        outcomes, seen = schedule.run()
        checks = _Checks(schedule, outcomes, seen)
        problems = checks.run()
    finally:
        schedule.store.client.close()
    totals.schedules += 1
    totals.outcomes.update((o.step.kind.value, o.label) for o in outcomes)
    totals.faults.update((s.operation, s.fault.name) for s in seen if s.fault is not None)
    totals.counts.update(checks.counts)
    if problems:
        ran = "\n".join(f"  {o.step}: {o.label}" for o in sorted(outcomes, key=lambda o: o.started))
        raise SoakFailure(
            f"schedule {plan.describe()}\nsteps, as they began:\n{ran}\nbroken:\n  "
            + "\n  ".join(problems)
            + f"\nreplay: python -m tests.soak --replay {plan.seed}"
        )
