"""The asyncio API: the operations an application calls, awaited. Part of the public API.

The same objects as the sync API's, for an application on an event loop: an
:class:`AsyncCommandHandler` handles commands (``await handler.handle(...)``) with the same
retries, expected versions, command ids and request accounting as
:class:`~s3es.CommandHandler`, through an :class:`AsyncRepository` and an
:class:`AsyncEventStore` on an :class:`AsyncObjectStore`: :class:`AsyncS3ObjectStore`
(aiobotocore, the ``async`` extra; imported only when asked for) or
:class:`AsyncInMemoryObjectStore`. What they return and raise are the sync API's classes
(:class:`~s3es.Loaded`, :class:`~s3es.CommandResult`, :class:`~s3es.ConcurrencyError`...).

The async classes are the source the sync ones are generated from (docs/async.md, "One source
of truth"). Maintenance, projectors, reactors and the CLI stay synchronous.

.. versionadded:: 0.2
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from s3es._domain._async.commands import AsyncCommandHandler, AsyncInlineView
from s3es._domain._async.repository import AsyncRepository
from s3es._eventstore._async.store import AsyncEventStore
from s3es._storage._async.latency import AsyncLatencyObjectStore
from s3es._storage._async.memory import AsyncInMemoryObjectStore
from s3es._storage._async.port import AsyncForwardingObjectStore, AsyncObjectStore

if TYPE_CHECKING:
    from s3es._storage._async.s3 import AsyncS3ObjectStore


def __getattr__(name: str) -> Any:
    """Import the aiobotocore adapter only when it is asked for (the ``async`` extra)."""
    if name != "AsyncS3ObjectStore":
        raise AttributeError(f"module 's3es.aio' has no attribute {name!r}")
    from s3es._storage._async.s3 import AsyncS3ObjectStore  # noqa: PLC0415 - lazily

    return AsyncS3ObjectStore


__all__ = [
    "AsyncCommandHandler",
    "AsyncEventStore",
    "AsyncForwardingObjectStore",
    "AsyncInMemoryObjectStore",
    "AsyncInlineView",
    "AsyncLatencyObjectStore",
    "AsyncObjectStore",
    "AsyncRepository",
    "AsyncS3ObjectStore",
]
