"""The self-test: does an object store honour the conditional writes s3es relies on?

s3es is safe only on a store that refuses a PUT with ``If-None-Match: *`` when the key exists
(appends) and a PUT with ``If-Match`` when the ETag differs (erasure). A store that ignores
either header accepts the write silently, and appends overwrite each other. A store that checks
the condition and stores the object in two steps (moto does) refuses one writer at a time as it
should, and lets two racing writers both win. The self-test proves both conditions on a scratch
key, one request at a time, then races writers for one key, and deletes what it wrote.
"""

from __future__ import annotations

import contextvars
import hashlib
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import attrs

from s3es._base.logging import get_logger
from s3es._storage.keys import StreamKeys
from s3es._storage.metering import RequestCounts, measure_requests
from s3es._storage.port import ObjectStore, StoredObject
from s3es.errors import InvalidConfiguration, ObjectAlreadyExists, ObjectChanged

_log = get_logger("s3es.selftest")

IF_NONE_MATCH = "If-None-Match"
IF_MATCH = "If-Match"

#: Writers racing for one key in each round of the self-test.
RACERS = 16
#: Rounds of races: each races ``RACERS`` PUTs with If-None-Match, then as many with If-Match.
ROUNDS = 3
#: How long a racer waits for the others to be ready (a hang guard: they start at once).
_BARRIER_SECONDS = 60.0


@attrs.frozen
class SelfTestCheck:
    """One thing the self-test checked: the condition, what was expected, and what happened.

    Attributes:
        condition: The header checked: ``If-None-Match`` or ``If-Match``.
        expected: What the store should have done.
        passed: Whether it did.
        detail: What it did.
    """

    condition: str
    expected: str
    passed: bool
    detail: str

    def __str__(self) -> str:
        verdict = "ok    " if self.passed else "FAILED"
        return f"{verdict} {self.condition}: {self.expected}: {self.detail}"


@attrs.frozen
class SelfTestReport:
    """What :func:`self_test` found, the scratch keys it used, and the requests it sent.

    ``ok`` when the store honoured every condition; ``summary()`` says so in a line.

    Attributes:
        key: The scratch key the checks used.
        checks: Each check, in the order run.
        deleted: The scratch keys deleted afterwards.
        requests: The requests the self-test sent.
    """

    key: str
    checks: tuple[SelfTestCheck, ...]
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


def self_test(
    objects: ObjectStore, prefix: str = "", *, racers: int = RACERS, rounds: int = ROUNDS
) -> SelfTestReport:
    """Check that ``objects`` honours ``If-None-Match: *`` and ``If-Match``, under races too.

    The key is ``{prefix}/_selftest/{random}``, so an IAM policy that confines a role to the
    event store's prefix lets it run. It stores the key, then checks that S3 refuses to store it
    again (412) and keeps the first body; that a replace with a wrong ETag is refused and one
    with the right ETag is accepted; and that a replace of a missing key is refused: 5 PUT +
    3 GET + 1 DELETE. Then, in each of ``rounds`` rounds, ``racers`` threads PUT their own body
    with If-None-Match to one new key at once, and exactly one must be told it won and its body
    be the one stored; then as many replace it at once with the ETag just read (If-Match), and
    again exactly one must win: 2 x ``racers`` PUT + 2 GET + 1 DELETE a round. A store that
    checks the condition and stores in two steps can lose a race only now and then (moto: a few
    rounds in a hundred), so a pass is evidence, not proof; more rounds are stronger evidence.

    Args:
        objects: The store to check.
        prefix: The event store's prefix; the scratch keys are under ``{prefix}/_selftest/``.
        racers: Writers racing for one key in each round (at least 2).
        rounds: Rounds of races (at least 1).

    Returns:
        The report: each check, the keys deleted afterwards, the requests sent.

    Raises:
        InvalidConfiguration: ``racers`` or ``rounds`` is too small.
        ObjectStoreError: A request failed (network, access denied), after the keys written so
            far are deleted. A failed check is reported, not raised.
    """
    if racers < 2 or rounds < 1:  # noqa: PLR2004 - a race needs two
        raise InvalidConfiguration(
            f"self_test needs racers >= 2 and rounds >= 1, not racers={racers}, rounds={rounds}"
        )
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
            checks += _Races(objects, key, racers).run(rounds, written)
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


class _Races:
    """Rounds of writers racing for one key each: exactly one may win each race."""

    def __init__(self, objects: ObjectStore, key: str, racers: int) -> None:
        self.objects = objects
        self.key = key
        self.racers = racers

    def run(self, rounds: int, written: list[str]) -> list[SelfTestCheck]:
        """Race ``rounds`` times; a check per condition, failed at the first round lost."""
        puts = f"of {self.racers} PUTs racing for one key, exactly one wins"
        replaces = f"of {self.racers} replaces racing with one ETag, exactly one wins"
        put_failure = replace_failure = ""
        with ThreadPoolExecutor(self.racers, thread_name_prefix="s3es-selftest") as pool:
            for number in range(1, rounds + 1):
                key = f"{self.key}-race-{number}"
                written.append(key)
                lost, stored = self._race(pool, key, number, "PUT", self.objects.put_if_absent)
                put_failure = put_failure or lost
                if stored is None:
                    put_failure = put_failure or f"round {number}: {key!r} is gone"
                    continue
                etag = stored.etag

                def replace(key: str, body: bytes, etag: str = etag) -> str:
                    return self.objects.replace(key, body, etag=etag)

                lost, _ = self._race(pool, key, number, "replace", replace)
                replace_failure = replace_failure or lost
        detail = f"1 winner in each of {rounds} rounds, its body kept"
        return [
            _failed(IF_NONE_MATCH, puts, put_failure)
            if put_failure
            else _passed(IF_NONE_MATCH, puts, detail),
            _failed(IF_MATCH, replaces, replace_failure)
            if replace_failure
            else _passed(IF_MATCH, replaces, detail),
        ]

    def _race(
        self,
        pool: ThreadPoolExecutor,
        key: str,
        number: int,
        verb: str,
        write: Callable[[str, bytes], str],
    ) -> tuple[str, StoredObject | None]:
        """Race ``racers`` writes of ``key``.

        Returns what went wrong, in one line ("" if nothing), and what the key holds afterwards.
        """
        barrier = threading.Barrier(self.racers, timeout=_BARRIER_SECONDS)
        bodies = [
            f"s3es self-test: {verb} racer {n} of round {number}".encode()
            for n in range(self.racers)
        ]

        def racer(body: bytes) -> bool:
            barrier.wait()  # all at once: the race is the point
            try:
                write(key, body)
            except (ObjectAlreadyExists, ObjectChanged):
                return False
            return True

        # Each racer in a copy of this context, so that the caller's request meters count it.
        futures = [pool.submit(contextvars.copy_context().run, racer, body) for body in bodies]
        won = [body for body, future in zip(bodies, futures, strict=True) if future.result()]
        stored = self.objects.get(key)
        body = None if stored is None else stored.body
        if len(won) > 1:
            lost = f"round {number}: {len(won)} of {self.racers} racers were told they won {key!r}"
        elif not won and body not in bodies:
            lost = f"round {number}: none of {self.racers} racers won {key!r}"
        elif won and body != won[0]:
            lost = f"round {number}: {key!r} does not hold the body of the racer told it won"
        else:
            # One winner whose body is stored; or none told so, but a racer's body stored: its
            # answer was lost and the retry refused (S3 can do that; s3es's appends handle it).
            lost = ""
        return lost, stored


def require_conditional_writes(
    objects: ObjectStore, prefix: str = "", *, bucket: str = ""
) -> SelfTestReport:
    """Run :func:`self_test`; return its report if the store passes it.

    Args:
        objects: The store to check.
        prefix: The event store's prefix; the scratch keys are under ``{prefix}/_selftest/``.
        bucket: The bucket's name, for the error message ("": "the object store").

    Returns:
        The report of a store that honours both conditions.

    Raises:
        InvalidConfiguration: The store does not honour a condition; names ``bucket`` and each
            condition.
        ObjectStoreError: A request failed, as :func:`self_test` raises it.
    """
    report = self_test(objects, prefix)
    if not report.ok:
        where = f"bucket {bucket!r}" if bucket else "the object store"
        raise InvalidConfiguration(f"{where} {report.summary()}")
    return report
