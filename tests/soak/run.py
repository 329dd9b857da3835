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
from s3es.eventstore import StreamName
from s3es.ops import compact, delete
from s3es.testing import EmbeddedS3, Fault, FaultProxy, Rule, Seen
from tests.aggregates import FAST_RETRY, Counter, CounterState, Increment
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


@attrs.define
class Totals:
    """What the schedules tried came to, for the table."""

    schedules: int = 0
    outcomes: collections.Counter[tuple[str, str]] = attrs.field(factory=collections.Counter)
    #: Requests faulted, by (operation, fault).
    faults: collections.Counter[tuple[str, str]] = attrs.field(factory=collections.Counter)
    failures: list[str] = attrs.field(factory=list)

    def table(self) -> str:
        """The outcome counts by step kind, and the faults fired, as a Markdown table."""
        rows = [("step", "outcome", "count"), ("---", "---", "---:")]
        rows += [(kind, label, f"{n:,}") for (kind, label), n in sorted(self.outcomes.items())]
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
        self.scanner = Projector(self.events, AppliedIds, owner="scanner", read_concurrency=4)
        self.follower = Projector(
            self.events, FeedAppliedIds, owner="follower", feed=True, read_concurrency=1
        )
        # A projector runs one pass at a time, as in a process of its own; lanes that both
        # project take turns on it (each projection has one projector: its lease is not raced).
        self.projecting = {id(self.scanner): threading.Lock(), id(self.follower): threading.Lock()}
        self.stream_ids = plan.stream_ids()

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
        return outcomes, seen

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

    def kill(self, step: Step, started: float) -> Outcome:
        """A writer process whose PUT lands and whose answer is held, killed with SIGKILL."""
        stream_id = self.stream_ids[step.stream]
        stream_prefix = self.events.keys.stream_prefix(StreamName(STREAM_TYPE, stream_id))
        with FaultProxy(self.env.s3.endpoint_url) as holder:
            holder.arm([Rule(Fault.DELAY, "PUT", 0, prefix=stream_prefix)])
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
        self.deleted: dict[str, int] = {}

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
                    self.check_live(stream_id, mine)
            self.check_projections()
            self.check_proceeds()
        except Exception as error:  # a read that should work did not: that is what broke
            self.problem(f"checking: {_label(error)}: {error}")
        return self.problems

    def check_live(self, stream_id: str, mine: list[Outcome]) -> None:
        """Gapless, load = replay, each command once as acknowledged, nothing failed stored."""
        stream = self.repository.stream(stream_id)
        records = list(self.repository.read(stream_id))
        stored = [(r.metadata["command"], r.id, r.version) for r in records]
        self.live[str(stream)] = stored
        versions = [version for _, _, version in stored]
        if versions != list(range(1, len(stored) + 1)):
            self.problem(f"{stream}: event versions {versions} are not 1..{len(stored)}")
        firsts = sorted(
            where.version
            for key in self.schedule.env.direct.list_keys(self.events.keys.stream_prefix(stream))
            if (where := self.events.keys.parse(stream, key)).number == 0
        )
        if firsts != list(range(1, len(stored) + 1)):
            self.problem(f"{stream}: chunk 0 of versions {firsts}, not of 1..{len(stored)}")
        loaded, replayed = self.repository.load(stream_id), self.repository.replay(stream_id)
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
                if checkpoints.get(stream, 0) != len(applied):
                    self.problem(
                        f"{outcome.step}: {stream} checkpoint {checkpoints.get(stream)} after "
                        f"{len(applied)} events"
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
            if stream in self.deleted or result.version != len(self.live[stream]) + 1:
                self.problem(f"{stream}: a fresh writer stored version {result.version}")


def run_schedule(env: Environment, plan: Plan, totals: Totals) -> None:
    """Run ``plan``, check it, add its outcomes to ``totals``; SoakFailure if anything broke."""
    schedule = _Schedule(env, plan)
    try:
        outcomes, seen = schedule.run()
        problems = _Checks(schedule, outcomes, seen).run()
    finally:
        schedule.store.client.close()
    totals.schedules += 1
    totals.outcomes.update((o.step.kind.value, o.label) for o in outcomes)
    totals.faults.update((s.operation, s.fault.name) for s in seen if s.fault is not None)
    if problems:
        ran = "\n".join(f"  {o.step}: {o.label}" for o in sorted(outcomes, key=lambda o: o.started))
        raise SoakFailure(
            f"schedule {plan.describe()}\nsteps, as they began:\n{ran}\nbroken:\n  "
            + "\n  ".join(problems)
            + f"\nreplay: python -m tests.soak --replay {plan.seed}"
        )
