"""The orders example's harness end to end (embedded S3, an explicit endpoint; read models in
SQLite, S3 and PostgreSQL), its output, its checks; the app's wiring, its payment service and
its fulfilment reactor."""

from __future__ import annotations

import itertools
import logging
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from examples.orders.app import WAREHOUSE_RETRY, Shop
from examples.orders.domain import (
    CancelOrder,
    ConfirmStock,
    Order,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    OrderStatus,
    PaymentRecorded,
    PlaceOrder,
    RecordPayment,
    RefuseStock,
    ShipWhenReady,
    StockConfirmed,
    StockRefused,
    StockStatus,
)
from examples.orders.harness.checks import check
from examples.orders.harness.contention import Contention, plan_orders
from examples.orders.harness.main import main, play
from examples.orders.harness.report import TERMS
from examples.orders.inventory import (
    Inventory,
    ReceiveStock,
    ReleaseStock,
    ReserveStock,
    StockItem,
    StockReceived,
    StockReleased,
    StockReserved,
    StockShortage,
)
from examples.orders.projections import OrderList
from examples.orders.reactors import Fulfilment
from examples.orders.services import Ledger, PaymentDelivery, PaymentService, send
from s3es import (
    CommandHandler,
    EventStore,
    InlineProjection,
    InMemoryObjectStore,
    RecordedEvent,
    Repository,
    RetryPolicy,
    StreamName,
)
from s3es.aio import AsyncInMemoryObjectStore
from s3es.metering import RequestCounts
from s3es.projections import DocumentProjector, LeaseOptions
from s3es.reactors import CAUSATION_ID, CORRELATION_ID, ReactorRunner, Send
from s3es.readmodels import S3ReadModelStore
from s3es.storage import ForwardingObjectStore
from s3es.testing.embedded_s3 import EmbeddedS3
from tests.test_eventstore import rewrite

CHECKS = (
    "the customers, the reactor and the projectors ran without errors",
    "each stream loaded from its snapshot equals one rebuilt from every event",
    "the events read back are exactly the acknowledged ones, each once",
    "each stream's versions run from 1 with no gap",
    "orders and warehouse agree on which orders got stock",
    "no stock oversold",
    "every order is shipped or cancelled",
    "the reactor reacted to every event: its positions are the streams' versions",
    "the reactor parked no event",
    "each order placed got one answer from its warehouse, caused by it",
    "every order shipped was paid and its stock reserved, and kept",
    "every shortage cancelled its order and released nothing it did not reserve",
    "every event the reactor caused carries its order's flow and its cause",
    "each read model equals one rebuilt from every event read back",
    "each event applied once: every stream's position is its version",
    "the read models agree with the streams' rebuilt states",
    "the order summaries kept inline (read-your-writes) equal the stored ones",
)
SMALL = ["--orders", "4", "--workers", "2"]
_buckets = itertools.count()


def passed(output: str) -> list[str]:
    """The checks the output says passed."""
    return [check for check in CHECKS if re.search(rf"PASS  {re.escape(check)}", output)]


def run_row(output: str) -> RequestCounts:
    """The request counts of the whole run, read from the output's requests table."""
    match = re.search(r"^ +run +(\d+) +(\d+) +(\d+) +(\d+) +(\d+)$", output, re.MULTILINE)
    assert match is not None, output
    put, get, list_, delete, total = map(int, match.groups())
    counts = RequestCounts(put=put, get=get, list=list_, delete=delete)
    assert counts.total == total
    return counts


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials for a client built from the environment (the embedded endpoint takes any)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


class TestMainOnEmbeddedS3:
    def test_run(self, capsys: pytest.CaptureFixture[str]) -> None:
        """With no endpoint, the demo runs on its own moto server and every check passes;
        --verbose adds each phase's requests, the stock per product and the projectors'
        passes."""
        code = main([*SMALL, "--verbose"])
        output = capsys.readouterr().out
        assert code == 0, output
        assert passed(output) == list(CHECKS)
        assert "FAIL" not in output
        assert "embedded moto server at http://127.0.0.1:" in output
        assert "moto alone is not atomic" in output
        assert "serialised by a lock" in output
        counts = run_row(output)
        assert counts.put > 0
        assert counts.get > 0
        assert counts.list > 0
        assert "S3 Standard prices" in output
        assert re.search(r"^ +projectors +\d+ +\d+ +\d+ +\d+ +\d+$", output, re.MULTILINE)
        # The read models, and what the projectors' passes cost.
        for name in ("order-summaries", "reserved-stock"):
            background = rf"^ +{name} +1 full scan, then \d+ passes over the feed: .* epoch 1$"
            assert re.search(background, output, re.MULTILINE), background
        assert "The outcome, as readers get it from the read models" in output
        assert "The stock per product in warehouse-1 (read model reserved-stock" in output
        # The background thread applied every event, the reactor's last ones included: the last
        # pass finds nothing new. The documents are in SQLite: S3 sees the feed and the streams.
        for last_pass in (
            r"^ +order-summaries +0 events: 1 LIST +1 LIST +5 LIST$",
            r"^ +reserved-stock +0 events: 1 LIST +1 LIST +2 LIST$",
        ):
            assert re.search(last_pass, output, re.MULTILINE), last_pass
        assert "models  in SQLite: " in output
        assert "removed at the end" in output
        for name, documents in (("order-summaries", 4), ("reserved-stock", r"\d")):
            reader = rf"^ +{name} +a reader gets one document with no S3 request, all {documents} "
            assert re.search(reader, output, re.MULTILINE), reader
        # Each term said once, after the first line that uses it.
        for term in TERMS.values():
            assert output.count(f"· {term.name}: ") == 1, term.name

    def test_story_first(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Without --verbose: what raced, what the reactor did and one order's flow, then the
        outcome, then the cost, then one line per check, in at most 70 lines; each term it uses
        is said once, after its first use."""
        assert main(SMALL) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) <= 70, "\n".join(lines)
        starts = [
            next(n for n, line in enumerate(lines) if line.startswith(heading))
            for heading in ("What raced", "The outcome", "What it cost", "Checks")
        ]
        reactor = next(n for n, line in enumerate(lines) if line.startswith("What the reactor"))
        assert starts[0] < reactor < starts[1]
        assert re.match(r"  \d+ events read in \d+ passes: \d+ commands sent", lines[reactor + 1])
        assert lines[reactor + 2] == "  0 duplicates, 0 events parked"
        assert re.match(r"  one flow across streams, order o-00\d", lines[reactor + 3])
        assert re.match(r"    \+0\.000s  order/o-00\d v1 +OrderPlaced +placed", lines[reactor + 4])
        assert starts == sorted(starts)
        assert re.match(r"  4 order streams +\d+ conflicts in +\d+ commands", lines[starts[0] + 1])
        assert re.match(r"  1 warehouse stream +\d+ conflicts", lines[starts[0] + 2])
        assert "the losers retried" in lines[starts[0] + 3]
        outcome = [line.split()[0] for line in lines[starts[1] + 1 : starts[2] - 1]]
        stock = outcome.index("in")  # the stock line, after the orders by status
        assert set(outcome[:stock]) == {"shipped", "cancelled"}, outcome
        assert lines[starts[1] + 1 + stock].startswith("  in stock        kettle ")
        assert sum(line.startswith("  PASS  ") for line in lines[starts[3] :]) == len(CHECKS)
        assert "S3 requests" not in "\n".join(lines[: starts[2]])  # the cost comes after
        assert "The orders one by one" not in lines  # a --verbose detail
        text = "\n".join(lines)
        for term in TERMS.values():
            said = [n for n, line in enumerate(lines) if line.startswith(f"  · {term.name}: ")]
            if not term.appears_in("\n".join(x for x in lines if not x.startswith("  · "))):
                continue
            assert len(said) == 1, (term.name, text)
            first = next(n for n, line in enumerate(lines) if term.appears_in(line))
            assert first < said[0], term.name

    def test_logging(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """s3es's log lines go to stderr: warnings always, info lines with --verbose only; the
        stdlib logger ``s3es`` is as it was after main."""
        logger = logging.getLogger("s3es")
        before = (logger.level, list(logger.handlers))

        prepare = Contention.prepare

        def logs(run: Contention) -> None:
            logging.getLogger("s3es.test").info("test_conflict_line")
            logging.getLogger("s3es.test").warning("an append failed")
            prepare(run)

        monkeypatch.setattr(Contention, "prepare", logs)
        assert main(SMALL) == 0
        quiet = capsys.readouterr()
        assert main([*SMALL, "--verbose"]) == 0
        verbose = capsys.readouterr()
        assert "test_conflict_line" not in quiet.err
        assert "WARNING s3es.test: an append failed" in quiet.err
        assert "INFO s3es.test: test_conflict_line" in verbose.err
        assert "test_conflict_line" not in quiet.out + verbose.out
        assert (logger.level, list(logger.handlers)) == before


class TestMainOnEndpoint:
    def test_existing_bucket(
        self,
        embedded_s3: EmbeddedS3,
        aws_credentials: None,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """With --endpoint-url, an existing bucket is used and objects go under the prefix only."""
        bucket = f"orders-demo-{next(_buckets)}"
        embedded_s3.create_bucket(bucket)
        arguments = ["--endpoint-url", embedded_s3.endpoint_url, "--bucket", bucket]
        code = main([*arguments, "--prefix", "runs/one", *SMALL])
        output = capsys.readouterr().out
        assert code == 0, output
        assert passed(output) == list(CHECKS)
        assert f"bucket  {bucket} (exists), every key under runs/one/" in output
        assert "moto" not in output
        pages = embedded_s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        assert all(key.startswith("runs/one/") for key in keys)
        folders = Counter(key.split("/")[2] for key in keys)
        # The documents are in SQLite; the projectors' leases in S3.
        assert set(folders) == {"inventory", "order", "_feed", "_projections"}
        stored = re.search(r"the acknowledged ones, each once: (\d+) events", output)
        assert stored is not None
        # One chunk per append, one event per chunk, one feed entry per append.
        assert folders["inventory"] + folders["order"] == int(stored[1])
        assert folders["_feed"] == int(stored[1])
        assert sorted(key.split("/", 3)[3] for key in keys if "/_projections/" in key) == [
            "fulfilment/lease.0-of-2.json",
            "fulfilment/lease.1-of-2.json",
            "order-summaries/lease.0-of-1.json",
            "reserved-stock/lease.0-of-1.json",
        ]

    def test_missing_bucket(
        self,
        embedded_s3: EmbeddedS3,
        aws_credentials: None,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """With --endpoint-url, a bucket that does not exist is created."""
        bucket = f"orders-demo-{next(_buckets)}"
        code = main(["--endpoint-url", embedded_s3.endpoint_url, "--bucket", bucket, *SMALL])
        output = capsys.readouterr().out
        assert code == 0, output
        assert f"bucket  {bucket} (created)" in output
        embedded_s3.client().head_bucket(Bucket=bucket)

    def test_unreachable(self, aws_credentials: None, capsys: pytest.CaptureFixture[str]) -> None:
        """An endpoint that cannot be reached ends the run with status 2, naming the bucket."""
        code = main(["--endpoint-url", "http://127.0.0.1:9", "--bucket", "nowhere", *SMALL])
        assert code == 2
        assert "cannot use bucket 'nowhere'" in capsys.readouterr().err

    @pytest.mark.parametrize(
        ("option", "value", "message"),
        [
            ("--orders", "0", "must be at least 1"),
            ("--workers", "-1", "must be at least 1"),
            ("--prefix", "a//b", "prefix segment .* must not be empty"),
        ],
    )
    def test_bad_option(
        self, option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bad option is refused before anything starts, naming the option."""
        with pytest.raises(SystemExit) as exit_info:
            main([option, value])
        assert exit_info.value.code == 2
        assert re.search(f"argument {option}: {message}", capsys.readouterr().err)


class TestReadModelStores:
    def test_s3(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--read-models s3: the documents are S3 objects beside the events, every check
        passes, and the report prices a pass and a read in S3 requests."""
        code = main([*SMALL, "--verbose", "--read-models", "s3"])
        output = capsys.readouterr().out
        assert code == 0, output
        assert passed(output) == list(CHECKS)
        assert "models  in S3: one object per document, under " in output
        # The last pass, like an idle one, lists the feed and reads the generations record.
        last = r"^ +order-summaries +0 events: 1 LIST \+ 1 GET +1 LIST \+ 1 GET +5 LIST"
        assert re.search(last, output, re.MULTILINE), output
        reader = r"^ +order-summaries +a reader gets one document with 2 GET, all 4 with 1 LIST"
        assert re.search(reader, output, re.MULTILINE), output

    def test_postgres(
        self,
        postgres_conninfo: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """--read-models postgres on the database S3ES_POSTGRES_URL names, then on the same
        one by --postgres-url: the second run finds the first's documents and rebuilds the
        read models from its own streams; every check passes both times."""
        monkeypatch.setenv("S3ES_POSTGRES_URL", postgres_conninfo)
        assert main([*SMALL, "--read-models", "postgres"]) == 0, capsys.readouterr().out
        monkeypatch.delenv("S3ES_POSTGRES_URL")
        arguments = ["--read-models", "postgres", "--postgres-url", postgres_conninfo]
        code = main([*SMALL, "--verbose", *arguments])
        output = capsys.readouterr().out
        assert code == 0, output
        assert passed(output) == list(CHECKS)
        assert "models  in PostgreSQL: the database of --postgres-url" in output
        assert output.count("(a rebuild: an earlier run's documents were there)") == 2
        assert output.count("(an earlier run's positions dropped first)") == 1

    def test_sqlite_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--sqlite-file keeps the documents in that file; a second run on it rebuilds them."""
        path = tmp_path / "models.sqlite3"
        assert main([*SMALL, "--sqlite-file", str(path)]) == 0
        first = capsys.readouterr().out
        assert main([*SMALL, "--verbose", "--sqlite-file", str(path)]) == 0
        second = capsys.readouterr().out
        assert f"models  in SQLite: {path}\n" in first
        assert passed(second) == list(CHECKS)
        assert "an earlier run's documents" not in first
        assert second.count("(a rebuild: an earlier run's documents were there)") == 2
        assert "earlier run's positions" not in first
        assert second.count("(an earlier run's positions dropped first)") == 1

    def test_postgres_unavailable(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--read-models postgres with no URL and no pgserver to start one ends the run with
        status 2, saying what would do."""
        monkeypatch.delenv("S3ES_POSTGRES_URL", raising=False)
        monkeypatch.setitem(sys.modules, "pgserver.postgres_server", None)
        assert main([*SMALL, "--read-models", "postgres"]) == 2
        error = capsys.readouterr().err
        assert "--read-models postgres needs --postgres-url or S3ES_POSTGRES_URL" in error


class TestImports:
    def test_domain_and_app_without_boto(self) -> None:
        """The example's domain, read models, services and wiring import neither boto3 nor the
        harness: a newcomer reads them without the S3 client."""
        script = (
            "import sys\n"
            "import examples.orders, examples.orders.domain, examples.orders.inventory\n"
            "import examples.orders.projections, examples.orders.services, examples.orders.app\n"
            "import examples.orders.reactors\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'boto3', 'botocore',"
            " 'moto'} or m.startswith('examples.orders.harness'))\n"
            "print(heavy)\n"
        )
        result = subprocess.run(  # noqa: S603 - our own interpreter on our own script
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": "src"},
        )
        assert result.stdout == "[]\n", result.stderr


def in_memory_demo(**options: int) -> tuple[Contention, InMemoryObjectStore]:
    store = InMemoryObjectStore()
    settings = {"orders": 4, "workers": 2, "seed": 3} | options
    return Contention(Shop(store, prefix="t"), **settings), store


def played(demo: Contention, *, verbose: bool = False) -> tuple[int, list[str]]:
    """Run, check and tell ``demo``: the exit status and the lines told."""
    lines: list[str] = []
    return play(demo, lines.append, verbose=verbose), lines


def failures(demo: Contention) -> dict[str, list[str]]:
    """The checks that fail now, with their problems."""
    return {check.title: check.problems for check in check(demo) if not check.passed}


class TestChecks:
    def test_pass(self) -> None:
        """On a store whose conditional writes are atomic, every check passes and run returns 0."""
        demo, _ = in_memory_demo()
        code, lines = played(demo)
        assert code == 0
        assert passed("\n".join(lines)) == list(CHECKS)

    def test_unacknowledged_event(self) -> None:
        """An event stored but not acknowledged fails the acknowledgement check, naming it."""
        demo, _ = in_memory_demo()
        played(demo)
        stream = demo.shop.orders.stream(demo.plan[0].order_id)
        dropped = demo.shop.ledger.acknowledged[stream].pop()
        problems = failures(demo)
        assert list(problems) == [
            "the events read back are exactly the acknowledged ones, each once"
        ]
        assert problems[next(iter(problems))] == [
            f"{stream}: stored but never acknowledged: {dropped}"
        ]

    def test_missing_event(self) -> None:
        """An acknowledged event that is not stored fails the acknowledgement check, naming it."""
        demo, _ = in_memory_demo()
        played(demo)
        stream = demo.shop.warehouses.stream("warehouse-1")
        demo.shop.ledger.acknowledged[stream].append("lost-event")
        assert list(failures(demo).values()) == [
            [f"{stream}: acknowledged but missing: lost-event"]
        ]

    def test_gap(self) -> None:
        """A stream with a version missing fails the gap check, naming the stream."""
        demo, store = in_memory_demo()
        played(demo)
        order_id = demo.plan[1].order_id
        stream = demo.shop.orders.stream(order_id)
        store.delete(demo.shop.event_store.keys.chunk_key(stream, 2))
        problems = failures(demo)
        gap = problems.pop("each stream's versions run from 1 with no gap")
        assert len(gap) == 1
        assert gap[0].startswith(f"{stream}: corrupt chunk")
        assert "has no version 2" in gap[0]
        # The stream cannot be read, so the stock and read-model checks cannot be made either.
        assert problems == {
            "orders and warehouse agree on which orders got stock": [
                "not checked: some streams could not be read"
            ],
            "each order placed got one answer from its warehouse, caused by it": [
                "not checked: some streams could not be read"
            ],
            "each read model equals one rebuilt from every event read back": [
                "not checked: some streams could not be read"
            ],
        }

    def test_snapshot_disagrees(self) -> None:
        """A latest snapshot that is not what the events make fails the replay check."""
        demo, _ = in_memory_demo()
        played(demo)
        order_id = demo.plan[0].order_id
        stream = demo.shop.orders.stream(order_id)
        latest = demo.shop.event_store.latest(stream)
        assert latest is not None
        assert latest.snapshot is not None
        wrong = attrs.evolve(
            latest.snapshot, state={**latest.snapshot.state, "status": OrderStatus.PLACED.value}
        )
        assert rewrite(demo.shop.event_store, latest, wrong)
        problems = failures(demo)
        assert list(problems) == [
            "each stream loaded from its snapshot equals one rebuilt from every event"
        ]
        assert problems[next(iter(problems))][0].startswith(f"{stream}: load gave version")

    def test_worker_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A customer's thread that fails makes the run fail: the error is shown, the orders
        left unpaid are not finished, and run returns 1."""

        def broken(*_: object) -> str:
            raise RuntimeError("payment provider unreachable")

        monkeypatch.setattr(PaymentService, "record_payment", broken)
        demo, _ = in_memory_demo()
        code, lines = played(demo)
        assert code == 1
        output = "\n".join(lines)
        assert "FAIL  the customers, the reactor and the projectors ran without errors" in output
        assert "RuntimeError: payment provider unreachable" in output
        assert "FAIL  every order is shipped or cancelled" in output
        assert f"FAILED: 2 of {len(CHECKS)} checks" in output


class TestReadModels:
    def test_passes_and_documents(self) -> None:
        """After the run each read model holds a document per order and per product; the last
        pass finds nothing new (the background thread applied the reactor's last events); an
        idle pass over the feed LISTs one feed and GETs the generations record, an idle full
        scan LISTs the streams and each stream."""
        demo, _ = in_memory_demo(orders=5)
        assert played(demo)[0] == 0
        summaries = demo.projected["order-summaries"]
        levels = demo.projected["reserved-stock"]
        assert summaries.documents is not None
        assert levels.documents is not None
        assert sorted(summaries.documents) == [order.order_id for order in demo.plan]
        assert {o.status for o in summaries.documents.values()} <= {
            OrderStatus.SHIPPED,
            OrderStatus.CANCELLED,
        }
        assert sorted(levels.documents) == sorted({item.sku for item in demo.stock})
        assert all(list(p.warehouses) == ["warehouse-1"] for p in levels.documents.values())
        assert summaries.background.full_scans == levels.background.full_scans == 1
        assert summaries.last is not None
        assert levels.last is not None
        assert (summaries.last.passes[0].full_scan, summaries.last.events) == (False, 0)
        assert (levels.last.passes[0].full_scan, levels.last.events) == (False, 0)
        # A lease renewal would add a PUT: only GETs and LISTs are compared.
        for report, streams in ((summaries, 5), (levels, 1)):
            assert report.idle_feed is not None
            assert report.idle_scan is not None
            assert (report.idle_feed.get, report.idle_feed.list) == (1, 1)
            assert report.idle_scan.list == 1 + streams
            # The generations record, then the document (S3ReadModelStore, in_memory_demo's).
            assert report.read_cost == RequestCounts(get=2)
            assert report.epoch == 1

    def test_leases_released(self) -> None:
        """The projectors give their leases up at the end: another projector starts at once."""
        demo, _ = in_memory_demo()
        played(demo)
        for projector in demo.shop.projectors:
            successor: DocumentProjector[Any] = DocumentProjector(
                demo.shop.event_store,
                projector.projection,
                demo.shop.read_models,
                lease=LeaseOptions(owner="next"),
            )
            assert successor.catch_up().held_elsewhere == ()
            assert [lease and lease.epoch for lease in successor.leases().values()] == [2]
        reactor = demo.shop.fulfilment_runner()
        run = reactor.catch_up()
        assert (run.held_elsewhere, run.events, run.commands) == ((), 0, 0)
        assert all(lease is not None for lease in reactor.leases().values())
        reactor.release()

    def test_parked(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An event whose reaction keeps failing is parked and reported: the checks name it,
        and what it would have caused (an answer, a finished order) is missing."""
        react = Fulfilment.react

        def poisoned(self: Fulfilment, event: RecordedEvent[Any]) -> list[Send]:
            if event.stream == StreamName("order", "o-001") and event.version == 1:
                raise RuntimeError("the warehouse's API refused the request")
            return list(react(self, event))

        monkeypatch.setattr(Fulfilment, "react", poisoned)
        demo, _ = in_memory_demo(orders=2)
        code, lines = played(demo)
        assert code == 1
        problems = failures(demo)
        [parked] = problems["the reactor parked no event"]
        assert parked.startswith("order/o-001 v1 OrderPlaced (")
        assert parked.endswith("parked: RuntimeError: the warehouse's API refused the request")
        assert problems["each order placed got one answer from its warehouse, caused by it"] == [
            "order o-001: placed 1 times, answered 0: none"
        ]
        assert problems["every order is shipped or cancelled"] == [
            "order o-001 is placed (stock pending, paid)"
        ]
        assert "  0 duplicates, 1 events parked" in lines

    def test_event_applied_twice(self) -> None:
        """A stored summary with an event applied twice fails the fold and agreement checks,
        naming the order and field."""
        demo, _ = in_memory_demo()
        played(demo)
        report = demo.projected["order-summaries"]
        assert report.documents is not None
        order_id = demo.plan[0].order_id
        summary = report.documents[order_id]
        report.documents[order_id] = attrs.evolve(summary, events=summary.events + 1)
        once, doubled = summary.events, summary.events + 1
        assert failures(demo) == {
            "each read model equals one rebuilt from every event read back": [
                f"order-summaries[{order_id}].events: {doubled}, expected {once}"
            ],
            "the read models agree with the streams' rebuilt states": [
                f"order summaries[{order_id}].events: {doubled}, expected {once}"
            ],
            "the order summaries kept inline (read-your-writes) equal the stored ones": [
                f"inline[{order_id}].events: {once}, expected {doubled}"
            ],
        }

    def test_position_behind(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A stream's stored position short of its version fails the applied-once check, and
        the reactor's (its positions are in the same store)."""
        demo, _ = in_memory_demo()
        played(demo)
        stream = "inventory/warehouse-1"
        version = demo.shop.event_store.version(demo.shop.warehouses.stream("warehouse-1"))
        positions = S3ReadModelStore.positions

        def behind(self: S3ReadModelStore, generation: Any, streams: Any) -> dict[str, int]:
            found = positions(self, generation, streams)
            return found | ({stream: found[stream] - 1} if stream in found else {})

        monkeypatch.setattr(S3ReadModelStore, "positions", behind)
        assert failures(demo) == {
            "the reactor reacted to every event: its positions are the streams' versions": [
                f"fulfilment positions[{stream}]: {version - 1}, expected {version}"
            ],
            "each event applied once: every stream's position is its version": [
                f"reserved-stock positions[{stream}]: {version - 1}, expected {version}"
            ],
        }

    def test_inline_differs(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Inline summaries that differ from the stored ones fail the inline check, naming
        each order."""
        demo, _ = in_memory_demo(orders=2)
        played(demo)
        monkeypatch.setattr(InlineProjection, "model", property(lambda _: OrderList()))
        [(title, problems)] = failures(demo).items()
        assert title == "the order summaries kept inline (read-your-writes) equal the stored ones"
        assert [problem.split(":")[0] for problem in problems] == ["inline[o-001]", "inline[o-002]"]
        assert problems[0].startswith("inline[o-001]: nothing, expected OrderSummary(")

    def test_projector_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A projector that fails makes the run fail: its errors are shown, the read models
        are not checked, and run returns 1."""

        def broken(self: DocumentProjector[Any], **_: object) -> None:
            raise RuntimeError(f"{self.name}: model store unreachable")

        monkeypatch.setattr(DocumentProjector, "catch_up", broken)
        demo, _ = in_memory_demo()
        code, lines = played(demo, verbose=True)
        assert code == 1
        output = "\n".join(lines)
        assert "FAIL  the customers, the reactor and the projectors ran without errors" in output
        # The background thread's first pass, then each projector's last pass.
        assert output.count("RuntimeError: order-summaries: model store unreachable") == 2
        assert output.count("RuntimeError: reserved-stock: model store unreachable") == 1
        assert "The outcome: a read model is missing, see the checks" in output
        assert "  order-summaries  failed: see the checks" in output
        assert "not checked: no read model of order-summaries, see the errors" in output
        assert f"FAILED: 2 of {len(CHECKS) - 3} checks" in output


class TestPlan:
    def test_orders(self) -> None:
        """Orders have 1 to 3 distinct SKUs and unique ids; the same seed plans the same orders."""
        orders, stock = plan_orders(20, seed=5)
        assert len({order.order_id for order in orders}) == 20
        for order in orders:
            skus = [line.sku for line in order.lines]
            assert 1 <= len(skus) <= 3
            assert len(set(skus)) == len(skus)
        assert plan_orders(20, seed=5) == (orders, stock)

    def test_stock_short(self) -> None:
        """The warehouse gets some of every SKU ordered, and less than the orders ask in all."""
        orders, stock = plan_orders(20, seed=5)
        asked: dict[str, int] = {}
        for order in orders:
            for line in order.lines:
                asked[line.sku] = asked.get(line.sku, 0) + line.quantity
        assert {item.sku for item in stock} == set(asked)
        assert all(1 <= item.quantity <= asked[item.sku] for item in stock)
        assert sum(item.quantity for item in stock) < sum(asked.values())


# The payment service and the fulfilment reactor, on an in-memory store


MUGS = (OrderLine(sku="mug", quantity=2, unit_price_cents=899),)


@pytest.fixture
def shop() -> Shop:
    """A shop whose warehouse w-1 holds 2 mugs."""
    shop = Shop(InMemoryObjectStore(), warehouse_id="w-1")
    mugs = (StockItem(sku="mug", quantity=2),)
    shop.warehouse_handler.handle("w-1", ReceiveStock(warehouse_id="w-1", items=mugs))
    return shop


def place(shop: Shop, order_id: str, lines: tuple[OrderLine, ...] = MUGS) -> None:
    shop.place(PlaceOrder(order_id=order_id, lines=lines))


def pay(shop: Shop, order_id: str, cents: int = 2 * 899) -> None:
    shop.payments.record_payment(PaymentDelivery(order_id, f"p-{order_id}", cents))


def settle(runner: ReactorRunner) -> int:
    """Passes until one reads nothing new; the commands sent."""
    commands = 0
    while (run := runner.catch_up()).events:
        assert run.parked == ()
        commands += run.commands
    return commands


def events(shop: Shop, stream: StreamName) -> list[RecordedEvent[Any]]:
    repository = shop.orders if stream.type == Order.STREAM_TYPE else shop.warehouses
    return list(repository.read(stream.id))


class TestAsyncHandlers:
    def test_write_where_the_shop_reads_with_its_retries(self, shop: Shop) -> None:
        """The web app's async handlers write under the shop's prefix, with its feed, and the
        warehouse's retries as often as the sync one (its stream is the one every order
        contends on)."""
        handlers = shop.async_handlers(AsyncInMemoryObjectStore())
        assert handlers.warehouses.retry == shop.warehouse_handler.retry == WAREHOUSE_RETRY
        assert handlers.orders.retry == shop.order_handler.retry


class TestPaymentService:
    def test_duplicate_payment(self, shop: Shop) -> None:
        """A payment notice delivered twice records one payment; the second stores nothing."""
        place(shop, "o-1")
        delivery = PaymentDelivery(order_id="o-1", payment_id="p-1", amount_cents=2 * 899)
        first = shop.payments.record_payment(delivery)
        second = shop.payments.record_payment(delivery)
        assert (len(first.recorded), len(second.recorded)) == (1, 0)
        stream = first.stream
        assert shop.ledger.acknowledged[stream][1:] == [first.recorded[0].id]
        assert (shop.ledger.commands[stream], shop.ledger.unchanged[stream]) == (3, 1)
        assert first.recorded[0].metadata[CORRELATION_ID] == "o-1"

    def test_resend_after_retries_exhausted(self) -> None:
        """A command that lost every attempt is sent again whole; being idempotent, it succeeds."""
        memory = InMemoryObjectStore()
        rival_orders = CommandHandler(Repository(EventStore(memory), Order))
        rival_orders.handle("o-1", PlaceOrder(order_id="o-1", lines=MUGS))
        payment = RecordPayment(order_id="o-1", payment_id="p-1", amount_cents=2 * 899)
        store = RivalFirst(memory, lambda: rival_orders.handle("o-1", payment))
        orders = CommandHandler(Repository(EventStore(store), Order), RetryPolicy(max_attempts=1))
        ledger = Ledger()
        result = send(orders, "o-1", payment, ledger, service="payment")
        assert (result.version, result.recorded) == (2, ())
        stream = result.stream
        assert (ledger.exhausted[stream], ledger.conflicts[stream], ledger.commands[stream]) == (
            1,
            1,
            1,
        )
        assert ledger.by_stream_type(ledger.exhausted) == {"order": 1}


class RivalFirst(ForwardingObjectStore):
    """An in-memory store on which a rival's command runs just before our first PUT of a key."""

    def __init__(self, store: InMemoryObjectStore, rival: Callable[[], object]) -> None:
        super().__init__(store)
        self.rival: Callable[[], object] | None = rival

    def put_if_absent(self, key: str, body: bytes) -> str:
        rival, self.rival = self.rival, None
        if rival is not None:
            rival()
        return super().put_if_absent(key, body)


def recorded(stream: StreamName, version: int, event: object) -> RecordedEvent[Any]:
    return RecordedEvent(
        stream, version, f"e-{version}", type(event).__name__, event, {}, datetime.now(UTC)
    )


class TestFulfilment:
    ORDER = StreamName("order", "o-1")
    WAREHOUSE = StreamName("inventory", "w-1")
    ITEMS = (StockItem(sku="mug", quantity=2),)

    @pytest.mark.parametrize(
        ("stream", "event", "expected"),
        [
            (
                ORDER,
                OrderPlaced(order_id="o-1", lines=MUGS, total_cents=1798),
                Send(Inventory, "w-1", ReserveStock("w-1", "o-1", ITEMS)),
            ),
            (
                WAREHOUSE,
                StockReserved(order_id="o-1", items=ITEMS),
                Send(Order, "o-1", ConfirmStock("o-1", "w-1")),
            ),
            (
                WAREHOUSE,
                StockShortage(order_id="o-1", short_skus=("mug", "cup")),
                Send(Order, "o-1", RefuseStock("o-1", "w-1", ("mug", "cup"))),
            ),
            (
                ORDER,
                PaymentRecorded(payment_id="p-1", amount_cents=1798),
                Send(Order, "o-1", ShipWhenReady("o-1")),
            ),
            (
                ORDER,
                StockConfirmed(warehouse_id="w-1"),
                Send(Order, "o-1", ShipWhenReady("o-1")),
            ),
            (
                ORDER,
                StockRefused(warehouse_id="w-1", short_skus=("mug", "cup")),
                Send(Order, "o-1", CancelOrder("o-1", "out of stock: mug, cup")),
            ),
            (
                ORDER,
                OrderCancelled(reason="-", refund_due_cents=0),
                Send(Inventory, "w-1", ReleaseStock("w-1", "o-1")),
            ),
        ],
        ids=lambda value: type(value).__name__ if not isinstance(value, StreamName) else "",
    )
    def test_react(self, stream: StreamName, event: object, expected: Send) -> None:
        """Each event calls for one command, on the stream the table names."""
        assert list(Fulfilment("w-1").react(recorded(stream, 1, event))) == [expected]

    @pytest.mark.parametrize(
        ("stream", "event"),
        [
            (ORDER, OrderShipped()),
            (WAREHOUSE, StockReceived(warehouse_id="w-1", items=ITEMS)),
            (WAREHOUSE, StockReleased(order_id="o-1", items=ITEMS)),
        ],
        ids=["shipped", "received", "released"],
    )
    def test_no_reaction(self, stream: StreamName, event: object) -> None:
        """The end of a flow, and stock received, call for nothing."""
        assert list(Fulfilment("w-1").react(recorded(stream, 1, event))) == []

    def test_ships(self, shop: Shop) -> None:
        """An order placed and paid is reserved, confirmed and shipped, each event of its flow
        on both streams carrying the order's id and its cause."""
        place(shop, "o-1")
        pay(shop, "o-1")
        settle(shop.fulfilment)
        order = events(shop, self.ORDER)
        warehouse = events(shop, self.WAREHOUSE)
        assert [e.type for e in order] == [
            "OrderPlaced",
            "PaymentRecorded",
            "StockConfirmed",
            "OrderShipped",
        ]
        assert [e.type for e in warehouse] == ["StockReceived", "StockReserved"]
        placed, paid, confirmed, shipped = order
        reserved = warehouse[1]
        causes = {e.type: e.metadata.get(CAUSATION_ID) for e in (*order, reserved)}
        assert causes == {
            "OrderPlaced": None,
            "PaymentRecorded": None,
            "StockReserved": placed.id,
            "StockConfirmed": reserved.id,
            "OrderShipped": confirmed.id,
        }
        assert {e.metadata[CORRELATION_ID] for e in (*order, reserved)} == {"o-1"}
        assert shop.inline_summaries.model.orders["o-1"].status is OrderStatus.SHIPPED
        assert paid.id in shop.ledger.acknowledged[self.ORDER]
        assert shipped.id in shop.ledger.acknowledged[self.ORDER]

    def test_ships_when_paid_last(self, shop: Shop) -> None:
        """Reserved first, paid after: the reaction to the payment ships it."""
        place(shop, "o-1")
        settle(shop.fulfilment)
        assert shop.orders.load("o-1").state.status is OrderStatus.PLACED
        pay(shop, "o-1")
        settle(shop.fulfilment)
        *_, paid, shipped = events(shop, self.ORDER)
        assert (paid.type, shipped.type) == ("PaymentRecorded", "OrderShipped")
        assert shipped.metadata[CAUSATION_ID] == paid.id

    def test_shortage_cancels(self, shop: Shop) -> None:
        """An order the warehouse cannot fill is refused, then cancelled with its payment due
        back; the release its cancellation calls for stores nothing."""
        place(shop, "o-1", (OrderLine(sku="mug", quantity=5, unit_price_cents=899),))
        pay(shop, "o-1", 5 * 899)
        settle(shop.fulfilment)
        state = shop.orders.load("o-1").state
        assert (state.status, state.stock, state.refund_due_cents) == (
            OrderStatus.CANCELLED,
            StockStatus.REFUSED,
            5 * 899,
        )
        assert state.cancel_reason == "out of stock: mug"
        assert [e.type for e in events(shop, self.WAREHOUSE)] == ["StockReceived", "StockShortage"]
        assert shop.ledger.unchanged_by["fulfilment"] >= 1  # the release: nothing to give back

    def test_cancelled_releases(self, shop: Shop) -> None:
        """An order its customer cancels after the stock was reserved gives the stock back."""
        place(shop, "o-1")
        settle(shop.fulfilment)
        shop.order_handler.handle("o-1", CancelOrder(order_id="o-1", reason="changed my mind"))
        settle(shop.fulfilment)
        *_, released = events(shop, self.WAREHOUSE)
        assert released.event == StockReleased(order_id="o-1", items=self.ITEMS)
        assert shop.warehouses.load("w-1").state.available == {"mug": 2}

    def test_cancelled_before_reserved(self, shop: Shop) -> None:
        """An order cancelled before the reactor saw it placed: the stock is reserved, not
        confirmed on the order, then released."""
        place(shop, "o-1")
        shop.order_handler.handle("o-1", CancelOrder(order_id="o-1", reason="changed my mind"))
        settle(shop.fulfilment)
        assert [e.type for e in events(shop, self.WAREHOUSE)] == [
            "StockReceived",
            "StockReserved",
            "StockReleased",
        ]
        assert [e.type for e in events(shop, self.ORDER)] == ["OrderPlaced", "OrderCancelled"]

    def test_reacted_again(self, shop: Shop) -> None:
        """A runner that reacts to every event again (its positions lost) sends the same
        commands: each stored one is answered as a duplicate, and nothing more is stored."""
        place(shop, "o-1")
        pay(shop, "o-1")
        settle(shop.fulfilment)
        shop.fulfilment.release()
        versions = [shop.event_store.version(s) for s in (self.ORDER, self.WAREHOUSE)]
        again = ReactorRunner(
            shop.event_store,
            Fulfilment("w-1"),
            S3ReadModelStore(shop.store, "replayed"),
            handlers=shop.fulfilment_handlers,
        )
        run = again.catch_up()
        assert (run.events, run.parked) == (6, ())
        assert run.duplicates == 3  # the reservation, the confirmation, the shipment
        assert [shop.event_store.version(s) for s in (self.ORDER, self.WAREHOUSE)] == versions
        assert sum(shop.ledger.duplicates.values()) == 3

    def test_ledger_hooks(self) -> None:
        """A handler with the ledger's hooks counts each command as its service's; a duplicate
        is not acknowledged again."""
        ledger = Ledger()
        store = EventStore(InMemoryObjectStore())
        orders = CommandHandler(Repository(store, Order), hooks=ledger.hooks("fulfilment"))
        place_order = PlaceOrder(order_id="o-1", lines=MUGS)
        first = orders.handle("o-1", place_order, command_id="c-1")
        again = orders.handle("o-1", place_order, command_id="c-1")
        assert again.duplicate
        stream = first.stream
        assert ledger.acknowledged[stream] == [first.recorded[0].id]
        assert (ledger.commands[stream], ledger.duplicates[stream]) == (2, 1)
        assert (ledger.commands_by["fulfilment"], ledger.unchanged_by["fulfilment"]) == (2, 1)
