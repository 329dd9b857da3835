"""The Inventory aggregate: one warehouse's stock, reserved order by order.

All of a warehouse's stock is one stream (``inventory/warehouse-1``), so two reservations can
never both take the last unit: they race for the same version, one wins, the other decides
again on the stock that is left. That makes the warehouse a hot stream under load, which the
demo shows.

A reservation is all or nothing: if any SKU of an order is short, nothing is reserved and a
:class:`StockShortage` names the short SKUs. :class:`ReserveStock` is idempotent per order id:
once a warehouse has answered for an order, asking again decides no events and the state holds
the answer. That is what lets the inventory service retry safely.

Every command is held to the bounds of :mod:`examples.orders.limits` (SKUs, quantities,
number of items) before anything else is decided: an :class:`InventoryError` whose ``field``
names what is out of bounds.

The state keeps every order's answer for good; a real warehouse would archive old ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar, assert_never

import attrs

from examples.orders.limits import (
    MAX_ID_BYTES,
    MAX_LINES,
    MAX_QUANTITY,
    MAX_SKU_BYTES,
    count_problem,
    integer_problem,
    repeated,
    text_problem,
)
from s3es import Aggregate


class InventoryError(Exception):
    """A command the warehouse's rules refuse; the message names the warehouse and the order.

    ``field`` names the command's field that is out of bounds (``items[0].sku``), if that is
    what is wrong.
    """

    def __init__(self, warehouse_id: str, problem: str, *, field: str | None = None) -> None:
        self.warehouse_id = warehouse_id
        self.problem = problem
        self.field = field
        super().__init__(f"warehouse {warehouse_id}: {problem}")


@attrs.frozen
class StockItem:
    """So many units of one SKU."""

    sku: str
    quantity: int = attrs.field(validator=attrs.validators.ge(1))


# Commands


@attrs.frozen
class ReceiveStock:
    """Goods arrived at the warehouse: add them to what is available."""

    warehouse_id: str
    items: tuple[StockItem, ...]


@attrs.frozen
class ReserveStock:
    """Hold ``items`` for ``order_id`` if every one is available, else record a shortage."""

    warehouse_id: str
    order_id: str
    items: tuple[StockItem, ...]


@attrs.frozen
class ReleaseStock:
    """Give back what ``order_id`` holds (its order was cancelled)."""

    warehouse_id: str
    order_id: str


InventoryCommand = ReceiveStock | ReserveStock | ReleaseStock

# Events


@attrs.frozen
class StockReceived:
    """Goods were added to the warehouse's stock."""

    warehouse_id: str
    items: tuple[StockItem, ...]


@attrs.frozen
class StockReserved:
    """``items`` are held for ``order_id``."""

    order_id: str
    items: tuple[StockItem, ...]


@attrs.frozen
class StockShortage:
    """``order_id`` asked for more of ``short_skus`` than was available: nothing was held."""

    order_id: str
    short_skus: tuple[str, ...]


@attrs.frozen
class StockReleased:
    """What ``order_id`` held is available again."""

    order_id: str
    items: tuple[StockItem, ...]


InventoryEvent = StockReceived | StockReserved | StockShortage | StockReleased


@attrs.frozen
class InventoryState:
    """A warehouse's available stock, and its answer for every order that asked."""

    warehouse_id: str = ""
    available: Mapping[str, int] = attrs.field(factory=dict)
    #: Order id to the items held for it.
    reservations: Mapping[str, tuple[StockItem, ...]] = attrs.field(factory=dict)
    #: Order id to the SKUs that were short when it asked.
    shortages: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    #: Order id to the items it held until they were released.
    released: Mapping[str, tuple[StockItem, ...]] = attrs.field(factory=dict)


def _added(available: Mapping[str, int], items: Sequence[StockItem], sign: int) -> dict[str, int]:
    result = dict(available)
    for item in items:
        result[item.sku] = result.get(item.sku, 0) + sign * item.quantity
    return result


class Inventory(Aggregate[InventoryState, InventoryCommand, InventoryEvent]):
    """The rules of a warehouse's stock. See the module's docstring."""

    STREAM_TYPE: ClassVar[str] = "inventory"
    SNAPSHOT_SCHEMA: ClassVar[int] = 1
    EVENT_TYPES: ClassVar[dict[str, type[object]]] = {
        "StockReceived": StockReceived,
        "StockReserved": StockReserved,
        "StockShortage": StockShortage,
        "StockReleased": StockReleased,
    }

    def initial_state(self) -> InventoryState:
        """A warehouse with nothing in it."""
        return InventoryState()

    def evolve(self, state: InventoryState, event: InventoryEvent) -> InventoryState:
        """The warehouse after ``event``."""
        match event:
            case StockReceived():
                return attrs.evolve(
                    state,
                    warehouse_id=event.warehouse_id,
                    available=_added(state.available, event.items, +1),
                )
            case StockReserved():
                return attrs.evolve(
                    state,
                    available=_added(state.available, event.items, -1),
                    reservations={**state.reservations, event.order_id: event.items},
                )
            case StockShortage():
                return attrs.evolve(
                    state, shortages={**state.shortages, event.order_id: event.short_skus}
                )
            case StockReleased():
                reservations = dict(state.reservations)
                del reservations[event.order_id]
                return attrs.evolve(
                    state,
                    available=_added(state.available, event.items, +1),
                    reservations=reservations,
                    released={**state.released, event.order_id: event.items},
                )
            case _:
                assert_never(event)

    def decide(self, command: InventoryCommand, state: InventoryState) -> Sequence[InventoryEvent]:
        """The events ``command`` causes; InventoryError if the warehouse's rules refuse it.

        A command out of the bounds of :mod:`examples.orders.limits` is refused first, its
        error's ``field`` naming what is wrong.
        """
        _check_bounds(command)
        if state.warehouse_id and command.warehouse_id != state.warehouse_id:
            raise InventoryError(
                command.warehouse_id,
                f"{type(command).__name__} sent to the stream of warehouse {state.warehouse_id}",
            )
        match command:
            case ReceiveStock():
                if not command.items:
                    raise InventoryError(command.warehouse_id, "received no items")
                return [StockReceived(warehouse_id=command.warehouse_id, items=command.items)]
            case ReserveStock():
                return _reserve(command, state)
            case ReleaseStock():
                return _release(command, state)
            case _:
                assert_never(command)


def _bounds_problems(command: InventoryCommand) -> Iterator[tuple[str, str | None]]:
    """Each field of ``command`` with what is wrong with it (None where nothing is)."""
    yield "warehouse_id", text_problem("warehouse_id", command.warehouse_id, MAX_ID_BYTES)
    if isinstance(command, ReserveStock | ReleaseStock):
        yield "order_id", text_problem("order_id", command.order_id, MAX_ID_BYTES)
    if isinstance(command, ReceiveStock | ReserveStock):
        yield "items", count_problem("items", command.items, 0, MAX_LINES)
        for number, item in enumerate(command.items):
            field = f"items[{number}]"
            yield f"{field}.sku", text_problem(f"{field}.sku", item.sku, MAX_SKU_BYTES)
            yield (
                f"{field}.quantity",
                integer_problem(f"{field}.quantity", item.quantity, 1, MAX_QUANTITY),
            )


def _check_bounds(command: InventoryCommand) -> None:
    """Raise InventoryError, naming the field, for the first field of ``command`` out of bounds."""
    for field, problem in _bounds_problems(command):
        if problem is not None:
            raise InventoryError(str(command.warehouse_id), problem, field=field)


def _reserve(command: ReserveStock, state: InventoryState) -> list[InventoryEvent]:
    warehouse_id, order_id = command.warehouse_id, command.order_id
    if order_id in state.reservations:
        if state.reservations[order_id] == command.items:
            return []  # reserved already
        raise InventoryError(warehouse_id, f"order {order_id} already holds other items")
    if order_id in state.shortages:
        return []  # refused already: the answer stands
    if order_id in state.released:
        raise InventoryError(warehouse_id, f"order {order_id} released its stock already")
    if not command.items:
        raise InventoryError(warehouse_id, f"order {order_id} asks to reserve no items")
    twice = repeated(item.sku for item in command.items)
    if twice:
        raise InventoryError(
            warehouse_id,
            f"order {order_id} lists SKU {', '.join(twice)} more than once",
            field="items",
        )
    short = tuple(
        sorted(
            item.sku for item in command.items if state.available.get(item.sku, 0) < item.quantity
        )
    )
    if short:
        return [StockShortage(order_id=order_id, short_skus=short)]
    return [StockReserved(order_id=order_id, items=command.items)]


def _release(command: ReleaseStock, state: InventoryState) -> list[InventoryEvent]:
    order_id = command.order_id
    if order_id in state.reservations:
        return [StockReleased(order_id=order_id, items=state.reservations[order_id])]
    if order_id in state.released or order_id in state.shortages:
        return []  # released already, or never held anything
    raise InventoryError(command.warehouse_id, f"holds no stock for order {order_id}")
