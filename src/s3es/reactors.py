"""Reactors (process managers): events of some streams turned into commands on others.

A :class:`Reactor` says which commands an event calls for (:class:`Send`); a
:class:`ReactorRunner` runs it on the same shards, leases, positions and feeds as the document
projectors, sends each command with an id derived from the event's (at-least-once delivery,
one effect), stamps the events it causes with correlation and causation ids, and parks an
event whose reaction keeps failing for an operator to retry or skip.
"""

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
    "Reactor",
    "ReactorPass",
    "ReactorRunner",
    "Send",
]
