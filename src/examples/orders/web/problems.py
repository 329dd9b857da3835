"""Problem details (RFC 9457): the kinds of problem the app answers, and their pages.

Every error the app answers is a :class:`Problem`, served as ``application/problem+json``:
``type``, ``title``, ``status``, ``detail``, ``instance`` (the request's path) and members of
its own (``actual_version``...). Each ``type`` is ``/problems/{kind}``, one of
:data:`PROBLEM_TYPES`, a page :data:`router` serves, whose title the problem carries. A
problem of no type (``about:blank``, Starlette's own 404 and 405) is titled with the reason
phrase of its status line. Which problem answers which error is
:mod:`~examples.orders.web.errors`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import attrs
from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from examples.orders.limits import MAX_LINES
from examples.orders.web.bounds import JSON_TYPE, MAX_BODY_BYTES, MAX_IDEMPOTENCY_KEY

PROBLEM_JSON = "application/problem+json"


@attrs.frozen
class ProblemType:
    """A kind of problem the app answers: its status, its title, and what a client can do."""

    status: HTTPStatus
    title: str
    description: str


#: Every kind of problem the app answers, by the last segment of its ``type``
#: (``/problems/{kind}``, a page the app serves).
PROBLEM_TYPES: dict[str, ProblemType] = {
    "wrong-expected-version": ProblemType(
        HTTPStatus.PRECONDITION_FAILED,
        "Wrong expected version",
        "The stream is not at the version If-Match or If-None-Match expected, so nothing was "
        "stored. actual_version says where it is: read it again and decide again.",
    ),
    "order-refused": ProblemType(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "Order refused",
        "The order's rules refused the command; nothing was stored. detail says why, and "
        "field names the field out of bounds, if that is why.",
    ),
    "stock-refused": ProblemType(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "Stock refused",
        "The warehouse's rules refused the command; nothing was stored. detail says why, and "
        "field names the field out of bounds, if that is why.",
    ),
    "malformed-request": ProblemType(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "Malformed request",
        "The path, the query or the body does not have the shape the endpoint takes, or a "
        "value is out of bounds; nothing was decided. errors lists each problem and where it "
        "is (loc).",
    ),
    "malformed-precondition": ProblemType(
        HTTPStatus.BAD_REQUEST,
        "Malformed precondition",
        'If-Match takes * or one ETag of this API (a quoted version, "3"); If-None-Match takes '
        "only *; a request sends one of them at most.",
    ),
    "malformed-idempotency-key": ProblemType(
        HTTPStatus.BAD_REQUEST,
        "Malformed idempotency key",
        f"An Idempotency-Key is 1 to {MAX_IDEMPOTENCY_KEY} characters long.",
    ),
    "idempotency-key-reused": ProblemType(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "Idempotency key reused",
        "The Idempotency-Key was sent before with another request, which the stream stored at "
        "version; this one was not stored. Use a new key for a new request.",
    ),
    "busy-stream": ProblemType(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "Busy stream",
        "Every attempt lost a race for the stream; nothing was stored. Send the request again "
        "(with its Idempotency-Key) after Retry-After seconds.",
    ),
    "deleted-stream": ProblemType(
        HTTPStatus.GONE,
        "Deleted stream",
        "The stream was deleted: it can be neither read nor written again.",
    ),
    "unknown-order": ProblemType(
        HTTPStatus.NOT_FOUND,
        "Unknown order",
        "The order summaries hold no such order: it was never placed, or placed since the "
        "last projector pass (poll again).",
    ),
    "unknown-product": ProblemType(
        HTTPStatus.NOT_FOUND,
        "Unknown product",
        "No warehouse's stock read model holds the SKU (or it is not projected yet).",
    ),
    "body-too-large": ProblemType(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "Body too large",
        f"A request body is at most {MAX_BODY_BYTES} bytes; this one was refused unread, and "
        f"nothing was decided. An order has at most {MAX_LINES} lines.",
    ),
    "unsupported-media-type": ProblemType(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "Unsupported media type",
        f"A request body is JSON, sent with Content-Type: {JSON_TYPE}; nothing was decided.",
    ),
}


class Problem(Exception):  # noqa: N818 - an HTTP problem, not a failure of the app
    """An error answered as an RFC 9457 problem of one of :data:`PROBLEM_TYPES`.

    ``kind`` names the type (KeyError if it is none of them): the problem's ``type`` is
    ``/problems/{kind}``, its status and title the type's. ``fields`` are the problem's own
    members (``actual_version``...); ``headers`` go with the answer. :meth:`blank` makes a
    problem of no type (``about:blank``).
    """

    def __init__(
        self,
        kind: str,
        detail: str,
        *,
        fields: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        status: HTTPStatus | None = None,
    ) -> None:
        super().__init__(detail)
        if kind:
            problem_type = PROBLEM_TYPES[kind]
            status, self.title = problem_type.status, problem_type.title
        elif status is None:
            raise ValueError("a problem of no type (about:blank) needs its status")
        else:
            # Python's reason phrase, which uvicorn sends on the status line: the two agree.
            self.title = status.phrase
        self.kind = kind
        self.status = status
        self.detail = detail
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})

    @classmethod
    def blank(
        cls, status: HTTPStatus, detail: str, *, headers: Mapping[str, str] | None = None
    ) -> Problem:
        """A problem of type ``about:blank``, titled with ``status``'s reason phrase."""
        return cls("", detail, headers=headers, status=status)

    def response(self, instance: str) -> JSONResponse:
        """The problem as an ``application/problem+json`` answer about ``instance``."""
        body = {
            "type": f"/problems/{self.kind}" if self.kind else "about:blank",
            "title": self.title,
            "status": int(self.status),
            "detail": self.detail,
            "instance": instance,
            **self.fields,
        }
        return JSONResponse(
            body, status_code=self.status, media_type=PROBLEM_JSON, headers=self.headers
        )


#: The pages of the problem types: ``GET /problems/{kind}``.
router = APIRouter()


@router.get("/problems/{kind}", response_class=PlainTextResponse)
def problem_type(kind: str) -> PlainTextResponse:
    """What a problem ``type`` means: its title, its status and what a client can do."""
    described = PROBLEM_TYPES.get(kind)
    if described is None:
        raise Problem.blank(HTTPStatus.NOT_FOUND, f"no problem type {kind!r}")
    status = described.status
    return PlainTextResponse(
        f"{described.title}\n\n{int(status)} {status.phrase}\n\n{described.description}\n"
    )
