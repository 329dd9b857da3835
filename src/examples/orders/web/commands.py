"""The command endpoints: each POST is a command, handled on the asyncio API.

Each builds its command from the path and the body, and sends it through
:func:`~examples.orders.web.handling.handle` under the request's preconditions and key. The
answer carries the stream's version after the command as its ETag, and the command's resulting
state: read from the stream, not from a read model.
"""

from __future__ import annotations

from http import HTTPStatus

import cattrs
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from examples.orders.domain import (
    CancelOrder,
    OrderCommand,
    OrderLine,
    PlaceOrder,
    RecordPayment,
    ShipOrder,
)
from examples.orders.inventory import ReceiveStock, StockItem
from examples.orders.web.handling import answer, handle
from examples.orders.web.requests import (
    CancelBody,
    IdempotencyKey,
    IfMatch,
    IfNoneMatch,
    OrderId,
    PaymentBody,
    PlaceOrderBody,
    ReceiptBody,
)
from examples.orders.web.state import Web, WebShop

#: The command endpoints.
router = APIRouter()
_converter = cattrs.Converter()


async def _on_order(
    web: WebShop,
    order_id: str,
    command: OrderCommand,
    *,
    route: str,
    body: BaseModel | None,
    if_match: str | None,
    idempotency_key: str | None,
    if_none_match: str | None = None,
    location: str | None = None,
) -> JSONResponse:
    """A command on the order (its id as the flow's correlation id), answered with its state."""
    result = await handle(
        web.commands.orders,
        order_id,
        command,
        route=route,
        body=body,
        correlation_id=order_id,
        if_match=if_match,
        if_none_match=if_none_match,
        idempotency_key=idempotency_key,
    )
    return answer(
        result,
        {"order_id": order_id, "order": _converter.unstructure(result.state)},
        location=location,
    )


@router.post("/orders/{order_id}", status_code=HTTPStatus.CREATED)
async def place_order(
    *,
    web: Web,
    order_id: OrderId,
    body: PlaceOrderBody,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Place an order (201, Location); the same order placed again stores nothing (200).

    ``If-None-Match: *`` creates only: 412 if the order exists.
    """
    lines = tuple(
        OrderLine(sku=line.sku, quantity=line.quantity, unit_price_cents=line.unit_price_cents)
        for line in body.lines
    )
    return await _on_order(
        web,
        order_id,
        PlaceOrder(order_id=order_id, lines=lines),
        route="place",
        body=body,
        if_match=if_match,
        if_none_match=if_none_match,
        idempotency_key=idempotency_key,
        location=f"/orders/{order_id}",
    )


@router.post("/orders/{order_id}/payments")
async def record_payment(
    *,
    web: Web,
    order_id: OrderId,
    body: PaymentBody,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Record a payment of the order's total; the same payment again stores nothing."""
    command = RecordPayment(
        order_id=order_id, payment_id=body.payment_id, amount_cents=body.amount_cents
    )
    return await _on_order(
        web,
        order_id,
        command,
        route="payment",
        body=body,
        if_match=if_match,
        idempotency_key=idempotency_key,
    )


@router.post("/orders/{order_id}/cancel")
async def cancel_order(
    *,
    web: Web,
    order_id: OrderId,
    body: CancelBody,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Cancel the order (not once shipped); a payment taken becomes a refund due."""
    command = CancelOrder(order_id=order_id, reason=body.reason)
    return await _on_order(
        web,
        order_id,
        command,
        route="cancel",
        body=body,
        if_match=if_match,
        idempotency_key=idempotency_key,
    )


@router.post("/orders/{order_id}/ship")
async def ship_order(
    *,
    web: Web,
    order_id: OrderId,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Ship the order, which must be paid and its stock reserved.

    The fulfilment reactor ships an order as soon as it is both: this is for a shop that
    ships by hand.
    """
    command = ShipOrder(order_id=order_id)
    return await _on_order(
        web,
        order_id,
        command,
        route="ship",
        body=None,
        if_match=if_match,
        idempotency_key=idempotency_key,
    )


@router.post("/warehouses/{warehouse_id}/receipts")
async def receive_stock(
    *,
    web: Web,
    warehouse_id: OrderId,
    body: ReceiptBody,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Goods arrived at the warehouse: add them to its available stock."""
    items = tuple(StockItem(sku=item.sku, quantity=item.quantity) for item in body.items)
    result = await handle(
        web.commands.warehouses,
        warehouse_id,
        ReceiveStock(warehouse_id=warehouse_id, items=items),
        route="receipt",
        body=body,
        correlation_id=warehouse_id,
        if_match=if_match,
        if_none_match=None,
        idempotency_key=idempotency_key,
    )
    available = dict(result.state.available)
    return answer(result, {"warehouse_id": warehouse_id, "available": available})
