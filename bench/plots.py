"""The key figures of a run as SVG plots, for ``docs/benchmarks.md``.

Drawn with matplotlib (the ``bench`` extra; nothing in ``s3es`` imports it), through a
:class:`~matplotlib.figure.Figure` of its own rather than ``pyplot``, so no global figure state
or interactive backend is involved. The SVG keeps its text as text (``svg.fonttype: none``), its
ids come from a fixed salt and it carries no date, so a re-run that measures the same numbers
writes the same bytes. Each line is a ``<g>`` whose id is ``series-<name>``, and each bar one
whose id is ``series-<name>-<writers>``: the tests find them there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

from bench import readside
from bench.commands import FLOOR, HotStreamRun, dollars_per_million
from bench.loads import LoadMeasurement
from bench.projections import ReadModelScale
from bench.report import FIGURES, GOAL_WRITERS, THROUGHPUT_GOAL
from bench.run import BenchResults
from bench.states import SNAPSHOT_EVERY, StateMeasurement
from s3es.metering import S3_STANDARD_PRICES

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # every rcParam name, as a Literal

#: One colour per request kind and per design, the same in every figure.
COLOURS = {
    "put": "#3b6fb6",
    "get": "#e08a2e",
    "list": "#4f9a5a",
    "s3es load": "#3b6fb6",
    "LIST all, GET newest": "#8c8c8c",
    "GET every chunk (replay)": "#c8463d",
    "p50": "#3b6fb6",
    "p99": "#c8463d",
    "limit": "#555555",
    "fixed": "#3b6fb6",
    "growing": "#c8463d",
    "events": "#4f9a5a",
}

#: The rcParams every figure is drawn with: readable on a white card, reproducible bytes.
STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "s3es-bench",
    "font.family": "sans-serif",
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "axes.labelcolor": "#222222",
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.8,
    "xtick.color": "#444444",
    "ytick.color": "#444444",
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
}

#: Width and height, in inches, of a figure of two plots side by side.
SIZE = (8.4, 3.3)


@contextmanager
def _style() -> Iterator[None]:
    with mpl.rc_context(STYLE):
        yield


def _thousands() -> FuncFormatter:
    """Tick labels as whole numbers with thousands separators, not as powers of ten."""
    return FuncFormatter(lambda value, _: f"{value:,.0f}")


def _name_bars(bars: BarContainer, series: str, writers: Sequence[int]) -> None:
    """Give each bar the id ``series-<series>-<writers>`` in the SVG."""
    for bar, count in zip(bars, writers, strict=True):
        bar.set_gid(f"series-{series}-{count}")


def _writers_axis(axes: Axes, writers: Sequence[int]) -> None:
    axes.set_xticks(range(len(writers)), [str(each) for each in writers])
    axes.set_xlabel("writers on one stream")
    axes.grid(visible=False, axis="x")


def commands_figure(runs: Sequence[HotStreamRun]) -> Figure:
    """Requests per command by kind, and dollars per million commands, by number of writers."""
    figure = Figure(figsize=SIZE, layout="constrained")
    requests, dollars = figure.subplots(1, 2)
    writers = [run.writers for run in runs]
    positions = range(len(runs))
    bottom = [0.0] * len(runs)
    for kind in ("put", "get", "list"):
        heights = [getattr(run.requests, kind) / max(run.acknowledged, 1) for run in runs]
        bars = requests.bar(
            positions, heights, 0.6, bottom=bottom, color=COLOURS[kind], label=kind.upper()
        )
        _name_bars(bars, kind, writers)
        bottom = [low + high for low, high in zip(bottom, heights, strict=True)]
    for position, total in zip(positions, bottom, strict=True):
        requests.annotate(
            f"{total:.2f}",
            (position, total),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=8.5,
        )
    requests.set_title("Requests per stored command")
    requests.set_ylabel("requests")
    requests.set_ylim(0, max(bottom) * 1.18)
    requests.legend(loc="upper left", ncols=3)
    _writers_axis(requests, writers)

    prices = [run.cost().dollars_per_million for run in runs]
    floor = dollars_per_million(FLOOR, 1, S3_STANDARD_PRICES)
    bars = dollars.bar(positions, prices, 0.6, color=COLOURS["put"])
    _name_bars(bars, "dollars", writers)
    for position, price in zip(positions, prices, strict=True):
        dollars.annotate(
            f"${price:,.2f}",
            (position, price),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=8.5,
        )
    line = dollars.axhline(
        floor,
        color=COLOURS["limit"],
        linestyle="--",
        linewidth=1,
        label=f"floor: the 1 PUT that stores a command (${floor:,.2f})",
        zorder=0.9,
    )
    line.set_gid("series-floor")
    dollars.legend(loc="upper left")
    dollars.set_title("Dollars per million stored commands")
    dollars.set_ylabel("$ (S3 Standard request prices)")
    dollars.set_ylim(0, max([*prices, floor]) * 1.3)
    _writers_axis(dollars, writers)
    return figure


def hot_stream_figure(runs: Sequence[HotStreamRun]) -> Figure:
    """Commands per second against the one-PUT-per-round-trip limit; p50 and p99 by writers."""
    figure = Figure(figsize=SIZE, layout="constrained")
    speed, latency = figure.subplots(1, 2)
    writers = [run.writers for run in runs]
    positions = range(len(runs))
    rates = [run.per_second for run in runs]
    bars = speed.bar(positions, rates, 0.6, color=COLOURS["put"], label="commands stored per s")
    _name_bars(bars, "throughput", writers)
    for position, run in zip(positions, runs, strict=True):
        # Inside the bar's top, where neither the limit nor the goal line can cross it.
        speed.annotate(
            f"{run.share_of_limit:.0%}",
            (position, run.per_second),
            xytext=(0, -4),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=8.5,
            color="white",
            fontweight="bold",
        )
    limit = runs[0].limit_per_second
    tops = [*rates]
    if limit != float("inf"):
        line = speed.axhline(
            limit,
            color=COLOURS["limit"],
            linestyle="--",
            linewidth=1,
            label="limit: 1 version per PUT round trip",
            zorder=0.9,  # behind the bars, in front of the grid
        )
        line.set_gid("series-limit")
        goal = speed.axhline(
            limit * THROUGHPUT_GOAL,
            color=COLOURS["limit"],
            linestyle=":",
            linewidth=1,
            label=f"goal with {GOAL_WRITERS} writers: {THROUGHPUT_GOAL:.0%} of the limit",
            zorder=0.9,
        )
        goal.set_gid("series-goal")
        tops.append(limit)
    speed.set_title("Commands per second on one stream")
    speed.set_ylabel("commands / s (% of the limit)")
    speed.set_ylim(0, max(tops) * 1.4)
    speed.legend(loc="upper left")
    _writers_axis(speed, writers)

    for name, quantile in (("p50", 0.5), ("p99", 0.99)):
        durations = [run.latency_quantile(quantile) * 1000 for run in runs]
        (line,) = latency.plot(list(positions), durations, marker="o", color=COLOURS[name])
        line.set_gid(f"series-{name}")
        # Labelled at its last point rather than in a legend, which the lines could cross.
        latency.annotate(
            name,
            (len(runs) - 1, durations[-1]),
            xytext=(8, 0),
            textcoords="offset points",
            va="center",
            color=COLOURS[name],
            fontweight="bold",
        )
    latency.set_xlim(-0.4, len(runs) - 0.4)
    latency.set_yscale("log")
    latency.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    latency.yaxis.set_major_formatter(_thousands())
    latency.minorticks_off()
    latency.set_title("Command duration: p50 and p99")
    latency.set_ylabel("ms (log scale)")
    _writers_axis(latency, writers)
    return figure


def loads_figure(loads: Sequence[LoadMeasurement]) -> Figure:
    """Requests and time of a cold load by stream length, for each design."""
    figure = Figure(figsize=SIZE, layout="constrained")
    requests, seconds = figure.subplots(1, 2)
    designs = list(dict.fromkeys(load.design for load in loads))
    lengths = sorted({load.appends for load in loads})
    for design in designs:
        mine = sorted((load for load in loads if load.design == design), key=lambda x: x.appends)
        appends = [load.appends for load in mine]
        (line,) = requests.plot(
            appends,
            [load.requests.total for load in mine],
            marker="o",
            zorder=3 if design == "s3es load" else 2,
            color=COLOURS.get(design, "#333333"),
            label=design,
        )
        line.set_gid(f"series-requests-{_slug(design)}")
        (line,) = seconds.plot(
            appends,
            [load.seconds * 1000 for load in mine],
            zorder=3 if design == "s3es load" else 2,
            color=COLOURS.get(design, "#333333"),
            label=design,
        )
        line.set_gid(f"series-ms-{_slug(design)}")
        for modelled in (False, True):
            points = [load for load in mine if load.modelled == modelled]
            seconds.plot(
                [load.appends for load in points],
                [load.seconds * 1000 for load in points],
                linestyle="none",
                marker="o",
                color=COLOURS.get(design, "#333333"),
                markerfacecolor="white" if modelled else COLOURS.get(design, "#333333"),
                zorder=3 if design == "s3es load" else 2,
            )
    for axes in (requests, seconds):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xticks(lengths, [f"{length:,}" for length in lengths])
        axes.minorticks_off()
        axes.yaxis.set_major_formatter(_thousands())
        axes.set_xlabel("appends in the stream (log scale)")
    requests.set_ylim(bottom=1)
    requests.set_title("Requests per cold load")
    requests.set_ylabel("LIST + GET requests (log scale)")
    requests.legend(loc="upper left")
    seconds.set_title("Time per cold load")
    seconds.set_ylabel("ms, one request after another (log scale)")
    if any(load.modelled for load in loads):
        seconds.plot(
            [],
            [],
            linestyle="none",
            marker="o",
            color="#333333",
            markerfacecolor="white",
            label="modelled, not timed",
        )
        seconds.legend(loc="upper left")
    return figure


def states_figure(states: Sequence[StateMeasurement]) -> Figure:
    """Bytes stored and replay time by appends, for a fixed-size state and a growing one.

    Beside them: the events alone, the growing stream had only every SNAPSHOT_EVERY-th version
    carried a snapshot (modelled), and each stream once compacted (hollow markers).
    """
    figure = Figure(figsize=SIZE, layout="constrained")
    stored, replay = figure.subplots(1, 2)
    plain = sorted((each for each in states if not each.compacted), key=lambda x: x.appends)
    lengths = sorted({each.appends for each in plain})

    def series(state: str) -> list[StateMeasurement]:
        return [each for each in plain if each.state == state]

    def line(axes: Axes, gid: str, points: Sequence[tuple[int, float]], **style: Any) -> None:
        (drawn,) = axes.plot([x for x, _ in points], [y for _, y in points], marker="o", **style)
        drawn.set_gid(gid)

    for state in ("fixed", "growing"):
        mine = series(state)
        colour = COLOURS[state]
        line(
            stored,
            f"series-stored-{state}",
            [(each.appends, each.stored_bytes / 1e6) for each in mine],
            color=colour,
            label=f"{state} state",
        )
        line(
            replay,
            f"series-replay-{state}",
            [(each.appends, each.replay_seconds * 1000) for each in mine],
            color=colour,
            label=f"{state} state",
        )
        for each in states:
            if each.compacted and each.state == state:
                hollow = {"markersize": 9, "markerfacecolor": "none", "color": colour}
                (point,) = stored.plot([each.appends], [each.stored_bytes / 1e6], "o", **hollow)
                point.set_gid(f"series-stored-{state}-compacted")
                (point,) = replay.plot(
                    [each.appends],
                    [each.replay_seconds * 1000],
                    "o",
                    label=f"{state}, compacted",
                    **hollow,
                )
                point.set_gid(f"series-replay-{state}-compacted")
    growing = series("growing")
    line(
        stored,
        "series-stored-events",
        [(each.appends, each.events_bytes / 1e6) for each in growing],
        color=COLOURS["events"],
        linestyle="--",
        label="the events alone",
    )
    line(
        stored,
        "series-stored-sparse",
        [(each.appends, each.sparse_bytes / 1e6) for each in growing],
        color=COLOURS["growing"],
        linestyle=":",
        label=f"growing, snapshot every {SNAPSHOT_EVERY} (modelled)",
    )
    line(
        replay,
        "series-replay-parse",
        [(each.appends, each.parse_all_seconds * 1000) for each in growing],
        color=COLOURS["growing"],
        linestyle="--",
        label="growing: json.loads alone",
    )
    for axes in (stored, replay):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xticks(lengths, [f"{length:,}" for length in lengths])
        axes.minorticks_off()
        axes.set_xlabel("appends in the stream (log scale)")
        axes.legend(loc="upper left", fontsize=7.5)
    for axes in (stored, replay):
        # Labels at 1, 2 and 5 of each decade: points reach 700 ms, where decades alone stop
        # at 100.
        axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    stored.set_title("Bytes stored")
    stored.set_ylabel("MB (log scale)")
    stored.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    replay.set_title("Replay time (CPU)")
    replay.set_ylabel("ms (log scale)")
    replay.yaxis.set_major_formatter(_thousands())
    return figure


#: The colour of each read-model store's line, and of the old one-document projector's.
STORE_COLOURS = {
    readside.OLD_PROJECTOR: "#c8463d",
    readside.S3_MEMORY: "#3b6fb6",
    readside.S3_MOTO: "#8fb0dd",
    readside.SQLITE: "#4f9a5a",
    readside.POSTGRES: "#e08a2e",
}


def read_models_figure(
    results: readside.ReadSideResults, old: Sequence[ReadModelScale] = ()
) -> Figure:
    """A one-event pass and an idle pass, by streams held, for each store (log scales)."""
    figure = Figure(figsize=SIZE, layout="constrained")
    one_event, idle = figure.subplots(1, 2)
    series: list[tuple[str, list[int], list[float], list[float]]] = []
    if old:
        series.append(
            (
                readside.OLD_PROJECTOR,
                [each.streams for each in old],
                [each.one_event_seconds for each in old],
                [each.idle_seconds for each in old],
            )
        )
    for store in readside.STORES:
        runs = results.of(store)
        if runs:
            series.append(
                (
                    store,
                    [run.streams for run in runs],
                    [run.one_event.seconds for run in runs],
                    [run.idle.seconds for run in runs],
                )
            )
    sizes = sorted({size for _, streams, _, _ in series for size in streams})
    for store, streams, moved, still in series:
        for axes, kind, seconds in ((one_event, "one-event", moved), (idle, "idle", still)):
            (line,) = axes.plot(
                streams,
                [each * 1000 for each in seconds],
                marker="o",
                color=STORE_COLOURS.get(store, "#333333"),
                label=store,
            )
            line.set_gid(f"series-{kind}-{_slug(store)}")
    for axes in (one_event, idle):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xticks(sizes, [f"{size:,}" for size in sizes])
        axes.minorticks_off()
        axes.set_xlabel("streams, one document each (log scale)")
        axes.set_ylabel("ms per pass (log scale)")
    one_event.set_title("A pass that applies one event")
    idle.set_title("An idle pass")
    one_event.legend(loc="upper left")
    return figure


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def draw(results: BenchResults, folder: Path) -> tuple[Path, ...]:
    """Write the figures of ``results`` into ``folder`` as the files named in ``FIGURES``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with _style():
        figures = {
            "commands": commands_figure(results.hot_stream),
            "hot stream": hot_stream_figure(results.hot_stream),
            "loads": loads_figure(results.loads),
            "states": states_figure(results.states),
        }
        if results.read_models is not None:
            figures["read models"] = read_models_figure(
                results.read_models, results.read_model_scale
            )
        for name, figure in figures.items():
            path = folder / FIGURES[name]
            figure.savefig(path, format="svg", metadata={"Date": None, "Creator": None})
            written.append(path)
    return tuple(written)
