"""The fulfilment reactor: what the order and warehouse streams do in answer to each other.

An order placed asks the warehouse for its stock; the warehouse's answer is recorded on the
order; an order paid and reserved is shipped; one the warehouse could not fill is cancelled
(its payment, if any, becomes a refund due), and a cancelled order gives back what it held.
Each arrow is one event in, one command out:

==========================  ==================================================================
event (stream)              command (stream)
==========================  ==================================================================
OrderPlaced (order)         ReserveStock (the warehouse): reserved, or a shortage
StockReserved (warehouse)   ConfirmStock (the order)
StockShortage (warehouse)   RefuseStock (the order)
PaymentRecorded (order)     ShipWhenReady (the order): ships if the stock is confirmed too
StockConfirmed (order)      ShipWhenReady (the order): ships if it is paid too
StockRefused (order)        CancelOrder (the order), naming the SKUs that were short
OrderCancelled (order)      ReleaseStock (the warehouse): nothing if nothing was reserved
==========================  ==================================================================

The reactor keeps no state and decides nothing: whether a command takes effect is the
aggregates' rule (:mod:`~examples.orders.domain`, :mod:`~examples.orders.inventory`). Shipping
waits for two events, and ``ShipWhenReady`` is sent on each: the order's ``decide`` ships on
the second and stores nothing on the first. A :class:`~s3es.reactors.ReactorRunner` runs the
reactor (see :mod:`examples.orders.app`): it sends each command with an id derived from the
event's, so an event reacted to twice (after a crash) has one effect, and stamps the events
each command stores with the order's flow (``correlation_id``, which the shop set to the order
id when it placed the order) and their cause (``causation_id``, the event reacted to).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from examples.orders.domain import (
    CancelOrder,
    ConfirmStock,
    Order,
    OrderCancelled,
    OrderPlaced,
    PaymentRecorded,
    RefuseStock,
    ShipWhenReady,
    StockConfirmed,
    StockRefused,
)
from examples.orders.inventory import (
    Inventory,
    ReleaseStock,
    ReserveStock,
    StockItem,
    StockReserved,
    StockShortage,
)
from s3es import Aggregate, RecordedEvent
from s3es.reactors import Reactor, Send


class Fulfilment(Reactor):
    """Fills orders from one warehouse (``warehouse_id``): see the module's table."""

    NAME: ClassVar[str] = "fulfilment"
    SOURCES: ClassVar[tuple[type[Aggregate[Any, Any, Any]], ...]] = (Order, Inventory)

    def __init__(self, warehouse_id: str) -> None:
        self.warehouse_id = warehouse_id

    def react(self, event: RecordedEvent[Any]) -> Iterable[Send]:
        """The command ``event`` calls for, if any (the same each time it is given)."""
        order_id = event.stream.id  # for an order's events; a warehouse's name the order
        match event.event:
            case OrderPlaced(lines=lines):
                items = tuple(StockItem(sku=line.sku, quantity=line.quantity) for line in lines)
                reserve = ReserveStock(self.warehouse_id, order_id, items)
                yield Send(Inventory, self.warehouse_id, reserve)
            case StockReserved(order_id=reserved):
                yield Send(Order, reserved, ConfirmStock(reserved, event.stream.id))
            case StockShortage(order_id=short, short_skus=skus):
                yield Send(Order, short, RefuseStock(short, event.stream.id, skus))
            case PaymentRecorded() | StockConfirmed():
                yield Send(Order, order_id, ShipWhenReady(order_id))
            case StockRefused(short_skus=skus):
                reason = f"out of stock: {', '.join(skus)}"
                yield Send(Order, order_id, CancelOrder(order_id, reason))
            case OrderCancelled():
                yield Send(Inventory, self.warehouse_id, ReleaseStock(self.warehouse_id, order_id))
            case _:
                pass  # OrderShipped, StockReceived, StockReleased: the end of a flow
