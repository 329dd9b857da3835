"""The benchmarks' pieces at tiny sizes: they run, and they send the requests the design says.

No timing is asserted: only request counts, event counts and lost events, which do not depend on
the machine. Every request takes no simulated time here (latency 0), except where a load's time
is modelled from its request count, which waits for nothing.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import attrs
import pytest
from bench.commands import (
    CommandCost,
    hot_stream,
    ledger_handler,
    ledger_repository,
    stored_entry_ids,
    uncontended,
)
from bench.ledger import RECENT_ENTRIES, Deposit, Deposited, Ledger
from bench.loads import DESIGNS, build_stream, cold_loads, replay_throughput
from bench.plots import _slug, draw
from bench.projections import (
    Entries,
    PassCost,
    lag,
    mismatches,
    quantile,
    rebuilds,
    steady_state,
)
from bench.readside import (
    S3_MEMORY,
    SQLITE,
    STORES,
    BareSQLite,
    PassMeasurement,
    PutBytes,
    ReadSideResults,
    RebuildRun,
    StoreRun,
    build_orders,
    measure_store,
    targets,
)
from bench.report import FIGURES, IMAGES, console, markdown, sections, table
from bench.run import QUICK, BenchResults, run
from bench.states import HistoryLedger, growing_states
from bench.stores import OverwritingStore

from s3es import InMemoryObjectStore
from s3es._eventstore.store import DEFAULT_READ_AHEAD
from s3es.metering import S3_STANDARD_PRICES, RequestCounts
from s3es.readmodels import S3ReadModelStore, SQLiteReadModelStore
from s3es.storage import LatencyObjectStore, ObjectStore, SimulatedLatency

NO_LATENCY = SimulatedLatency.fixed(0)


class TestLedger:
    def test_new_entry_is_deposited(self) -> None:
        """A deposit with an id the ledger has not seen decides one Deposited."""
        ledger = Ledger()

        events = ledger.decide(Deposit("e-1", 5), ledger.initial_state())

        assert list(events) == [Deposited("e-1", 5)]

    def test_recent_entry_is_refused_silently(self) -> None:
        """A deposit repeated with a recent id decides no event."""
        ledger = Ledger()
        state = ledger.evolve(ledger.initial_state(), Deposited("e-1", 5))

        assert list(ledger.decide(Deposit("e-1", 5), state)) == []

    def test_only_the_latest_ids_are_remembered(self) -> None:
        """The state keeps the ids of the last RECENT_ENTRIES deposits, and counts them all."""
        ledger = Ledger()
        state = ledger.initial_state()
        ids = [f"e-{index}" for index in range(RECENT_ENTRIES + 3)]
        for entry_id in ids:
            state = ledger.evolve(state, Deposited(entry_id, 1))

        assert state.recent == tuple(ids[-RECENT_ENTRIES:])
        assert (state.balance, state.entries) == (len(ids), len(ids))


class TestUncontended:
    def test_warm_command_is_one_put(self) -> None:
        """A command on a stream the handler knows sends exactly one PUT: the floor."""
        cost = uncontended(5, warm=True)

        assert cost.requests == RequestCounts(put=5)
        assert cost.dollars_per_million == pytest.approx(5.00)
        assert cost.floor_ratio == pytest.approx(1.0)

    def test_cold_command_loads_then_puts(self) -> None:
        """Without a cache, each command sends 1 LIST + 1 GET + 1 PUT: $10.40 per million."""
        cost = uncontended(5, warm=False)

        assert cost.requests == RequestCounts(list=5, get=5, put=5)
        assert cost.dollars_per_million == pytest.approx(10.40)

    def test_cost_is_priced_per_command(self) -> None:
        """Dollars per million commands are the requests' price divided by the commands."""
        cost = CommandCost("x", 4, RequestCounts(put=4, get=2, list=2))

        expected = RequestCounts(put=4, get=2, list=2).cost(S3_STANDARD_PRICES) / 4 * 1_000_000
        assert cost.dollars_per_million == pytest.approx(expected)
        assert cost.per_command("get") == 0.5


class TestHotStream:
    def test_one_writer_sends_one_put_per_command(self) -> None:
        """A lone writer never conflicts: one LIST for its first load, then a PUT per command."""
        run = hot_stream(
            InMemoryObjectStore(), writers=1, commands_per_writer=3, latency=NO_LATENCY
        )

        assert run.requests == RequestCounts(list=1, put=3)
        assert (run.acknowledged, run.conflicts, run.gave_up, run.lost) == (3, 0, 0, 0)

    def test_writers_lose_nothing(self) -> None:
        """Racing writers each store every acknowledged deposit exactly once."""
        run = hot_stream(
            InMemoryObjectStore(), writers=2, commands_per_writer=3, latency=NO_LATENCY
        )

        assert run.acknowledged + run.gave_up == 6
        assert run.lost == 0
        assert sorted(run.stored_ids) == sorted(run.acknowledged_ids)

    def test_every_attempt_is_one_put(self) -> None:
        """PUTs add up to the commands stored plus the conflicts met."""
        run = hot_stream(
            InMemoryObjectStore(), writers=2, commands_per_writer=3, latency=NO_LATENCY
        )

        assert run.requests.put == run.acknowledged + run.conflicts

    def test_limit_is_one_put_round_trip(self) -> None:
        """The limit is one command per PUT latency; without latency there is none."""
        run = hot_stream(
            InMemoryObjectStore(), writers=1, commands_per_writer=1, latency=NO_LATENCY
        )

        assert math.isinf(run.limit_per_second)
        assert attrs.evolve(run, put_latency=0.020).limit_per_second == pytest.approx(50)


def _interleaved(objects: ObjectStore) -> tuple[set[str], tuple[str, ...]]:
    """Two handlers take turns on one stream, each deciding on the state it cached last.

    A deposits (version 1); B loads and deposits (version 2); A, still at version 1, deposits.
    Returns the acknowledged entry ids and those a full read finds.
    """
    first, second = ledger_handler(objects), ledger_handler(objects)
    results = [
        first.handle("s", Deposit("a-1", 1)),
        second.handle("s", Deposit("b-1", 1)),
        first.handle("s", Deposit("a-2", 1)),
    ]
    acknowledged = {recorded.event.entry_id for result in results for recorded in result.recorded}
    return acknowledged, stored_entry_ids(objects, "s")


class TestStrawman:
    def test_put_overwrites(self) -> None:
        """The strawman's put-if-absent replaces an existing object instead of refusing."""
        store = OverwritingStore(InMemoryObjectStore())
        store.put_if_absent("k", b"first")

        store.put_if_absent("k", b"second")

        stored = store.get("k")
        assert stored is not None
        assert stored.body == b"second"
        assert store.overwrites == 1

    def test_stale_writer_overwrites_an_acknowledged_event(self) -> None:
        """Without conditional writes a writer on a stale state replaces the other's chunk."""
        acknowledged, stored = _interleaved(OverwritingStore(InMemoryObjectStore()))

        assert acknowledged == {"a-1", "b-1", "a-2"}
        assert acknowledged - set(stored) == {"b-1"}

    def test_conditional_writes_lose_nothing(self) -> None:
        """With put-if-absent the stale writer conflicts, catches up, and every event stays."""
        acknowledged, stored = _interleaved(InMemoryObjectStore())

        assert stored == ("a-1", "b-1", "a-2")
        assert acknowledged == set(stored)

    def test_one_writer_loses_nothing_either(self) -> None:
        """The strawman loses events only to concurrency: a lone writer keeps them all."""
        run = hot_stream(
            OverwritingStore(InMemoryObjectStore()),
            writers=1,
            commands_per_writer=3,
            latency=NO_LATENCY,
        )

        assert (run.acknowledged, run.lost) == (3, 0)


class TestColdLoads:
    def test_each_design_sends_its_requests(self) -> None:
        """s3es's load sends one LIST and one GET; reading every chunk, a GET per append."""
        measured = cold_loads((10, 30), latency=NO_LATENCY, repeats=1)
        requests = {(load.appends, load.design): load.requests for load in measured}

        for appends in (10, 30):
            assert requests[appends, "s3es load"] == RequestCounts(list=1, get=1)
            assert requests[appends, "LIST all, GET newest"] == RequestCounts(list=1, get=1)
            assert requests[appends, "GET every chunk (replay)"] == RequestCounts(
                list=1, get=appends
            )

    def test_list_all_needs_a_page_per_thousand_keys(self) -> None:
        """Listing the whole stream takes ⌈n / 1,000⌉ LISTs; s3es's load still takes one."""
        measured = cold_loads((1_001,), latency=NO_LATENCY, repeats=1)
        requests = {load.design: load.requests for load in measured}

        assert requests["LIST all, GET newest"] == RequestCounts(list=2, get=1)
        assert requests["s3es load"] == RequestCounts(list=1, get=1)

    def test_designs_agree_on_the_state(self) -> None:
        """Each design loads the same state as s3es's load does."""
        repository = ledger_repository(InMemoryObjectStore())
        build_stream(repository, "s", 12)

        states = [
            DESIGNS["LIST all, GET newest"](repository, "s"),
            repository.load("s").state,
            repository.replay("s").state,
        ]
        assert states[0] == states[1] == states[2]

    def test_time_over_budget_is_modelled(self) -> None:
        """A load that would wait longer than the budget is priced, not timed: each request's
        latency, one after the other, but a replay's GETs read-ahead at a time."""
        latency = SimulatedLatency.fixed(0.020)

        measured = cold_loads((100,), latency=latency, budget=-1)

        for load in measured:
            requests = load.requests
            round_trips = requests.list + math.ceil(requests.get / DEFAULT_READ_AHEAD)
            assert load.modelled
            assert load.seconds == pytest.approx(load.cpu_seconds + 0.020 * round_trips)
        replay = next(load for load in measured if load.design.startswith("GET every"))
        assert replay.requests == RequestCounts(list=1, get=100)


class TestReplay:
    def test_replay_reads_every_chunk_and_fallback_resnapshots(self) -> None:
        """Replays GET each chunk; the schema fallback adds a latest-chunk read and one PUT."""
        plain_one, plain_ten, fallback = replay_throughput(30, repeats=1)

        assert (plain_one.chunks, plain_one.events) == (30, 30)
        assert plain_one.requests == RequestCounts(list=1, get=30)
        assert (plain_ten.chunks, plain_ten.events) == (3, 30)
        assert plain_ten.requests == RequestCounts(list=1, get=3)
        assert fallback.requests == RequestCounts(list=2, get=31, put=1)


class TestGrowingStates:
    def test_history_ledger_refuses_any_id_it_has_seen(self) -> None:
        """The growing ledger keeps every id, so it refuses the first one after 40 more."""
        ledger = HistoryLedger()
        state = ledger.initial_state()
        for number in range(41):
            state = ledger.evolve(state, Deposited(f"e-{number}", 1))

        assert list(ledger.decide(Deposit("e-0", 1), state)) == []
        assert (state.balance, len(state.entries)) == (41, 41)

    def test_loads_stay_at_two_requests_while_a_growing_state_grows_storage(self) -> None:
        """Loads are 1 LIST + 1 GET for both states; only the growing one's bytes grow faster.

        The fixed ledger keeps 32 ids, so from 40 to 200 appends its chunks hardly grow and its
        stream grows about as the appends do (5x); the growing ledger's n-th chunk holds n ids,
        so its stream grows about as their square. Compaction lets a replay GET one chunk, and
        stores more, not less.
        """
        measured = growing_states((40, 200), repeats=1)
        by = {(each.state, each.appends, each.compacted): each for each in measured}

        for each in measured:
            assert each.load_requests == RequestCounts(list=1, get=1)
            assert each.replay_requests.get == (1 if each.compacted else each.appends)
        fixed, growing = by["fixed", 200, False], by["growing", 200, False]
        assert fixed.events_bytes == growing.events_bytes
        assert growing.latest_bytes > 2 * fixed.latest_bytes
        fixed_growth = fixed.stored_bytes / by["fixed", 40, False].stored_bytes
        growing_growth = growing.stored_bytes / by["growing", 40, False].stored_bytes
        assert fixed_growth < 7
        assert growing_growth > 12
        assert by["growing", 200, True].stored_bytes > growing.stored_bytes
        assert growing.events_bytes < growing.sparse_bytes < growing.stored_bytes


class TestLatencyStore:
    def test_one_page_listing_waits_once(self) -> None:
        """Listing exactly 1,000 keys is one LIST, so it waits one LIST's latency, not two.

        Fails today: LatencyObjectStore.list_keys waits again after the 1,000th key even when no
        further page exists; the bench's list-all loads at 1,000 and 10,000 keys show it.
        """
        inner = InMemoryObjectStore()
        for index in range(1_000):
            inner.put_if_absent(f"p/{index:04d}", b"x")
        slept: list[float] = []
        objects = LatencyObjectStore(inner, SimulatedLatency.fixed(0.020), sleep=slept.append)

        listed = list(objects.list_keys("p/"))

        assert len(listed) == 1_000
        assert inner.requests.list == 1
        assert len(slept) == inner.requests.list


class TestProjections:
    def test_mismatches_catch_events_applied_twice_skipped_or_unknown(self) -> None:
        """A stream whose applied ids differ from the stored ones in any way is counted."""
        expected = {"ledger/a": ["a-1", "a-2"], "ledger/b": ["b-1"]}

        assert mismatches(Entries({"ledger/a": ["a-1", "a-2"], "ledger/b": ["b-1"]}), expected) == 0
        assert (
            mismatches(Entries({"ledger/a": ["a-1", "a-2", "a-2"], "ledger/b": ["b-1"]}), expected)
            == 1
        )
        assert mismatches(Entries({"ledger/a": ["a-2", "a-1"]}), expected) == 2
        assert mismatches(Entries({**expected, "ledger/c": ["c-1"]}), expected) == 1

    def test_rebuild_applies_every_event_once_at_any_concurrency(self) -> None:
        """Each rebuild applies every stored event once and sends the same requests.

        A first rebuild (a store with no generation yet): the lease (1 GET + 1 PUT); the
        generations record (1 GET), naming the new generation as being built (1 PUT); the new
        generation's model, stamped with the new epoch (1 PUT; no GET: this rebuild created the
        generation, and the stamp's PUT-if-absent refuses an object written meanwhile); the
        record again (1 GET: a rebuild elsewhere may have dropped the generation before the
        stamp); the streams (1 LIST), then per stream 1 LIST for its version, 1 LIST for its
        chunks and 1 GET per chunk; one commit at the end (1 PUT); the switch (1 PUT of the
        record, conditional on the one read: no GET of it, nor of the model just committed).
        A rebuild beside a live generation sends the same, then drops the old generation: one
        DELETE of its one object.
        """
        measured = rebuilds(4, 3, (1, 2), latency=NO_LATENCY, compacted_concurrencies=(2,))

        lease, record, stamp, recheck, commit, switch = (
            RequestCounts(get=1, put=1),
            RequestCounts(get=1, put=1),
            RequestCounts(put=1),
            RequestCounts(get=1),
            RequestCounts(put=1),
            RequestCounts(put=1),
        )
        steps = lease + record + stamp + recheck + commit + switch
        plain_first = steps + RequestCounts(list=1 + 4 * 2, get=4 * 3)
        plain_again = plain_first + RequestCounts(delete=1)  # the previous generation dropped
        compacted_first = steps + RequestCounts(list=1 + 4 * 2, get=4)
        assert [(m.read_concurrency, m.requests) for m in measured] == [
            (1, plain_first),
            (2, plain_again),
            (2, compacted_first),
        ]
        assert plain_first == RequestCounts(list=9, get=15, put=5)
        for measurement in measured:
            assert (measurement.applied, measurement.events, measurement.mismatched) == (12, 12, 0)
            assert measurement.commits == 1  # the work; the epoch's stamp is not a commit

    def test_feed_pass_lists_less_than_a_full_scan(self) -> None:
        """An idle scan lists every stream; an idle feed pass lists the feed once.

        Each pass reads the generations record (1 GET): that is how a projector learns at its
        next pass that another process's rebuild switched readers to a new generation (it
        took the lease with ``force``; the lease itself says so only at the next renewal). No
        GET of the model: each projector holds the one it committed.
        """
        steady = steady_state(20, 2, interval=10.0)
        passes = {(each.mode, each.moved, each.scan_every): each for each in steady.passes}

        record = RequestCounts(get=1)
        assert passes["full scan", 0, 0].requests == record + RequestCounts(list=1 + 20)
        assert passes["change feed", 0, 0].requests == record + RequestCounts(list=1)
        moved = RequestCounts(list=2, get=2, put=1)  # each moved stream: LIST + GET; a commit
        assert passes["full scan", 2, 0].requests == record + RequestCounts(list=1 + 20) + moved
        assert passes["change feed", 2, 0].requests == record + RequestCounts(list=1) + moved
        for each in steady.passes:
            assert each.applied == each.moved
            if each.mode != "full scan":
                assert each.average("list") < passes["full scan", each.moved, 0].average("list")
        assert steady.mismatched == 0

    def test_feed_adds_one_put_per_append(self) -> None:
        """With the feed on a warm append sends two PUTs: $5 more per million appends."""
        steady = steady_state(3, 1, appends=10)

        assert (steady.append_plain, steady.append_feed) == (
            RequestCounts(put=10),
            RequestCounts(put=20),
        )
        assert steady.feed_dollars_per_million_appends == pytest.approx(5.0)

    def test_periodic_scan_is_averaged_in(self) -> None:
        """With scan_every, one pass in that many costs the scan's requests instead."""
        each = PassCost(
            "feed", 0, 0, RequestCounts(list=1, get=1), scan_every=4, scan=RequestCounts(list=9)
        )

        assert each.average("list") == pytest.approx((3 * 1 + 9) / 4)
        assert each.average("get") == pytest.approx(3 / 4)
        expected = (3 * RequestCounts(list=1, get=1).cost() + RequestCounts(list=9).cost()) / 4
        assert each.dollars() == pytest.approx(expected)
        assert each.dollars_per_day(10.0) == pytest.approx(expected * 8_640)

    def test_lag_run_commits_every_acknowledged_append_once(self) -> None:
        """Every acknowledged append gets a lag, and the model holds each event once."""
        measured = lag(writers=2, streams_per_writer=2, seconds=0.1, latency=NO_LATENCY)

        assert measured.acknowledged > 0
        assert len(measured.lags) == measured.acknowledged
        assert all(each >= 0 for each in measured.lags)
        assert measured.mismatched == 0
        assert measured.full_scans >= 1
        assert measured.passes == len(measured.pass_seconds) >= 2

    def test_quantile_is_nearest_rank(self) -> None:
        """The median of 1..4 by nearest rank is 3; the quantile of nothing is NaN."""
        assert quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 3.0
        assert quantile([4.0, 1.0, 3.0, 2.0], 0.95) == 4.0
        assert math.isnan(quantile([], 0.5))


def _read_side(objects: InMemoryObjectStore, streams: int, store: str, folder: Path) -> StoreRun:
    """``store`` measured over ``streams`` one-event order streams, with 8 shards too."""
    build_orders(objects, streams)
    made = iter(range(100))

    def make() -> tuple[S3ReadModelStore | SQLiteReadModelStore, PutBytes | None]:
        if store == SQLITE:
            return SQLiteReadModelStore(folder / f"{streams}-{next(made)}.sqlite"), None
        counted = PutBytes(objects)
        return S3ReadModelStore(counted, f"rm-{next(made)}"), counted

    with BareSQLite(folder / f"bare-{streams}.sqlite", streams) as bare:
        return measure_store(
            store, objects, make, streams, bare=bare, read_seconds=1.0, payments={}, repeats=2
        )


class TestReadSide:
    @pytest.mark.parametrize("streams", [10, 40])
    def test_s3_passes_send_the_same_requests_at_any_size(
        self, streams: int, tmp_path: Path
    ) -> None:
        """On S3 keyed documents a one-event pass is 2 LIST + 3 GET + 3 PUT, an idle one
        1 LIST + 1 GET and writes nothing, at 10 streams as at 40; each build is exact."""
        run = _read_side(InMemoryObjectStore(), streams, S3_MEMORY, tmp_path)

        assert run.one_event.requests == RequestCounts(list=2, get=3, put=3)
        assert run.one_event.events == 1
        assert run.one_event.bytes_written
        assert run.idle.requests == RequestCounts(list=1, get=1)
        assert run.idle.bytes_written == 0
        # The 8 shards build after the two payments: they apply them too.
        assert [(r.shards, r.events) for r in run.rebuilds] == [(1, streams), (8, streams + 2)]
        assert run.mismatched == 0

    def test_sqlite_passes_read_only_the_event_store(self, tmp_path: Path) -> None:
        """On SQLite the object store sees the feed's LIST when idle, and the moved stream's
        LIST and GET besides for one event; the store cannot tell its bytes."""
        run = _read_side(InMemoryObjectStore(), 20, SQLITE, tmp_path)

        assert run.idle.requests == RequestCounts(list=1)
        assert run.one_event.requests == RequestCounts(list=2, get=1)
        assert (run.one_event.bytes_written, run.idle.bytes_written) == (None, None)
        assert run.mismatched == 0

    def test_put_bytes_adds_up_every_body_written(self) -> None:
        """New objects and replacements both count; reads do not."""
        counted = PutBytes(InMemoryObjectStore())
        etag = counted.put_if_absent("a", b"12345")
        counted.replace("a", b"123", etag=etag)
        counted.get("a")

        assert counted.bytes == 8

    def test_targets_are_ratios_of_the_same_run(self) -> None:
        """Each store gets its pass targets (largest size over smallest, best of the repeats)
        and its rebuild target; SQLite its bare-transaction target at each size."""

        def measured(store: str, streams: int, one_event: float) -> StoreRun:
            # Medians far from the best: the targets compare the best of the repeats.
            passes = PassMeasurement(1.0, RequestCounts(), None, 1, best=one_event)
            rebuild = RebuildRun(1, 3.0, streams, 1, RequestCounts(), 0)
            return StoreRun(
                store, streams, passes, passes, (rebuild,), 1.0, 1.0, 0, bare_sqlite_best=0.001
            )

        results = ReadSideResults(
            (measured(SQLITE, 10, 0.002), measured(SQLITE, 1_000, 0.005)), build_seconds=0.0
        )

        found = {(t.target, t.store): (round(t.ratio, 6), t.met) for t in targets(results)}

        assert found == {
            ("one-event pass, 1,000 over 10 streams", SQLITE): (2.5, False),
            ("idle pass, 1,000 over 10 streams", SQLITE): (2.5, False),
            ("one-event pass over a bare SQLite transaction, 10 streams", SQLITE): (
                2.0,
                True,
            ),
            ("one-event pass over a bare SQLite transaction, 1,000 streams", SQLITE): (
                5.0,
                True,
            ),
            ("1-shard rebuild over reading the streams, 1,000 streams", SQLITE): (
                3.0,
                False,
            ),
        }

    def test_quick_run_measures_every_store_exactly(self, quick_results: BenchResults) -> None:
        """The quick run measures each store (moto and PostgreSQL included), and every
        document of every build matches its stream."""
        read_models = quick_results.read_models

        assert read_models is not None
        assert {run.store for run in read_models.runs} == set(STORES)
        assert all(run.mismatched == 0 for run in read_models.runs)
        page = markdown(quick_results)
        assert "## Read models at scale\n" in page
        assert "## Read models at scale: the targets\n" in page

    def test_figure_draws_each_store_and_the_old_projector(
        self, quick_results: BenchResults, tmp_path: Path
    ) -> None:
        """The read models' figure has a line per store, and the old projector's, per pass."""
        draw(quick_results, tmp_path)

        names = ["one-document-projector-in-memory", *(_slug(store) for store in STORES)]
        lines = {f"series-{kind}-{name}" for kind in ("one-event", "idle") for name in names}
        assert lines <= _series(tmp_path / FIGURES["read models"])


class TestReport:
    def test_table_lines_up(self) -> None:
        """Every line of a table is as wide as the others, and number columns align right."""
        lines = table(["Name", "Count"], [["a", "1"], ["longer", "1,000"]]).splitlines()

        assert len({len(line) for line in lines}) == 1
        assert lines[1].endswith(":|")
        assert lines[2].endswith("|     1 |")

    def test_run_renders_every_section(self, quick_results: BenchResults) -> None:
        """A whole run at tiny sizes renders a generated page and the same tables to print."""
        page, printed = markdown(quick_results), console(quick_results)

        header = page.splitlines()[2]
        assert header.startswith("Generated by `make bench` on ")
        assert header.endswith("; do not edit by hand.")
        for section in sections(quick_results):
            assert f"\n{section.table}\n\n{section.text}\n" in page
            assert section.table in printed
        assert quick_results.ours.lost == 0
        assert all(rebuild.mismatched == 0 for rebuild in quick_results.rebuilds)
        assert (quick_results.steady.mismatched, quick_results.lag.mismatched) == (0, 0)
        assert "## Growing states: what a snapshot in every chunk costs\n" in page
        assert {each.load_requests for each in quick_results.states} == {
            RequestCounts(list=1, get=1)
        }
        assert "## Maintenance beside 4 writers at 1 ms per request\n" in page
        for summary in quick_results.maintenance:
            # Beside writers appending back to back: every run finishes, no writer is told it
            # stored a version once the deletion returned, no object keeps the erased data.
            assert summary.finished == len(summary.runs) == 1
            assert (summary.late, summary.leaks) == (0, 0)
        assert [s.operation for s in quick_results.maintenance] == ["delete", "erase", "compact"]

    def test_page_shows_each_figure_under_its_heading(self, quick_results: BenchResults) -> None:
        """Each figure is embedded once, right under its section's heading, with its alt text."""
        page = markdown(quick_results)

        figured = [section for section in sections(quick_results) if section.figure is not None]
        assert sorted(f"{section.figure}" for section in figured) == sorted(FIGURES.values())
        for section in figured:
            image = f"![{section.alt}]({IMAGES}/{section.figure})"
            assert page.count(image) == 1
            assert f"## {section.heading}\n\n{image}\n\n{section.table}\n" in page


@pytest.fixture(scope="module")
def quick_results() -> BenchResults:
    """One whole run at tiny sizes, with no simulated latency."""
    return run(attrs.evolve(QUICK, latency=0.0))


SVG = "{http://www.w3.org/2000/svg}"


def _series(path: Path) -> set[str]:
    """The ids of the series drawn in the SVG at ``path``."""
    root = ET.parse(path).getroot()  # noqa: S314 - the file was just written by the test
    return {
        element.get("id", "")
        for element in root.iter(f"{SVG}g")
        if element.get("id", "").startswith("series-")
    }


class TestPlots:
    def test_each_figure_is_an_svg_with_its_series(
        self, quick_results: BenchResults, tmp_path: Path
    ) -> None:
        """Each figure is a scalable SVG, with its text as text, holding every measured series."""
        written = draw(quick_results, tmp_path)

        assert sorted(path.name for path in written) == sorted(FIGURES.values())
        for path in written:
            root = ET.parse(path).getroot()  # noqa: S314 - the file was just written by the test
            assert root.tag == f"{SVG}svg"
            assert root.get("viewBox")
            assert any(text.text for text in root.iter(f"{SVG}text"))
        writers = [run.writers for run in quick_results.hot_stream]
        bars = {
            f"series-{kind}-{count}"
            for kind in ("put", "get", "list", "dollars")
            for count in writers
        }
        assert bars | {"series-floor"} <= _series(tmp_path / FIGURES["commands"])
        hot = {f"series-throughput-{count}" for count in writers} | {"series-p50", "series-p99"}
        assert hot <= _series(tmp_path / FIGURES["hot stream"])
        designs = ["s3es-load", "list-all-get-newest", "get-every-chunk-replay"]
        loads = {f"series-{what}-{design}" for what in ("requests", "ms") for design in designs}
        assert loads <= _series(tmp_path / FIGURES["loads"])
        states = {
            f"series-{what}-{state}{compacted}"
            for what in ("stored", "replay")
            for state in ("fixed", "growing")
            for compacted in ("", "-compacted")
        } | {"series-stored-events", "series-stored-sparse", "series-replay-parse"}
        assert states <= _series(tmp_path / FIGURES["states"])

    def test_figures_are_reproducible(self, quick_results: BenchResults, tmp_path: Path) -> None:
        """Drawing the same results twice writes the same bytes: no date, no random ids."""
        first = draw(quick_results, tmp_path / "first")
        second = draw(quick_results, tmp_path / "second")

        for one, other in zip(first, second, strict=True):
            assert one.read_bytes() == other.read_bytes()
        assert b"<dc:date>" not in first[0].read_bytes()
