"""How s3es logs: structured events, handed to the stdlib ``logging`` logger ``s3es.<module>``.

A library must not print unless the application asks. Every s3es log line goes to a stdlib
logger under ``s3es`` (``s3es.eventstore``, ``s3es.commands``...), which carries a
:class:`logging.NullHandler`: with no logging configured, nothing is printed, warnings
included, and the application decides with the standard levels and handlers.

What reaches the stdlib logger depends on whether the application configured structlog:

- Not configured: s3es renders each event as one line, ``append stream=... version=1 key=...``
  (the event, then its fields in logfmt), after checking the stdlib logger's level, so a debug
  line that nobody wants costs a level check.
- Configured (``structlog.configure``, or ``structlog.testing.capture_logs``): the event goes
  through the application's processors and wrapper class, so it stays structured, for
  ``structlog.stdlib.ProcessorFormatter`` or a capture, and is then handed to the same stdlib
  logger.

Lines logged while a command is handled carry ``stream`` and ``attempt``, bound with
``structlog.contextvars``; both chains merge them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any, TextIO, cast

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, WrappedLogger

#: The stdlib logger every s3es logger sits under.
ROOT = "s3es"

logging.getLogger(ROOT).addHandler(logging.NullHandler())

_FIELDS = structlog.processors.LogfmtRenderer(bool_as_flag=False)


def _render(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> Any:
    """The event, then its other fields in logfmt: the message a stdlib handler formats."""
    exc_info = event_dict.pop("exc_info", None)
    event = str(event_dict.pop("event", ""))
    fields = _FIELDS(logger, method_name, event_dict)
    message = f"{event} {fields}" if fields else event
    return (message,), ({"exc_info": exc_info} if exc_info else {})


#: s3es's own chain, used while the application has not configured structlog.
_PROCESSORS = [
    structlog.stdlib.filter_by_level,
    structlog.contextvars.merge_contextvars,
    _render,
]


class _Logger:
    """A logger that picks its chain at each use: the application's once structlog is configured.

    ``bind`` and the logging methods resolve the chain when called, so a logger made at import
    time follows a configuration (or a ``capture_logs``) made later, as structlog's own lazy
    loggers do.
    """

    __slots__ = ("_app", "_own")

    def __init__(self, name: str) -> None:
        stdlib = logging.getLogger(name)
        self._own = structlog.wrap_logger(
            stdlib,
            processors=_PROCESSORS,
            wrapper_class=structlog.stdlib.BoundLogger,
            context_class=dict,
            cache_logger_on_first_use=True,
        )
        # No processors, wrapper or context class given: structlog's configuration, read at use.
        self._app = structlog.wrap_logger(stdlib)

    def _current(self) -> Any:
        return self._app if structlog.is_configured() else self._own

    def bind(self, **values: Any) -> Any:
        """A bound logger of the current chain, with ``values`` in its context."""
        return self._current().bind(**values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not a logging method; and no recursion before __init__
            raise AttributeError(name)
        return getattr(self._current().bind(), name)


def get_logger(name: str) -> FilteringBoundLogger:
    """The logger of s3es's module ``name`` (``s3es.eventstore``...), under the stdlib logger.

    Raises ValueError if ``name`` is not ``s3es`` or below it: a line logged elsewhere would
    escape the ``NullHandler`` that keeps s3es quiet.
    """
    if name != ROOT and not name.startswith(f"{ROOT}."):
        raise ValueError(f"an s3es logger's name must start with {ROOT!r}, not {name!r}")
    return cast("FilteringBoundLogger", _Logger(name))


@contextlib.contextmanager
def log_to_stderr(level: int, *, stream: TextIO | None = None) -> Iterator[None]:
    """Within the block, log records print to ``stream`` (standard error): s3es's from ``level``.

    For a program's ``main`` (the CLI, the benchmarks): it adds a handler to the root logger, so
    other libraries' records print too, at the root's level (WARNING unless set), and sets the
    ``s3es`` logger's level. Both are put back after the block rather than configured for good
    with ``logging.basicConfig``, because a ``main`` is also called in-process, by tests and
    scripts. A program may configure logging; the library itself never does. Lines read
    ``LEVEL logger: event key=value...``.
    """
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root, ours = logging.getLogger(), logging.getLogger(ROOT)
    previous = ours.level
    root.addHandler(handler)
    ours.setLevel(level)
    try:
        yield
    finally:
        ours.setLevel(previous)
        root.removeHandler(handler)
