"""The contention run: the payment and inventory services racing over the same orders.

In phases, each measured (S3 requests and seconds):

1. stock the warehouse (less than the orders will ask for) and place the orders;
2. the payment and inventory services at once, ``workers`` threads each, over the same orders:
   their appends to one order stream collide, the inventory workers' appends to the one
   warehouse stream collide, and every other payment notice is delivered twice. Meanwhile a
   thread keeps both read models up to date (a projector pass every ``PROJECTOR_INTERVAL``; the
   first a full scan, or a rebuild if the read-model store holds an earlier run's documents);
3. ship every order that is paid and reserved, cancel every order the warehouse refused;
4. each projector's last pass, then an idle pass of each kind (over the feed, a full scan), to
   show what they cost; every document read back, and one by key; then each projector lets its
   lease go.

:class:`Contention` only runs and measures; :mod:`~examples.orders.harness.report` tells what
happened and :mod:`~examples.orders.harness.checks` checks it.
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from examples.orders.app import Shop
from examples.orders.domain import OrderLine, OrderState, PlaceOrder
from examples.orders.inventory import ReceiveStock, StockItem
from examples.orders.services import PaymentDelivery, send
from s3es.metering import RequestCounts, measure_requests
from s3es.projections import DocumentPass, DocumentProjector
from s3es.readmodels import Generation

#: SKU to unit price in cents.
CATALOGUE = {"kettle": 3499, "teapot": 2450, "tea-tin": 1275, "mug": 899, "strainer": 650}
#: The warehouse is stocked with this share of what the orders ask for, so some are refused.
STOCK_SHARE = 0.75
#: Seconds between two passes of the projectors running in the background.
PROJECTOR_INTERVAL = 0.1


@attrs.frozen
class PlannedOrder:
    """An order the run will place."""

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


@attrs.define
class Phase:
    """What one phase of the run cost."""

    label: str
    requests: RequestCounts = attrs.field(factory=RequestCounts)
    seconds: float = 0.0


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

    def add(self, done: DocumentPass) -> None:
        """Count one more pass."""
        self.passes += 1
        self.full_scans += any(shard.full_scan for shard in done.passes)
        self.events += done.events
        self.requests += done.requests


@attrs.define
class ProjectorReport:
    """One projector's work in the run, and the documents it left in the read-model store."""

    background: Passes = attrs.field(factory=Passes)
    #: True if its first pass rebuilt the read model: the store held an earlier run's.
    rebuilt: bool = False
    #: Its last pass, after shipping, over the change feed.
    last: DocumentPass | None = None
    #: What an idle pass costs: over the change feed, and as a full scan.
    idle_feed: RequestCounts | None = None
    idle_scan: RequestCounts | None = None
    #: Every document as a reader gets it after the last pass (by key), from this generation.
    documents: dict[str, Any] | None = None
    generation: Generation | None = None
    #: What reading every document cost, and one document by key.
    list_cost: RequestCounts | None = None
    read_cost: RequestCounts | None = None
    #: The epoch of the projector's lease.
    epoch: int | None = None


class Contention:
    """One contention run of the :class:`~examples.orders.app.Shop` (S3 or in memory)."""

    def __init__(self, shop: Shop, *, orders: int, workers: int, seed: int) -> None:
        """Plan ``orders`` orders from ``seed``, for ``workers`` threads per service."""
        self.shop = shop
        self.workers = workers
        self.plan, self.stock = plan_orders(orders, seed)
        self.projected = {projector.name: ProjectorReport() for projector in shop.projectors}
        self.projector_errors: list[BaseException] = []
        self.worker_errors: list[BaseException] = []
        # Requests the projectors sent: the phases count the writers' requests without them.
        self._projector_lock = threading.Lock()
        self.projector_requests = RequestCounts()
        self.phases: list[Phase] = []
        self.duplicates_ignored = 0
        self.race_commands = 0
        self.outcomes: dict[str, Outcome] = {}
        self.place_costs: list[RequestCounts] = []
        self.load_costs: list[RequestCounts] = []
        self.command_costs: list[RequestCounts] = []

    def run(self) -> None:
        """Every phase, one after the other; errors of the threads are kept, not raised."""
        with self.phase("stock and place"):
            self.prepare()
        with self.phase("services race"), self.projecting_in_background():
            self.race()
        with self.phase("ship or cancel"):
            self.ship()
        self.project()

    def writer_requests(self) -> RequestCounts:
        """Requests sent so far by everything but the projectors."""
        with self._projector_lock:
            return self.shop.store.requests - self.projector_requests

    def projector_sent(self, requests: RequestCounts) -> None:
        """Count ``requests`` as sent by a projector."""
        with self._projector_lock:
            self.projector_requests += requests

    @contextlib.contextmanager
    def phase(self, label: str) -> Iterator[None]:
        """Measure the requests (the projectors' left out) and time of the block as a phase."""
        requests, started = self.writer_requests(), time.perf_counter()
        try:
            yield
        finally:
            spent = self.writer_requests() - requests
            self.phases.append(Phase(label, spent, time.perf_counter() - started))

    def prepare(self) -> None:
        """Stock the warehouse and place every order, one after the other."""
        shop = self.shop
        receive = ReceiveStock(warehouse_id=shop.inventory.warehouse_id, items=self.stock)
        send(
            shop.warehouse_handler,
            receive.warehouse_id,
            receive,
            shop.ledger,
            service="warehouse",
        )
        for order in self.plan:
            before = shop.store.requests
            place = PlaceOrder(order_id=order.order_id, lines=order.lines)
            send(shop.order_handler, order.order_id, place, shop.ledger, service="shop")
            self.place_costs.append(shop.store.requests - before)

    def race(self) -> None:
        """Both services, ``workers`` threads each, over the same orders at the same time."""
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
        commands_before = sum(self.shop.ledger.commands.values())

        def pay() -> None:
            start.wait(timeout=60)
            with contextlib.suppress(queue.Empty):
                while True:
                    result = self.shop.payments.record_payment(deliveries.get_nowait())
                    if not result.recorded:
                        with lock:
                            self.duplicates_ignored += 1

        def reserve() -> None:
            start.wait(timeout=60)
            with contextlib.suppress(queue.Empty):
                while True:
                    order = reservations.get_nowait()
                    self.shop.inventory.reserve(order.order_id, order.lines)

        with ThreadPoolExecutor(max_workers=2 * self.workers) as pool:
            futures = [pool.submit(pay) for _ in range(self.workers)]
            futures += [pool.submit(reserve) for _ in range(self.workers)]
        self.worker_errors = [error for f in futures if (error := f.exception()) is not None]
        self.race_commands = sum(self.shop.ledger.commands.values()) - commands_before

    def ship(self) -> None:
        """Ship or cancel every order, one after the other, measuring each load and command."""
        shop = self.shop
        for order in self.plan:
            before = shop.store.requests
            loaded = shop.orders.load(order.order_id)
            after_load = shop.store.requests
            result = shop.shipping.dispatch(loaded.state)
            self.load_costs.append(after_load - before)
            if result is None:
                self.outcomes[order.order_id] = Outcome(loaded.version, loaded.state)
            else:
                self.command_costs.append(shop.store.requests - after_load)
                self.outcomes[order.order_id] = Outcome(result.version, result.state)

    @contextlib.contextmanager
    def projecting_in_background(self) -> Iterator[None]:
        """Keep the read models up to date from a thread while the block runs.

        Before the block, a first pass of each projector (a full scan, or a rebuild of a read
        model an earlier run left in the store); during it, a pass of each every
        PROJECTOR_INTERVAL seconds (over the change feed); after it, one more, so
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
                for projector in self.shop.projectors:
                    report = self.projected[projector.name]
                    # SQL tables are named after the projection, not the run: a database given
                    # by name may hold the documents (and positions) of an earlier run's streams.
                    report.rebuilt = projector.reader().generation is not None
                    first = projector.rebuild() if report.rebuilt else projector.catch_up()
                    report.background.add(first)
                ready.set()
                while not stop.wait(PROJECTOR_INTERVAL):
                    self._background_passes()
                self._background_passes()
            finally:
                ready.set()
                self.projector_sent(meter.counts)

    def _background_passes(self) -> None:
        for projector in self.shop.projectors:
            self.projected[projector.name].background.add(projector.catch_up())

    def project(self) -> None:
        """Each projector's last pass, over the feed; idle passes; a read; a release."""
        started = time.perf_counter()
        with measure_requests() as meter:
            for projector in self.shop.projectors:
                try:
                    self._finish(projector, self.projected[projector.name])
                except Exception as error:  # noqa: BLE001 - reported by the checks
                    self.projector_errors.append(error)
        self.projector_sent(meter.counts)
        seconds = time.perf_counter() - started
        self.phases.append(Phase("projectors", self.projector_requests, seconds))

    @staticmethod
    def _finish(projector: DocumentProjector[Any], report: ProjectorReport) -> None:
        report.last = projector.catch_up(full_scan=False)
        report.idle_feed = projector.catch_up(full_scan=False).requests
        report.idle_scan = projector.catch_up(full_scan=True).requests
        reader = projector.reader()
        report.generation = reader.generation
        with measure_requests() as listing:
            report.documents = dict(reader.documents())
        report.list_cost = listing.counts
        with measure_requests() as reading:
            reader.get(min(report.documents, default="none"))
        report.read_cost = reading.counts
        leases = [lease.epoch for lease in projector.leases().values() if lease is not None]
        report.epoch = max(leases, default=None)
        # Let the lease go now: a projector started next need not wait for it to expire.
        projector.release()
