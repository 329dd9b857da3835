"""``python -m s3es.testing.embedded_s3``: the locked endpoint as a program of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3

from s3es import S3ObjectStore
from s3es.ops import self_test

ROOT = Path(__file__).resolve().parent.parent


class TestProgram:
    def test_serves_until_terminated_and_passes_the_self_test(self) -> None:
        """The program prints its endpoint once it listens, with the buckets asked for made;
        its conditional writes pass the self-test's races (a plain moto_server's may not); it
        stops on SIGTERM with exit 0."""
        environment = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        with subprocess.Popen(
            [sys.executable, "-m", "s3es.testing.embedded_s3", "--port", "0", "--bucket", "b-1"],
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        ) as program:
            try:
                assert program.stdout is not None
                endpoint = program.stdout.readline().strip()
                assert endpoint.startswith("http://127.0.0.1:")
                session = boto3.Session(
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",  # noqa: S106 - the endpoint accepts any
                    region_name="us-east-1",
                )
                store = S3ObjectStore.connect("b-1", endpoint_url=endpoint, session=session)
                report = self_test(store, "program")
                assert report.ok, report.summary()
            finally:
                program.send_signal(signal.SIGTERM)
                assert program.wait(timeout=30) == 0
