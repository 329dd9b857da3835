"""A writer process: one command on one stream, through the given endpoint; the soak kills it.

``python -m tests.soak.writer ENDPOINT BUCKET PREFIX STREAM_ID AMOUNT TAG`` handles
``Increment(AMOUNT)`` on counter stream ``STREAM_ID`` with ``{"command": TAG}`` as metadata,
through an event store with the change feed on. Its ids (events and append) are ``TAG.0``,
``TAG.1``..., so the soak can tell its chunk from any other. It prints one JSON line: what the
command came to. The soak points it at a proxy that holds the answer to its PUT and kills it
with SIGKILL while it waits, so it normally prints nothing.
"""

from __future__ import annotations

import itertools
import json
import sys

import boto3
from botocore.config import Config

from s3es import CommandHandler, EventStore, Repository, S3esError, S3ObjectStore
from tests.aggregates import FAST_RETRY, Counter, Increment

#: Longer than the proxy ever holds an answer: the writer waits until it is killed.
READ_TIMEOUT = 60


def main(argv: list[str]) -> int:
    """Run the command; print its outcome as JSON. 0 if it was handled or raised an s3es error."""
    endpoint, bucket, prefix, stream_id, amount, tag = argv
    session = boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto accepts any
        region_name="us-east-1",
    )
    store = S3ObjectStore.connect(
        bucket,
        endpoint_url=endpoint,
        session=session,
        client_config=Config(read_timeout=READ_TIMEOUT, retries={"total_max_attempts": 1}),
    )
    ids = (f"{tag}.{n}" for n in itertools.count())
    events = EventStore(store, prefix=prefix, feed=True, new_id=lambda: next(ids))
    handler = CommandHandler(Repository(events, Counter), FAST_RETRY)
    try:
        result = handler.handle(stream_id, Increment(int(amount)), metadata={"command": tag})
    except S3esError as error:
        print(json.dumps({"error": type(error).__name__, "detail": str(error)}))  # noqa: T201
    else:
        print(json.dumps({"version": result.version}))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
