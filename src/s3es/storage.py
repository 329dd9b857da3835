"""Object stores: the port s3es needs from S3, its adapters, and wrappers around them.

Write an adapter for another store by implementing :class:`ObjectStore`; prove it with
:class:`s3es.testing.ObjectStoreContract`. :class:`ForwardingObjectStore` is the base for
wrappers (a latency, a fault, a rival writer); :class:`LatencyObjectStore` is one.
"""

from s3es._storage.latency import LatencyObjectStore, SimulatedLatency
from s3es._storage.memory import InMemoryObjectStore
from s3es._storage.port import ForwardingObjectStore, ObjectStore, StoredObject
from s3es._storage.s3 import S3ObjectStore

__all__ = [
    "ForwardingObjectStore",
    "InMemoryObjectStore",
    "LatencyObjectStore",
    "ObjectStore",
    "S3ObjectStore",
    "SimulatedLatency",
    "StoredObject",
]
