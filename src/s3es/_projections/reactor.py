# Generated from src/s3es/_projections/_async/reactor.py by tools/async_to_sync.py: do not edit.
"""Reactors (process managers): consumers that turn events into commands on other streams.

A :class:`Reactor` says which commands an event calls for (``react``); a
:class:`ReactorRunner` runs it on the consumers' machinery (shards, leases, positions in a
read-model store, the feed) and sends each command through a
:class:`~s3es.CommandHandler`. Delivery is at least once (a crash between a command and the
commit of the event's position sends it again), and made one effect by the command id: the
``n``-th command an event calls for is sent with the id ``{event id}.{n}``, which its stream
remembers (see idempotent commands in docs/commands). The events a command stores carry
``correlation_id`` (the first event of the flow's) and ``causation_id`` (the event that caused
them) in their metadata.

An event whose reaction keeps failing (``react`` raising, a command refused by its aggregate)
is retried ``attempts`` times with backoff, then **parked**: recorded in the reactor's store
with the error, never dropped silently, and the stream goes on. ``parked()`` lists them;
``retry(event_id)`` reacts again and un-parks on success; ``skip(event_id)`` marks it skipped
(kept for the record). Failures of S3 or of the store are not the event's fault: they fail the
pass, which the next pass runs again.
"""

from __future__ import annotations

import collections
import uuid
from collections.abc import Iterable
from typing import Any, Unpack

import attrs
import cattrs

from s3es._base.clock import Clock, utc_now
from s3es._base.coerce import as_instance
from s3es._base.concurrency import pause
from s3es._base.converter import make_strict_converter
from s3es._base.progress import Progress
from s3es._base.tracing import Attributes, traced
from s3es._domain.aggregate import Aggregate, RecordedEvent
from s3es._domain.commands import CommandHandler
from s3es._domain.repository import Repository
from s3es._domain.values import CommandResult
from s3es._eventstore.store import EventStore
from s3es._projections.config import declared_name, source_codecs
from s3es._projections.consumer import Consumer
from s3es._projections.notifications import ChangeNotifications
from s3es._projections.options import (
    Batching,
    Feed,
    LeaseOptions,
    OldKeywords,
    ReactionRetry,
    Shards,
    consumer_options,
    reaction_retry,
)
from s3es._projections.values import (
    CAUSATION_ID,
    CORRELATION_ID,
    Batch,
    DocumentConflict,
    Lease,
    Parked,
    Reactor,
    ReactorPass,
    Send,
    reactor_pass_attributes,
    shard_of,
)
from s3es._readmodels.port import Change, Generation, ReadModelStore, ShardState
from s3es._storage.keys import StreamName
from s3es.errors import (
    CorruptReadModel,
    InvalidConfiguration,
    ObjectStoreError,
    ReadModelConflict,
    ReadModelStoreError,
    StreamDeleted,
)

#: Parked and skipped events are documents of the reactor's store, stored strictly.
_CONVERTER = make_strict_converter(forbid_extra_keys=True)
#: How often a commit of parked events is tried again after another shard wrote one.
_COMMIT_ATTEMPTS = 5
#: A reactor's passes commit more often than a projector's: a crash makes it send again what
#: it sent since its last commit.
_BATCHING = Batching(commit_every=100)


def _pass_span(name: str) -> tuple[str, Attributes]:
    return f"react {name}", {"s3es.reactor.name": name}


class ReactorRunner(Consumer[ReactorPass]):
    """Runs a :class:`Reactor` over ``event_store``'s streams, sending the commands it calls for.

    A consumer as a :class:`~s3es.projections.DocumentProjector` is (shards, leases, the feed),
    whose positions and parked events live in ``store``. ``catch_up`` runs one pass of each of
    its shards and ``run`` loops passes until stopped; ``parked``, ``retry`` and ``skip``
    settle the events whose reaction kept failing. Passes commit every
    ``batching.commit_every`` events (100 by default), which bounds what a crash makes it send
    again. Changing the number of shards keeps the positions and parked events (run one number
    of shards at a time).

    The keywords ``attempts``, ``backoff``, ``shard_ids``, ``owner``, ``lease_ttl``,
    ``feed_lookback``, ``full_scan_interval``, ``commit_every`` and ``read_concurrency`` still
    work this release, mapped to ``retry``, ``shards``, ``lease``, ``feed`` and ``batching``;
    they go in the next.
    """

    SHARDS_MAKE_A_GENERATION = False
    KIND = "reactor"

    def __init__(
        self,
        event_store: EventStore,
        reactor: Reactor | type[Reactor],
        store: ReadModelStore,
        *,
        handlers: Iterable[CommandHandler[Any, Any, Any]] = (),
        retry: ReactionRetry | None = None,
        shards: int | Shards = 1,
        feed: bool | Feed | ChangeNotifications = False,
        lease: LeaseOptions | None = None,
        batching: Batching | None = None,
        clock: Clock = utc_now,
        **old: Unpack[OldKeywords],
    ) -> None:
        """Make the runner; no request.

        Args:
            event_store: The streams it reads, and the one its default handlers write to.
            reactor: The reactor (or its class, made with no arguments).
            store: Where its positions, shard states and parked events are kept.
            handlers: The command handlers to send through, one per target aggregate; a
                target with none gets a plain command handler on a repository of
                ``event_store``.
            retry: How a failing reaction is retried before its event is parked (default:
                ``ReactionRetry()``).
            shards: The number of shards (an int), or a Shards naming those it runs.
            feed: False (scan every pass), True or a Feed (list ``_feed/``), or notifications.
            lease: Its leases' owner and ttl (default: ``LeaseOptions()``).
            batching: Its commits and reads ahead (default: ``Batching(commit_every=100)``).
            clock: Times leases, scans and the feed.
            **old: The keywords of the release before (see above).

        Raises:
            InvalidConfiguration: Naming the reactor or option that cannot work.
        """
        self.reactor: Reactor = as_instance(reactor)
        cls = type(self.reactor)
        name = declared_name(cls, "reactor")
        codecs = source_codecs(cls)
        here = type(self).__qualname__
        #: How a failing reaction is retried before its event is parked.
        self.reaction_retry = reaction_retry(here, retry, old)
        options = consumer_options(
            here,
            shards=shards,
            feed=feed,
            lease=lease,
            batching=batching,
            old=old,
            default_batching=_BATCHING,
            accepted=frozenset({"attempts", "backoff"}),
        )
        super().__init__(
            event_store,
            store,
            name=name,
            schema=1,
            codecs=codecs,
            options=options,
            clock=clock,
        )
        self._handlers: dict[type[Any], CommandHandler[Any, Any, Any]] = {
            type(handler.repository.aggregate): handler for handler in handlers
        }
        self._sent = collections.Counter[str]()
        self._parked: list[str] = []

    # Passes --------------------------------------------------------------------------------

    @traced(start=lambda self, **_: _pass_span(self.name), end=reactor_pass_attributes)
    def catch_up(
        self, *, full_scan: bool | None = None, progress: Progress | None = None
    ) -> ReactorPass:
        """One pass of each of this runner's shards: react to every event not reacted to yet.

        An event whose reaction keeps failing is parked, and the pass goes on. A shard fenced by
        a newer epoch during the pass is reported in ``fenced`` and taken again at a later pass.

        Args:
            full_scan: True forces, False forbids a scan of every stream; a shard scans anyway
                without a feed, before its first full scan is applied, and when it has no feed
                cursor yet. None: as the feed's ``full_scan_interval`` says.
            progress: Told ``(streams done, streams)`` per shard.

        Returns:
            What each shard's pass did, the shards held elsewhere or fenced, the commands
            sent, the events parked and the requests sent.

        Raises:
            LeaseHeld: Another runner holds every one of its shards.
            InvalidConfiguration: ``store`` keeps a projection of the reactor's NAME.
            ObjectStoreError: An S3 request failed: the pass fails, not the event, and the
                next one runs it again.
            ReadModelStoreError: A request of ``store`` failed, likewise.
        """
        self._sent, self._parked = collections.Counter[str](), []
        passes, held, fenced, requests = self._passes(full_scan=full_scan, progress=progress)
        return ReactorPass(
            tuple(passes),
            held,
            fenced,
            self._sent["commands"],
            self._sent["duplicates"],
            tuple(self._parked),
            requests,
            self._sent["conflicts"],
        )

    def _process(
        self,
        generation: Generation,
        batch: Batch,
        state: ShardState,
        lease: Lease,
        counts: collections.Counter[str],
    ) -> ShardState:
        """React to each event of ``batch``, park what keeps failing, commit the positions."""
        parked: list[Parked] = []
        for item in batch.events:
            if isinstance(item, StreamDeleted):
                continue  # a deletion calls for no command
            failure = self._react(item)
            if failure is not None:
                error, attempts = failure
                parked.append(
                    Parked(
                        item.id,
                        str(item.stream),
                        item.version,
                        item.type,
                        error,
                        attempts,
                        self._clock(),
                    )
                )
        for attempt in range(_COMMIT_ATTEMPTS):
            changes = [self._park_change(generation, p) for p in parked]
            try:
                stored = self._commit_state(generation, changes, batch.positions, state, lease)
            except DocumentConflict:
                if attempt == _COMMIT_ATTEMPTS - 1:
                    raise
                continue
            counts["commits"] += 1
            counts["documents"] += len(changes)
            for record in parked:
                self._log.warning(
                    "event_parked",
                    event_id=record.event_id,
                    stream=record.stream,
                    version=record.version,
                    error=record.error,
                )
                self._parked.append(record.event_id)
            return stored
        raise AssertionError("unreachable")  # pragma: no cover

    def _react(self, event: RecordedEvent[Any]) -> tuple[str, int] | None:
        """React to ``event``, retrying with backoff; None, or the last error and attempts."""
        error: Exception | None = None
        for attempt in range(1, self.reaction_retry.max_attempts + 1):
            if attempt > 1:
                pause(self.reaction_retry.backoff.delay(attempt - 1, self._random))
            try:
                self._send_all(event)
            except (ObjectStoreError, ReadModelStoreError):
                raise  # the store's failure, not the event's: the pass fails, and runs again
            except Exception as failed:  # noqa: BLE001 - any failure of the reaction parks it
                error = failed
                self._log.info(
                    "reaction_failed", event_id=event.id, attempt=attempt, error=repr(failed)
                )
            else:
                return None
        return f"{type(error).__qualname__}: {error}", self.reaction_retry.max_attempts

    def _send_all(self, event: RecordedEvent[Any]) -> list[CommandResult[Any, Any]]:
        """Send every command ``event`` calls for, each with its id derived from the event's."""
        sends = list(self.reactor.react(event))
        correlation = event.metadata.get(CORRELATION_ID, event.id)
        metadata = {CORRELATION_ID: correlation, CAUSATION_ID: event.id}
        results = []
        for number, send in enumerate(sends):
            if not isinstance(send, Send):
                raise InvalidConfiguration(
                    f"{type(self.reactor).__qualname__}.react gave {send!r} for event "
                    f"{event.id} of stream {event.stream}: react yields Send(...)"
                )
            result = self._handler(send.aggregate).handle(
                send.stream_id,
                send.command,
                metadata=metadata,
                command_id=f"{event.id}.{number}",
            )
            self._sent["commands"] += 1
            self._sent["duplicates"] += result.duplicate
            self._sent["conflicts"] += result.attempts - 1
            results.append(result)
        return results

    def _handler(self, aggregate: type[Aggregate[Any, Any, Any]]) -> CommandHandler[Any, Any, Any]:
        handler = self._handlers.get(aggregate)
        if handler is None:
            handler = CommandHandler(Repository(self.event_store, aggregate))
            self._handlers[aggregate] = handler
        return handler

    # Parked events -------------------------------------------------------------------------

    def _generation(self) -> Generation:
        """The generation the reactor's positions and parked events live in."""
        record = self._named_record()
        generation = record.live or record.building
        if generation is None:
            raise InvalidConfiguration(f"reactor {self.name} has not run yet: nothing is parked")
        return generation

    def _park_change(self, generation: Generation, record: Parked) -> Change:
        stored = self.store.get(generation, record.event_id)
        body = _CONVERTER.unstructure(record)
        return Change(record.event_id, body, None if stored is None else stored.revision)

    def parked(self, *, skipped: bool = False) -> list[Parked]:
        """The events parked, by event id.

        Args:
            skipped: List those an operator skipped too.

        Returns:
            The parked (and skipped) events, with their errors.

        Raises:
            InvalidConfiguration: The reactor has not run yet in ``store``.
            CorruptReadModel: A record of ``store`` is not a parked event.
        """
        generation = self._generation()
        records = []
        for stored in self.store.documents(generation):
            try:
                record = _CONVERTER.structure(stored.body, Parked)
            except (cattrs.BaseValidationError, TypeError, ValueError) as error:
                raise CorruptReadModel(
                    f"{self.name} parked event {stored.key}", repr(error)
                ) from error
            if record.status == "parked" or skipped:
                records.append(record)
        return records

    def retry(self, event_id: str) -> list[CommandResult[Any, Any]]:
        """React to parked event ``event_id`` again; on success it is no longer parked.

        Args:
            event_id: The id of a parked event, as :meth:`parked` lists it.

        Returns:
            The results of the commands it calls for.

        Raises:
            InvalidConfiguration: No such event is parked, or it is no longer in its stream
                (compacted away or erased: skip it).
            StreamDeleted: Its stream was deleted (skip it).
            Exception: What the reaction raises, at once (no retries); the event stays
                parked.
            ObjectStoreError: A request failed, or the shard's state kept changing under each
                attempt to remove the record.
        """
        record = self._record(event_id)
        stream_type, _, stream_id = record.stream.partition("/")
        stream = StreamName(stream_type, stream_id)
        event = self._event(stream, record.version, event_id)
        results = self._send_all(event)
        self._settle(stream, Change(event_id, None, self._revision(event_id)))
        self._log.info("parked_event_retried", event_id=event_id, commands=len(results))
        return results

    def skip(self, event_id: str) -> None:
        """Mark parked event ``event_id`` skipped: it is kept, with its error, for the record.

        Args:
            event_id: The id of a parked event, as :meth:`parked` lists it.

        Raises:
            InvalidConfiguration: No such event is parked.
            ObjectStoreError: A request failed, or the shard's state kept changing under each
                attempt to store the record.
        """
        record = self._record(event_id)
        stream_type, _, stream_id = record.stream.partition("/")
        body = _CONVERTER.unstructure(attrs.evolve(record, status="skipped"))
        self._settle(
            StreamName(stream_type, stream_id),
            Change(event_id, body, self._revision(event_id)),
        )
        self._log.warning("parked_event_skipped", event_id=event_id, stream=record.stream)

    def _record(self, event_id: str) -> Parked:
        for record in self.parked():
            if record.event_id == event_id:
                return record
        raise InvalidConfiguration(f"reactor {self.name}: no event {event_id!r} is parked")

    def _revision(self, event_id: str) -> str | None:
        stored = self.store.get(self._generation(), event_id)
        return None if stored is None else stored.revision

    def _event(self, stream: StreamName, version: int, event_id: str) -> RecordedEvent[Any]:
        keys = self.event_store.keys
        for chunk in self.event_store.chunks(stream, after_version=version - 1):
            key = keys.chunk_key(chunk.stream, chunk.version, chunk.number)
            for event in self._recorded(chunk, key):
                if event.id == event_id:
                    return event
        raise InvalidConfiguration(
            f"reactor {self.name}: parked event {event_id} is no longer in stream {stream} "
            f"at version {version} (compacted away, erased or deleted): skip it"
        )

    def _settle(self, stream: StreamName, change: Change) -> None:
        """Store ``change`` to a parked event with its shard's state (the store's one commit).

        The shard's running holder, if any, sees its state changed and starts its pass again.
        """
        generation = self._generation()
        shard = shard_of(stream, self.shards)
        for _ in range(_COMMIT_ATTEMPTS):
            state = self.store.shard_state(generation, shard, self.shards)
            if state is None:
                state = ShardState(shard, self.shards, 0)
            state = attrs.evolve(state, commit_id=uuid.uuid4().hex)
            try:
                self.store.commit(generation, [change], {}, state)
            except ReadModelConflict:
                change = attrs.evolve(change, revision=self._revision(change.key))
                continue
            return
        raise ObjectStoreError(
            "PUT", f"{self.name} parked event {change.key}", "the shard's state kept changing"
        )


__all__ = [
    "CAUSATION_ID",
    "CORRELATION_ID",
    "Parked",
    "Reactor",
    "ReactorPass",
    "ReactorRunner",
    "Send",
]
