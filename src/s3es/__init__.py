"""s3es: event sourcing with Amazon S3 as a strongly consistent event store.

Each append writes one immutable JSON chunk, named by the stream's next version, with
``If-None-Match: *``: of two writers racing for a version exactly one wins. No database, no lock
table. See ``docs/`` for the design and a tutorial.
"""

from s3es._aggregate import Aggregate, RecordedEvent
from s3es._backoff import Backoff
from s3es._chunk import Chunk, EventRecord, Snapshot
from s3es._commands import CommandHandler, CommandResult, RetryPolicy
from s3es._errors import (
    AppendOutcomeUnknown,
    ChunkTooLarge,
    ConcurrencyError,
    CorruptChunk,
    CorruptReadModel,
    InlineProjectionFailed,
    InvalidConfiguration,
    InvalidStreamName,
    LeaseHeld,
    ObjectStoreError,
    ProjectionFenced,
    RetriesExhausted,
    S3esError,
    StreamDeleted,
)
from s3es._eventstore import AppendResult, EventStore
from s3es._inline import InlineProjection
from s3es._latency import LatencyObjectStore, SimulatedLatency
from s3es._lease import Lease
from s3es._lifecycle import apply_tiering_rule, tiering_rule
from s3es._logging import log_level
from s3es._memory import InMemoryObjectStore
from s3es._objectstore import (
    S3_STANDARD_PRICES,
    ForwardingObjectStore,
    ObjectAlreadyExists,
    ObjectChanged,
    ObjectStore,
    RequestCounts,
    RequestMeter,
    RequestPrices,
    StoredObject,
    measure_requests,
)
from s3es._policies import application_policy, bucket_policy, operator_policy
from s3es._progress import Progress
from s3es._projection import Projection, ReadModel
from s3es._projector import ProjectionRun, Projector
from s3es._repository import Appended, Compaction, Deletion, Erasure, Loaded, Repository
from s3es._s3 import S3ObjectStore
from s3es._selftest import SelfTestCheck, SelfTestReport, require_conditional_writes, self_test
from s3es._streams import StreamKeys, StreamName
from s3es._upcasting import Renamed, Upcaster
from s3es._verify import StreamReport, VerifyProblem, VerifyReport, verify_prefix, verify_stream

__all__ = [
    "S3_STANDARD_PRICES",
    "Aggregate",
    "AppendOutcomeUnknown",
    "AppendResult",
    "Appended",
    "Backoff",
    "Chunk",
    "ChunkTooLarge",
    "CommandHandler",
    "CommandResult",
    "Compaction",
    "ConcurrencyError",
    "CorruptChunk",
    "CorruptReadModel",
    "Deletion",
    "Erasure",
    "EventRecord",
    "EventStore",
    "ForwardingObjectStore",
    "InMemoryObjectStore",
    "InlineProjection",
    "InlineProjectionFailed",
    "InvalidConfiguration",
    "InvalidStreamName",
    "LatencyObjectStore",
    "Lease",
    "LeaseHeld",
    "Loaded",
    "ObjectAlreadyExists",
    "ObjectChanged",
    "ObjectStore",
    "ObjectStoreError",
    "Progress",
    "Projection",
    "ProjectionFenced",
    "ProjectionRun",
    "Projector",
    "ReadModel",
    "RecordedEvent",
    "Renamed",
    "Repository",
    "RequestCounts",
    "RequestMeter",
    "RequestPrices",
    "RetriesExhausted",
    "RetryPolicy",
    "S3ObjectStore",
    "S3esError",
    "SelfTestCheck",
    "SelfTestReport",
    "SimulatedLatency",
    "Snapshot",
    "StoredObject",
    "StreamDeleted",
    "StreamKeys",
    "StreamName",
    "StreamReport",
    "Upcaster",
    "VerifyProblem",
    "VerifyReport",
    "application_policy",
    "apply_tiering_rule",
    "bucket_policy",
    "log_level",
    "measure_requests",
    "operator_policy",
    "require_conditional_writes",
    "self_test",
    "tiering_rule",
    "verify_prefix",
    "verify_stream",
]
