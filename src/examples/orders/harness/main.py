"""``python -m examples.orders``: the command line of the contention run.

It opens an S3 bucket (an embedded moto server's by default) and a read-model store (SQLite
by default, see :mod:`~.stores`), wires the :class:`~examples.orders.app.Shop` on them, runs
the :class:`~.contention.Contention`, checks it and tells it (:func:`play`). s3es's log lines
go to stderr: warnings, and with ``--verbose`` each conflict and recovered append too.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from examples.orders.app import FULFILMENT_SHARDS, Shop
from examples.orders.harness.checks import check
from examples.orders.harness.contention import STOCK_SHARE, Contention
from examples.orders.harness.report import report
from examples.orders.harness.stores import (
    KINDS,
    POSTGRES_URL_VARIABLE,
    SetupError,
    open_read_models,
)
from s3es import S3ObjectStore
from s3es.errors import InvalidStreamName
from s3es.eventstore import StreamKeys

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType

DEFAULT_BUCKET = "s3es-demo"
DEFAULT_ORDERS = 8
DEFAULT_WORKERS = 4


def play(run: Contention, out: Callable[[str], None] = print, *, verbose: bool = False) -> int:
    """Run, check and tell ``run``; 0 if every check passed, else 1."""
    stock = ", ".join(f"{item.sku} {item.quantity}" for item in run.stock)
    out(
        f"  stock   {run.shop.warehouse_id}: {STOCK_SHARE:.0%} of what"
        f" {len(run.plan)} orders ask for, {stock}"
    )
    run.run()
    with run.phase("checks"):
        checks = check(run)
    lines, status = report(run, checks, verbose=verbose)
    for line in lines:
        out(line)
    return status


def positive_int(text: str) -> int:
    """An argparse type: an int of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _prefix(text: str) -> str:
    try:
        return StreamKeys(text).prefix
    except InvalidStreamName as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def build_parser() -> argparse.ArgumentParser:
    """The command line of the demo."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.orders",
        description=(
            "Customers pay their orders while a reactor fills them (an order placed reserves "
            "stock on the warehouse's stream; stock reserved and a payment ship the order; a "
            "shortage cancels it), all writing concurrently to the same order streams in S3, "
            "while projectors keep the read models (a summary per order, the stock per product) "
            "in a read-model store; then every stream, flow and document is checked against the "
            "events read back."
        ),
        epilog=(
            "Without --endpoint-url, moto's S3 server is started on 127.0.0.1 for the run (its "
            "conditional writes serialised by a lock, because moto alone is not atomic), the "
            "bucket is created there, and the server is stopped at the end. With --endpoint-url "
            "(AWS, MinIO, any S3-compatible endpoint), credentials come from the usual AWS "
            "sources (environment, ~/.aws); the bucket is created only if HeadBucket answers "
            "404, nothing else is created, objects are written only under the prefix, and "
            "nothing is deleted."
        ),
    )
    parser.add_argument(
        "--endpoint-url",
        help="an S3 endpoint to use instead of the embedded one (e.g. https://s3.amazonaws.com)",
    )
    parser.add_argument(
        "--bucket", default=DEFAULT_BUCKET, help=f"bucket name (default: {DEFAULT_BUCKET})"
    )
    parser.add_argument(
        "--prefix",
        type=_prefix,
        help="key prefix of every stream (default: demo-<UTC timestamp>-<random>, new each run)",
    )
    parser.add_argument(
        "--orders",
        type=positive_int,
        default=DEFAULT_ORDERS,
        help=f"how many orders (default: {DEFAULT_ORDERS})",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=DEFAULT_WORKERS,
        help=f"threads of customers paying (default: {DEFAULT_WORKERS})",
    )
    parser.add_argument(
        "--seed", type=int, default=7, help="seed of the orders' contents (default: 7)"
    )
    parser.add_argument(
        "--read-models",
        choices=KINDS,
        default=KINDS[0],
        help="where the read models' documents are kept: an SQLite file, one S3 object per"
        " document beside the events, or PostgreSQL (default: sqlite)",
    )
    parser.add_argument(
        "--sqlite-file",
        metavar="PATH",
        help="the SQLite database of --read-models sqlite (default: a file in a temporary"
        " directory, removed at the end)",
    )
    parser.add_argument(
        "--postgres-url",
        metavar="URL",
        help=f"the database of --read-models postgres (default: ${POSTGRES_URL_VARIABLE}; without"
        " it, a server started by pgserver for the run, if installed)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="tell the details (each order, each phase's requests, the projectors' passes) and"
        " show s3es's info-level log lines on stderr (each conflict, each recovered append)",
    )
    return parser


@contextlib.contextmanager
def s3es_logging(level: int) -> Iterator[None]:
    """Within the block, s3es's log lines of ``level`` and above go to stderr.

    The stdlib logger ``s3es`` gets a handler and the level for the block only: a program's
    ``main`` configures logging, a library does not.
    """
    logger = logging.getLogger("s3es")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def ensure_bucket(client: S3Client, bucket: str) -> bool:
    """Create ``bucket`` if HeadBucket answers 404; True if it was created."""
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
            raise
    else:
        return False
    region = client.meta.region_name
    if region and region != "us-east-1":
        location = cast("BucketLocationConstraintType", region)
        client.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": location}
        )
    else:
        client.create_bucket(Bucket=bucket)
    return True


def _open_store(
    arguments: argparse.Namespace, stack: contextlib.ExitStack, out: Callable[[str], None]
) -> S3ObjectStore:
    """The object store of the run: on the given endpoint, or on an embedded one."""
    # Every customer thread, reactor thread and the projectors may hold a connection at once.
    config = Config(max_pool_connections=arguments.workers + FULFILMENT_SHARDS + 4)
    if arguments.endpoint_url is None:
        try:
            from s3es.testing.embedded_s3 import EmbeddedS3  # noqa: PLC0415 - needs moto
        except ImportError as error:
            raise SetupError(f"{error}; or pass --endpoint-url") from error
        server = stack.enter_context(EmbeddedS3())
        store = server.object_store(arguments.bucket, client_config=config)
        out(f"  S3      embedded moto server at {server.endpoint_url}, stopped at the end")
        out(
            "          (moto alone is not atomic: its conditional PUTs are serialised by a lock"
            " here)"
        )
    else:
        store = S3ObjectStore.connect(
            arguments.bucket, endpoint_url=arguments.endpoint_url, client_config=config
        )
        out(f"  S3      {arguments.endpoint_url}")
    created = ensure_bucket(store.client, arguments.bucket)
    out(
        f"  bucket  {arguments.bucket} ({'created' if created else 'exists'}),"
        f" every key under {arguments.prefix}/"
    )
    return store


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; the exit status: 0 if every check passed, 1 if one failed, 2 on setup."""
    arguments = build_parser().parse_args(argv)
    out = print
    if arguments.prefix is None:
        arguments.prefix = f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    with s3es_logging(logging.INFO if arguments.verbose else logging.WARNING):
        out("s3es orders demo: customers pay while a reactor fills their orders, at once")
        with contextlib.ExitStack() as stack:
            try:
                store = _open_store(arguments, stack, out)
            except (BotoCoreError, ClientError) as error:
                print(f"error: cannot use bucket {arguments.bucket!r}: {error}", file=sys.stderr)
                return 2
            except SetupError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
            try:
                read_models = open_read_models(arguments, store, stack, out)
            except SetupError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
            shop = Shop(store, prefix=arguments.prefix, read_models=read_models)
            run = Contention(
                shop, orders=arguments.orders, workers=arguments.workers, seed=arguments.seed
            )
            return play(run, out, verbose=arguments.verbose)
