"""What the two S3 adapters (boto3's and aiobotocore's) share: S3's answers, read once.

Which answers are sent again after a pause (409 ConditionalRequestConflict, 503 SlowDown), which
mean "refused" to a conditional write (412, and 404 for ``If-Match``) or "missing" to a GET,
what an error becomes (:class:`~s3es.ObjectStoreError`, naming the operation, the key, S3's
code and message), which request kind each operation counts as, and how a listing asks for its
pages and reads them. The adapters differ only in how they send a request and wait.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from s3es.errors import ObjectStoreError

#: The request kind each S3 operation is counted as, by its botocore event name.
REQUEST_KINDS = {
    "PutObject": "put",
    "GetObject": "get",
    "ListObjectsV2": "list",
    "DeleteObject": "delete",
}
#: Answers after which S3 asks the client to send the same request again, with backoff.
#: botocore retries none of 409 and gives up on 503 after its own attempts.
RETRYABLE_CODES = frozenset({"ConditionalRequestConflict", "SlowDown", "ServiceUnavailable"})
_RETRYABLE_STATUSES = frozenset({409, 503})


def request_kind(event_name: str) -> str | None:
    """The kind of request (``put``...) a ``before-send.s3.<Operation>`` event is, if counted."""
    return REQUEST_KINDS.get(event_name.rsplit(".", 1)[-1])


def error_code(error: ClientError) -> str:
    """S3's error code (``PreconditionFailed``...), or "" if the answer had none."""
    return str(error.response.get("Error", {}).get("Code", ""))


def status(error: ClientError) -> int:
    """The HTTP status of the answer, or 0 if unknown."""
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def retryable(error: ClientError) -> bool:
    """Whether S3 asks for the same request again after a pause (409 or 503)."""
    return error_code(error) in RETRYABLE_CODES or status(error) in _RETRYABLE_STATUSES


def failure(operation: str, key: str, error: ClientError) -> ObjectStoreError:
    """``error`` as the port's ObjectStoreError, naming the operation, key, code and message."""
    message = error.response.get("Error", {}).get("Message", "")
    return ObjectStoreError(operation, key, f"{error_code(error) or status(error)}: {message}")


def put_refused(error: ClientError) -> bool:
    """Whether an ``If-None-Match: *`` PUT was refused because an object is there (412)."""
    return error_code(error) == "PreconditionFailed" or status(error) == 412  # noqa: PLR2004


def replace_refused(error: ClientError) -> bool:
    """Whether an ``If-Match`` PUT was refused: another ETag (412) or no object (404)."""
    refused = error_code(error) in {"PreconditionFailed", "NoSuchKey"}
    return refused or status(error) in {404, 412}


def missing(error: ClientError) -> bool:
    """Whether a GET found no object at the key (NoSuchKey, not NoSuchBucket: both are 404)."""
    return error_code(error) == "NoSuchKey"


def put_arguments(
    bucket: str, key: str, body: bytes, condition: Mapping[str, str], extra: Mapping[str, Any]
) -> dict[str, Any]:
    """The arguments of a conditional ``PutObject``: ``condition`` and the adapter's ``extra``."""
    return {
        "Bucket": bucket,
        "Key": key,
        "Body": body,
        "ContentType": "application/json",
        **condition,
        **extra,
    }


def listing_arguments(bucket: str, prefix: str, start_after: str | None) -> dict[str, Any]:
    """The arguments of a listing's first ``ListObjectsV2`` (``Delimiter="/"``)."""
    arguments: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
    if start_after is not None:
        arguments["StartAfter"] = start_after
    return arguments


def next_page(arguments: dict[str, Any], response: Mapping[str, Any]) -> dict[str, Any] | None:
    """The arguments of the page after ``response``, or None if it was the last."""
    token = response.get("NextContinuationToken")
    if not response.get("IsTruncated") or not token:
        return None
    return {**arguments, "ContinuationToken": token}


def listed_keys(response: Mapping[str, Any]) -> Iterator[str]:
    """The keys of a page."""
    for item in response.get("Contents", []):
        yield item["Key"]


def listed_prefixes(response: Mapping[str, Any]) -> Iterator[str]:
    """The common prefixes ("folders") of a page."""
    for item in response.get("CommonPrefixes", []):
        yield item["Prefix"]


def client_options(*, endpoint_url: str | None) -> dict[str, Any]:
    """The Config options both adapters' ``connect`` give the client they make.

    botocore's "standard" retry mode, 3 attempts in all (the adapter's own retries of 409 and
    503 come on top); path-style addressing for an endpoint URL; 50 pooled connections.
    """
    return {
        "retries": {"mode": "standard", "total_max_attempts": 3},
        "connect_timeout": 5,
        "read_timeout": 20,
        "max_pool_connections": 50,  # botocore's 10 is fewer than a busy process's threads
        "s3": {"addressing_style": "path"} if endpoint_url else {},
    }
