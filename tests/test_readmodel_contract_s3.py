"""The S3 read-model store keeps the read-model store contract, in memory and over HTTP.

On :class:`~s3es.InMemoryObjectStore` the suite is quick; over the embedded S3 endpoint (moto's
server, its conditional writes serialised as S3's are atomic) it also proves the wire: keys
percent-encoded in URLs, If-Match and If-None-Match answered by a server, listings paged.
"""

from __future__ import annotations

import pytest

from s3es import InMemoryObjectStore, S3ObjectStore
from s3es.readmodels import ReadModelStore, S3ReadModelStore
from s3es.testing import ReadModelStoreContract


class TestS3ReadModelStoreInMemory(ReadModelStoreContract):
    """S3ReadModelStore over the in-memory object store, under a prefix."""

    def make_store(self) -> ReadModelStore:
        """A store on a fresh in-memory object store."""
        return S3ReadModelStore(InMemoryObjectStore(), prefix="app")


class TestS3ReadModelStoreOverHTTP(ReadModelStoreContract):
    """S3ReadModelStore over S3ObjectStore, on a fresh bucket of the embedded endpoint."""

    #: A position is an object: 1,200 streams cost 3,600 requests, 17 s over moto's HTTP. The
    #: in-memory class moves 1,200 through the same code; over HTTP, 120 prove the wire.
    many_streams = 120

    @pytest.fixture
    def store(self, s3_store: S3ObjectStore) -> ReadModelStore:
        """A store on a fresh bucket, with no prefix."""
        return S3ReadModelStore(s3_store)


def test_a_subclass_must_provide_a_store() -> None:
    """The base's make_store names the subclass that forgot to override it."""

    class TestForgotten(ReadModelStoreContract):
        pass

    with pytest.raises(NotImplementedError, match="TestForgotten must override make_store"):
        TestForgotten().make_store()
