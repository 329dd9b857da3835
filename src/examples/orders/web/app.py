"""The app's wiring: :func:`create_app` puts the web package's parts together over a Shop.

The :class:`~examples.orders.app.Shop` wires the example to s3es (event store, repositories,
handlers, projectors, the fulfilment reactor); this module adds HTTP: the endpoints' routers,
the problem answers of :mod:`~examples.orders.web.errors`, the body gate, and a lifespan that
opens the async object store and runs the background passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from examples.orders.app import Shop
from examples.orders.web import commands, problems, reads
from examples.orders.web.bounds import MAX_BODY_BYTES
from examples.orders.web.errors import ANSWERED, answer_problem
from examples.orders.web.gate import BodyGate
from examples.orders.web.passes import BackgroundPasses
from examples.orders.web.state import ObjectsOpener, WebShop, in_memory_objects


def create_app(
    shop: Shop,
    objects: ObjectsOpener | None = None,
    *,
    pass_interval: float | None = 1.0,
) -> FastAPI:
    """A FastAPI app serving ``shop``'s orders and stock (see :mod:`examples.orders.web`).

    ``objects`` opens, for the app's lifespan, the async view of the object store ``shop`` is
    on (:func:`~examples.orders.web.state.s3_objects` for S3); None for a shop on an
    :class:`~s3es.InMemoryObjectStore` (:func:`~examples.orders.web.state.in_memory_objects`).
    The lifespan runs a pass of the fulfilment reactor and the projectors every
    ``pass_interval`` seconds (> 0) in a thread, or none if it is None (the caller then runs
    ``app.state.web.passes.run_once()``).
    ``app.state.web`` is the :class:`~examples.orders.web.state.WebShop` behind the endpoints.
    """
    web = WebShop(
        shop,
        BackgroundPasses(shop, 1.0 if pass_interval is None else pass_interval),
        objects or in_memory_objects(shop),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with web.running(background=pass_interval is not None):
            yield

    app = FastAPI(
        title="s3es orders",
        summary="The orders example of s3es over HTTP: commands on the asyncio API.",
        lifespan=lifespan,
    )
    app.state.web = web
    for error in ANSWERED:
        app.add_exception_handler(error, answer_problem)
    # Commands first: a method a path does not take is a 405 whose Allow is the first match's.
    for routes in (commands.router, problems.router, reads.router):
        app.include_router(routes)
    app.add_middleware(BodyGate, max_bytes=MAX_BODY_BYTES)
    return app
