"""The read models of the orders example: orders listed by status, stock reserved per product.

Each is a :class:`~s3es.Projection`: a :class:`~s3es.Projector` keeps it up to date from the
streams and stores it, with the version of each stream it reflects, in one JSON document in S3.

- :class:`OrderSummaries` folds every order stream into an :class:`OrderList`: one
  :class:`OrderSummary` per order, listed by status with :meth:`OrderList.by_status`.
- :class:`ReservedStock` folds every warehouse stream into :class:`StockLevels`: units received,
  reserved and available per product, with :meth:`StockLevels.by_product` adding up warehouses.

``apply`` updates the model in place, as the projection contract allows: each event replaces
one order's summary (or one warehouse's stock) in the model's dict, so an event costs the same
whether the model holds a hundred orders or a million (copying the dict per event made a
rebuild quadratic). Summaries are frozen and built whole before the one assignment that puts
them in, after everything that can fail: an ``apply`` that raises changes nothing, and a
reader sees each summary whole. A reader in another thread (an
:class:`~s3es.InlineProjection`'s ``model``) that walks the dict while a command adds an order
must take a copy first (``dict(model.orders)``, one step under the GIL).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, assert_never

import attrs

from examples.orders.domain import (
    Order,
    OrderCancelled,
    OrderEvent,
    OrderPlaced,
    OrderShipped,
    OrderStatus,
    PaymentRecorded,
    StockConfirmed,
    StockRefused,
    StockStatus,
)
from examples.orders.inventory import (
    Inventory,
    InventoryEvent,
    StockItem,
    StockReceived,
    StockReleased,
    StockReserved,
    StockShortage,
)
from s3es import Projection, RecordedEvent, StreamName


class ProjectionError(Exception):
    """An event the projection cannot apply; the message names the stream and version."""


# Orders by status


@attrs.frozen
class OrderSummary:
    """One order as the order list shows it; by default, an order not placed yet."""

    status: OrderStatus = OrderStatus.NEW
    #: How many lines (SKUs) the order has.
    lines: int = 0
    total_cents: int = 0
    paid: bool = False
    paid_cents: int = 0
    stock: StockStatus = StockStatus.PENDING
    refund_due_cents: int = 0
    #: How many of the order's events the summary reflects: one applied twice would show here.
    events: int = 0


@attrs.define
class OrderList:
    """Every order's summary, by order id (the id of its stream); ``apply`` updates it."""

    orders: dict[str, OrderSummary] = attrs.field(factory=dict)

    def by_status(self) -> dict[OrderStatus, dict[str, OrderSummary]]:
        """The orders of each status, statuses in the order of an order's life, ids sorted.

        Statuses no order has are left out.
        """
        listed: dict[OrderStatus, dict[str, OrderSummary]] = {}
        for status in OrderStatus:
            orders = {
                order_id: summary
                for order_id, summary in sorted(self.orders.items())
                if summary.status is status
            }
            if orders:
                listed[status] = orders
        return listed


def summarised(summary: OrderSummary, event: OrderEvent) -> OrderSummary:
    """The summary of an order after ``event``; the events count is left to the caller."""
    match event:
        case OrderPlaced():
            return attrs.evolve(
                summary,
                status=OrderStatus.PLACED,
                lines=len(event.lines),
                total_cents=event.total_cents,
            )
        case PaymentRecorded():
            return attrs.evolve(summary, paid=True, paid_cents=event.amount_cents)
        case StockConfirmed():
            return attrs.evolve(summary, stock=StockStatus.RESERVED)
        case StockRefused():
            return attrs.evolve(summary, stock=StockStatus.REFUSED)
        case OrderShipped():
            return attrs.evolve(summary, status=OrderStatus.SHIPPED)
        case OrderCancelled():
            return attrs.evolve(
                summary, status=OrderStatus.CANCELLED, refund_due_cents=event.refund_due_cents
            )
        case _:
            assert_never(event)


class OrderSummaries(Projection[OrderList]):
    """Every order's summary (status, total, payment, stock), listed by status."""

    NAME = "order-summaries"
    SCHEMA = 1
    SOURCES: ClassVar[tuple[type[Order]]] = (Order,)

    def initial_model(self) -> OrderList:
        """No order yet."""
        return OrderList()

    def apply(self, model: OrderList, event: RecordedEvent[Any]) -> OrderList:
        """The list with ``event``'s order summarised again: its summary replaced in place.

        Raises ProjectionError, naming the stream, for an event of an order never placed
        (an order stream always starts with its OrderPlaced); the list is then unchanged.
        """
        order_id = event.stream.id
        order_event: OrderEvent = event.event
        summary = model.orders.get(order_id, OrderSummary())
        if summary.status is OrderStatus.NEW and not isinstance(order_event, OrderPlaced):
            raise ProjectionError(
                f"{event.stream} version {event.version}: {event.type} of an order never placed"
            )
        summary = summarised(summary, order_event)
        model.orders[order_id] = attrs.evolve(summary, events=summary.events + 1)
        return model

    def forget(self, model: OrderList, stream: StreamName) -> OrderList:
        """The list without the deleted order (removed in place)."""
        model.orders.pop(stream.id, None)
        return model


# Stock reserved per product


@attrs.frozen
class ProductStock:
    """One product's units in a warehouse (or in all of them)."""

    received: int = 0
    #: Units held for orders now: those reserved, less those released again.
    reserved: int = 0
    #: How many orders were refused because too few of this product were available.
    short: int = 0

    @property
    def available(self) -> int:
        """Units neither reserved nor shipped: received less reserved."""
        return self.received - self.reserved

    def __add__(self, other: ProductStock) -> ProductStock:
        return ProductStock(
            received=self.received + other.received,
            reserved=self.reserved + other.reserved,
            short=self.short + other.short,
        )


@attrs.define
class StockLevels:
    """Each warehouse's stock (by the id of its stream), by product (SKU); ``apply`` updates it."""

    warehouses: dict[str, Mapping[str, ProductStock]] = attrs.field(factory=dict)

    def by_product(self) -> dict[str, ProductStock]:
        """Every warehouse's stock of each product added up, SKUs sorted."""
        totals: dict[str, ProductStock] = {}
        for products in self.warehouses.values():
            for sku, stock in products.items():
                totals[sku] = totals.get(sku, ProductStock()) + stock
        return dict(sorted(totals.items()))


def _changed(
    products: Mapping[str, ProductStock], skus: Iterable[tuple[str, ProductStock]]
) -> dict[str, ProductStock]:
    """``products`` with each ``(sku, change)`` added, SKUs sorted."""
    result = dict(products)
    for sku, change in skus:
        result[sku] = result.get(sku, ProductStock()) + change
    return dict(sorted(result.items()))


def stock_changes(event: InventoryEvent) -> list[tuple[str, ProductStock]]:
    """What ``event`` changes, per SKU."""

    def units(items: tuple[StockItem, ...], sign: int = 1) -> list[tuple[str, ProductStock]]:
        return [(item.sku, ProductStock(reserved=sign * item.quantity)) for item in items]

    match event:
        case StockReceived():
            return [(item.sku, ProductStock(received=item.quantity)) for item in event.items]
        case StockReserved():
            return units(event.items)
        case StockReleased():
            return units(event.items, -1)
        case StockShortage():
            return [(sku, ProductStock(short=1)) for sku in event.short_skus]
        case _:
            assert_never(event)


class ReservedStock(Projection[StockLevels]):
    """Units received, reserved and available per product, in each warehouse."""

    NAME = "reserved-stock"
    SCHEMA = 1
    SOURCES: ClassVar[tuple[type[Inventory]]] = (Inventory,)

    def initial_model(self) -> StockLevels:
        """No warehouse yet."""
        return StockLevels()

    def apply(self, model: StockLevels, event: RecordedEvent[Any]) -> StockLevels:
        """The levels with ``event``'s warehouse changed by it (its products replaced in place)."""
        warehouse_id = event.stream.id
        products = _changed(model.warehouses.get(warehouse_id, {}), stock_changes(event.event))
        model.warehouses[warehouse_id] = products
        return model

    def forget(self, model: StockLevels, stream: StreamName) -> StockLevels:
        """The levels without the deleted warehouse (removed in place)."""
        model.warehouses.pop(stream.id, None)
        return model
