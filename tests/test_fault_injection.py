"""Appends whose PUT did not say it succeeded: lost answers, failed requests, failed checks.

The ambiguous success (s3-facts.md, failure case 1) is reproduced against moto over HTTP: a
``before-send`` hook sends the first PutObject to the server itself, so the object
is stored, and then raises ReadTimeoutError (or ConnectionClosedError) as if the answer had been
lost. botocore catches any exception a before-send handler raises and hands it to its retry
handler (``botocore/endpoint.py`` ``_do_get_response`` returns ``(None, exception)`` and
``_send_request`` asks ``needs-retry``); standard mode retries every ``HTTPClientError``
(``botocore/retries/standard.py`` ``TransientRetryableChecker``). So botocore re-sends the very
same conditional PUT, and the server answers 412: the object is there, and it is ours.

The other cases use a small in-memory wrapper whose requests fail on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import attrs
import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import ConnectionClosedError, HTTPClientError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from s3es import (
    Aggregate,
    CommandHandler,
    EventStore,
    InMemoryObjectStore,
    ObjectStoreError,
    Repository,
    S3ObjectStore,
    StreamName,
)
from s3es._eventstore.chunk import Chunk, encode_chunk
from s3es._eventstore.store import StreamConflict
from s3es.errors import AppendOutcomeUnknown, ObjectAlreadyExists
from s3es.eventstore import EventRecord
from s3es.metering import RequestCounts
from s3es.storage import ForwardingObjectStore, StoredObject

STREAM = StreamName("tally", "t-1")


# A tiny aggregate: a tally that commands add to.


@attrs.frozen
class Add:
    """Add ``amount`` to the tally."""

    amount: int


@attrs.frozen
class Added:
    """The tally went up by ``amount``."""

    amount: int


@attrs.frozen
class TallyState:
    """The total, and how many events made it."""

    total: int
    events: int


class Tally(Aggregate[TallyState, Add, Added]):
    """A tally that counts how often ``decide`` runs."""

    STREAM_TYPE = "tally"
    EVENT_TYPES: ClassVar[dict[str, type[Any]]] = {"Added": Added}

    def __init__(self) -> None:
        self.decisions = 0

    def initial_state(self) -> TallyState:
        """Nothing added yet."""
        return TallyState(total=0, events=0)

    def evolve(self, state: TallyState, event: Added) -> TallyState:
        """Add the event's amount."""
        return TallyState(total=state.total + event.amount, events=state.events + 1)

    def decide(self, command: Add, state: TallyState) -> Sequence[Added]:
        """One Added per command; each call counted."""
        self.decisions += 1
        return [Added(command.amount)]


def _handler(events: EventStore) -> tuple[CommandHandler[TallyState, Add, Added], Tally]:
    tally = Tally()
    return CommandHandler(Repository(events, tally), sleep=_no_sleep), tally


def _no_sleep(_seconds: float) -> None:
    raise AssertionError("the handler retried: a lost answer was taken for a conflict")


# The lost answer, over HTTP


class LoseFirstAnswer:
    """A before-send hook: the first PutObject is delivered, then its answer is "lost".

    ``answers`` are the HTTP statuses of the requests the hook delivered itself.
    """

    def __init__(self, lose: Callable[[str], HTTPClientError]) -> None:
        self._lose = lose
        self._http = URLLib3Session()
        self.puts = 0
        self.answers: list[int] = []

    def __call__(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> None:
        if not event_name.endswith(".PutObject"):
            return
        self.puts += 1
        if self.puts == 1:
            self.answers.append(self._http.send(request).status_code)
            raise self._lose(request.url)

    def close(self) -> None:
        """Close the hook's own connections."""
        self._http.close()


LOSSES = [
    pytest.param(lambda url: ReadTimeoutError(endpoint_url=url), id="read-timeout"),
    pytest.param(lambda url: ConnectionClosedError(endpoint_url=url), id="connection-closed"),
]


@pytest.fixture(params=LOSSES)
def lossy_s3(
    request: pytest.FixtureRequest, s3_store: S3ObjectStore
) -> Iterator[tuple[S3ObjectStore, LoseFirstAnswer]]:
    """An S3ObjectStore on moto whose first PutObject is stored but its answer lost."""
    hook = LoseFirstAnswer(request.param)
    # Registered for every S3 request and last, so it runs after the store's request counter
    # (botocore runs handlers of a more specific event name first).
    s3_store.client.meta.events.register_last("before-send.s3", hook)
    yield s3_store, hook
    s3_store.client.meta.events.unregister("before-send.s3", hook)
    hook.close()


class TestAmbiguousSuccess:
    def test_the_failure_mode(self, lossy_s3: tuple[S3ObjectStore, LoseFirstAnswer]) -> None:
        """The rig reproduces the failure: the PUT stored the object, botocore re-sent it, and
        the store reports the key taken although the body there is ours."""
        store, hook = lossy_s3
        with pytest.raises(ObjectAlreadyExists):
            store.put_if_absent("k/1", b"ours")
        assert hook.answers == [200]
        assert hook.puts == 2
        stored = store.get("k/1")
        assert stored is not None
        assert stored.body == b"ours"

    def test_append_is_recovered(self, lossy_s3: tuple[S3ObjectStore, LoseFirstAnswer]) -> None:
        """EventStore.append reads the key back, finds its own append id, and reports the
        append as the success it was: recovered, stored once, version 1."""
        store, hook = lossy_s3
        events = EventStore(store)
        record = events.new_event("Added", {"amount": 5})
        before = store.requests
        result = events.append(STREAM, [record], expected_version=0)
        assert (result.version, result.recovered, result.events) == (1, True, (record,))
        assert store.requests - before == RequestCounts(put=2, get=1)
        chunks = list(events.chunks(STREAM))
        assert [(c.version, c.append_id, c.events) for c in chunks] == [
            (1, result.append_id, (record,))
        ]
        assert hook.answers == [200]

    def test_stream_continues(self, lossy_s3: tuple[S3ObjectStore, LoseFirstAnswer]) -> None:
        """After a recovered append the next append is version 2, as after any other."""
        store, _ = lossy_s3
        events = EventStore(store)
        events.append(STREAM, [events.new_event("Added", {"amount": 1})], expected_version=0)
        second = events.append(
            STREAM, [events.new_event("Added", {"amount": 2})], expected_version=1
        )
        assert (second.version, second.recovered) == (2, False)
        assert [c.version for c in events.chunks(STREAM)] == [1, 2]

    def test_command_applied_once(self, lossy_s3: tuple[S3ObjectStore, LoseFirstAnswer]) -> None:
        """A command whose append's answer was lost is handled once: one decision, one event
        stored, the version advanced by exactly one."""
        store, hook = lossy_s3
        events = EventStore(store)
        handler, tally = _handler(events)
        result = handler.handle(STREAM.id, Add(5))
        assert (result.version, result.attempts, result.state) == (1, 1, TallyState(5, 1))
        assert (result.events, result.recovered) == ((Added(5),), True)
        # A LIST to load the (empty) stream, the PUT and botocore's retry, the GET that checks.
        assert result.requests == RequestCounts(list=1, put=2, get=1)
        assert tally.decisions == 1
        assert hook.answers == [200]
        replayed = handler.repository.replay(STREAM.id)
        assert (replayed.version, replayed.state) == (1, TallyState(5, 1))
        assert [len(c.events) for c in events.chunks(STREAM)] == [1]

    def test_next_command_after_recovery(
        self, lossy_s3: tuple[S3ObjectStore, LoseFirstAnswer]
    ) -> None:
        """The next command on the stream starts from the recovered state."""
        store, _ = lossy_s3
        handler, _ = _handler(EventStore(store))
        handler.handle(STREAM.id, Add(5))
        result = handler.handle(STREAM.id, Add(2))
        assert (result.version, result.state) == (2, TallyState(7, 2))


# Failed requests, in memory


class FailingStore(ForwardingObjectStore):
    """An ObjectStore delegating to an in-memory one, whose requests can be made to fail.

    ``put_fails``: the next put raises ObjectStoreError, after storing (``stores``) or not, or
    after a rival stored ``rival`` at the key. ``get_fails``: every get raises. ``raised`` holds
    the errors raised, in order.
    """

    def __init__(
        self,
        *,
        put_fails: bool = True,
        stores: bool = False,
        get_fails: bool = False,
        rival: bytes | None = None,
        taken: bool = False,
    ) -> None:
        super().__init__(InMemoryObjectStore())
        self.put_fails = put_fails
        self.stores = stores
        self.get_fails = get_fails
        self.rival = rival
        self.taken = taken
        self.raised: list[Exception] = []

    def put_if_absent(self, key: str, body: bytes) -> str:
        """Put, or fail as configured (once)."""
        if not self.put_fails:
            return self.inner.put_if_absent(key, body)
        self.put_fails = False
        if self.rival is not None:
            self.inner.put_if_absent(key, self.rival)
        if self.stores:
            self.inner.put_if_absent(key, body)
        error: Exception = (
            ObjectAlreadyExists(key)
            if self.taken
            else ObjectStoreError("PUT", key, "connection reset by peer")
        )
        self.raised.append(error)
        raise error

    def get(self, key: str) -> StoredObject | None:
        """Get, or fail as configured."""
        if self.get_fails:
            error = ObjectStoreError("GET", key, "read timed out")
            self.raised.append(error)
            raise error
        return self.inner.get(key)


def _record(events: EventStore, amount: int = 1) -> EventRecord:
    return events.new_event("Added", {"amount": amount})


class TestFailedPut:
    def test_nothing_stored_error_propagates(self) -> None:
        """A PUT that failed and stored nothing: the original ObjectStoreError propagates,
        after one GET that found the key empty, and nothing is stored."""
        store = FailingStore(stores=False)
        events = EventStore(store)
        with pytest.raises(ObjectStoreError) as raised:
            events.append(STREAM, [_record(events)], expected_version=0)
        assert raised.value is store.raised[0]
        assert not isinstance(raised.value, AppendOutcomeUnknown)
        assert store.requests == RequestCounts(get=1)
        assert list(store.list_keys("tally/t-1/")) == []

    def test_stored_then_failed_is_recovered(self) -> None:
        """A PUT that stored the chunk but failed to say so is recovered by reading it back."""
        store = FailingStore(stores=True)
        events = EventStore(store)
        result = events.append(STREAM, [_record(events)], expected_version=0)
        assert (result.version, result.recovered) == (1, True)
        assert [c.append_id for c in events.chunks(STREAM)] == [result.append_id]

    def test_rival_stored_meanwhile(self) -> None:
        """A PUT that failed while a rival stored the version is a conflict carrying the
        rival's chunk, not an error and not a success."""
        events = EventStore(InMemoryObjectStore())
        rival = Chunk(STREAM, 1, 0, 0, "rival", (_record(events, 9),), None)
        store = FailingStore(rival=encode_chunk(rival))
        events = EventStore(store)
        with pytest.raises(StreamConflict) as raised:
            events.append(STREAM, [_record(events)], expected_version=0)
        assert raised.value.found == rival
        assert (raised.value.expected_version, raised.value.actual_version) == (0, 1)

    def test_taken_then_gone(self) -> None:
        """A 412 whose object is gone when read back (deleted in between) is a conflict with no
        chunk to carry."""
        store = FailingStore(taken=True)
        events = EventStore(store)
        with pytest.raises(StreamConflict) as raised:
            events.append(STREAM, [_record(events)], expected_version=0)
        assert raised.value.found is None
        assert raised.value.stream == STREAM

    @pytest.mark.parametrize(
        ("stores", "taken"),
        [(False, False), (True, False), (False, True)],
        ids=["put-failed", "put-stored-then-failed", "put-412"],
    )
    def test_read_back_fails(self, stores: bool, taken: bool) -> None:
        """When the read-back GET fails too, AppendOutcomeUnknown names the PUT and the key
        and says the append may or may not be stored."""
        store = FailingStore(stores=stores, taken=taken, get_fails=True)
        events = EventStore(store)
        key = events.keys.chunk_key(STREAM, 1)
        with pytest.raises(AppendOutcomeUnknown) as raised:
            events.append(STREAM, [_record(events)], expected_version=0)
        error = raised.value
        assert (error.operation, error.key) == ("PUT", key)
        assert repr(key) in str(error)
        assert "may or may not be stored" in error.detail
        assert "read timed out" in error.detail
        assert error.__cause__ is store.raised[0]
        assert isinstance(error, ObjectStoreError)

    def test_handler_does_not_retry_a_failed_put(self) -> None:
        """CommandHandler passes a failed PUT on unchanged: one decision, nothing stored."""
        store = FailingStore(stores=False)
        handler, tally = _handler(EventStore(store))
        with pytest.raises(ObjectStoreError) as raised:
            handler.handle(STREAM.id, Add(1))
        assert raised.value is store.raised[0]
        assert tally.decisions == 1
        assert list(store.list_keys("tally/t-1/")) == []

    def test_handler_after_stored_failure(self) -> None:
        """CommandHandler reports a PUT that stored but failed to answer as handled, once."""
        store = FailingStore(stores=True)
        handler, tally = _handler(EventStore(store))
        result = handler.handle(STREAM.id, Add(3))
        assert (result.version, result.state, tally.decisions) == (1, TallyState(3, 1), 1)
        assert result.recovered is True
        assert handler.repository.replay(STREAM.id).state == TallyState(3, 1)
