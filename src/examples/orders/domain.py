"""The Order aggregate: an order is placed, paid, gets its stock, and is shipped or cancelled.

Every rule lives in :meth:`Order.decide`. Commands are idempotent where those who send them
retry: a payment delivered twice with the same payment id, a stock outcome recorded twice, a
second ship or cancel of the same order all decide no events instead of failing. A command
that contradicts what is recorded (a second, different payment; shipping an unpaid order) is
refused with an :class:`OrderError` naming the order.

Two commands are for the fulfilment reactor (:mod:`examples.orders.reactors`), which reacts to
one event at a time and knows nothing of the order's state: :class:`ShipWhenReady`, sent after
the payment and after the stock confirmation, ships on whichever comes second (the condition on
both lives here, not in the reactor); and a stock confirmation for an order cancelled meanwhile
records nothing, since the cancellation's own reaction gives the stock back.

Money is in integer cents. Every command names its order, so that an error can say which order
it is about and a command sent to the wrong stream is refused. Every command is held to the
bounds of :mod:`examples.orders.limits` (amounts, quantities, number of lines, texts) before
anything else is decided: an :class:`OrderError` whose ``field`` names what is out of bounds.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from typing import ClassVar, assert_never

import attrs

from examples.orders.limits import (
    MAX_CENTS,
    MAX_ID_BYTES,
    MAX_LINES,
    MAX_QUANTITY,
    MAX_REASON_BYTES,
    MAX_SKU_BYTES,
    count_problem,
    integer_problem,
    repeated,
    text_problem,
)
from s3es import Aggregate


class OrderError(Exception):
    """A command the order's rules refuse; the message names the order and what is wrong.

    ``field`` names the command's field that is out of bounds (``lines[2].quantity``), if that
    is what is wrong.
    """

    def __init__(self, order_id: str, problem: str, *, field: str | None = None) -> None:
        self.order_id = order_id
        self.problem = problem
        self.field = field
        super().__init__(f"order {order_id}: {problem}")


def format_cents(cents: int) -> str:
    """``1234`` as ``"$12.34"``."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{rest:02d}"


@attrs.frozen
class OrderLine:
    """So many units of one SKU at a unit price (cents)."""

    sku: str
    quantity: int = attrs.field(validator=attrs.validators.ge(1))
    unit_price_cents: int = attrs.field(validator=attrs.validators.ge(0))

    @property
    def total_cents(self) -> int:
        """Quantity times unit price."""
        return self.quantity * self.unit_price_cents


class OrderStatus(enum.StrEnum):
    """Where an order is in its life."""

    NEW = "new"  # no event yet
    PLACED = "placed"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


class StockStatus(enum.StrEnum):
    """What the warehouse answered for an order's lines."""

    PENDING = "pending"
    RESERVED = "reserved"
    REFUSED = "refused"


# Commands


@attrs.frozen
class PlaceOrder:
    """Place the order with these lines."""

    order_id: str
    lines: tuple[OrderLine, ...]


@attrs.frozen
class RecordPayment:
    """The payment provider took ``amount_cents`` for the order, as payment ``payment_id``."""

    order_id: str
    payment_id: str
    amount_cents: int


@attrs.frozen
class ConfirmStock:
    """The warehouse reserved the order's lines (on its own stream): record it on the order."""

    order_id: str
    warehouse_id: str


@attrs.frozen
class RefuseStock:
    """The warehouse had too few of ``short_skus``: record that the order cannot be filled."""

    order_id: str
    warehouse_id: str
    short_skus: tuple[str, ...]


@attrs.frozen
class ShipOrder:
    """Ship the order: it must be paid and its stock reserved."""

    order_id: str


@attrs.frozen
class ShipWhenReady:
    """Ship the order if it is placed, paid and its stock reserved; else decide nothing.

    What the fulfilment reactor sends after each of the two events shipping waits for: the
    first finds the order not ready and stores nothing, the second ships it. Unlike
    :class:`ShipOrder`, an order not ready (or cancelled, or shipped) is no error.
    """

    order_id: str


@attrs.frozen
class CancelOrder:
    """Cancel the order, which must not be shipped; a payment taken becomes a refund due."""

    order_id: str
    reason: str


OrderCommand = (
    PlaceOrder
    | RecordPayment
    | ConfirmStock
    | RefuseStock
    | ShipOrder
    | ShipWhenReady
    | CancelOrder
)

# Events


@attrs.frozen
class OrderPlaced:
    """The order was placed with these lines, for this total."""

    order_id: str
    lines: tuple[OrderLine, ...]
    total_cents: int


@attrs.frozen
class PaymentRecorded:
    """The order's total was paid."""

    payment_id: str
    amount_cents: int


@attrs.frozen
class StockConfirmed:
    """The warehouse holds the order's lines for it."""

    warehouse_id: str


@attrs.frozen
class StockRefused:
    """The warehouse had too few of some of the order's SKUs."""

    warehouse_id: str
    short_skus: tuple[str, ...]


@attrs.frozen
class OrderShipped:
    """The order left the warehouse."""


@attrs.frozen
class OrderCancelled:
    """The order was cancelled; ``refund_due_cents`` of its payment go back to the customer."""

    reason: str
    refund_due_cents: int


OrderEvent = (
    OrderPlaced | PaymentRecorded | StockConfirmed | StockRefused | OrderShipped | OrderCancelled
)


@attrs.frozen
class OrderState:
    """An order as its events left it."""

    order_id: str = ""
    status: OrderStatus = OrderStatus.NEW
    lines: tuple[OrderLine, ...] = ()
    total_cents: int = 0
    payment_id: str | None = None
    paid_cents: int = 0
    stock: StockStatus = StockStatus.PENDING
    warehouse_id: str | None = None
    short_skus: tuple[str, ...] = ()
    cancel_reason: str | None = None
    refund_due_cents: int = 0

    @property
    def paid(self) -> bool:
        """Whether a payment of the order's total is recorded."""
        return self.payment_id is not None


class Order(Aggregate[OrderState, OrderCommand, OrderEvent]):
    """The rules of an order. See the module's docstring."""

    STREAM_TYPE: ClassVar[str] = "order"
    SNAPSHOT_SCHEMA: ClassVar[int] = 1
    EVENT_TYPES: ClassVar[dict[str, type[object]]] = {
        "OrderPlaced": OrderPlaced,
        "PaymentRecorded": PaymentRecorded,
        "StockConfirmed": StockConfirmed,
        "StockRefused": StockRefused,
        "OrderShipped": OrderShipped,
        "OrderCancelled": OrderCancelled,
    }

    def initial_state(self) -> OrderState:
        """An order not placed yet."""
        return OrderState()

    def evolve(self, state: OrderState, event: OrderEvent) -> OrderState:
        """The order after ``event``."""
        match event:
            case OrderPlaced():
                return attrs.evolve(
                    state,
                    order_id=event.order_id,
                    status=OrderStatus.PLACED,
                    lines=event.lines,
                    total_cents=event.total_cents,
                )
            case PaymentRecorded():
                return attrs.evolve(
                    state, payment_id=event.payment_id, paid_cents=event.amount_cents
                )
            case StockConfirmed():
                return attrs.evolve(
                    state, stock=StockStatus.RESERVED, warehouse_id=event.warehouse_id
                )
            case StockRefused():
                return attrs.evolve(
                    state,
                    stock=StockStatus.REFUSED,
                    warehouse_id=event.warehouse_id,
                    short_skus=event.short_skus,
                )
            case OrderShipped():
                return attrs.evolve(state, status=OrderStatus.SHIPPED)
            case OrderCancelled():
                return attrs.evolve(
                    state,
                    status=OrderStatus.CANCELLED,
                    cancel_reason=event.reason,
                    refund_due_cents=event.refund_due_cents,
                )
            case _:
                assert_never(event)

    def decide(self, command: OrderCommand, state: OrderState) -> Sequence[OrderEvent]:
        """The events ``command`` causes; OrderError if the order's rules refuse it.

        A command out of the bounds of :mod:`examples.orders.limits` is refused first, its
        error's ``field`` naming what is wrong. Linear in the command's lines, which are at
        most MAX_LINES: cheap enough for an event loop.
        """
        _check_bounds(command)
        if isinstance(command, PlaceOrder):
            return _place(command, state)
        if state.status is OrderStatus.NEW:
            raise OrderError(
                command.order_id, f"not placed: cannot {_verb(command)} an order never placed"
            )
        if command.order_id != state.order_id:
            raise OrderError(
                command.order_id,
                f"{type(command).__name__} sent to the stream of order {state.order_id}",
            )
        match command:
            case RecordPayment():
                return _record_payment(command, state)
            case ConfirmStock():
                return _confirm_stock(command, state)
            case RefuseStock():
                return _refuse_stock(command, state)
            case ShipOrder() | ShipWhenReady():
                return _ship(command, state)
            case CancelOrder():
                return _cancel(command, state)
            case _:
                assert_never(command)


def _lines_problems(lines: Sequence[OrderLine]) -> Iterator[tuple[str, str | None]]:
    """Each field of an order's ``lines`` with what is wrong with it (None where nothing is)."""
    yield "lines", count_problem("lines", lines, 0, MAX_LINES)
    total = 0
    for number, line in enumerate(lines):
        field = f"lines[{number}]"
        yield f"{field}.sku", text_problem(f"{field}.sku", line.sku, MAX_SKU_BYTES)
        quantity, price = f"{field}.quantity", f"{field}.unit_price_cents"
        yield quantity, integer_problem(quantity, line.quantity, 1, MAX_QUANTITY)
        yield price, integer_problem(price, line.unit_price_cents, 0, MAX_CENTS)
        if line.total_cents > MAX_CENTS:
            yield field, f"{field} totals {line.total_cents:,} cents, more than {MAX_CENTS:,}"
        total += line.total_cents
    if total > MAX_CENTS:
        yield "total_cents", f"total_cents of {total:,} is more than {MAX_CENTS:,}"


def _bounds_problems(command: OrderCommand) -> Iterator[tuple[str, str | None]]:
    """Each field of ``command`` with what is wrong with it (None where nothing is)."""
    yield "order_id", text_problem("order_id", command.order_id, MAX_ID_BYTES)
    match command:
        case PlaceOrder():
            yield from _lines_problems(command.lines)
        case RecordPayment():
            yield "payment_id", text_problem("payment_id", command.payment_id, MAX_ID_BYTES)
            amount = integer_problem("amount_cents", command.amount_cents, 0, MAX_CENTS)
            yield "amount_cents", amount
        case ConfirmStock() | RefuseStock():
            yield "warehouse_id", text_problem("warehouse_id", command.warehouse_id, MAX_ID_BYTES)
            short = command.short_skus if isinstance(command, RefuseStock) else ()
            yield "short_skus", count_problem("short_skus", short, 0, MAX_LINES)
            for number, sku in enumerate(short):
                yield (
                    f"short_skus[{number}]",
                    text_problem(f"short_skus[{number}]", sku, MAX_SKU_BYTES),
                )
        case CancelOrder():
            yield "reason", text_problem("reason", command.reason, MAX_REASON_BYTES)
        case ShipOrder() | ShipWhenReady():
            pass
        case _:
            assert_never(command)


def _check_bounds(command: OrderCommand) -> None:
    """Raise OrderError, naming the field, for the first field of ``command`` out of bounds.

    A count out of bounds is met before the entries are walked: an order of a million lines is
    refused at its ``lines``, without a look at any of them.
    """
    for field, problem in _bounds_problems(command):
        if problem is not None:
            raise OrderError(str(command.order_id), problem, field=field)


def _verb(command: OrderCommand) -> str:
    return {
        PlaceOrder: "place",
        RecordPayment: "record a payment for",
        ConfirmStock: "confirm stock for",
        RefuseStock: "refuse stock for",
        ShipOrder: "ship",
        ShipWhenReady: "ship",
        CancelOrder: "cancel",
    }[type(command)]


def _place(command: PlaceOrder, state: OrderState) -> list[OrderEvent]:
    order_id = command.order_id
    if state.status is not OrderStatus.NEW:
        if state.order_id == order_id and state.lines == command.lines:
            return []  # the same order placed again: a retry
        raise OrderError(order_id, f"already placed (as order {state.order_id}) with other lines")
    if not command.lines:
        raise OrderError(order_id, "cannot be placed without lines")
    twice = repeated(line.sku for line in command.lines)
    if twice:
        raise OrderError(
            order_id, f"lists SKU {', '.join(twice)} on more than one line", field="lines"
        )
    total = sum(line.total_cents for line in command.lines)
    return [OrderPlaced(order_id=order_id, lines=command.lines, total_cents=total)]


def _record_payment(command: RecordPayment, state: OrderState) -> list[OrderEvent]:
    order_id, payment_id = state.order_id, command.payment_id
    if state.payment_id == payment_id:
        if state.paid_cents == command.amount_cents:
            return []  # the same payment delivered again
        raise OrderError(
            order_id,
            f"payment {payment_id} is recorded as {format_cents(state.paid_cents)}, "
            f"not {format_cents(command.amount_cents)}",
        )
    if state.status is OrderStatus.CANCELLED:
        raise OrderError(order_id, f"cancelled: cannot record payment {payment_id}")
    if state.paid:
        raise OrderError(
            order_id,
            f"already paid by payment {state.payment_id}: cannot record payment {payment_id}",
        )
    if command.amount_cents != state.total_cents:
        raise OrderError(
            order_id,
            f"payment {payment_id} of {format_cents(command.amount_cents)} does not match "
            f"the order's total of {format_cents(state.total_cents)}",
        )
    return [PaymentRecorded(payment_id=payment_id, amount_cents=command.amount_cents)]


def _confirm_stock(command: ConfirmStock, state: OrderState) -> list[OrderEvent]:
    order_id = state.order_id
    if state.stock is StockStatus.RESERVED:
        return []  # recorded already
    if state.stock is StockStatus.REFUSED:
        raise OrderError(order_id, "stock was refused: cannot confirm it now")
    if state.status is OrderStatus.CANCELLED:
        # Nothing to record: the order is over, and the reaction to its cancellation releases
        # what the warehouse reserved (the warehouse answered before: see ReleaseStock).
        return []
    return [StockConfirmed(warehouse_id=command.warehouse_id)]


def _refuse_stock(command: RefuseStock, state: OrderState) -> list[OrderEvent]:
    order_id = state.order_id
    if state.stock is StockStatus.REFUSED:
        return []  # recorded already
    if state.stock is StockStatus.RESERVED:
        raise OrderError(order_id, "stock is reserved: cannot refuse it now")
    if not command.short_skus:
        raise OrderError(order_id, "a stock refusal must name the SKUs that are short")
    if state.status is OrderStatus.CANCELLED:
        return []  # nothing was reserved and the order is over: nothing to record
    return [StockRefused(warehouse_id=command.warehouse_id, short_skus=command.short_skus)]


def _ship(command: ShipOrder | ShipWhenReady, state: OrderState) -> list[OrderEvent]:
    order_id = state.order_id
    if isinstance(command, ShipWhenReady):
        ready = state.status is OrderStatus.PLACED and state.paid
        return [OrderShipped()] if ready and state.stock is StockStatus.RESERVED else []
    if state.status is OrderStatus.SHIPPED:
        return []  # shipped already
    if state.status is OrderStatus.CANCELLED:
        raise OrderError(order_id, "cancelled: cannot ship it")
    if not state.paid:
        raise OrderError(order_id, "not paid: cannot ship it")
    if state.stock is not StockStatus.RESERVED:
        raise OrderError(order_id, f"stock is {state.stock}, not reserved: cannot ship it")
    return [OrderShipped()]


def _cancel(command: CancelOrder, state: OrderState) -> list[OrderEvent]:
    if state.status is OrderStatus.CANCELLED:
        return []  # cancelled already
    if state.status is OrderStatus.SHIPPED:
        raise OrderError(state.order_id, "shipped: cannot cancel it")
    return [OrderCancelled(reason=command.reason, refund_due_cents=state.paid_cents)]
