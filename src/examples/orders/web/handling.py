"""How a request becomes a command, and the command's result an answer.

=====================================  ========================================================
HTTP                                   s3es
=====================================  ========================================================
``If-Match: "3"``                      ``expected_version=3``
``If-Match: *``                        ``ExpectedVersion.STREAM_EXISTS``
``If-None-Match: *`` (creating)        ``ExpectedVersion.NO_STREAM``
neither                                ``ExpectedVersion.ANY`` (decided on the latest state)
``ETag: "4"`` on an answer             the stream's version after the command
``Idempotency-Key: k``                 ``command_id="k"``: a repeat answers the first result
``Idempotent-Replayed: true``          ``CommandResult.duplicate``
=====================================  ========================================================

Every command endpoint goes through :func:`handle` and answers with :func:`answer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from examples.orders.web.problems import Problem
from examples.orders.web.requests import FINGERPRINT, checked_key, expected_version, fingerprint
from s3es import CommandResult
from s3es.aio import AsyncCommandHandler
from s3es.reactors import CORRELATION_ID

S = TypeVar("S")
C = TypeVar("C")
E = TypeVar("E")

#: The header that marks the answer to a repeated ``Idempotency-Key``.
REPLAYED = "Idempotent-Replayed"


async def handle(
    handler: AsyncCommandHandler[S, C, E],
    stream_id: str,
    command: C,
    *,
    route: str,
    body: BaseModel | None,
    correlation_id: str,
    if_match: str | None,
    if_none_match: str | None,
    idempotency_key: str | None,
) -> CommandResult[S, E]:
    """Handle ``command`` under the request's preconditions and idempotency key.

    A keyed command's events carry the request's :func:`fingerprint`, so that a key sent again
    with another request is told apart from a retry (422) instead of answered with the first
    request's result.
    """
    expected = expected_version(if_match, if_none_match)
    key = checked_key(idempotency_key)
    metadata: dict[str, Any] = {CORRELATION_ID: correlation_id, "service": "web"}
    if key is not None:
        metadata[FINGERPRINT] = fingerprint(route, body)
    result = await handler.handle(
        stream_id, command, metadata=metadata, expected_version=expected, command_id=key
    )
    if result.duplicate and result.recorded:
        first = result.recorded[0].metadata.get(FINGERPRINT)
        if first != metadata[FINGERPRINT]:
            raise Problem(
                "idempotency-key-reused",
                f"Idempotency-Key {key!r} was sent with another request to stream "
                f"{result.stream}, which stored it at version {result.version}: use a new key "
                "for a new request",
                fields={"stream": str(result.stream), "version": result.version},
            )
    return result


def answer(
    result: CommandResult[Any, Any],
    body: Mapping[str, Any],
    *,
    location: str | None = None,
) -> JSONResponse:
    """201 (with ``location``, if events were stored) or 200, with the stream's version.

    The body is ``body``, the version, and in ``stored`` the types of the events the command
    stored; the answer to a repeated Idempotency-Key is the first answer again, marked by a
    header.
    """
    created = location is not None and bool(result.recorded)
    headers = {"ETag": f'"{result.version}"'}
    if created and location is not None:
        headers["Location"] = location
    if result.duplicate:
        headers[REPLAYED] = "true"
    content = {
        **body,
        "version": result.version,
        "stored": [recorded.type for recorded in result.recorded],
    }
    status = HTTPStatus.CREATED if created else HTTPStatus.OK
    return JSONResponse(content, status_code=status, headers=headers)
