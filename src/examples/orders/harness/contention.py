"""The contention run: customers' payments and the fulfilment reactor racing over the orders.

In phases, each measured (S3 requests and seconds):

1. stock the warehouse (less than the orders will ask for) and place the orders;
2. the customers pay (``workers`` threads, every other payment notice delivered twice) while
   the fulfilment reactor fills the orders, a thread per shard (a pass every
   ``REACTOR_INTERVAL``): the payments and the reactor's stock confirmations, shipments and
   cancellations collide on the order streams, the shards' reservations on the one warehouse
   stream. Meanwhile a thread keeps both read models up to date (a projector pass every
   ``PROJECTOR_INTERVAL``; the first a full scan, or a rebuild if the read-model store holds an
   earlier run's documents). Once every payment is in, the reactor's threads stop and its
   passes run until one (a full scan) finds nothing new: every flow has ended;
3. load each order as it ended;
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

from examples.orders.app import FULFILMENT_SHARDS, Shop
from examples.orders.domain import OrderError, OrderLine, OrderState, OrderStatus, PlaceOrder
from examples.orders.inventory import ReceiveStock, StockItem
from examples.orders.services import PaymentDelivery, send
from s3es import RecordedEvent
from s3es.metering import RequestCounts, measure_requests
from s3es.projections import DocumentPass, DocumentProjector
from s3es.reactors import CORRELATION_ID, ReactorPass, ReactorRunner
from s3es.readmodels import Generation

#: SKU to unit price in cents.
CATALOGUE = {"kettle": 3499, "teapot": 2450, "tea-tin": 1275, "mug": 899, "strainer": 650}
#: The warehouse is stocked with this share of what the orders ask for, so some are refused.
STOCK_SHARE = 0.75
#: Seconds between two passes of the projectors running in the background.
PROJECTOR_INTERVAL = 0.1
#: Seconds between two passes of each of the reactor's threads.
REACTOR_INTERVAL = 0.02
#: At most this many rounds of passes to let the reactor finish every flow at the end.
SETTLE_ROUNDS = 50


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


@attrs.define
class ReactorWork:
    """What the fulfilment reactor's passes did, added up (from several threads)."""

    passes: int = 0
    events: int = 0
    commands: int = 0
    duplicates: int = 0
    parked: list[str] = attrs.field(factory=list)
    requests: RequestCounts = attrs.field(factory=RequestCounts)
    #: Rounds of passes (every shard) run at the end, until one found nothing new.
    settle_rounds: int = 0
    #: True if the store held an earlier run's positions, dropped before the first pass.
    reset: bool = False
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def add(self, done: ReactorPass) -> None:
        """Count one more pass."""
        with self._lock:
            self.passes += 1
            self.events += done.events
            self.commands += done.commands
            self.duplicates += done.duplicates
            self.parked += done.parked
            self.requests += done.requests


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
        self.reactor_errors: list[BaseException] = []
        self.reacted = ReactorWork()
        # Requests the projectors sent: the phases count the writers' requests without them.
        self._projector_lock = threading.Lock()
        self.projector_requests = RequestCounts()
        self.phases: list[Phase] = []
        self.duplicates_ignored = 0
        #: Payments that came after their order was cancelled (out of stock): refused.
        self.payments_refused = 0
        self.race_commands = 0
        self.outcomes: dict[str, Outcome] = {}
        self.place_costs: list[RequestCounts] = []
        self.load_costs: list[RequestCounts] = []

    def run(self) -> None:
        """Every phase, one after the other; errors of the threads are kept, not raised."""
        with self.phase("stock and place"):
            self.prepare()
        with self.phase("pay and fulfil"), self.projecting_in_background():
            commands_before = sum(self.shop.ledger.commands.values())
            with self.reacting_in_background():
                self.pay()
            self.race_commands = sum(self.shop.ledger.commands.values()) - commands_before
        with self.phase("load each order"):
            self.load()
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
        receive = ReceiveStock(warehouse_id=shop.warehouse_id, items=self.stock)
        send(
            shop.warehouse_handler,
            receive.warehouse_id,
            receive,
            shop.ledger,
            service="warehouse",
        )
        for order in self.plan:
            before = shop.store.requests
            shop.place(PlaceOrder(order_id=order.order_id, lines=order.lines))
            self.place_costs.append(shop.store.requests - before)

    def pay(self) -> None:
        """The customers pay, ``workers`` threads, each notice of every other order twice.

        A payment that comes after its order was cancelled (the reactor found it out of stock
        first) is refused by the order: counted, for the provider to pay back.
        """
        deliveries: queue.SimpleQueue[PaymentDelivery] = queue.SimpleQueue()
        for number, order in enumerate(self.plan):
            delivery = PaymentDelivery(
                order_id=order.order_id,
                payment_id=f"pay-{order.order_id}",
                amount_cents=order.total_cents,
            )
            # Payment providers deliver notices at least once: every other one comes twice.
            for _ in range(2 if number % 2 == 0 else 1):
                deliveries.put(delivery)
        lock = threading.Lock()
        start = threading.Barrier(self.workers)
        shop = self.shop

        def pay() -> None:
            start.wait(timeout=60)
            with contextlib.suppress(queue.Empty):
                while True:
                    delivery = deliveries.get_nowait()
                    try:
                        result = shop.payments.record_payment(delivery)
                    except OrderError:
                        state = shop.orders.load(delivery.order_id).state
                        if state.status is not OrderStatus.CANCELLED or state.paid:
                            raise
                        with lock:
                            self.payments_refused += 1
                        continue
                    if not result.recorded:
                        with lock:
                            self.duplicates_ignored += 1

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [pool.submit(pay) for _ in range(self.workers)]
        self.worker_errors = [error for f in futures if (error := f.exception()) is not None]

    def load(self) -> None:
        """Load each order as it ended, measuring each load."""
        shop = self.shop
        for order in self.plan:
            before = shop.store.requests
            loaded = shop.orders.load(order.order_id)
            self.load_costs.append(shop.store.requests - before)
            self.outcomes[order.order_id] = Outcome(loaded.version, loaded.state)

    def flow(self, order_id: str) -> list[RecordedEvent[Any]]:
        """The events of ``order_id``'s flow, in the order they were stored.

        Those of its stream and the warehouse's whose correlation id is the order's id.
        """
        shop = self.shop
        events: list[RecordedEvent[Any]] = [
            *shop.orders.read(order_id),
            *shop.warehouses.read(shop.warehouse_id),
        ]
        mine = [event for event in events if event.metadata.get(CORRELATION_ID) == order_id]
        return sorted(mine, key=lambda event: (event.recorded_at, str(event.stream), event.version))

    @contextlib.contextmanager
    def reacting_in_background(self) -> Iterator[None]:
        """Run the fulfilment reactor while the block runs, then until every flow has ended.

        A thread per shard, each running its own runner (holding that shard's lease), a pass
        every REACTOR_INTERVAL seconds. After the block the threads stop (letting their leases
        go) and one runner of every shard runs passes until one, a full scan, finds nothing
        new. An error of a thread, or of those last passes, goes to ``reactor_errors``.
        """
        self._forget_earlier_run(self.shop.fulfilment)
        stop = threading.Event()
        runners = [self.shop.fulfilment_runner([shard]) for shard in range(FULFILMENT_SHARDS)]
        with ThreadPoolExecutor(max_workers=len(runners)) as pool:
            futures = [pool.submit(self._react_until, runner, stop) for runner in runners]
            try:
                yield
            finally:
                stop.set()
        self.reactor_errors += [error for f in futures if (error := f.exception()) is not None]
        try:
            self._settle()
        except Exception as error:  # noqa: BLE001 - reported by the checks
            self.reactor_errors.append(error)

    def _react_until(self, runner: ReactorRunner, stop: threading.Event) -> None:
        runner.run(stop, interval=REACTOR_INTERVAL, on_pass=self.reacted.add)

    def _settle(self) -> None:
        """Passes of every shard until a full scan finds nothing new; then release the leases."""
        runner = self.shop.fulfilment
        try:
            for _ in range(SETTLE_ROUNDS):
                self.reacted.settle_rounds += 1
                done = runner.catch_up()
                self.reacted.add(done)
                if done.events == 0:
                    scan = runner.catch_up(full_scan=True)
                    self.reacted.add(scan)
                    if scan.events == 0:
                        return
            raise RuntimeError(
                f"the reactor still found new events after {SETTLE_ROUNDS} rounds of passes"
            )
        finally:
            runner.release()

    def _forget_earlier_run(self, runner: ReactorRunner) -> None:
        """Drop the positions an earlier run left in the read-model store, if any.

        SQL tables are named after the reactor, not the run: the positions of an earlier run's
        streams (the same names, under another prefix) would have the reactor skip this run's
        events. A projector rebuilds instead; a reactor's positions are all it keeps.
        """
        store = runner.store
        record = store.generations(runner.name)
        earlier = [g for g in (record.live, record.building) if g is not None]
        if not earlier:
            return
        store.set_generations(attrs.evolve(record, live=None, building=None))
        for generation in earlier:
            store.drop(generation)
        self.reacted.reset = True

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
