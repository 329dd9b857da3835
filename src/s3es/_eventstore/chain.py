"""The chain of chunks a full read of a stream follows, walked in one place for every reader.

A stream's latest version names the version its events follow (``base_version``), that one the
one before, down to version 0: a compacted chunk skips the versions it covers. Of the chunks of
one version the highest-numbered stands for it (a re-snapshotted or merged chunk is stored
beside the version's chunk 0, with a higher number). The event store walks this chain to read a
stream and raises at a break; verification walks it to report the break as a problem. Both get
their chains from :func:`newest_of_each_version` and :func:`walk_chain`, which send no request
of their own: the caller's listing and ``read`` do.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Generic, Protocol, TypeVar

import attrs

from s3es._eventstore.chunk import Chunk


class Location(Protocol):
    """Where a chunk is stored: what the walk needs to know of it before reading it."""

    @property
    def key(self) -> str:
        """The chunk's object key."""
        ...  # pragma: no cover - a protocol

    @property
    def version(self) -> int:
        """The version the chunk is of."""
        ...  # pragma: no cover - a protocol


L = TypeVar("L", bound=Location)


def newest_of_each_version(listed: Iterable[L], *, after_version: int = 0) -> dict[int, L]:
    """Of each version after ``after_version``, the location listed first.

    ``listed`` comes newest first, as a stream's keys list: a version's highest chunk number
    comes first. It is consumed no further than its first location at or below
    ``after_version``, so that a lazy listing sends no LIST for the older keys.
    """
    newest: dict[int, L] = {}
    for where in listed:
        if where.version <= after_version:
            break
        newest.setdefault(where.version, where)
    return newest


class BreakReason(enum.Enum):
    """Why a chain ends before it reaches the version a read started after."""

    #: No chunk of ``version`` is listed, though the chunk at ``key`` follows it.
    MISSING = "missing"
    #: The chunk at ``key`` is an erased chunk, and no merged chunk stands for it.
    ERASED = "erased"
    #: The chunk at ``key`` is a tombstone below the top of the chain, stored after it.
    TOMBSTONE = "tombstone"


@attrs.frozen
class ChainBreak:
    """Where and why a chain breaks.

    ``key`` is the key the reason names; ``version`` the missing version, or that of the
    erased chunk or the tombstone.
    """

    reason: BreakReason
    key: str
    version: int


@attrs.frozen
class Link(Generic[L]):
    """One chunk of the chain and where it is stored."""

    where: L
    chunk: Chunk


def walk_chain(
    newest: Mapping[int, L], read: Callable[[L], Chunk], *, after_version: int = 0
) -> Iterator[Link[L] | ChainBreak]:
    """The chain down to ``after_version``, newest first; a break ends it, as its last item.

    ``newest`` maps each version to the location of the chunk that stands for it (see
    :func:`newest_of_each_version`); ``read`` gets the chunk at a location, and is called
    lazily, one link at a time, so a caller that stops early reads no further. The walk starts
    at the highest version and goes down each chunk's ``base_version`` until it reaches
    ``after_version``. A tombstone is a link only at the top (a deleted stream's latest
    version): whether a tombstone at the top is an error is the caller's to say.
    """
    top = max(newest, default=after_version)
    if top <= after_version:
        return
    where, at_top = newest[top], True
    while True:
        chunk = read(where)
        if chunk.deleted:
            if not at_top:
                yield ChainBreak(BreakReason.TOMBSTONE, where.key, chunk.version)
                return
        elif chunk.erased:
            yield ChainBreak(BreakReason.ERASED, where.key, chunk.version)
            return
        yield Link(where, chunk)
        if chunk.base_version <= after_version:
            return
        below = newest.get(chunk.base_version)
        if below is None:
            yield ChainBreak(BreakReason.MISSING, where.key, chunk.base_version)
            return
        where, at_top = below, False
