"""The orders example's read models: order summaries by status, stock reserved per product."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from examples.orders.domain import (
    CancelOrder,
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
    ShipOrder,
    StockConfirmed,
    StockRefused,
    StockStatus,
)
from examples.orders.inventory import (
    Inventory,
    InventoryState,
    ReceiveStock,
    StockItem,
    StockReceived,
    StockReleased,
    StockReserved,
    StockShortage,
)
from examples.orders.projections import (
    OrderList,
    OrderSummaries,
    OrderSummary,
    ProductStock,
    ProjectionError,
    ReservedStock,
    StockLevels,
)
from examples.orders.services import InventoryService, Ledger
from s3es import (
    CommandHandler,
    EventStore,
    InlineProjection,
    InMemoryObjectStore,
    Projection,
    Projector,
    RecordedEvent,
    Repository,
)
from s3es import StreamName as Stream
from s3es.ops import delete

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


def fold(projection: Projection[Any], events: list[RecordedEvent[Any]], model: Any = None) -> Any:
    """``projection``'s model after ``events``, from ``model`` (its initial model if None)."""
    model = projection.initial_model() if model is None else model
    for event in events:
        model = projection.apply(model, event)
    return model


def placed(order_id: str, lines: tuple[OrderLine, ...] = MUGS) -> OrderPlaced:
    return OrderPlaced(
        order_id=order_id, lines=lines, total_cents=sum(line.total_cents for line in lines)
    )


class TestOrderSummaries:
    def test_shipped_order(self) -> None:
        """An order placed, paid, reserved and shipped is summarised with each of those facts."""
        model = fold(
            OrderSummaries(),
            recorded(
                Stream("order", "o-1"),
                placed("o-1"),
                PaymentRecorded(payment_id="p-1", amount_cents=1798),
                StockConfirmed(warehouse_id="w-1"),
                OrderShipped(),
            ),
        )
        assert model == OrderList(
            {
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
        )

    def test_cancelled_order(self) -> None:
        """A refused, cancelled order shows its refund due."""
        model = fold(
            OrderSummaries(),
            recorded(
                Stream("order", "o-1"),
                placed("o-1", (*MUGS, *KETTLE)),
                PaymentRecorded(payment_id="p-1", amount_cents=5297),
                StockRefused(warehouse_id="w-1", short_skus=("kettle",)),
                OrderCancelled(reason="out of stock: kettle", refund_due_cents=5297),
            ),
        )
        summary = model.orders["o-1"]
        assert (summary.status, summary.stock, summary.lines) == (
            OrderStatus.CANCELLED,
            StockStatus.REFUSED,
            2,
        )
        assert summary.refund_due_cents == 5297

    def test_apply_updates_in_place(self) -> None:
        """apply replaces the order's summary in the list it was given (no copy of the list);
        the summary handed out before stays as it was."""
        projection = OrderSummaries()
        model = fold(projection, recorded(Stream("order", "o-1"), placed("o-1")))
        unpaid = model.orders["o-1"]
        [paid] = recorded(
            Stream("order", "o-1"), PaymentRecorded(payment_id="p", amount_cents=1), after=1
        )
        assert projection.apply(model, paid) is model
        assert model.orders["o-1"].paid
        assert not unpaid.paid

    def test_refused_event_changes_nothing(self) -> None:
        """An event apply refuses leaves the list as it was."""
        projection = OrderSummaries()
        model = fold(projection, recorded(Stream("order", "o-1"), placed("o-1")))
        before = OrderList(dict(model.orders))
        [shipped] = recorded(Stream("order", "o-9"), OrderShipped(), after=2)
        with pytest.raises(ProjectionError):
            projection.apply(model, shipped)
        assert model == before

    def test_event_applied_twice_shows(self) -> None:
        """The events count tells an event applied twice from one applied once."""
        projection = OrderSummaries()
        events = recorded(Stream("order", "o-1"), placed("o-1"), OrderShipped())
        assert fold(projection, [*events, events[1]]) != fold(projection, events)

    def test_event_before_placed_is_refused(self) -> None:
        """An order event with no OrderPlaced before it is refused, naming stream and version."""
        [shipped] = recorded(Stream("order", "o-9"), OrderShipped(), after=2)
        with pytest.raises(ProjectionError, match="order/o-9 version 3: OrderShipped of an order"):
            OrderSummaries().apply(OrderList(), shipped)

    def test_by_status(self) -> None:
        """Orders are listed by status in the order of an order's life, ids sorted, and
        statuses with no order are left out."""
        projection = OrderSummaries()
        model = projection.initial_model()
        later: dict[str, tuple[object, ...]] = {
            "o-3": (OrderShipped(),),
            "o-1": (),
            "o-2": (OrderShipped(),),
            "o-4": (OrderCancelled(reason="-", refund_due_cents=0),),
        }
        for order_id, events in later.items():
            stream = Stream("order", order_id)
            model = fold(projection, recorded(stream, placed(order_id), *events), model)
        listed = model.by_status()
        assert list(listed) == [OrderStatus.PLACED, OrderStatus.SHIPPED, OrderStatus.CANCELLED]
        assert [list(orders) for orders in listed.values()] == [["o-1"], ["o-2", "o-3"], ["o-4"]]

    def test_forget(self) -> None:
        """A deleted order stream is dropped from the list; the others stay."""
        projection = OrderSummaries()
        model = fold(projection, recorded(Stream("order", "o-1"), placed("o-1")))
        model = fold(projection, recorded(Stream("order", "o-2"), placed("o-2")), model)
        assert list(projection.forget(model, Stream("order", "o-1")).orders) == ["o-2"]


class TestReservedStock:
    def test_levels(self) -> None:
        """Received, reserved (less released) and short are counted per product; available is
        received less reserved."""
        model = fold(
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
        assert model == StockLevels(
            {
                "w-1": {
                    "kettle": ProductStock(received=1, short=1),
                    "mug": ProductStock(received=5, reserved=2, short=1),
                }
            }
        )
        assert model.warehouses["w-1"]["mug"].available == 3

    def test_by_product_adds_warehouses(self) -> None:
        """by_product adds up every warehouse's stock of each product."""
        projection = ReservedStock()
        model = projection.initial_model()
        for warehouse_id, quantity in (("w-1", 2), ("w-2", 3)):
            model = fold(
                projection,
                recorded(
                    Stream("inventory", warehouse_id),
                    StockReceived(
                        warehouse_id=warehouse_id, items=(StockItem(sku="mug", quantity=quantity),)
                    ),
                    StockReserved(order_id="o-1", items=(StockItem(sku="mug", quantity=1),)),
                ),
                model,
            )
        assert model.by_product() == {"mug": ProductStock(received=5, reserved=2)}

    def test_apply_in_place_and_forget(self) -> None:
        """apply replaces the warehouse's products in the levels it was given, leaving the
        products handed out before as they were; forget drops a warehouse."""
        projection = ReservedStock()
        stream = Stream("inventory", "w-1")
        before = fold(
            projection,
            recorded(
                stream, StockReceived(warehouse_id="w-1", items=(StockItem("mug", quantity=1),))
            ),
        )
        [reserved] = recorded(
            stream, StockReserved(order_id="o-1", items=(StockItem("mug", 1),)), after=1
        )
        products = before.warehouses["w-1"]
        after = projection.apply(before, reserved)
        assert after is before
        assert products["mug"].reserved == 0
        assert after.warehouses["w-1"]["mug"].reserved == 1
        assert projection.forget(after, stream) == StockLevels()


# End to end, on an in-memory store with the change feed


@attrs.define
class Shop:
    """Handlers for orders (with the summaries inline) and a warehouse, on one store."""

    events: EventStore
    orders: CommandHandler[OrderState, Any, Any]
    warehouse: CommandHandler[InventoryState, Any, Any]
    inline: InlineProjection[OrderList]

    def place(self, order_id: str, lines: tuple[OrderLine, ...] = MUGS) -> None:
        self.orders.handle(order_id, PlaceOrder(order_id=order_id, lines=lines))

    def pay(self, order_id: str, amount_cents: int) -> None:
        payment = RecordPayment(
            order_id=order_id, payment_id=f"p-{order_id}", amount_cents=amount_cents
        )
        self.orders.handle(order_id, payment)


@pytest.fixture
def shop() -> Shop:
    events = EventStore(InMemoryObjectStore(), prefix="shop", feed=True)
    inline = InlineProjection(OrderSummaries)
    orders = CommandHandler(Repository(events, Order), inline=[inline])
    warehouse = CommandHandler(Repository(events, Inventory))
    items = (StockItem(sku="mug", quantity=3), StockItem(sku="kettle", quantity=1))
    warehouse.handle("w-1", ReceiveStock(warehouse_id="w-1", items=items))
    return Shop(events, orders, warehouse, inline)


class TestEndToEnd:
    def test_projectors_follow_the_services(self, shop: Shop) -> None:
        """Projectors over the change feed keep both read models equal to what the streams say,
        and the inline summaries equal the stored ones."""
        summaries = Projector(shop.events, OrderSummaries, feed=True)
        stock = Projector(shop.events, ReservedStock, feed=True)
        inventory = InventoryService(shop.warehouse, shop.orders, Ledger(), "w-1")
        shop.place("o-1")
        shop.place("o-2", (*MUGS, *KETTLE))
        assert summaries.catch_up().full_scan
        assert stock.catch_up().events == 1
        assert inventory.reserve("o-1", MUGS) == "reserved"
        assert inventory.reserve("o-2", (*MUGS, *KETTLE)) == "refused"
        shop.pay("o-1", 1798)
        shop.orders.handle("o-1", ShipOrder(order_id="o-1"))
        shop.orders.handle("o-2", CancelOrder(order_id="o-2", reason="out of stock"))
        run = summaries.catch_up()
        assert (run.full_scan, run.streams, run.events) == (False, 2, 5)
        assert stock.catch_up().events == 2
        stored = summaries.read()
        assert {s: o.status for s, o in stored.model.orders.items()} == {
            "o-1": OrderStatus.SHIPPED,
            "o-2": OrderStatus.CANCELLED,
        }
        assert stored.checkpoints == {"order/o-1": 4, "order/o-2": 3}
        assert stored.model == shop.inline.model
        assert stock.read().model.by_product() == {
            "kettle": ProductStock(received=1),
            "mug": ProductStock(received=3, reserved=2, short=1),
        }

    def test_deleted_order_is_forgotten(self, shop: Shop) -> None:
        """A deleted order stream leaves the stored list at the projector's next pass."""
        shop.place("o-1")
        shop.place("o-2")
        projector = Projector(shop.events, OrderSummaries)
        projector.catch_up()
        delete(shop.orders.repository, "o-1")
        assert list(projector.catch_up().read_model.model.orders) == ["o-2"]

    def test_models_survive_storage(self, shop: Shop) -> None:
        """A read model stored as JSON reads back equal (enums, nested mappings included)."""
        shop.place("o-1")
        inventory = InventoryService(shop.warehouse, shop.orders, Ledger(), "w-1")
        inventory.reserve("o-1", MUGS)
        projections: tuple[type[Projection[Any]], ...] = (OrderSummaries, ReservedStock)
        for projection in projections:
            projector: Projector[Any] = Projector(shop.events, projection)
            model = projector.catch_up().read_model.model
            assert model != projection().initial_model()
            assert projector.read().model == model
