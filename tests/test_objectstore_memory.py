"""The in-memory object store against the ObjectStore contract."""

from __future__ import annotations

import pytest

from s3es import InMemoryObjectStore
from s3es.storage import ObjectStore
from s3es.testing.objectstore_contract import ObjectStoreContract


class TestInMemoryObjectStore(ObjectStoreContract):
    """InMemoryObjectStore keeps every promise of the port."""

    @pytest.fixture
    def store(self) -> ObjectStore:
        """A fresh in-memory store."""
        return InMemoryObjectStore()


class TestInMemoryIsolation:
    def test_stores_do_not_share_objects(self) -> None:
        """Two in-memory stores are independent: what one holds the other does not."""
        first, second = InMemoryObjectStore(), InMemoryObjectStore()
        first.put_if_absent("k/1", b"x")
        assert second.get("k/1") is None
        second.put_if_absent("k/1", b"y")
        stored = first.get("k/1")
        assert stored is not None
        assert stored.body == b"x"
