"""The services of the orders example: payment, inventory and shipping.

Each service sends commands through a :class:`~s3es.CommandHandler` (one per aggregate, shared by
every thread: a handler keeps no per-call state). The handler retries a command that lost a
race for a stream's next version; when it gives up (:class:`~s3es.RetriesExhausted`), the
service sends the whole command again, which is safe because every command they send is
idempotent. A :class:`Ledger` keeps what happened: the ids of every acknowledged event, the
conflicts met, the retries made.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

import attrs

from examples.orders.domain import (
    CancelOrder,
    ConfirmStock,
    OrderCommand,
    OrderError,
    OrderEvent,
    OrderLine,
    OrderState,
    OrderStatus,
    RecordPayment,
    RefuseStock,
    ShipOrder,
    StockStatus,
)
from examples.orders.inventory import (
    InventoryCommand,
    InventoryEvent,
    InventoryState,
    ReleaseStock,
    ReserveStock,
    StockItem,
)
from s3es import CommandHandler, CommandResult, RetriesExhausted, StreamName

S = TypeVar("S")
C = TypeVar("C")
E = TypeVar("E")

OrderHandler = CommandHandler[OrderState, OrderCommand, OrderEvent]
InventoryHandler = CommandHandler[InventoryState, InventoryCommand, InventoryEvent]

#: How often a service sends a command again after the handler gave up on it.
RESENDS = 3


class Ledger:
    """What the services' commands did, kept from many threads at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Event ids of every acknowledged append, per stream, in the order acknowledged.
        self.acknowledged: dict[StreamName, list[str]] = {}
        #: Commands that returned, per stream.
        self.commands: Counter[StreamName] = Counter()
        #: Commands that returned without storing anything (idempotent repeats), per stream.
        self.unchanged: Counter[StreamName] = Counter()
        #: Concurrency conflicts met, per stream (each one a retry, or the end of a handle).
        self.conflicts: Counter[StreamName] = Counter()
        #: Handles that ended in RetriesExhausted, per stream.
        self.exhausted: Counter[StreamName] = Counter()
        #: Conflicts met on each stream type, by the service that lost the race.
        self.losers: Counter[tuple[str, str]] = Counter()
        #: The most conflicts one command met before it was stored, per stream type.
        self.longest: Counter[str] = Counter()

    def record(self, result: CommandResult[Any, Any], service: str) -> None:
        """Count a command ``service`` sent, and keep the ids of the events it stored."""
        with self._lock:
            self.losers[result.stream.type, service] += result.conflicts
            self.acknowledged.setdefault(result.stream, []).extend(
                recorded.id for recorded in result.recorded
            )
            self.commands[result.stream] += 1
            self.conflicts[result.stream] += result.conflicts
            kind = result.stream.type
            self.longest[kind] = max(self.longest[kind], result.conflicts)
            if not result.recorded:
                self.unchanged[result.stream] += 1

    def record_exhausted(self, error: RetriesExhausted, service: str) -> None:
        """Count a command ``service`` sent that lost a race on every attempt."""
        with self._lock:
            self.losers[error.stream.type, service] += error.attempts
            self.conflicts[error.stream] += error.attempts
            self.exhausted[error.stream] += 1

    def by_stream_type(self, counts: Mapping[StreamName, int]) -> Counter[str]:
        """``counts`` summed per stream type."""
        with self._lock:
            totals: Counter[str] = Counter()
            for stream, count in counts.items():
                totals[stream.type] += count
            return totals


def send(
    handler: CommandHandler[S, C, E],
    stream_id: str,
    command: C,
    ledger: Ledger,
    *,
    service: str,
) -> CommandResult[S, E]:
    """Handle ``command``; send it again (at most RESENDS times) if the handler gives up."""
    for resend in range(RESENDS + 1):
        try:
            result = handler.handle(
                stream_id, command, metadata={"service": service, "resend": resend}
            )
        except RetriesExhausted as error:
            ledger.record_exhausted(error, service)
            if resend == RESENDS:
                raise
            continue
        ledger.record(result, service)
        return result
    raise AssertionError("unreachable")  # pragma: no cover


@attrs.frozen
class PaymentDelivery:
    """A payment provider's notice that an order was paid (delivered at least once)."""

    order_id: str
    payment_id: str
    amount_cents: int


class PaymentService:
    """Records payments on order streams; a notice delivered twice records one payment."""

    def __init__(self, orders: OrderHandler, ledger: Ledger) -> None:
        self.orders = orders
        self.ledger = ledger

    def record_payment(self, delivery: PaymentDelivery) -> CommandResult[OrderState, OrderEvent]:
        """Record ``delivery`` on its order; no new event if it is already recorded."""
        command = RecordPayment(
            order_id=delivery.order_id,
            payment_id=delivery.payment_id,
            amount_cents=delivery.amount_cents,
        )
        return send(self.orders, delivery.order_id, command, self.ledger, service="payment")


StockOutcome = Literal["reserved", "refused", "released"]


class InventoryService:
    """Reserves an order's lines on the warehouse stream, then records the answer on the order.

    Two streams, two appends, no transaction between them: if the service stops in between, the
    order still shows stock pending, and running ``reserve`` again finishes the job, because the
    warehouse answers the same order id the same way every time.
    """

    def __init__(
        self,
        inventory: InventoryHandler,
        orders: OrderHandler,
        ledger: Ledger,
        warehouse_id: str,
    ) -> None:
        self.inventory = inventory
        self.orders = orders
        self.ledger = ledger
        self.warehouse_id = warehouse_id

    def reserve(self, order_id: str, lines: tuple[OrderLine, ...]) -> StockOutcome:
        """Reserve ``lines`` for ``order_id`` and record the warehouse's answer on the order.

        If the order was cancelled meanwhile, the reservation is released again.
        """
        items = tuple(StockItem(sku=line.sku, quantity=line.quantity) for line in lines)
        warehouse = send(
            self.inventory,
            self.warehouse_id,
            ReserveStock(warehouse_id=self.warehouse_id, order_id=order_id, items=items),
            self.ledger,
            service="inventory",
        ).state
        if order_id not in warehouse.reservations:
            refuse = RefuseStock(
                order_id=order_id,
                warehouse_id=self.warehouse_id,
                short_skus=warehouse.shortages[order_id],
            )
            send(self.orders, order_id, refuse, self.ledger, service="inventory")
            return "refused"
        confirm = ConfirmStock(order_id=order_id, warehouse_id=self.warehouse_id)
        try:
            send(self.orders, order_id, confirm, self.ledger, service="inventory")
        except OrderError:  # cancelled meanwhile: give the stock back
            release = ReleaseStock(warehouse_id=self.warehouse_id, order_id=order_id)
            send(self.inventory, self.warehouse_id, release, self.ledger, service="inventory")
            return "released"
        return "reserved"


class ShippingService:
    """Ships orders that are paid and reserved; cancels those the warehouse could not fill."""

    def __init__(self, orders: OrderHandler, ledger: Ledger) -> None:
        self.orders = orders
        self.ledger = ledger

    @staticmethod
    def next_command(state: OrderState) -> ShipOrder | CancelOrder | None:
        """What shipping does with an order in ``state``: ship, cancel, or nothing yet."""
        if state.status is not OrderStatus.PLACED:
            return None
        if state.paid and state.stock is StockStatus.RESERVED:
            return ShipOrder(order_id=state.order_id)
        if state.stock is StockStatus.REFUSED:
            return CancelOrder(
                order_id=state.order_id, reason=f"out of stock: {', '.join(state.short_skus)}"
            )
        return None

    def dispatch(self, state: OrderState) -> CommandResult[OrderState, OrderEvent] | None:
        """Send :meth:`next_command` for the order in ``state``, if there is one."""
        command = self.next_command(state)
        if command is None:
            return None
        return send(self.orders, state.order_id, command, self.ledger, service="shipping")
