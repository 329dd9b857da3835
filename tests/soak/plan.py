"""Soak schedules: what each one faults and runs, drawn from a seed so it can be replayed."""

from __future__ import annotations

import enum
import random

import attrs

from s3es.eventstore import StreamKeys, StreamName
from s3es.testing.faultproxy import Fault, Rule

STREAM_TYPE = "counter"
#: In-process writers: each has a handler (and so a cache) of its own, as processes would.
WRITERS = 3
#: How many requests in a row a rule may hit: up to one past what the retries absorb
#: (botocore's 3 attempts; the adapter's 5 for 409 and 503, so 15 for a 503 burst).
BURSTS = {
    Fault.DROP_RESPONSE: 3,
    Fault.RESET: 4,
    Fault.CONFLICT: 6,
    Fault.SLOW_DOWN: 16,
    Fault.INTERNAL_ERROR: 4,
    Fault.DELAY: 1,
}
#: Faults drawn for a rule, the cheap ones more often: a DELAY costs a read timeout.
DRAWN = (
    Fault.DROP_RESPONSE,
    Fault.DROP_RESPONSE,
    Fault.RESET,
    Fault.RESET,
    Fault.CONFLICT,
    Fault.SLOW_DOWN,
    Fault.INTERNAL_ERROR,
    Fault.INTERNAL_ERROR,
    Fault.DELAY,
)
OPERATIONS = ("PUT", "PUT", "GET", "GET", "LIST", "LIST", "*")


class Kind(enum.Enum):
    """What a step does."""

    #: A writer's command: ``Increment(amount)`` on the stream, tagged in its metadata.
    COMMAND = "command"
    #: A pass of the full-scan projector.
    PROJECT = "project"
    #: A pass of the change-feed projector (its first pass scans every stream anyway).
    PROJECT_FEED = "project-feed"
    #: ``s3es.ops.compact`` of the stream.
    COMPACT = "compact"
    #: ``s3es.ops.delete`` of the stream.
    DELETE = "delete"
    #: A command by a writer process, SIGKILLed while the answer to its PUT is held.
    KILL = "kill"
    #: ``s3es.ops.erase`` of the stream; with a ``cut``, a writer takes its first fence's
    #: version, so that its second round sends two fences at once (see :data:`CUTS`).
    ERASE = "erase"
    #: A rebuild of the document projection while a reader iterates it and gets documents.
    REBUILD = "rebuild"


#: How an erasure's second round goes: two fences at once, the higher stored first; then the
#: lower one's PUT fails ("fault"), the erasure's process dies before it ("kill"), or it is
#: sent ("round"). "" is an erasure with no racer (one round unless a writer races it).
CUTS = ("", "round", "fault", "kill")


@attrs.frozen
class Step:
    """One step of a lane: its kind, the stream (index), the writer and amount of a command."""

    kind: Kind
    stream: int = 0
    writer: int = 0
    amount: int = 0
    #: The command's tag, stored in its events' metadata (``command``): unique in the plan.
    #: An erasure's with a ``cut``: its racer's command.
    tag: str = ""
    #: An erasure's: how its second fence round goes (see :data:`CUTS`).
    cut: str = ""

    def __str__(self) -> str:
        if self.kind in {Kind.COMMAND, Kind.KILL}:
            return f"{self.kind.value}(s{self.stream}, w{self.writer}, +{self.amount}, {self.tag})"
        if self.kind is Kind.ERASE and self.cut:
            racer = f"w{self.writer}, +{self.amount}, {self.tag}"
            return f"erase(s{self.stream}, {self.cut}, racer {racer})"
        if self.kind in {Kind.COMPACT, Kind.DELETE}:
            return f"{self.kind.value}(s{self.stream})"
        return str(self.kind.value)


@attrs.frozen
class Plan:
    """A schedule: the seed it came from, its streams, the proxy's rules, and its lanes.

    Lanes run side by side, one thread each; a lane's steps run in order. Rule prefixes are
    relative to the schedule's own prefix (see :meth:`rules_under`).
    """

    seed: int
    streams: int
    rules: tuple[Rule, ...]
    lanes: tuple[tuple[Step, ...], ...]

    def stream_ids(self) -> list[str]:
        """The ids of the plan's streams."""
        return [f"s-{index}" for index in range(self.streams)]

    def rules_under(self, prefix: str) -> list[Rule]:
        """The rules, their prefixes moved under the event store's ``prefix``."""
        keys = StreamKeys(prefix)
        return [attrs.evolve(rule, prefix=keys.root + rule.prefix) for rule in self.rules]

    def steps(self) -> list[Step]:
        """Every step, lane by lane."""
        return [step for lane in self.lanes for step in lane]

    def describe(self) -> str:
        """The plan in a few lines, to print with a failure."""
        rules = ", ".join(
            f"{r.fault.name} {r.operation}[{r.first}:{r.first + r.times}]"
            + (f" under {r.prefix!r}" if r.prefix else "")
            for r in self.rules
        )
        lines = [f"seed {self.seed}: {self.streams} streams; rules: {rules or 'none'}"]
        lines += [
            f"  lane {i}: " + "; ".join(str(step) for step in lane)
            for i, lane in enumerate(self.lanes)
        ]
        return "\n".join(lines)


def _rule(rng: random.Random, streams: int) -> Rule:
    fault = rng.choice(DRAWN)
    scope = rng.randrange(streams + 2)
    # Of one stream (its chunks: chunk GETs and PUTs, and its loads' LISTs), of the projectors'
    # documents and leases, or of every request.
    if scope < streams:
        prefix = StreamKeys("").stream_prefix(StreamName(STREAM_TYPE, f"s-{scope}"))
    elif scope == streams:
        prefix = "_projections/"
    else:
        prefix = ""
    return Rule(
        fault,
        rng.choice(OPERATIONS),
        rng.randrange(8 if prefix else 16),
        rng.randint(1, BURSTS[fault]),
        prefix,
    )


def draw(seed: int, *, kill_every: int = 8) -> Plan:
    """The plan of ``seed``: 1-3 streams, 0-5 rules, 1-3 lanes of 2-6 steps.

    Commands make most steps; projector passes, compactions, deletions, erasures (their fence
    rounds cut short at times) and rebuilds with readers come between them;
    one plan in about ``kill_every`` has a writer process killed (0: never).
    """
    rng = random.Random(seed)
    streams = rng.randint(1, 3)
    rules = tuple(_rule(rng, streams) for _ in range(rng.randint(0, 5)))
    kinds = (
        [Kind.COMMAND] * 12
        + [Kind.PROJECT] * 2
        + [Kind.PROJECT_FEED] * 2
        + [Kind.COMPACT] * 2
        + [Kind.DELETE]
        + [Kind.ERASE] * 2
        + [Kind.REBUILD]
    )
    tags = iter(range(1000))
    lanes: list[list[Step]] = []
    for _ in range(rng.randint(1, 3)):
        lane = []
        for _ in range(rng.randint(2, 6)):
            kind = rng.choice(kinds)
            stream = rng.randrange(streams)
            if kind is Kind.COMMAND:
                writer, amount = rng.randrange(WRITERS), rng.randint(1, 9)
                lane.append(Step(kind, stream, writer, amount, f"c{next(tags)}"))
            elif kind is Kind.ERASE:
                cut = rng.choice(CUTS)
                writer, amount = rng.randrange(WRITERS), rng.randint(1, 9)
                tag = f"r{next(tags)}" if cut else ""
                lane.append(Step(kind, stream, writer, amount if cut else 0, tag, cut))
            else:
                lane.append(Step(kind, stream))
        lanes.append(lane)
    if kill_every and rng.randrange(kill_every) == 0:
        lane = lanes[rng.randrange(len(lanes))]
        step = Step(Kind.KILL, rng.randrange(streams), 0, rng.randint(1, 9), f"k{next(tags)}")
        lane.insert(rng.randint(0, len(lane)), step)
    return Plan(seed, streams, rules, tuple(tuple(lane) for lane in lanes))
