"""The ``s3es`` command: every subcommand, on an in-memory store and on moto's S3."""

from __future__ import annotations

import io
import json
import logging
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

import s3es
from s3es import (
    CommandHandler,
    EventStore,
    InMemoryObjectStore,
    ObjectStoreError,
    Projector,
    Repository,
    StreamName,
)
from s3es._cli.invocation import load_aggregate
from s3es._cli.main import SUBCOMMANDS, main
from s3es._ops.policies import notification_configuration, policies, queue_policy
from s3es._projections.reactor import CORRELATION_ID
from s3es._storage.s3 import S3ObjectStore
from s3es.eventstore import StreamKeys
from s3es.metering import RequestCounts
from s3es.ops import bucket_policy, compact, delete
from s3es.projections import LeaseOptions
from s3es.storage import ObjectStore
from s3es.testing.embedded_s3 import EmbeddedS3
from tests.aggregates import Counter, CounterState, Increment, Incremented
from tests.projections import AppliedIds
from tests.test_selftest import IgnoresIfNoneMatch, LetsTwoRacersThrough

AGGREGATE = "tests.aggregates:Counter"
#: The bucket arguments of the in-memory runs: the store replaces the bucket, the prefix counts.
_ON = ["--bucket", "x", "--prefix", "p"]
#: What compact, delete and erase need to run without a terminal to ask on.
_YES = ["--yes"]


def _fill(store: ObjectStore, stream_id: str, commands: int, *, prefix: str = "p") -> None:
    handler = CommandHandler(Repository(EventStore(store, prefix=prefix), Counter))
    for amount in range(1, commands + 1):
        handler.handle(stream_id, Increment(amount))


class _Terminal(io.StringIO):
    """A stream that says it is a terminal (stdin: its text is what the operator types)."""

    def isatty(self) -> bool:
        return True


def _invoke(
    argv: list[str], store: ObjectStore | None = None, *, stdin: io.StringIO | None = None
) -> tuple[int, str, str]:
    """Run ``s3es`` on ``store``; its status, stdout and stderr. stdin is not a terminal."""
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, store=store, out=out, err=err, stdin=stdin or io.StringIO())
    return status, out.getvalue(), err.getvalue()


def _writes(store: InMemoryObjectStore) -> tuple[int, int]:
    """The PUTs and DELETEs ``store`` has been sent so far."""
    return store.requests.put, store.requests.delete


def _corrupt(store: InMemoryObjectStore, stream_id: str, version: int) -> str:
    key = StreamKeys("p").chunk_key(StreamName("counter", stream_id), version)
    store.delete(key)
    store.put_if_absent(key, b"{not json")
    return key


def _with_lone_surrogate(store: InMemoryObjectStore, stream_id: str, version: int) -> str:
    """Damage a chunk: its first event's metadata holds the JSON escape of a lone surrogate,
    valid UTF-8 bytes that no str can be written back from."""
    key = StreamKeys("p").chunk_key(StreamName("counter", stream_id), version)
    stored = store.get(key)
    assert stored is not None
    document = json.loads(stored.body)
    document["events"][0]["metadata"] = {"note": "\ud800"}
    store.delete(key)
    store.put_if_absent(key, json.dumps(document).encode())
    return key


def without_amounts(event: Incremented) -> Incremented:
    """The --redact function of the erase tests: every amount becomes 0."""
    return Incremented(0)


NOT_A_FUNCTION = 42


class TestCompact:
    def test_merges_each_stream(self) -> None:
        """compact merges every named stream and says what it did and the requests it sent."""
        store = InMemoryObjectStore()
        _fill(store, "a", 3)
        _fill(store, "b", 1)
        argv = ["compact", "--aggregate", AGGREGATE, *_ON, *_YES]
        status, out, err = _invoke([*argv, "a", "b", "missing"], store)
        assert (status, err) == (0, "")
        lines = out.splitlines()
        assert lines[0].startswith("counter/a: merged 3 chunks (3 events) into p/counter/a/")
        assert lines[0].endswith("; 1 LIST + 3 GET + 1 PUT")
        assert lines[1] == "counter/b: nothing to merge; 1 LIST + 1 GET"
        assert lines[2] == "counter/missing: no such stream; 1 LIST"
        assert lines[3].startswith("requests: 3 LIST + 4 GET + 1 PUT ($")
        repository = Repository(EventStore(store, prefix="p"), Counter)
        assert repository.replay("a").state == CounterState(6, 3)

    def test_bad_stream_id_reported(self) -> None:
        """A stream id that cannot be stored is one line on stderr naming it, the others still
        run, and the exit status is 1."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        argv = ["compact", "--aggregate", AGGREGATE, *_ON, *_YES]
        status, out, err = _invoke([*argv, "bad/id", "a"], store)
        assert status == 1
        assert err.startswith("s3es compact: 'bad/id': stream id")
        assert len(err.splitlines()) == 1
        assert "counter/a: merged 2 chunks" in out

    def test_damaged_chunk_is_one_line(self) -> None:
        """A chunk whose content s3es cannot write back (a lone surrogate) fails that stream
        in one line naming it, not with a traceback; the other streams are compacted."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        _fill(store, "b", 2)
        _with_lone_surrogate(store, "a", 2)
        argv = ["compact", "--aggregate", AGGREGATE, *_ON, *_YES, "a", "b"]
        status, out, err = _invoke(argv, store)
        assert status == 1
        assert len(err.splitlines()) == 1
        assert err.startswith("s3es compact: 'a': ")
        assert "surrogate" in err
        assert "counter/b: merged 2 chunks" in out

    def test_against_s3(self, embedded_s3: EmbeddedS3, monkeypatch: pytest.MonkeyPatch) -> None:
        """compact works against an S3 endpoint given by --endpoint-url."""
        embedded_s3.create_bucket("cli-compact")
        _fill(embedded_s3.object_store("cli-compact"), "s", 4)
        argv = ["compact", "--aggregate", AGGREGATE, "--bucket", "cli-compact", "--prefix", "p"]
        argv += ["--endpoint-url", embedded_s3.endpoint_url, "--region", "us-east-1", *_YES, "s"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        status, out, _ = _invoke(argv)
        assert status == 0
        assert "counter/s: merged 4 chunks (4 events)" in out


class TestCompactAll:
    def test_every_stream_of_the_type(self) -> None:
        """--all compacts every stream of the aggregate's STREAM_TYPE, listed by the event
        store (one LIST for the streams)."""
        store = InMemoryObjectStore()
        for stream_id in ("a", "b", "c"):
            _fill(store, stream_id, 2)
        status, out, _ = _invoke(["compact", "--all", "--aggregate", AGGREGATE, *_ON, *_YES], store)
        assert status == 0
        lines = out.splitlines()
        assert [line.split(":")[0] for line in lines[:3]] == ["counter/a", "counter/b", "counter/c"]
        assert all("merged 2 chunks" in line for line in lines[:3])
        assert lines[3].startswith("requests: 4 LIST + 6 GET + 3 PUT ($")

    def test_no_stream_of_the_type(self) -> None:
        """--all on a prefix without streams of the type says so and exits 0."""
        argv = ["compact", "--all", "--aggregate", AGGREGATE, *_ON, *_YES]
        status, out, _ = _invoke(argv, InMemoryObjectStore())
        assert status == 0
        assert out.splitlines()[0] == "no stream of type 'counter' under prefix 'p' of bucket 'x'"

    @pytest.mark.parametrize(
        ("streams", "message"),
        [
            (["--all", "a"], "give STREAM_IDs or --all, not both"),
            ([], "give the STREAM_IDs, or --all for every stream of the type"),
        ],
    )
    def test_ids_or_all(self, streams: list[str], message: str) -> None:
        """Exactly one of STREAM_IDs and --all: else a usage error, before any request."""
        store = InMemoryObjectStore()
        status, _, err = _invoke(
            ["compact", "--aggregate", AGGREGATE, *_ON, *_YES, *streams], store
        )
        assert status == 2
        assert err == f"s3es compact: error: {message} (see 's3es compact --help')\n"
        assert store.requests.total == 0

    def test_progress_on_a_terminal(self) -> None:
        """On a terminal, a bar counts the streams on stderr, wiped before each stream's line."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        _fill(store, "b", 2)
        out, err = io.StringIO(), _Terminal()
        argv = ["compact", "--all", "--aggregate", AGGREGATE, *_ON, *_YES]
        assert main(argv, store=store, out=out, err=err, stdin=io.StringIO()) == 0
        assert f"compact [{'#' * 15}{' ' * 15}] 1/2 streams" in err.getvalue()
        assert f"compact [{'#' * 30}] 2/2 streams" in err.getvalue()
        assert "compact [" not in out.getvalue()


class TestConfirmation:
    @pytest.mark.parametrize(
        "argv",
        [
            ["compact", "--aggregate", AGGREGATE, "a"],
            ["delete", "--aggregate", AGGREGATE, "a"],
            ["erase", "--aggregate", AGGREGATE, "--redact", "tests.test_cli:without_amounts", "a"],
        ],
        ids=["compact", "delete", "erase"],
    )
    def test_refused_without_a_terminal(self, argv: list[str]) -> None:
        """Without --yes, and with no terminal to ask on, a usage error: nothing is sent."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        before = store.requests
        status, out, err = _invoke([*argv, *_ON], store)
        assert (status, out) == (2, "")
        assert err.startswith(f"s3es {argv[0]}: error: {argv[0]} writes to the bucket: confirm ")
        assert "--yes" in err
        assert "--dry-run" in err
        assert len(err.splitlines()) == 1
        assert store.requests == before

    def test_asks_on_a_terminal(self) -> None:
        """On a terminal it names what it will do and goes on after "y"."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        argv = ["delete", "--aggregate", AGGREGATE, *_ON, "a", "b"]
        status, out, err = _invoke(argv, store, stdin=_Terminal("y\n"))
        assert status == 0
        assert err == (
            "delete 2 streams of type 'counter' (a, b) under prefix 'p' of bucket 'x': store a "
            "tombstone as the next version, then delete every chunk below it? [y/N] "
        )
        assert out.startswith("counter/a: tombstone at version 3")

    @pytest.mark.parametrize("answer", ["n\n", "\n", "", "yes please\n"])
    def test_anything_but_yes_stops(self, answer: str) -> None:
        """Any answer but y or yes (an empty line, end of input) writes nothing; status 1."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        writes = _writes(store)
        argv = ["compact", "--aggregate", AGGREGATE, *_ON, "a"]
        status, out, err = _invoke(argv, store, stdin=_Terminal(answer))
        assert (status, out) == (1, "")
        assert err.endswith("[y/N] s3es compact: not confirmed; nothing written\n")
        assert _writes(store) == writes

    def test_names_a_few_streams(self) -> None:
        """Of many streams, the question names three and counts the rest."""
        store = InMemoryObjectStore()
        for stream_id in "abcde":
            _fill(store, stream_id, 1)
        argv = ["compact", "--all", "--aggregate", AGGREGATE, "--bucket", "x", "--prefix", "p"]
        _, _, err = _invoke(argv, store, stdin=_Terminal("no\n"))
        assert err.startswith("compact 5 streams of type 'counter' (a, b, c, ... (2 more)) ")


class TestDryRun:
    @pytest.mark.parametrize(
        ("argv", "would"),
        [
            (["compact", "--aggregate", AGGREGATE], "merge the chunks a full read follows"),
            (["delete", "--aggregate", AGGREGATE], "store a tombstone as the next version"),
            (
                ["erase", "--aggregate", AGGREGATE, "--redact", "tests.test_cli:without_amounts"],
                "rewrite the events through --redact",
            ),
        ],
        ids=["compact", "delete", "erase"],
    )
    def test_shows_and_writes_nothing(self, argv: list[str], would: str) -> None:
        """--dry-run prints each stream's version and chunk count, a deleted one as such, and
        what the command would do; it sends no PUT and no DELETE, and needs no --yes."""
        store = InMemoryObjectStore()
        _fill(store, "a", 3)
        _fill(store, "gone", 2)
        delete(Repository(EventStore(store, prefix="p"), Counter), "gone")
        writes = _writes(store)
        status, out, err = _invoke([*argv, *_ON, "--dry-run", "a", "gone", "missing"], store)
        assert (status, err) == (0, "")
        lines = out.splitlines()
        assert lines[:3] == [
            "counter/a: version 3, 3 chunks",
            "counter/gone: deleted at version 3, 3 chunks",  # the tombstone and 2 fences
            "counter/missing: no such stream",
        ]
        assert lines[3].startswith(f"dry run, nothing written: {argv[0]} would {would}")
        assert lines[4].startswith("requests: 3 LIST + 2 GET ($")
        assert _writes(store) == writes

    def test_compact_all(self) -> None:
        """compact --all --dry-run lists the streams of the type and writes nothing."""
        store = InMemoryObjectStore()
        _fill(store, "a", 1)
        _fill(store, "b", 2)
        writes = _writes(store)
        argv = ["compact", "--all", "--dry-run", "--aggregate", AGGREGATE, *_ON]
        status, out, _ = _invoke(argv, store)
        assert status == 0
        assert out.splitlines()[:2] == [
            "counter/a: version 1, 1 chunk",
            "counter/b: version 2, 2 chunks",
        ]
        assert _writes(store) == writes

    def test_bad_stream_id(self) -> None:
        """A stream id that cannot be stored is one line on stderr; status 1."""
        status, out, err = _invoke(
            ["delete", "--aggregate", AGGREGATE, *_ON, "--dry-run", "x/y"], InMemoryObjectStore()
        )
        assert status == 1
        assert err.startswith("s3es delete: 'x/y': stream id")
        assert "dry run, nothing written" in out


class TestErase:
    def test_redacts_and_erases(self) -> None:
        """erase rewrites the stream through --redact and erases the chunks it stood for."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        argv = ["erase", "--aggregate", AGGREGATE, "--redact", "tests.test_cli:without_amounts"]
        status, out, err = _invoke([*argv, *_ON, *_YES, "a", "missing"], store)
        assert (status, err) == (0, "")
        lines = out.splitlines()
        assert lines[0].startswith("counter/a: redacted into p/counter/a/")
        assert ", 2 chunks erased; " in lines[0]
        assert lines[1] == "counter/missing: no such stream; 1 LIST"
        repository = Repository(EventStore(store, prefix="p"), Counter)
        assert [r.event for r in repository.read("a")] == [Incremented(0), Incremented(0)]

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ("without_amounts", "--redact must be module:function"),
            ("tests.test_cli:nothing", "tests.test_cli has no function 'nothing'"),
            ("tests.test_cli:NOT_A_FUNCTION", "has no function 'NOT_A_FUNCTION'"),
            ("no_such_module:f", "cannot import 'no_such_module'"),
        ],
    )
    def test_bad_redact(self, spec: str, message: str) -> None:
        """A --redact that is not module:function is a usage error naming it."""
        argv = ["erase", "--aggregate", AGGREGATE, "--redact", spec, *_ON, *_YES, "a"]
        status, _, err = _invoke(argv, InMemoryObjectStore())
        assert status == 2
        assert message in err


class TestAggregateOption:
    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ("Counter", "must be module:Class"),
            ("no_such_module:Counter", "cannot import 'no_such_module'"),
            ("tests.aggregates:Nothing", "has no Aggregate 'Nothing'"),
            ("tests.aggregates:Increment", "has no Aggregate 'Increment'"),
        ],
    )
    def test_refused(self, spec: str, message: str) -> None:
        """An --aggregate that is not module:Class of an Aggregate is refused, saying why."""
        with pytest.raises(ValueError, match=message):
            load_aggregate(spec)

    def test_usage_error_exit(self) -> None:
        """On the command line, a wrong --aggregate exits 2 with the reason, in one line."""
        status, _, err = _invoke(["compact", "--aggregate", "nope", *_ON, *_YES, "s"])
        assert status == 2
        assert err == (
            "s3es compact: error: --aggregate must be module:Class, not 'nope' "
            "(see 's3es compact --help')\n"
        )

    def test_module_that_fails_to_import(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A module that raises while it is imported is named with what it raised, in one
        line: a usage error, not a traceback."""
        (tmp_path / "broken_domain.py").write_text(
            "import attrs\nraise RuntimeError('no config')\n"
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        argv = ["delete", "--aggregate", "broken_domain:Order", *_ON, *_YES, "o-1"]
        status, _, err = _invoke(argv, InMemoryObjectStore())
        assert status == 2
        assert len(err.splitlines()) == 1
        assert (
            "'broken_domain:Order': importing 'broken_domain' raised RuntimeError: no config" in err
        )

    def test_found(self) -> None:
        """module:Class of an Aggregate gives that class."""
        assert load_aggregate(AGGREGATE) is Counter


class TestDelete:
    def test_deletes_each_stream(self) -> None:
        """delete stores a tombstone per stream and deletes the chunks below it, saying so."""
        store = InMemoryObjectStore()
        _fill(store, "a", 3)
        argv = ["delete", "--aggregate", AGGREGATE, *_ON, *_YES]
        status, out, _ = _invoke([*argv, "a", "missing"], store)
        assert status == 0
        lines = out.splitlines()
        assert lines[0] == (
            "counter/a: tombstone at version 4, 3 chunks deleted; 2 LIST + 4 GET + 4 PUT"
        )
        assert lines[1] == "counter/missing: no such stream; 1 LIST"
        assert len(list(store.list_keys("p/counter/a/"))) == 4  # the tombstone and 3 fences


class TestEnvironment:
    def test_bucket_and_prefix(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """$S3ES_BUCKET and $S3ES_PREFIX stand for --bucket and --prefix."""
        monkeypatch.setenv("S3ES_BUCKET", "from-env")
        monkeypatch.setenv("S3ES_PREFIX", "p")
        store = InMemoryObjectStore()
        status, out, _ = _invoke(["self-test"], store)
        assert status == 0
        assert out.startswith("self-test of bucket 'from-env', scratch key p/_selftest/")

    def test_the_flag_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """--bucket and --prefix win over the environment."""
        monkeypatch.setenv("S3ES_BUCKET", "from-env")
        monkeypatch.setenv("S3ES_PREFIX", "elsewhere")
        store = InMemoryObjectStore()
        _fill(store, "a", 1)
        status, out, _ = _invoke(["show", "counter", "a", "--bucket", "b", "--prefix", "p"], store)
        assert status == 0
        assert out.startswith("counter/a: chunks, under p/counter/a/")

    def test_policy_too(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """policy takes its bucket and prefix from the environment as well."""
        monkeypatch.setenv("S3ES_BUCKET", "b-1")
        monkeypatch.setenv("S3ES_PREFIX", "p")
        status, out, _ = _invoke(["policy"])
        assert status == 0
        assert json.loads(out) == policies("b-1", "p")

    def test_no_bucket(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Neither --bucket nor $S3ES_BUCKET: a usage error that names both."""
        monkeypatch.delenv("S3ES_BUCKET", raising=False)
        status, out, err = _invoke(["list"], InMemoryObjectStore())
        assert (status, out) == (2, "")
        assert err == (
            "s3es list: error: --bucket is required (or set S3ES_BUCKET) (see 's3es list --help')\n"
        )

    def test_endpoint_url(self, embedded_s3: EmbeddedS3, monkeypatch: pytest.MonkeyPatch) -> None:
        """$AWS_ENDPOINT_URL stands for --endpoint-url, and the flag wins over it."""
        embedded_s3.create_bucket("cli-env")
        _fill(embedded_s3.object_store("cli-env"), "s", 1)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("S3ES_BUCKET", "cli-env")
        monkeypatch.setenv("AWS_ENDPOINT_URL", embedded_s3.endpoint_url)
        assert _invoke(["list", "counter", "--prefix", "p"])[:2] == (0, "s\n")
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
        argv = ["list", "counter", "--prefix", "p", "--endpoint-url", embedded_s3.endpoint_url]
        assert _invoke(argv)[:2] == (0, "s\n")


def _closed_port() -> int:
    """A local TCP port that nothing listens on (it was just bound and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class TestVersion:
    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """s3es --version prints the package's version and exits 0."""
        with pytest.raises(SystemExit) as raised:
            main(["--version"])
        assert raised.value.code == 0
        assert capsys.readouterr().out == f"s3es {s3es.__version__}\n"


class TestFailures:
    @pytest.mark.parametrize("url", ["localhost:9000", "127.0.0.1", "ftp://host", "http://"])
    def test_endpoint_url_without_a_scheme(self, url: str) -> None:
        """An endpoint URL that is not http(s)://host is a usage error, one line."""
        status, _, err = _invoke(["list", "--bucket", "b", "--endpoint-url", url])
        assert status == 2
        assert err.startswith("s3es list: error: argument --endpoint-url: must be an http:// ")
        assert f"not {url!r}" in err
        assert len(err.splitlines()) == 1

    def test_endpoint_url_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A $AWS_ENDPOINT_URL without a scheme is refused the same way."""
        monkeypatch.setenv("AWS_ENDPOINT_URL", "localhost:9000")
        status, _, err = _invoke(["list", "--bucket", "b"])
        assert status == 2
        assert "--endpoint-url: must be an http:// or https:// URL" in err

    def test_bad_prefix(self) -> None:
        """A prefix no event store can have is a usage error naming it."""
        status, _, err = _invoke(["list", "--bucket", "b", "--prefix", "a/../b"])
        assert status == 2
        assert err.startswith("s3es list: error: argument --prefix: ")

    def test_unknown_subcommand(self) -> None:
        """argparse's own errors are one line too, pointing at --help."""
        status, _, err = _invoke(["frobnicate"])
        assert status == 2
        assert err.startswith("s3es: error: argument SUBCOMMAND: invalid choice: 'frobnicate'")
        assert err.endswith("(see 's3es --help')\n")
        assert len(err.splitlines()) == 1

    def _aws(self, monkeypatch: pytest.MonkeyPatch, *, credentials: bool = True) -> None:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        if credentials:
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        else:
            monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
            monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)

    def test_no_credentials(self, embedded_s3: EmbeddedS3, monkeypatch: pytest.MonkeyPatch) -> None:
        """No AWS credentials anywhere: one line saying so, status 1."""
        self._aws(monkeypatch, credentials=False)
        argv = ["list", "--bucket", "cli-b", "--endpoint-url", embedded_s3.endpoint_url]
        status, _, err = _invoke([*argv, "--region", "us-east-1"])
        assert status == 1
        assert err == "s3es list: LIST '' failed: Unable to locate credentials\n"

    def test_no_such_bucket(self, embedded_s3: EmbeddedS3, monkeypatch: pytest.MonkeyPatch) -> None:
        """A bucket that does not exist: one line naming the request and the error code."""
        self._aws(monkeypatch)
        argv = ["show", "counter", "a", "--bucket", "no-such-bucket-cli"]
        argv += ["--endpoint-url", embedded_s3.endpoint_url, "--region", "us-east-1"]
        status, _, err = _invoke(argv)
        assert status == 1
        assert err.startswith("s3es show: LIST 'counter/a/' failed")
        assert "NoSuchBucket" in err
        assert len(err.splitlines()) == 1

    def test_connection_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An endpoint nothing listens on: one line naming it, status 2, after one attempt
        (no retries before the endpoint has answered once) with a short connect timeout."""
        self._aws(monkeypatch)
        stores = self._capture_stores(monkeypatch)
        url = f"http://127.0.0.1:{_closed_port()}"
        argv = ["verify", "--bucket", "cli-b", "--endpoint-url", url, "--region", "us-east-1"]
        status, out, err = _invoke(argv)
        assert (status, out) == (2, "")
        assert err.startswith(
            f"s3es verify: cannot connect to the endpoint {url} (is --endpoint-url right, and "
            f'the server up?): Could not connect to the endpoint URL: "{url}/cli-b?'
        )
        assert len(err.splitlines()) == 1
        (store,) = stores
        assert store.requests == RequestCounts(list=1)
        assert store.client.meta.config.connect_timeout == 3  # type: ignore[attr-defined]

    def test_retries_once_the_endpoint_answered(
        self, embedded_s3: EmbeddedS3, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Once the endpoint has answered, a connection error is retried as botocore does:
        the fail-fast is only for an endpoint that never answered."""
        self._aws(monkeypatch)
        embedded_s3.create_bucket("cli-reached")
        stores = self._capture_stores(monkeypatch)
        argv = ["list", "--bucket", "cli-reached", "--endpoint-url", embedded_s3.endpoint_url]
        assert _invoke([*argv, "--region", "us-east-1"])[0] == 0
        (store,) = stores
        handlers = store.client.meta.events
        responses = handlers.emit(
            "needs-retry.s3.ListObjectsV2",
            response=None,
            endpoint=None,
            operation=None,
            attempts=1,
            caught_exception=EndpointConnectionError(endpoint_url=embedded_s3.endpoint_url),
            request_dict={"context": {}},
        )
        assert any(delay is not None for _, delay in responses)

    @staticmethod
    def _capture_stores(monkeypatch: pytest.MonkeyPatch) -> list[S3ObjectStore]:
        """The stores S3ObjectStore.connect makes from now on."""
        stores: list[S3ObjectStore] = []
        connect = S3ObjectStore.connect.__func__  # type: ignore[attr-defined]

        def capturing(
            cls: type[S3ObjectStore], /, *args: object, **kwargs: object
        ) -> S3ObjectStore:
            store: S3ObjectStore = connect(cls, *args, **kwargs)
            stores.append(store)
            return store

        monkeypatch.setattr(S3ObjectStore, "connect", classmethod(capturing))
        return stores

    @pytest.mark.parametrize(
        ("bucket", "rule"),
        [
            ("b", "3 to 63 characters"),
            ("Not_A_Bucket", "lower-case letters, digits, dots and hyphens"),
            ("abc-", "begins and ends with a letter or digit"),
            ("a..b", "no two dots in a row"),
            ("192.168.1.1", "not an IP address"),
            ("xn--abc", "no reserved prefix"),
        ],
    )
    def test_bucket_name_s3_refuses(
        self, bucket: str, rule: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A bucket name S3 refuses is a usage error naming the bucket and the rule, before
        any request (a refusal by S3 itself would be a botocore InvalidBucketName)."""
        self._aws(monkeypatch)
        stores = self._capture_stores(monkeypatch)
        url = f"http://127.0.0.1:{_closed_port()}"
        status, out, err = _invoke(["list", "--bucket", bucket, "--endpoint-url", url])
        assert (status, out) == (2, "")
        assert err.startswith(f"s3es list: error: --bucket {bucket!r} is not an S3 bucket name: ")
        assert rule in err
        assert len(err.splitlines()) == 1
        assert stores == []

    def test_invalid_bucket_name_from_s3(self) -> None:
        """A name S3 refuses that s3es let through (S3's answer InvalidBucketName) is one line
        naming the bucket, status 2."""
        error = ClientError(
            {
                "Error": {
                    "Code": "InvalidBucketName",
                    "Message": "The specified bucket is not valid.",
                }
            },
            "ListObjectsV2",
        )

        class Refusing(InMemoryObjectStore):
            def list_prefixes(self, prefix: str) -> Any:
                raise ObjectStoreError("LIST", prefix, "InvalidBucketName") from error

        status, _, err = _invoke(["list", *_ON], Refusing())
        assert status == 2
        assert err == (
            "s3es list: error: S3 refuses the bucket name 'x': The specified bucket is not "
            "valid. (see 's3es list --help')\n"
        )

    def test_broken_pipe(self) -> None:
        """A reader of stdout that went away (s3es list | head) ends it quietly, status 141."""

        class Gone(io.StringIO):
            def write(self, text: str) -> int:
                raise BrokenPipeError

        store = InMemoryObjectStore()
        _fill(store, "a", 1)
        err = io.StringIO()
        assert main(["list", *_ON], store=store, out=Gone(), err=err) == 141
        assert err.getvalue() == ""


class TestLogging:
    def test_quiet_by_default(self) -> None:
        """Without -v, s3es's info lines are not printed."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        status, _, err = _invoke(["compact", "--aggregate", AGGREGATE, *_ON, *_YES, "a"], store)
        assert (status, err) == (0, "")

    def test_verbose(self) -> None:
        """-v prints s3es's info lines on stderr, through stdlib logging; afterwards the
        ``s3es`` logger is as it was."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        level = logging.getLogger("s3es").level
        argv = ["compact", "-v", "--aggregate", AGGREGATE, *_ON, *_YES, "a"]
        status, out, err = _invoke(argv, store)
        assert status == 0
        assert "INFO s3es.maintenance: merged " in err
        assert "INFO" not in out
        assert logging.getLogger("s3es").level == level


class TestList:
    def test_stream_types(self) -> None:
        """list prints the stream types, one a line; the requests line goes to stderr."""
        store = InMemoryObjectStore()
        _fill(store, "a", 1)
        status, out, err = _invoke(["list", *_ON], store)
        assert (status, out) == (0, "counter\n")
        # 1 for the types, 2 to see that the type's first folder holds chunks
        assert err.startswith("requests: 3 LIST ($")

    def test_an_event_store_under_a_longer_prefix(self) -> None:
        """Without --prefix, the folder of an event store under prefix "p" is not listed as a
        stream type (it holds folders of streams, not streams): stderr names it and the
        --prefix to give. A stream type beside it is listed."""
        store = InMemoryObjectStore()
        _fill(store, "a", 1)  # under p/
        _fill(store, "b", 1, prefix="")  # under the root: counter/b/
        Projector(EventStore(store, prefix="p"), AppliedIds).catch_up()  # p/_projections/...
        status, out, err = _invoke(["list", "--bucket", "x"], store)
        assert (status, out) == (0, "counter\n")
        assert err.splitlines()[0] == (
            "s3es list: 'p' is not a stream type (its first folder holds no chunk): an event "
            "store under --prefix p?"
        )
        assert err.splitlines()[1].startswith("requests: 5 LIST ($")
        assert _invoke(["list", "--bucket", "x", "--prefix", "p"], store)[1] == "counter\n"

    def test_streams_of_a_type(self) -> None:
        """list TYPE prints the ids of its streams, for pipes: one LIST per 1,000 streams."""
        store = InMemoryObjectStore()
        for stream_id in ("b", "a"):
            _fill(store, stream_id, 1)
        status, out, err = _invoke(["list", "counter", *_ON], store)
        assert (status, out) == (0, "a\nb\n")
        assert err.startswith("requests: 1 LIST ($")

    def test_versions(self) -> None:
        """--versions adds a tab and each stream's latest version: 1 LIST + 1 GET per stream."""
        store = InMemoryObjectStore()
        _fill(store, "a", 3)
        _fill(store, "b", 2)
        delete(Repository(EventStore(store, prefix="p"), Counter), "b")
        status, out, err = _invoke(["list", "counter", "--versions", *_ON], store)
        assert (status, out) == (0, "a\t3\nb\t3 (deleted)\n")
        assert err.startswith("requests: 3 LIST + 2 GET ($")

    def test_versions_with_a_corrupt_chunk(self) -> None:
        """A stream whose latest chunk cannot be read is reported on stderr; exit status 1."""
        store = InMemoryObjectStore()
        _fill(store, "a", 1)
        _fill(store, "b", 1)
        key = _corrupt(store, "a", 1)
        status, out, err = _invoke(["list", "counter", "--versions", *_ON], store)
        assert (status, out) == (1, "b\t1\n")
        assert err.startswith(f"s3es list: counter/a: corrupt chunk {key!r}: not UTF-8 JSON")


class TestShow:
    def test_table(self) -> None:
        """show prints the chunks a full read follows, then the events, then the requests."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        status, out, _ = _invoke(["show", "counter", "a", *_ON], store)
        assert status == 0
        lines = out.splitlines()
        assert lines[:4] == [
            "counter/a: chunks, under p/counter/a/",
            "KEY                               VERSION  CHUNK  BASE  EVENTS  SNAPSHOT  FLAGS",
            "99999999999999999997.999999.json  2        0      1     1       1",
            "99999999999999999998.999999.json  1        0      0     1       1",
        ]
        assert lines[5].split() == ["VERSION", "TYPE", "ID", "SCHEMA", "RECORDED_AT", "DATA"]
        assert lines[6].split()[:2] == ["1", "Incremented"]
        assert lines[7].split()[-1] == '{"amount":2}'
        assert lines[-1].startswith("requests: 1 LIST + 2 GET ($")

    def test_json_all_chunks(self) -> None:
        """--json --all-chunks: every chunk, the merged one flagged and read; the events once."""
        store = InMemoryObjectStore()
        _fill(store, "a", 3)
        compact(Repository(EventStore(store, prefix="p"), Counter), "a")
        status, out, _ = _invoke(["show", "counter", "a", "--json", "--all-chunks", *_ON], store)
        assert status == 0
        document = json.loads(out)
        assert document["stream"] == "counter/a"
        assert [(c["version"], c["chunk"], c["flags"]) for c in document["chunks"]] == [
            (3, 1, ["merged 1-3", "read"]),
            (3, 0, []),
            (2, 0, []),
            (1, 0, []),
        ]
        assert [(e["version"], e["type"], e["data"]) for e in document["events"]] == [
            (1, "Incremented", {"amount": 1}),
            (2, "Incremented", {"amount": 2}),
            (3, "Incremented", {"amount": 3}),
        ]
        assert document["requests"] == {"put": 0, "get": 4, "list": 1, "delete": 0}
        assert document["problems"] == []

    def test_deleted_stream(self) -> None:
        """A deleted stream says so; --all-chunks shows what is left: the tombstone, and a
        fence at each version below it."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        delete(Repository(EventStore(store, prefix="p"), Counter), "a")
        status, out, _ = _invoke(["show", "counter", "a", *_ON], store)
        assert status == 0
        assert (
            out.splitlines()[0] == "counter/a: deleted (tombstone at version 3), under p/counter/a/"
        )
        status, out, _ = _invoke(["show", "counter", "a", "--all-chunks", *_ON], store)
        assert status == 0
        lines = out.splitlines()
        assert lines[2].split()[-1] == "tombstone"
        assert [line.split()[-1] for line in lines[3:5]] == ["fence", "fence"]

    @pytest.mark.parametrize("json_output", [[], ["--json"]], ids=["table", "json"])
    def test_no_such_stream(self, json_output: list[str]) -> None:
        """A stream with no chunk is one line on stderr saying so; exit status 1."""
        argv = ["show", "counter", "nope", *_ON, *json_output]
        status, out, err = _invoke(argv, InMemoryObjectStore())
        assert (status, out) == (1, "")
        assert err == "s3es show: counter/nope: no such stream (nothing under p/counter/nope/)\n"

    def test_corrupt_chunk(self) -> None:
        """A chunk that cannot be read: --all-chunks shows the others and names it (status 1);
        without it, the read stops with the error."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        key = _corrupt(store, "a", 1)
        status, out, _ = _invoke(["show", "counter", "a", "--all-chunks", *_ON], store)
        assert status == 1
        assert f"problem: counter/a: {key}: not UTF-8 JSON" in out
        assert "unreadable" in out
        status, _, err = _invoke(["show", "counter", "a", *_ON], store)
        assert status == 1
        assert err.startswith(f"s3es show: corrupt chunk {key!r}")

    def test_bad_stream_id(self) -> None:
        """A stream id that cannot be stored is an error naming it."""
        status, _, err = _invoke(["show", "counter", "..", *_ON], InMemoryObjectStore())
        assert status == 1
        assert "stream id (of stream type 'counter') must not be '..'" in err


class TestVerify:
    def test_sound(self) -> None:
        """A sound prefix: the summary and the requests, exit status 0."""
        store = InMemoryObjectStore()
        _fill(store, "a", 3)
        _fill(store, "b", 1)
        status, out, _ = _invoke(["verify", *_ON, "--aggregate", AGGREGATE], store)
        assert status == 0
        assert out.splitlines()[0] == (
            "verified 2 streams, 4 chunks, 4 events (2 snapshots compared with a full replay): "
            "no problem"
        )
        assert out.splitlines()[1].startswith("requests: 4 LIST + 4 GET ($")

    def test_corrupt(self) -> None:
        """One line per problem, naming stream and key, then the summary; exit status 1."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        _fill(store, "b", 2)
        key = _corrupt(store, "b", 2)
        status, out, _ = _invoke(["verify", "counter", *_ON], store)
        assert status == 1
        lines = out.splitlines()
        assert lines[0].startswith(f"problem: counter/b: {key}: not UTF-8 JSON")
        assert lines[1] == "verified 2 streams, 4 chunks, 3 events: 1 problem"

    def test_named_streams(self) -> None:
        """verify TYPE ID... reads only the streams named."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        _fill(store, "b", 5)
        status, out, _ = _invoke(["verify", "counter", "a", *_ON], store)
        assert status == 0
        assert out.splitlines()[0] == "verified 1 stream, 2 chunks, 2 events: no problem"

    def test_aggregate_of_another_type(self) -> None:
        """An --aggregate whose type is not the STREAM_TYPE given is a usage error."""
        argv = ["verify", "order", *_ON, "--aggregate", AGGREGATE]
        status, _, err = _invoke(argv, InMemoryObjectStore())
        assert status == 2
        assert "--aggregate gives stream types ['counter'], but STREAM_TYPE is 'order'" in err

    def test_progress_on_a_terminal(self) -> None:
        """On a terminal, a progress bar is drawn on stderr; stdout keeps the report."""
        store = InMemoryObjectStore()
        _fill(store, "a", 1)
        out, err = io.StringIO(), _Terminal()
        assert main(["verify", *_ON], store=store, out=out, err=err) == 0
        assert f"\rverify [{'#' * 30}] 1/1 streams" in err.getvalue()
        assert err.getvalue().endswith("\n")
        assert "verify [" not in out.getvalue()


class TestSelfTest:
    def test_passes(self) -> None:
        """Each check is printed, then the verdict and the requests; exit status 0."""
        status, out, _ = _invoke(["self-test", *_ON], InMemoryObjectStore())
        assert status == 0
        lines = out.splitlines()
        assert lines[0].startswith("self-test of bucket 'x', scratch key p/_selftest/")
        assert sum(line.startswith("  ok ") for line in lines) == 7
        assert lines[-2] == "bucket 'x' honours If-None-Match and If-Match: s3es can run on it"
        assert lines[-1].startswith("requests: 9 GET + 101 PUT + 4 DELETE ($")

    def test_a_lost_race_fails(self) -> None:
        """A store that refuses one writer at a time but lets racing writers both win fails,
        naming the round; --rounds and --racers size the races."""
        argv = ["self-test", *_ON, "--rounds", "2", "--racers", "4"]
        status, out, _ = _invoke(argv, LetsTwoRacersThrough(InMemoryObjectStore()))
        assert status == 1
        assert sum(line.startswith("  ok ") for line in out.splitlines()) == 5
        assert (
            "  FAILED If-None-Match: of 4 PUTs racing for one key, exactly one wins: round 1: "
            "2 of 4 racers were told they won 'p/_selftest/"
        ) in out
        assert "does NOT honour If-None-Match and If-Match, so s3es must not run on it" in out

    @pytest.mark.parametrize("option", ["--rounds", "--racers"])
    def test_too_few(self, option: str) -> None:
        """--rounds 0 or --racers 1 is a usage error."""
        status, _, err = _invoke(["self-test", *_ON, option, "1" if option == "--racers" else "0"])
        assert status == 2
        assert f"argument {option}: " in err

    def test_fails(self) -> None:
        """A store that ignores If-None-Match fails with a message naming it; exit status 1."""
        status, out, _ = _invoke(["self-test", *_ON], IgnoresIfNoneMatch(InMemoryObjectStore()))
        assert status == 1
        assert "  FAILED If-None-Match: a second PUT of the key is refused" in out
        assert "bucket 'x' does NOT honour If-None-Match, so s3es must not run on it" in out

    def test_against_s3(self, embedded_s3: EmbeddedS3) -> None:
        """self-test --endpoint-url checks a real endpoint (moto here)."""
        embedded_s3.create_bucket("cli-self-test")
        argv = ["self-test", "--bucket", "cli-self-test", "--prefix", "prod"]
        argv += ["--endpoint-url", embedded_s3.endpoint_url, "--region", "us-east-1"]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AWS_ACCESS_KEY_ID", "testing")
            patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            status, out, _ = _invoke(argv)
        assert status == 0, out
        assert "honours If-None-Match and If-Match" in out

    def test_missing_bucket(self, embedded_s3: EmbeddedS3) -> None:
        """A bucket that does not exist is an error naming the request that failed."""
        argv = ["self-test", "--bucket", "no-such-bucket", "--endpoint-url"]
        argv += [embedded_s3.endpoint_url, "--region", "us-east-1"]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AWS_ACCESS_KEY_ID", "testing")
            patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            status, _, err = _invoke(argv)
        assert status == 1
        assert err.startswith("s3es self-test: PUT '_selftest/")
        assert "NoSuchBucket" in err


class TestPolicy:
    def test_all(self) -> None:
        """policy prints the three policies as one JSON document, sending no request."""
        status, out, _ = _invoke(["policy", "--bucket", "b-1", "--prefix", "p"])
        assert status == 0
        assert json.loads(out) == policies("b-1", "p")

    def test_only_one(self) -> None:
        """--only prints one policy, as put-bucket-policy takes it; options reach it."""
        argv = ["policy", "--bucket", "b-1", "--only", "bucket-policy"]
        status, out, _ = _invoke([*argv, "--operator-arn", "arn:aws:iam::1:role/op"])
        assert status == 0
        assert json.loads(out) == bucket_policy("b-1", operator_arns=["arn:aws:iam::1:role/op"])

    def test_bad_bucket(self) -> None:
        """A bucket name S3 would refuse is a usage error."""
        status, _, err = _invoke(["policy", "--bucket", "Not_A_Bucket"])
        assert status == 2
        assert "not an S3 bucket name: 'Not_A_Bucket'" in err

    def test_queue_documents(self) -> None:
        """--queue-arn adds the notification configuration and the queue policy; --only
        queue-policy prints the attributes set-queue-attributes takes (the policy as a string)."""
        queue = "arn:aws:sqs:us-east-1:111122223333:chunks"
        argv = ["policy", "--bucket", "b-1", "--prefix", "p", "--queue-arn", queue]
        status, out, _ = _invoke([*argv, "--bucket-account-id", "111122223333"])
        assert status == 0
        assert json.loads(out) == policies(
            "b-1", "p", queue_arn=queue, bucket_account_id="111122223333"
        )
        status, out, _ = _invoke([*argv, "--only", "notification-configuration"])
        assert json.loads(out) == notification_configuration(queue, "p")
        status, out, _ = _invoke([*argv, "--only", "queue-policy"])
        assert json.loads(json.loads(out)["Policy"]) == queue_policy("b-1", queue)

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--only", "queue-policy"], "--only queue-policy needs --queue-arn"),
            (["--bucket-account-id", "111122223333"], "--bucket-account-id is for the queue"),
            (["--queue-arn", "arn:aws:sqs:us-east-1:1:q"], "not an SQS queue ARN"),
            (["--queue-arn", "arn:aws:sqs:us-east-1:111122223333:q.fifo"], "FIFO queue"),
        ],
    )
    def test_queue_usage_errors(self, argv: list[str], message: str) -> None:
        """A queue document without its queue, or a queue S3 cannot send to: usage errors."""
        status, _, err = _invoke(["policy", "--bucket", "b-1", *argv])
        assert status == 2
        assert message in err


PROJECTION = "tests.projections:AppliedIds"


class TestProjection:
    def test_status_before_and_after(self) -> None:
        """status shows the stored model and the lease; catch-up runs one pass and releases."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        _fill(store, "b", 1)
        status, out, _ = _invoke(["projection", "status", *_ON, "--projection", PROJECTION], store)
        assert status == 0
        assert "schema 1, epoch 0, NOT complete, updated never" in out
        assert "lease: none" in out
        assert out.endswith("requests: 2 GET ($0.000001)\n")
        status, out, _ = _invoke(
            ["projection", "catch-up", *_ON, "--projection", PROJECTION], store
        )
        assert status == 0
        assert "catch-up by a full scan: 3 events of 2 streams applied, 1 commits" in out
        assert "2 streams in the model, epoch 1" in out
        status, out, _ = _invoke(["projection", "status", *_ON, "--projection", PROJECTION], store)
        assert "schema 1, epoch 1, complete" in out
        assert "streams in the model: 2, versions applied: 3" in out
        assert "lease: released by " in out

    def test_rebuild_with_progress(self) -> None:
        """rebuild starts from nothing under a new epoch, drawing its progress on stderr."""
        store = InMemoryObjectStore()
        _fill(store, "a", 2)
        _invoke(["projection", "catch-up", *_ON, "--projection", PROJECTION], store)
        out, err = io.StringIO(), _Terminal()
        status = main(
            ["projection", "rebuild", *_ON, "--projection", PROJECTION],
            store=store,
            out=out,
            err=err,
        )
        assert status == 0
        assert "rebuild by a full scan: 2 events of 1 streams applied" in out.getvalue()
        assert "epoch 2" in out.getvalue()
        assert "1/1 streams" in err.getvalue()

    def test_lease_held(self) -> None:
        """A projector holding the lease makes catch-up and rebuild fail, naming it; --force
        rebuilds anyway."""
        store = InMemoryObjectStore()
        _fill(store, "a", 1)
        Projector(
            EventStore(store, prefix="p"), AppliedIds, lease=LeaseOptions(owner="daemon")
        ).catch_up()
        for action in ("catch-up", "rebuild"):
            status, _, err = _invoke(
                ["projection", action, *_ON, "--projection", PROJECTION], store
            )
            assert status == 1
            assert "is run by 'daemon' (epoch 1)" in err
        argv = ["projection", "rebuild", *_ON, "--projection", PROJECTION, "--force"]
        assert _invoke(argv, store)[0] == 0

    def test_catch_up_over_the_feed(self) -> None:
        """catch-up --feed lists the change feed (one LIST) instead of every stream."""
        store = InMemoryObjectStore()
        writer = CommandHandler(Repository(EventStore(store, prefix="p", feed=True), Counter))
        for stream_id in ("a", "b", "c"):
            writer.handle(stream_id, Increment(1))
        argv = ["projection", "catch-up", *_ON, "--projection", PROJECTION, "--feed"]
        # The model has no feed cursor yet: the first catch-up scans, and sets it.
        assert "by a full scan: 3 events" in _invoke(argv, store)[1]
        writer.handle("b", Increment(2))
        status, out, _ = _invoke(argv, store)
        assert status == 0
        assert "catch-up by the change feed: 1 events of 1 streams applied" in out
        assert "requests: 2 LIST + 4 GET + 4 PUT" in out  # the generations record: 1 GET

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ("nocolon", "--projection must be module:Class"),
            ("tests.aggregates:Counter", "has no Projection 'Counter'"),
        ],
    )
    def test_bad_projection(self, spec: str, message: str) -> None:
        """A --projection that is not one is a usage error naming it."""
        argv = ["projection", "status", *_ON, "--projection", spec]
        status, _, err = _invoke(argv, InMemoryObjectStore())
        assert status == 2
        assert message in err


class TestHelp:
    @pytest.mark.parametrize("command", [c.name for c in SUBCOMMANDS])
    def test_each_subcommand(self, command: str, capsys: pytest.CaptureFixture[str]) -> None:
        """Every subcommand's --help prints its usage and its description, and exits 0."""
        with pytest.raises(SystemExit) as raised:
            main([command, "--help"])
        assert raised.value.code == 0
        text = capsys.readouterr().out
        assert text.startswith(f"usage: s3es {command} ")
        description = next(c.description for c in SUBCOMMANDS if c.name == command)
        assert description.split()[0] in text

    def test_top_level_lists_every_subcommand(self, capsys: pytest.CaptureFixture[str]) -> None:
        """s3es --help names every subcommand with its one-line help."""
        with pytest.raises(SystemExit):
            main(["--help"])
        text = " ".join(capsys.readouterr().out.split())
        for command in SUBCOMMANDS:
            assert f"{command.name} {command.help.split()[0]}" in text


class TestEncryption:
    def test_sse_kms_key_id_reaches_put_object(self, embedded_s3: EmbeddedS3) -> None:
        """--sse-kms-key-id encrypts what the command writes (a merged chunk) with that key."""
        embedded_s3.create_bucket("cli-kms")
        _fill(embedded_s3.object_store("cli-kms"), "s", 2)
        key_arn = "arn:aws:kms:us-east-1:111122223333:key/cli"
        argv = ["compact", "--aggregate", AGGREGATE, "--bucket", "cli-kms", "--prefix", "p"]
        argv += ["--endpoint-url", embedded_s3.endpoint_url, "--region", "us-east-1"]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AWS_ACCESS_KEY_ID", "testing")
            patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            status, out, _ = _invoke([*argv, "--sse-kms-key-id", key_arn, *_YES, "s"])
        assert status == 0, out
        merged = StreamKeys("p").chunk_key(StreamName("counter", "s"), 2, 1)
        head = embedded_s3.client().head_object(Bucket="cli-kms", Key=merged)
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_arn)


class TestFlow:
    def test_counts_the_streams_holding_the_flow(self) -> None:
        """The summary counts the streams the flow's events are in, and says how many streams
        of which types were read to find them."""
        store = InMemoryObjectStore()
        handler = CommandHandler(Repository(EventStore(store, prefix="p"), Counter))
        first = handler.handle("a", Increment(1)).recorded[0]
        flow = {CORRELATION_ID: first.id}
        handler.handle("a", Increment(2), metadata=flow)
        handler.handle("b", Increment(3), metadata=flow)
        for other in ("c", "d", "e"):
            handler.handle(other, Increment(4))
        status, out, _ = _invoke(["flow", first.id, "--type", "counter", *_ON], store)
        assert status == 0
        assert out.splitlines()[0] == (
            f"flow {first.id!r}: 3 events in 2 streams (5 streams of counter read)"
        )

    def test_nothing_found(self) -> None:
        """No event of the flow: the streams read are still said."""
        store = InMemoryObjectStore()
        _fill(store, "a", 1)
        status, out, _ = _invoke(["flow", "nope", "--type", "counter", *_ON], store)
        assert status == 0
        assert out.startswith("flow 'nope': 0 events (1 stream of counter read)\nrequests: ")


class TestStartUp:
    def test_help_imports_no_aws_sdk(self) -> None:
        """Building the parser, and s3es --help, import neither boto3 nor botocore: a
        subcommand imports what it needs when it runs (checked in a fresh interpreter)."""
        script = (
            "import sys, contextlib, io\n"
            "from s3es._cli.main import _parser, main\n"
            "_parser([])\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    main(['--help'])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
        )
        done = subprocess.run(  # noqa: S603 - this interpreter, this test's script
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        assert done.stdout == "[]\n"

    def test_a_subcommand_imports_only_its_module(self) -> None:
        """s3es list --help imports the module of list, not those of the other subcommands."""
        script = (
            "import sys, contextlib, io\n"
            "from s3es._cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    main(['list', '--help'])\n"
            "print(sorted(m for m in sys.modules if m.startswith('s3es._cli.')))\n"
        )
        done = subprocess.run(  # noqa: S603 - this interpreter, this test's script
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        loaded = done.stdout.strip()
        assert "'s3es._cli.streams'" in loaded
        for other in ("consumers", "maintenance", "flow", "bucket"):
            assert f"'s3es._cli.{other}'" not in loaded
