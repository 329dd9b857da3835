"""The body gate: ASGI middleware that refuses a request's body before anything reads it.

A body must be JSON (415 otherwise) and at most :data:`~examples.orders.web.bounds.MAX_BODY_BYTES`
long (413 otherwise), counted as it arrives: nothing reads, parses or decides more than that,
which keeps ``decide`` on the event loop cheap whatever a client sends.
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from examples.orders.limits import MAX_LINES
from examples.orders.web.bounds import JSON_TYPE, MAX_BODY_BYTES
from examples.orders.web.problems import Problem


class BodyTooLarge(HTTPException):
    """A request body passed MAX_BODY_BYTES as it arrived (raised by the receive channel).

    An HTTPException, so that FastAPI passes it on from where it reads the body, to the
    app's problem handler (413).
    """

    def __init__(self, limit: int) -> None:
        super().__init__(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"the request body passed {limit} bytes: it was refused unread (an order has at "
            f"most {MAX_LINES} lines)",
        )


def _is_json(content_type: str | None) -> bool:
    """Whether ``content_type`` (a Content-Type header) is JSON: application/json or +json."""
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == JSON_TYPE or (media.startswith("application/") and media.endswith("+json"))


class BodyGate:
    """ASGI middleware: a request's body must be JSON and at most ``max_bytes`` long.

    A body (a Content-Length above 0, or chunks) sent without a JSON Content-Type is answered
    415 before it is read: FastAPI would read it as bytes and answer a 422 about its shape. A
    Content-Length above ``max_bytes`` is answered 413 at once; a body sent in chunks is counted
    as they arrive, and the chunk that passes the limit raises :class:`BodyTooLarge` from the
    receive channel, so nothing reads, parses or decides more than ``max_bytes``.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse the request's body, or pass it on counted."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if (chunked or length not in {None, "0"}) and not _is_json(headers.get("content-type")):
            sent = headers.get("content-type")
            problem = Problem(
                "unsupported-media-type",
                f"send the body as JSON, with Content-Type: {JSON_TYPE}"
                + (f", not {sent!r}" if sent else " (none was sent)"),
                headers={"Accept": JSON_TYPE},
            )
            await problem.response(scope["path"])(scope, receive, send)
            return
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            problem = Problem("body-too-large", str(BodyTooLarge(self.max_bytes).detail))
            await problem.response(scope["path"])(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)
