"""The asyncio API: the operations an application calls, awaited. Part of the public API.

The same objects as the sync API's, for an application on an event loop: an
:class:`AsyncCommandHandler` handles commands (``await handler.handle(...)``) with the same
retries, expected versions, command ids and request accounting as
:class:`~s3es.CommandHandler`, through an :class:`AsyncRepository` and an
:class:`AsyncEventStore` on an :class:`AsyncObjectStore`: :class:`AsyncS3ObjectStore`
(aiobotocore, the ``async`` extra; imported only when asked for) or
:class:`AsyncInMemoryObjectStore`. What they return and raise are the sync API's classes
(:class:`~s3es.Loaded`, :class:`~s3es.CommandResult`, :class:`~s3es.ConcurrencyError`...).

The read side too: an :class:`AsyncDocumentProjector` keeps a document projection up to date,
an :class:`AsyncDocumentReader` reads it and an :class:`AsyncReactorRunner` runs a
:class:`~s3es.reactors.Reactor`, with the sync ones' shards, leases, generations, feeds and
results (:class:`~s3es.projections.DocumentPass`, :class:`~s3es.reactors.ReactorPass`...), on an
:class:`AsyncReadModelStore`: :class:`AsyncS3ReadModelStore`, or a SQL store through
:class:`AsyncReadModels`. S3 event notifications come through :class:`AsyncNotifications`.

The async classes are the source the sync ones are generated from (docs/async.md, "One source
of truth"). Maintenance, the one-document projector and the CLI stay synchronous.

.. versionadded:: 0.2
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from s3es._domain._async.commands import AsyncCommandHandler, AsyncInlineView
from s3es._domain._async.repository import AsyncRepository
from s3es._eventstore._async.store import AsyncEventStore
from s3es._projections._async.document_projector import (
    AsyncDocumentProjector,
    AsyncDocumentReader,
)
from s3es._projections._async.notifications import AsyncChangeNotifications, AsyncNotifications
from s3es._projections._async.projector import AsyncProjector
from s3es._projections._async.reactor import AsyncReactorRunner
from s3es._readmodels._async.port import AsyncReadModels, AsyncReadModelStore
from s3es._readmodels._async.s3 import AsyncS3ReadModelStore
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
    "AsyncChangeNotifications",
    "AsyncCommandHandler",
    "AsyncDocumentProjector",
    "AsyncDocumentReader",
    "AsyncEventStore",
    "AsyncForwardingObjectStore",
    "AsyncInMemoryObjectStore",
    "AsyncInlineView",
    "AsyncLatencyObjectStore",
    "AsyncNotifications",
    "AsyncObjectStore",
    "AsyncProjector",
    "AsyncReactorRunner",
    "AsyncReadModelStore",
    "AsyncReadModels",
    "AsyncRepository",
    "AsyncS3ObjectStore",
    "AsyncS3ReadModelStore",
]
