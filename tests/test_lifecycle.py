"""Storage tiers: the Intelligent-Tiering lifecycle rule, and applying it to a bucket."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from s3es import ObjectStoreError
from s3es._cli.main import main
from s3es._ops.tiering import MIN_TIERED_BYTES
from s3es.errors import InvalidStreamName
from s3es.ops import apply_tiering_rule, tiering_rule
from s3es.testing.embedded_s3 import EmbeddedS3


def _rules(embedded_s3: EmbeddedS3, bucket: str) -> list[dict[str, Any]]:
    rules = embedded_s3.client().get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    return [dict(rule) for rule in rules]


class TestRule:
    def test_under_a_prefix(self) -> None:
        """The rule moves objects of 128 KB or more under the prefix, at once, to
        Intelligent-Tiering; its id names the prefix."""
        assert tiering_rule("prod/orders") == {
            "ID": "s3es-intelligent-tiering:prod/orders",
            "Status": "Enabled",
            "Filter": {"And": {"Prefix": "prod/orders/", "ObjectSizeGreaterThan": 131_071}},
            "Transitions": [{"Days": 0, "StorageClass": "INTELLIGENT_TIERING"}],
        }
        assert MIN_TIERED_BYTES - 1 == 131_071

    def test_at_the_root(self) -> None:
        """At the bucket's root the rule covers every key."""
        rule = tiering_rule("")
        assert rule["ID"] == "s3es-intelligent-tiering:(bucket root)"
        assert rule["Filter"]["And"]["Prefix"] == ""

    def test_bad_prefix_refused(self) -> None:
        """A prefix that no event store could have is refused, naming it."""
        with pytest.raises(InvalidStreamName, match="'a//b'"):
            tiering_rule("a//b")


class TestApply:
    def test_to_a_bucket_without_rules(self, embedded_s3: EmbeddedS3) -> None:
        """Applied to a bucket with no lifecycle configuration, the rule is all there is."""
        embedded_s3.create_bucket("tier-empty")
        rules = apply_tiering_rule(embedded_s3.client(), "tier-empty", "prod")
        assert [rule["ID"] for rule in rules] == ["s3es-intelligent-tiering:prod"]
        stored = _rules(embedded_s3, "tier-empty")
        assert [(r["ID"], r["Transitions"]) for r in stored] == [
            ("s3es-intelligent-tiering:prod", tiering_rule("prod")["Transitions"])
        ]

    def test_keeps_other_rules_and_is_idempotent(self, embedded_s3: EmbeddedS3) -> None:
        """Other rules stay; applying again replaces the rule, not adds it; another prefix
        gets a rule of its own."""
        embedded_s3.create_bucket("tier-shared")
        client = embedded_s3.client()
        theirs = {
            "ID": "expire-logs",
            "Status": "Enabled",
            "Filter": {"Prefix": "logs/"},
            "Expiration": {"Days": 30},
        }
        client.put_bucket_lifecycle_configuration(
            Bucket="tier-shared",
            LifecycleConfiguration={"Rules": [theirs]},  # type: ignore[list-item]
        )
        apply_tiering_rule(client, "tier-shared", "prod")
        apply_tiering_rule(client, "tier-shared", "prod")
        apply_tiering_rule(client, "tier-shared", "staging")
        assert [rule["ID"] for rule in _rules(embedded_s3, "tier-shared")] == [
            "expire-logs",
            "s3es-intelligent-tiering:prod",
            "s3es-intelligent-tiering:staging",
        ]

    def test_missing_bucket(self, embedded_s3: EmbeddedS3) -> None:
        """A bucket that does not exist gives ObjectStoreError naming it."""
        with pytest.raises(ObjectStoreError) as raised:
            apply_tiering_rule(embedded_s3.client(), "tier-missing", "prod")
        assert raised.value.key == "tier-missing"
        assert "NoSuchBucket" in raised.value.detail


class TestCommand:
    def test_prints_the_rule(self) -> None:
        """s3es tiering prints the rule as JSON and sends no request."""
        out = io.StringIO()
        assert main(["tiering", "--bucket", "any", "--prefix", "prod"], out=out) == 0
        assert json.loads(out.getvalue()) == tiering_rule("prod")

    def test_applies_the_rule(
        self, embedded_s3: EmbeddedS3, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """s3es tiering --apply puts the rule into the bucket's lifecycle configuration."""
        embedded_s3.create_bucket("tier-cli")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        out = io.StringIO()
        argv = ["tiering", "--apply", "--bucket", "tier-cli", "--prefix", "prod"]
        argv += ["--endpoint-url", embedded_s3.endpoint_url, "--region", "us-east-1"]
        assert main(argv, out=out) == 0
        assert out.getvalue().startswith("tier-cli: 1 lifecycle rules, among them:")
        assert [r["ID"] for r in _rules(embedded_s3, "tier-cli")] == [
            "s3es-intelligent-tiering:prod"
        ]

    def test_apply_to_missing_bucket_fails(
        self, embedded_s3: EmbeddedS3, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--apply to a bucket that does not exist prints the error and exits 1."""
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        out = io.StringIO()
        argv = ["tiering", "--apply", "--bucket", "tier-nowhere"]
        argv += ["--endpoint-url", embedded_s3.endpoint_url, "--region", "us-east-1"]
        assert main(argv, out=out) == 1
        assert "tier-nowhere" in out.getvalue()
        assert "NoSuchBucket" in out.getvalue()
