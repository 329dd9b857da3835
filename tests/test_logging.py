"""What s3es logs, and where: appends, conflicts and replay fallbacks, with their stream.

s3es hands its lines to the stdlib ``logging`` loggers ``s3es.*`` and prints nothing unless the
application configures logging; the documented set-ups print what docs/getting-started.md shows.

The command handler binds ``stream`` and ``attempt`` with structlog's contextvars, so they reach
a log entry only through ``structlog.contextvars.merge_contextvars`` (first in structlog's default
processors). ``structlog.testing.capture_logs()`` replaces every processor, that one included:
the tests capture with ``capture_logs(processors=[merge_contextvars])``, as an application would.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, MutableMapping
from pathlib import Path
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
from s3es._base.logging import get_logger, log_to_stderr
from tests.aggregates import Counter, CounterError, CounterV2, Decrement, Increment
from tests.test_commands import STREAM, _handler, _racing
from tests.test_docs import code_blocks

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


ROOT = Path(__file__).resolve().parent.parent
GETTING_STARTED = ROOT / "docs" / "getting-started.md"

#: After the README's sample, a rival handler moves the stream on; ``handler`` still holds
#: version 2 in its cache, so its next command loses the race for version 3 once.
_RACE = """
rival = CommandHandler(Repository(store, Account))
rival.handle("acc-1", Deposit(1))
handler.handle("acc-1", Deposit(5))
"""


def _readme_sample() -> str:
    """The README's first Python sample: what a newcomer runs first."""
    return next(block.source for block in code_blocks(ROOT / "README.md") if block.runnable)


def _logs_section() -> tuple[list[str], list[str]]:
    """The python and the text blocks of getting-started's Logs section, in order."""
    blocks = code_blocks(GETTING_STARTED)
    lines = GETTING_STARTED.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Logs") + 1
    end = next(n for n, line in enumerate(lines[start:], start + 1) if line.startswith("## "))
    inside = [block for block in blocks if start < block.line < end]
    return (
        [block.source for block in inside if block.runnable],
        [block.source for block in inside if block.language == "text"],
    )


def _run_script(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    """``source`` run by a fresh interpreter outside the source tree, as a user's script."""
    script = tmp_path / "script.py"
    script.write_text(source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "STRUCTLOG"))}
    done = subprocess.run(  # noqa: S603 - our own interpreter on our own script
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def unconfigured() -> Iterator[None]:
    """structlog as an application that never configured it sees it; restored afterwards.

    An earlier ``capture_logs`` leaves structlog configured for the rest of the process.
    """
    was_configured, saved = structlog.is_configured(), structlog.get_config()
    structlog.reset_defaults()
    try:
        yield
    finally:
        if was_configured:
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()


@pytest.fixture
def s3es_records() -> Iterator[list[logging.LogRecord]]:
    """The records that reach the stdlib logger ``s3es`` at DEBUG and above."""

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    logger, keep = logging.getLogger("s3es"), Keep()
    previous = logger.level
    logger.addHandler(keep)
    logger.setLevel(logging.DEBUG)
    try:
        yield keep.records
    finally:
        logger.removeHandler(keep)
        logger.setLevel(previous)


class TestQuiet:
    def test_readme_sample_prints_nothing(self, tmp_path: Path) -> None:
        """The README's sample, run as a plain script, prints nothing to stdout or stderr."""
        done = _run_script(tmp_path, _readme_sample())
        assert (done.stdout, done.stderr) == ("", "")

    def test_conflicts_and_warnings_print_nothing(self, tmp_path: Path) -> None:
        """A script whose handler loses a race (INFO) and that logs a WARNING through s3es's
        logger prints nothing: the ``s3es`` logger's NullHandler keeps Python's last-resort
        handler from printing warnings."""
        source = (
            _readme_sample()
            + _RACE
            + "from s3es._base.logging import get_logger\n"
            + 'get_logger("s3es.eventstore").warning("append_failed", error="boom")\n'
        )
        done = _run_script(tmp_path, source)
        assert (done.stdout, done.stderr) == ("", "")


class TestStdlib:
    @pytest.mark.usefixtures("unconfigured")
    def test_records_reach_the_module_logger(self, s3es_records: list[logging.LogRecord]) -> None:
        """Without structlog configured, each line is a stdlib record of the module's logger
        ``s3es.*``, at the level logged, whose message is the event then its fields in logfmt,
        the handler's contextvars merged."""
        handler, _ = _handler(InMemoryObjectStore())
        handler.handle(STREAM.id, Increment(1))
        key = handler.repository.event_store.keys.chunk_key(STREAM, 1)
        assert [(r.name, r.levelname, r.getMessage()) for r in s3es_records] == [
            (
                "s3es.eventstore",
                "DEBUG",
                f"append stream=counter/c-1 version=1 key={key} events=1 deleted=false attempt=1",
            ),
            ("s3es.commands", "DEBUG", "handled stream=counter/c-1 version=1 attempt=1"),
        ]

    @pytest.mark.usefixtures("unconfigured")
    def test_stdlib_level_filters(self, s3es_records: list[logging.LogRecord]) -> None:
        """The stdlib level of ``s3es`` decides: at INFO, the debug lines are not emitted and
        the handler's conflict is."""
        logging.getLogger("s3es").setLevel(logging.INFO)
        store, _ = _racing(Increment(10), times=1)
        handler, _ = _handler(store)
        handler.handle(STREAM.id, Increment(1))
        assert [(r.name, r.getMessage()) for r in s3es_records] == [
            ("s3es.commands", "conflict stream=counter/c-1 attempt=1 version=1 max_attempts=5"),
        ]

    def test_copy_is_a_working_logger(self) -> None:
        """A copied logger (copy makes it without __init__) logs as the original does, and a
        private name it lacks is an AttributeError, not an endless lookup."""
        log = get_logger("s3es.test")
        with capture_logs() as entries:
            copy.copy(log).info("copied")
        assert [e["event"] for e in entries] == ["copied"]
        with pytest.raises(AttributeError, match="_missing"):
            getattr(log, "_missing")  # noqa: B009 - the lookup is the test

    def test_name_outside_s3es_refused(self) -> None:
        """A logger named outside ``s3es`` would escape its NullHandler: refused."""
        with pytest.raises(ValueError, match="'orders'"):
            get_logger("orders")


class TestStructlogConfigured:
    def test_processor_formatter_gets_the_event_dict(
        self, s3es_records: list[logging.LogRecord]
    ) -> None:
        """With structlog configured for the stdlib, a record carries the event dict, which
        ProcessorFormatter renders (JSON here) with the logger's name and the contextvars."""
        saved = structlog.get_config()
        structlog.configure(
            processors=[
                merge_contextvars,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
        )
        try:
            handler, _ = _handler(InMemoryObjectStore())
            handler.handle(STREAM.id, Increment(1))
        finally:
            structlog.configure(**saved)
        formatter = structlog.stdlib.ProcessorFormatter(
            processor=structlog.processors.JSONRenderer()
        )
        (append,) = [json.loads(formatter.format(r)) for r in s3es_records if r.levelno == 10][:1]
        assert append == {
            "event": "append",
            "logger": "s3es.eventstore",
            "stream": "counter/c-1",
            "version": 1,
            "key": handler.repository.event_store.keys.chunk_key(STREAM, 1),
            "events": 1,
            "deleted": False,
            "attempt": 1,
        }


class TestDocumentedSetUps:
    """Each set-up of getting-started's Logs section, run as a script in a fresh interpreter,
    prints to stderr the lines the page shows when a handler loses a race."""

    @pytest.mark.parametrize("index", [0, 1], ids=["logging.basicConfig", "structlog"])
    def test_prints_what_the_page_shows(self, tmp_path: Path, index: int) -> None:
        samples, outputs = _logs_section()
        assert len(samples) == len(outputs) == 2
        # Each sample builds on the page before it: the structlog set-up reuses `logging`.
        source = "import logging\n" + samples[index] + _readme_sample() + _RACE
        done = _run_script(tmp_path, source)
        assert (done.stdout, done.stderr) == ("", outputs[index])


class TestLogToStderr:
    @pytest.mark.usefixtures("unconfigured")
    def test_prints_inside_and_restores_after(self) -> None:
        """Inside log_to_stderr(WARNING), s3es's warnings print to stderr and its info lines
        do not; after it, the ``s3es`` logger's handlers and level are the ones before."""
        logger = logging.getLogger("s3es")
        before = (list(logger.handlers), logger.level)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), log_to_stderr(logging.WARNING):
            get_logger("s3es.test").info("conflict")
            get_logger("s3es.test").warning("append_failed", error="boom")
        assert err.getvalue() == "WARNING s3es.test: append_failed error=boom\n"
        assert (list(logger.handlers), logger.level) == before
