"""What the endpoints share: the shop, its async command handlers and its passes.

:class:`WebShop` is ``app.state.web``: the :class:`~examples.orders.app.Shop` whose read models
the GETs read, the handlers the POSTs send their commands through (the shop's own, on the
asyncio API, over the async view of its object store that an :data:`ObjectsOpener` opens for
the app's lifespan) and the :class:`~examples.orders.web.passes.BackgroundPasses`. An endpoint
takes it as a parameter of type :data:`Web`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import attrs
from fastapi import Depends, Request

from examples.orders.app import AsyncHandlers, Shop
from examples.orders.web.passes import BackgroundPasses
from s3es import InMemoryObjectStore
from s3es.aio import AsyncInMemoryObjectStore, AsyncObjectStore

#: Opens the object store the commands are sent to, for the app's lifespan.
ObjectsOpener = Callable[[], contextlib.AbstractAsyncContextManager[AsyncObjectStore]]


@attrs.define
class WebShop:
    """What the endpoints use: ``shop``, and once the lifespan has started, ``commands``."""

    shop: Shop
    passes: BackgroundPasses
    opener: ObjectsOpener
    _commands: AsyncHandlers | None = None

    @property
    def commands(self) -> AsyncHandlers:
        """The command handlers; RuntimeError before the app's lifespan has started."""
        if self._commands is None:
            raise RuntimeError(
                "the orders app's lifespan has not started: serve it (uvicorn runs the "
                "lifespan) or enter app.router.lifespan_context(app)"
            )
        return self._commands

    @contextlib.asynccontextmanager
    async def running(self, *, background: bool) -> AsyncIterator[None]:
        """Open the object store and, if ``background``, run the passes until the block ends."""
        async with self.opener() as objects:
            self._commands = self.shop.async_handlers(objects)
            if background:
                self.passes.start()
            try:
                yield
            finally:
                if background:
                    await asyncio.to_thread(self.passes.stop)
                self._commands = None


def _web(request: Request) -> WebShop:
    """The app's WebShop, for an endpoint's :data:`Web` parameter."""
    web = request.app.state.web
    if not isinstance(web, WebShop):
        raise TypeError(f"app.state.web is a {type(web).__qualname__}, not a WebShop")
    return web


def in_memory_objects(shop: Shop) -> ObjectsOpener:
    """An opener of ``shop``'s in-memory store seen through the async port (the same objects)."""
    if not isinstance(shop.store, InMemoryObjectStore):
        raise TypeError(
            f"the shop's store is a {type(shop.store).__qualname__}: pass create_app an opener "
            "of its async twin (s3_objects for S3)"
        )
    objects = AsyncInMemoryObjectStore(shop.store)

    @contextlib.asynccontextmanager
    async def opened() -> AsyncIterator[AsyncObjectStore]:
        yield objects

    return opened


def s3_objects(bucket: str, **connect: Any) -> ObjectsOpener:
    """An opener of :class:`~s3es.aio.AsyncS3ObjectStore` on ``bucket`` (the ``async`` extra).

    ``connect`` goes to :meth:`AsyncS3ObjectStore.connect` (``endpoint_url``, ``session``...).
    """
    from s3es.aio import AsyncS3ObjectStore  # noqa: PLC0415 - imports aiobotocore

    return functools.partial(AsyncS3ObjectStore.connect, bucket, **connect)


#: An endpoint's parameter: the :class:`WebShop` of the app it serves.
Web = Annotated[WebShop, Depends(_web)]
