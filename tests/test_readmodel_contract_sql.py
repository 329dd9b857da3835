"""The SQLite and PostgreSQL read-model stores keep the read-model store contract.

SQLite on a file in WAL mode (as applications use it) and in memory; PostgreSQL on a fresh
schema of the session's server (tests/conftest.py starts it with pgserver).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from s3es.readmodels import PostgresReadModelStore, ReadModelStore, SQLiteReadModelStore
from s3es.testing import ReadModelStoreContract


class TestSQLiteReadModelStoreOnFile(ReadModelStoreContract):
    """SQLiteReadModelStore on a fresh database file."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ReadModelStore]:
        """A store on a new file, closed after the test."""
        with SQLiteReadModelStore(tmp_path / "read-models.db") as store:
            yield store


class TestSQLiteReadModelStoreInMemory(ReadModelStoreContract):
    """SQLiteReadModelStore on ':memory:', one database shared by the store's threads."""

    @pytest.fixture
    def store(self) -> Iterator[ReadModelStore]:
        """A store in memory, closed after the test."""
        with SQLiteReadModelStore(":memory:") as store:
            yield store


class TestPostgresReadModelStore(ReadModelStoreContract):
    """PostgresReadModelStore on a fresh schema of the session's PostgreSQL server."""

    @pytest.fixture
    def store(self, postgres_conninfo: str) -> Iterator[ReadModelStore]:
        """A store on a new schema, closed after the test."""
        with PostgresReadModelStore(postgres_conninfo) as store:
            yield store
