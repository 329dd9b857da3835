"""Which test modules are unit tests and which are integration tests: the one rule that the
``unit`` / ``integration`` markers (tests/conftest.py) and nox's fast sessions (noxfile.py) share.

A module is an **integration** test if it starts something outside the test's own process or
its memory: an S3 endpoint (moto, EmbeddedS3, a FaultProxy in front of one), a PostgreSQL
server (pgserver), or a subprocess. Every other module is a **unit** test. ``pytest -m unit``
runs the unit tests alone (seconds); ``make test`` runs both.

The rule reads a module's text, so it holds for a new module without a list to keep.
"""

from __future__ import annotations

import re
from pathlib import Path

#: What starts a service: an S3 endpoint or a PostgreSQL server.
SERVICES = re.compile(
    r"embedded_s3|s3_store|EmbeddedS3|FaultProxy|\bmoto\b"
    r"|\bpsycopg\b|\bpostgres_(uri|conninfo)\b|\bpgserver\b"
)
#: What starts a process.
PROCESSES = re.compile(r"\bsubprocess\b|\bmultiprocessing\b")
#: What needs more than s3es's testing extra: the bench, the docs' runner, OpenTelemetry's SDK,
#: and the sync-code generator (a dev tool that runs ruff).
DEV_EXTRAS = re.compile(
    r"from (bench|docs|tests\.test_docs)\b|from opentelemetry\b|from tools import async_to_sync"
)


def is_integration(source: str) -> bool:
    """True if the test module whose text is ``source`` starts a service or a process."""
    return bool(SERVICES.search(source) or PROCESSES.search(source))


def needs_only_testing_extra(source: str) -> bool:
    """True if the module runs with s3es's testing extra alone and starts no service."""
    return not (SERVICES.search(source) or DEV_EXTRAS.search(source))


def test_modules(root: Path) -> list[Path]:
    """The test modules of the suite under ``root`` (the repository), sorted."""
    return sorted((root / "tests").rglob("test_*.py"))
