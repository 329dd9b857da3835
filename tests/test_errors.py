"""The errors s3es raises keep what they are about as attributes, and say it in their message."""

from __future__ import annotations

from typing import Any

import pytest

from s3es import errors
from s3es._readmodels.port import Generation
from s3es._storage.keys import StreamName

STREAM = StreamName("order", "1")
LIVE = Generation(projection="p", number=3, schema=1)
READ = Generation(projection="p", number=2, schema=1)
CONFLICT = errors.ConcurrencyError(STREAM, 4, 5)

CASES: list[tuple[type[errors.S3esError], dict[str, Any], str]] = [
    (
        errors.ConcurrencyError,
        {"stream": STREAM, "expected_version": 4, "actual_version": 5},
        "stream order/1 is at version 5 or later, not at the expected version 4",
    ),
    (
        errors.WrongExpectedVersion,
        {"stream": STREAM, "expected_version": 4, "actual_version": 5},
        (
            "stream order/1 is at version 5, which does not match the expected version 4: "
            "nothing was stored"
        ),
    ),
    (
        errors.StreamDeleted,
        {"stream": STREAM, "version": 7},
        "stream order/1 was deleted (tombstone at version 7)",
    ),
    (
        errors.CorruptChunk,
        {"key": "k/1", "reason": "not JSON"},
        "corrupt chunk 'k/1': not JSON",
    ),
    (
        errors.ChunkTooLarge,
        {"stream": STREAM, "version": 2, "size": 2_000_000, "limit": 1_000_000},
        (
            "the chunk of version 2 of stream order/1 would be 2,000,000 bytes, more than "
            "max_chunk_bytes (1,000,000) allows"
        ),
    ),
    (
        errors.CorruptReadModel,
        {"key": "doc", "reason": "no field"},
        "corrupt read model 'doc': no field",
    ),
    (
        errors.LeaseHeld,
        {"projection": "p", "owner": "me", "epoch": 3, "expires_at": 12.5},
        "projection 'p' is run by 'me' (epoch 3), whose lease expires at 12.500 (Unix time)",
    ),
    (
        errors.Fenced,
        {"projection": "p", "epoch": 3, "newer_epoch": 4},
        "'p': this consumer's epoch 3 was fenced by epoch 4",
    ),
    (
        errors.InlineProjectionFailed,
        {"projection": "list", "stream": STREAM, "version": 2},
        (
            "inline projection list failed on stream order/1 at version 2; the command's events "
            "are stored"
        ),
    ),
    (
        errors.ObjectStoreError,
        {"operation": "PUT", "key": "k", "detail": "503"},
        "PUT 'k' failed: 503",
    ),
    (
        errors.AppendOutcomeUnknown,
        {"operation": "PUT", "key": "k", "detail": "timeout"},
        "PUT 'k' failed: timeout",
    ),
    (
        errors.RetriesExhausted,
        {"stream": STREAM, "attempts": 3, "last_error": CONFLICT},
        (
            "gave up on stream order/1 after 3 attempts, each lost to a concurrent writer (last: "
            "stream order/1 is at version 5 or later, not at the expected version 4)"
        ),
    ),
    (
        errors.ObjectAlreadyExists,
        {"key": "k"},
        "an object already exists at 'k'",
    ),
    (
        errors.ObjectChanged,
        {"key": "k"},
        "the object at 'k' is not the one expected (or is gone)",
    ),
    (
        errors.ReadModelConflict,
        {"store": "sqlite", "key": "doc", "detail": "changed since it was read"},
        "sqlite: 'doc' changed since it was read",
    ),
    (
        errors.GenerationChanged,
        {"projection": "p", "read": READ, "live": LIVE},
        (
            "projection 'p': generation 2 stopped being live while it was read (generation 3 is "
            "live now): read again"
        ),
    ),
    (
        errors.GenerationChanged,
        {"projection": "p", "read": READ, "live": None},
        (
            "projection 'p': generation 2 stopped being live while it was read (none is live "
            "now): read again"
        ),
    ),
    (
        errors.ReadModelStoreError,
        {"store": "postgresql", "operation": "commit", "detail": "lost"},
        "postgresql: commit failed: lost",
    ),
]


@pytest.mark.parametrize(
    ("error_class", "about", "message"),
    CASES,
    ids=[f"{case[0].__name__}-{index}" for index, case in enumerate(CASES)],
)
def test_attributes_and_message(
    error_class: type[errors.S3esError], about: dict[str, Any], message: str
) -> None:
    """Each error keeps its arguments as attributes and its message is its only argument."""
    error = error_class(*about.values())
    assert {name: getattr(error, name) for name in about} == about
    assert str(error) == message
    assert error.args == (message,)


def test_unstorable_document() -> None:
    """An unstorable document keeps the key, path and reason, and is a read-model store error."""
    error = errors.UnstorableDocument("doc", "$.lines[3].sku", "not a str")
    assert (error.key, error.path, error.reason) == ("doc", "$.lines[3].sku", "not a str")
    assert (error.store, error.operation, error.detail) == (
        "read-model store",
        "store $.lines[3].sku of document 'doc'",
        "not a str",
    )
    assert error.args == ("$.lines[3].sku of document 'doc' cannot be stored: not a str",)
    assert isinstance(error, ValueError)


def test_base_takes_a_message() -> None:
    """The base class and the errors with no attributes take a message like any exception."""
    assert str(errors.S3esError("boom")) == "boom"
    assert str(errors.InvalidConfiguration("bad")) == "bad"
    assert isinstance(errors.InvalidStreamName("x"), ValueError)
