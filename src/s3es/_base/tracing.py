"""OpenTelemetry spans for s3es's operations, when the application has OpenTelemetry.

s3es depends on no part of OpenTelemetry. With the ``otel`` extra (``opentelemetry-api``)
installed, the operations decorated with :func:`traced` open a span each, from the tracer
``opentelemetry.trace.get_tracer("s3es", <version>)`` of the global tracer provider: s3es
never configures a provider or an exporter, the application does (until it does, the spans
record nothing). Without ``opentelemetry`` importable, :func:`traced` hands each function back
unchanged and :func:`annotate` does nothing: no import, no wrapper, no cost.

Span names follow OpenTelemetry's ``{verb} {object}`` guidance, with a low-cardinality object
(``handle PlaceOrder``, ``load order``, ``append order``, ``catch_up orders``); what varies
per call (the stream id, versions, counts) goes in attributes under ``s3es.*``. The ``db.*``
and ``messaging.*`` semantic conventions describe one client call to a database or a broker;
an s3es span is an operation above the object store, made of several such calls (a command
is a LIST, a GET and PUTs, retried), so their attributes would mislead tools that read them.
The object-store requests themselves are the botocore instrumentation's spans, children of
s3es's. An error that leaves a span is recorded on it as OpenTelemetry's error conventions say
(an ``exception`` event, status ERROR, ``error.type``) and raised unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ParamSpec, TypeAlias, TypeVar, cast

#: The values a span attribute can hold.
AttributeValue: TypeAlias = (
    str | bool | int | float | Sequence[str] | Sequence[bool] | Sequence[int] | Sequence[float]
)
Attributes: TypeAlias = Mapping[str, AttributeValue]

_P = ParamSpec("_P")
_R = TypeVar("_R")

try:
    from opentelemetry import context as _context
    from opentelemetry import trace as _trace
except ImportError:  # the otel extra is not installed: tracing is off, and costs nothing
    _context = _trace = None  # type: ignore[assignment]

#: Whether s3es opens spans: True when ``opentelemetry`` (the API) is importable.
ENABLED = _trace is not None


def _tracer() -> Any:
    """The tracer named s3es, at this version, of the global tracer provider (a proxy until set)."""
    from importlib.metadata import version  # noqa: PLC0415 - only when tracing is on

    return _trace.get_tracer("s3es", version("s3es"))


_TRACER = _tracer() if ENABLED else None


def _active_tracer() -> Any:
    """s3es's tracer, or None while the application has set no tracer provider.

    Until it does, OpenTelemetry's spans are no-ops that carry the caller's context on: s3es
    then skips them rather than pay for them (a few microseconds each). A process sets its
    provider once, so once one is set the answer is kept.
    """
    global _ACTIVE  # noqa: PLW0603 - set once, as the global tracer provider is
    if _ACTIVE is None and not isinstance(_trace.get_tracer_provider(), _NO_PROVIDER):
        _ACTIVE = _TRACER
    return _ACTIVE


#: s3es's tracer once the application has set a tracer provider.
_ACTIVE: Any = None
#: The providers that stand for none: the proxy before one is set, or the explicit no-op.
_NO_PROVIDER = (_trace.ProxyTracerProvider, _trace.NoOpTracerProvider) if ENABLED else ()


def traced(
    start: Callable[..., tuple[str, Attributes]],
    *,
    end: Callable[[Any], Attributes] | None = None,
    failed: Callable[[Exception], Attributes] | None = None,
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Run the decorated function in a span of its own, the current one while it runs.

    ``start`` is called with the function's arguments (so its parameters must bear the same
    names) and returns the span's name and first attributes; ``end`` gives the attributes
    read from the return value, ``failed`` those read from an exception (after which the
    exception is recorded on the span and raised unchanged). The hooks run only for a span
    that records. Without OpenTelemetry, the function itself is returned. A coroutine
    function's span lasts until its coroutine is done, and ``end`` reads what it returns.
    """

    def decorate(function: Callable[_P, _R]) -> Callable[_P, _R]:
        if _TRACER is None:
            return function

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def in_async_span(*args: _P.args, **kwargs: _P.kwargs) -> Any:
                tracer = _active_tracer()
                if tracer is None:
                    return await function(*args, **kwargs)
                with _span(tracer, start(*args, **kwargs), failed) as span:
                    value = await function(*args, **kwargs)
                    if end is not None and span.is_recording():
                        span.set_attributes(end(value))
                    return value

            return cast("Callable[_P, _R]", in_async_span)

        @functools.wraps(function)
        def in_span(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            tracer = _active_tracer()
            if tracer is None:
                return function(*args, **kwargs)
            with _span(tracer, start(*args, **kwargs), failed) as span:
                value = function(*args, **kwargs)
                if end is not None and span.is_recording():
                    span.set_attributes(end(value))
                return value

        return in_span

    return decorate


@contextlib.contextmanager
def _span(
    tracer: Any,
    opening: tuple[str, Attributes],
    failed: Callable[[Exception], Attributes] | None,
) -> Iterator[Any]:
    """A span named and first annotated by ``opening``, current inside the block.

    An exception that leaves the block is recorded on the span (with ``failed``'s attributes)
    and raised unchanged.
    """
    name, attributes = opening
    span = tracer.start_span(name, attributes=attributes)
    token = _context.attach(_trace.set_span_in_context(span))
    try:
        yield span
    except Exception as error:
        if span.is_recording():
            if failed is not None:
                span.set_attributes(failed(error))
            _record_error(span, error)
        raise
    finally:
        _context.detach(token)
        span.end()


def annotate(attributes: Callable[[], Attributes]) -> None:
    """Add ``attributes()`` to the current span, if it records; else do nothing (not call it)."""
    if not ENABLED:
        return
    span = _trace.get_current_span()
    if span.is_recording():
        span.set_attributes(attributes())


def _record_error(span: Any, error: Exception) -> None:
    """``error`` on ``span``: an ``exception`` event, status ERROR, ``error.type`` (its class)."""
    cls = type(error)
    span.record_exception(error)
    span.set_attribute("error.type", f"{cls.__module__}.{cls.__qualname__}")
    span.set_status(_trace.Status(_trace.StatusCode.ERROR, f"{cls.__qualname__}: {error}"))


def request_attributes(counts: Any) -> dict[str, int]:
    """``s3es.request.<kind>_count`` for each kind of ``counts`` (a RequestCounts)."""
    return {
        "s3es.request.put_count": counts.put,
        "s3es.request.get_count": counts.get,
        "s3es.request.list_count": counts.list,
        "s3es.request.delete_count": counts.delete,
    }
