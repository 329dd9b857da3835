"""The change feed of S3 event notifications: chunks stored, announced on SQS, read back.

The end-to-end tests run twice: on the embedded endpoint (moto's server: S3 and SQS answer on
one port, and a PUT over HTTP delivers its notification to a queue created there) and on moto
in-process (``mock_aws``), as an application's own tests would. mock_aws is started without
its reset, and stopped without removing data: its backends are the same process-wide ones the
session's embedded endpoint serves, and a reset would empty the other tests' buckets. Bucket
and queue names are unique instead.

What moto delivers (5.2.5): S3's message shape (``Records[].s3.object.key``) with the key
encoded by ``quote_plus`` (``/`` as ``%2F``, space as ``+``); an ``s3:TestEvent`` when the
configuration is put; a message only for PutObject and CopyObject.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import attrs
import boto3
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws
from structlog.testing import capture_logs

from s3es import EventStore, S3ObjectStore, StreamName
from s3es._ops.policies import notification_configuration
from s3es._projections.notifications import (
    Notified,
    QueueRequests,
    SQSChangeNotifications,
    created_keys,
)
from s3es.errors import ObjectStoreError
from s3es.eventstore import StreamKeys
from s3es.testing.embedded_s3 import EmbeddedS3
from tests.strategies import stream_ids

PREFIX = "events"
KEYS = StreamKeys(PREFIX)
ORDER = StreamName("order", "o 1+2%é")  # a space, a plus, a percent and a non-ASCII letter
_names = itertools.count()


@attrs.frozen
class Bucket:
    """A bucket whose new chunks under PREFIX are announced on a queue."""

    s3: Any
    sqs: Any
    name: str
    queue_url: str
    store: EventStore

    def feed(self, **options: Any) -> SQSChangeNotifications:
        return SQSChangeNotifications(self.queue_url, KEYS, client=self.sqs, **options)

    def append(self, stream: StreamName, count: int = 1) -> None:
        """Append ``count`` versions to ``stream``, one chunk each."""
        version = self.store.version(stream)
        for n in range(version, version + count):
            event = self.store.new_event("Placed", {"n": n})
            self.store.append(stream, [event], expected_version=n)

    def send(self, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)

    def waiting(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())


def _bucket(session: boto3.Session, endpoint_url: str | None) -> Bucket:
    name = f"notify-{next(_names)}"
    s3: Any = session.client("s3", endpoint_url=endpoint_url)
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    s3.create_bucket(Bucket=name)
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=name, NotificationConfiguration=notification_configuration(queue_arn, PREFIX)
    )
    store = EventStore(S3ObjectStore(s3, name), prefix=PREFIX)
    return Bucket(s3, sqs, name, queue_url, store)


@pytest.fixture(params=["server", "in-process"])
def bucket(request: pytest.FixtureRequest, embedded_s3: EmbeddedS3) -> Iterator[Bucket]:
    """A bucket and its queue, on the embedded endpoint or on moto in-process."""
    session = boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto accepts any
        region_name="us-east-1",
    )
    if request.param == "server":
        yield _bucket(session, embedded_s3.endpoint_url)
        return
    mock = mock_aws()
    mock.start(reset=False)
    try:
        yield _bucket(session, None)
    finally:
        mock.stop(remove_data=False)


@pytest.fixture(autouse=True)
def _structlog_as_it_was() -> Iterator[None]:
    """capture_logs leaves structlog configured for the rest of the process: a later test
    that expects s3es's own chain (test_cli's -v) would then see structlog's console lines."""
    was_configured, saved = structlog.is_configured(), structlog.get_config()
    yield
    if was_configured:
        structlog.configure(**saved)
    else:
        structlog.reset_defaults()


def _record(key: str, event: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {"eventSource": "aws:s3", "eventName": event, "s3": {"object": {"key": key}}}


def _s3_event(*keys: str, event: str = "ObjectCreated:Put") -> str:
    return json.dumps({"Records": [_record(quote_plus(key), event) for key in keys]})


class TestEndToEnd:
    def test_appends_are_announced(self, bucket: Bucket) -> None:
        """Each chunk an append stores comes back as its (stream, version); S3's test event is
        acknowledged with them and counted as ignored."""
        other = StreamName("customer", "c-1")
        bucket.append(ORDER, 3)
        bucket.append(other)
        notified = bucket.feed().receive()
        assert sorted(notified.changes, key=str) == sorted(
            [(ORDER, 1), (ORDER, 2), (ORDER, 3), (other, 1)], key=str
        )
        assert notified.ignored == 1  # s3:TestEvent
        assert len(notified.receipts) == 5
        assert notified.parked == ()
        assert notified.streams == {ORDER, other}

    def test_acknowledge_deletes(self, bucket: Bucket) -> None:
        """Acknowledged messages are gone; unacknowledged ones stay on the queue (hidden for
        the visibility timeout)."""
        bucket.append(ORDER, 12)
        feed = bucket.feed()
        notified = feed.receive()
        assert len(notified.changes) == 12
        assert bucket.waiting() == 13
        feed.acknowledge(notified)
        assert bucket.waiting() == 0
        assert feed.requests.delete == 2  # 13 receipts: batches of 10 and 3

    def test_not_acknowledged_comes_again(self, bucket: Bucket) -> None:
        """A receive whose messages were not acknowledged (the projector failed before its
        commit) sees them again once they are visible: at least once."""
        bucket.append(ORDER, 2)
        feed = bucket.feed(visibility_timeout=0, max_messages=3)
        first = feed.receive()
        again = feed.receive()
        assert sorted(first.changes, key=str) == sorted(again.changes, key=str)
        feed.acknowledge(again)
        assert bucket.waiting() == 0

    def test_duplicates_are_kept(self, bucket: Bucket) -> None:
        """The same chunk announced twice (SQS delivers at least once) is in changes twice."""
        feed = bucket.feed()
        feed.acknowledge(feed.receive())  # the test event
        bucket.send(_s3_event(KEYS.chunk_key(ORDER, 7)))
        bucket.send(_s3_event(KEYS.chunk_key(ORDER, 7)))
        notified = feed.receive()
        assert notified.changes == ((ORDER, 7), (ORDER, 7))
        assert notified.ignored == 0

    def test_max_messages(self, bucket: Bucket) -> None:
        """A receive reads at most max_messages, 10 per ReceiveMessage; the next reads on."""
        bucket.append(ORDER, 14)
        feed = bucket.feed(max_messages=12)
        first = feed.receive()
        assert len(first.receipts) == 12
        assert feed.requests == QueueRequests(receive=2)
        second = feed.receive()
        assert len(first.receipts) + len(second.receipts) == 15
        assert feed.requests == QueueRequests(receive=4)  # the last answered none
        versions = sorted(version for _, version in first.changes + second.changes)
        assert versions == list(range(1, 15))

    def test_foreign_keys_are_ignored(self, bucket: Bucket) -> None:
        """Objects under another prefix, or s3es's own .json objects under this one, are
        announced (S3's filter cannot tell) and ignored."""
        feed = bucket.feed()
        feed.acknowledge(feed.receive())
        elsewhere = StreamKeys("other").chunk_key(ORDER, 1)
        body = b"{}"
        bucket.s3.put_object(Bucket=bucket.name, Key=elsewhere, Body=body)
        bucket.s3.put_object(Bucket=bucket.name, Key=KEYS.read_model_key("totals"), Body=body)
        bucket.s3.put_object(Bucket=bucket.name, Key=f"{PREFIX}/order/o-1/notes.json", Body=body)
        bucket.s3.put_object(Bucket=bucket.name, Key=f"{PREFIX}/order/o-1/README", Body=body)
        with capture_logs() as logs:
            notified = feed.receive()
        assert notified.changes == ()
        assert notified.ignored == 2  # the prefix filter let two through: the other prefix's
        # chunk and the README (no .json) were never sent
        assert len(notified.receipts) == 2
        assert [log["event"] for log in logs] == ["notification_ignored"] * 2
        feed.acknowledge(notified)
        assert bucket.waiting() == 0

    def test_sns_envelope(self, bucket: Bucket) -> None:
        """An S3 event published to SNS and delivered to the queue in SNS's envelope."""
        feed = bucket.feed()
        feed.acknowledge(feed.receive())
        envelope = {
            "Type": "Notification",
            "MessageId": "b8a1f0c2-0000-4000-8000-000000000000",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:chunks",
            "Message": _s3_event(KEYS.chunk_key(ORDER, 4)),
        }
        bucket.send(json.dumps(envelope))
        assert feed.receive().changes == ((ORDER, 4),)

    def test_malformed_body_is_parked(self, bucket: Bucket) -> None:
        """A body that is no event s3es reads is logged, reported as parked and left on the
        queue for its dead-letter queue; the messages around it are read as usual."""
        feed = bucket.feed()
        feed.acknowledge(feed.receive())
        bucket.send("not json at all")
        bucket.append(ORDER)
        with capture_logs() as logs:
            notified = feed.receive()
        assert notified.changes == ((ORDER, 1),)
        assert len(notified.parked) == 1
        (parked,) = [log for log in logs if log["event"] == "notification_parked"]
        assert parked["log_level"] == "warning"
        assert parked["message_id"] == notified.parked[0]
        assert parked["queue"] == bucket.queue_url
        assert parked["body"] == "not json at all"
        feed.acknowledge(notified)
        assert bucket.waiting() == 1  # the parked one: not deleted

    def test_redrive_moves_a_parked_message_to_the_dead_letter_queue(self, bucket: Bucket) -> None:
        """With a redrive policy (maxReceiveCount 2), a parked message moves to the dead-letter
        queue after its second receive."""
        dead = bucket.sqs.create_queue(QueueName=f"{bucket.name}-dead")["QueueUrl"]
        dead_arn = bucket.sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        redrive = {"deadLetterTargetArn": dead_arn, "maxReceiveCount": "2"}
        bucket.sqs.set_queue_attributes(
            QueueUrl=bucket.queue_url, Attributes={"RedrivePolicy": json.dumps(redrive)}
        )
        feed = bucket.feed(visibility_timeout=0, max_messages=1)
        feed.acknowledge(feed.receive())
        bucket.send("{}")
        assert len(feed.receive().parked) == 1
        assert len(feed.receive().parked) == 1
        assert feed.receive() == Notified()
        moved = bucket.sqs.receive_message(QueueUrl=dead)["Messages"]
        assert [message["Body"] for message in moved] == ["{}"]

    def test_a_failed_request_names_the_queue(self, bucket: Bucket) -> None:
        """A receive from a queue that does not exist raises ObjectStoreError naming it."""
        missing = bucket.queue_url.replace(bucket.name, f"{bucket.name}-missing")
        feed = SQSChangeNotifications(missing, KEYS, client=bucket.sqs)
        with pytest.raises(ObjectStoreError) as raised:
            feed.receive()
        assert raised.value.operation == "SQS ReceiveMessage"
        assert raised.value.key == missing

    def test_an_expired_receipt_is_logged(self, bucket: Bucket) -> None:
        """A receipt the queue no longer takes is logged, not raised: the message comes again."""
        bucket.append(ORDER)
        feed = bucket.feed()
        notified = feed.receive()
        bogus = attrs.evolve(notified, receipts=("not-a-receipt",))
        with capture_logs() as logs:
            feed.acknowledge(bogus)
        assert [log["event"] for log in logs] == ["notification_not_acknowledged"]
        assert logs[0]["queue"] == bucket.queue_url


class TestBodies:
    def test_s3_event_keys_are_decoded(self) -> None:
        """Keys arrive form-encoded (space as +, + as %2B, / as %2F or as is)."""
        key = KEYS.chunk_key(ORDER, 3)
        assert created_keys(_s3_event(key)) == [key]
        as_s3 = json.dumps({"Records": [_record(quote(key, safe="/").replace("%20", "+"))]})
        assert created_keys(as_s3) == [key]

    def test_other_events_name_nothing(self) -> None:
        """Deletions and S3's test event are events that announce no new object."""
        assert created_keys(_s3_event("a.json", event="ObjectRemoved:Delete")) == []
        test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b-1"}
        assert created_keys(json.dumps(test_event)) == []

    def test_event_bridge(self) -> None:
        """EventBridge's S3 events: the key as is; only Object Created announces one."""
        key = KEYS.chunk_key(ORDER, 2)
        event = {
            "source": "aws.s3",
            "detail-type": "Object Created",
            "detail": {"bucket": {"name": "b-1"}, "object": {"key": key, "size": 9}},
        }
        assert created_keys(json.dumps(event)) == [key]
        deleted = {**event, "detail-type": "Object Deleted"}
        assert created_keys(json.dumps(deleted)) == []

    @pytest.mark.parametrize(
        "body",
        [
            "",
            "not json",
            "[]",
            "{}",
            '{"Records": [{"eventName": "ObjectCreated:Put"}]}',
            '{"Records": [{"s3": {"object": {"key": "a.json"}}}]}',
            '{"Records": ["a.json"]}',
            '{"Type": "Notification", "Message": "not json"}',
            '{"source": "aws.s3", "detail": {"object": {}}}',
        ],
    )
    def test_unknown_shapes(self, body: str) -> None:
        """Bodies that are no event s3es reads, or events without their key: None."""
        assert created_keys(body) is None

    @given(stream_ids(), st.integers(1, 10**9), st.booleans())
    def test_any_stream_round_trips(self, stream_id: str, version: int, slash: bool) -> None:
        """Any stream id s3es accepts survives S3's encoding of its chunk's key."""
        stream = StreamName("order", stream_id)
        key = KEYS.chunk_key(stream, version)
        encoded = quote_plus(key, safe="/" if slash else "")
        (decoded,) = created_keys(json.dumps({"Records": [_record(encoded)]})) or []
        assert KEYS.parse_any_chunk_key(decoded) == KEYS.parse(stream, key)


class TestParseAnyChunkKey:
    @pytest.mark.parametrize("prefix", ["", "p", "p/q"])
    def test_chunk_keys(self, prefix: str) -> None:
        """A chunk key of any stream, first or re-written, parses as parse() does."""
        keys = StreamKeys(prefix)
        for version, number in [(1, 0), (42, 3)]:
            key = keys.chunk_key(ORDER, version, number)
            assert keys.parse_any_chunk_key(key) == keys.parse(ORDER, key)

    @pytest.mark.parametrize(
        "key",
        [
            StreamKeys("other").chunk_key(ORDER, 1),
            StreamKeys("events/nested").chunk_key(ORDER, 1),
            StreamKeys("").chunk_key(ORDER, 1),
            KEYS.feed_key(ORDER, 1, 0),
            KEYS.read_model_key("totals"),
            KEYS.lease_key("totals"),
            f"{KEYS.self_test_prefix()}0f3c9e2a",
            f"{PREFIX}/_readmodels/totals/g1/docs/{'9' * 20}.{'9' * 6}.json",
            f"{PREFIX}/order/{'9' * 20}.{'9' * 6}.json",
            f"{PREFIX}/order/o-1/notes.json",
            f"{PREFIX}/order/o-1/{'9' * 20}.{'9' * 6}.json",  # version 0
            f"{PREFIX}/order/./{'9' * 19}8.{'9' * 6}.json",
            f"{PREFIX}/order/o-1/x/{'9' * 19}8.{'9' * 6}.json",
            f"{PREFIX}order/o-1/{'9' * 19}8.{'9' * 6}.json",
        ],
    )
    def test_other_keys(self, key: str) -> None:
        """Keys that name no chunk of this store: None, never an error."""
        assert KEYS.parse_any_chunk_key(key) is None
