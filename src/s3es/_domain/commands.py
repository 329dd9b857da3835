"""Command handling: load, decide, append; on a conflict, catch up and decide again."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, Protocol

import attrs
import structlog

from s3es._base.backoff import Backoff
from s3es._base.logging import get_logger
from s3es._domain.aggregate import C, E, RecordedEvent, S
from s3es._domain.cache import LoadedCache
from s3es._domain.repository import Loaded, Repository
from s3es._storage.keys import StreamName
from s3es._storage.metering import RequestCounts, measure_requests
from s3es.errors import (
    ConcurrencyError,
    CorruptChunk,
    DomainContractError,
    RetriesExhausted,
    StreamDeleted,
)

_log = get_logger("s3es.commands")


class InlineView(Protocol):
    """What a command handler tells of each append it stores: an inline projection.

    The handler lies below the read side, so it knows views only by this protocol;
    :class:`~s3es.InlineProjection` implements it.
    """

    def check_source(self, stream_type: str) -> None:
        """Raise InvalidConfiguration unless the view reads streams of ``stream_type``."""

    def appended(
        self, repository: Repository[Any, Any, Any], recorded: Sequence[RecordedEvent[Any]]
    ) -> None:
        """Take in ``recorded``, the events one append stored through ``repository``."""


@attrs.frozen
class RetryPolicy:
    """How a command handler answers concurrency conflicts.

    At most ``max_attempts`` decisions in all (1: never retry); between two, a jittered pause
    from ``backoff``.
    """

    max_attempts: int = attrs.field(default=10, validator=attrs.validators.ge(1))
    backoff: Backoff = attrs.field(factory=lambda: Backoff(initial=0.005, maximum=0.25))


@attrs.frozen
class CommandResult(Generic[S, E]):
    """A handled command: the stream's new state and version, and what it stored.

    ``recorded`` is empty (and nothing was written) when ``decide`` returned no events.
    """

    stream: StreamName
    version: int
    state: S
    recorded: tuple[RecordedEvent[E], ...]
    #: Decisions made: 1, plus one per concurrency conflict met.
    attempts: int
    #: True when the PUT's answer was lost and the stored chunk was found to be ours afterwards.
    recovered: bool = False
    #: Object-store requests this command sent, retries and loads included.
    requests: RequestCounts = attrs.field(factory=RequestCounts)

    @property
    def events(self) -> tuple[E, ...]:
        """The domain events the command stored."""
        return tuple(recorded.event for recorded in self.recorded)

    @property
    def conflicts(self) -> int:
        """Concurrency conflicts met before the command's events were stored."""
        return self.attempts - 1


class CommandHandler(Generic[S, C, E]):
    """Runs commands against the streams of one aggregate, retrying on concurrency conflicts.

    A conflict means another writer stored the version this one decided on. The handler then
    applies what is new and calls ``decide`` again on the newer state: after a first conflict
    the winning chunk (read while resolving the conflict, so no extra request), after further
    ones the stream's latest state (a load), so a writer on a hot stream does not fall behind.
    Errors raised by ``decide`` are domain errors: they propagate unchanged and are never
    retried. ``inline`` projections are given each command's events once they are stored.

    The handler keeps the latest state it knows of the last ``cache_size`` streams, so a
    command on a warm stream costs one request, its PUT. A cached state may be stale; that is
    safe because the PUT is conditional: a decision made on a stale state loses its PUT and is
    made again. A decision that writes nothing (no events, or a domain error) on a cached state
    is confirmed by reading what is new first (one LIST), so it is never based on stale state.
    Safe to share between threads.
    """

    def __init__(
        self,
        repository: Repository[S, C, E],
        retry: RetryPolicy = RetryPolicy(),  # noqa: RUF100
        *,
        cache_size: int = 10_000,
        inline: Sequence[InlineView] = (),
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        stream_type = repository.stream("-").type
        for view in inline:
            view.check_source(stream_type)
        self.inline = tuple(inline)
        self.repository = repository
        self.retry = retry
        self.cache: LoadedCache[S] = LoadedCache(cache_size)
        self._sleep = sleep
        self._rng = rng or random.Random()

    def handle(
        self,
        stream_id: str,
        command: C,
        *,
        metadata: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
    ) -> CommandResult[S, E]:
        """Decide ``command`` on the stream's current state and store the events.

        ``metadata`` is stored with every event. ``retry`` overrides the handler's policy for
        this call. Raises RetriesExhausted when every attempt lost to a concurrent writer.
        The result counts the requests this call sent.
        """
        stream = self.repository.stream(stream_id)
        # Log lines below (the event store's too) carry the stream and the attempt.
        with (
            measure_requests() as meter,
            structlog.contextvars.bound_contextvars(stream=str(stream), attempt=1),
        ):
            try:
                result = self._handle(stream_id, command, metadata, retry or self.retry)
            except (StreamDeleted, CorruptChunk):
                # A deleted stream stays deleted; a corrupt chunk met while catching up from a
                # cached state may lie below the latest one, which a fresh load reads instead.
                self.cache.discard(stream_id)
                raise
        return attrs.evolve(result, requests=meter.counts)

    def _handle(
        self,
        stream_id: str,
        command: C,
        metadata: Mapping[str, Any] | None,
        policy: RetryPolicy,
    ) -> CommandResult[S, E]:
        repository = self.repository
        cached = self.cache.get(stream_id)
        # fresh: the state was read in this call, not remembered from an earlier one.
        loaded, fresh = (repository.load(stream_id), True) if cached is None else (cached, False)
        attempt = 1
        while True:
            structlog.contextvars.bind_contextvars(attempt=attempt)
            try:
                # A decide that yields raises its domain errors while it is read: here too.
                events = self._events(repository.aggregate.decide(command, loaded.state), loaded)
            except Exception:
                if fresh:
                    self.cache.put(stream_id, loaded)
                    raise
                loaded, fresh = self._refresh(loaded), True
                continue
            if not events:
                if not fresh:
                    loaded, fresh = self._refresh(loaded), True
                    continue
                self.cache.put(stream_id, loaded)
                return CommandResult(loaded.stream, loaded.version, loaded.state, (), attempt)
            try:
                appended = repository.append(loaded, events, metadata=metadata)
            except ConcurrencyError as conflict:
                self._log_conflict(conflict, attempt, policy)
                if attempt == policy.max_attempts:
                    self.cache.discard(stream_id)
                    raise RetriesExhausted(loaded.stream, attempt, conflict) from conflict
                self._sleep(policy.backoff.delay(attempt, self._rng))
                # The winning chunk comes free with the conflict. Losing again means the
                # stream is hot and moves on while we back off: walking it one version per
                # attempt would starve us, so load its latest state instead.
                loaded = (
                    repository.refresh(loaded, conflict)
                    if attempt == 1
                    else repository.load(stream_id)
                )
                fresh = True
                attempt += 1
                _log.debug(
                    "retry", stream=str(loaded.stream), version=loaded.version + 1, attempt=attempt
                )
                continue
            new = appended.loaded
            self.cache.put(stream_id, new)
            _log.debug("handled", stream=str(new.stream), version=new.version, attempt=attempt)
            for projection in self.inline:
                projection.appended(repository, appended.recorded)
            return CommandResult(
                new.stream,
                new.version,
                new.state,
                appended.recorded,
                attempt,
                recovered=appended.recovered,
            )

    def _events(self, decided: Any, loaded: Loaded[S]) -> tuple[E, ...]:
        """What ``decide`` returned for ``loaded``'s stream, as a tuple of events.

        Raises DomainContractError unless it is a sequence of events (a list, a tuple, or any
        iterable but a str, a mapping or one event).
        """
        repository = self.repository
        one_event = repository.codec.is_event(decided)
        if isinstance(decided, Iterable) and not (isinstance(decided, str | Mapping) or one_event):
            return tuple(decided)
        found = (
            "None" if decided is None else f"{decided!r:.80} (of type {type(decided).__qualname__})"
        )
        hint = f" (return [{type(decided).__qualname__}(...)] for one)" if one_event else ""
        raise DomainContractError(
            f"{type(repository.aggregate).__qualname__}.decide returned {found} for stream "
            f"{loaded.stream}: it must return a list of events, [] for none{hint}"
        )

    def _refresh(self, cached: Loaded[S]) -> Loaded[S]:
        """``cached`` brought up to date before a decision that writes nothing stands."""
        loaded = self.repository.refresh(cached)
        _log.debug(
            "cache_refreshed",
            stream=str(cached.stream),
            cached_version=cached.version,
            version=loaded.version,
        )
        return loaded

    @staticmethod
    def _log_conflict(conflict: ConcurrencyError, attempt: int, policy: RetryPolicy) -> None:
        _log.info(
            "conflict",
            stream=str(conflict.stream),
            attempt=attempt,
            version=conflict.expected_version + 1,
            max_attempts=policy.max_attempts,
        )
