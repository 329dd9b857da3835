"""The S3 adapter of the object-store port, via boto3: AWS, MinIO, R2, a moto server..."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from s3es._base.backoff import Backoff
from s3es._base.logging import get_logger
from s3es._storage.metering import RequestCounter, RequestCounts
from s3es._storage.port import StoredObject, keys_wanted, list_page_size
from s3es._storage.s3_protocol import (
    client_options,
    error_code,
    failure,
    listed_keys,
    listed_prefixes,
    listing_arguments,
    missing,
    next_page,
    put_arguments,
    put_refused,
    replace_refused,
    request_kind,
    retryable,
)
from s3es._storage.selftest import require_conditional_writes
from s3es.errors import ObjectAlreadyExists, ObjectChanged, ObjectStoreError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_log = get_logger("s3es.s3")
_T = TypeVar("_T")


class S3ObjectStore:
    """An :class:`~s3es.storage.ObjectStore` on an S3 bucket through a boto3 client.

    Put-if-absent is ``PutObject`` with ``If-None-Match: *``, replace ``If-Match``. Requests are
    counted per HTTP attempt (retries and pages included) through the client's event hooks; a
    client shared with other code counts that code's S3 requests too. :meth:`connect` makes
    one with a client of its own::

        objects = S3ObjectStore.connect("my-bucket", self_test=True)

    Args:
        client: A boto3 S3 client.
        bucket: The bucket's name.
        put_args: Passed to every ``PutObject`` (``ServerSideEncryption``, ``SSEKMSKeyId``...).
        max_attempts: Attempts in all of a request answered 409 (ConditionalRequestConflict)
            or 503 (SlowDown), retried here with jittered backoff after botocore's own
            retries of connection errors and 5xx.
        backoff: The pauses between those attempts.
        sleep: How to pause (a test passes one that does not).

    Raises:
        ValueError: ``max_attempts`` is below 1.
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        put_args: Mapping[str, Any] | None = None,
        max_attempts: int = 5,
        backoff: Backoff = Backoff(initial=0.05, maximum=2.0),  # noqa: B008 - frozen value
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self.client = client
        self.bucket = bucket
        self._put_args = dict(put_args or {})
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._sleep = sleep
        self._rng = random.Random()
        self._counter = RequestCounter()
        client.meta.events.register("before-send.s3", self._count_request)

    @classmethod
    def connect(
        cls,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        client_config: Config | None = None,
        session: boto3.Session | None = None,
        self_test: bool = False,
        self_test_prefix: str = "",
        **options: Any,
    ) -> S3ObjectStore:
        """An S3ObjectStore with a client of its own, for AWS or any S3 endpoint URL.

        The client uses botocore's "standard" retry mode and, for an endpoint URL, path-style
        addressing.

        Args:
            bucket: The bucket's name.
            endpoint_url: An S3-compatible endpoint (MinIO, R2, a moto server); None for AWS.
            region_name: The client's region; None for the session's.
            client_config: Merged into the client's botocore ``Config``.
            session: The boto3 session to make the client from; None for a fresh one.
            self_test: First check that the bucket honours ``If-None-Match`` and ``If-Match``
                (see :func:`~s3es.ops.self_test`).
            self_test_prefix: Where the self-test writes its scratch keys: the event store's
                prefix.
            **options: Passed to ``S3ObjectStore(...)``.

        Returns:
            The store.

        Raises:
            InvalidConfiguration: With ``self_test``, the bucket does not honour a condition;
                names the bucket and the condition.
            ObjectStoreError: With ``self_test``, a request of the self-test failed.
            ValueError: ``max_attempts`` is below 1.
        """
        config = Config(**client_options(endpoint_url=endpoint_url))
        if client_config is not None:
            config = config.merge(client_config)
        client = (session or boto3.Session()).client(
            "s3", endpoint_url=endpoint_url, region_name=region_name, config=config
        )
        store = cls(client, bucket, **options)
        if self_test:
            require_conditional_writes(store, self_test_prefix, bucket=bucket)
        return store

    @property
    def requests(self) -> RequestCounts:
        """HTTP requests sent so far, by kind (retries and pages included).

        Returns:
            A snapshot of the counts.
        """
        return self._counter.snapshot()

    def _count_request(self, event_name: str, **_: Any) -> None:
        kind = request_kind(event_name)
        if kind is not None:
            self._counter.add(kind)

    def _send(self, operation: str, key: str, request: Callable[[], _T]) -> _T:
        """Send ``request``, again after 409 or 503 with backoff; re-raise other ClientErrors."""
        attempt = 1
        while True:
            try:
                return request()
            except ClientError as error:
                if not retryable(error) or attempt >= self._max_attempts:
                    raise
                _log.debug(
                    "s3_retry",
                    operation=operation,
                    key=key,
                    code=error_code(error),
                    attempt=attempt,
                )
                self._sleep(self._backoff.delay(attempt, self._rng))
                attempt += 1
            except BotoCoreError as error:
                raise ObjectStoreError(operation, key, str(error)) from error

    def _put(self, key: str, body: bytes, condition: Mapping[str, str]) -> str:
        """``PutObject`` with ``condition`` (IfNoneMatch or IfMatch); 409 and 503 retried."""
        response = self._send(
            "PUT",
            key,
            lambda: self.client.put_object(
                **put_arguments(self.bucket, key, body, condition, self._put_args)
            ),
        )
        return str(response["ETag"])

    def put_if_absent(self, key: str, body: bytes) -> str:
        """Store ``body`` at ``key`` only if no object is there: ``If-None-Match: *``.

        Args:
            key: Where to store it.
            body: The object's bytes.

        Returns:
            The stored object's ETag.

        Raises:
            ObjectAlreadyExists: S3 answered 412: an object is there.
            ObjectStoreError: Any other failure, after the retries.
        """
        try:
            return self._put(key, body, {"IfNoneMatch": "*"})
        except ClientError as error:
            if put_refused(error):
                raise ObjectAlreadyExists(key) from error
            raise failure("PUT", key, error) from error

    def replace(self, key: str, body: bytes, *, etag: str) -> str:
        """Store ``body`` at ``key`` only if the object there has ``etag``: ``If-Match``.

        Args:
            key: Where to store it.
            body: The object's new bytes.
            etag: The ETag the object there must have.

        Returns:
            The stored object's new ETag.

        Raises:
            ObjectChanged: S3 answered 412 (another ETag) or 404 (no object).
            ObjectStoreError: Any other failure, after the retries.
        """
        try:
            return self._put(key, body, {"IfMatch": etag})
        except ClientError as error:
            if replace_refused(error):
                raise ObjectChanged(key) from error
            raise failure("PUT", key, error) from error

    def get(self, key: str) -> StoredObject | None:
        """Read the object at ``key``: ``GetObject``.

        Args:
            key: The object's key.

        Returns:
            Its bytes and ETag, or None if S3 answered NoSuchKey.

        Raises:
            ObjectStoreError: Any other failure (NoSuchBucket included), after the retries.
        """

        def request() -> StoredObject:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            return StoredObject(body=response["Body"].read(), etag=str(response["ETag"]))

        try:
            return self._send("GET", key, request)
        except ClientError as error:
            if missing(error):
                return None
            raise failure("GET", key, error) from error

    def list_keys(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> Iterator[str]:
        """Keys directly under ``prefix``: ``ListObjectsV2`` with ``Delimiter="/"``, paged.

        Common prefixes take a place in a page too: the first page asks for ``limit`` + 32
        entries, the next ones for 1,000 (``MaxKeys``).

        Args:
            prefix: The folder to list; it ends in ``/``.
            start_after: List only the keys after this one.
            limit: List at most this many keys (at least 1); None for all.

        Yields:
            Each key, whole (prefix included), in ascending UTF-8 byte order.

        Raises:
            ValueError: ``limit`` is below 1.
            ObjectStoreError: A LIST failed, after the retries.
        """
        left = keys_wanted(limit)
        arguments: dict[str, Any] | None = listing_arguments(self.bucket, prefix, start_after)
        first = True
        while left and arguments is not None:
            arguments["MaxKeys"] = list_page_size(left, first=first)
            first = False
            response = self._list(prefix, arguments)
            for key in listed_keys(response):
                yield key
                left -= 1
                if not left:
                    return
            arguments = next_page(arguments, response)

    def list_prefixes(self, prefix: str) -> Iterator[str]:
        """The "folders" directly under ``prefix``: ``ListObjectsV2``'s ``CommonPrefixes``.

        One LIST (with ``Delimiter="/"``) per page of 1,000 entries, lazily.

        Args:
            prefix: The folder to list; it ends in ``/``.

        Yields:
            Each folder, whole (prefix included) and ending in ``/``, in ascending order.

        Raises:
            ObjectStoreError: A LIST failed, after the retries.
        """
        arguments: dict[str, Any] | None = listing_arguments(self.bucket, prefix, None)
        while arguments is not None:
            response = self._list(prefix, arguments)
            yield from listed_prefixes(response)
            arguments = next_page(arguments, response)

    def _list(self, prefix: str, arguments: dict[str, Any]) -> Mapping[str, Any]:
        """One page of ``ListObjectsV2``; 409 and 503 retried, other errors ObjectStoreError."""
        try:
            return self._send(
                "LIST", prefix, functools.partial(self.client.list_objects_v2, **arguments)
            )
        except ClientError as error:
            raise failure("LIST", prefix, error) from error

    def delete(self, key: str) -> None:
        """Remove the object at ``key``: ``DeleteObject``; no error if there is none.

        Args:
            key: The object's key.

        Raises:
            ObjectStoreError: The request failed, after the retries.
        """
        try:
            self._send(
                "DELETE", key, lambda: self.client.delete_object(Bucket=self.bucket, Key=key)
            )
        except ClientError as error:
            raise failure("DELETE", key, error) from error
