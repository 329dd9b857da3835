"""The ``s3es`` command: operations on the streams of a bucket."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from s3es._aggregate import Aggregate
from s3es._errors import S3esError
from s3es._eventstore import EventStore
from s3es._logging import log_level
from s3es._objectstore import ObjectStore, measure_requests
from s3es._repository import Repository
from s3es._s3 import S3ObjectStore

#: Exit status when the command line or the aggregate named in it is wrong.
USAGE_ERROR = 2


def load_aggregate(spec: str) -> type[Aggregate[Any, Any, Any]]:
    """The Aggregate subclass named ``module:Class``; ValueError saying what is wrong."""
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"--aggregate must be module:Class, not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"--aggregate {spec!r}: cannot import {module_name!r}: {error}") from error
    found = getattr(module, class_name, None)
    if not (isinstance(found, type) and issubclass(found, Aggregate)):
        # A wrong command line, reported as a usage error: ValueError, not TypeError.
        raise ValueError(  # noqa: TRY004
            f"--aggregate {spec!r}: {module_name} has no Aggregate {class_name!r}"
        )
    return found


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3es", description="Operations on the event streams s3es keeps in an S3 bucket."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    compact = commands.add_parser(
        "compact",
        help="merge each stream's chunks into one (safe while others append; deletes nothing)",
        description="Merge each named stream's chunks into one chunk holding every event and a "
        "fresh snapshot, so a full read is one GET. Safe to run while writers append, and to "
        "run again. Deletes nothing.",
    )
    compact.add_argument("stream_ids", nargs="+", metavar="STREAM_ID")
    compact.add_argument(
        "--aggregate", required=True, help="the aggregate of the streams, as module:Class"
    )
    compact.add_argument("--bucket", required=True)
    compact.add_argument("--prefix", default="", help="the event store's prefix (default: none)")
    compact.add_argument("--endpoint-url", help="an S3-compatible endpoint (default: AWS)")
    compact.add_argument("--region", help="the bucket's region (default: the AWS config's)")
    compact.add_argument("--verbose", action="store_true", help="print s3es's info log lines")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    store: ObjectStore | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Run the ``s3es`` command; return its exit status. ``store`` replaces the S3 bucket."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    try:
        aggregate = load_aggregate(arguments.aggregate)
    except ValueError as error:
        parser.error(str(error))
    objects = store or S3ObjectStore.connect(
        arguments.bucket, endpoint_url=arguments.endpoint_url, region_name=arguments.region
    )
    repository = Repository(EventStore(objects, prefix=arguments.prefix), aggregate)
    failed = 0
    level = logging.INFO if arguments.verbose else logging.WARNING
    with log_level(level), measure_requests() as meter:
        for stream_id in arguments.stream_ids:
            try:
                result = repository.compact(stream_id)
            except S3esError as error:
                failed += 1
                print(f"{stream_id!r}: {error}", file=out)
                continue
            if result.key is None:
                what = "nothing to merge" if result.version else "no such stream"
            else:
                what = f"merged {result.merged} chunks ({result.events} events) into {result.key}"
            print(f"{result.stream}: {what}; {result.requests}", file=out)
    print(f"requests: {meter.counts} (${meter.counts.cost():.6f})", file=out)
    return 1 if failed else 0
