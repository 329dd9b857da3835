"""Reactors (process managers): events of some streams turned into commands on others.

A :class:`Reactor` says which commands an event calls for (:class:`Send`); a
:class:`ReactorRunner` runs it on the same shards, leases, positions and feeds as the document
projectors, sends each command with an id derived from the event's (at-least-once delivery,
one effect), stamps the events it causes with correlation and causation ids, and parks an
event whose reaction keeps failing for an operator to retry or skip (after the tries of its
:class:`ReactionRetry`). Its shards, feed, leases and batching take the values of
:mod:`s3es.projections` (:class:`~s3es.projections.Shards`...).
"""

from s3es._projections.options import ReactionRetry
from s3es._projections.reactor import (
    CAUSATION_ID,
    CORRELATION_ID,
    Parked,
    Reactor,
    ReactorPass,
    ReactorRunner,
    Send,
)

__all__ = [
    "CAUSATION_ID",
    "CORRELATION_ID",
    "Parked",
    "ReactionRetry",
    "Reactor",
    "ReactorPass",
    "ReactorRunner",
    "Send",
]
