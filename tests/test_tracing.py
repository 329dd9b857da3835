"""OpenTelemetry spans: what s3es tells a tracer of commands, loads, appends and passes.

The spans go to an SDK tracer provider of the test's own, with the SDK's in-memory exporter.
s3es itself takes the global provider's tracer; the tests put theirs in its place rather than
set the global provider, which a process can set only once (docs/operations.md's sample sets it).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from s3es import (
    CommandHandler,
    EventStore,
    InMemoryObjectStore,
    Projector,
    Repository,
    RetryPolicy,
)
from s3es.errors import ObjectStoreError, RetriesExhausted
from s3es.storage import ForwardingObjectStore
from tests.aggregates import (
    Counter,
    CounterError,
    CounterV2,
    Decrement,
    Increment,
    InterceptingStore,
)
from tests.projections import AppliedIds

ROOT = Path(__file__).resolve().parent.parent


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def only(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = named(exporter, name)
    assert len(found) == 1, [span.name for span in exporter.get_finished_spans()]
    return found[0]


def root(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    """The span ``name`` that has no parent (a rival's nested spans have one)."""
    [found] = [span for span in named(exporter, name) if span.parent is None]
    return found


def children(exporter: InMemorySpanExporter, parent: ReadableSpan, name: str) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        span
        for span in named(exporter, name)
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    ]


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


class LoseFirstPutAnswer(ForwardingObjectStore):
    """Stores the first PUT, then says it failed, as a dropped connection would."""

    lost = False

    def put_if_absent(self, key: str, body: bytes) -> str:
        etag = super().put_if_absent(key, body)
        if not self.lost:
            self.lost = True
            raise ObjectStoreError("PUT", key, "connection reset after the body was sent")
        return etag


class TestCommandSpans:
    def test_a_handled_command(self, spans: InMemorySpanExporter) -> None:
        """A command's span names its type and stream, the version stored and its requests;
        the load and the append are its children."""
        handler = CommandHandler(Repository(EventStore(InMemoryObjectStore()), Counter))
        handler.handle("c-1", Increment(3))
        handle = only(spans, "handle Increment")
        assert attributes(handle) == {
            "s3es.stream.type": "counter",
            "s3es.stream.id": "c-1",
            "s3es.command.type": "Increment",
            "s3es.command.attempt_count": 1,
            "s3es.command.conflict_count": 0,
            "s3es.request.put_count": 1,
            "s3es.request.get_count": 0,
            "s3es.request.list_count": 1,
            "s3es.request.delete_count": 0,
            "s3es.stream.version": 1,
            "s3es.command.event_count": 1,
            "s3es.command.recovered": False,
        }
        assert handle.status.status_code is StatusCode.UNSET
        load, append = only(spans, "load counter"), only(spans, "append counter")
        assert attributes(load) == {
            "s3es.stream.type": "counter",
            "s3es.stream.id": "c-1",
            "s3es.load.replayed": False,
            "s3es.stream.version": 0,
        }
        assert attributes(append) == {
            "s3es.stream.type": "counter",
            "s3es.stream.id": "c-1",
            "s3es.stream.version": 1,
            "s3es.append.event_count": 1,
            "s3es.append.deleted": False,
            "s3es.append.outcome": "stored",
        }
        assert handle.context is not None
        for child in (load, append):
            assert child.parent is not None
            assert child.parent.span_id == handle.context.span_id

    def test_a_warm_command_is_still_one_put(self, spans: InMemorySpanExporter) -> None:
        """Traced, a command on a warm stream costs one PUT, and has no load span."""
        handler = CommandHandler(Repository(EventStore(InMemoryObjectStore()), Counter))
        handler.handle("c-1", Increment(1))
        spans.clear()
        result = handler.handle("c-1", Increment(2))
        assert result.requests.put == result.requests.total == 1
        assert [span.name for span in spans.get_finished_spans()] == [
            "append counter",
            "handle Increment",
        ]
        assert attributes(only(spans, "handle Increment"))["s3es.request.put_count"] == 1

    def test_a_conflict(self, spans: InMemorySpanExporter) -> None:
        """A command that lost one PUT to a rival: two attempts, one conflict, and the lost
        append's span ends in error with outcome conflict; the command's span does not."""
        memory = InMemoryObjectStore()
        rival = CommandHandler(Repository(EventStore(memory), Counter))
        raced = False

        def rival_first(key: str) -> None:
            nonlocal raced
            if not raced:
                raced = True
                rival.handle("c-1", Increment(10))

        store = InterceptingStore(memory, before_put=rival_first)
        handler = CommandHandler(Repository(EventStore(store), Counter))
        result = handler.handle("c-1", Increment(1))
        assert (result.attempts, result.version) == (2, 2)
        handle = root(spans, "handle Increment")
        assert attributes(handle)["s3es.command.attempt_count"] == 2
        assert attributes(handle)["s3es.command.conflict_count"] == 1
        assert attributes(handle)["s3es.stream.version"] == 2
        assert handle.status.status_code is StatusCode.UNSET
        lost, stored = children(spans, handle, "append counter")
        assert attributes(lost)["s3es.append.outcome"] == "conflict"
        assert attributes(lost)["error.type"] == "s3es._eventstore.store.StreamConflict"
        assert lost.status.status_code is StatusCode.ERROR
        assert attributes(stored)["s3es.append.outcome"] == "stored"
        assert attributes(stored)["s3es.stream.version"] == 2

    def test_retries_exhausted(self, spans: InMemorySpanExporter) -> None:
        """A command that ran out of attempts: its span carries them, and the error."""
        memory = InMemoryObjectStore()
        rival = CommandHandler(Repository(EventStore(memory), Counter))

        def rival_first(key: str) -> None:
            rival.handle("c-1", Increment(1))

        store = InterceptingStore(memory, before_put=rival_first)
        handler = CommandHandler(Repository(EventStore(store), Counter))
        with pytest.raises(RetriesExhausted):
            handler.handle("c-1", Increment(1), retry=RetryPolicy(max_attempts=2))
        handle = root(spans, "handle Increment")
        assert attributes(handle)["s3es.command.attempt_count"] == 2
        assert attributes(handle)["error.type"] == "s3es.errors.RetriesExhausted"
        assert handle.status.status_code is StatusCode.ERROR

    def test_a_lost_answer_recovered(self, spans: InMemorySpanExporter) -> None:
        """A PUT whose answer was lost, read back and found ours: recovered on both spans."""
        store = LoseFirstPutAnswer(InMemoryObjectStore())
        handler = CommandHandler(Repository(EventStore(store), Counter))
        result = handler.handle("c-1", Increment(1))
        assert result.recovered
        handle = only(spans, "handle Increment")
        assert attributes(handle)["s3es.command.recovered"] is True
        assert attributes(handle)["s3es.request.get_count"] == 1  # the read-back
        append = only(spans, "append counter")
        assert attributes(append)["s3es.append.outcome"] == "recovered"
        assert append.status.status_code is StatusCode.UNSET

    def test_a_domain_error(self, spans: InMemorySpanExporter) -> None:
        """A command that decide refuses: the same error raised, recorded on the span as an
        exception event, status ERROR and error.type; nothing appended."""
        handler = CommandHandler(Repository(EventStore(InMemoryObjectStore()), Counter))
        with pytest.raises(CounterError, match="cannot take 5") as raised:
            handler.handle("c-1", Decrement(5))
        handle = only(spans, "handle Decrement")
        assert handle.status.status_code is StatusCode.ERROR
        assert handle.status.description == f"CounterError: {raised.value}"
        assert attributes(handle)["error.type"] == "tests.aggregates.CounterError"
        assert attributes(handle)["s3es.command.attempt_count"] == 1
        assert "s3es.stream.version" not in attributes(handle)
        [event] = handle.events
        assert event.name == "exception"
        assert dict(event.attributes or {})["exception.type"] == "tests.aggregates.CounterError"
        assert dict(event.attributes or {})["exception.message"] == str(raised.value)
        assert named(spans, "append counter") == []


class TestLoadSpans:
    def test_a_replay(self, spans: InMemorySpanExporter) -> None:
        """A load whose snapshot is of another schema says it replayed."""
        objects = InMemoryObjectStore()
        old = CommandHandler(Repository(EventStore(objects), Counter))
        for amount in (1, 2):
            old.handle("c-1", Increment(amount))
        spans.clear()
        loaded = Repository(EventStore(objects), CounterV2).load("c-1")
        load = only(spans, "load counter")
        assert attributes(load)["s3es.load.replayed"] is True
        assert attributes(load)["s3es.stream.version"] == loaded.version == 2


class TestProjectorSpans:
    def test_a_pass(self, spans: InMemorySpanExporter) -> None:
        """A pass's span: the projection, full scan or feed, what it read, applied, committed."""
        objects = InMemoryObjectStore()
        handler = CommandHandler(Repository(EventStore(objects), Counter))
        for stream_id in ("a", "b"):
            handler.handle(stream_id, Increment(1))
        spans.clear()
        run = Projector(EventStore(objects), AppliedIds).catch_up()
        span = only(spans, "catch_up applied-ids")
        assert attributes(span) == {
            "s3es.projection.name": "applied-ids",
            "s3es.projection.full_scan": True,
            "s3es.projection.stream_count": 2,
            "s3es.projection.event_count": 2,
            "s3es.projection.commit_count": run.commits,
            "s3es.request.put_count": run.requests.put,
            "s3es.request.get_count": run.requests.get,
            "s3es.request.list_count": run.requests.list,
            "s3es.request.delete_count": 0,
        }
        assert run.requests.total > 0


class TestWithoutOpenTelemetry:
    def test_s3es_runs_with_opentelemetry_unimportable(self) -> None:
        """With ``opentelemetry`` unimportable, s3es imports, handles a command in one PUT on a
        warm stream, and wraps nothing."""
        script = textwrap.dedent(
            """
            import sys
            sys.modules["opentelemetry"] = None  # import opentelemetry raises ImportError

            from s3es import CommandHandler, EventStore, InMemoryObjectStore, Repository
            from s3es._base import tracing
            from tests.aggregates import Counter, Increment

            assert not tracing.ENABLED
            handler = CommandHandler(Repository(EventStore(InMemoryObjectStore()), Counter))
            handler.handle("c-1", Increment(1))
            result = handler.handle("c-1", Increment(2))
            assert result.requests.put == result.requests.total == 1
            assert not hasattr(CommandHandler.handle, "__wrapped__")
            loaded = [name for name, module in sys.modules.items() if module is not None]
            assert not [name for name in loaded if name.startswith("opentelemetry")]
            print("ok", result.version)
            """
        )
        done = subprocess.run(  # noqa: S603 - this interpreter, a script of ours
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PATH": ""},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "ok 2"
