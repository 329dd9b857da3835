"""``python -m examples.orders``: the payment and inventory services racing on the same orders.

The run, in phases:

1. stock the warehouse (less than the orders will ask for) and place the orders;
2. run the payment service and the inventory service at the same time, ``--workers`` threads
   each, over the same orders: their appends to one order stream collide, the inventory
   workers' appends to the one warehouse stream collide, and every payment notice of every
   other order is delivered twice;
   Meanwhile two projectors keep their read models up to date in the background (see
   :mod:`examples.orders.projections`): the orders listed by status, the stock reserved per
   product. The writers' event store has the change feed on: each append also PUTs an empty
   feed entry, which lets a projector pass list one feed instead of every stream;
3. ship every order that is paid and reserved, cancel every order the warehouse refused;
4. each projector's last pass, over the change feed; then an idle pass of each kind (feed,
   full scan), to show what they cost;
5. report each order's outcome, the read models, the conflicts and retries met, the S3 requests
   sent;
6. check every stream: its loaded state equals a replay of all its events, the events read back
   are exactly the acknowledged ones, its versions have no gap; and the warehouse never sold
   stock it did not have. Check each read model: it equals a fold of every event read back,
   its checkpoints are the streams' versions (each event applied once), it agrees with the
   replayed states, and the order summaries kept inline by the order handler (read-your-writes,
   in memory) equal the stored ones. Exit 1 if any check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import queue
import random
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import attrs
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from examples.orders.domain import (
    Order,
    OrderLine,
    OrderState,
    OrderStatus,
    PlaceOrder,
    StockStatus,
    format_cents,
)
from examples.orders.inventory import Inventory, InventoryState, ReceiveStock, StockItem
from examples.orders.projections import (
    OrderList,
    OrderSummaries,
    OrderSummary,
    ProductStock,
    ReservedStock,
    StockLevels,
)
from examples.orders.services import (
    InventoryService,
    Ledger,
    PaymentDelivery,
    PaymentService,
    ShippingService,
    send,
)
from s3es import (
    CommandHandler,
    CorruptChunk,
    EventStore,
    InlineProjection,
    Projection,
    Projector,
    ReadModel,
    RecordedEvent,
    Repository,
    RetryPolicy,
    S3ObjectStore,
    StreamName,
)
from s3es._base.logging import log_level
from s3es.errors import InvalidStreamName
from s3es.eventstore import StreamKeys
from s3es.metering import S3_STANDARD_PRICES, RequestCounts, measure_requests
from s3es.projections import ProjectionPass
from s3es.storage import ObjectStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType

DEFAULT_BUCKET = "s3es-demo"
DEFAULT_ORDERS = 8
DEFAULT_WORKERS = 4
WAREHOUSE_ID = "warehouse-1"
#: Every reservation appends to the one warehouse stream: with many workers a writer can lose
#: many races in a row, so its handler is more patient than the default (10 attempts).
WAREHOUSE_RETRY = RetryPolicy(max_attempts=30)
#: SKU to unit price in cents.
CATALOGUE = {"kettle": 3499, "teapot": 2450, "tea-tin": 1275, "mug": 899, "strainer": 650}
#: The warehouse is stocked with this share of what the orders ask for, so some are refused.
STOCK_SHARE = 0.75
#: Above this many orders, a summary replaces the table of orders.
TABLE_LIMIT = 16
#: Seconds between two passes of the projectors running in the background.
PROJECTOR_INTERVAL = 0.1
#: Said when the demo runs on its own moto server (no --endpoint-url).
MOTO_NOTE = (
    "moto alone is not atomic (two racing If-None-Match PUTs can both succeed), so its\n"
    "               conditional writes are serialised by a lock here, as S3's are atomic"
)


def positive_int(text: str) -> int:
    """An argparse type: an int of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _prefix(text: str) -> str:
    try:
        return StreamKeys(text).prefix
    except InvalidStreamName as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def build_parser() -> argparse.ArgumentParser:
    """The command line of the demo."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.orders",
        description=(
            "A payment service and an inventory service write concurrently to the same order "
            "streams (and the inventory service to one warehouse stream) in S3; then every "
            "stream is checked against a full replay and against the events acknowledged."
        ),
        epilog=(
            "Without --endpoint-url, moto's S3 server is started on 127.0.0.1 for the run (its "
            "conditional writes serialised by a lock, because moto alone is not atomic), the "
            "bucket is created there, and the server is stopped at the end. With --endpoint-url "
            "(AWS, MinIO, any S3-compatible endpoint), credentials come from the usual AWS "
            "sources (environment, ~/.aws); the bucket is created only if HeadBucket answers "
            "404, nothing else is created, objects are written only under the prefix, and "
            "nothing is deleted."
        ),
    )
    parser.add_argument(
        "--endpoint-url",
        help="an S3 endpoint to use instead of the embedded one (e.g. https://s3.amazonaws.com)",
    )
    parser.add_argument(
        "--bucket", default=DEFAULT_BUCKET, help=f"bucket name (default: {DEFAULT_BUCKET})"
    )
    parser.add_argument(
        "--prefix",
        type=_prefix,
        help="key prefix of every stream (default: demo-<UTC timestamp>-<random>, new each run)",
    )
    parser.add_argument(
        "--orders",
        type=positive_int,
        default=DEFAULT_ORDERS,
        help=f"how many orders (default: {DEFAULT_ORDERS})",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=DEFAULT_WORKERS,
        help=f"threads of each service (default: {DEFAULT_WORKERS})",
    )
    parser.add_argument(
        "--seed", type=int, default=7, help="seed of the orders' contents (default: 7)"
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show s3es's info-level log lines (each conflict, each recovered append)",
    )
    return parser


@attrs.frozen
class PlannedOrder:
    """An order the demo will place."""

    order_id: str
    lines: tuple[OrderLine, ...]

    @property
    def total_cents(self) -> int:
        """The order's total."""
        return sum(line.total_cents for line in self.lines)


def plan_orders(count: int, seed: int) -> tuple[list[PlannedOrder], tuple[StockItem, ...]]:
    """``count`` orders of 1 to 3 SKUs, and stock of STOCK_SHARE of what they ask for."""
    rng = random.Random(seed)
    width = max(3, len(str(count)))
    orders = []
    for number in range(1, count + 1):
        skus = rng.sample(sorted(CATALOGUE), k=rng.randint(1, 3))
        lines = tuple(
            OrderLine(sku=sku, quantity=rng.randint(1, 3), unit_price_cents=CATALOGUE[sku])
            for sku in skus
        )
        orders.append(PlannedOrder(order_id=f"o-{number:0{width}d}", lines=lines))
    demand: Counter[str] = Counter()
    for order in orders:
        for line in order.lines:
            demand[line.sku] += line.quantity
    stock = tuple(
        StockItem(sku=sku, quantity=max(1, int(demand[sku] * STOCK_SHARE)))
        for sku in sorted(demand)
    )
    return orders, stock


def _typical(samples: Sequence[RequestCounts]) -> str:
    """The most common request mix among ``samples``, and how many had it."""
    if not samples:
        return "not measured"
    mixes = Counter(samples)
    mix, seen = mixes.most_common(1)[0]
    average = sum(sample.total for sample in samples) / len(samples)
    return f"{mix} ({seen} of {len(samples)}; {average:.1f} requests on average)"


@attrs.define
class Phase:
    """What one phase of the run cost."""

    label: str
    requests: RequestCounts = attrs.field(factory=RequestCounts)
    seconds: float = 0.0


@attrs.define
class Check:
    """One final check: PASS with a summary, or FAIL with details."""

    title: str
    #: Said after the title: what was checked (``9 streams``).
    summary: str = ""
    problems: list[str] = attrs.field(factory=list)

    @property
    def passed(self) -> bool:
        """Whether nothing was wrong."""
        return not self.problems


@attrs.frozen
class Outcome:
    """An order at the end of the run."""

    version: int
    state: OrderState


@attrs.define
class Passes:
    """What a projector's passes did, added up."""

    passes: int = 0
    full_scans: int = 0
    events: int = 0
    requests: RequestCounts = attrs.field(factory=RequestCounts)

    def add(self, run: ProjectionPass[Any]) -> None:
        """Count one more pass."""
        self.passes += 1
        self.full_scans += run.full_scan
        self.events += run.events
        self.requests += run.requests


@attrs.define
class ProjectorReport:
    """One projector's work in the run, and the read model it left in the store."""

    background: Passes = attrs.field(factory=Passes)
    #: Its last pass, after shipping, over the change feed.
    last: ProjectionPass[Any] | None = None
    #: What an idle pass costs: over the change feed, and as a full scan.
    idle_feed: RequestCounts | None = None
    idle_scan: RequestCounts | None = None
    #: The read model as a reader gets it, after the last pass, and what reading it cost.
    stored: ReadModel[Any] | None = None
    read_cost: RequestCounts | None = None


class Demo:
    """One run of the demo against an object store (S3 for the demo, in memory in tests)."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        prefix: str,
        orders: int,
        workers: int,
        seed: int,
        out: Callable[[str], None] = print,
    ) -> None:
        self.store = store
        self.workers = workers
        self.out = out
        # With the change feed, each append also PUTs an empty entry that projectors list.
        self.event_store = EventStore(store, prefix=prefix, feed=True)
        self.order_repository = Repository(self.event_store, Order)
        self.inventory_repository = Repository(self.event_store, Inventory)
        # The order summaries, kept in memory by the order handler right after each append.
        self.inline_summaries = InlineProjection(OrderSummaries)
        # One handler per aggregate, shared by every thread: handle() keeps its state in locals.
        self.order_handler = CommandHandler(self.order_repository, inline=[self.inline_summaries])
        self.inventory_handler = CommandHandler(self.inventory_repository, WAREHOUSE_RETRY)
        self.summaries = Projector(self.event_store, OrderSummaries, feed=True)
        self.stock_levels = Projector(self.event_store, ReservedStock, feed=True)
        self.projectors: tuple[Projector[Any], ...] = (self.summaries, self.stock_levels)
        self.projected = {projector.name: ProjectorReport() for projector in self.projectors}
        self.projector_errors: list[BaseException] = []
        # Requests the projectors sent: the phases count the writers' requests without them.
        self._projector_lock = threading.Lock()
        self.projector_requests = RequestCounts()
        self.ledger = Ledger()
        self.plan, self.stock = plan_orders(orders, seed)
        self.phases: list[Phase] = []
        self.worker_errors: list[BaseException] = []
        self.duplicates_ignored = 0
        self.services_commands = 0
        self.outcomes: dict[str, Outcome] = {}
        self.place_costs: list[RequestCounts] = []
        self.load_costs: list[RequestCounts] = []
        self.command_costs: list[RequestCounts] = []

    def writer_requests(self) -> RequestCounts:
        """Requests sent so far by everything but the projectors."""
        with self._projector_lock:
            return self.store.requests - self.projector_requests

    def projector_sent(self, requests: RequestCounts) -> None:
        """Count ``requests`` as sent by a projector."""
        with self._projector_lock:
            self.projector_requests += requests

    @contextlib.contextmanager
    def phase(self, label: str, title: str) -> Iterator[None]:
        """Measure the requests (the projectors' left out) and time of the block as a phase."""
        requests, started = self.writer_requests(), time.perf_counter()
        try:
            yield
        finally:
            phase = Phase(label, self.writer_requests() - requests, time.perf_counter() - started)
            self.phases.append(phase)
            self.out(f"  {title}: {phase.seconds:.2f} s, {phase.requests.total} requests")

    def run(self) -> int:
        """Every phase, the report and the checks; 0 if every check passed, else 1."""
        skus = ", ".join(sorted(CATALOGUE))
        self.out(f"  orders       {len(self.plan)}, each of 1 to 3 of: {skus}")
        self.out(
            f"  warehouse    {WAREHOUSE_ID}, stocked with "
            + ", ".join(f"{item.sku} {item.quantity}" for item in self.stock)
        )
        self.out(
            f"               (about {STOCK_SHARE:.0%} of what the orders ask for:"
            " some orders will be refused)"
        )
        self.out("")
        with self.phase("1. stock, place", "1. stock the warehouse, place the orders"):
            self.prepare()
        workers = f"{self.workers} thread{'s' if self.workers > 1 else ''}"
        with (
            self.phase(
                "2. services",
                f"2. payment ({workers}) and inventory ({workers}) services, concurrently",
            ),
            self.projecting_in_background(),
        ):
            self.run_services()
        self.report_background()
        with self.phase(
            "3. ship, cancel", "3. ship what is paid and reserved, cancel what was refused"
        ):
            self.ship()
        self.project()
        self.report_orders()
        self.report_read_models()
        self.report_conflicts()
        self.report_requests()
        self.out("")
        with self.phase("checks", "checks, reading every stream back"):
            checks = self.check()
        return self.report_checks(checks)

    # Phases

    def prepare(self) -> None:
        """Stock the warehouse and place every order, one after the other."""
        receive = ReceiveStock(warehouse_id=WAREHOUSE_ID, items=self.stock)
        send(self.inventory_handler, WAREHOUSE_ID, receive, self.ledger, service="warehouse")
        for order in self.plan:
            before = self.store.requests
            send(
                self.order_handler,
                order.order_id,
                PlaceOrder(order_id=order.order_id, lines=order.lines),
                self.ledger,
                service="shop",
            )
            self.place_costs.append(self.store.requests - before)

    def run_services(self) -> None:
        """Both services, ``workers`` threads each, over the same orders at the same time."""
        payments = PaymentService(self.order_handler, self.ledger)
        inventory = InventoryService(
            self.inventory_handler, self.order_handler, self.ledger, WAREHOUSE_ID
        )
        deliveries: queue.SimpleQueue[PaymentDelivery] = queue.SimpleQueue()
        reservations: queue.SimpleQueue[PlannedOrder] = queue.SimpleQueue()
        for number, order in enumerate(self.plan):
            delivery = PaymentDelivery(
                order_id=order.order_id,
                payment_id=f"pay-{order.order_id}",
                amount_cents=order.total_cents,
            )
            # Payment providers deliver notices at least once: every other one comes twice.
            for _ in range(2 if number % 2 == 0 else 1):
                deliveries.put(delivery)
            reservations.put(order)
        lock = threading.Lock()
        start = threading.Barrier(2 * self.workers)
        commands_before = sum(self.ledger.commands.values())

        def pay() -> None:
            start.wait(timeout=60)
            with contextlib.suppress(queue.Empty):
                while True:
                    result = payments.record_payment(deliveries.get_nowait())
                    if not result.recorded:
                        with lock:
                            self.duplicates_ignored += 1

        def reserve() -> None:
            start.wait(timeout=60)
            with contextlib.suppress(queue.Empty):
                while True:
                    order = reservations.get_nowait()
                    inventory.reserve(order.order_id, order.lines)

        with ThreadPoolExecutor(max_workers=2 * self.workers) as pool:
            futures = [pool.submit(pay) for _ in range(self.workers)]
            futures += [pool.submit(reserve) for _ in range(self.workers)]
        self.worker_errors = [error for f in futures if (error := f.exception()) is not None]
        self.services_commands = sum(self.ledger.commands.values()) - commands_before

    def ship(self) -> None:
        """Ship or cancel every order, one after the other, measuring each load and command."""
        shipping = ShippingService(self.order_handler, self.ledger)
        for order in self.plan:
            before = self.store.requests
            loaded = self.order_repository.load(order.order_id)
            after_load = self.store.requests
            result = shipping.dispatch(loaded.state)
            self.load_costs.append(after_load - before)
            if result is None:
                self.outcomes[order.order_id] = Outcome(loaded.version, loaded.state)
            else:
                self.command_costs.append(self.store.requests - after_load)
                self.outcomes[order.order_id] = Outcome(result.version, result.state)

    # Projectors

    @contextlib.contextmanager
    def projecting_in_background(self) -> Iterator[None]:
        """Keep the read models up to date from a thread while the block runs.

        Before the block, a first pass of each projector (a full scan); during it, a pass of
        each every PROJECTOR_INTERVAL seconds (over the change feed); after it, one more, so
        that the read models reflect every event stored. A pass that raises ends the thread;
        its error goes to ``projector_errors``, which the checks report.
        """
        stop, ready = threading.Event(), threading.Event()
        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(self._project_until, stop, ready)
            ready.wait()
            try:
                yield
            finally:
                stop.set()
        error = future.exception()
        if error is not None:
            self.projector_errors.append(error)

    def _project_until(self, stop: threading.Event, ready: threading.Event) -> None:
        with measure_requests() as meter:
            try:
                self._background_passes()
                ready.set()
                while not stop.wait(PROJECTOR_INTERVAL):
                    self._background_passes()
                self._background_passes()
            finally:
                ready.set()
                self.projector_sent(meter.counts)

    def _background_passes(self) -> None:
        for projector in self.projectors:
            self.projected[projector.name].background.add(projector.catch_up())

    def project(self) -> None:
        """Phase 4: each projector's last pass, over the feed; idle passes; a read; a release."""
        started = time.perf_counter()
        before = self.projector_requests
        with measure_requests() as meter:
            for projector in self.projectors:
                try:
                    self._finish(projector, self.projected[projector.name])
                except Exception as error:  # noqa: BLE001 - reported by the checks
                    self.projector_errors.append(error)
        self.projector_sent(meter.counts)
        seconds = time.perf_counter() - started
        self.phases.append(Phase("projectors", self.projector_requests, seconds))
        self.out(
            "  4. each projector's last pass (over the change feed), then idle passes:"
            f" {seconds:.2f} s, {(self.projector_requests - before).total} requests"
        )

    @staticmethod
    def _finish(projector: Projector[Any], report: ProjectorReport) -> None:
        report.last = projector.catch_up(full_scan=False)
        report.idle_feed = projector.catch_up(full_scan=False).requests
        report.idle_scan = projector.catch_up(full_scan=True).requests
        with measure_requests() as reading:
            report.stored = projector.read()
        report.read_cost = reading.counts
        # Let the lease go now: a projector started next need not wait for it to expire.
        projector.release()

    # Report

    def report_orders(self) -> None:
        """Each order's outcome (or a summary of them, for many orders)."""
        conflicts = {
            order_id: self.ledger.conflicts[self.order_repository.stream(order_id)]
            for order_id in self.outcomes
        }
        self.out("")
        if len(self.outcomes) <= TABLE_LIMIT:
            self.out(
                f"  {'order':<8}{'lines':>5}{'total':>11}{'paid':>11}  {'stock':<9} "
                f"{'status':<10}{'version':>7}{'conflicts':>10}"
            )
            for order_id, outcome in self.outcomes.items():
                state = outcome.state
                self.out(
                    f"  {order_id:<8}{len(state.lines):>5}{format_cents(state.total_cents):>11}"
                    f"{format_cents(state.paid_cents):>11}  {state.stock:<9} {state.status:<10}"
                    f"{outcome.version:>7}{conflicts[order_id]:>10}"
                )
        statuses = Counter(str(outcome.state.status) for outcome in self.outcomes.values())
        refunds = sum(outcome.state.refund_due_cents for outcome in self.outcomes.values())
        self.out(
            "  outcome: "
            + ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
            + f"; refunds due on the cancelled ones: {format_cents(refunds)}"
        )
        if len(self.outcomes) > TABLE_LIMIT:
            busiest = sorted(conflicts.items(), key=lambda item: (-item[1], item[0]))[:5]
            self.out(
                "  most contended orders (conflicts): "
                + ", ".join(f"{order_id} ({count})" for order_id, count in busiest)
            )

    def report_background(self) -> None:
        """What the projectors did in the background while the services ran."""
        passes = [report.background for report in self.projected.values()]
        full_scans = sum(p.full_scans for p in passes)
        self.out(
            f"     meanwhile {len(passes)} projectors, in a thread: {full_scans} full scans"
            " before the services began, then"
            f"\n     {sum(p.passes for p in passes) - full_scans} passes over the change feed"
            f" until they ended; {sum(p.events for p in passes)} events applied,"
            f" {sum((p.requests for p in passes), RequestCounts()).total} requests"
        )

    def report_read_models(self) -> None:
        """The read models as a reader gets them, and what the projectors' passes cost."""
        self.out("")
        self.out("  Read models: projections, each stored with its checkpoints in one S3 object")
        summaries = self.projected[self.summaries.name].stored
        if summaries is not None:
            self.report_summaries(summaries.model)
        levels = self.projected[self.stock_levels.name].stored
        if levels is not None:
            self.report_stock_levels(levels.model)
        self.out(
            f"    {'requests of a pass':<20}{'the last (change feed)':<38}"
            f"{'idle (feed)':<17}idle (full scan)"
        )
        for name, report in self.projected.items():
            if report.last is None or report.idle_feed is None or report.idle_scan is None:
                self.out(f"    {name:<20}failed: see the checks")
                continue
            last = f"{report.last.events} events: {report.last.requests}"
            self.out(f"    {name:<20}{last:<38}{report.idle_feed!s:<17}{report.idle_scan}")
        reads = {str(r.read_cost) for r in self.projected.values() if r.read_cost is not None}
        self.out(
            f"    a reader gets a model with {' or '.join(sorted(reads))}. An idle full scan LISTs"
            " the streams and\n    each stream, an idle feed pass one feed per stream type;"
            " the feed costs each append a PUT."
        )

    def report_summaries(self, model: OrderList) -> None:
        """The orders by status: how many, their totals, (some of) their ids."""
        self.out(f"    {OrderSummaries.NAME}: orders by status")
        self.out(f"      {'status':<10}{'orders':>6}{'total':>12}{'paid':>12}{'refunds':>12}  ids")
        for status, orders in model.by_status().items():
            summaries = orders.values()
            self.out(
                f"      {status:<10}{len(orders):>6}"
                f"{format_cents(sum(s.total_cents for s in summaries)):>12}"
                f"{format_cents(sum(s.paid_cents for s in summaries)):>12}"
                f"{format_cents(sum(s.refund_due_cents for s in summaries)):>12}"
                f"  {_some(list(orders))}"
            )

    def report_stock_levels(self, model: StockLevels) -> None:
        """Units received, reserved and available per product, all warehouses together."""
        warehouses = ", ".join(sorted(model.warehouses))
        self.out(f"    {ReservedStock.NAME}: units per product in {warehouses}")
        self.out(
            f"      {'product':<10}{'received':>9}{'reserved':>10}{'available':>11}"
            f"{'orders short':>14}"
        )
        for sku, stock in model.by_product().items():
            self.out(
                f"      {sku:<10}{stock.received:>9}{stock.reserved:>10}{stock.available:>11}"
                f"{stock.short:>14}"
            )

    def report_conflicts(self) -> None:
        """Conflicts met and retries made, per stream type."""
        ledger = self.ledger
        conflicts = ledger.by_stream_type(ledger.conflicts)
        exhausted = ledger.by_stream_type(ledger.exhausted)
        commands = ledger.by_stream_type(ledger.commands)
        self.out("")
        self.out("  Conflicts: a writer lost the race for a version, caught up, and decided again")
        for stream_type, label in (
            (Order.STREAM_TYPE, f"{len(self.plan)} order streams"),
            (Inventory.STREAM_TYPE, "1 warehouse stream"),
        ):
            sent = commands[stream_type] + exhausted[stream_type]
            losers = ", ".join(
                f"{service} {count}"
                for (kind, service), count in sorted(ledger.losers.items())
                if kind == stream_type and count
            )
            self.out(
                f"    {label:<20}{conflicts[stream_type]:>5} conflicts in {sent:>3} commands"
                + (f", lost by {losers}" if losers else "")
            )
        self.out(
            "    (payment and inventory write each order at about the same time, every other"
            " payment\n     notice comes twice, every reservation appends to the one warehouse"
            " stream)"
        )
        retried, resent = sum(conflicts.values()) - sum(exhausted.values()), sum(exhausted.values())
        self.out(
            f"    retries: {retried} decisions made again by the command handlers,"
            f" {resent} commands sent again"
        )
        self.out("             by the services after RetriesExhausted")
        self.out(
            f"    duplicate payment notices: {self.duplicates_ignored} recorded nothing"
            " (same payment id: decide returns no events)"
        )

    def report_requests(self) -> None:
        """S3 requests by type and per operation, and what they would cost on S3."""
        run = sum((phase.requests for phase in self.phases), RequestCounts())
        self.out("")
        self.out(f"  {'S3 requests':<22}{'PUT':>7}{'GET':>7}{'LIST':>7}{'DELETE':>7}{'total':>7}")
        for label, counts in [
            *((phase.label, phase.requests) for phase in self.phases),
            ("run", run),
        ]:
            self.out(
                f"    {label:<20}{counts.put:>7}{counts.get:>7}{counts.list:>7}"
                f"{counts.delete:>7}{counts.total:>7}"
            )
        self.out("    measured one at a time (phases 1 and 3):")
        self.out(f"      place an order (new stream)   {_typical(self.place_costs)}")
        self.out(f"      load an order                 {_typical(self.load_costs)}")
        self.out(f"      ship or cancel an order       {_typical(self.command_costs)}")
        services = next(phase for phase in self.phases if phase.label.startswith("2."))
        if self.services_commands:
            self.out(
                "    while the services raced: "
                f"{services.requests.total / self.services_commands:.1f} requests per command"
                f" ({services.requests.total} for {self.services_commands} commands,"
                " conflicts included)"
            )
        cost = run.cost(S3_STANDARD_PRICES)
        prices = S3_STANDARD_PRICES
        self.out(
            f"    at S3 Standard prices (${prices.put * 1000:g} per 1,000 PUT,"
            f" ${prices.list * 1000:g} per 1,000 LIST, ${prices.get * 1000:g} per 1,000 GET):"
        )
        self.out(
            f"      ${cost:.6f} for this run, about"
            f" ${cost / len(self.plan) * 1_000_000:,.2f} per million orders"
        )

    # Checks

    def check(self) -> list[Check]:
        """Read every stream back; check it, then the stock and the read models, against it."""
        errors = Check("the services and the projectors ran without errors")
        errors.problems = [
            f"{type(error).__name__}: {error}"
            for error in (*self.worker_errors, *self.projector_errors)
        ]
        replay = Check("each stream's loaded state equals a full replay (state and version)")
        acknowledged = Check("the events read back are exactly the acknowledged ones, each once")
        gapless = Check("each stream's versions run from 1 with no gap")
        streams: list[tuple[Repository[Any, Any, Any], str]] = [
            (self.order_repository, order.order_id) for order in self.plan
        ]
        streams.append((self.inventory_repository, WAREHOUSE_ID))
        replayed: dict[str, Any] = {}
        read_back: dict[StreamName, StreamRead] = {}
        events = 0
        for repository, stream_id in streams:
            stream = repository.stream(stream_id)
            try:
                loaded, full = repository.load(stream_id), repository.replay(stream_id)
                recorded = list(repository.read(stream_id))
            except CorruptChunk as error:  # a gap in the versions, or an unreadable chunk
                gapless.problems.append(f"{stream}: {error}")
                continue
            replayed[stream_id] = full.state
            read_back[stream] = StreamRead(full.version, recorded)
            if loaded != full:
                replay.problems.append(
                    f"{stream}: load gave version {loaded.version} {loaded.state!r}, "
                    f"replay gave version {full.version} {full.state!r}"
                )
            versions = sorted({event.version for event in recorded})
            if versions != list(range(1, loaded.version + 1)):
                gapless.problems.append(f"{stream}: versions {versions}, loaded {loaded.version}")
            events += len(recorded)
            acknowledged.problems += _compare_ids(
                stream, [event.id for event in recorded], self.ledger.acknowledged.get(stream, [])
            )
        replay.summary = gapless.summary = f"{len(streams)} streams"
        acknowledged.summary = f"{events} events"
        return [
            errors,
            replay,
            acknowledged,
            gapless,
            *self.check_stock(replayed),
            *self.check_read_models(read_back, replayed),
        ]

    def check_stock(self, replayed: dict[str, Any]) -> list[Check]:
        """The replayed orders and warehouse agree, and no stock was reserved twice."""
        agree = Check("orders and warehouse agree on which orders got stock")
        oversold = Check("no stock oversold: available = received - reserved by orders, all >= 0")
        finished = Check("every order is shipped or cancelled")
        warehouse: InventoryState | None = replayed.get(WAREHOUSE_ID)
        orders: dict[str, OrderState] = {
            order.order_id: replayed[order.order_id]
            for order in self.plan
            if order.order_id in replayed
        }
        if warehouse is None or len(orders) < len(self.plan):
            agree.problems.append("not checked: some streams could not be read")
            return [agree]
        taken: Counter[str] = Counter()
        for order_id, state in orders.items():
            if state.stock is StockStatus.RESERVED:
                taken.update({line.sku: line.quantity for line in state.lines})
            answer = (
                StockStatus.RESERVED
                if order_id in warehouse.reservations
                else StockStatus.REFUSED
                if order_id in warehouse.shortages
                else StockStatus.PENDING
            )
            if state.stock is not answer:
                agree.problems.append(
                    f"order {order_id}: the order says stock {state.stock}, the warehouse {answer}"
                )
            if state.status not in {OrderStatus.SHIPPED, OrderStatus.CANCELLED}:
                finished.problems.append(
                    f"order {order_id} is {state.status} (stock {state.stock},"
                    f" {'paid' if state.paid else 'not paid'})"
                )
        reserved = sum(1 for state in orders.values() if state.stock is StockStatus.RESERVED)
        agree.summary = f"{reserved} reserved, {len(warehouse.shortages)} refused"
        for item in self.stock:
            left = warehouse.available.get(item.sku, 0)
            if left < 0 or left != item.quantity - taken[item.sku]:
                oversold.problems.append(
                    f"{item.sku}: received {item.quantity}, reserved by orders "
                    f"{taken[item.sku]}, available {left}"
                )
        return [agree, oversold, finished]

    def check_read_models(
        self, read_back: Mapping[StreamName, StreamRead], replayed: Mapping[str, Any]
    ) -> list[Check]:
        """Each stored read model against the events and states read back from the streams."""
        folded = Check("each read model equals a fold of every event read from the streams")
        once = Check("each event applied once: every checkpoint is its stream's version")
        agree = Check("the read models agree with the streams' replayed states")
        inline = Check("the order summaries kept inline (read-your-writes) equal the stored ones")
        stored: dict[str, ReadModel[Any]] = {}
        for name, report in self.projected.items():
            if report.stored is None:
                folded.problems.append(f"not checked: no read model of {name}, see the errors")
            else:
                stored[name] = report.stored
        if len(read_back) < len(self.plan) + 1:
            folded.problems.append("not checked: some streams could not be read")
        if folded.problems:
            return [folded]
        events = streams = 0
        for projector in self.projectors:
            read_model = stored[projector.name]
            model, versions, applied = self._fold(projector.projection, read_back)
            events, streams = events + applied, streams + len(versions)
            folded.problems += _differences(projector.name, read_model.model, model)
            once.problems += _differences(
                f"{projector.name} checkpoints", read_model.checkpoints, versions
            )
            if not read_model.complete:
                once.problems.append(f"{projector.name}: not marked complete")
        folded.summary = f"{len(self.projectors)} read models, {events} events"
        once.summary = f"{streams} streams"
        summaries, levels = stored[self.summaries.name], stored[self.stock_levels.name]
        agree.problems = self._disagreements(summaries.model, levels.model, read_back, replayed)
        agree.summary = (
            f"{len(summaries.model.orders)} orders, {len(levels.model.by_product())} products"
        )
        inline.problems = _differences(
            "inline", self.inline_summaries.model, summaries.model
        ) + _differences(
            "inline checkpoints", self.inline_summaries.checkpoints, summaries.checkpoints
        )
        inline.summary = f"{len(self.inline_summaries.model.orders)} orders"
        return [folded, once, agree, inline]

    def _fold(
        self, projection: Projection[Any], read_back: Mapping[StreamName, StreamRead]
    ) -> tuple[Any, dict[str, int], int]:
        """``projection``'s model folded from its sources' streams; their versions; the events.

        The streams are those the demo wrote and any other listed under the prefix, folded one
        after the other in name order.
        """
        repositories: dict[str, Repository[Any, Any, Any]] = {
            Order.STREAM_TYPE: self.order_repository,
            Inventory.STREAM_TYPE: self.inventory_repository,
        }
        model, versions, events = projection.initial_model(), {}, 0
        for source in type(projection).SOURCES:
            streams = {s for s in read_back if s.type == source.STREAM_TYPE}
            streams.update(self.event_store.streams(source.STREAM_TYPE))
            for stream in sorted(streams, key=str):
                read = read_back.get(stream) or StreamRead(
                    self.event_store.version(stream),
                    list(repositories[stream.type].read(stream.id)),
                )
                for event in read.events:
                    model = projection.apply(model, event)
                events += len(read.events)
                versions[str(stream)] = read.version
        return model, versions, events

    def _disagreements(
        self,
        summaries: OrderList,
        levels: StockLevels,
        read_back: Mapping[StreamName, StreamRead],
        replayed: Mapping[str, Any],
    ) -> list[str]:
        """Where the read models differ from what the aggregates' own states say."""
        expected: dict[str, OrderSummary] = {}
        for order in self.plan:
            state: OrderState = replayed[order.order_id]
            expected[order.order_id] = OrderSummary(
                status=state.status,
                lines=len(state.lines),
                total_cents=state.total_cents,
                paid=state.paid,
                paid_cents=state.paid_cents,
                stock=state.stock,
                refund_due_cents=state.refund_due_cents,
                events=len(read_back[self.order_repository.stream(order.order_id)].events),
            )
        problems = _differences("order summaries", dict(summaries.orders), expected)
        warehouse: InventoryState = replayed[WAREHOUSE_ID]
        reserved: Counter[str] = Counter()
        for items in warehouse.reservations.values():
            reserved.update({item.sku: item.quantity for item in items})
        short = Counter(sku for skus in warehouse.shortages.values() for sku in skus)
        products = levels.warehouses.get(WAREHOUSE_ID, {})
        for sku in sorted(set(products) | set(warehouse.available)):
            stock = products.get(sku, ProductStock())
            said = (stock.available, stock.reserved, stock.short)
            state_says = (warehouse.available.get(sku, 0), reserved[sku], short[sku])
            if said != state_says:
                problems.append(
                    f"{WAREHOUSE_ID} {sku}: available, reserved, orders short {said} in the"
                    f" read model, {state_says} in the warehouse's state"
                )
        return problems

    def report_checks(self, checks: Sequence[Check]) -> int:
        """Print PASS/FAIL per check; 0 if all passed, else 1."""
        self.out("")
        self.out("  Checks")
        for check in checks:
            summary = f": {check.summary}" if check.summary else ""
            self.out(f"    {'PASS' if check.passed else 'FAIL'}  {check.title}{summary}")
            for problem in check.problems[:10]:
                self.out(f"            {problem}")
            if len(check.problems) > 10:
                self.out(f"            ... and {len(check.problems) - 10} more")
        failed = sum(1 for check in checks if not check.passed)
        self.out("")
        if failed:
            self.out(f"  FAILED: {failed} of {len(checks)} checks")
            return 1
        self.out(f"  All {len(checks)} checks passed.")
        return 0


def _some(ids: Sequence[str], width: int = 30) -> str:
    """As many of ``ids`` as fit in about ``width`` characters, and how many more there are."""
    shown: list[str] = []
    for number, item in enumerate(ids):
        if len(" ".join([*shown, item])) > width:
            return " ".join([*shown, f"+{len(ids) - number} more"])
        shown.append(item)
    return " ".join(shown)


@attrs.frozen
class StreamRead:
    """A stream as the checks read it back: its version and every event."""

    version: int
    events: list[RecordedEvent[Any]]


class _Missing:
    def __repr__(self) -> str:
        return "nothing"


_MISSING = _Missing()


def _differences(label: str, found: object, expected: object) -> list[str]:
    """Where ``found`` differs from ``expected``, down to attrs fields and mapping entries."""
    found_type = type(found)
    if attrs.has(found_type) and found_type is type(expected):
        return [
            problem
            for field in attrs.fields(found_type)
            for problem in _differences(
                f"{label}.{field.name}", getattr(found, field.name), getattr(expected, field.name)
            )
        ]
    if isinstance(found, Mapping) and isinstance(expected, Mapping):
        return [
            problem
            for key in sorted(set(found) | set(expected), key=str)
            for problem in _differences(
                f"{label}[{key}]", found.get(key, _MISSING), expected.get(key, _MISSING)
            )
        ]
    return [] if found == expected else [f"{label}: {found!r}, expected {expected!r}"]


def _compare_ids(stream: StreamName, stored: list[str], acknowledged: list[str]) -> list[str]:
    problems = []
    for what, ids in (("stored", stored), ("acknowledged", acknowledged)):
        repeated = sorted(event_id for event_id, n in Counter(ids).items() if n > 1)
        if repeated:
            problems.append(f"{stream}: {what} more than once: {', '.join(repeated)}")
    missing = sorted(set(acknowledged) - set(stored))
    if missing:
        problems.append(f"{stream}: acknowledged but missing: {', '.join(missing)}")
    unacknowledged = sorted(set(stored) - set(acknowledged))
    if unacknowledged:
        problems.append(f"{stream}: stored but never acknowledged: {', '.join(unacknowledged)}")
    return problems


class SetupError(Exception):
    """The run cannot start: no S3 endpoint or bucket to use."""


def ensure_bucket(client: S3Client, bucket: str) -> bool:
    """Create ``bucket`` if HeadBucket answers 404; True if it was created."""
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
            raise
    else:
        return False
    region = client.meta.region_name
    if region and region != "us-east-1":
        location = cast("BucketLocationConstraintType", region)
        client.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": location}
        )
    else:
        client.create_bucket(Bucket=bucket)
    return True


def _open_store(
    arguments: argparse.Namespace, stack: contextlib.ExitStack, out: Callable[[str], None]
) -> S3ObjectStore:
    """The object store of the run: on the given endpoint, or on an embedded one."""
    # Every thread of both services may hold a connection at once.
    config = Config(max_pool_connections=2 * arguments.workers + 4)
    if arguments.endpoint_url is None:
        try:
            from s3es.testing.embedded_s3 import EmbeddedS3  # noqa: PLC0415 - needs moto
        except ImportError as error:
            raise SetupError(f"{error}; or pass --endpoint-url") from error
        server = stack.enter_context(EmbeddedS3())
        store = server.object_store(arguments.bucket, client_config=config)
        out(f"  S3 endpoint  embedded moto server at {server.endpoint_url}, stopped at the end")
        out(f"               {MOTO_NOTE}")
    else:
        store = S3ObjectStore.connect(
            arguments.bucket, endpoint_url=arguments.endpoint_url, client_config=config
        )
        out(f"  S3 endpoint  {arguments.endpoint_url}")
    created = ensure_bucket(store.client, arguments.bucket)
    out(f"  bucket       {arguments.bucket} ({'created' if created else 'exists'})")
    return store


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; the exit status: 0 if every check passed, 1 if one failed, 2 on setup."""
    arguments = build_parser().parse_args(argv)
    out = print
    prefix = arguments.prefix or f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    with log_level(logging.INFO if arguments.verbose else logging.WARNING):
        out(
            "s3es orders demo: a payment service and an inventory service write to the same"
            " streams at once"
        )
        out("")
        with contextlib.ExitStack() as stack:
            try:
                store = _open_store(arguments, stack, out)
            except (BotoCoreError, ClientError) as error:
                print(f"error: cannot use bucket {arguments.bucket!r}: {error}", file=sys.stderr)
                return 2
            except SetupError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
            out(f"  prefix       {prefix}")
            demo = Demo(
                store,
                prefix=prefix,
                orders=arguments.orders,
                workers=arguments.workers,
                seed=arguments.seed,
                out=out,
            )
            return demo.run()
