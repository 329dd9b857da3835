"""How the orders example puts s3es together. Read the rules first, then this module.

The rules are in :mod:`examples.orders.domain` (an order) and :mod:`examples.orders.inventory`
(a warehouse's stock): plain ``decide`` and ``evolve``, nothing about storage. Here they meet
S3: one object store, one event store over it, a repository and a command handler per
aggregate, the read models of :mod:`examples.orders.projections` and the fulfilment reactor of
:mod:`examples.orders.reactors` (which turns each stream's events into the other's commands),
both with their positions in a read-model store, and the payment service of
:mod:`examples.orders.services`, which turns a payment notice into a command. ::

    shop = Shop.on_s3("my-bucket")  # or Shop(InMemoryObjectStore()) in a test
    shop.place(PlaceOrder(order_id="o-1", lines=lines))
    shop.payments.record_payment(notice)  # a notice delivered twice records one payment
    shop.fulfilment.catch_up()  # react: reserve the stock, record it, ship...
    shop.summaries.catch_up()  # bring the order summaries in the read-model store up to date
    shop.summaries.reader().get("o-1")  # one order's summary
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

import s3es
from examples.orders.domain import Order, OrderCommand, OrderEvent, OrderState, PlaceOrder
from examples.orders.inventory import Inventory, InventoryCommand, InventoryEvent, InventoryState
from examples.orders.projections import (
    OrdersByStatus,
    OrderSummaries,
    OrderSummary,
    ProductLevels,
    ReservedStock,
)
from examples.orders.reactors import Fulfilment
from examples.orders.services import Ledger, PaymentService, send
from s3es import (
    CommandHandler,
    CommandResult,
    EventStore,
    InlineProjection,
    Repository,
    RetryPolicy,
)
from s3es.aio import AsyncCommandHandler, AsyncEventStore, AsyncRepository
from s3es.projections import DocumentProjector, Shards
from s3es.reactors import CORRELATION_ID, ReactorRunner
from s3es.readmodels import S3ReadModelStore

if TYPE_CHECKING:
    from s3es.aio import AsyncObjectStore
    from s3es.readmodels import ReadModelStore
    from s3es.storage import ObjectStore

WAREHOUSE_ID = "warehouse-1"
#: Every reservation appends to the one warehouse stream: with many writers one can lose many
#: races in a row, so the warehouse's handler is more patient than the default (10 attempts).
WAREHOUSE_RETRY = RetryPolicy(max_attempts=30)
#: The fulfilment reactor's shards: as many runners (threads, processes) can share its work.
FULFILMENT_SHARDS = 2


@attrs.frozen
class AsyncHandlers:
    """A shop's command handlers on the asyncio API (:meth:`Shop.async_handlers`)."""

    orders: AsyncCommandHandler[OrderState, OrderCommand, OrderEvent]
    warehouses: AsyncCommandHandler[InventoryState, InventoryCommand, InventoryEvent]


class Shop:
    """The orders application on one object store, under one key prefix.

    Every part is safe to share between threads: a handler, a repository or a service keeps
    nothing of one call for the next (a projector or reactor runner is one thread's at a time).
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        prefix: str = "shop",
        warehouse_id: str = WAREHOUSE_ID,
        read_models: ReadModelStore | None = None,
    ) -> None:
        """Wire the application over ``store``; nothing is read or written yet.

        ``read_models`` keeps the read models' documents: an SQLite or PostgreSQL store of
        :mod:`s3es.readmodels`, or by default one S3 object per document beside the events.
        """
        self.store = store
        # The event store: an append PUTs the stream's next version with If-None-Match, so of
        # two writers racing for that version exactly one wins. feed=True: each append also
        # PUTs an empty feed entry, which lets a projector (or reactor) list one feed, not
        # every stream.
        self.event_store = EventStore(store, prefix=prefix, feed=True)
        # A repository loads an aggregate's state (its latest snapshot, then any newer events)
        # and appends the events a decision made.
        self.orders = Repository(self.event_store, Order)
        self.warehouses = Repository(self.event_store, Inventory)
        # The order list as this process wrote it, updated in memory right after each append
        # of the order handler: read-your-writes, without waiting for the projector.
        self.inline_summaries = InlineProjection(OrdersByStatus)
        # A command handler loads, decides and appends; on a conflict (another writer took the
        # version) it reads what is new, decides again and retries, up to its RetryPolicy.
        self.order_handler = CommandHandler(self.orders, inline=[self.inline_summaries])
        self.warehouse_handler = CommandHandler(self.warehouses, WAREHOUSE_RETRY)
        # Read models of keyed documents (a summary per order, the stock per product), each
        # brought up to date by a projector's catch_up() and read a key at a time by reader().
        self.read_models = read_models or S3ReadModelStore(store, prefix)
        self.summaries = DocumentProjector(
            self.event_store, OrderSummaries, self.read_models, feed=True
        )
        self.stock_levels = DocumentProjector(
            self.event_store, ReservedStock, self.read_models, feed=True
        )
        # The payment service sends its commands through the order handler; the ledger keeps
        # what every command did, whoever sent it.
        self.ledger = Ledger()
        self.payments = PaymentService(self.order_handler, self.ledger)
        # The fulfilment reactor turns each stream's events into the other's commands (an order
        # placed reserves its stock, a shortage cancels the order...). Its runner keeps its
        # positions in the read-model store, and sends the commands through handlers of its own
        # whose hooks count them in the ledger (the order list inline is kept by them too).
        self.warehouse_id = warehouse_id
        counted = self.ledger.hooks("fulfilment")
        self.fulfilment_handlers = (
            CommandHandler(self.orders, inline=[self.inline_summaries], hooks=counted),
            CommandHandler(self.warehouses, WAREHOUSE_RETRY, hooks=counted),
        )
        self.fulfilment = self.fulfilment_runner()

    @classmethod
    def on_s3(
        cls,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        prefix: str = "shop",
        read_models: ReadModelStore | None = None,
    ) -> Shop:
        """The application on an S3 bucket (AWS by default; any S3 endpoint by URL).

        Credentials come from the usual AWS sources (environment, ``~/.aws``).
        """
        objects = s3es.S3ObjectStore.connect(bucket, endpoint_url=endpoint_url)
        return cls(objects, prefix=prefix, read_models=read_models)

    @property
    def projectors(
        self,
    ) -> tuple[DocumentProjector[OrderSummary], DocumentProjector[ProductLevels]]:
        """Every projector of the application, the order list's first."""
        return (self.summaries, self.stock_levels)

    def fulfilment_runner(self, shard_ids: Sequence[int] | None = None) -> ReactorRunner:
        """A runner of the fulfilment reactor, for ``shard_ids`` (by default every shard).

        ``fulfilment`` runs every shard; runners of a few shards each share the work between
        threads or processes, each holding its shards' leases.
        """
        return ReactorRunner(
            self.event_store,
            Fulfilment(self.warehouse_id),
            self.read_models,
            handlers=self.fulfilment_handlers,
            shards=Shards(FULFILMENT_SHARDS, ids=shard_ids),
            feed=True,
        )

    def async_handlers(self, objects: AsyncObjectStore) -> AsyncHandlers:
        """The order and warehouse handlers on the asyncio API, for an app on an event loop.

        Args:
            objects: The async view of this shop's object store (the same bucket, or the same
                in-memory objects).

        Returns:
            Handlers that write what this shop reads: its prefix, with feed entries; the
            warehouse's retries as many times as the sync one's (its stream is the hot one).
        """
        events = AsyncEventStore(
            objects, prefix=self.event_store.keys.prefix, feed=self.event_store.feed
        )
        return AsyncHandlers(
            AsyncCommandHandler(AsyncRepository(events, Order)),
            AsyncCommandHandler(AsyncRepository(events, Inventory), WAREHOUSE_RETRY),
        )

    def place(self, order: PlaceOrder) -> CommandResult[OrderState, OrderEvent]:
        """Place ``order`` (counted in the ledger, as the shop's).

        The order's id is the correlation id of its flow: every event of the order, on its
        stream and on the warehouse's, carries it.
        """
        return send(
            self.order_handler,
            order.order_id,
            order,
            self.ledger,
            service="shop",
            metadata={CORRELATION_ID: order.order_id},
        )
