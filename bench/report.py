"""The results as tables, for the terminal and for ``docs/benchmarks.md``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from bench import aio, contention, maintenance, readside, replay
from bench.commands import FLOOR, CommandCost, HotStreamRun, dollars_per_million
from bench.loads import LoadMeasurement, ReplayMeasurement, simulated_wait
from bench.projections import (
    FULL_SCAN_EVERY,
    LEASE_TTL,
    SECONDS_PER_DAY,
    LagMeasurement,
    ReadModelScale,
    RebuildMeasurement,
    SteadyState,
    quantile,
)
from bench.run import BenchResults
from bench.states import SNAPSHOT_EVERY, StateMeasurement
from s3es._eventstore.store import DEFAULT_MAX_CHUNK_BYTES, DEFAULT_READ_AHEAD
from s3es.metering import S3_STANDARD_PRICES, RequestCounts

#: The rebuild size the rate of each rebuild is extrapolated to.
REBUILD_EXTRAPOLATED = 100_000

#: The share of the one-PUT-per-round-trip limit that GOAL_WRITERS on one stream should reach.
THROUGHPUT_GOAL = 0.70
GOAL_WRITERS = 8

#: The folder, beside the report, that holds its figures (drawn by ``bench.plots``).
IMAGES = "images"
#: The file name of each figure in ``IMAGES``.
FIGURES = {
    "commands": "bench-commands.svg",
    "hot stream": "bench-hot-stream.svg",
    "loads": "bench-loads.svg",
    "states": "bench-states.svg",
    "read models": "bench-read-models.svg",
}


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table whose columns line up in plain text too; numbers align right."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    numeric = [
        any(_is_number(row[index]) for row in rows)
        and all(_is_number(row[index]) or row[index] == "-" for row in rows)
        for index in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        "-" * (width + 1) + ":" if right else "-" * (width + 2)
        for width, right in zip(widths, numeric, strict=True)
    )
    return "\n".join([line(headers), rule + "|", *(line(row) for row in rows)])


def _is_number(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell[0] in "$~")


def _count(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def _millions(value: float) -> str:
    return f"{value / 1_000_000:,.2f} M"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


def _percent(fraction: float) -> str:
    return "-" if math.isinf(fraction) or math.isnan(fraction) else f"{fraction:.0%}"


def _floor_dollars() -> float:
    return dollars_per_million(FLOOR, 1, S3_STANDARD_PRICES)


def costs_table(costs: Sequence[CommandCost]) -> str:
    """Requests and dollars per million commands, against the one-PUT floor."""
    rows = [
        [
            cost.scenario,
            f"{cost.per_command('put'):.2f}",
            f"{cost.per_command('get'):.2f}",
            f"{cost.per_command('list'):.2f}",
            _millions(cost.per_command("total") * 1_000_000),
            f"${cost.dollars_per_million:,.2f}",
            f"{cost.floor_ratio:.2f}x",
        ]
        for cost in costs
    ]
    rows.append(
        ["floor: 1 PUT", "1.00", "0.00", "0.00", "1.00 M", f"${_floor_dollars():,.2f}", "1.00x"]
    )
    headers = [
        "Commands",
        "PUT/cmd",
        "GET/cmd",
        "LIST/cmd",
        "Requests per 1M",
        "$ per 1M",
        "x floor",
    ]
    return table(headers, rows)


def hot_stream_table(runs: Sequence[HotStreamRun]) -> str:
    """Commands per second on one stream against one PUT round trip per version, and costs.

    The second table says what each stored command cost and waited. Two tables, of a page's
    width each: one of eleven columns was cut off in narrow views.
    """
    throughput = [
        [
            str(run.writers),
            f"{run.acknowledged:,}",
            f"{run.gave_up:,}",
            f"{run.seconds:.2f}",
            f"{run.per_second:.1f}",
            _percent(run.share_of_limit),
            str(run.lost),
        ]
        for run in runs
    ]
    costs = [
        [
            str(run.writers),
            f"{run.conflicts / max(run.acknowledged, 1):.2f}",
            f"{run.requests.total / max(run.acknowledged, 1):.2f}",
            _ms(run.latency_quantile(0.5)),
            _ms(run.latency_quantile(0.99)),
        ]
        for run in runs
    ]
    return "\n\n".join(
        [
            table(
                ["Writers", "Stored", "Gave up", "Seconds", "Commands/s", "% of limit", "Lost"],
                throughput,
            ),
            table(["Writers", "Conflicts/cmd", "Requests/cmd", "p50 ms", "p99 ms"], costs),
        ]
    )


def loads_table(loads: Sequence[LoadMeasurement]) -> str:
    """Each design's cold load at each stream length: requests and time."""
    ours = {load.appends: load.seconds for load in loads if load.design == "s3es load"}
    rows = [
        [
            f"{load.appends:,}",
            load.design,
            f"{load.requests.list:,}",
            f"{load.requests.get:,}",
            ("~ " if load.modelled else "") + _ms(load.seconds) + (" *" if load.modelled else ""),
            f"{load.seconds / ours[load.appends]:,.1f}x" if load.appends in ours else "-",
        ]
        for load in loads
    ]
    return table(["Appends", "Design", "LIST", "GET", "ms", "x s3es load"], rows)


def replays_table(replays: Sequence[ReplayMeasurement]) -> str:
    """Events folded per second, with no latency: the CPU's share of a replay."""
    rows = [
        [
            replay.what,
            f"{replay.chunks:,}",
            f"{replay.events:,}",
            _requests(replay.requests),
            f"{replay.seconds:.3f}",
            f"{replay.events_per_second:,.0f}",
        ]
        for replay in replays
    ]
    return table(["What", "Chunks", "Events", "Requests", "Seconds", "Events/s"], rows)


def strawman_table(strawman: HotStreamRun, ours: HotStreamRun) -> str:
    """Acknowledged events lost, with and without conditional writes, under the same contention."""
    rows = [
        [
            name,
            f"{run.writers} x {run.commands_per_writer}",
            f"{run.acknowledged:,}",
            f"{len(run.stored_ids):,}",
            f"{run.lost:,}",
            f"{run.conflicts:,}",
        ]
        for name, run in [
            ("versioned keys, plain PUT (strawman)", strawman),
            ("s3es: versioned keys, If-None-Match", ours),
        ]
    ]
    headers = ["Store", "Writers x commands", "Acknowledged", "In the stream", "Lost", "Conflicts"]
    return table(headers, rows)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 7_200:
        return f"{seconds / 60:,.0f} min"
    return f"{seconds / 3_600:,.1f} h"


def _once(mismatched: int) -> str:
    return "yes" if mismatched == 0 else f"NO: {mismatched} streams differ"


def rebuilds_table(rebuilds: Sequence[RebuildMeasurement]) -> str:
    """Each rebuild: requests, time, rate, and what 100,000 such streams would take."""
    first = rebuilds[0]
    rows = [
        [
            rebuild.layout,
            str(rebuild.read_concurrency),
            f"{rebuild.streams:,}",
            f"{rebuild.applied:,}",
            _requests(rebuild.requests),
            f"{rebuild.requests_per_stream:.2f}",
            f"{rebuild.seconds:.2f}",
            f"{rebuild.streams_per_second:,.1f}",
            f"{rebuild.events_per_second:,.0f}",
            f"{rebuild.streams_per_second / first.streams_per_second:.1f}x",
            _duration(rebuild.seconds_for(REBUILD_EXTRAPOLATED)),
            _once(rebuild.mismatched),
        ]
        for rebuild in rebuilds
    ]
    headers = [
        "Streams hold",
        "Threads",
        "Streams",
        "Events",
        "Requests",
        "Requests/stream",
        "Seconds",
        "Streams/s",
        "Events/s",
        "x first row",
        f"{REBUILD_EXTRAPOLATED:,} streams",
        "Applied once",
    ]
    return table(headers, rows)


def steady_table(steady: SteadyState) -> str:
    """Requests and dollars per pass, and per day, for a full scan and for the change feed."""
    rows = [
        [
            each.mode,
            f"{each.moved:,}",
            _count(each.average("list")),
            _count(each.average("get")),
            _count(each.average("put")),
            f"${each.dollars():,.6f}",
            f"${each.dollars_per_day(steady.interval):,.2f}",
        ]
        for each in steady.passes
    ]
    headers = [
        "Pass",
        "Streams moved",
        "LIST",
        "GET",
        "PUT",
        "$ per pass",
        f"$ per day (a pass every {steady.interval:g} s)",
    ]
    return table(headers, rows)


def lag_table(lag: LagMeasurement) -> str:
    """Appends per second, passes, and the lag from acknowledgement to commit."""
    row = [
        str(lag.writers),
        f"{lag.streams:,}",
        f"{lag.acknowledged:,}",
        f"{lag.appends_per_second:,.1f}",
        f"{lag.passes:,}",
        f"{lag.full_scans:,}",
        _ms(quantile(lag.pass_seconds, 0.5)),
        f"{lag.requests_per_pass:.1f}",
        _ms(quantile(lag.lags, 0.5)),
        _ms(quantile(lag.lags, 0.95)),
        _ms(max(lag.lags, default=0.0)),
        _once(lag.mismatched),
    ]
    headers = [
        "Writers",
        "Streams",
        "Appends",
        "Appends/s",
        "Passes",
        "Full scans",
        "Pass p50 ms",
        "Requests/pass",
        "Lag p50 ms",
        "Lag p95 ms",
        "Lag max ms",
        "Applied once",
    ]
    return table(headers, [row])


def _requests(counts: RequestCounts) -> str:
    return str(counts) if counts.total else "none"


def _seconds(seconds: float) -> str:
    return f"{seconds:,.1f} s" if seconds >= 10 else f"{seconds:,.2f} s"


def _costs_text(results: BenchResults) -> str:
    warm, cold, *contended = results.costs
    text = (
        f"The floor is the one PUT that stores a command's events: ${_floor_dollars():.2f} per"
        " million commands at S3 Standard prices ($0.005 per 1,000 PUT or LIST requests, $0.0004"
        " per 1,000 GET requests). A warm command, on a stream whose latest state the handler"
        f" remembers, sent {warm.per_command('total'):.2f} requests, all PUTs: the floor. A cold"
        f" command loads the stream first ({cold.per_command('list'):.2f} LIST +"
        f" {cold.per_command('get'):.2f} GET per command) and then PUTs: {cold.floor_ratio:.2f}x"
        " the floor, mostly for the LIST, which costs as much as 12.5 GETs. Under contention each"
        " lost race costs a failed PUT and a GET that reads the winning chunk, from which the"
        " retry decides with no further read; a writer that loses twice in a row loads the"
        " stream (LIST + GET), because it has moved on meanwhile."
    )
    if contended:
        worst = contended[-1]
        text += (
            " The contended rows come from the hot-stream runs below"
            f" ({results.config.latency * 1000:g} ms per request): the requests of all their"
            " commands, including those that gave up, divided by the commands stored. With"
            f" {worst.scenario.split()[0]} writers on one stream a command cost"
            f" {worst.floor_ratio:.2f}x the floor."
        )
    return text


def _hot_stream_text(results: BenchResults) -> str:
    runs = results.hot_stream
    single, busiest = runs[0], runs[-1]
    latency_ms = f"{results.config.latency * 1000:g} ms"
    met = "met" if busiest.share_of_limit >= THROUGHPUT_GOAL else "not met"
    goal = (
        f" (the goal with {GOAL_WRITERS} writers is at least {THROUGHPUT_GOAL:.0%}: {met})"
        if busiest.writers == GOAL_WRITERS
        else ""
    )
    text = (
        "Every writer runs deposits back to back on the same stream, in a thread of its own with"
        " a CommandHandler of its own (its own cache, as a separate process would have), and"
        f" every request takes {latency_ms}. A stream gains at most one version per PUT round"
        " trip, since a version's PUT can only be decided once the version before it is known:"
        f" the limit is {single.limit_per_second:,.0f} commands per second, however many writers"
        f" there are. {single.writers} writer reached {_percent(single.share_of_limit)} of it;"
        " the rest is the processing between requests. With"
        f" {busiest.writers} writers the stream reached {_percent(busiest.share_of_limit)} of the"
        f" limit{goal}."
        " The writer that wins a version knows the new state and sends the next PUT at once,"
        " while each loser spends its failed PUT, a GET of the winning chunk and a backoff"
        " before it tries again, by which time the winner has often taken the next version too;"
        " a writer that loses twice loads the stream (two round trips) before its next try."
        " So the stream stays busy, but losers wait: p50 and p99 are the command durations that"
        " half and 99% of the commands beat. Conflicts and requests are per stored command,"
        " counting those of every command, including any that gave up."
    )
    gave_up = sum(run.gave_up for run in runs)
    if gave_up:
        text += (
            f" {gave_up} commands in all gave up (RetriesExhausted) after the"
            f" {results.max_attempts} attempts the default RetryPolicy allows, each lost to"
            " another writer; they stored nothing and are not counted in Commands/s."
        )
    text += (
        " Lost counts acknowledged deposits that a full read of the stream does not find"
        " afterwards."
    )
    return text


def _loads_text(results: BenchResults) -> str:
    config = results.config
    latency_ms = f"{config.latency * 1000:g} ms"
    ours = [load for load in results.loads if load.design == "s3es load"]
    lists = sorted({load.requests.list for load in ours})
    if len(lists) == 1 and all(load.requests.get == 1 for load in ours):
        ours_text = f"{lists[0]} LIST + 1 GET at every length"
    else:
        ours_text = (
            "its LIST requests grow with the stream ("
            + ", ".join(f"{load.requests.list} at {load.appends:,}" for load in ours)
            + " appends): one page per 1,000 chunks, as the list-all design's do"
        )
    text = (
        "Each stream was built by appending directly to the in-memory store, with no latency;"
        f" each load was then timed through the latency store ({latency_ms} per request, sent one"
        f" after the other, but a replay's GETs, {DEFAULT_READ_AHEAD} at a time: it reads"
        " ahead), as a process that never saw the stream loads it: the median of"
        f" {config.load_repeats} loads (one, where {config.load_repeats} would wait more than"
        f" {config.load_budget:g} s). s3es's load reads the latest chunk, which carries a"
        f" snapshot of the state: {ours_text}. The list-all design finds the latest chunk by"
        " listing the whole stream: one LIST page per 1,000 keys, ⌈n / 1,000⌉, then one GET."
        " Reading every chunk, as `Repository.replay` does (and the load after a snapshot schema"
        " bump, once per stream), costs a GET per version."
    )
    modelled = [load for load in results.loads if load.modelled]
    if modelled:
        text += (
            " Times marked * are modelled: the processing time measured without latency plus"
            f" {latency_ms} per request ({DEFAULT_READ_AHEAD} GETs at a time), because timing"
            " them would wait more than"
            f" {config.load_budget:g} s."
        )
        checked = [
            load
            for load in results.loads
            if not load.modelled and load.requests.total >= 100 and load.design.startswith("GET")
        ]
        if checked:
            check = max(checked, key=lambda load: load.requests.total)
            wait = simulated_wait(
                check.requests, config.simulated_latency, gets_in_flight=DEFAULT_READ_AHEAD
            )
            model = check.cpu_seconds + wait
            text += (
                f" Where both are known the model is close: the replay of {check.appends:,}"
                f" appends took {_ms(check.seconds)} ms, the model says {_ms(model)} ms"
                f" ({abs(check.seconds - model) / check.seconds:.0%} apart: each simulated"
                " request sleeps a little longer than asked, and read-ahead starts after the"
                " first GETs)."
            )
    return text


def _replays_text(results: BenchResults) -> str:
    replays = results.replays
    *plain, fallback = replays
    latency = results.config.simulated_latency
    longest = max(plain, key=lambda replay: replay.requests.get)
    replay_wait = simulated_wait(longest.requests, latency, gets_in_flight=DEFAULT_READ_AHEAD)
    rates = ", ".join(
        f"{replay.events_per_second:,.0f} events/s with {replay.events // replay.chunks}"
        f" event{'s' if replay.events > replay.chunks else ''} per chunk"
        for replay in plain
    )
    return (
        "`Repository.replay` on the in-memory store, with no latency: it lists the stream, GETs"
        " each chunk, decodes its JSON (the events and the snapshot), turns each event into its"
        f" class and applies `evolve`. On this CPU: {rates}; most of the cost is per chunk. This"
        " is the processing share of the schema fallback; over S3 the requests dominate:"
        f" {longest.requests.get:,} GETs at {latency.get * 1000:g} ms each,"
        f" {DEFAULT_READ_AHEAD} at a time, wait {_seconds(replay_wait)}, against"
        f" {_seconds(longest.seconds)} of processing here. The last row is the fallback itself:"
        " `LedgerV2` bumps `SNAPSHOT_SCHEMA`, so its first load of a stream replays it and stores"
        f" a re-snapshotted chunk ({_requests(fallback.requests)}); the loads after it read one"
        " chunk again."
    )


def _strawman_text(results: BenchResults) -> str:
    strawman, ours = results.strawman, results.ours
    share = strawman.lost / strawman.acknowledged if strawman.acknowledged else 0.0
    return (
        "The strawman keys chunks by version as s3es does, but writes them with a plain PUT, as"
        " an event store on S3 had to before S3 honoured `If-None-Match` (August 2024): two"
        " writers that decide on the same version are both told they succeeded, and the later"
        " PUT replaces the earlier chunk (`bench/stores.py`). Both runs are"
        f" {ours.writers} writers x {ours.commands_per_writer} deposits on one stream,"
        f" {results.config.latency * 1000:g} ms per request, each writer with its own cache"
        f" (the s3es run is the last hot-stream run above). The strawman acknowledged"
        f" {strawman.acknowledged:,} deposits and kept {len(strawman.stored_ids):,}:"
        f" {strawman.lost:,} acknowledged deposits ({share:.0%}) are gone, and no writer was"
        f" told. s3es lost {ours.lost:,}: the loser of each race got a 412 Precondition Failed,"
        f" read the winner's chunk and decided again ({ours.conflicts:,} conflicts)."
    )


def _rebuilds_text(results: BenchResults) -> str:
    config, rebuilds = results.config, results.rebuilds
    latency_ms = f"{config.latency * 1000:g} ms"
    first = rebuilds[0]
    fastest = max(rebuilds, key=lambda rebuild: rebuild.streams_per_second)
    plain = [rebuild for rebuild in rebuilds if rebuild.layout == first.layout]
    widest = max(plain, key=lambda rebuild: rebuild.read_concurrency)
    speedup = widest.streams_per_second / first.streams_per_second
    share = speedup / widest.read_concurrency
    return (
        f"`Projector.rebuild()` of a projection over {first.streams:,} ledger streams, through"
        f" the latency store ({latency_ms} per request), once per read concurrency"
        " (`read_concurrency`: the threads that read streams ahead of the one that applies the"
        " events); the streams were built beforehand with no latency. A rebuild takes the lease"
        " (1 GET + 1 PUT), reads the generations record and names a new generation in it (1 GET"
        " + 1 PUT), stamps the new generation's model with its epoch (1 PUT: from then on an"
        " older projector is fenced; no GET, the generation being new), reads the record again"
        " (1 GET: a rebuild elsewhere may have dropped it), lists the streams (1 LIST per 1,000),"
        " then reads each stream: 1 LIST for its latest version, 1 LIST for its chunks and 1 GET"
        f" per chunk ({config.rebuild_appends} for a stream of {config.rebuild_appends} appends,"
        " 1 once it is compacted), commits every 1,000 events and at the end (1 PUT each), and"
        " switches readers to it (1 PUT of the record), deleting the generation they read before"
        " (1 DELETE);"
        f" a rebuild longer than {LEASE_TTL / 2:g} s also renews the lease (1 PUT)."
        " With one thread these requests are sent one after the other:"
        f" {first.streams_per_second:,.1f} streams per second, so {REBUILD_EXTRAPOLATED:,} such"
        f" streams take about {_duration(first.seconds_for(REBUILD_EXTRAPOLATED))}."
        f" {widest.read_concurrency} threads rebuilt {speedup:.1f}x"
        f" as fast ({share:.0%} of {widest.read_concurrency} times the one-thread rate: the rest"
        " goes mostly to processing, decoding and applying in one thread, on"
        f" {results.machine.cores} cores shared with the readers), and the fastest rebuild here,"
        f" {fastest.layout} with {fastest.read_concurrency} threads, would take"
        f" {_duration(fastest.seconds_for(REBUILD_EXTRAPOLATED))} for {REBUILD_EXTRAPOLATED:,}"
        " streams. Compaction cuts the GETs to one per stream. The extrapolations assume the"
        " rate stays the same, which holds while the model is small: each commit writes the whole"
        " model. Applied once compares the rebuilt model, which lists every entry id applied per"
        " stream, with the ids stored."
    )


def _steady_text(results: BenchResults) -> str:
    steady = results.steady
    by_mode = {(each.mode, each.moved): each for each in steady.passes}
    scan_idle = by_mode["full scan", 0]
    feed_idle = by_mode["change feed", 0]
    amortized = next(each for each in steady.passes if each.scan_every and each.moved == 0)
    scan_share = amortized.dollars_per_day(steady.interval) - feed_idle.dollars_per_day(
        steady.interval
    )
    per_day = SECONDS_PER_DAY / steady.interval
    plain = steady.append_plain.total / steady.appends
    fed = steady.append_feed.total / steady.appends
    return (
        f"One projector over {steady.streams:,} streams, each pass counted in requests (the"
        " in-memory store, no latency), priced at S3 Standard rates and multiplied by"
        f" {per_day:,.0f} passes a day (one every {steady.interval:g} s). Each projector"
        " holds the model it committed (its first pass reads it: 1 GET); every pass reads the"
        " generations record (1 GET), which tells it at once that a rebuild elsewhere switched"
        " generations. A full scan lists the"
        " streams (1 LIST per 1,000) and the latest key of every stream:"
        f" {scan_idle.requests} for an idle pass, whether anything moved or not. A change-feed"
        f" pass lists the feed from its cursor: {feed_idle.requests} when idle. Either way,"
        f" each of the {steady.moved:,} streams that moved costs 1 LIST and 1 GET more, and a"
        " pass that applied anything commits (1 PUT)."
        " A feed projector still scans every stream on its first pass and once an hour"
        f" (`full_scan_interval`; {FULL_SCAN_EVERY} passes at one every {steady.interval:g} s),"
        f" to find entries never written: those scans cost ${scan_share:,.2f} a day here, more"
        " than the feed passes themselves. The feed lists its look-back again"
        " each pass (30 s by default): one more LIST per pass for each 1,000 entries written in"
        " the last 30 s, none here. On the writers' side each warm append sends"
        f" {fed:.2f} requests with the feed on against {plain:.2f} without (the entry's PUT):"
        f" ${steady.feed_dollars_per_million_appends:,.2f} more per million appends. Not in the"
        f" table: the lease, which its holder renews every {LEASE_TTL / 2:g} s (1 PUT,"
        f" ${steady.lease_dollars_per_day:,.2f} a day per projector). Applied once:"
        f" {_once(steady.mismatched).lower()}, for both projectors after their last pass."
    )


def _lag_text(results: BenchResults) -> str:
    lag = results.lag
    latency_ms = f"{results.config.latency * 1000:g} ms"
    text = (
        f"{lag.writers} writer threads, each with its own handler and {lag.streams // lag.writers}"
        f" streams of its own (so they never conflict), deposit back to back for"
        f" {lag.seconds:.1f} s with the feed on, {latency_ms} per request, while one projector"
        " (`feed=True`, 8 read threads) runs `catch_up` back to back. The lag of an append is"
        " the time from its acknowledgement (`handle` returned) to the end of the first pass"
        " whose committed checkpoints include its version; the projector goes on until every"
        " acknowledged append is committed. A feed pass is about five round trips, one after"
        " the other: GET the model, LIST the feed, LIST and GET each stream named (in parallel),"
        " PUT the model. An append whose feed entry is stored before a pass lists the feed is"
        " committed at the end of that pass; a later one waits for the next pass too: the lag"
        " is up to two passes, about one on average. `Projector.run(stop)` waits `interval` (1 s by"
        " default) after each pass, which adds up to that much (half of it on average). Full"
        " scans: the first pass, then one an hour; a pass over more streams, or"
        " one that commits a larger model, takes longer."
    )
    if lag.before_ack:
        text += (
            f" {lag.before_ack} appends were committed by a pass that ended before their command"
            " returned (the pass read the stream after the chunk was stored, before the feed"
            " entry's PUT returned): their lag counts as 0."
        )
    return text


def _size(count: int) -> str:
    """Bytes as KB or MB (of 1,000 and 1,000,000 bytes), with one decimal."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:,.1f} MB"
    return f"{count / 1_000:,.1f} KB"


def _state_name(measured: StateMeasurement) -> str:
    return f"{measured.state}, compacted" if measured.compacted else measured.state


def states_table(states: Sequence[StateMeasurement]) -> str:
    """Bytes stored, and what a load and a replay cost, for a fixed-size and a growing state."""
    fixed = {each.appends: each for each in states if each.state == "fixed" and not each.compacted}
    rows = [
        [
            _state_name(each),
            f"{each.appends:,}",
            _size(each.stored_bytes),
            f"{each.events_ratio:,.1f}x",
            _size(each.latest_bytes),
            str(each.load_requests),
            f"{each.load_seconds * 1000:,.2f}",
            f"{each.parse_latest_seconds * 1000:,.2f}",
            f"{each.replay_requests.get:,}",
            _ms(each.replay_seconds),
            f"{each.replay_seconds / fixed[each.appends].replay_seconds:,.1f}x"
            if each.appends in fixed and not each.compacted
            else "-",
            _ms(each.parse_all_seconds),
        ]
        for each in states
    ]
    headers = [
        "State",
        "Appends",
        "Stored",
        "x events",
        "Latest chunk",
        "Load",
        "Load ms",
        "json.loads ms",
        "Replay GETs",
        "Replay ms",
        "x fixed",
        "json.loads all ms",
    ]
    return table(headers, rows)


def _states_text(results: BenchResults) -> str:
    states = results.states
    plain = [each for each in states if not each.compacted]
    by = {(each.state, each.appends, each.compacted): each for each in states}
    sizes = sorted({each.appends for each in plain})
    small, large = sizes[-2] if len(sizes) > 1 else sizes[0], sizes[-1]
    fixed, growing = by["fixed", large, False], by["growing", large, False]
    fixed_small, growing_small = by["fixed", small, False], by["growing", small, False]
    squashed = by["growing", large, True]
    per_item = growing.snapshot_bytes / large
    limit = DEFAULT_MAX_CHUNK_BYTES
    at_limit = limit / per_item
    stored_at_limit = per_item * at_limit * at_limit / 2
    loads = sorted({str(each.load_requests) for each in states})
    growth = large / small
    return (
        "Two ledgers take the same one-deposit appends: the bench's ledger, whose state is"
        " fixed in size (the balance, the count and the last 32 entry ids), and"
        " `HistoryLedger` (`bench/states.py`), whose state keeps every entry id it has seen."
        " Every chunk carries a snapshot of the whole state, so the growing ledger's n-th chunk"
        " holds n ids and the stream n(n + 1)/2. Streams are built on the in-memory store and"
        f" read there with no latency (times are CPU, the median of {results.config.load_repeats});"
        " x events compares the bytes stored with the JSON of the events alone, each once."
        f" From {small:,} to {large:,} appends ({growth:g}x) the fixed state's stream grew"
        f" {fixed.stored_bytes / fixed_small.stored_bytes:.1f}x and the growing one's"
        f" {growing.stored_bytes / growing_small.stored_bytes:.1f}x: at {large:,} appends it"
        f" stores {_size(growing.stored_bytes)}, {growing.events_ratio:,.0f}x its events,"
        f" against {_size(fixed.stored_bytes)} for the fixed state. A cold load stays at"
        f" {' / '.join(loads)} for both, at every length; what grows is the chunk it reads"
        f" ({_size(growing.latest_bytes)}, {growing.snapshot_bytes / growing.latest_bytes:.0%}"
        f" of it the snapshot), so its CPU time grows with the state"
        f" ({growing.load_seconds * 1000:,.2f} ms against {fixed.load_seconds * 1000:,.2f} ms;"
        f" a bare json.loads of that chunk takes {growing.parse_latest_seconds * 1000:,.2f} ms),"
        " and over S3 so does its transfer, which the latency store does not charge. Replay"
        " (and the schema fallback) parses every snapshot it reads: the growing stream replays"
        f" {growing.replay_seconds / fixed.replay_seconds:.1f}x slower than the fixed one, and a"
        " bare json.loads of its chunks alone takes"
        f" {growing.parse_all_seconds / growing.replay_seconds:.0%} of its replay time."
        f" Compaction (`s3es.ops.compact`) merges the events into one more chunk: a replay then"
        f" GETs {squashed.replay_requests.get} chunk ({_ms(squashed.replay_seconds)} ms), but"
        " nothing is deleted (each version's chunk 0 is its lock), so the stream stores"
        f" {_size(squashed.stored_bytes - growing.stored_bytes)} more, and until the next"
        f" append a load reads the merged chunk ({_size(squashed.latest_bytes)}, every event:"
        f" {squashed.load_seconds * 1000:,.2f} ms); the next append carries the whole state"
        " again. Compressing each chunk (zlib) would store"
        f" {_size(growing.compressed_bytes)}: less, and still quadratic. A snapshot in every"
        f" {SNAPSHOT_EVERY}th version only would store {_size(growing.sparse_bytes)} (modelled"
        " from these chunks), but a cold load would read back to the last snapshot:"
        f" 1 LIST + up to {SNAPSHOT_EVERY} GETs, {SNAPSHOT_EVERY * results.config.latency:,.1f} s"
        f" at {results.config.latency * 1000:g} ms per request, which is why s3es has no such"
        f" option. At {per_item:,.1f} bytes per id, a chunk would reach `max_chunk_bytes`"
        f" ({limit / 1024 / 1024:g} MiB) after about {at_limit:,.0f} appends, when the stream"
        f" would hold about {stored_at_limit / 1e12:,.1f} TB; from there each append raises"
        " ChunkTooLarge. The remedy is a state that holds what `decide` needs: a bounded window"
        " of ids (as the fixed ledger keeps), with history in a projection."
    )


def read_model_scale_table(scaled: Sequence[ReadModelScale]) -> str:
    """The order list as one document at each size: its size and what each kind of pass costs."""
    rows = [
        [
            f"{each.streams:,}",
            _size(each.document_bytes),
            f"{each.one_event_seconds * 1000:,.1f}",
            str(each.one_event_requests),
            f"{each.idle_seconds * 1000:,.2f}",
            str(each.idle_requests),
            f"{each.read_seconds * 1000:,.1f}",
            f"{each.rebuild_seconds:,.1f}",
            f"{each.rebuild_streams_per_second:,.0f}",
            _once(each.mismatched),
        ]
        for each in scaled
    ]
    headers = [
        "Orders",
        "Document",
        "1-event pass ms",
        "1-event pass requests",
        "Idle pass ms",
        "Idle pass requests",
        "read() ms",
        "Rebuild s",
        "Rebuild streams/s",
        "Applied once",
    ]
    return table(headers, rows)


def _read_model_scale_text(results: BenchResults) -> str:
    scaled = results.read_model_scale
    small, large = scaled[0], scaled[-1]
    growth = large.streams / small.streams
    return (
        "The orders example's order list (`OrdersByStatus`: one summary per order, `apply`"
        " updating it in place) over one-event order streams on the in-memory store, no"
        " latency, followed by a `Projector(feed=True)` (CPU times, the median of 3 runs;"
        " the rebuild runs once, with the default `commit_every` of 1,000). The whole model is"
        " one JSON document with a checkpoint per stream, so what a commit writes grows with the"
        f" orders: from {small.streams:,} to {large.streams:,} orders ({growth:g}x) the document"
        f" grew from {_size(small.document_bytes)} to {_size(large.document_bytes)} and a pass"
        f" that applies one event from {small.one_event_seconds * 1000:,.1f} ms to"
        f" {large.one_event_seconds * 1000:,.1f} ms ({large.one_event_requests}), nearly all of"
        " it encoding and hashing the document. An idle pass reads the feed and the generations"
        " record (which tells it that a rebuild elsewhere switched generations), not the model:"
        " the projector keeps the model it committed, and the ETag its next commit names in"
        f" `If-Match` proves it current ({small.idle_seconds * 1000:,.2f} ms and"
        f" {large.idle_seconds * 1000:,.2f} ms; {large.idle_requests}). `read()` GETs and"
        f" decodes the whole document ({large.read_seconds * 1000:,.0f} ms at"
        f" {large.streams:,}): a reader cannot read one order. Keyed read models (one document"
        " or row per order, the section above) are the way past this."
    )


@attrs.frozen
class Section:
    """One section of the report: a heading, a table, what it means, and maybe a figure."""

    heading: str
    table: str
    text: str
    #: The figure's file name under ``IMAGES`` (see ``FIGURES``), or None.
    figure: str | None = None
    #: What the figure shows, for readers who cannot see it.
    alt: str = ""


def sections(results: BenchResults) -> list[Section]:
    """Each section's heading, table, explanation and figure, in order."""
    latency_ms = f"{results.config.latency * 1000:g} ms"
    return [
        Section(
            "Requests and dollars per command",
            costs_table(results.costs),
            _costs_text(results),
            FIGURES["commands"],
            "Requests per stored command, PUT, GET and LIST stacked, and dollars per million"
            " stored commands, for each number of writers on one stream, against the one-PUT"
            " floor",
        ),
        Section(
            f"One hot stream: commands per second at {latency_ms} per request",
            hot_stream_table(results.hot_stream),
            _hot_stream_text(results),
            FIGURES["hot stream"],
            "Commands stored per second on one stream against the limit of one version per PUT"
            " round trip, and the p50 and p99 command durations, for each number of writers",
        ),
        *(
            [
                Section(
                    f"One hot stream under contention: separate processes and group commit"
                    f" at {latency_ms} per request",
                    table(contention.HEADERS, contention.rows(results.contention)),
                    contention.text(results.contention, results.config.contention_repeats),
                )
            ]
            if results.contention
            else []
        ),
        Section(
            "Cold loads by stream length",
            loads_table(results.loads),
            _loads_text(results),
            FIGURES["loads"],
            "Requests and milliseconds of a cold load by stream length: s3es's load stays at"
            " one LIST and one GET; listing every key grows a LIST per 1,000 chunks; reading"
            " every chunk grows a GET per append",
        ),
        Section(
            "Growing states: what a snapshot in every chunk costs",
            states_table(results.states),
            _states_text(results),
            FIGURES["states"],
            "Bytes stored by appends, log scales: a fixed-size state's stream grows with its"
            " appends, a growing state's with their square; beside them the events alone and a"
            f" snapshot every {SNAPSHOT_EVERY} versions (modelled); and replay time by appends",
        ),
        Section(
            "Replay throughput (CPU only)",
            replays_table(results.replays),
            _replays_text(results),
        ),
        Section(
            "Without conditional writes: acknowledged events lost",
            strawman_table(results.strawman, results.ours),
            _strawman_text(results),
        ),
        Section(
            f"Projections: rebuild throughput at {latency_ms} per request",
            rebuilds_table(results.rebuilds),
            _rebuilds_text(results),
        ),
        Section(
            "Projections: what a pass costs, full scan or change feed",
            steady_table(results.steady),
            _steady_text(results),
        ),
        Section(
            "Projections: lag behind the writers",
            lag_table(results.lag),
            _lag_text(results),
        ),
        *(
            [
                Section(
                    "Replay beside the decode floor (CPU only)",
                    table(replay.FLOOR_HEADERS, replay.floor_rows(results.replay.floor)),
                    replay.FLOOR_TEXT,
                ),
                Section(
                    f"Replay with read-ahead at {latency_ms} per request",
                    table(
                        replay.READ_AHEAD_HEADERS, replay.read_ahead_rows(results.replay.read_ahead)
                    ),
                    replay.read_ahead_text(results.replay.read_ahead),
                ),
                Section(
                    "Stale refresh cost by versions behind",
                    table(replay.STALE_HEADERS, replay.stale_rows(results.replay.stale)),
                    replay.STALE_TEXT,
                ),
            ]
            if results.replay is not None
            else []
        ),
        *(
            [
                Section(
                    f"Maintenance beside {MAINTENANCE_WRITERS} writers at"
                    f" {_maintenance_latency(results) * 1000:g} ms per request",
                    table(maintenance.HEADERS, maintenance.table_rows(results.maintenance)),
                    _maintenance_text(results),
                )
            ]
            if results.maintenance
            else []
        ),
        *(
            [
                Section(
                    "The asyncio API: commands in flight on one event loop",
                    aio.table(results.asyncio_api),
                    aio.explanation(results.config.asyncio_api),
                )
            ]
            if results.asyncio_api
            else []
        ),
        *(
            [
                Section(
                    "Read models at scale",
                    table(
                        readside.HEADERS,
                        readside.rows(results.read_models, results.read_model_scale),
                    ),
                    readside.text(results.read_models, results.read_model_scale),
                    FIGURES["read models"],
                    "Milliseconds of a pass that applies one event, and of an idle pass, by"
                    " streams held (log scales), for each read-model store and for the old"
                    " one-document projector",
                ),
                Section(
                    "Read models at scale: the targets",
                    table(readside.TARGET_HEADERS, readside.target_rows(results.read_models)),
                    readside.TARGETS_TEXT,
                ),
            ]
            if results.read_models is not None
            else []
        ),
        *(
            [
                Section(
                    "Projections: one read-model document, by orders held",
                    read_model_scale_table(results.read_model_scale),
                    _read_model_scale_text(results),
                )
            ]
            if results.read_model_scale
            else []
        ),
    ]


#: Writers appending back to back beside each maintenance run (bench.maintenance's default).
MAINTENANCE_WRITERS = 4


def _maintenance_latency(results: BenchResults) -> float:
    config = results.config
    return config.latency if config.maintenance_latency is None else config.maintenance_latency


def _maintenance_text(results: BenchResults) -> str:
    runs = results.config.maintenance_runs
    return (
        f"Each operation ran {runs} times on a ledger stream while {MAINTENANCE_WRITERS} writers,"
        " each with its own command handler (as separate processes would have), appended to it"
        " back to back, and went on appending after it. *tries lost* counts attempts that lost"
        " their version to a writer. A deletion sends its tombstones in rounds (1, 2, 4... up to"
        " 64 versions at once), each starting past the winning chunk a lost PUT hands back, so"
        " it overtakes writers that always hold the latest state; its sweep keeps every deleted"
        " version's chunk 0 as a fence. *acknowledged after deletion* counts writers told they"
        " stored a version after the deletion returned: it must be 0. An erasure merges the"
        " redacted events, then commits a fence version (rounds again) whose snapshot is the"
        " redacted state, so writers holding the state from before lose their PUT and catch up"
        " onto the redacted one. *objects with erased data* counts objects of the stream still"
        " holding the erased value once the erasure returned and the writers went on: it must"
        " be 0. A compaction never races writers for a version (it writes beside the latest"
        " one). See [Operations](operations.md#deleting-a-stream)."
    )


def _when(results: BenchResults) -> str:
    return f"{results.started:%Y-%m-%d %H:%M} UTC"


def _machine(results: BenchResults) -> str:
    machine = results.machine
    return f"{machine.cores} cores ({machine.cpu}), {machine.python}, {machine.system}"


def console(results: BenchResults) -> str:
    """The tables, for the terminal."""
    parts = [
        f"s3es benchmarks, {_when(results)}",
        f"Machine: {_machine(results)}",
        f"Run time: {_seconds(results.seconds)}",
    ]
    for section in sections(results):
        parts += [f"\n{section.heading}\n", section.table]
    return "\n".join(parts) + "\n"


def markdown(results: BenchResults) -> str:
    """``docs/benchmarks.md``: what is measured and how, the tables, and what limits each."""
    latency_ms = f"{results.config.latency * 1000:g} ms"
    parts = [
        "# Benchmarks",
        f"Generated by `make bench` on {_when(results)}; do not edit by hand.",
        (
            "What s3es costs in requests and dollars per command, how many commands per second one"
            " stream takes, what loading a stream costs at each length, and what projections cost"
            " to rebuild and to keep fresh, each figure next to the"
            " limit that bounds it or an alternative design measured in the same run. Everything"
            " runs in one process on `InMemoryObjectStore`, whose put-if-absent is atomic as S3's"
            " is. Where speed depends on S3, a wrapper (`LatencyObjectStore`) makes"
            f" every request take {latency_ms}, a round figure for S3 Standard seen from EC2 in the"
            " same region. Requests are counted per command (`CommandResult.requests`) or per"
            " operation (`measure_requests()`); dollars are S3 Standard us-east-1 request prices,"
            " without storage or transfer. The aggregate is a small ledger (`bench/ledger.py`):"
            " each deposit carries an idempotency id and appends one event. See"
            " [Design](design.md) for why each operation sends the requests it does."
        ),
        (
            f"Machine: {_machine(results)}. The whole run took {_seconds(results.seconds)}."
            " Timings vary by a few percent from run to run; the request counts of one writer do"
            " not vary at all, those of several writers depend on how their threads interleave."
        ),
    ]
    for section in sections(results):
        parts.append(f"## {section.heading}")
        if section.figure is not None:
            parts.append(f"![{section.alt}]({IMAGES}/{section.figure})")
        parts += [section.table, section.text]
    return "\n\n".join(parts) + "\n"
