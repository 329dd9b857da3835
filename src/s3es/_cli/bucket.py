"""``s3es self-test``, ``policy`` and ``tiering``: the bucket itself, not its streams."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from s3es._cli.invocation import Invocation, bucket_and_prefix
from s3es._ops.policies import policies
from s3es._ops.tiering import apply_tiering_rule, tiering_rule
from s3es._storage.selftest import RACERS, ROUNDS, self_test
from s3es.errors import S3esError


def _at_least(least: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = least - 1
        if number < least:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {least}, not {value!r}")
        return number

    return parse


def self_test_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rounds",
        type=_at_least(1),
        default=ROUNDS,
        metavar="N",
        help=f"rounds of racing writers (default: {ROUNDS}); more rounds, stronger evidence",
    )
    parser.add_argument(
        "--racers",
        type=_at_least(2),
        default=RACERS,
        metavar="N",
        help=f"writers racing for one key in each round (default: {RACERS})",
    )


def run_self_test(invocation: Invocation) -> int:
    arguments = invocation.arguments
    report = self_test(
        invocation.objects, arguments.prefix, racers=arguments.racers, rounds=arguments.rounds
    )
    invocation.print(f"self-test of bucket {arguments.bucket!r}, scratch key {report.key}:")
    invocation.print(*(f"  {check}" for check in report.checks))
    invocation.print(f"  deleted {', '.join(report.deleted)}")
    invocation.print(f"bucket {arguments.bucket!r} {report.summary()}")
    invocation.requests(report.requests)
    return 0 if report.ok else 1


# policy ---------------------------------------------------------------------------------------

#: The documents of ``s3es policy`` that need ``--queue-arn``.
_QUEUE_DOCUMENTS = ("notification-configuration", "queue-policy")


def policy_arguments(parser: argparse.ArgumentParser) -> None:
    bucket_and_prefix(parser)
    parser.add_argument(
        "--operator-arn",
        action="append",
        default=[],
        metavar="ARN",
        help="a role allowed to delete and replace chunks; the bucket policy denies it to "
        "every other principal (may be repeated)",
    )
    parser.add_argument(
        "--kms-key-arn", metavar="ARN", help="the KMS key of SSE-KMS: the roles may use it"
    )
    parser.add_argument(
        "--queue-arn",
        metavar="ARN",
        help="the SQS queue of the change feed: print the bucket's notification configuration "
        "and the queue's policy as well (docs/change-feeds.md)",
    )
    parser.add_argument(
        "--bucket-account-id",
        metavar="ID",
        help="the account that owns the bucket: the queue policy accepts S3's messages only on "
        "its behalf (aws:SourceAccount)",
    )
    parser.add_argument(
        "--only",
        choices=[
            "bucket-policy",
            "application-role",
            "operator-role",
            *_QUEUE_DOCUMENTS,
        ],
        help="print only this document (as put-bucket-policy, put-role-policy, "
        "put-bucket-notification-configuration or set-queue-attributes take it)",
    )


def run_policy(invocation: Invocation) -> int:
    arguments = invocation.arguments
    if arguments.only in _QUEUE_DOCUMENTS and arguments.queue_arn is None:
        invocation.usage_error(f"--only {arguments.only} needs --queue-arn")
    if arguments.bucket_account_id is not None and arguments.queue_arn is None:
        invocation.usage_error("--bucket-account-id is for the queue policy: give --queue-arn")
    try:
        documents = policies(
            arguments.bucket,
            arguments.prefix,
            operator_arns=arguments.operator_arn,
            kms_key_arn=arguments.kms_key_arn,
            queue_arn=arguments.queue_arn,
            bucket_account_id=arguments.bucket_account_id,
        )
    except ValueError as error:
        invocation.usage_error(str(error))
    chosen: object = documents[arguments.only] if arguments.only else documents
    if arguments.only == "queue-policy":
        # set-queue-attributes takes the policy as a string inside its attributes' JSON.
        chosen = {"Policy": json.dumps(chosen)}
    invocation.print(json.dumps(chosen, indent=2))
    return 0


# tiering --------------------------------------------------------------------------------------


def tiering_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--apply", action="store_true", help="apply the rule to the bucket")


def run_tiering(invocation: Invocation) -> int:
    arguments = invocation.arguments
    if not arguments.apply:
        invocation.print(json.dumps(tiering_rule(arguments.prefix), indent=2))
        return 0
    from s3es._storage.s3 import S3ObjectStore  # noqa: PLC0415 - lazy: boto3 is slow to import

    objects = invocation.objects
    if not isinstance(objects, S3ObjectStore):
        invocation.usage_error("tiering --apply needs an S3 bucket")
    try:
        rules = apply_tiering_rule(objects.client, arguments.bucket, arguments.prefix)
    except S3esError as error:
        invocation.print(f"{arguments.bucket}: {error}")
        return 1
    invocation.print(
        f"{arguments.bucket}: {len(rules)} lifecycle rules, among them:",
        json.dumps(rules[-1], indent=2),
    )
    return 0
