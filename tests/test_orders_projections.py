"""The orders example's read models: a summary per order, the stock per product (keyed
documents), and the order list kept inline."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from examples.orders.domain import (
    CancelOrder,
    ConfirmStock,
    Order,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    OrderState,
    OrderStatus,
    PaymentRecorded,
    PlaceOrder,
    RecordPayment,
    RefuseStock,
    ShipOrder,
    StockConfirmed,
    StockRefused,
    StockStatus,
)
from examples.orders.inventory import (
    Inventory,
    InventoryState,
    ReceiveStock,
    ReserveStock,
    StockItem,
    StockReceived,
    StockReleased,
    StockReserved,
    StockShortage,
)
from examples.orders.projections import (
    OrderList,
    OrdersByStatus,
    OrderSummaries,
    OrderSummary,
    ProductLevels,
    ProductStock,
    ProjectionError,
    ReservedStock,
    by_status,
    fold_documents,
)
from s3es import (
    CommandHandler,
    EventStore,
    InlineProjection,
    InMemoryObjectStore,
    RecordedEvent,
    Repository,
)
from s3es import StreamName as Stream
from s3es.ops import delete
from s3es.projections import DocumentProjection, DocumentProjector
from s3es.readmodels import ReadModelStore, S3ReadModelStore, SQLiteReadModelStore

MUGS = (OrderLine(sku="mug", quantity=2, unit_price_cents=899),)
KETTLE = (OrderLine(sku="kettle", quantity=1, unit_price_cents=3499),)
_ids = itertools.count()


def recorded(stream: Stream, *events: object, after: int = 0) -> list[RecordedEvent[Any]]:
    """``events`` as stored on ``stream``, one per version from ``after + 1``."""
    return [
        RecordedEvent(
            stream=stream,
            version=after + number,
            id=f"e-{next(_ids)}",
            type=type(event).__name__,
            event=event,
            metadata={},
            recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        for number, event in enumerate(events, 1)
    ]


def fold(
    projection: DocumentProjection[Any],
    events: list[RecordedEvent[Any]],
    documents: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``projection``'s documents after ``events``, from ``documents`` (none if None)."""
    return fold_documents(projection, events, documents)


def placed(order_id: str, lines: tuple[OrderLine, ...] = MUGS) -> OrderPlaced:
    return OrderPlaced(
        order_id=order_id, lines=lines, total_cents=sum(line.total_cents for line in lines)
    )


class TestOrderSummaries:
    def test_shipped_order(self) -> None:
        """An order placed, paid, reserved and shipped is summarised with each of those facts,
        in one document keyed by the order id."""
        documents = fold(
            OrderSummaries(),
            recorded(
                Stream("order", "o-1"),
                placed("o-1"),
                PaymentRecorded(payment_id="p-1", amount_cents=1798),
                StockConfirmed(warehouse_id="w-1"),
                OrderShipped(),
            ),
        )
        assert documents == {
            "o-1": OrderSummary(
                status=OrderStatus.SHIPPED,
                lines=1,
                total_cents=1798,
                paid=True,
                paid_cents=1798,
                stock=StockStatus.RESERVED,
                events=4,
            )
        }

    def test_cancelled_order(self) -> None:
        """A refused, cancelled order shows its refund due."""
        documents = fold(
            OrderSummaries(),
            recorded(
                Stream("order", "o-1"),
                placed("o-1", (*MUGS, *KETTLE)),
                PaymentRecorded(payment_id="p-1", amount_cents=5297),
                StockRefused(warehouse_id="w-1", short_skus=("kettle",)),
                OrderCancelled(reason="out of stock: kettle", refund_due_cents=5297),
            ),
        )
        summary = documents["o-1"]
        assert (summary.status, summary.stock, summary.lines) == (
            OrderStatus.CANCELLED,
            StockStatus.REFUSED,
            2,
        )
        assert summary.refund_due_cents == 5297

    def test_apply_returns_a_new_summary(self) -> None:
        """apply returns the summary after the event; the summary it was given stays as it
        was (a reader holding it sees it whole)."""
        projection = OrderSummaries()
        unpaid = fold(projection, recorded(Stream("order", "o-1"), placed("o-1")))["o-1"]
        [paid] = recorded(
            Stream("order", "o-1"), PaymentRecorded(payment_id="p", amount_cents=1), after=1
        )
        assert projection.evolve(unpaid, paid).paid
        assert not unpaid.paid

    def test_event_applied_twice_shows(self) -> None:
        """The events count tells an event applied twice from one applied once."""
        projection = OrderSummaries()
        events = recorded(Stream("order", "o-1"), placed("o-1"), OrderShipped())
        assert fold(projection, [*events, events[1]]) != fold(projection, events)

    def test_event_before_placed_is_refused(self) -> None:
        """An order event with no OrderPlaced before it is refused, naming stream and version."""
        projection = OrderSummaries()
        [shipped] = recorded(Stream("order", "o-9"), OrderShipped(), after=2)
        with pytest.raises(ProjectionError, match="order/o-9 version 3: OrderShipped of an order"):
            projection.evolve(projection.initial_state("o-9"), shipped)

    def test_by_status(self) -> None:
        """Orders are listed by status in the order of an order's life, ids sorted, and
        statuses with no order are left out."""
        projection = OrderSummaries()
        documents: dict[str, OrderSummary] = {}
        later: dict[str, tuple[object, ...]] = {
            "o-3": (OrderShipped(),),
            "o-1": (),
            "o-2": (OrderShipped(),),
            "o-4": (OrderCancelled(reason="-", refund_due_cents=0),),
        }
        for order_id, events in later.items():
            stream = Stream("order", order_id)
            fold(projection, recorded(stream, placed(order_id), *events), documents)
        listed = by_status(documents)
        assert list(listed) == [OrderStatus.PLACED, OrderStatus.SHIPPED, OrderStatus.CANCELLED]
        assert [list(orders) for orders in listed.values()] == [["o-1"], ["o-2", "o-3"], ["o-4"]]


class TestOrdersByStatus:
    def test_same_summaries_as_the_documents(self) -> None:
        """The whole list holds, per order, the summary OrderSummaries makes of its events."""
        events = [
            *recorded(Stream("order", "o-1"), placed("o-1"), OrderShipped()),
            *recorded(Stream("order", "o-2"), placed("o-2", KETTLE)),
        ]
        projection = OrdersByStatus()
        model = projection.initial_state()
        for event in events:
            model = projection.evolve(model, event)
        assert model == OrderList(fold(OrderSummaries(), events))
        assert list(model.by_status()) == [OrderStatus.PLACED, OrderStatus.SHIPPED]

    def test_apply_updates_in_place(self) -> None:
        """apply replaces the order's summary in the list it was given (no copy of the list)."""
        projection = OrdersByStatus()
        model = projection.evolve(OrderList(), *recorded(Stream("order", "o-1"), placed("o-1")))
        [paid] = recorded(
            Stream("order", "o-1"), PaymentRecorded(payment_id="p", amount_cents=1), after=1
        )
        assert projection.evolve(model, paid) is model
        assert model.orders["o-1"].paid

    def test_refused_event_changes_nothing(self) -> None:
        """An event apply refuses leaves the list as it was."""
        projection = OrdersByStatus()
        model = projection.evolve(OrderList(), *recorded(Stream("order", "o-1"), placed("o-1")))
        before = OrderList(dict(model.orders))
        [shipped] = recorded(Stream("order", "o-9"), OrderShipped(), after=2)
        with pytest.raises(ProjectionError):
            projection.evolve(model, shipped)
        assert model == before

    def test_forget(self) -> None:
        """A deleted order stream is dropped from the list; the others stay."""
        projection = OrdersByStatus()
        model = OrderList(fold(OrderSummaries(), recorded(Stream("order", "o-1"), placed("o-1"))))
        model.orders["o-2"] = model.orders["o-1"]
        assert list(projection.forget(model, Stream("order", "o-1")).orders) == ["o-2"]


class TestReservedStock:
    def test_levels(self) -> None:
        """A document per product: received, reserved (less released) and short per warehouse;
        available is received less reserved."""
        documents = fold(
            ReservedStock(),
            recorded(
                Stream("inventory", "w-1"),
                StockReceived(
                    warehouse_id="w-1",
                    items=(StockItem(sku="mug", quantity=5), StockItem(sku="kettle", quantity=1)),
                ),
                StockReserved(order_id="o-1", items=(StockItem(sku="mug", quantity=2),)),
                StockReserved(order_id="o-2", items=(StockItem(sku="mug", quantity=3),)),
                StockShortage(order_id="o-3", short_skus=("kettle", "mug")),
                StockReleased(order_id="o-2", items=(StockItem(sku="mug", quantity=3),)),
            ),
        )
        assert documents == {
            "kettle": ProductLevels("kettle", {"w-1": ProductStock(received=1, short=1)}),
            "mug": ProductLevels("mug", {"w-1": ProductStock(received=5, reserved=2, short=1)}),
        }
        assert documents["mug"].total.available == 3

    def test_document_ids(self) -> None:
        """An event names the products it changes, each once, and no other."""
        projection = ReservedStock()
        [received, shortage] = recorded(
            Stream("inventory", "w-1"),
            StockReceived(warehouse_id="w-1", items=(StockItem("mug", 1), StockItem("kettle", 1))),
            StockShortage(order_id="o-1", short_skus=("teapot",)),
        )
        assert projection.document_ids(received) == ["mug", "kettle"]
        assert projection.document_ids(shortage) == ["teapot"]
        assert list(projection.forgotten_ids(Stream("inventory", "w-1"))) == []

    def test_total_adds_warehouses(self) -> None:
        """A product's total adds up every warehouse's stock of it."""
        projection = ReservedStock()
        documents: dict[str, ProductLevels] = {}
        for warehouse_id, quantity in (("w-1", 2), ("w-2", 3)):
            fold(
                projection,
                recorded(
                    Stream("inventory", warehouse_id),
                    StockReceived(
                        warehouse_id=warehouse_id, items=(StockItem(sku="mug", quantity=quantity),)
                    ),
                    StockReserved(order_id="o-1", items=(StockItem(sku="mug", quantity=1),)),
                ),
                documents,
            )
        assert list(documents["mug"].warehouses) == ["w-1", "w-2"]
        assert documents["mug"].total == ProductStock(received=5, reserved=2)

    def test_apply_in_place(self) -> None:
        """apply changes the product's document it was given, in place."""
        projection = ReservedStock()
        stream = Stream("inventory", "w-1")
        document = fold(
            projection,
            recorded(stream, StockReceived(warehouse_id="w-1", items=(StockItem("mug", 1),))),
        )["mug"]
        [reserved] = recorded(
            stream, StockReserved(order_id="o-1", items=(StockItem("mug", 1),)), after=1
        )
        assert projection.evolve(document, reserved) is document
        assert document.warehouses["w-1"] == ProductStock(received=1, reserved=1)


# End to end, on an in-memory event store with the change feed, documents in each store


@attrs.define
class Shop:
    """Handlers for orders (with the order list inline) and a warehouse, on one store."""

    events: EventStore
    orders: CommandHandler[OrderState, Any, Any]
    warehouse: CommandHandler[InventoryState, Any, Any]
    inline: InlineProjection[OrderList]
    read_models: ReadModelStore

    def place(self, order_id: str, lines: tuple[OrderLine, ...] = MUGS) -> None:
        self.orders.handle(order_id, PlaceOrder(order_id=order_id, lines=lines))

    def pay(self, order_id: str, amount_cents: int) -> None:
        payment = RecordPayment(
            order_id=order_id, payment_id=f"p-{order_id}", amount_cents=amount_cents
        )
        self.orders.handle(order_id, payment)

    def projector(self, projection: type[DocumentProjection[Any]]) -> DocumentProjector[Any]:
        return DocumentProjector(self.events, projection, self.read_models, feed=True)


@pytest.fixture(params=["s3", "sqlite"])
def shop(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Shop]:
    objects = InMemoryObjectStore()
    events = EventStore(objects, prefix="shop", feed=True)
    inline = InlineProjection(OrdersByStatus)
    orders = CommandHandler(Repository(events, Order), inline=[inline])
    warehouse = CommandHandler(Repository(events, Inventory))
    items = (StockItem(sku="mug", quantity=3), StockItem(sku="kettle", quantity=1))
    warehouse.handle("w-1", ReceiveStock(warehouse_id="w-1", items=items))
    if request.param == "s3":
        yield Shop(events, orders, warehouse, inline, S3ReadModelStore(objects, "shop"))
    else:
        with SQLiteReadModelStore(tmp_path / "models.sqlite3") as store:
            yield Shop(events, orders, warehouse, inline, store)


def reserve(shop: Shop, order_id: str, lines: tuple[OrderLine, ...]) -> StockStatus:
    """Reserve ``lines`` on warehouse w-1 and record its answer on the order (what the
    fulfilment reactor does, one event at a time); the answer."""
    items = tuple(StockItem(sku=line.sku, quantity=line.quantity) for line in lines)
    warehouse = shop.warehouse.handle("w-1", ReserveStock("w-1", order_id, items)).state
    if order_id in warehouse.reservations:
        shop.orders.handle(order_id, ConfirmStock(order_id, "w-1"))
        return StockStatus.RESERVED
    shop.orders.handle(order_id, RefuseStock(order_id, "w-1", warehouse.shortages[order_id]))
    return StockStatus.REFUSED


class TestEndToEnd:
    def test_projectors_follow_the_streams(self, shop: Shop) -> None:
        """Projectors over the change feed keep each document equal to what the streams say,
        one summary per order and one document per product, and the inline list equals the
        stored summaries."""
        summaries = shop.projector(OrderSummaries)
        stock = shop.projector(ReservedStock)
        shop.place("o-1")
        shop.place("o-2", (*MUGS, *KETTLE))
        assert summaries.catch_up().passes[0].full_scan
        assert stock.catch_up().events == 1
        assert reserve(shop, "o-1", MUGS) is StockStatus.RESERVED
        assert reserve(shop, "o-2", (*MUGS, *KETTLE)) is StockStatus.REFUSED
        shop.pay("o-1", 1798)
        shop.orders.handle("o-1", ShipOrder(order_id="o-1"))
        shop.orders.handle("o-2", CancelOrder(order_id="o-2", reason="out of stock"))
        run = summaries.catch_up()
        assert (run.passes[0].full_scan, run.streams, run.events) == (False, 2, 5)
        assert stock.catch_up().events == 2
        reader = summaries.reader()
        stored = dict(reader.documents())
        assert {order_id: s.status for order_id, s in stored.items()} == {
            "o-1": OrderStatus.SHIPPED,
            "o-2": OrderStatus.CANCELLED,
        }
        assert reader.get("o-1") == stored["o-1"]
        assert stored == shop.inline.model.orders
        generation = reader.generation
        assert generation is not None
        positions = shop.read_models.positions(generation, ["order/o-1", "order/o-2"])
        assert positions == shop.inline.checkpoints == {"order/o-1": 4, "order/o-2": 3}
        products = {sku: p.total for sku, p in stock.reader().documents()}
        assert products == {
            "kettle": ProductStock(received=1),
            "mug": ProductStock(received=3, reserved=2, short=1),
        }

    def test_deleted_order_is_forgotten(self, shop: Shop) -> None:
        """A deleted order stream's summary leaves the store at the projector's next pass."""
        shop.place("o-1")
        shop.place("o-2")
        projector = shop.projector(OrderSummaries)
        projector.catch_up()
        delete(shop.orders.repository, "o-1")
        projector.catch_up(full_scan=True)
        assert [key for key, _ in projector.reader().documents()] == ["o-2"]
        assert projector.reader().get("o-1") is None

    def test_documents_survive_storage(self, shop: Shop) -> None:
        """A document stored as JSON reads back equal (enums, nested mappings included)."""
        shop.place("o-1")
        reserve(shop, "o-1", MUGS)
        projections: tuple[type[DocumentProjection[Any]], ...] = (OrderSummaries, ReservedStock)
        for projection in projections:
            projector = shop.projector(projection)
            projector.catch_up()
            folded: dict[str, Any] = {}
            for source in projection.SOURCES:
                repository = Repository(shop.events, source)
                for stream in shop.events.streams(source.STREAM_TYPE):
                    fold(projection(), list(repository.read(stream.id)), folded)
            assert folded
            assert dict(projector.reader().documents()) == folded
