"""The checks after a contention run: every stream and read model read back and compared.

- each stream's loaded state (from its latest snapshot) equals a full replay of its events, the
  events read back are exactly the acknowledged ones, and its versions have no gap;
- the orders and the warehouse agree, no stock was oversold, every order is finished;
- the fulfilment reactor reacted to every event (its positions are the streams' versions) and
  parked none; each order placed got one answer from the warehouse; every order shipped was
  paid and reserved; every shortage cancelled its order and released nothing; and every event
  it caused carries its order's flow (``correlation_id``) and its cause (``causation_id``), an
  event of the same flow of the type that calls for it;
- each read model's documents, read back through a reader, equal those folded in memory from
  every event read back (one per order, one per product); the positions stored with them are
  the streams' versions and each summary counts its order's events (each event applied once);
  they agree with the replayed states; and the order summaries kept inline by the order handler
  equal the stored ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from examples.orders.domain import Order, OrderState, OrderStatus, StockStatus
from examples.orders.inventory import (
    Inventory,
    InventoryState,
    StockReleased,
    StockReserved,
    StockShortage,
)
from examples.orders.projections import (
    OrderSummary,
    ProductLevels,
    ProductStock,
    fold_documents,
)
from s3es import CorruptChunk, RecordedEvent, Repository, StreamName
from s3es.reactors import CAUSATION_ID, CORRELATION_ID

if TYPE_CHECKING:
    from s3es.projections import DocumentProjection, DocumentProjector
    from s3es.readmodels import Generation

if TYPE_CHECKING:
    from examples.orders.harness.contention import Contention


@attrs.define
class Check:
    """One check: passed if it found no problem."""

    title: str
    #: Said after the title: what was checked (``9 streams``).
    summary: str = ""
    problems: list[str] = attrs.field(factory=list)

    @property
    def passed(self) -> bool:
        """Whether nothing was wrong."""
        return not self.problems


@attrs.frozen
class StreamRead:
    """A stream as the checks read it back: its version and every event."""

    version: int
    events: list[RecordedEvent[Any]]


def check(run: Contention) -> list[Check]:
    """Read every stream of ``run`` back; check it, then the stock and the read models."""
    shop = run.shop
    errors = Check("the customers, the reactor and the projectors ran without errors")
    errors.problems = [
        f"{type(error).__name__}: {error}"
        for error in (*run.worker_errors, *run.reactor_errors, *run.projector_errors)
    ]
    replay = Check("each stream loaded from its snapshot equals one rebuilt from every event")
    acknowledged = Check("the events read back are exactly the acknowledged ones, each once")
    gapless = Check("each stream's versions run from 1 with no gap")
    streams: list[tuple[Repository[Any, Any, Any], str]] = [
        (shop.orders, order.order_id) for order in run.plan
    ]
    streams.append((shop.warehouses, shop.warehouse_id))
    replayed: dict[str, Any] = {}
    read_back: dict[StreamName, StreamRead] = {}
    events = 0
    for repository, stream_id in streams:
        stream = repository.stream(stream_id)
        try:
            loaded, full = repository.load(stream_id), repository.replay(stream_id)
            recorded = list(repository.read(stream_id))
        except CorruptChunk as error:  # a gap in the versions, or an unreadable chunk
            gapless.problems.append(f"{stream}: {error}")
            continue
        replayed[stream_id] = full.state
        read_back[stream] = StreamRead(full.version, recorded)
        if loaded != full:
            replay.problems.append(
                f"{stream}: load gave version {loaded.version} {loaded.state!r}, "
                f"replay gave version {full.version} {full.state!r}"
            )
        versions = sorted({event.version for event in recorded})
        if versions != list(range(1, loaded.version + 1)):
            gapless.problems.append(f"{stream}: versions {versions}, loaded {loaded.version}")
        events += len(recorded)
        acknowledged.problems += _compare_ids(
            stream, [event.id for event in recorded], shop.ledger.acknowledged.get(stream, [])
        )
    replay.summary = gapless.summary = f"{len(streams)} streams"
    acknowledged.summary = f"{events} events"
    return [
        errors,
        replay,
        acknowledged,
        gapless,
        *_check_stock(run, replayed),
        *_check_reactor(run, read_back),
        *_check_read_models(run, read_back, replayed),
    ]


def _check_stock(run: Contention, replayed: dict[str, Any]) -> list[Check]:
    """The replayed orders and warehouse agree, and no stock was reserved twice."""
    agree = Check("orders and warehouse agree on which orders got stock")
    oversold = Check("no stock oversold: available = received - reserved by orders, all >= 0")
    finished = Check("every order is shipped or cancelled")
    warehouse: InventoryState | None = replayed.get(run.shop.warehouse_id)
    orders: dict[str, OrderState] = {
        order.order_id: replayed[order.order_id] for order in run.plan if order.order_id in replayed
    }
    if warehouse is None or len(orders) < len(run.plan):
        agree.problems.append("not checked: some streams could not be read")
        return [agree]
    taken: Counter[str] = Counter()
    for order_id, state in orders.items():
        if state.stock is StockStatus.RESERVED:
            taken.update({line.sku: line.quantity for line in state.lines})
        answer = (
            StockStatus.RESERVED
            if order_id in warehouse.reservations
            else StockStatus.REFUSED
            if order_id in warehouse.shortages
            else StockStatus.PENDING
        )
        if state.stock is not answer:
            agree.problems.append(
                f"order {order_id}: the order says stock {state.stock}, the warehouse {answer}"
            )
        if state.status not in {OrderStatus.SHIPPED, OrderStatus.CANCELLED}:
            finished.problems.append(
                f"order {order_id} is {state.status} (stock {state.stock},"
                f" {'paid' if state.paid else 'not paid'})"
            )
    reserved = sum(1 for state in orders.values() if state.stock is StockStatus.RESERVED)
    agree.summary = f"{reserved} reserved, {len(warehouse.shortages)} refused"
    for item in run.stock:
        left = warehouse.available.get(item.sku, 0)
        if left < 0 or left != item.quantity - taken[item.sku]:
            oversold.problems.append(
                f"{item.sku}: received {item.quantity}, reserved by orders "
                f"{taken[item.sku]}, available {left}"
            )
    return [agree, oversold, finished]


#: Event types sent from outside the shop: by the shop, the warehouse's staff, the customers.
OUTSIDE = frozenset({"OrderPlaced", "PaymentRecorded", "StockReceived"})
#: Each event type the reactor causes, and the types of the events that call for it.
CAUSES = {
    "StockReserved": {"OrderPlaced"},
    "StockShortage": {"OrderPlaced"},
    "StockConfirmed": {"StockReserved"},
    "StockRefused": {"StockShortage"},
    "OrderShipped": {"PaymentRecorded", "StockConfirmed"},
    "OrderCancelled": {"StockRefused"},
    "StockReleased": {"OrderCancelled"},
}


def _order_of(event: RecordedEvent[Any]) -> str | None:
    """The order an event is about: its stream's, or the one a warehouse's event names."""
    if event.stream.type == Order.STREAM_TYPE:
        return event.stream.id
    order_id: str | None = getattr(event.event, "order_id", None)
    return order_id


def _check_reactor(run: Contention, read_back: Mapping[StreamName, StreamRead]) -> list[Check]:
    """What the fulfilment reactor did, read back from every stream and from its store."""
    reacted = Check("the reactor reacted to every event: its positions are the streams' versions")
    parked = Check("the reactor parked no event")
    answered = Check("each order placed got one answer from its warehouse, caused by it")
    shipped = Check("every order shipped was paid and its stock reserved, and kept")
    short = Check("every shortage cancelled its order and released nothing it did not reserve")
    flows = Check("every event the reactor caused carries its order's flow and its cause")
    if len(read_back) < len(run.plan) + 1:
        answered.problems.append("not checked: some streams could not be read")
        return [answered]
    runner = run.shop.fulfilment
    record = runner.store.generations(runner.name)
    if record.live is None:
        reacted.problems.append(f"{runner.name} has no live generation in the read-model store")
    else:
        versions = {str(stream): read.version for stream, read in read_back.items()}
        positions = runner.store.positions(record.live, list(versions))
        reacted.problems = differences(f"{runner.name} positions", positions, versions)
        parked.problems = [
            f"{p.stream} v{p.version} {p.type} ({p.event_id}), {p.status}: {p.error}"
            for p in runner.parked(skipped=True)
        ]
    reacted.summary = f"{len(read_back)} streams"
    parked.summary = f"{run.reacted.events} events read in {run.reacted.passes} passes"
    events = [event for read in read_back.values() for event in read.events]
    by_order: dict[str, list[RecordedEvent[Any]]] = {order.order_id: [] for order in run.plan}
    for event in events:
        order_id = _order_of(event)
        if order_id is not None:
            by_order.setdefault(order_id, []).append(event)
    for order_id, about in by_order.items():
        answered.problems += _answers(order_id, about)
        shipped.problems += _shipment(order_id, about)
        short.problems += _shortage(order_id, about)
    answered.summary = f"{len(by_order)} orders"
    flows.problems, caused = _flows(events)
    flows.summary = f"{caused} events caused, {len(events) - caused} from outside"
    return [reacted, parked, answered, shipped, short, flows]


def _types(events: list[RecordedEvent[Any]], *types: type[Any]) -> list[RecordedEvent[Any]]:
    return [event for event in events if isinstance(event.event, types)]


def _answers(order_id: str, about: list[RecordedEvent[Any]]) -> list[str]:
    placed = [event for event in about if event.type == "OrderPlaced"]
    answers = _types(about, StockReserved, StockShortage)
    if len(placed) != 1 or len(answers) != 1:
        said = ", ".join(f"{a.type} at {a.stream} v{a.version}" for a in answers) or "none"
        return [f"order {order_id}: placed {len(placed)} times, answered {len(answers)}: {said}"]
    cause = answers[0].metadata.get(CAUSATION_ID)
    if cause != placed[0].id:
        return [f"order {order_id}: its {answers[0].type} was caused by {cause}, not its placing"]
    return []


def _shipment(order_id: str, about: list[RecordedEvent[Any]]) -> list[str]:
    types = [event.type for event in about if event.stream.type == Order.STREAM_TYPE]
    if "OrderShipped" not in types:
        return []
    before = types[: types.index("OrderShipped")]
    kept = _types(about, StockReserved) and not _types(about, StockReleased)
    if "PaymentRecorded" in before and "StockConfirmed" in before and kept:
        return []
    return [f"order {order_id} was shipped after {before}, its stock reserved and kept: {kept}"]


def _shortage(order_id: str, about: list[RecordedEvent[Any]]) -> list[str]:
    problems = []
    types = [event.type for event in about if event.stream.type == Order.STREAM_TYPE]
    if _types(about, StockShortage) and not {"StockRefused", "OrderCancelled"} <= set(types):
        problems.append(f"order {order_id}: short of stock, but its events are {types}")
    reserved = [event.event.items for event in _types(about, StockReserved)]
    problems += [
        f"order {order_id}: {released.stream} v{released.version} released"
        f" {released.event.items}, which it had not reserved"
        for released in _types(about, StockReleased)
        if released.event.items not in reserved
    ]
    return problems


def _flows(events: list[RecordedEvent[Any]]) -> tuple[list[str], int]:
    """Problems with the correlation and causation ids of ``events``; how many were caused."""
    by_id = {event.id: event for event in events}
    problems = []
    caused = 0
    for event in events:
        where = f"{event.stream} v{event.version} {event.type}"
        order_id = _order_of(event)
        correlation = event.metadata.get(CORRELATION_ID)
        cause_id = event.metadata.get(CAUSATION_ID)
        if event.type in OUTSIDE:
            if cause_id is not None:
                problems.append(f"{where}: sent from outside, yet caused by {cause_id}")
            if correlation != order_id:
                problems.append(f"{where}: correlation id {correlation!r}, not {order_id!r}")
            continue
        caused += 1
        cause = by_id.get(cause_id) if isinstance(cause_id, str) else None
        if cause is None:
            problems.append(f"{where}: its causation id {cause_id!r} names no event read back")
            continue
        if cause.type not in CAUSES.get(event.type, set()):
            problems.append(f"{where}: caused by a {cause.type}, which does not call for it")
        expected = cause.metadata.get(CORRELATION_ID, cause.id)
        if correlation != order_id or correlation != expected:
            problems.append(
                f"{where}: correlation id {correlation!r}, its order {order_id!r}, its cause's"
                f" {expected!r}"
            )
    return problems, caused


def _check_read_models(
    run: Contention, read_back: Mapping[StreamName, StreamRead], replayed: Mapping[str, Any]
) -> list[Check]:
    """Each read model's documents against the events and states read back from the streams."""
    shop = run.shop
    folded = Check("each read model equals one rebuilt from every event read back")
    once = Check("each event applied once: every stream's position is its version")
    agree = Check("the read models agree with the streams' rebuilt states")
    inline = Check("the order summaries kept inline (read-your-writes) equal the stored ones")
    stored: dict[str, tuple[dict[str, Any], Generation]] = {}
    for name, report in run.projected.items():
        if report.documents is None or report.generation is None:
            folded.problems.append(f"not checked: no read model of {name}, see the errors")
        else:
            stored[name] = (report.documents, report.generation)
    if len(read_back) < len(run.plan) + 1:
        folded.problems.append("not checked: some streams could not be read")
    if folded.problems:
        return [folded]
    events = streams = documents = 0
    positions: dict[str, dict[str, int]] = {}
    for projector in shop.projectors:
        found, generation = stored[projector.name]
        expected, versions, applied = _fold(run, projector.projection, read_back)
        events, streams = events + applied, streams + len(versions)
        documents += len(found)
        folded.problems += differences(projector.name, found, expected)
        positions[projector.name] = projector.store.positions(generation, list(versions))
        once.problems += differences(
            f"{projector.name} positions", positions[projector.name], versions
        )
        once.problems += _incomplete(projector, generation)
    folded.summary = f"{len(shop.projectors)} read models, {documents} documents, {events} events"
    once.summary = f"{streams} streams"
    summaries, products = stored[shop.summaries.name][0], stored[shop.stock_levels.name][0]
    agree.problems = _disagreements(run, summaries, products, read_back, replayed)
    agree.summary = f"{len(summaries)} orders, {len(products)} products"
    inline.problems = differences(
        "inline", dict(shop.inline_summaries.model.orders), summaries
    ) + differences(
        "inline checkpoints",
        shop.inline_summaries.checkpoints,
        positions[shop.summaries.name],
    )
    inline.summary = f"{len(shop.inline_summaries.model.orders)} orders"
    return [folded, once, agree, inline]


def _incomplete(projector: DocumentProjector[Any], generation: Generation) -> list[str]:
    """A problem per shard of ``generation`` whose full scan is not applied."""
    problems = []
    for shard in range(projector.shards):
        state = projector.store.shard_state(generation, shard, projector.shards)
        if state is None or not state.complete:
            problems.append(
                f"{projector.name} generation {generation.number} shard {shard}: "
                "its full scan is not applied"
            )
    return problems


def _fold(
    run: Contention,
    projection: DocumentProjection[Any],
    read_back: Mapping[StreamName, StreamRead],
) -> tuple[dict[str, Any], dict[str, int], int]:
    """``projection``'s documents folded from its sources' streams; their versions; the events.

    The streams are those the run wrote and any other listed under the prefix, folded one
    after the other in name order.
    """
    shop = run.shop
    repositories: dict[str, Repository[Any, Any, Any]] = {
        Order.STREAM_TYPE: shop.orders,
        Inventory.STREAM_TYPE: shop.warehouses,
    }
    documents: dict[str, Any] = {}
    versions: dict[str, int] = {}
    events = 0
    for source in type(projection).SOURCES:
        streams = {s for s in read_back if s.type == source.STREAM_TYPE}
        streams.update(shop.event_store.streams(source.STREAM_TYPE))
        for stream in sorted(streams, key=str):
            read = read_back.get(stream) or StreamRead(
                shop.event_store.version(stream),
                list(repositories[stream.type].read(stream.id)),
            )
            fold_documents(projection, read.events, documents)
            events += len(read.events)
            versions[str(stream)] = read.version
    return documents, versions, events


def _disagreements(
    run: Contention,
    summaries: Mapping[str, OrderSummary],
    products: Mapping[str, ProductLevels],
    read_back: Mapping[StreamName, StreamRead],
    replayed: Mapping[str, Any],
) -> list[str]:
    """Where the read models differ from what the aggregates' own states say."""
    expected: dict[str, OrderSummary] = {}
    for order in run.plan:
        state: OrderState = replayed[order.order_id]
        expected[order.order_id] = OrderSummary(
            status=state.status,
            lines=len(state.lines),
            total_cents=state.total_cents,
            paid=state.paid,
            paid_cents=state.paid_cents,
            stock=state.stock,
            refund_due_cents=state.refund_due_cents,
            events=len(read_back[run.shop.orders.stream(order.order_id)].events),
        )
    problems = differences("order summaries", summaries, expected)
    warehouse_id = run.shop.warehouse_id
    warehouse: InventoryState = replayed[warehouse_id]
    reserved: Counter[str] = Counter()
    for items in warehouse.reservations.values():
        reserved.update({item.sku: item.quantity for item in items})
    short = Counter(sku for skus in warehouse.shortages.values() for sku in skus)
    for sku in sorted(set(products) | set(warehouse.available)):
        product = products.get(sku, ProductLevels(sku))
        stock = product.warehouses.get(warehouse_id, ProductStock())
        said = (stock.available, stock.reserved, stock.short)
        state_says = (warehouse.available.get(sku, 0), reserved[sku], short[sku])
        if said != state_says:
            problems.append(
                f"{warehouse_id} {sku}: available, reserved, orders short {said} in the"
                f" read model, {state_says} in the warehouse's state"
            )
    return problems


class _Missing:
    def __repr__(self) -> str:
        return "nothing"


_MISSING = _Missing()


def differences(label: str, found: object, expected: object) -> list[str]:
    """Where ``found`` differs from ``expected``, down to attrs fields and mapping entries."""
    found_type = type(found)
    if attrs.has(found_type) and found_type is type(expected):
        return [
            problem
            for field in attrs.fields(found_type)
            for problem in differences(
                f"{label}.{field.name}", getattr(found, field.name), getattr(expected, field.name)
            )
        ]
    if isinstance(found, Mapping) and isinstance(expected, Mapping):
        return [
            problem
            for key in sorted(set(found) | set(expected), key=str)
            for problem in differences(
                f"{label}[{key}]", found.get(key, _MISSING), expected.get(key, _MISSING)
            )
        ]
    return [] if found == expected else [f"{label}: {found!r}, expected {expected!r}"]


def _compare_ids(stream: StreamName, stored: list[str], acknowledged: list[str]) -> list[str]:
    problems = []
    for what, ids in (("stored", stored), ("acknowledged", acknowledged)):
        repeated = sorted(event_id for event_id, n in Counter(ids).items() if n > 1)
        if repeated:
            problems.append(f"{stream}: {what} more than once: {', '.join(repeated)}")
    missing = sorted(set(acknowledged) - set(stored))
    if missing:
        problems.append(f"{stream}: acknowledged but missing: {', '.join(missing)}")
    unacknowledged = sorted(set(stored) - set(acknowledged))
    if unacknowledged:
        problems.append(f"{stream}: stored but never acknowledged: {', '.join(unacknowledged)}")
    return problems
