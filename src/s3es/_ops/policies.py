"""AWS policies for an event store's bucket: require conditional writes, grant least privilege.

Three JSON documents, for the event store under ``prefix`` in ``bucket``:

- :func:`bucket_policy` denies every principal a ``PutObject`` under the prefix that carries
  neither ``If-None-Match`` nor ``If-Match``, so no tool, script or misconfigured client can
  overwrite a chunk; with ``operator_arns``, only those roles may delete or replace a chunk.
- :func:`application_policy`, for the role of the services that run commands: read, list and
  append under the prefix, delete only the self-test's scratch keys.
- :func:`operator_policy`, for the role that runs ``s3es delete`` and ``s3es tiering --apply``:
  the application's rights, plus deleting chunks and the bucket's lifecycle configuration.

And two for the change feed of S3 event notifications (``docs/change-feeds.md``): the bucket's
:func:`notification_configuration`, sending an event per new chunk to an SQS queue, and the
:func:`queue_policy` that lets S3 send them.

See ``docs/security.md`` for why each statement is there and how to apply them.

The prefix goes into ARNs and ``StringLike`` conditions, where IAM reads ``*`` and ``?`` as
wildcards and ``${...}`` as a policy variable: a prefix holding one is refused
(InvalidConfiguration) rather than escaped, since ``team*`` would grant every prefix that starts
with ``team`` and ``${aws:username}`` a prefix per caller. So is a bucket name S3 would refuse.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from s3es._storage.keys import StreamKeys
from s3es.errors import InvalidConfiguration

#: The version of the IAM policy language (the current one, since 2012).
POLICY_VERSION = "2012-10-17"

# S3 general purpose bucket names: 3 to 63 lower-case letters, digits, dots and hyphens, no two
# dots together, not an IP address, none of the prefixes and suffixes S3 reserves.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_NOT_A_BUCKET_NAME = re.compile(
    r".*\.\..*|[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+|(xn--|sthree-).*"
    r"|.*(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)"
)
#: What IAM reads as a wildcard or a policy variable in an ARN or a StringLike condition.
_IAM_SPECIAL = ("*", "?", "${")
# arn:{partition}:sqs:{region}:{account}:{queue name}, queue names of 1 to 80 characters.
_QUEUE_ARN = re.compile(r"arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?")
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
#: The Id of the queue configuration that :func:`notification_configuration` makes.
NOTIFICATION_ID = "s3es-new-chunks"


def _bucket_arn(bucket: str) -> str:
    if not _BUCKET_NAME.fullmatch(bucket) or _NOT_A_BUCKET_NAME.fullmatch(bucket):
        raise InvalidConfiguration(
            f"not an S3 bucket name: {bucket!r} (3 to 63 lower-case letters, digits, dots and "
            "hyphens; see S3's bucket naming rules)"
        )
    return f"arn:aws:s3:::{bucket}"


def _keys(prefix: str) -> StreamKeys:
    """The key layout under ``prefix``, refused if IAM would read more into it than its text.

    Raises InvalidStreamName for a prefix the event store refuses, InvalidConfiguration for one
    holding ``*``, ``?`` or ``${``.
    """
    keys = StreamKeys(prefix)
    for special in _IAM_SPECIAL:
        if special in prefix:
            raise InvalidConfiguration(
                f"prefix {prefix!r} holds {special!r}, which IAM policies read as "
                f"{'a policy variable' if special == '${' else 'a wildcard'}: its policies "
                "would cover other prefixes' keys; choose a prefix without *, ? and ${"
            )
    return keys


def _objects_arn(bucket: str, key_pattern: str) -> str:
    """The ARN of the objects of ``bucket`` whose keys match ``key_pattern`` (a glob)."""
    return f"{_bucket_arn(bucket)}/{key_pattern}"


def bucket_policy(
    bucket: str, prefix: str = "", *, operator_arns: Sequence[str] = ()
) -> dict[str, Any]:
    """The bucket policy that makes every write under ``prefix`` a conditional one.

    ``DenyUnconditionalWrites`` denies ``s3:PutObject`` when the request has neither an
    ``If-None-Match`` header (appends) nor an ``If-Match`` header (erasure replaces chunks
    with ``If-Match``): the ``Null`` test of both keys, which must both hold. Multipart steps
    that cannot carry the headers are exempt through ``s3:ObjectCreationOperation``.
    ``DenyPlainHttp`` refuses requests without TLS.

    With ``operator_arns`` (role ARNs), two more statements keep every other principal from
    deleting a chunk or replacing one (a PUT with ``If-Match``): only appends remain. Erasure
    and ``s3es delete`` must then run as one of those roles. They match chunk keys only
    (:meth:`~s3es.eventstore.StreamKeys.chunk_key_pattern`), so the self-test, which replaces
    and deletes a scratch key, still runs as any role.

    Args:
        bucket: The bucket's name.
        prefix: The event store's prefix ("": the bucket's root).
        operator_arns: The role ARNs that alone may delete or replace a chunk; none: any
            principal may.

    Returns:
        The policy, as the JSON that ``PutBucketPolicy`` takes.

    Raises:
        InvalidConfiguration: ``bucket`` is not a name S3 takes, or ``prefix`` holds ``*``,
            ``?`` or ``${`` (IAM's wildcards and policy variables).
        InvalidStreamName: The event store refuses ``prefix``.
    """
    keys = _keys(prefix)
    objects = _objects_arn(bucket, f"{keys.root}*")
    statements: list[dict[str, Any]] = [
        {
            "Sid": "DenyUnconditionalWrites",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {
                "Null": {"s3:if-none-match": "true", "s3:if-match": "true"},
                "BoolIfExists": {"s3:ObjectCreationOperation": "true"},
            },
        },
        {
            "Sid": "DenyPlainHttp",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": objects,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]
    if operator_arns:
        chunks = _objects_arn(bucket, keys.chunk_key_pattern())
        others = {"ArnNotEquals": {"aws:PrincipalArn": list(operator_arns)}}
        statements += [
            {
                "Sid": "OnlyOperatorsDeleteChunks",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:DeleteObject",
                "Resource": chunks,
                "Condition": others,
            },
            {
                "Sid": "OnlyOperatorsReplaceChunks",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": chunks,
                "Condition": {**others, "Null": {"s3:if-match": "false"}},
            },
        ]
    return {"Version": POLICY_VERSION, "Statement": statements}


def _kms_statement(kms_key_arn: str | None) -> list[dict[str, Any]]:
    if kms_key_arn is None:
        return []
    return [
        {
            "Sid": "UseTheChunksKmsKey",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": kms_key_arn,
        }
    ]


def _list_statement(bucket: str, keys: StreamKeys) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": "ListTheEventStore",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": _bucket_arn(bucket),
    }
    if keys.prefix:
        statement["Condition"] = {"StringLike": {"s3:prefix": [f"{keys.root}*"]}}
    return statement


def application_policy(
    bucket: str, prefix: str = "", *, kms_key_arn: str | None = None
) -> dict[str, Any]:
    """The IAM policy of an application role: load, read and append; never delete a chunk.

    ``ListBucket`` limited to the prefix (``s3:prefix``), ``GetObject`` and ``PutObject`` of
    objects under it, ``DeleteObject`` only of the self-test's scratch keys
    (``{prefix}/_selftest/*``, for ``S3ObjectStore.connect(..., self_test=True)``). With
    ``kms_key_arn``, the KMS rights that SSE-KMS needs: ``GenerateDataKey`` to write,
    ``Decrypt`` to read.

    Args:
        bucket: The bucket's name.
        prefix: The event store's prefix ("": the bucket's root).
        kms_key_arn: The KMS key the chunks are encrypted with (SSE-KMS); None: no KMS rights.

    Returns:
        The policy, as the JSON an IAM role's policy takes.

    Raises:
        InvalidConfiguration: As :func:`bucket_policy` raises it.
        InvalidStreamName: The event store refuses ``prefix``.
    """
    keys = _keys(prefix)
    statements = [
        _list_statement(bucket, keys),
        {
            "Sid": "ReadAndAppendChunks",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": _objects_arn(bucket, f"{keys.root}*"),
        },
        {
            "Sid": "CleanUpSelfTest",
            "Effect": "Allow",
            "Action": "s3:DeleteObject",
            "Resource": _objects_arn(bucket, f"{keys.self_test_prefix()}*"),
        },
        *_kms_statement(kms_key_arn),
    ]
    return {"Version": POLICY_VERSION, "Statement": statements}


def operator_policy(
    bucket: str, prefix: str = "", *, kms_key_arn: str | None = None
) -> dict[str, Any]:
    """The IAM policy of an operator role: the application's rights, deletion and tiering.

    Adds ``DeleteObject`` under the prefix (``s3es delete`` sweeps a deleted stream's chunks)
    and the bucket's lifecycle configuration (``s3es tiering --apply`` reads and writes it).

    Args:
        bucket: The bucket's name.
        prefix: The event store's prefix ("": the bucket's root).
        kms_key_arn: The KMS key the chunks are encrypted with (SSE-KMS); None: no KMS rights.

    Returns:
        The policy, as the JSON an IAM role's policy takes.

    Raises:
        InvalidConfiguration: As :func:`bucket_policy` raises it.
        InvalidStreamName: The event store refuses ``prefix``.
    """
    keys = _keys(prefix)
    statements = [
        _list_statement(bucket, keys),
        {
            "Sid": "ReadAppendAndDeleteChunks",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": _objects_arn(bucket, f"{keys.root}*"),
        },
        {
            "Sid": "ApplyTheTieringRule",
            "Effect": "Allow",
            "Action": ["s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration"],
            "Resource": _bucket_arn(bucket),
        },
        *_kms_statement(kms_key_arn),
    ]
    return {"Version": POLICY_VERSION, "Statement": statements}


def _queue_arn(queue_arn: str) -> str:
    match = _QUEUE_ARN.fullmatch(queue_arn)
    if match is None:
        raise ValueError(f"not an SQS queue ARN: {queue_arn!r}")
    if match[1]:
        raise ValueError(f"S3 cannot send event notifications to a FIFO queue: {queue_arn!r}")
    return queue_arn


def notification_configuration(queue_arn: str, prefix: str = "") -> dict[str, Any]:
    """The bucket's notification configuration: an SQS message per chunk stored under ``prefix``.

    One queue configuration (Id ``s3es-new-chunks``) for ``s3:ObjectCreated:*``, filtered on
    the key's prefix ``{prefix}/`` and suffix ``.json``: S3's filters take one prefix and one
    suffix, no pattern, so read models' ``_projections/*/*.json`` keys match as well, and
    :class:`~s3es.projections.SQSChangeNotifications` counts them as ignored. Feed entries
    (``_feed/``, no ``.json``) do not match. Re-written chunks (compaction, erasure) are
    created objects too, and notified.

    ``PutBucketNotificationConfiguration`` replaces the bucket's whole configuration: merge
    this one into any the bucket has. S3 refuses two configurations whose filters overlap for
    one event type.

    Args:
        queue_arn: The ARN of the standard SQS queue to notify.
        prefix: The event store's prefix ("": the bucket's root).

    Returns:
        The configuration, as the JSON ``PutBucketNotificationConfiguration`` takes.

    Raises:
        ValueError: ``queue_arn`` is not an SQS queue's ARN, or is a FIFO queue's (S3 does
            not send to those).
        InvalidStreamName: The event store refuses ``prefix``.
    """
    rules = [{"Name": "suffix", "Value": ".json"}]
    root = StreamKeys(prefix).root
    if root:
        rules.insert(0, {"Name": "prefix", "Value": root})
    return {
        "QueueConfigurations": [
            {
                "Id": NOTIFICATION_ID,
                "QueueArn": _queue_arn(queue_arn),
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": rules}},
            }
        ]
    }


def queue_policy(
    bucket: str, queue_arn: str, *, bucket_account_id: str | None = None
) -> dict[str, Any]:
    """The SQS queue's access policy: S3 may send it messages on behalf of ``bucket`` only.

    Allows the ``s3.amazonaws.com`` service principal ``sqs:SendMessage`` to the queue when
    ``aws:SourceArn`` is the bucket's ARN; with ``bucket_account_id`` (the account that owns
    the bucket, 12 digits), also only when ``aws:SourceAccount`` is that account, as AWS
    advises: bucket names are global and a deleted bucket's name can be taken by another
    account. A queue encrypted with a customer-managed KMS key also needs S3 allowed to use
    the key, in the key's policy.

    Args:
        bucket: The bucket that sends the notifications.
        queue_arn: The ARN of the queue the policy is for.
        bucket_account_id: The account that owns the bucket (12 digits); None: no account
            condition.

    Returns:
        The policy, as the JSON the queue's ``Policy`` attribute takes.

    Raises:
        InvalidConfiguration: ``bucket`` is not a name S3 takes.
        ValueError: ``queue_arn`` or ``bucket_account_id`` is not one.
    """
    condition: dict[str, Any] = {"ArnEquals": {"aws:SourceArn": _bucket_arn(bucket)}}
    if bucket_account_id is not None:
        if not _ACCOUNT_ID.fullmatch(bucket_account_id):
            raise ValueError(f"not an AWS account id (12 digits): {bucket_account_id!r}")
        condition["StringEquals"] = {"aws:SourceAccount": bucket_account_id}
    statement = {
        "Sid": "S3SendsNewChunks",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": _queue_arn(queue_arn),
        "Condition": condition,
    }
    return {"Version": POLICY_VERSION, "Statement": [statement]}


def policies(
    bucket: str,
    prefix: str = "",
    *,
    operator_arns: Sequence[str] = (),
    kms_key_arn: str | None = None,
    queue_arn: str | None = None,
    bucket_account_id: str | None = None,
) -> dict[str, dict[str, Any]]:
    """The policies by name: ``bucket-policy``, ``application-role``, ``operator-role``.

    With ``queue_arn``, the change feed's two documents as well: ``notification-configuration``
    and ``queue-policy``.
    """
    documents = {
        "bucket-policy": bucket_policy(bucket, prefix, operator_arns=operator_arns),
        "application-role": application_policy(bucket, prefix, kms_key_arn=kms_key_arn),
        "operator-role": operator_policy(bucket, prefix, kms_key_arn=kms_key_arn),
    }
    if queue_arn is not None:
        documents["notification-configuration"] = notification_configuration(queue_arn, prefix)
        documents["queue-policy"] = queue_policy(
            bucket, queue_arn, bucket_account_id=bucket_account_id
        )
    return documents
