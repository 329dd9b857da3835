"""What both object-store ports share: stored objects and how listings page.

Hand-written, and imported by the sync port (``_storage/port.py``, generated from
``_storage/_async/port.py``) and the async one, which re-export its names, as psycopg keeps
what does no I/O in base modules both APIs import. The adapters page their listings with
:func:`list_page_size` and :func:`keys_wanted`, so they count requests as S3 would.
"""

from __future__ import annotations

import attrs

__all__ = [
    "LIST_FOLDER_ALLOWANCE",
    "LIST_PAGE_SIZE",
    "StoredObject",
    "keys_wanted",
    "list_page_size",
]

#: ListObjectsV2 returns at most this many entries (keys and common prefixes) per request.
LIST_PAGE_SIZE = 1000
#: Entries beyond its ``limit`` that a listing's first page asks for. S3 counts each folder
#: (common prefix) among the keys as an entry of the page, so a page of ``limit`` entries
#: holds fewer keys when folders sort before them, and the next key would cost a LIST of its
#: own (a stream's folder holding ``0/``, ``2024/``... before its chunk keys).
LIST_FOLDER_ALLOWANCE = 32


def list_page_size(keys_left: float, *, first: bool) -> int:
    """The entries (MaxKeys) a listing that still wants ``keys_left`` keys asks for in a page.

    The first page asks for ``keys_left`` plus :data:`LIST_FOLDER_ALLOWANCE`; a page after it
    (more keys wanted, or folders filled the first) for a full page.
    """
    wanted = keys_left + LIST_FOLDER_ALLOWANCE if first else LIST_PAGE_SIZE
    return int(min(wanted, LIST_PAGE_SIZE))


def keys_wanted(limit: int | None) -> float:
    """How many keys a listing with ``limit`` may still yield (``inf`` for no limit)."""
    if limit is None:
        return float("inf")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    return limit


@attrs.frozen
class StoredObject:
    """An object read back from a store.

    Attributes:
        body: Its bytes.
        etag: Its ETag, as the store gave it: what a conditional replace must name.
    """

    body: bytes
    etag: str
