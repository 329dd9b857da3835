"""How s3es logs: structured events through structlog, under the stdlib logger ``s3es``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import structlog


def get_logger(name: str) -> Any:
    """The logger of s3es's module ``name`` (``s3es.eventstore``...)."""
    return structlog.get_logger(name)


@contextlib.contextmanager
def log_level(level: int) -> Iterator[None]:
    """Within the block, structlog prints only lines at ``level`` (a ``logging`` level) and above.

    This changes structlog's global configuration, so it is meant for a command-line program's
    ``main``, not for a library. The configuration before the block is restored after it.
    """
    was_configured, previous = structlog.is_configured(), structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
    try:
        yield
    finally:
        if was_configured:
            structlog.configure(**previous)
        else:
            structlog.reset_defaults()
