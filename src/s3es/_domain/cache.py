"""A bounded, thread-safe cache of the latest state a process knows of each stream."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic

from s3es._domain.aggregate import S
from s3es._domain.repository import Loaded


class LoadedCache(Generic[S]):
    """The last ``size`` streams' states, least recently used dropped first (0: keeps none).

    A cached state may be stale: another process may have appended since. Whoever decides on
    it must either write conditionally (a stale decision then fails its PUT) or read what is
    new before acting on a decision that writes nothing.
    """

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"cache size must be >= 0, not {size}")
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, Loaded[S]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, stream_id: str) -> Loaded[S] | None:
        """The cached state of ``stream_id``, or None."""
        with self._lock:
            loaded = self._entries.get(stream_id)
            if loaded is not None:
                self._entries.move_to_end(stream_id)
            return loaded

    def put(self, stream_id: str, loaded: Loaded[S]) -> None:
        """Remember ``loaded``, unless a newer version of the stream is cached already."""
        if self.size == 0:
            return
        with self._lock:
            cached = self._entries.get(stream_id)
            if cached is None or cached.version <= loaded.version:
                self._entries[stream_id] = loaded
            self._entries.move_to_end(stream_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def discard(self, stream_id: str) -> None:
        """Forget ``stream_id``."""
        with self._lock:
            self._entries.pop(stream_id, None)
