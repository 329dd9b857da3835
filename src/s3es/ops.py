"""Operations: maintenance of streams, checks of stored data and buckets, policies, tiering.

- Maintenance, safe while writers append: :func:`compact`, :func:`delete`, :func:`erase`,
  and :func:`repair` (stores the fences an erasure cut short left missing).
- Checks: :func:`verify_stream` and :func:`verify_prefix` read every chunk;
  :func:`self_test` and :func:`require_conditional_writes` check that a bucket honours
  conditional writes.
- Policies and storage classes: :func:`bucket_policy`, :func:`application_policy`,
  :func:`operator_policy`, :func:`tiering_rule`, :func:`apply_tiering_rule`; for the change
  feed of S3 event notifications, :func:`notification_configuration` and :func:`queue_policy`.

The ``s3es`` command runs each of them.
"""

from s3es._ops.maintenance import (
    Compaction,
    Deletion,
    Erasure,
    Repair,
    compact,
    delete,
    erase,
    repair,
)
from s3es._ops.policies import (
    application_policy,
    bucket_policy,
    notification_configuration,
    operator_policy,
    queue_policy,
)
from s3es._ops.tiering import apply_tiering_rule, tiering_rule
from s3es._ops.verify import (
    StreamReport,
    VerifyProblem,
    VerifyReport,
    verify_prefix,
    verify_stream,
)
from s3es._storage.selftest import (
    SelfTestCheck,
    SelfTestReport,
    require_conditional_writes,
    self_test,
)

__all__ = [
    "Compaction",
    "Deletion",
    "Erasure",
    "Repair",
    "SelfTestCheck",
    "SelfTestReport",
    "StreamReport",
    "VerifyProblem",
    "VerifyReport",
    "application_policy",
    "apply_tiering_rule",
    "bucket_policy",
    "compact",
    "delete",
    "erase",
    "notification_configuration",
    "operator_policy",
    "queue_policy",
    "repair",
    "require_conditional_writes",
    "self_test",
    "tiering_rule",
    "verify_prefix",
    "verify_stream",
]
