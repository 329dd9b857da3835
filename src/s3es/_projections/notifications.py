"""A change feed from S3 event notifications: new chunks, read from an SQS queue.

S3 can send a message to an SQS queue for each object created in a bucket (free on S3's side;
SQS charges its requests). With the bucket's notification configuration and the queue's policy
of :func:`~s3es.ops.notification_configuration` and
:func:`~s3es.ops.queue_policy` in place, each chunk an append stores is announced on
the queue, without the second PUT of ``EventStore(feed=True)`` on the append's path.

Delivery is at least once, unordered, and may be late; a message can be lost to a
misconfiguration (a policy removed, a queue deleted). So the notifications are a hint, as the
``_feed/`` objects are: the projector reads each stream named from its own position, so a
duplicate does nothing, and its periodic full scan finds what no message announced.

The messages this module reads, in an SQS message's body:

- S3's event notification, ``{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object":
  {"key": ...}}}]}``. The key is URL-encoded as a form is (``red flower.jpg`` arrives as
  ``red+flower.jpg``, ``/`` may arrive as ``%2F``): it is decoded with ``unquote_plus``.
- The same, published to an SNS topic the queue subscribes to without raw message delivery:
  an envelope ``{"Type": "Notification", "Message": "<the event's JSON>"}``.
- EventBridge's event, routed to the queue by a rule: ``{"source": "aws.s3", "detail-type":
  "Object Created", "detail": {"object": {"key": ...}}}``, whose key AWS's examples show
  unencoded (``:`` as is): it is taken as it is.
- S3's ``s3:TestEvent``, sent when a configuration is put: ignored.

Records of other events (``ObjectRemoved``...) and keys that are no chunk of this event store
(another prefix, read models' ``.json`` keys, which S3's suffix filter lets through) are
ignored: their messages are acknowledged with the others and counted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import unquote_plus

import attrs

from s3es._base.logging import get_logger
from s3es._storage.keys import StreamKeys, StreamName
from s3es.errors import ObjectStoreError

_log = get_logger("s3es.notifications")

#: SQS's limit on the messages of one ReceiveMessage, and on the entries of one batch request.
SQS_BATCH = 10
#: SQS's limit on a long poll's wait.
MAX_WAIT_SECONDS = 20
#: Dollars per SQS request, standard queue, after the free tier (us-east-1, the first 100
#: billion requests a month). Every 64 KB of a request's payload is a request: S3's messages
#: are about 1 KB.
SQS_PRICE_PER_REQUEST = 0.40 / 1_000_000
#: How much of a parked message's body its warning shows.
_BODY_SHOWN = 200


@attrs.frozen
class Notified:
    """What one receive found: the chunks named, and how to acknowledge the messages read.

    ``changes`` are the (stream, version) of each chunk announced, in the order received,
    duplicates kept. ``receipts`` are the opaque handles that ``acknowledge`` deletes: those
    of the messages that named a chunk and of the ``ignored`` ones, which named no chunk of
    this event store (another prefix, s3es's own keys, other events, S3's test event).
    ``parked`` are the ids of the messages that could not be read at all: they are not
    acknowledged (see :class:`SQSChangeNotifications`).
    """

    changes: tuple[tuple[StreamName, int], ...] = ()
    receipts: tuple[str, ...] = ()
    ignored: int = 0
    parked: tuple[str, ...] = ()

    @property
    def streams(self) -> frozenset[StreamName]:
        """The streams named, each once."""
        return frozenset(stream for stream, _ in self.changes)


class ChangeNotifications(Protocol):
    """A source of notifications of new chunks, acknowledged once they are applied."""

    def receive(self) -> Notified:
        """The notifications waiting now (a bounded batch of them); may be empty."""
        ...

    def acknowledge(self, notified: Notified) -> None:
        """Forget ``notified``'s messages: called only after what they named is committed."""
        ...


@attrs.frozen
class QueueRequests:
    """SQS requests sent, by kind: not S3's, so not in :class:`~s3es.metering.RequestCounts`.

    The messages S3 sends (one per chunk) are SQS requests too, billed to the queue's owner,
    and counted by no client.
    """

    receive: int = 0
    delete: int = 0

    @property
    def total(self) -> int:
        """All requests."""
        return self.receive + self.delete

    def cost(self, price: float = SQS_PRICE_PER_REQUEST) -> float:
        """What these requests cost, in dollars."""
        return self.total * price

    def __str__(self) -> str:
        """``3 SQS receive + 1 SQS delete``: the kinds that are not zero."""
        kinds = [("receive", self.receive), ("delete", self.delete)]
        return " + ".join(f"{n:,} SQS {kind}" for kind, n in kinds if n) or "no SQS request"

    def __sub__(self, other: QueueRequests) -> QueueRequests:
        return QueueRequests(self.receive - other.receive, self.delete - other.delete)

    def __add__(self, other: QueueRequests) -> QueueRequests:
        return QueueRequests(self.receive + other.receive, self.delete + other.delete)


def _created_keys(document: Any) -> list[str] | None:
    """The keys of the objects created that an event document names; None if it is no event.

    ``[]`` for an event that names no created object (a test event, a deletion).
    """
    if not isinstance(document, Mapping):
        return None
    if document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        return created_keys(document["Message"])  # an SNS envelope around S3's event
    if document.get("Event") == "s3:TestEvent":
        return []
    if isinstance(records := document.get("Records"), list):
        return _record_keys(records)
    if document.get("source") == "aws.s3":
        return _event_bridge_keys(document)
    return None


def _event_bridge_keys(event: Mapping[str, Any]) -> list[str] | None:
    key = _path(event, "detail", "object", "key")
    if not isinstance(key, str):
        return None
    return [key] if event.get("detail-type") == "Object Created" else []


def _record_keys(records: Sequence[Any]) -> list[str] | None:
    keys = []
    for record in records:
        key = _path(record, "s3", "object", "key")
        name = record.get("eventName") if isinstance(record, Mapping) else None
        if not isinstance(key, str) or not isinstance(name, str):
            return None
        if name.startswith("ObjectCreated:"):
            keys.append(unquote_plus(key))
    return keys


def _path(document: Any, *names: str) -> Any:
    for name in names:
        if not isinstance(document, Mapping):
            return None
        document = document.get(name)
    return document


def created_keys(body: str) -> list[str] | None:
    """The object keys that an SQS message's ``body`` announces as created, decoded.

    ``[]`` if it announces none (S3's test event, another event); None if the body is no
    event s3es knows (not JSON, another shape, a record without its key).
    """
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return _created_keys(document)


class SQSChangeNotifications:
    """The chunks of an event store announced on an SQS queue by S3's event notifications.

    ``keys`` is the event store's key layout (``EventStore.keys``): keys that are no chunk of
    it are ignored. One queue per event store: two consumers of one queue would each see only
    part of the messages.

    :meth:`receive` sends ReceiveMessage (10 messages at most each) until the queue answers
    none or ``max_messages`` are read; the first waits up to ``wait_seconds`` for a message
    (SQS long polling, at most 20), the next ones do not wait. ``visibility_timeout``
    (seconds; the queue's own if None) is how long the messages stay hidden from the next
    receive: the projector must commit and acknowledge within it, or they come again (and do
    nothing the second time). :meth:`acknowledge` deletes them, 10 per DeleteMessageBatch.

    A message whose body is none of the shapes this module reads is *parked*, not raised
    and not deleted: it is logged (``notification_parked``, warning, with the queue, the
    message id and the start of the body), its id is in ``Notified.parked``, and it is
    left on the queue, so it comes back after the visibility timeout and, with a redrive
    policy, moves to the queue's dead-letter queue after ``maxReceiveCount`` receives, where
    someone can read it. Raising would stop every pass on one message that no pass can ever
    read (a poison message), while the notifications are only a hint: the periodic full
    scan finds any chunk it named. Deleting it would lose the evidence of a misconfiguration.

    A request that fails (after botocore's retries) raises ObjectStoreError naming the
    operation and the queue, as the object store's failures do: the projector's pass fails
    and the next one starts again; no message was acknowledged. A message that one
    DeleteMessageBatch could not delete (its receipt expired with the visibility timeout)
    is logged (``notification_not_acknowledged``, warning) and comes again: harmless, as
    delivery is at least once anyway.

    ``requests`` counts the SQS requests sent. ``client`` is a boto3 SQS client; by default,
    one of the default session (its region and credentials).
    """

    def __init__(
        self,
        queue_url: str,
        keys: StreamKeys,
        *,
        client: Any | None = None,
        max_messages: int = 100,
        wait_seconds: int = 0,
        visibility_timeout: int | None = None,
    ) -> None:
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, not {max_messages}")
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            raise ValueError(f"wait_seconds must be 0 to {MAX_WAIT_SECONDS}, not {wait_seconds}")
        self.queue_url = queue_url
        self.keys = keys
        if client is None:
            import boto3  # noqa: PLC0415 - only for this feed: importing s3es loads no AWS SDK

            client = boto3.client("sqs")
        self.client = client
        self.max_messages = max_messages
        self.wait_seconds = wait_seconds
        self.visibility_timeout = visibility_timeout
        self._lock = threading.Lock()
        self._requests = QueueRequests()

    @property
    def requests(self) -> QueueRequests:
        """SQS requests sent so far, by kind."""
        with self._lock:
            return self._requests

    def receive(self) -> Notified:
        """Read up to ``max_messages`` messages: the chunks they name, and their receipts."""
        changes: list[tuple[StreamName, int]] = []
        receipts: list[str] = []
        parked: list[str] = []
        ignored = 0
        for message in self._messages():
            keys = created_keys(message.get("Body", ""))
            if keys is None:
                parked.append(message["MessageId"])
                _log.warning(
                    "notification_parked",
                    queue=self.queue_url,
                    message_id=message["MessageId"],
                    body=message.get("Body", "")[:_BODY_SHOWN],
                    reason="not an S3 event notification (nor SNS- or EventBridge-wrapped)",
                )
                continue
            receipts.append(message["ReceiptHandle"])
            named = [self.keys.parse_any_chunk_key(key) for key in keys]
            found = [(chunk.stream, chunk.version) for chunk in named if chunk is not None]
            changes += found
            if not found:
                ignored += 1
                _log.debug(
                    "notification_ignored",
                    queue=self.queue_url,
                    message_id=message["MessageId"],
                    keys=keys,
                )
        return Notified(tuple(changes), tuple(receipts), ignored, tuple(parked))

    def _messages(self) -> Iterator[dict[str, Any]]:
        read, wait = 0, self.wait_seconds
        while read < self.max_messages:
            request: dict[str, Any] = {
                "QueueUrl": self.queue_url,
                "MaxNumberOfMessages": min(SQS_BATCH, self.max_messages - read),
                "WaitTimeSeconds": wait,
            }
            if self.visibility_timeout is not None:
                request["VisibilityTimeout"] = self.visibility_timeout
            answer = self._send("ReceiveMessage", self.client.receive_message, request)
            messages = answer.get("Messages", [])
            if not messages:
                return
            read += len(messages)
            wait = 0
            yield from messages

    def acknowledge(self, notified: Notified) -> None:
        """Delete ``notified``'s messages from the queue (not the parked ones)."""
        receipts = notified.receipts
        for start in range(0, len(receipts), SQS_BATCH):
            entries = [
                {"Id": str(index), "ReceiptHandle": receipt}
                for index, receipt in enumerate(receipts[start : start + SQS_BATCH], start)
            ]
            answer = self._send(
                "DeleteMessageBatch",
                self.client.delete_message_batch,
                {"QueueUrl": self.queue_url, "Entries": entries},
            )
            for failure in answer.get("Failed", []):
                _log.warning(
                    "notification_not_acknowledged",
                    queue=self.queue_url,
                    code=failure.get("Code"),
                    detail=failure.get("Message"),
                )

    def _send(
        self, operation: str, call: Callable[..., dict[str, Any]], request: dict[str, Any]
    ) -> dict[str, Any]:
        """``call(**request)``, counted; ObjectStoreError naming the queue if it fails."""
        counted = (
            QueueRequests(receive=1) if operation == "ReceiveMessage" else QueueRequests(delete=1)
        )
        with self._lock:
            self._requests += counted
        # Loaded already by the client that makes the calls.
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            return call(**request)
        except (ClientError, BotoCoreError) as error:
            raise ObjectStoreError(f"SQS {operation}", self.queue_url, str(error)) from error
