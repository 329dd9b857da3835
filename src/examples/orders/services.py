"""What comes from outside the shop (a payment notice), and the ledger of every command.

The :class:`PaymentService` turns a payment provider's notice into a command on the order's
stream, sent through a :class:`~s3es.CommandHandler` (one per aggregate, shared by every
thread: a handler keeps no per-call state). The handler retries a command that lost a race for
a stream's next version; when it gives up (:class:`~s3es.RetriesExhausted`), :func:`send` sends
the whole command again, which is safe because the command is idempotent. What happens inside
the shop (reserving stock, shipping, cancelling) is the fulfilment reactor's
(:mod:`examples.orders.reactors`), whose command handlers count their commands through
:meth:`Ledger.hooks`.

A :class:`Ledger` keeps what every command did, whoever sent it: the ids of every acknowledged
event, the conflicts met, the retries made, the duplicates answered.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from examples.orders.domain import OrderCommand, OrderEvent, OrderState, RecordPayment
from examples.orders.inventory import InventoryCommand, InventoryEvent, InventoryState
from s3es import (
    CommandHandler,
    CommandHooks,
    CommandResult,
    GaveUp,
    RetriesExhausted,
    StreamName,
)
from s3es.reactors import CORRELATION_ID

S = TypeVar("S")
C = TypeVar("C")
E = TypeVar("E")

OrderHandler = CommandHandler[OrderState, OrderCommand, OrderEvent]
InventoryHandler = CommandHandler[InventoryState, InventoryCommand, InventoryEvent]

#: How often a service sends a command again after the handler gave up on it.
RESENDS = 3


class Ledger:
    """What the services' commands did, kept from many threads at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Event ids of every acknowledged append, per stream, in the order acknowledged.
        self.acknowledged: dict[StreamName, list[str]] = {}
        #: Commands that returned, per stream.
        self.commands: Counter[StreamName] = Counter()
        #: Commands that returned without storing anything (idempotent repeats), per stream.
        self.unchanged: Counter[StreamName] = Counter()
        #: Commands whose id the stream had stored already: the first result, read back.
        self.duplicates: Counter[StreamName] = Counter()
        #: Commands, and those that stored nothing, per service.
        self.commands_by: Counter[str] = Counter()
        self.unchanged_by: Counter[str] = Counter()
        #: Concurrency conflicts met, per stream (each one a retry, or the end of a handle).
        self.conflicts: Counter[StreamName] = Counter()
        #: Handles that ended in RetriesExhausted, per stream.
        self.exhausted: Counter[StreamName] = Counter()
        #: Conflicts met on each stream type, by the service that lost the race.
        self.losers: Counter[tuple[str, str]] = Counter()
        #: The most conflicts one command met before it was stored, per stream type.
        self.longest: Counter[str] = Counter()

    def record(self, result: CommandResult[Any, Any], service: str) -> None:
        """Count a command ``service`` sent, and keep the ids of the events it stored.

        A duplicate's events were acknowledged to the command's first sending: not again.
        """
        with self._lock:
            self.losers[result.stream.type, service] += result.conflicts
            stored = () if result.duplicate else result.recorded
            self.acknowledged.setdefault(result.stream, []).extend(e.id for e in stored)
            self.duplicates[result.stream] += result.duplicate
            self.commands[result.stream] += 1
            self.commands_by[service] += 1
            self.conflicts[result.stream] += result.conflicts
            kind = result.stream.type
            self.longest[kind] = max(self.longest[kind], result.conflicts)
            if not stored:
                self.unchanged[result.stream] += 1
                self.unchanged_by[service] += 1

    def record_exhausted(self, error: RetriesExhausted, service: str) -> None:
        """Count a command ``service`` sent that lost a race on every attempt."""
        with self._lock:
            self.losers[error.stream.type, service] += error.attempts
            self.conflicts[error.stream] += error.attempts
            self.exhausted[error.stream] += 1

    def hooks(self, service: str) -> CommandHooks:
        """Hooks that count each command a handler handles in this ledger, as ``service``'s.

        For senders that call ``handle`` themselves (a reactor's runner): what they did shows
        in the ledger beside what :func:`send` counts. A command that gave up after every
        retry (RetriesExhausted) is counted as such; the handler raises it as before.

        Args:
            service: Whose commands these are, in the ledger.

        Returns:
            The hooks to give the handler: ``CommandHandler(..., hooks=ledger.hooks("x"))``.
        """

        def gave_up(gave: GaveUp) -> None:
            if isinstance(gave.error, RetriesExhausted):
                self.record_exhausted(gave.error, service)

        return CommandHooks(
            on_result=functools.partial(self.record, service=service), on_give_up=gave_up
        )

    def by_stream_type(self, counts: Mapping[StreamName, int]) -> Counter[str]:
        """``counts`` summed per stream type."""
        with self._lock:
            totals: Counter[str] = Counter()
            for stream, count in counts.items():
                totals[stream.type] += count
            return totals


def send(
    handler: CommandHandler[S, C, E],
    stream_id: str,
    command: C,
    ledger: Ledger,
    *,
    service: str,
    metadata: Mapping[str, Any] | None = None,
) -> CommandResult[S, E]:
    """Handle ``command``; send it again (at most RESENDS times) if the handler gives up.

    The events it stores carry ``metadata``, the service's name and the resend's number.
    """
    for resend in range(RESENDS + 1):
        try:
            result = handler.handle(
                stream_id,
                command,
                metadata={**(metadata or {}), "service": service, "resend": resend},
            )
        except RetriesExhausted as error:
            ledger.record_exhausted(error, service)
            if resend == RESENDS:
                raise
            continue
        ledger.record(result, service)
        return result
    raise AssertionError("unreachable")  # pragma: no cover


@attrs.frozen
class PaymentDelivery:
    """A payment provider's notice that an order was paid (delivered at least once)."""

    order_id: str
    payment_id: str
    amount_cents: int


class PaymentService:
    """Records payments on order streams; a notice delivered twice records one payment.

    A payment belongs to its order's flow: its event carries the order id as its correlation
    id, as the order's other events do, and so does the shipment it may cause.
    """

    def __init__(self, orders: OrderHandler, ledger: Ledger) -> None:
        self.orders = orders
        self.ledger = ledger

    def record_payment(self, delivery: PaymentDelivery) -> CommandResult[OrderState, OrderEvent]:
        """Record ``delivery`` on its order; no new event if it is already recorded."""
        command = RecordPayment(
            order_id=delivery.order_id,
            payment_id=delivery.payment_id,
            amount_cents=delivery.amount_cents,
        )
        return send(
            self.orders,
            delivery.order_id,
            command,
            self.ledger,
            service="payment",
            metadata={CORRELATION_ID: delivery.order_id},
        )
