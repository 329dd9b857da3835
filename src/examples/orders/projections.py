"""The read models of the orders example: one summary per order, the stock of each product.

Each is a :class:`~s3es.projections.DocumentProjection`: a read model of many small documents,
each keyed by what a reader asks for, which a :class:`~s3es.projections.DocumentProjector`
keeps up to date in a read-model store (SQLite, PostgreSQL, or one S3 object per document)
and a :class:`~s3es.projections.DocumentReader` reads one key at a time.

- :class:`OrderSummaries`: one :class:`OrderSummary` per order, keyed by the order id (the id
  of its stream, the default key). A pass that applies one payment rewrites one summary,
  whether the shop holds a hundred orders or a million.
- :class:`ReservedStock`: one :class:`ProductLevels` per product, keyed by SKU: units received,
  reserved and available in each warehouse and in all of them. An inventory event names the
  products it changes (``document_ids``), so one event may change several documents.

:class:`OrdersByStatus` is the whole order list in one model, on the older
:class:`~s3es.Projection` API, for an :class:`~s3es.InlineProjection` (the order handler keeps
it in memory, right after each append: read-your-writes) and for a list by status, which keyed
documents cannot give in one read. It applies each event with :class:`OrderSummaries`' own
``evolve``: the rules of a summary are written once.

:func:`fold_documents` folds events into a projection's documents in memory: what the demo's
checks compare the stored documents with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeVar, assert_never

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
from s3es.projections import DocumentProjection

D = TypeVar("D")


class ProjectionError(Exception):
    """An event the projection cannot apply; the message names the stream and version."""


def fold_documents(
    projection: DocumentProjection[D],
    events: Iterable[RecordedEvent[Any]],
    documents: dict[str, D] | None = None,
) -> dict[str, D]:
    """The documents ``projection`` makes of ``events``, applied in the order given, by key.

    What a projector stores, folded in memory: each event applied to each document its
    ``document_ids`` names, a document missing from ``documents`` starting as
    ``initial_state``. ``documents`` (a new dict if None) is updated and returned.
    """
    folded: dict[str, D] = {} if documents is None else documents
    for event in events:
        for key in projection.document_ids(event):
            current = folded.get(key)
            if current is None:
                current = projection.initial_state(key)
            folded[key] = projection.evolve(current, event)
    return folded


# One summary per order


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


def by_status(summaries: Mapping[str, OrderSummary]) -> dict[OrderStatus, dict[str, OrderSummary]]:
    """The orders of each status, statuses in the order of an order's life, ids sorted.

    Statuses no order has are left out.
    """
    listed: dict[OrderStatus, dict[str, OrderSummary]] = {}
    for status in OrderStatus:
        orders = {
            order_id: summary
            for order_id, summary in sorted(summaries.items())
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


class OrderSummaries(DocumentProjection[OrderSummary]):
    """One summary per order (status, total, payment, stock), keyed by the order id.

    A summary is a small frozen value: ``evolve`` returns a new one, built whole after
    everything that can fail, so a failing ``evolve`` changes nothing. A deleted order's summary
    is removed (``forget``'s default).
    """

    NAME = "order-summaries"
    SCHEMA = 1
    SOURCES: ClassVar[tuple[type[Order]]] = (Order,)

    def initial_state(self, key: str) -> OrderSummary:  # noqa: ARG002 - every order alike
        """An order not placed yet."""
        return OrderSummary()

    def evolve(self, document: OrderSummary, event: RecordedEvent[Any]) -> OrderSummary:
        """The order's summary after ``event``, one more event counted.

        Raises ProjectionError, naming the stream, for an event of an order never placed (an
        order stream always starts with its OrderPlaced).
        """
        order_event: OrderEvent = event.event
        if document.status is OrderStatus.NEW and not isinstance(order_event, OrderPlaced):
            raise ProjectionError(
                f"{event.stream} version {event.version}: {event.type} of an order never placed"
            )
        summary = summarised(document, order_event)
        return attrs.evolve(summary, events=summary.events + 1)


@attrs.define
class OrderList:
    """Every order's summary, by order id: the model of :class:`OrdersByStatus`."""

    orders: dict[str, OrderSummary] = attrs.field(factory=dict)

    def by_status(self) -> dict[OrderStatus, dict[str, OrderSummary]]:
        """The orders of each status (see :func:`by_status`)."""
        return by_status(self.orders)


class OrdersByStatus(Projection[OrderList]):
    """The whole order list in one model, each summary made by :class:`OrderSummaries`.

    ``evolve`` replaces one order's summary in the model's dict, in place, so an event costs the
    same whatever the number of orders. A reader in another thread (an
    :class:`~s3es.InlineProjection`'s ``model``) that walks the dict while a command adds an
    order must take a copy first (``dict(model.orders)``, one step under the GIL).
    """

    NAME = "orders-by-status"
    SCHEMA = 1
    SOURCES: ClassVar[tuple[type[Order]]] = (Order,)
    _SUMMARIES = OrderSummaries()

    def initial_state(self) -> OrderList:
        """No order yet."""
        return OrderList()

    def evolve(self, model: OrderList, event: RecordedEvent[Any]) -> OrderList:
        """The list with ``event``'s order summarised again (ProjectionError: list unchanged)."""
        order_id = event.stream.id
        summary = model.orders.get(order_id) or self._SUMMARIES.initial_state(order_id)
        model.orders[order_id] = self._SUMMARIES.evolve(summary, event)
        return model

    def forget(self, model: OrderList, stream: StreamName) -> OrderList:
        """The list without the deleted order (removed in place)."""
        model.orders.pop(stream.id, None)
        return model


# Stock per product


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
class ProductLevels:
    """One product's stock: in each warehouse (by the id of its stream), and in all of them."""

    sku: str
    warehouses: dict[str, ProductStock] = attrs.field(factory=dict)

    @property
    def total(self) -> ProductStock:
        """Every warehouse's stock of the product added up."""
        return sum(self.warehouses.values(), ProductStock())


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


class ReservedStock(DocumentProjection[ProductLevels]):
    """Units received, reserved and available of each product, keyed by SKU.

    ``document_ids`` names the SKUs an inventory event changes; ``evolve`` adds the event's
    change to its warehouse's line of the document, in place. A product's document is written
    by every warehouse's stream: in the S3 read-model store each document carries the version
    of every stream applied to it (its ``applied`` map, which makes a commit that died half-way
    safe to repeat), so a product's document grows by one entry per warehouse that stocks it.
    That is the price of keying a document by something no one stream owns; SQL stores pay
    nothing of it.

    ``forgotten_ids`` names no document: a deleted warehouse stream's name does not say which
    products it stocked, so its lines stay until the projection is rebuilt (a rebuild reads no
    deleted stream).
    """

    NAME = "reserved-stock"
    SCHEMA = 1
    SOURCES: ClassVar[tuple[type[Inventory]]] = (Inventory,)

    def document_ids(self, event: RecordedEvent[Any]) -> list[str]:
        """The SKUs ``event`` changes, each once."""
        return list(dict.fromkeys(sku for sku, _ in stock_changes(event.event)))

    def initial_state(self, key: str) -> ProductLevels:
        """Product ``key`` in no warehouse yet."""
        return ProductLevels(sku=key)

    def evolve(self, document: ProductLevels, event: RecordedEvent[Any]) -> ProductLevels:
        """The product after ``event``: its warehouse's line changed in place."""
        warehouse_id = event.stream.id
        line = document.warehouses.get(warehouse_id, ProductStock())
        for sku, change in stock_changes(event.event):
            if sku == document.sku:
                line += change
        document.warehouses[warehouse_id] = line
        return document

    def forgotten_ids(self, stream: StreamName) -> list[str]:  # noqa: ARG002 - see the class
        """None: see the class's docstring."""
        return []
