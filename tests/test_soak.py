"""The soak's quick run: a few dozen of its schedules, and a writer process killed mid-PUT.

``make soak`` (``python -m tests.soak``) runs a thousand and more; see tests/soak/__init__.py
for what a schedule runs and what is checked after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from s3es.testing import EmbeddedS3, FaultProxy
from tests.soak.plan import Kind, Plan, Step, draw
from tests.soak.run import Environment, SoakFailure, Totals, quick_botocore_backoff, run_schedule

#: Schedules of the quick run; the same ones every run (seeds 0..n-1), a writer killed in 1 of 5.
SCHEDULES = 20


@pytest.fixture(scope="module")
def env(embedded_s3: EmbeddedS3) -> Iterator[Environment]:
    """A bucket of its own, behind a fault proxy, with botocore's retry pauses scaled down."""
    with FaultProxy(embedded_s3.endpoint_url) as proxy, quick_botocore_backoff():
        yield Environment.make(embedded_s3, proxy, "soak-quick")


def test_quick_soak(env: Environment, capsys: pytest.CaptureFixture[str]) -> None:
    """Random schedules (faults on PUT, GET, LIST; several streams; projector passes,
    compactions and deletions beside the writers; writer processes killed) all hold: each
    acknowledged command stored once, versions gapless, load = replay, read models = the fold,
    deleted streams deleted."""
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
