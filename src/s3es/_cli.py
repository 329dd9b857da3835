"""The ``s3es`` command: operations on the streams of a bucket."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from s3es._aggregate import Aggregate
from s3es._errors import S3esError
from s3es._eventstore import EventStore
from s3es._lifecycle import apply_tiering_rule, tiering_rule
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
    bucket = argparse.ArgumentParser(add_help=False)
    bucket.add_argument("--bucket", required=True)
    bucket.add_argument("--prefix", default="", help="the event store's prefix (default: none)")
    bucket.add_argument("--endpoint-url", help="an S3-compatible endpoint (default: AWS)")
    bucket.add_argument("--region", help="the bucket's region (default: the AWS config's)")
    bucket.add_argument("--verbose", action="store_true", help="print s3es's info log lines")
    streams = argparse.ArgumentParser(add_help=False)
    streams.add_argument("stream_ids", nargs="+", metavar="STREAM_ID")
    streams.add_argument(
        "--aggregate", required=True, help="the aggregate of the streams, as module:Class"
    )
    parser = argparse.ArgumentParser(
        prog="s3es", description="Operations on the event streams s3es keeps in an S3 bucket."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "compact",
        parents=[bucket, streams],
        help="merge each stream's chunks into one (safe while others append; deletes nothing)",
        description="Merge each named stream's chunks into one chunk holding every event and a "
        "fresh snapshot, so a full read is one GET. Safe to run while writers append, and to "
        "run again. Deletes nothing.",
    )
    commands.add_parser(
        "delete",
        parents=[bucket, streams],
        help="delete streams: a tombstone at the next version, then every chunk below it",
        description="Delete each named stream: store a tombstone as its next version (from "
        "then on it can be neither read nor appended to), then delete every chunk below it. "
        "Safe to run while writers append, and to run again.",
    )
    tiering = commands.add_parser(
        "tiering",
        parents=[bucket],
        help="print, or apply, the lifecycle rule moving large chunks to Intelligent-Tiering",
        description="Print the S3 lifecycle rule that moves the event store's chunks of 128 KB "
        "or more to S3 Intelligent-Tiering; with --apply, put it into the bucket's lifecycle "
        "configuration (other rules are kept; safe to run again).",
    )
    tiering.add_argument("--apply", action="store_true", help="apply the rule to the bucket")
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
    if arguments.command == "tiering" and not arguments.apply:
        print(json.dumps(tiering_rule(arguments.prefix), indent=2), file=out)
        return 0
    objects = store or S3ObjectStore.connect(
        arguments.bucket, endpoint_url=arguments.endpoint_url, region_name=arguments.region
    )
    with log_level(logging.INFO if arguments.verbose else logging.WARNING):
        if arguments.command == "tiering":
            if not isinstance(objects, S3ObjectStore):
                parser.error("tiering --apply needs an S3 bucket")
            try:
                rules = apply_tiering_rule(objects.client, arguments.bucket, arguments.prefix)
            except S3esError as error:
                print(f"{arguments.bucket}: {error}", file=out)
                return 1
            print(f"{arguments.bucket}: {len(rules)} lifecycle rules, among them:", file=out)
            print(json.dumps(rules[-1], indent=2), file=out)
            return 0
        try:
            aggregate = load_aggregate(arguments.aggregate)
        except ValueError as error:
            parser.error(str(error))
        repository = Repository(EventStore(objects, prefix=arguments.prefix), aggregate)
        act = _deleted if arguments.command == "delete" else _compacted
        return _for_each(arguments.stream_ids, lambda stream_id: act(repository, stream_id), out)


def _for_each(stream_ids: Sequence[str], act: Callable[[str], str], out: TextIO) -> int:
    """Run ``act`` on each stream, printing its line or its error; then the requests sent."""
    failed = 0
    with measure_requests() as meter:
        for stream_id in stream_ids:
            try:
                print(act(stream_id), file=out)
            except S3esError as error:
                failed += 1
                print(f"{stream_id!r}: {error}", file=out)
    print(f"requests: {meter.counts} (${meter.counts.cost():.6f})", file=out)
    return 1 if failed else 0


def _compacted(repository: Repository[Any, Any, Any], stream_id: str) -> str:
    result = repository.compact(stream_id)
    if result.key is None:
        what = "nothing to merge" if result.version else "no such stream"
    else:
        what = f"merged {result.merged} chunks ({result.events} events) into {result.key}"
    return f"{result.stream}: {what}; {result.requests}"


def _deleted(repository: Repository[Any, Any, Any], stream_id: str) -> str:
    result = repository.delete(stream_id)
    what = (
        f"tombstone at version {result.version}, {result.deleted} chunks deleted"
        if result.version
        else "no such stream"
    )
    return f"{result.stream}: {what}; {result.requests}"
