"""The rules of the orders example: the Order and Inventory aggregates, given/when/then."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from examples.orders.domain import (
    CancelOrder,
    ConfirmStock,
    Order,
    OrderCancelled,
    OrderCommand,
    OrderError,
    OrderEvent,
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
    ShipWhenReady,
    StockConfirmed,
    StockRefused,
    StockStatus,
    format_cents,
)
from examples.orders.inventory import (
    Inventory,
    InventoryCommand,
    InventoryError,
    InventoryEvent,
    InventoryState,
    ReceiveStock,
    ReleaseStock,
    ReserveStock,
    StockItem,
    StockReceived,
    StockReleased,
    StockReserved,
    StockShortage,
)
from examples.orders.limits import MAX_CENTS, MAX_LINES, MAX_QUANTITY
from s3es.testing import AggregateSpec

ORDER = "o-1"
WAREHOUSE = "w-1"
LINES = (
    OrderLine(sku="kettle", quantity=1, unit_price_cents=3499),
    OrderLine(sku="mug", quantity=2, unit_price_cents=899),
)
TOTAL = 3499 + 2 * 899
PLACED = OrderPlaced(order_id=ORDER, lines=LINES, total_cents=TOTAL)
PAID = PaymentRecorded(payment_id="pay-1", amount_cents=TOTAL)
CONFIRMED = StockConfirmed(warehouse_id=WAREHOUSE)
REFUSED = StockRefused(warehouse_id=WAREHOUSE, short_skus=("mug",))
CANCELLED = OrderCancelled(reason="changed my mind", refund_due_cents=0)


OrderSpec = AggregateSpec[OrderState, OrderCommand, OrderEvent]
InventorySpec = AggregateSpec[InventoryState, InventoryCommand, InventoryEvent]


@pytest.fixture
def order() -> OrderSpec:
    return AggregateSpec(Order)


@pytest.fixture
def warehouse() -> InventorySpec:
    return AggregateSpec(Inventory)


def pay(amount: int = TOTAL, payment_id: str = "pay-1") -> RecordPayment:
    return RecordPayment(order_id=ORDER, payment_id=payment_id, amount_cents=amount)


class TestOrderLine:
    def test_total(self) -> None:
        """A line's total is its quantity times its unit price."""
        assert OrderLine(sku="mug", quantity=3, unit_price_cents=899).total_cents == 3 * 899

    @pytest.mark.parametrize(
        ("quantity", "price", "field"), [(0, 100, "quantity"), (1, -1, "unit_price_cents")]
    )
    def test_invalid(self, quantity: int, price: int, field: str) -> None:
        """A line with no units or a negative price cannot be made; the error names the field."""
        with pytest.raises(ValueError, match=field):
            OrderLine(sku="mug", quantity=quantity, unit_price_cents=price)

    @pytest.mark.parametrize(
        ("cents", "text"), [(0, "$0.00"), (5, "$0.05"), (123456, "$1,234.56"), (-250, "-$2.50")]
    )
    def test_format_cents(self, cents: int, text: str) -> None:
        """Cents are shown as dollars with two decimals."""
        assert format_cents(cents) == text


class TestPlaceOrder:
    def test_placed(self, order: OrderSpec) -> None:
        """A new order is placed with its lines and the sum of their totals."""
        order.given().when(PlaceOrder(order_id=ORDER, lines=LINES)).then(PLACED)

    def test_same_order_again(self, order: OrderSpec) -> None:
        """Placing the same order again (a retry) changes nothing."""
        order.given(PLACED).when(PlaceOrder(order_id=ORDER, lines=LINES)).then()

    def test_other_lines(self, order: OrderSpec) -> None:
        """An order placed already cannot be placed again with other lines."""
        order.given(PLACED).when(PlaceOrder(order_id=ORDER, lines=LINES[:1])).then_raises(
            OrderError, match=f"order {ORDER}: already placed"
        )

    def test_no_lines(self, order: OrderSpec) -> None:
        """An order without lines is refused."""
        order.given().when(PlaceOrder(order_id=ORDER, lines=())).then_raises(
            OrderError, match=f"order {ORDER}: cannot be placed without lines"
        )

    def test_repeated_sku(self, order: OrderSpec) -> None:
        """An order listing one SKU on two lines is refused, naming the SKU."""
        lines = (*LINES, OrderLine(sku="mug", quantity=1, unit_price_cents=899))
        order.given().when(PlaceOrder(order_id=ORDER, lines=lines)).then_raises(
            OrderError, match=f"order {ORDER}: lists SKU mug on more than one line"
        )

    @pytest.mark.parametrize(
        "command",
        [
            pay(),
            ConfirmStock(order_id=ORDER, warehouse_id=WAREHOUSE),
            RefuseStock(order_id=ORDER, warehouse_id=WAREHOUSE, short_skus=("mug",)),
            ShipOrder(order_id=ORDER),
            CancelOrder(order_id=ORDER, reason="-"),
        ],
    )
    def test_not_placed(self, order: OrderSpec, command: OrderCommand) -> None:
        """Every other command is refused on an order never placed."""
        order.given().when(command).then_raises(OrderError, match=f"order {ORDER}: not placed")

    def test_wrong_stream(self, order: OrderSpec) -> None:
        """A command naming another order is refused, naming both orders."""
        order.given(PLACED).when(ShipOrder(order_id="o-2")).then_raises(
            OrderError, match=f"order o-2: ShipOrder sent to the stream of order {ORDER}"
        )


class TestRecordPayment:
    def test_paid(self, order: OrderSpec) -> None:
        """A payment of the order's total is recorded."""
        order.given(PLACED).when(pay()).then(PAID)

    def test_same_payment_again(self, order: OrderSpec) -> None:
        """The same payment delivered again changes nothing."""
        order.given(PLACED, PAID).when(pay()).then()

    def test_same_payment_after_cancel(self, order: OrderSpec) -> None:
        """A payment already recorded, delivered again, changes nothing even once cancelled."""
        cancelled = OrderCancelled(reason="-", refund_due_cents=TOTAL)
        order.given(PLACED, PAID, cancelled).when(pay()).then()

    def test_same_payment_other_amount(self, order: OrderSpec) -> None:
        """A payment id recorded with another amount is refused, naming both amounts."""
        order.given(PLACED, PAID).when(pay(amount=TOTAL + 1)).then_raises(
            OrderError, match=r"payment pay-1 is recorded as \$52\.97, not \$52\.98"
        )

    def test_second_payment(self, order: OrderSpec) -> None:
        """A second, different payment of a paid order is refused, naming the first."""
        order.given(PLACED, PAID).when(pay(payment_id="pay-2")).then_raises(
            OrderError, match=f"order {ORDER}: already paid by payment pay-1"
        )

    def test_wrong_amount(self, order: OrderSpec) -> None:
        """A payment that is not the order's total is refused, naming both amounts."""
        order.given(PLACED).when(pay(amount=100)).then_raises(
            OrderError, match=r"payment pay-1 of \$1\.00 does not match the order's total of \$52"
        )

    def test_cancelled(self, order: OrderSpec) -> None:
        """A cancelled order cannot be paid."""
        order.given(PLACED, CANCELLED).when(pay()).then_raises(
            OrderError, match=f"order {ORDER}: cancelled: cannot record payment pay-1"
        )


class TestConfirmStock:
    command = ConfirmStock(order_id=ORDER, warehouse_id=WAREHOUSE)

    def test_confirmed(self, order: OrderSpec) -> None:
        """Stock the warehouse reserved is recorded on the order."""
        order.given(PLACED).when(self.command).then(CONFIRMED)

    def test_again(self, order: OrderSpec) -> None:
        """Confirming stock again changes nothing."""
        order.given(PLACED, CONFIRMED).when(self.command).then()

    def test_after_refusal(self, order: OrderSpec) -> None:
        """Stock that was refused cannot be confirmed."""
        order.given(PLACED, REFUSED).when(self.command).then_raises(
            OrderError, match=f"order {ORDER}: stock was refused"
        )

    def test_cancelled(self, order: OrderSpec) -> None:
        """Stock reserved for a cancelled order is not recorded: the reaction to the
        cancellation releases it."""
        order.given(PLACED, CANCELLED).when(self.command).then()


class TestRefuseStock:
    command = RefuseStock(order_id=ORDER, warehouse_id=WAREHOUSE, short_skus=("mug",))

    def test_refused(self, order: OrderSpec) -> None:
        """The warehouse's refusal is recorded with the short SKUs."""
        order.given(PLACED).when(self.command).then(REFUSED)

    def test_again(self, order: OrderSpec) -> None:
        """Refusing stock again changes nothing."""
        order.given(PLACED, REFUSED).when(self.command).then()

    def test_after_confirmation(self, order: OrderSpec) -> None:
        """Stock that is reserved cannot be refused."""
        order.given(PLACED, CONFIRMED).when(self.command).then_raises(
            OrderError, match=f"order {ORDER}: stock is reserved"
        )

    def test_no_skus(self, order: OrderSpec) -> None:
        """A refusal that names no short SKU is refused."""
        command = RefuseStock(order_id=ORDER, warehouse_id=WAREHOUSE, short_skus=())
        order.given(PLACED).when(command).then_raises(OrderError, match="must name the SKUs")

    def test_cancelled(self, order: OrderSpec) -> None:
        """A refusal for a cancelled order changes nothing: nothing was held, the order is over."""
        order.given(PLACED, CANCELLED).when(self.command).then()


class TestShipOrder:
    command = ShipOrder(order_id=ORDER)

    def test_shipped(self, order: OrderSpec) -> None:
        """An order paid and reserved (in either order) is shipped."""
        order.given(PLACED, PAID, CONFIRMED).when(self.command).then(OrderShipped())
        order.given(PLACED, CONFIRMED, PAID).when(self.command).then(OrderShipped())

    def test_again(self, order: OrderSpec) -> None:
        """Shipping a shipped order changes nothing."""
        order.given(PLACED, PAID, CONFIRMED, OrderShipped()).when(self.command).then()

    def test_not_paid(self, order: OrderSpec) -> None:
        """An unpaid order is not shipped."""
        order.given(PLACED, CONFIRMED).when(self.command).then_raises(
            OrderError, match=f"order {ORDER}: not paid"
        )

    @pytest.mark.parametrize(
        ("history", "stock"), [((), "pending"), ((REFUSED,), "refused")], ids=["pending", "refused"]
    )
    def test_not_reserved(
        self, order: OrderSpec, history: tuple[OrderEvent, ...], stock: str
    ) -> None:
        """An order whose stock is not reserved is not shipped; the error says the stock status."""
        order.given(PLACED, PAID, *history).when(self.command).then_raises(
            OrderError, match=f"order {ORDER}: stock is {stock}, not reserved"
        )

    def test_cancelled(self, order: OrderSpec) -> None:
        """A cancelled order is not shipped."""
        order.given(PLACED, PAID, CONFIRMED, CANCELLED).when(self.command).then_raises(
            OrderError, match=f"order {ORDER}: cancelled: cannot ship"
        )


class TestShipWhenReady:
    command = ShipWhenReady(order_id=ORDER)

    def test_ready(self, order: OrderSpec) -> None:
        """An order paid and reserved (in either order) is shipped."""
        order.given(PLACED, PAID, CONFIRMED).when(self.command).then(OrderShipped())
        order.given(PLACED, CONFIRMED, PAID).when(self.command).then(OrderShipped())

    @pytest.mark.parametrize(
        "history",
        [
            (PLACED,),
            (PLACED, PAID),
            (PLACED, CONFIRMED),
            (PLACED, PAID, REFUSED),
            (PLACED, PAID, CONFIRMED, OrderShipped()),
            (PLACED, PAID, CONFIRMED, CANCELLED),
        ],
        ids=["placed", "paid", "reserved", "refused", "shipped", "cancelled"],
    )
    def test_not_ready(self, order: OrderSpec, history: tuple[OrderEvent, ...]) -> None:
        """An order not paid and reserved, or over, decides nothing (and raises nothing)."""
        order.given(*history).when(self.command).then()

    def test_never_placed(self, order: OrderSpec) -> None:
        """An order never placed is refused, as for any command but PlaceOrder."""
        order.given().when(self.command).then_raises(
            OrderError, match=f"order {ORDER}: not placed: cannot ship"
        )


class TestCancelOrder:
    command = CancelOrder(order_id=ORDER, reason="changed my mind")

    def test_cancelled(self, order: OrderSpec) -> None:
        """An unpaid order is cancelled with nothing to refund."""
        order.given(PLACED).when(self.command).then(CANCELLED)

    def test_paid(self, order: OrderSpec) -> None:
        """Cancelling a paid order makes its payment a refund due."""
        order.given(PLACED, PAID).when(self.command).then(
            OrderCancelled(reason="changed my mind", refund_due_cents=TOTAL)
        )

    def test_again(self, order: OrderSpec) -> None:
        """Cancelling a cancelled order changes nothing."""
        order.given(PLACED, CANCELLED).when(self.command).then()

    def test_shipped(self, order: OrderSpec) -> None:
        """A shipped order cannot be cancelled."""
        order.given(PLACED, PAID, CONFIRMED, OrderShipped()).when(self.command).then_raises(
            OrderError, match=f"order {ORDER}: shipped: cannot cancel"
        )


class TestOrderState:
    def test_initial(self) -> None:
        """An order with no events is new, unpaid, with stock pending."""
        state = Order().initial_state()
        assert (state.status, state.paid, state.stock) == (
            OrderStatus.NEW,
            False,
            StockStatus.PENDING,
        )

    def test_full_life(self, order: OrderSpec) -> None:
        """The state after a whole life holds every fact the events recorded."""
        order.given(PLACED, CONFIRMED, PAID, OrderShipped()).then_state(
            OrderState(
                order_id=ORDER,
                status=OrderStatus.SHIPPED,
                lines=LINES,
                total_cents=TOTAL,
                payment_id="pay-1",
                paid_cents=TOTAL,
                stock=StockStatus.RESERVED,
                warehouse_id=WAREHOUSE,
            )
        )

    def test_refused_and_cancelled(self, order: OrderSpec) -> None:
        """A refused, paid, cancelled order keeps its short SKUs and the refund due."""
        cancelled = OrderCancelled(reason="out of stock", refund_due_cents=TOTAL)
        order.given(PLACED, PAID, REFUSED, cancelled).then_state(
            OrderState(
                order_id=ORDER,
                status=OrderStatus.CANCELLED,
                lines=LINES,
                total_cents=TOTAL,
                payment_id="pay-1",
                paid_cents=TOTAL,
                stock=StockStatus.REFUSED,
                warehouse_id=WAREHOUSE,
                short_skus=("mug",),
                cancel_reason="out of stock",
                refund_due_cents=TOTAL,
            )
        )


# Inventory

RECEIVED = StockReceived(
    warehouse_id=WAREHOUSE,
    items=(StockItem(sku="kettle", quantity=2), StockItem(sku="mug", quantity=3)),
)
ITEMS = (StockItem(sku="kettle", quantity=1), StockItem(sku="mug", quantity=2))
RESERVED = StockReserved(order_id=ORDER, items=ITEMS)


def reserve(order_id: str = ORDER, items: tuple[StockItem, ...] = ITEMS) -> ReserveStock:
    return ReserveStock(warehouse_id=WAREHOUSE, order_id=order_id, items=items)


class TestReceiveStock:
    def test_received(self, warehouse: InventorySpec) -> None:
        """Goods received are added to what is available."""
        command = ReceiveStock(warehouse_id=WAREHOUSE, items=RECEIVED.items)
        state = (
            warehouse.given(RECEIVED)
            .when(command)
            .then(StockReceived(warehouse_id=WAREHOUSE, items=RECEIVED.items))
        )
        assert state.available == {"kettle": 4, "mug": 6}

    def test_nothing(self, warehouse: InventorySpec) -> None:
        """Receiving no items is refused, naming the warehouse."""
        warehouse.given().when(ReceiveStock(warehouse_id=WAREHOUSE, items=())).then_raises(
            InventoryError, match=f"warehouse {WAREHOUSE}: received no items"
        )

    def test_wrong_stream(self, warehouse: InventorySpec) -> None:
        """A command naming another warehouse is refused, naming both."""
        warehouse.given(RECEIVED).when(ReceiveStock(warehouse_id="w-2", items=ITEMS)).then_raises(
            InventoryError, match=f"warehouse w-2: .* stream of warehouse {WAREHOUSE}"
        )

    def test_quantity(self) -> None:
        """A stock item of no units cannot be made; the error names the field."""
        with pytest.raises(ValueError, match="quantity"):
            StockItem(sku="mug", quantity=0)


class TestReserveStock:
    def test_reserved(self, warehouse: InventorySpec) -> None:
        """An order whose every item is available gets them, and they are no longer available."""
        state = warehouse.given(RECEIVED).when(reserve()).then(RESERVED)
        assert (state.available, state.reservations) == ({"kettle": 1, "mug": 1}, {ORDER: ITEMS})

    def test_short(self, warehouse: InventorySpec) -> None:
        """If any item is short nothing is reserved; the shortage names the short SKUs, sorted."""
        items = (
            StockItem(sku="mug", quantity=4),
            StockItem(sku="kettle", quantity=1),
            StockItem(sku="cup", quantity=1),
        )
        state = (
            warehouse.given(RECEIVED)
            .when(reserve(items=items))
            .then(StockShortage(order_id=ORDER, short_skus=("cup", "mug")))
        )
        assert state.available == {"kettle": 2, "mug": 3}

    def test_taken_by_another_order(self, warehouse: InventorySpec) -> None:
        """Stock reserved for one order is not available to the next."""
        warehouse.given(RECEIVED, RESERVED).when(reserve(order_id="o-2")).then(
            StockShortage(order_id="o-2", short_skus=("mug",))
        )

    def test_reserved_again(self, warehouse: InventorySpec) -> None:
        """Asking again for an order that holds its items changes nothing."""
        warehouse.given(RECEIVED, RESERVED).when(reserve()).then()

    def test_short_again(self, warehouse: InventorySpec) -> None:
        """A shortage stands: asking again, even after new stock arrived, changes nothing."""
        short = StockShortage(order_id=ORDER, short_skus=("mug",))
        warehouse.given(RECEIVED, short, RECEIVED).when(reserve()).then()

    def test_other_items(self, warehouse: InventorySpec) -> None:
        """An order holding a reservation cannot reserve other items."""
        warehouse.given(RECEIVED, RESERVED).when(reserve(items=ITEMS[:1])).then_raises(
            InventoryError, match=f"warehouse {WAREHOUSE}: order {ORDER} already holds other items"
        )

    def test_after_release(self, warehouse: InventorySpec) -> None:
        """An order whose stock was released cannot reserve again."""
        released = StockReleased(order_id=ORDER, items=ITEMS)
        warehouse.given(RECEIVED, RESERVED, released).when(reserve()).then_raises(
            InventoryError, match=f"order {ORDER} released its stock already"
        )

    def test_no_items(self, warehouse: InventorySpec) -> None:
        """A reservation of no items is refused, naming the order."""
        warehouse.given(RECEIVED).when(reserve(items=())).then_raises(
            InventoryError, match=f"order {ORDER} asks to reserve no items"
        )

    def test_repeated_sku(self, warehouse: InventorySpec) -> None:
        """A reservation listing one SKU twice is refused, naming the SKU."""
        items = (*ITEMS, StockItem(sku="mug", quantity=1))
        warehouse.given(RECEIVED).when(reserve(items=items)).then_raises(
            InventoryError, match=f"order {ORDER} lists SKU mug more than once"
        )

    def test_empty_warehouse(self, warehouse: InventorySpec) -> None:
        """A warehouse that never received anything is short of everything."""
        warehouse.given().when(reserve()).then(
            StockShortage(order_id=ORDER, short_skus=("kettle", "mug"))
        )

    @settings(max_examples=50, deadline=None)
    @given(
        requests=st.lists(
            st.dictionaries(
                st.sampled_from(["kettle", "mug", "cup"]),
                st.integers(min_value=1, max_value=4),
                min_size=1,
            ),
            max_size=12,
        )
    )
    def test_never_oversold(self, requests: list[dict[str, int]]) -> None:
        """Whatever orders ask, in any order, available stock is received minus reserved, >= 0."""
        inventory = Inventory()
        state = inventory.evolve(inventory.initial_state(), RECEIVED)
        for number, request in enumerate(requests):
            items = tuple(StockItem(sku=sku, quantity=n) for sku, n in request.items())
            for event in inventory.decide(reserve(order_id=f"o-{number}", items=items), state):
                state = inventory.evolve(state, event)
        reserved: Counter[str] = Counter()
        for items in state.reservations.values():
            reserved.update({item.sku: item.quantity for item in items})
        received = {item.sku: item.quantity for item in RECEIVED.items}
        assert {sku: state.available.get(sku, 0) for sku in received} == {
            sku: received[sku] - reserved[sku] for sku in received
        }
        assert min(state.available.values()) >= 0
        assert len(state.reservations) + len(state.shortages) == len(requests)


class TestReleaseStock:
    command = ReleaseStock(warehouse_id=WAREHOUSE, order_id=ORDER)

    def test_released(self, warehouse: InventorySpec) -> None:
        """Releasing gives back exactly what the order held."""
        state = (
            warehouse.given(RECEIVED, RESERVED)
            .when(self.command)
            .then(StockReleased(order_id=ORDER, items=ITEMS))
        )
        assert (state.available, state.reservations) == ({"kettle": 2, "mug": 3}, {})

    def test_again(self, warehouse: InventorySpec) -> None:
        """Releasing again changes nothing."""
        released = StockReleased(order_id=ORDER, items=ITEMS)
        warehouse.given(RECEIVED, RESERVED, released).when(self.command).then()

    def test_after_shortage(self, warehouse: InventorySpec) -> None:
        """An order that was refused holds nothing: releasing changes nothing."""
        short = StockShortage(order_id=ORDER, short_skus=("mug",))
        warehouse.given(RECEIVED, short).when(self.command).then()

    def test_unknown_order(self, warehouse: InventorySpec) -> None:
        """Releasing for an order the warehouse never answered is refused, naming the order."""
        warehouse.given(RECEIVED).when(self.command).then_raises(
            InventoryError, match=f"warehouse {WAREHOUSE}: holds no stock for order {ORDER}"
        )


class _CountingSku(str):
    """A SKU that counts the comparisons and hashes made of it, in a shared counter."""

    __slots__ = ()
    operations: ClassVar[list[int]] = [0]

    def __eq__(self, other: object) -> bool:
        _CountingSku.operations[0] += 1
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        _CountingSku.operations[0] += 1
        return str.__ne__(self, other)

    def __lt__(self, other: str) -> bool:
        _CountingSku.operations[0] += 1
        return str.__lt__(self, other)

    def __hash__(self) -> int:
        _CountingSku.operations[0] += 1
        return str.__hash__(self)


def _operations(decide: Callable[[], object]) -> int:
    """How many comparisons and hashes of counting SKUs ``decide`` made."""
    _CountingSku.operations[0] = 0
    with contextlib.suppress(OrderError, InventoryError):
        decide()
    return _CountingSku.operations[0]


def _line(sku: str = "mug", quantity: int = 1, price: int = 100) -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity, unit_price_cents=price)


def _place(*lines: OrderLine) -> PlaceOrder:
    return PlaceOrder(order_id=ORDER, lines=lines)


class TestOrderBounds:
    """Every command is held to the bounds of examples.orders.limits; the error names the field."""

    def test_too_many_lines(self, order: OrderSpec) -> None:
        """An order of more than MAX_LINES lines is refused, naming ``lines``."""
        lines = tuple(_line(f"s-{n}") for n in range(MAX_LINES + 1))
        refused = order.given().when(_place(*lines)).then_raises(OrderError, match="lines")
        assert isinstance(refused, OrderError)
        assert refused.field == "lines"
        assert f"at most {MAX_LINES}" in refused.problem

    def test_as_many_lines_as_allowed(self, order: OrderSpec) -> None:
        """An order of MAX_LINES lines at the largest quantity is placed."""
        lines = tuple(_line(f"s-{n}", MAX_QUANTITY, 1) for n in range(MAX_LINES))
        order.given().when(_place(*lines)).then(
            OrderPlaced(order_id=ORDER, lines=lines, total_cents=MAX_LINES * MAX_QUANTITY)
        )

    @pytest.mark.parametrize(
        ("line", "field"),
        [
            (_line(quantity=MAX_QUANTITY + 1), "lines[1].quantity"),
            (_line(price=MAX_CENTS + 1), "lines[1].unit_price_cents"),
            (_line(price=10**30), "lines[1].unit_price_cents"),
            (_line(quantity=2, price=MAX_CENTS // 2 + 1), "lines[1]"),
            (_line(sku="a\x00b"), "lines[1].sku"),
            (_line(sku="a\nb"), "lines[1].sku"),
            (_line(sku="a\ud800"), "lines[1].sku"),
            (_line(sku=""), "lines[1].sku"),
            (_line(sku="é" * 51), "lines[1].sku"),
        ],
    )
    def test_a_line_out_of_bounds(self, order: OrderSpec, line: OrderLine, field: str) -> None:
        """A line whose SKU, quantity, price or total is out of bounds is refused, named."""
        refused = order.given().when(_place(LINES[0], line)).then_raises(OrderError)
        assert isinstance(refused, OrderError)
        assert refused.field == field
        assert refused.problem.startswith(field), refused.problem

    def test_a_nul_is_named(self, order: OrderSpec) -> None:
        """The character refused is named by its code point."""
        refused = order.given().when(_place(_line(sku="a\x00b"))).then_raises(OrderError)
        assert isinstance(refused, OrderError)
        assert "U+0000" in refused.problem

    def test_the_total_is_bounded(self, order: OrderSpec) -> None:
        """Lines within bounds whose sum is not are refused, naming the total."""
        half = MAX_CENTS // 2 + 1
        refused = (
            order.given()
            .when(_place(_line("a", price=half), _line("b", price=half)))
            .then_raises(OrderError)
        )
        assert isinstance(refused, OrderError)
        assert refused.field == "total_cents"

    @pytest.mark.parametrize(
        ("command", "field"),
        [
            (pay(amount=MAX_CENTS + 1), "amount_cents"),
            (pay(amount=2**64), "amount_cents"),
            (pay(amount=-1), "amount_cents"),
            (pay(payment_id="p\x00"), "payment_id"),
            (pay(payment_id="p" * 101), "payment_id"),
            (CancelOrder(order_id=ORDER, reason="no\x00"), "reason"),
            (CancelOrder(order_id=ORDER, reason=""), "reason"),
            (ConfirmStock(order_id=ORDER, warehouse_id="w\x07"), "warehouse_id"),
            (
                RefuseStock(order_id=ORDER, warehouse_id=WAREHOUSE, short_skus=("m\x00",)),
                "short_skus[0]",
            ),
        ],
    )
    def test_other_commands_out_of_bounds(
        self, order: OrderSpec, command: OrderCommand, field: str
    ) -> None:
        """A payment, cancellation or stock answer out of bounds is refused, named, unstored."""
        refused = order.given(PLACED).when(command).then_raises(OrderError)
        assert isinstance(refused, OrderError)
        assert refused.field == field

    @settings(max_examples=25, deadline=None)
    @given(size=st.integers(min_value=1, max_value=MAX_LINES), repeat=st.booleans())
    def test_the_repeated_sku_check_is_linear(self, size: int, repeat: bool) -> None:
        """Placing an order compares and hashes its SKUs a number of times linear in its lines
        (list.count per line made size * (size - 1) comparisons: 9,900 for 100 lines)."""
        skus = [_CountingSku(f"sku-{n}") for n in range(size)]
        if repeat:
            skus.append(_CountingSku("sku-0"))
        command = _place(*(_line(sku) for sku in skus))
        operations = _operations(lambda: Order().decide(command, OrderState()))
        assert operations <= 4 * len(skus) + 4, (len(skus), operations)


class TestInventoryBounds:
    """The warehouse's commands are held to the same bounds."""

    @pytest.mark.parametrize(
        ("items", "field"),
        [
            ((StockItem(sku="a\x00b", quantity=1),), "items[0].sku"),
            ((StockItem(sku="mug", quantity=MAX_QUANTITY + 1),), "items[0].quantity"),
            (tuple(StockItem(sku=f"s-{n}", quantity=1) for n in range(MAX_LINES + 1)), "items"),
        ],
    )
    def test_a_receipt_out_of_bounds(
        self, warehouse: InventorySpec, items: tuple[StockItem, ...], field: str
    ) -> None:
        """A receipt whose SKU, quantity or number of items is out of bounds is refused."""
        command = ReceiveStock(warehouse_id=WAREHOUSE, items=items)
        refused = warehouse.given().when(command).then_raises(InventoryError)
        assert isinstance(refused, InventoryError)
        assert refused.field == field
        assert refused.problem.startswith(field)

    def test_a_reservation_out_of_bounds(self, warehouse: InventorySpec) -> None:
        """A reservation naming a SKU with a NUL is refused, named."""
        command = reserve(items=(StockItem(sku="\x00", quantity=1),))
        refused = warehouse.given(RECEIVED).when(command).then_raises(InventoryError)
        assert isinstance(refused, InventoryError)
        assert refused.field == "items[0].sku"

    @settings(max_examples=25, deadline=None)
    @given(size=st.integers(min_value=1, max_value=MAX_LINES), repeat=st.booleans())
    def test_the_repeated_sku_check_is_linear(self, size: int, repeat: bool) -> None:
        """Reserving compares and hashes the items' SKUs a number of times linear in them."""
        skus = [_CountingSku(f"sku-{n}") for n in range(size)]
        if repeat:
            skus.append(_CountingSku("sku-0"))
        items = tuple(StockItem(sku=sku, quantity=1) for sku in skus)
        inventory = Inventory()
        received = StockReceived(warehouse_id=WAREHOUSE, items=items[:size])
        state = inventory.evolve(inventory.initial_state(), received)
        operations = _operations(lambda: inventory.decide(reserve(items=items), state))
        assert operations <= 4 * len(skus) + 4, (len(skus), operations)
