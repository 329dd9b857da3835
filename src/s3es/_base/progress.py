"""The progress callback that long operations (verifying, rebuilding) report to."""

from __future__ import annotations

from collections.abc import Callable

#: A callback that long operations call after each unit of work: ``(done, total)``.
Progress = Callable[[int, int], None]
