"""Which problem answers each error an endpoint meets: the app's exception handlers.

:func:`answer_problem` is registered for each of :data:`ANSWERED`: the app's own
:class:`~examples.orders.web.problems.Problem`, the event store's conflicts, the aggregates'
refusals, pydantic's validation errors and Starlette's HTTP errors, each answered as the
problem :func:`problem_of` makes of it. Any other error is a bug: a 500, not a problem.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from examples.orders.domain import OrderError
from examples.orders.inventory import InventoryError
from examples.orders.web.gate import BodyTooLarge
from examples.orders.web.problems import Problem
from s3es.errors import RetriesExhausted, StreamDeleted, WrongExpectedVersion

#: The errors the app answers as problems.
ANSWERED: tuple[type[Exception], ...] = (
    Problem,
    WrongExpectedVersion,
    OrderError,
    InventoryError,
    RequestValidationError,
    RetriesExhausted,
    StreamDeleted,
    HTTPException,
)


def problem_of(error: Exception) -> Problem:  # noqa: PLR0911 - one answer per kind of error
    """The problem that answers ``error``, one of those the app's handlers are registered for."""
    match error:
        case Problem():
            return error
        case WrongExpectedVersion():
            expected = error.expected_version
            return Problem(
                "wrong-expected-version",
                str(error),
                fields={
                    "stream": str(error.stream),
                    "expected_version": (
                        expected if isinstance(expected, int) else expected.name.lower()
                    ),
                    "actual_version": error.actual_version,
                },
            )
        case OrderError():
            return _refused("order-refused", error.problem, error.field, order_id=error.order_id)
        case InventoryError():
            return _refused(
                "stock-refused", error.problem, error.field, warehouse_id=error.warehouse_id
            )
        case RequestValidationError():
            return Problem(
                "malformed-request",
                "the request does not have the shape this endpoint takes: see errors",
                fields={"errors": _validation_errors(error)},
            )
        case RetriesExhausted():
            return Problem(
                "busy-stream",
                f"{error}: send the request again (with its Idempotency-Key)",
                fields={"stream": str(error.stream)},
                headers={"Retry-After": "1"},
            )
        case StreamDeleted():
            return Problem("deleted-stream", str(error), fields={"stream": str(error.stream)})
        case BodyTooLarge():
            return Problem("body-too-large", str(error.detail))
        case HTTPException():
            detail = (
                error.detail if isinstance(error.detail, str) else HTTPStatus(error.status_code)
            )
            return Problem.blank(
                HTTPStatus(error.status_code), str(detail), headers=error.headers or {}
            )
        case _:
            raise TypeError(f"no problem answers {type(error).__qualname__}") from error


def _refused(kind: str, problem: str, field: str | None, **subject: str) -> Problem:
    """An aggregate's refusal: in its rule's words, about ``subject``, naming ``field`` if set."""
    named = {"field": field} if field else {}
    return Problem(kind, problem, fields={**subject, **named})


def _validation_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors, each as where (``loc``), what (``type``) and why (``msg``)."""
    return [
        {"loc": list(item["loc"]), "type": item["type"], "msg": item["msg"]}
        for item in error.errors()
    ]


async def answer_problem(request: Request, error: Exception) -> JSONResponse:
    """The exception handler: ``error`` answered as its problem about the request's path."""
    return problem_of(error).response(request.url.path)
