"""The read side: projections, the projector that keeps them up to date, and its lease.

A :class:`Projection` folds events into a read model; a :class:`Projector` runs it over the
event store (one holder at a time, by its :class:`Lease`); an :class:`InlineProjection` keeps a
model in the process, updated right after each append.
"""

from s3es._projections.inline import InlineProjection
from s3es._projections.lease import Lease
from s3es._projections.projection import Projection, ReadModel
from s3es._projections.projector import ProjectionPass, Projector

__all__ = ["InlineProjection", "Lease", "Projection", "ProjectionPass", "Projector", "ReadModel"]
