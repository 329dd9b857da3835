"""What s3es logs through structlog: appends, conflicts and replay fallbacks, with their stream.

The command handler binds ``stream`` and ``attempt`` with structlog's contextvars, so they reach
a log entry only through ``structlog.contextvars.merge_contextvars`` (first in structlog's default
processors). ``structlog.testing.capture_logs()`` replaces every processor, that one included:
the tests capture with ``capture_logs(processors=[merge_contextvars])``, as an application would.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from s3es import (
    CommandHandler,
    EventStore,
    InMemoryObjectStore,
    Repository,
    RetriesExhausted,
    RetryPolicy,
    S3esError,
)
from s3es._base.logging import log_level
from tests.aggregates import Counter, CounterError, CounterV2, Decrement, Increment
from tests.test_commands import STREAM, _handler, _racing

LogEntries = list[MutableMapping[str, Any]]


@pytest.fixture
def logs() -> Iterator[LogEntries]:
    """Log entries captured as structlog's default configuration sees them (contextvars merged)."""
    with capture_logs(processors=[merge_contextvars]) as entries:
        yield entries


def _named(entries: LogEntries, event: str, level: str | None = None) -> LogEntries:
    return [e for e in entries if e["event"] == event and level in {None, e["log_level"]}]


class TestAppend:
    def test_append_logged(self, logs: LogEntries) -> None:
        """An append logs ``append`` with the stream, version, key, and the handler's attempt."""
        store = InMemoryObjectStore()
        handler, _ = _handler(store)
        handler.handle(STREAM.id, Increment(1))
        handler.handle(STREAM.id, Increment(2))
        keys = handler.repository.event_store.keys
        assert [
            (e["stream"], e["version"], e["key"], e["attempt"]) for e in _named(logs, "append")
        ] == [
            ("counter/c-1", 1, keys.chunk_key(STREAM, 1), 1),
            ("counter/c-1", 2, keys.chunk_key(STREAM, 2), 1),
        ]

    def test_append_outside_handler(self, logs: LogEntries) -> None:
        """An append made without a handler logs its stream and version, and no attempt."""
        event_store = EventStore(InMemoryObjectStore())
        event_store.append(
            STREAM, [event_store.new_event("Incremented", {"amount": 1})], expected_version=0
        )
        (entry,) = _named(logs, "append")
        assert (entry["stream"], entry["version"]) == ("counter/c-1", 1)
        assert "attempt" not in entry


class TestConflict:
    def test_conflict_logged(self, logs: LogEntries) -> None:
        """A lost race logs ``conflict`` with the stream, the contested version and the attempt;
        the retry's append logs the next attempt."""
        store, _ = _racing(Increment(10), times=1)
        handler, _ = _handler(store)
        handler.handle(STREAM.id, Increment(1))
        (conflict,) = _named(logs, "conflict", "info")
        assert (conflict["stream"], conflict["version"], conflict["attempt"]) == (
            "counter/c-1",
            1,
            1,
        )
        ours = [e for e in _named(logs, "append") if e["version"] == 2]
        assert [e["attempt"] for e in ours] == [2]

    def test_every_attempt_logged(self, logs: LogEntries) -> None:
        """Each lost attempt logs its own conflict, up to the last before RetriesExhausted."""
        store, _ = _racing(Increment(10), times=3)
        handler, _ = _handler(store)
        with pytest.raises(RetriesExhausted):
            handler.handle(STREAM.id, Increment(1), retry=RetryPolicy(max_attempts=3))
        assert [(e["version"], e["attempt"]) for e in _named(logs, "conflict", "info")] == [
            (1, 1),
            (2, 2),
            (3, 3),
        ]


class TestReplayFallback:
    def test_replay_fallback_logged(self, logs: LogEntries) -> None:
        """A load that cannot use the latest snapshot logs ``replay_fallback`` with the stream,
        version and reason, then the ``rewrite`` with its key."""
        store = InMemoryObjectStore()
        CommandHandler(Repository(EventStore(store), Counter)).handle(STREAM.id, Increment(1))
        repository = Repository(EventStore(store), CounterV2)
        repository.load(STREAM.id)
        (fallback,) = _named(logs, "replay_fallback")
        assert (fallback["stream"], fallback["version"], fallback["reason"]) == (
            "counter/c-1",
            1,
            "snapshot schema 1, code schema 2",
        )
        (rewrite,) = _named(logs, "rewrite")
        assert rewrite["key"] == repository.event_store.keys.chunk_key(STREAM, 1, 1)


class TestContextvars:
    @pytest.mark.parametrize(
        ("command", "rival_wins"),
        [(Increment(1), 0), (Decrement(5), 0), (Increment(1), 10)],
        ids=["stored", "domain error", "retries exhausted"],
    )
    def test_nothing_left_bound(self, command: Any, rival_wins: int) -> None:
        """After a command, stored, refused or given up on, the caller's contextvars are as they
        were, its own ``attempt`` included."""
        store, _ = _racing(Increment(10), times=rival_wins)
        handler, _ = _handler(store)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id="r-1", attempt="caller's")
        try:
            with contextlib.suppress(CounterError, S3esError):
                handler.handle(STREAM.id, command, retry=RetryPolicy(max_attempts=3))
            assert structlog.contextvars.get_contextvars() == {
                "request_id": "r-1",
                "attempt": "caller's",
            }
        finally:
            structlog.contextvars.clear_contextvars()

    def test_conflict_named_without_merge_contextvars(self) -> None:
        """The handler's ``conflict`` entry names its stream and attempt even when captured
        with plain capture_logs(), which does not merge contextvars."""
        store, _ = _racing(Increment(10), times=1)
        handler, _ = _handler(store)
        with capture_logs() as entries:
            handler.handle(STREAM.id, Increment(1))
        (conflict,) = _named(entries, "conflict", "info")
        assert (conflict.get("stream"), conflict.get("attempt")) == ("counter/c-1", 1)


class TestLogLevel:
    def test_filters_inside_and_restores_after(self) -> None:
        """Inside log_level(WARNING) info lines are dropped; after it, the configuration is
        the one before."""
        before = structlog.get_config()
        with log_level(logging.WARNING), structlog.testing.capture_logs() as logs:
            structlog.get_logger("s3es.test").info("conflict")
            structlog.get_logger("s3es.test").warning("append_failed")
        assert [entry["event"] for entry in logs] == ["append_failed"]
        assert structlog.get_config() == before
