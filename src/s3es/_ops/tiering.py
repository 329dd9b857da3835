"""Storage tiers: a lifecycle rule moving an event store's large chunks to Intelligent-Tiering.

Compaction deletes no chunk (each version's chunk 0 is that version's lock), so superseded
chunks stay. They are never read again, which is exactly what S3 Intelligent-Tiering watches
for: it moves an object to cheaper tiers after 30 and 90 days without access and back on the
next read, with no retrieval fee and no change to the key. Objects under 128 KB are never moved
by it (nor monitored, nor charged for monitoring), so the rule leaves them out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from s3es._storage.keys import StreamKeys, check_prefix
from s3es.errors import ObjectStoreError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Intelligent-Tiering neither moves nor monitors smaller objects.
MIN_TIERED_BYTES = 128 * 1024


def tiering_rule_id(prefix: str) -> str:
    """The id of the tiering rule of the event store under ``prefix`` (one per prefix)."""
    return f"s3es-intelligent-tiering:{check_prefix(prefix) or '(bucket root)'}"


def tiering_rule(prefix: str) -> dict[str, Any]:
    """The rule moving chunks of 128 KB or more under ``prefix`` to Intelligent-Tiering.

    Args:
        prefix: The event store's prefix ("": the bucket's root); one rule per prefix.

    Returns:
        The rule, as one of the rules ``PutBucketLifecycleConfiguration`` takes.

    Raises:
        InvalidStreamName: The event store refuses ``prefix``.
    """
    root = StreamKeys(prefix).root
    return {
        "ID": tiering_rule_id(prefix),
        "Status": "Enabled",
        "Filter": {"And": {"Prefix": root, "ObjectSizeGreaterThan": MIN_TIERED_BYTES - 1}},
        "Transitions": [{"Days": 0, "StorageClass": "INTELLIGENT_TIERING"}],
    }


def apply_tiering_rule(client: S3Client, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Put the tiering rule of ``prefix`` into ``bucket``'s lifecycle configuration.

    Other rules are kept; an earlier version of this rule is replaced, so running it again
    changes nothing. Two requests: GET and PUT of the configuration.

    Args:
        client: The boto3 S3 client to send the requests with.
        bucket: The bucket whose lifecycle configuration gets the rule.
        prefix: The event store's prefix ("": the bucket's root).

    Returns:
        The rules now in force.

    Raises:
        InvalidStreamName: The event store refuses ``prefix``; nothing was sent.
        ObjectStoreError: S3 refused (or could not be reached); it names the bucket.
    """
    rule = tiering_rule(prefix)
    try:
        try:
            rules = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        kept: list[dict[str, Any]] = [dict(r) for r in rules if r.get("ID") != rule["ID"]]
        configuration: Any = {"Rules": [*kept, rule]}  # the stubs' TypedDicts, as plain JSON
        client.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration=configuration
        )
    except (ClientError, BotoCoreError) as error:
        raise ObjectStoreError("LIFECYCLE", bucket, str(error)) from error
    return [*kept, rule]
