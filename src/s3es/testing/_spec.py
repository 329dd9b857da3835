"""Given events, when a command, then events (or an error): an aggregate's rules in a test."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Generic

import attrs

from s3es._base.coerce import as_instance
from s3es._domain.aggregate import Aggregate, AggregateCodec, C, E, S
from s3es._eventstore.chunk import Chunk, EventRecord, Snapshot, decode_chunk, encode_chunk
from s3es._storage.keys import ChunkKey, StreamName

_SPEC_STREAM_ID = "spec"
#: Where specifications pretend to store their events (nothing is stored).
_SPEC_KEY = ChunkKey(stream=StreamName("spec", _SPEC_STREAM_ID), version=1, number=0, key="<spec>")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class AggregateSpec(Generic[S, C, E]):
    """Specifications of one aggregate: ``spec.given(*events).when(command).then(*events)``.

    Every event given or decided also goes through the aggregate's registry and converter
    (to JSON and back) and every resulting state through a snapshot, so a test fails on an
    unregistered event or a state that would not survive storage, not only on wrong rules.
    No store is involved.

    Args:
        aggregate: The aggregate, as a class or an instance.

    Raises:
        InvalidConfiguration: The aggregate's registry or converter cannot work.
    """

    def __init__(self, aggregate: type[Aggregate[S, C, E]] | Aggregate[S, C, E]) -> None:
        self.aggregate: Aggregate[S, C, E] = as_instance(aggregate)
        self.codec = AggregateCodec(self.aggregate)
        self.stream = StreamName(type=self.codec.stream_type, id=_SPEC_STREAM_ID)

    def given(self, *events: E) -> Given[S, C, E]:
        """The stream's history before the command: these events, in order.

        Args:
            *events: The events, oldest first; none: a new stream.

        Returns:
            The specification with its history, to say the command next (``when``) or check the
            state (``then_state``).

        Raises:
            AssertionError: An event does not come back equal from storage.
        """
        for event in events:
            self.round_trip_event(event)
        state = functools.reduce(self.aggregate.evolve, events, self.aggregate.initial_state())
        return Given(self, state)

    def round_trip_event(self, event: E) -> E:
        """``event`` stored and read back, as an append and a load would.

        Args:
            event: The event to store.

        Returns:
            The event as read back.

        Raises:
            AssertionError: It cannot be stored, or does not come back equal.
        """
        name, data = self.codec.encode_event(event, self.stream)
        schema = self.codec.event_schema(name)
        record = EventRecord(
            type=name, id="-", data=data, metadata={}, recorded_at=_EPOCH, schema=schema
        )
        stored = self._through_storage(record, None, f"event {event!r}")
        back = self.codec.decode_event(stored.events[0], _SPEC_KEY.key)
        if back != event:
            raise AssertionError(f"event {event!r} was read back from storage as {back!r}")
        return back

    def round_trip_state(self, state: S) -> S:
        """``state`` snapshotted and read back, as an append and a load would.

        Args:
            state: The state to snapshot.

        Returns:
            The state as read back.

        Raises:
            AssertionError: It cannot be stored, or does not come back equal.
        """
        record = EventRecord(type="-", id="-", data={}, metadata={}, recorded_at=_EPOCH)
        snapshot = self.codec.snapshot(state, _SPEC_KEY.version)
        stored = self._through_storage(record, snapshot, f"a snapshot of state {state!r}")
        back, reason = self.codec.state_from(stored.snapshot)
        if back is None or back != state:
            raise AssertionError(
                f"state {state!r} was read back from a snapshot as {back!r} {reason}".rstrip()
            )
        return back

    def _through_storage(self, record: EventRecord, snapshot: Snapshot | None, what: str) -> Chunk:
        """A chunk holding ``record`` and ``snapshot``, encoded to JSON and decoded, as stored."""
        chunk = Chunk(
            stream=self.stream,
            version=_SPEC_KEY.version,
            number=_SPEC_KEY.number,
            base_version=0,
            append_id="-",
            events=(record,),
            snapshot=snapshot,
        )
        try:
            body = encode_chunk(chunk)
        except ValueError as error:
            raise AssertionError(f"{what} cannot be stored: {error}") from error
        return decode_chunk(attrs.evolve(_SPEC_KEY, stream=self.stream), body)


class Given(Generic[S, C, E]):
    """A specification with its history: say the command next, or check the state.

    Made by :meth:`AggregateSpec.given`.
    """

    def __init__(self, spec: AggregateSpec[S, C, E], state: S) -> None:
        self.spec = spec
        self.state = state

    def when(self, command: C) -> When[S, C, E]:
        """The command to decide on the state after the given events.

        Args:
            command: The command.

        Returns:
            The specification with its command, to say what it must cause (``then``,
            ``then_raises``).
        """
        return When(self, command)

    def then_state(self, expected: S) -> S:
        """Assert the state after the given events (and its snapshot round trip) is ``expected``.

        Args:
            expected: The state the events must fold to.

        Returns:
            The state, as read back from its snapshot.

        Raises:
            AssertionError: The state is another, or does not survive a snapshot.
        """
        if self.state != expected:
            raise AssertionError(
                f"state after the given events is {self.state!r}, not {expected!r}"
            )
        return self.spec.round_trip_state(self.state)


class When(Generic[S, C, E]):
    """A command on a history: say what it must cause. Made by :meth:`Given.when`."""

    def __init__(self, given: Given[S, C, E], command: C) -> None:
        self.given = given
        self.command = command

    def _decide(self) -> list[E]:
        return list(self.given.spec.aggregate.decide(self.command, self.given.state))

    def then(self, *expected: E) -> S:
        """Assert the command causes exactly ``expected`` (none: it changes nothing).

        Args:
            *expected: The events ``decide`` must return, in order.

        Returns:
            The state after those events, for further checks.

        Raises:
            AssertionError: ``decide`` returned other events, or an event or the state does not
                survive storage.
        """
        spec = self.given.spec
        decided = self._decide()
        if decided != list(expected):
            raise AssertionError(
                f"when {self.command!r}: decide returned {decided!r}, expected {list(expected)!r}"
            )
        for event in decided:
            spec.round_trip_event(event)
        state = functools.reduce(spec.aggregate.evolve, decided, self.given.state)
        return spec.round_trip_state(state)

    def then_raises(self, error: type[BaseException], *, match: str | None = None) -> BaseException:
        """Assert the command is refused with ``error``.

        Args:
            error: The exception class ``decide`` must raise.
            match: A regular expression its message must contain a match of; None: any message.

        Returns:
            The exception raised, for further checks.

        Raises:
            AssertionError: ``decide`` returned events, raised another exception, or raised one
                whose message does not match.
        """
        try:
            decided = self._decide()
        except error as raised:
            if match is not None and not re.search(match, str(raised)):
                raise AssertionError(
                    f"when {self.command!r}: {type(raised).__name__}({str(raised)!r}) "
                    f"does not match {match!r}"
                ) from raised
            return raised
        except Exception as other:
            raise AssertionError(
                f"when {self.command!r}: expected {error.__name__}, "
                f"but decide raised {type(other).__name__}({str(other)!r})"
            ) from other
        raise AssertionError(
            f"when {self.command!r}: expected {error.__name__}, but decide returned {decided!r}"
        )
