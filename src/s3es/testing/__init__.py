"""Helpers for testing code built on s3es. Part of the public API.

- :class:`AggregateSpec`: an aggregate's rules as given events, a command, then events or an
  error, with no store at all.
- :class:`ProjectionSpec`: a document projection's rules as given events of several streams,
  then the documents, run by a real projector on the read-model store of your choice.
- :class:`EmbeddedS3`: an S3 endpoint on 127.0.0.1 in this process (moto's server, with its
  conditional writes made atomic), for integration tests; needs the ``testing`` extra.
- :class:`ObjectStoreContract`: the object-store port's contract as a pytest suite: subclass it
  with a ``store`` fixture to prove an adapter of your own; :class:`AsyncObjectStoreContract`
  runs it on an async adapter (:class:`s3es.aio.AsyncObjectStore`), given its ``open_store``.
- :class:`ReadModelStoreContract`: the read-model store port's contract as a pytest suite:
  subclass it with a ``make_store`` method (or a ``store`` fixture) to prove a read-model store.
- :class:`FaultProxy`: an HTTP proxy that injects the faults of networks and S3 (lost answers,
  resets, 409, 503, late answers) between a client and an endpoint, to test resilience.

``EmbeddedS3`` and ``FaultProxy`` import moto, boto3 and pytest only when used; the contracts,
pytest only when used.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from s3es.testing._projection_spec import ProjectionGiven, ProjectionSpec
from s3es.testing._spec import AggregateSpec, Given, When

#: The contract suites, whose failed asserts pytest explains (values, diffs) if it rewrites them
#: as it does a test module's: registered while pytest runs, before either is imported.
_CONTRACTS = ("s3es.testing.objectstore_contract", "s3es.testing.readmodel_contract")
if "pytest" in sys.modules:
    sys.modules["pytest"].register_assert_rewrite(
        *(name for name in _CONTRACTS if name not in sys.modules)
    )

if TYPE_CHECKING:
    from s3es.testing.embedded_s3 import EmbeddedS3
    from s3es.testing.faultproxy import Fault, FaultProxy, Rule, Seen
    from s3es.testing.objectstore_contract import AsyncObjectStoreContract, ObjectStoreContract
    from s3es.testing.readmodel_contract import ReadModelStoreContract

_LAZY = {
    "EmbeddedS3": "s3es.testing.embedded_s3",
    "Fault": "s3es.testing.faultproxy",
    "FaultProxy": "s3es.testing.faultproxy",
    "Rule": "s3es.testing.faultproxy",
    "Seen": "s3es.testing.faultproxy",
    "ObjectStoreContract": "s3es.testing.objectstore_contract",
    "ReadModelStoreContract": "s3es.testing.readmodel_contract",
    "AsyncObjectStoreContract": "s3es.testing.objectstore_contract",
}


def __getattr__(name: str) -> Any:
    """Import the helpers that need moto or pytest only when they are asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 's3es.testing' has no attribute {name!r}")
    import importlib  # noqa: PLC0415 - lazily, as the docstring says

    return getattr(importlib.import_module(module), name)


__all__ = [
    "AggregateSpec",
    "AsyncObjectStoreContract",
    "EmbeddedS3",
    "Fault",
    "FaultProxy",
    "Given",
    "ObjectStoreContract",
    "ProjectionGiven",
    "ProjectionSpec",
    "ReadModelStoreContract",
    "Rule",
    "Seen",
    "When",
]
