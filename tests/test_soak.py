"""The soak's quick run: a few dozen of its schedules, a writer process killed mid-PUT, and
erasures whose fence rounds are cut short beside readers of a rebuilding document model.

``make soak`` (``python -m tests.soak``) runs a thousand and more; see tests/soak/__init__.py
for what a schedule runs and what is checked after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from s3es.testing import EmbeddedS3, FaultProxy
from tests.soak.plan import Kind, Plan, Step, draw
from tests.soak.run import Environment, SoakFailure, Totals, quick_botocore_backoff, run_schedule

#: Schedules of the quick run; the same ones every run (seeds 0..n-1), a writer killed in 1 of 5
#: (12: every kind of step, two kills, a dozen rebuilds with readers, in well under a minute).
SCHEDULES = 12


@pytest.fixture(scope="module")
def env(embedded_s3: EmbeddedS3) -> Iterator[Environment]:
    """A bucket of its own, behind a fault proxy, with botocore's retry pauses scaled down."""
    with FaultProxy(embedded_s3.endpoint_url) as proxy, quick_botocore_backoff():
        yield Environment.make(embedded_s3, proxy, "soak-quick")


def test_quick_soak(env: Environment, capsys: pytest.CaptureFixture[str]) -> None:
    """Random schedules (faults on PUT, GET, LIST; several streams; projector passes,
    compactions, deletions, erasures and rebuilds beside the writers; writer processes
    killed) all hold: each acknowledged command stored once, versions gapless, load = replay,
    read models = the fold, deleted streams deleted, readers never short."""
    totals = Totals()
    for seed in range(SCHEDULES):
        try:
            run_schedule(env, draw(seed, kill_every=5), totals)
        except SoakFailure as failure:
            totals.failures.append(str(failure))
    assert not totals.failures, "\n\n".join(totals.failures)
    kinds = {kind for kind, _ in totals.outcomes}
    assert kinds == {kind.value for kind in Kind}
    assert totals.outcomes["command", "stored"] > 0
    assert totals.outcomes["kill", "killed, PUT stored"] > 0
    assert {"PUT", "GET", "LIST"} <= {op for op, _ in totals.faults}
    assert totals.counts["reader reads"] > 0
    assert totals.counts["short reads"] == 0
    with capsys.disabled():  # the outcome counts are part of the report
        print(f"\nsoak, quick run: {totals.schedules} schedules\n{totals.table()}")  # noqa: T201


def test_killed_writer(env: Environment) -> None:
    """A writer process killed with SIGKILL after its PUT landed, before it heard so: its chunk
    is stored once with its append id, and the other writers and the projectors go on."""
    lane = (
        Step(Kind.COMMAND, 0, 0, 1, "c0"),
        Step(Kind.KILL, 0, 0, 2, "k1"),
        Step(Kind.COMMAND, 0, 0, 3, "c2"),
        Step(Kind.PROJECT_FEED),
        Step(Kind.PROJECT),
    )
    totals = Totals()
    run_schedule(env, Plan(seed=10**12, streams=1, rules=(), lanes=(lane,)), totals)
    assert totals.outcomes["kill", "killed, PUT stored"] == 1
    assert totals.outcomes["command", "stored"] == 2


def test_cut_fence_rounds(env: Environment) -> None:
    """Erasures whose second fence round is cut short (the lower fence's PUT fails; the
    process dies between the two fences) beside writers, projectors and readers of a rebuilding
    document model: every stream reads meanwhile; verify names each gap left, repair mends it,
    and then the stream verifies clean and every check holds. No reader read is short."""
    lanes = (
        (
            Step(Kind.COMMAND, 0, 0, 1, "c0"),
            Step(Kind.COMMAND, 0, 1, 2, "c1"),
            Step(Kind.ERASE, 0, 2, 3, "r2", "fault"),
            Step(Kind.PROJECT),
        ),
        (
            Step(Kind.COMMAND, 1, 0, 1, "c3"),
            Step(Kind.ERASE, 1, 1, 4, "r4", "kill"),
            Step(Kind.REBUILD),
            Step(Kind.PROJECT_FEED),
        ),
        (
            Step(Kind.COMMAND, 2, 0, 5, "c5"),
            Step(Kind.ERASE, 2, 1, 4, "r6", "round"),
            Step(Kind.ERASE, 2),
            Step(Kind.REBUILD),
        ),
    )
    totals = Totals()
    run_schedule(env, Plan(seed=10**12 + 1, streams=3, rules=(), lanes=lanes), totals)
    assert totals.outcomes["erase", "fence PUT failed"] == 1
    assert totals.outcomes["erase", "killed between fences"] == 1
    assert totals.outcomes["erase", "erased, fenced in a later round"] == 1
    assert totals.outcomes["command", "stored"] == 7
    assert totals.counts["streams repaired"] == 2
    assert totals.counts["fences stored by repair"] == 2
    assert totals.counts["reader reads"] > 0
    assert totals.counts["short reads"] == 0


def test_killed_writer_above_a_fence_without_snapshot(env: Environment) -> None:
    """A writer process killed on a stream whose top is an erasure's fence with no snapshot
    (a cut round's higher fence, its gap filled by a writer): its load replays and stores a
    re-snapshot of the fence (chunk 1) before its append. The kill holds the append's answer,
    not the re-snapshot's, so its event is stored and checked as any killed writer's."""
    lane = (
        Step(Kind.COMMAND, 0, 0, 1, "c0"),
        Step(Kind.ERASE, 0, 1, 2, "r1", "kill"),
        Step(Kind.COMMAND, 0, 2, 3, "c2"),
        Step(Kind.KILL, 0, 0, 4, "k3"),
        Step(Kind.COMMAND, 0, 1, 5, "c4"),
    )
    totals = Totals()
    run_schedule(env, Plan(seed=10**12 + 2, streams=1, rules=(), lanes=(lane,)), totals)
    assert totals.outcomes["erase", "killed between fences"] == 1
    assert totals.outcomes["kill", "killed, PUT stored"] == 1
    assert totals.outcomes["command", "stored"] == 4
