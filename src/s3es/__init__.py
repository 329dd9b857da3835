"""s3es: event sourcing with Amazon S3 as a strongly consistent event store.

Each append writes one immutable JSON chunk, named by the stream's next version, with
``If-None-Match: *``: of two writers racing for a version exactly one wins. No database, no lock
table.

The root holds what an application author needs. The rest lives in themed modules:
:mod:`s3es.errors`, :mod:`s3es.storage`, :mod:`s3es.eventstore`, :mod:`s3es.metering`,
:mod:`s3es.projections`, :mod:`s3es.ops` and :mod:`s3es.testing`.
"""

from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

from s3es._base.backoff import Backoff
from s3es._domain.aggregate import Aggregate, RecordedEvent
from s3es._domain.commands import CommandHandler, CommandResult
from s3es._domain.expected import ExpectedVersion
from s3es._domain.options import CommandHooks, Conflict, GaveUp, GroupCommit, RetryPolicy
from s3es._domain.repository import Appended, Loaded, Repository
from s3es._domain.upcasting import Renamed, Upcaster
from s3es._eventstore.store import EventStore
from s3es._projections.inline import InlineProjection
from s3es._projections.projection import Projection, ReadModel
from s3es._projections.projector import Projector
from s3es._storage.keys import StreamName
from s3es._storage.memory import InMemoryObjectStore
from s3es.errors import (
    ConcurrencyError,
    CorruptChunk,
    InvalidConfiguration,
    ObjectStoreError,
    RetriesExhausted,
    S3esError,
    StreamDeleted,
)

if TYPE_CHECKING:
    from s3es._storage.s3 import S3ObjectStore

__version__: str = _version("s3es")


def __getattr__(name: str) -> Any:
    """``S3ObjectStore`` on first use: importing s3es does not import boto3 and botocore.

    An application whose domain modules import s3es (for ``Aggregate``) can be read, tested and
    imported without the S3 client's import cost.
    """
    if name == "S3ObjectStore":
        from s3es._storage.s3 import S3ObjectStore  # noqa: PLC0415 - lazy: boto3 is heavy

        globals()[name] = S3ObjectStore
        return S3ObjectStore
    raise AttributeError(f"module 's3es' has no attribute {name!r}")


__all__ = [
    "Aggregate",
    "Appended",
    "Backoff",
    "CommandHandler",
    "CommandHooks",
    "CommandResult",
    "ConcurrencyError",
    "Conflict",
    "CorruptChunk",
    "EventStore",
    "ExpectedVersion",
    "GaveUp",
    "GroupCommit",
    "InMemoryObjectStore",
    "InlineProjection",
    "InvalidConfiguration",
    "Loaded",
    "ObjectStoreError",
    "Projection",
    "Projector",
    "ReadModel",
    "RecordedEvent",
    "Renamed",
    "Repository",
    "RetriesExhausted",
    "RetryPolicy",
    "S3ObjectStore",
    "S3esError",
    "StreamDeleted",
    "StreamName",
    "Upcaster",
    "__version__",
]
