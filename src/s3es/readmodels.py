"""Read-model stores: where a document projection's documents, positions and shard states live.

A :class:`~s3es.projections.DocumentProjection` is written once; the store is chosen when its
:class:`~s3es.projections.DocumentProjector` is wired:

- :class:`S3ReadModelStore`: one S3 object per document, beside the event store, written with
  ``If-Match``; nothing to run but S3.
- :class:`SQLiteReadModelStore`: tables in an SQLite file, for one process (the embedded
  default).
- :class:`PostgresReadModelStore`: tables in PostgreSQL (the ``postgres`` extra), for readers
  and projectors on many machines.

Each passes :class:`s3es.testing.ReadModelStoreContract`; write your own adapter against
:class:`ReadModelStore` and run that suite on it. Every store keeps one domain of keys and
bodies, and refuses the rest in ``commit`` with :func:`check_document`'s
:class:`~s3es.errors.UnstorableDocument`: an adapter of your own calls it too.
"""

from s3es._readmodels.port import (
    Change,
    Generation,
    Generations,
    ReadModelStore,
    ShardState,
    StoredDocument,
)
from s3es._readmodels.postgres import PostgresReadModelStore  # imports psycopg when made
from s3es._readmodels.s3 import S3ReadModelStore
from s3es._readmodels.sqlite import SQLiteReadModelStore
from s3es._readmodels.values import MAX_DOCUMENT_KEY_BYTES, check_document, check_key

__all__ = [
    "MAX_DOCUMENT_KEY_BYTES",
    "Change",
    "Generation",
    "Generations",
    "PostgresReadModelStore",
    "ReadModelStore",
    "S3ReadModelStore",
    "SQLiteReadModelStore",
    "ShardState",
    "StoredDocument",
    "check_document",
    "check_key",
]
