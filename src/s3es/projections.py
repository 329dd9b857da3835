"""The read side: projections, the projectors that keep them up to date, and their leases.

A :class:`DocumentProjection` folds events into documents keyed by what readers ask for (an
order, a product); a :class:`DocumentProjector` runs it, in one or many shards, into a
read-model store of :mod:`s3es.readmodels` (S3, SQLite, PostgreSQL), and a
:class:`DocumentReader` reads the live generation; an event a document cannot take is parked
as a :class:`ParkedDocument`. A :class:`Projection` folds events into one
model kept whole in one S3 object by a :class:`Projector` (the same consumer engine, one shard,
one document): the simplest, for small models.
An :class:`InlineProjection` keeps a model in the process, updated right after each append.

Every consumer (projectors, and the reactor runners of :mod:`s3es.reactors`) takes its options
as small values: :class:`Shards`, :class:`Feed`, :class:`LeaseOptions`, :class:`Batching`.
"""

from s3es._projections.consumer import ShardPass, shard_of
from s3es._projections.document_projector import DocumentPass, DocumentProjector, DocumentReader
from s3es._projections.documents import DocumentProjection
from s3es._projections.inline import InlineProjection
from s3es._projections.lease import Lease
from s3es._projections.notifications import (
    ChangeNotifications,
    Notified,
    QueueRequests,
    SQSChangeNotifications,
)
from s3es._projections.options import Batching, Feed, LeaseOptions, Shards
from s3es._projections.projection import Projection, ProjectionPass, ReadModel
from s3es._projections.projector import Projector
from s3es._projections.values import ParkedDocument

__all__ = [
    "Batching",
    "ChangeNotifications",
    "DocumentPass",
    "DocumentProjection",
    "DocumentProjector",
    "DocumentReader",
    "Feed",
    "InlineProjection",
    "Lease",
    "LeaseOptions",
    "Notified",
    "ParkedDocument",
    "Projection",
    "ProjectionPass",
    "Projector",
    "QueueRequests",
    "ReadModel",
    "SQSChangeNotifications",
    "ShardPass",
    "Shards",
    "shard_of",
]
