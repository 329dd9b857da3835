"""Fixtures shared by the test suite: object stores, and one embedded S3 endpoint per session."""

from __future__ import annotations

import itertools
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import structlog

from s3es import InMemoryObjectStore, S3ObjectStore, __version__
from s3es._base import tracing
from s3es.testing.embedded_s3 import EmbeddedS3
from tests import layers

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_buckets = itertools.count()


@pytest.fixture(scope="session")
def embedded_s3() -> Iterator[EmbeddedS3]:
    """moto's S3 server on 127.0.0.1, its conditional writes serialised by a lock.

    moto alone is not atomic under concurrency (two racing If-None-Match PUTs can both win);
    EmbeddedS3 serialises its write handlers so it behaves as S3 does. See s3es.testing.embedded_s3.
    """
    with EmbeddedS3() as server:
        yield server


@pytest.fixture
def s3_store(embedded_s3: EmbeddedS3) -> S3ObjectStore:
    """An S3ObjectStore on a fresh, empty bucket of the embedded endpoint."""
    bucket = f"test-{next(_buckets)}"
    embedded_s3.create_bucket(bucket)
    return embedded_s3.object_store(bucket)


@pytest.fixture
def memory_store() -> InMemoryObjectStore:
    """A fresh in-memory object store."""
    return InMemoryObjectStore()


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    """A PostgreSQL 16 server for the session (pgserver's binaries, a Unix socket): its URI.

    As root, pgserver runs the server as a system user of its own, and opens the folders above
    its data to that user. Its data is in a folder of its own under the system's temporary
    folder, not under pytest's: every pytest run that starts (the nox sessions, another
    checkout's) closes pytest-of-root to other users again, and the server's files with it.
    A server that cannot start fails the tests that ask for it: none is skipped.
    """
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (root shells, CI) as pgserver is
        # imported: it then keeps its lock file under /tmp, which is what we want.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from pgserver.postgres_server import get_server  # noqa: PLC0415 - the dev extra

    server = get_server(Path(tempfile.mkdtemp(prefix="s3es-pg-")), cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def new_postgres_schema(postgres_uri: str) -> str:
    """A connection string to a new, empty schema of the server at ``postgres_uri``."""
    import psycopg  # noqa: PLC0415 - the postgres extra, only for the tests that need it

    schema = f"test_{uuid.uuid4().hex}"  # unique across processes and module copies
    with psycopg.connect(postgres_uri, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    return psycopg.conninfo.make_conninfo(postgres_uri, options=f"-csearch_path={schema}")


@pytest.fixture
def postgres_conninfo(postgres_uri: str) -> str:
    """A connection string to a fresh, empty schema of the session's server (its search_path)."""
    return new_postgres_schema(postgres_uri)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test ``unit`` or ``integration`` by its module (the rule of tests/layers.py)."""
    kinds: dict[Path, pytest.MarkDecorator] = {}
    for item in items:
        path = item.path
        if path not in kinds:
            source = path.read_text(encoding="utf-8")
            kinds[path] = (
                pytest.mark.integration if layers.is_integration(source) else pytest.mark.unit
            )
        item.add_marker(kinds[path])


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """The spans s3es ends while the test runs, exported to memory.

    The tracer is the test's own (an SDK provider with the in-memory exporter), put in place of
    the global provider's, which a process can set only once. OpenTelemetry's SDK is imported
    here, not at the top: the fast tests on the other CPythons run with the testing extra only.
    """
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415 - the dev extra
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: PLC0415
        InMemorySpanExporter,
    )

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("s3es", __version__)
    monkeypatch.setattr(tracing, "_active_tracer", lambda: tracer)
    yield exporter
    provider.shutdown()


@pytest.fixture(autouse=True)
def _structlog_as_it_was() -> Iterator[None]:
    """Put structlog back as it was before each test, configured or not.

    s3es reads a configured structlog as the application's choice (its lines then go through
    structlog's processors). ``structlog.testing.capture_logs`` puts the processors back but
    leaves structlog marked as configured, so without this a test that captures logs changed
    what every later test of its process saw (the CLI's ``-v`` printed structlog's console
    lines instead of stdlib's).
    """
    was_configured, saved = structlog.is_configured(), structlog.get_config()
    yield
    structlog.reset_defaults()
    if was_configured:
        structlog.configure(**saved)
