"""What the bench writes for readers: tables that fit a page, axes labelled where the points are,
and no internal issue numbers."""

from __future__ import annotations

import re
from pathlib import Path

from bench.commands import hot_stream
from bench.plots import _style, states_figure
from bench.report import hot_stream_table
from bench.states import StateMeasurement

from s3es import InMemoryObjectStore
from s3es.metering import RequestCounts
from s3es.storage import SimulatedLatency

ROOT = Path(__file__).resolve().parent.parent
#: The widest a table's line may be: wider tables are cut off in narrow views.
WIDEST = 100


def _state(state: str, appends: int, replay_ms: float, parse_ms: float) -> StateMeasurement:
    return StateMeasurement(
        state=state,
        appends=appends,
        compacted=False,
        stored_bytes=appends * 1_000,
        events_bytes=appends * 100,
        latest_bytes=1_000,
        snapshot_bytes=900,
        compressed_bytes=appends * 300,
        sparse_bytes=appends * 200,
        load_requests=RequestCounts(list=1, get=1),
        load_seconds=0.001,
        parse_latest_seconds=0.0001,
        replay_requests=RequestCounts(list=1, get=appends),
        replay_seconds=replay_ms / 1000,
        parse_all_seconds=parse_ms / 1000,
    )


class TestBenchPage:
    def test_hot_stream_tables_fit_a_page(self) -> None:
        """The hot-stream section's tables keep every column within a page's width (the one
        table of 11 columns was cut off at Conflicts/cmd), and still say every figure."""
        latency = SimulatedLatency.fixed(0)
        run = hot_stream(InMemoryObjectStore(), writers=2, commands_per_writer=2, latency=latency)
        tables = hot_stream_table([run])
        assert max(len(line) for line in tables.splitlines()) <= WIDEST
        headers = " ".join(line for line in tables.splitlines() if line.startswith("| Writers"))
        for column in ("Stored", "Gave up", "Commands/s", "% of limit", "Conflicts/cmd"):
            assert column in headers
        for column in ("Requests/cmd", "p50 ms", "p99 ms", "Lost"):
            assert column in headers

    def test_replay_axis_is_labelled_up_to_its_points(self) -> None:
        """The replay time's log axis has labels near its highest point (about 700 ms), not
        only at 10 and 100."""
        states = [
            _state("fixed", 250, 4, 2),
            _state("fixed", 1_000, 16, 7),
            _state("fixed", 4_000, 74, 49),
            _state("growing", 250, 5, 4),
            _state("growing", 1_000, 38, 54),
            _state("growing", 4_000, 440, 764),
        ]
        with _style():
            figure = states_figure(states)
        replay = figure.axes[1]
        low, high = replay.get_ylim()
        labelled = [tick for tick in replay.get_yticks() if low <= tick <= high]
        assert max(labelled) >= 764 / 2
        assert len(labelled) >= 5

    def test_no_internal_issue_numbers(self) -> None:
        """Neither the page nor the bench's text names an issue of the project's tracker."""
        issue = re.compile(r"\bissue \d+", re.IGNORECASE)
        texts = [ROOT / "docs" / "benchmarks.md", *sorted((ROOT / "bench").glob("*.py"))]
        found = [
            f"{path.relative_to(ROOT)}:{number}"
            for path in texts
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if issue.search(line)
        ]
        assert found == []
