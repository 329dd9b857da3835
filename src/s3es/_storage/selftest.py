"""The self-test: does an object store honour the conditional writes s3es relies on?

s3es is safe only on a store that refuses a PUT with ``If-None-Match: *`` when the key exists
(appends) and a PUT with ``If-Match`` when the ETag differs (erasure). A store that ignores
either header accepts the write silently, and appends overwrite each other. The self-test
proves both on a scratch key, with a handful of requests, and deletes what it wrote.
"""

from __future__ import annotations

import hashlib
import uuid

import attrs

from s3es._base.logging import get_logger
from s3es._storage.keys import StreamKeys
from s3es._storage.metering import RequestCounts, measure_requests
from s3es._storage.port import ObjectStore
from s3es.errors import InvalidConfiguration, ObjectAlreadyExists, ObjectChanged

_log = get_logger("s3es.selftest")

IF_NONE_MATCH = "If-None-Match"
IF_MATCH = "If-Match"


@attrs.frozen
class SelfTestCheck:
    """One thing the self-test checked: the condition, what was expected, and what happened."""

    condition: str
    expected: str
    passed: bool
    detail: str

    def __str__(self) -> str:
        verdict = "ok    " if self.passed else "FAILED"
        return f"{verdict} {self.condition}: {self.expected}: {self.detail}"


@attrs.frozen
class SelfTestReport:
    """What :func:`self_test` found, the scratch keys it used, and the requests it sent."""

    key: str
    checks: tuple[SelfTestCheck, ...]
    #: The scratch keys deleted afterwards.
    deleted: tuple[str, ...]
    requests: RequestCounts

    @property
    def ok(self) -> bool:
        """Whether the store honoured every condition checked."""
        return all(check.passed for check in self.checks)

    @property
    def failed_conditions(self) -> tuple[str, ...]:
        """The conditions the store did not honour (``If-None-Match``, ``If-Match``), in order."""
        return tuple(dict.fromkeys(c.condition for c in self.checks if not c.passed))

    def summary(self) -> str:
        """One line: the store honours both conditions, or which it does not honour."""
        if self.ok:
            return "honours If-None-Match and If-Match: s3es can run on it"
        failures = "; ".join(f"{c.expected}: {c.detail}" for c in self.checks if not c.passed)
        return (
            f"does NOT honour {' and '.join(self.failed_conditions)}, so s3es must not run on "
            f"it (concurrent appends would overwrite each other): {failures}"
        )


def _etag_of(body: bytes) -> str:
    return f'"{hashlib.md5(body).hexdigest()}"'  # noqa: S324 - S3's ETag of a simple PUT


def self_test(objects: ObjectStore, prefix: str = "") -> SelfTestReport:
    """Check that ``objects`` honours ``If-None-Match: *`` and ``If-Match`` on a scratch key.

    The key is ``{prefix}/_selftest/{random}``, so an IAM policy that confines a role to the
    event store's prefix lets it run. It stores the key, then checks that S3 refuses to store it
    again (412) and keeps the first body; that a replace with a wrong ETag is refused and one
    with the right ETag is accepted; and that a replace of a missing key is refused. Then it
    deletes its keys. 5 PUT + 3 GET + 1 DELETE on a store that passes.

    A failed check is reported, not raised; a request that fails (network, access denied)
    raises ObjectStoreError, after the keys written so far are deleted.
    """
    key = f"{StreamKeys(prefix).self_test_prefix()}{uuid.uuid4().hex}"
    missing = f"{key}-missing"
    first, second = b"s3es self-test: first body", b"s3es self-test: second body"
    checks: list[SelfTestCheck] = []
    written: list[str] = []
    deleted: list[str] = []
    with measure_requests() as meter:
        try:
            objects.put_if_absent(key, first)
            written.append(key)
            checks += _check_if_none_match(objects, key, first, second)
            checks += _check_if_match(objects, key)
            checks.append(_check_if_match_missing(objects, missing, written))
        finally:
            for scratch in written:
                objects.delete(scratch)
                deleted.append(scratch)
    report = SelfTestReport(key, tuple(checks), tuple(deleted), meter.counts)
    log = _log.info if report.ok else _log.error
    log("self_test", key=key, ok=report.ok, failed=list(report.failed_conditions))
    return report


def _passed(condition: str, expected: str, detail: str) -> SelfTestCheck:
    return SelfTestCheck(condition, expected, passed=True, detail=detail)


def _failed(condition: str, expected: str, detail: str) -> SelfTestCheck:
    return SelfTestCheck(condition, expected, passed=False, detail=detail)


def _check_if_none_match(
    objects: ObjectStore, key: str, first: bytes, second: bytes
) -> list[SelfTestCheck]:
    expected = "a second PUT of the key is refused"
    try:
        objects.put_if_absent(key, second)
    except ObjectAlreadyExists:
        refused = _passed(IF_NONE_MATCH, expected, "412")
    else:
        refused = _failed(
            IF_NONE_MATCH, expected, f"the second PUT of {key!r} with If-None-Match: * succeeded"
        )
    stored = objects.get(key)
    body = None if stored is None else stored.body
    expected = "the first body is kept"
    if body == first:
        kept = _passed(IF_NONE_MATCH, expected, "unchanged")
    else:
        what = "gone" if body is None else "the second PUT's" if body == second else repr(body)
        kept = _failed(IF_NONE_MATCH, expected, f"the body of {key!r} is {what}")
    return [refused, kept]


def _check_if_match(objects: ObjectStore, key: str) -> list[SelfTestCheck]:
    current = objects.get(key)
    if current is None:
        return [_failed(IF_MATCH, "a replace is checked", f"{key!r} vanished before it")]
    checks = []
    wrong_etag = _etag_of(b"s3es self-test: not the stored body")
    expected = "a replace with a wrong ETag is refused"
    try:
        objects.replace(key, b"s3es self-test: wrong ETag", etag=wrong_etag)
    except ObjectChanged:
        checks.append(_passed(IF_MATCH, expected, "412"))
    else:
        detail = f"the PUT of {key!r} with If-Match: {wrong_etag} succeeded (ETag {current.etag})"
        checks.append(_failed(IF_MATCH, expected, detail))
        current = objects.get(key) or current
    expected = "a replace with the right ETag is accepted"
    right = b"s3es self-test: right ETag"
    try:
        objects.replace(key, right, etag=current.etag)
    except ObjectChanged:
        detail = f"the PUT of {key!r} with If-Match: {current.etag}, its ETag, was refused"
        checks.append(_failed(IF_MATCH, expected, detail))
    else:
        stored = objects.get(key)
        if stored is not None and stored.body == right:
            checks.append(_passed(IF_MATCH, expected, "stored"))
        else:
            detail = f"accepted, but {key!r} does not hold the new body"
            checks.append(_failed(IF_MATCH, expected, detail))
    return checks


def _check_if_match_missing(
    objects: ObjectStore, missing: str, written: list[str]
) -> SelfTestCheck:
    expected = "a replace of a missing key is refused"
    try:
        objects.replace(missing, b"s3es self-test: no such key", etag=_etag_of(b"anything"))
    except ObjectChanged:
        return _passed(IF_MATCH, expected, "404")
    written.append(missing)
    return _failed(IF_MATCH, expected, f"the PUT of {missing!r} with If-Match created it")


def require_conditional_writes(
    objects: ObjectStore, prefix: str = "", *, bucket: str = ""
) -> SelfTestReport:
    """Run :func:`self_test`; return its report if the store passes it.

    Raises InvalidConfiguration naming ``bucket`` and each condition the store does not honour.
    """
    report = self_test(objects, prefix)
    if not report.ok:
        where = f"bucket {bucket!r}" if bucket else "the object store"
        raise InvalidConfiguration(f"{where} {report.summary()}")
    return report
