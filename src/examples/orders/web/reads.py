"""The read endpoints: each GET reads one of the shop's read models.

The read models lag the commands: a GET shows a POST's effect after the next pass of the
projectors (:mod:`~examples.orders.web.passes`). ``GET /orders/{id}`` answers the version of
the order its summary reflects, in its body and ETag, so that a client that must see its own
write polls until that version reaches the ETag of its POST. The endpoints are plain ``def``
functions, which FastAPI runs in its worker threads: the readers are synchronous.
"""

from __future__ import annotations

from typing import Annotated, Any

import cattrs
from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from examples.orders.domain import OrderStatus
from examples.orders.limits import MAX_SKU_BYTES, text_problem
from examples.orders.projections import OrderSummary, ProductLevels, ProductStock
from examples.orders.web.problems import Problem
from examples.orders.web.requests import OrderId
from examples.orders.web.state import Web

#: The read endpoints.
router = APIRouter()
_converter = cattrs.Converter()


def _summary_json(order_id: str, summary: OrderSummary) -> dict[str, Any]:
    return {"order_id": order_id, **_converter.unstructure(summary)}


def _stock_json(stock: ProductStock) -> dict[str, int]:
    return {**_converter.unstructure(stock), "available": stock.available}


@router.get("/orders/{order_id}")
def get_order(*, web: Web, order_id: OrderId) -> JSONResponse:
    """The order's summary as the read model holds it, with the version it reflects (ETag).

    A plain ``def``: FastAPI runs it in a worker thread, where the sync reader may block. The
    version is read before the summary, which is therefore at least as new: an ETag sent back
    as ``If-Match`` is never newer than what the client saw (at worst, a 412 to read again).
    404 for an order the read model does not hold: never placed, or not projected yet.
    """
    reader = web.shop.summaries.reader()
    stream = str(web.shop.orders.stream(order_id))
    generation = reader.generation
    position = None
    summary = None
    if generation is not None:
        position = reader.store.positions(generation, [stream]).get(stream)
        summary = reader.get(order_id)
    if summary is None or position is None or reader.generation != generation:
        raise Problem(
            "unknown-order",
            f"order {order_id} is not in the order summaries: never placed, or placed since "
            "the last projector pass",
            fields={"order_id": order_id},
        )
    return JSONResponse(
        {**_summary_json(order_id, summary), "version": position},
        headers={"ETag": f'"{position}"'},
    )


@router.get("/orders")
def list_orders(
    *,
    web: Web,
    status: Annotated[OrderStatus | None, Query()] = None,
    after: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    """Up to ``limit`` order summaries by id, after ``after``, of ``status`` if given.

    The reader walks every summary in id order: fine for a sample, where a SQL read-model
    store would rather query its view (``WHERE body ->> '$.status' = ?``).
    """
    listed: list[dict[str, Any]] = []
    for order_id, summary in web.shop.summaries.reader().documents():
        if after is not None and order_id <= after:
            continue
        if status is not None and summary.status is not status:
            continue
        listed.append(_summary_json(order_id, summary))
        if len(listed) == limit:
            break
    return JSONResponse({"orders": listed})


@router.get("/stock/{sku}")
def get_stock(
    web: Web, sku: Annotated[str, PathParam(min_length=1, max_length=100)]
) -> JSONResponse:
    """One product's units received, reserved and available, per warehouse and in all.

    A SKU out of the domain's bounds (a control character...) is no product's: 404 without a
    read.
    """
    invalid = text_problem("the SKU", sku, MAX_SKU_BYTES)
    if invalid is not None:
        raise Problem("unknown-product", f"no product has this SKU: {invalid}")
    levels: ProductLevels | None = web.shop.stock_levels.reader().get(sku)
    if levels is None:
        raise Problem(
            "unknown-product",
            f"product {sku} is in no warehouse's stock read model (or not projected yet)",
            fields={"sku": sku},
        )
    return JSONResponse(
        {
            "sku": sku,
            "warehouses": {
                warehouse: _stock_json(stock)
                for warehouse, stock in sorted(levels.warehouses.items())
            },
            "total": _stock_json(levels.total),
        }
    )
