"""Fixtures shared by the test suite: object stores, and one embedded S3 endpoint per session."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from s3es import InMemoryObjectStore, S3ObjectStore
from s3es.testing.embedded_s3 import EmbeddedS3

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
