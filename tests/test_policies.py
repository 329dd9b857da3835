"""The bucket and IAM policies: their statements, what they allow and deny, and the shipped files.

``_denied`` and ``_allowed`` evaluate the few condition operators these policies use, with IAM's
rules (keys under one operator and operators in one block must all hold; ``Null: true`` means
the key is absent; ``...IfExists`` holds for an absent key), so a test can ask what a request
meets rather than compare JSON alone. Also here: ``put_args`` (SSE-KMS) reach every PutObject.

Run ``.venv/bin/python -m tests.test_policies`` to rewrite ``docs/policies/`` after a change.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3es import S3ObjectStore, StreamName
from s3es._cli.main import main
from s3es._ops.policies import notification_configuration, policies, queue_policy
from s3es.errors import InvalidConfiguration, InvalidStreamName
from s3es.eventstore import StreamKeys
from s3es.ops import application_policy, bucket_policy, operator_policy
from s3es.testing.embedded_s3 import EmbeddedS3

POLICIES = Path(__file__).resolve().parent.parent / "docs" / "policies"
#: The placeholders of the shipped files (AWS's documentation placeholders).
BUCKET = "amzn-s3-demo-bucket"
PREFIX = "events"
OPERATOR = "arn:aws:iam::111122223333:role/s3es-operator"
APPLICATION = "arn:aws:iam::111122223333:role/s3es-application"
KMS_KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
QUEUE = "arn:aws:sqs:us-east-1:111122223333:s3es-new-chunks"


def shipped() -> dict[str, dict[str, Any]]:
    """The policies as ``docs/policies/`` ships them."""
    return policies(BUCKET, PREFIX, operator_arns=[OPERATOR])


def write_shipped() -> None:
    """Rewrite ``docs/policies/*.json`` from :func:`shipped`."""
    for name, document in shipped().items():
        (POLICIES / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")


def _matches(pattern: str, value: str) -> bool:
    """Whether ``value`` matches an ARN pattern (``*``: any characters, ``?``: one)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value) is not None


def _holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    """Whether a Condition block holds for a request with the condition keys ``context``."""
    for operator, keys in condition.items():
        for key, expected in keys.items():
            values = expected if isinstance(expected, list) else [expected]
            present = key in context
            if operator == "Null":
                ok = present != (expected == "true")
            elif operator in {"Bool", "BoolIfExists"}:
                ok = context[key] == expected if present else operator == "BoolIfExists"
            elif operator == "StringLike":
                ok = present and any(_matches(value, context[key]) for value in values)
            elif operator == "ArnNotEquals":
                ok = not present or context[key] not in values
            elif operator in {"ArnEquals", "StringEquals"}:
                ok = present and context[key] in values
            else:
                raise AssertionError(f"no evaluator for {operator}")
            if not ok:
                return False
    return True


def _applies(
    statement: Mapping[str, Any], action: str, arn: str, context: Mapping[str, str]
) -> bool:
    actions = (
        statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    )
    resources = statement["Resource"]
    resources = resources if isinstance(resources, list) else [resources]
    return (
        any(_matches(a, action) for a in actions)
        and any(_matches(r, arn) for r in resources)
        and _holds(statement.get("Condition", {}), context)
    )


def _denied(policy: Mapping[str, Any], action: str, arn: str, **context: str) -> list[str]:
    """The Sids of the policy's Deny statements that a request meets."""
    return [
        s["Sid"]
        for s in policy["Statement"]
        if s["Effect"] == "Deny" and _applies(s, action, arn, context)
    ]


def _allowed(policy: Mapping[str, Any], action: str, arn: str, **context: str) -> bool:
    """Whether an Allow statement of the policy grants the request (and no Deny refuses it)."""
    allows = any(
        s["Effect"] == "Allow" and _applies(s, action, arn, context) for s in policy["Statement"]
    )
    return allows and not _denied(policy, action, arn, **context)


def _object(key: str, bucket: str = BUCKET) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


_STREAM = StreamName("order", "o-1")
_CHUNK = StreamKeys(PREFIX).chunk_key(_STREAM, 42, 1)
_SELF_TEST_KEY = f"{PREFIX}/_selftest/0f3c9e2a"
_TLS = {"aws:SecureTransport": "true"}
_CREATE = {**_TLS, "s3:ObjectCreationOperation": "true"}


class TestBucketPolicy:
    def test_deny_statement(self) -> None:
        """The deny of unconditional writes: every principal, PutObject under the prefix, when
        s3:if-none-match and s3:if-match are both absent (Null), for object-creating requests."""
        policy = bucket_policy(BUCKET, PREFIX)
        assert policy["Version"] == "2012-10-17"
        (deny,) = [s for s in policy["Statement"] if s["Sid"] == "DenyUnconditionalWrites"]
        assert deny == {
            "Sid": "DenyUnconditionalWrites",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/{PREFIX}/*",
            "Condition": {
                "Null": {"s3:if-none-match": "true", "s3:if-match": "true"},
                "BoolIfExists": {"s3:ObjectCreationOperation": "true"},
            },
        }

    @pytest.mark.parametrize(
        ("headers", "denied"),
        [
            ({"s3:if-none-match": "*"}, []),  # an append
            ({"s3:if-match": '"etag"'}, []),  # an erasure's replace
            ({}, ["DenyUnconditionalWrites"]),  # aws s3 cp, a misconfigured client
        ],
    )
    def test_what_a_put_meets(self, headers: dict[str, str], denied: list[str]) -> None:
        """A PUT under the prefix with either header passes; one with neither is denied."""
        policy = bucket_policy(BUCKET, PREFIX)
        assert _denied(policy, "s3:PutObject", _object(_CHUNK), **_CREATE, **headers) == denied

    def test_multipart_parts_and_other_prefixes_pass(self) -> None:
        """Upload parts (which cannot carry the headers) and keys outside the prefix pass."""
        policy = bucket_policy(BUCKET, PREFIX)
        part = {**_TLS, "s3:ObjectCreationOperation": "false"}
        assert _denied(policy, "s3:PutObject", _object(_CHUNK), **part) == []
        assert _denied(policy, "s3:PutObject", _object("elsewhere/x.json"), **_CREATE) == []

    def test_plain_http_denied(self) -> None:
        """A request without TLS under the prefix is denied, whatever it is."""
        policy = bucket_policy(BUCKET, PREFIX)
        arn = _object(_CHUNK)
        assert _denied(policy, "s3:GetObject", arn, **{"aws:SecureTransport": "false"}) == [
            "DenyPlainHttp"
        ]

    def test_only_operators_delete_or_replace_chunks(self) -> None:
        """With operator roles, any other principal is denied deleting a chunk or replacing
        one; appends, and the self-test's scratch key, stay open to every role."""
        policy = bucket_policy(BUCKET, PREFIX, operator_arns=[OPERATOR])
        app = {**_CREATE, "aws:PrincipalArn": APPLICATION}
        operator = {**_CREATE, "aws:PrincipalArn": OPERATOR}
        replace = {"s3:if-match": '"etag"'}
        append = {"s3:if-none-match": "*"}
        chunk, scratch = _object(_CHUNK), _object(_SELF_TEST_KEY)
        assert _denied(policy, "s3:DeleteObject", chunk, **app) == ["OnlyOperatorsDeleteChunks"]
        assert _denied(policy, "s3:PutObject", chunk, **app, **replace) == [
            "OnlyOperatorsReplaceChunks"
        ]
        assert _denied(policy, "s3:PutObject", chunk, **app, **append) == []
        assert _denied(policy, "s3:DeleteObject", chunk, **operator) == []
        assert _denied(policy, "s3:PutObject", chunk, **operator, **replace) == []
        assert _denied(policy, "s3:DeleteObject", scratch, **app) == []
        assert _denied(policy, "s3:PutObject", scratch, **app, **replace) == []

    def test_without_prefix(self) -> None:
        """Without a prefix, the statements cover the whole bucket."""
        policy = bucket_policy(BUCKET)
        assert {s["Resource"] for s in policy["Statement"]} == {f"arn:aws:s3:::{BUCKET}/*"}

    @pytest.mark.parametrize(
        "bucket",
        [
            "",
            "B",
            "a",
            "my_bucket",
            "a/b",
            "bucket*",
            "bucket?",
            "${aws:username}",
            "a..b",
            "192.168.5.4",
            "xn--bucket",
            "sthree-bucket",
            "bucket-s3alias",
            "bucket--ol-s3",
        ],
    )
    def test_bad_bucket(self, bucket: str) -> None:
        """A name S3 would not accept as a bucket's is refused, quoted, by every document."""
        match = f"not an S3 bucket name: {re.escape(repr(bucket))}"
        for make in (bucket_policy, application_policy, operator_policy):
            with pytest.raises(InvalidConfiguration, match=match):
                make(bucket)

    def test_bad_prefix(self) -> None:
        """A prefix that could escape its folder is refused, as the event store refuses it."""
        with pytest.raises(InvalidStreamName):
            application_policy(BUCKET, "a/../b")


#: Prefix segments of letters and of the characters IAM gives a meaning in an ARN or a condition.
_SEGMENTS = st.text(alphabet="ab*?${}:", min_size=1, max_size=6).filter(
    lambda segment: segment not in {".", ".."}
)
_PREFIXES = st.lists(_SEGMENTS, min_size=1, max_size=2).map("/".join)


def _prefix_keys(prefix: str) -> list[str]:
    """Keys of an event store under ``prefix``: a chunk, a feed entry's folder, a read model's."""
    keys = StreamKeys(prefix)
    return [keys.chunk_key(_STREAM, 1), f"{keys.root}_projections/x.json", keys.root]


class TestWildcardsInThePrefix:
    """IAM reads ``*`` and ``?`` as wildcards and ``${...}`` as a policy variable in ARNs and in
    StringLike conditions: a prefix holding one would grant more than its own keys."""

    @pytest.mark.parametrize(
        ("prefix", "named"),
        [
            ("team*", "'*'"),
            ("team?", "'?'"),
            ("a/${aws:username}", "'${'"),
            ("t*/events", "'*'"),
        ],
    )
    def test_refused_by_every_document(self, prefix: str, named: str) -> None:
        """Every IAM document refuses such a prefix, naming the character; none is made."""
        for make in (bucket_policy, application_policy, operator_policy):
            with pytest.raises(InvalidConfiguration, match=re.escape(named)) as refused:
                make(BUCKET, prefix)
            assert repr(prefix) in str(refused.value)
        with pytest.raises(InvalidConfiguration, match=re.escape(named)):
            policies(BUCKET, prefix)

    def test_a_dollar_alone_is_no_variable(self) -> None:
        """``$`` not followed by ``{`` is a plain character in IAM: such a prefix is taken."""
        policy = application_policy(BUCKET, "cost$")
        assert _allowed(policy, "s3:GetObject", _object(StreamKeys("cost$").chunk_key(_STREAM, 1)))

    def test_the_cli_refuses_it_in_one_line(self) -> None:
        """``s3es policy --prefix 'team*'`` is a usage error of one line naming the character."""
        out, err = io.StringIO(), io.StringIO()
        argv = ["policy", "--bucket", "my-bucket", "--prefix", "team*"]
        status = main(argv, out=out, err=err, stdin=io.StringIO())
        assert (status, out.getvalue()) == (2, "")
        (line,) = [line for line in err.getvalue().splitlines() if "team*" in line]
        assert "'*'" in line

    @given(prefix=_PREFIXES, other=_PREFIXES)
    def test_a_prefix_grants_no_other_prefix(self, prefix: str, other: str) -> None:
        """Whatever prefix is asked for, the roles it is given reach no key of another prefix
        (one not nested under it): the prefix is refused, or its ARNs match its keys alone."""
        try:
            documents = [application_policy(BUCKET, prefix), operator_policy(BUCKET, prefix)]
        except (InvalidConfiguration, InvalidStreamName):
            return
        if f"{other}/".startswith(f"{prefix}/"):
            return  # nested under the prefix: its keys are the prefix's keys
        bucket_arn = f"arn:aws:s3:::{BUCKET}"
        for policy in documents:
            for key in _prefix_keys(other):
                assert not _allowed(policy, "s3:GetObject", _object(key)), (prefix, key)
                assert not _allowed(policy, "s3:ListBucket", bucket_arn, **{"s3:prefix": key})
        for key in _prefix_keys(prefix):
            assert _allowed(documents[0], "s3:GetObject", _object(key)) or key.endswith("/")


class TestRolePolicies:
    def test_application_role(self) -> None:
        """The application lists, reads and appends under the prefix, deletes only self-test
        keys, and may touch nothing outside the prefix."""
        policy = application_policy(BUCKET, PREFIX)
        bucket_arn, chunk = f"arn:aws:s3:::{BUCKET}", _object(_CHUNK)
        assert _allowed(policy, "s3:ListBucket", bucket_arn, **{"s3:prefix": f"{PREFIX}/"})
        assert _allowed(policy, "s3:ListBucket", bucket_arn, **{"s3:prefix": f"{PREFIX}/order/"})
        assert not _allowed(policy, "s3:ListBucket", bucket_arn, **{"s3:prefix": "other/"})
        assert _allowed(policy, "s3:GetObject", chunk)
        assert _allowed(policy, "s3:PutObject", chunk)
        assert not _allowed(policy, "s3:DeleteObject", chunk)
        assert _allowed(policy, "s3:DeleteObject", _object(_SELF_TEST_KEY))
        assert not _allowed(policy, "s3:GetObject", _object("other/x"))
        assert not _allowed(policy, "s3:PutLifecycleConfiguration", bucket_arn)

    def test_operator_role(self) -> None:
        """The operator may also delete chunks and write the bucket's lifecycle configuration."""
        policy = operator_policy(BUCKET, PREFIX)
        bucket_arn = f"arn:aws:s3:::{BUCKET}"
        assert _allowed(policy, "s3:DeleteObject", _object(_CHUNK))
        assert _allowed(policy, "s3:GetLifecycleConfiguration", bucket_arn)
        assert _allowed(policy, "s3:PutLifecycleConfiguration", bucket_arn)
        assert not _allowed(policy, "s3:DeleteObject", _object("other/x"))

    def test_no_prefix_lists_the_bucket(self) -> None:
        """Without a prefix, listing is not limited by s3:prefix."""
        policy = application_policy(BUCKET)
        (listing,) = [s for s in policy["Statement"] if s["Action"] == "s3:ListBucket"]
        assert "Condition" not in listing
        assert _allowed(policy, "s3:ListBucket", f"arn:aws:s3:::{BUCKET}", **{"s3:prefix": ""})

    def test_kms_key(self) -> None:
        """With a KMS key, both roles may generate data keys (write) and decrypt (read)."""
        for policy in (
            application_policy(BUCKET, PREFIX, kms_key_arn=KMS_KEY),
            operator_policy(BUCKET, PREFIX, kms_key_arn=KMS_KEY),
        ):
            assert _allowed(policy, "kms:GenerateDataKey", KMS_KEY)
            assert _allowed(policy, "kms:Decrypt", KMS_KEY)
        assert not any("kms" in json.dumps(s) for s in application_policy(BUCKET)["Statement"])


def _filter_passes(configuration: Mapping[str, Any], key: str) -> bool:
    """Whether S3 sends a notification of ``key`` created, under ``configuration``'s filter."""
    (queue,) = configuration["QueueConfigurations"]
    rules = {r["Name"]: r["Value"] for r in queue["Filter"]["Key"]["FilterRules"]}
    return key.startswith(rules.get("prefix", "")) and key.endswith(rules.get("suffix", ""))


class TestChangeFeedDocuments:
    def test_notification_configuration(self) -> None:
        """New objects under the prefix ending in .json go to the queue: every chunk, and
        read models (ignored by the reader); not feed entries, not other prefixes."""
        configuration = notification_configuration(QUEUE, PREFIX)
        (queue,) = configuration["QueueConfigurations"]
        assert queue["QueueArn"] == QUEUE
        assert queue["Events"] == ["s3:ObjectCreated:*"]
        keys = StreamKeys(PREFIX)
        assert _filter_passes(configuration, _CHUNK)
        assert _filter_passes(configuration, keys.chunk_key(StreamName("order", "o-1"), 1))
        assert _filter_passes(configuration, keys.read_model_key("totals"))
        assert not _filter_passes(configuration, keys.feed_key(StreamName("order", "o-1"), 1, 0))
        assert not _filter_passes(configuration, StreamKeys("other").chunk_key(_STREAM, 1))
        assert not _filter_passes(configuration, f"{PREFIX}x/order/o-1/a.json")

    def test_no_prefix(self) -> None:
        """At the bucket's root, only the suffix filters (S3 refuses an empty prefix rule)."""
        (queue,) = notification_configuration(QUEUE)["QueueConfigurations"]
        assert queue["Filter"]["Key"]["FilterRules"] == [{"Name": "suffix", "Value": ".json"}]

    @pytest.mark.parametrize(
        "arn",
        [
            "arn:aws:sns:us-east-1:111122223333:topic",
            "arn:aws:sqs:us-east-1:1111:q",
            "https://sqs.us-east-1.amazonaws.com/111122223333/q",
            "arn:aws:sqs:us-east-1:111122223333:q.fifo",
        ],
    )
    def test_bad_queue_arn(self, arn: str) -> None:
        """Not a standard queue's ARN (FIFO queues take no S3 notification): ValueError."""
        with pytest.raises(ValueError, match="queue"):
            notification_configuration(arn)
        with pytest.raises(ValueError, match="queue"):
            queue_policy(BUCKET, arn)

    def test_queue_policy(self) -> None:
        """S3 may send to the queue for this bucket, and with the account id only for the
        bucket of that account; never for another bucket."""
        policy = queue_policy(BUCKET, QUEUE, bucket_account_id="111122223333")
        (statement,) = policy["Statement"]
        assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
        ours = {"aws:SourceArn": f"arn:aws:s3:::{BUCKET}", "aws:SourceAccount": "111122223333"}
        assert _allowed(policy, "sqs:SendMessage", QUEUE, **ours)
        assert not _allowed(policy, "sqs:ReceiveMessage", QUEUE, **ours)
        stolen = {**ours, "aws:SourceAccount": "444455556666"}
        assert not _allowed(policy, "sqs:SendMessage", QUEUE, **stolen)
        other = {**ours, "aws:SourceArn": "arn:aws:s3:::other-bucket"}
        assert not _allowed(policy, "sqs:SendMessage", QUEUE, **other)
        anywhere = queue_policy(BUCKET, QUEUE)
        assert _allowed(anywhere, "sqs:SendMessage", QUEUE, **stolen)
        assert not _allowed(anywhere, "sqs:SendMessage", QUEUE, **other)

    def test_bad_account_id(self) -> None:
        with pytest.raises(ValueError, match="account id"):
            queue_policy(BUCKET, QUEUE, bucket_account_id="1111-2222-3333")

    def test_policies_with_a_queue(self) -> None:
        """policies() adds the two documents when given the queue."""
        documents = policies(BUCKET, PREFIX, queue_arn=QUEUE, bucket_account_id="111122223333")
        assert documents["notification-configuration"] == notification_configuration(QUEUE, PREFIX)
        assert documents["queue-policy"] == queue_policy(
            BUCKET, QUEUE, bucket_account_id="111122223333"
        )
        assert set(policies(BUCKET, PREFIX)) == {
            "bucket-policy",
            "application-role",
            "operator-role",
        }


class TestShippedFiles:
    @pytest.mark.parametrize("name", ["bucket-policy", "application-role", "operator-role"])
    def test_file_is_generated(self, name: str) -> None:
        """docs/policies/NAME.json is what the functions generate for the placeholders
        (rewrite them with `python -m tests.test_policies`)."""
        text = (POLICIES / f"{name}.json").read_text()
        assert json.loads(text) == shipped()[name]
        assert text == json.dumps(shipped()[name], indent=2) + "\n"


class TestEncryption:
    def test_put_args_reach_every_put(self, embedded_s3: EmbeddedS3) -> None:
        """put_args (SSE-KMS here) go with put-if-absent and with replace: S3 stores both
        objects encrypted under the key."""
        embedded_s3.create_bucket("sse-kms")
        put_args = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KMS_KEY}
        store = embedded_s3.object_store("sse-kms", put_args=put_args)
        store.put_if_absent("created", b"1")
        plain = S3ObjectStore(embedded_s3.client(), "sse-kms")
        etag = plain.put_if_absent("replaced", b"1")
        assert "ServerSideEncryption" not in store.client.head_object(
            Bucket="sse-kms", Key="replaced"
        )
        store.replace("replaced", b"2", etag=etag)
        for key in ("created", "replaced"):
            head = store.client.head_object(Bucket="sse-kms", Key=key)
            assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", KMS_KEY)


if __name__ == "__main__":
    write_shipped()
