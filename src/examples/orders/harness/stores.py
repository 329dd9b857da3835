"""The read-model store of a contention run: SQLite by default, S3 or PostgreSQL by a flag.

- ``sqlite``: a database file, in a temporary directory removed at the end unless
  ``--sqlite-file`` names one;
- ``s3``: one object per document, in the run's bucket under its prefix;
- ``postgres``: the database ``--postgres-url`` (or the environment variable
  ``S3ES_POSTGRES_URL``) names; without one, a PostgreSQL server started for the run in a
  temporary directory by pgserver (a development dependency), stopped at the end.

A database given by name may hold the read models of an earlier run (SQL tables are named
after the projection, not after the run's prefix): the run then rebuilds them from its own
streams (see :mod:`~examples.orders.harness.contention`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from s3es.readmodels import PostgresReadModelStore, S3ReadModelStore, SQLiteReadModelStore

if TYPE_CHECKING:
    import argparse

    from s3es.readmodels import ReadModelStore
    from s3es.storage import ObjectStore

#: The choices of ``--read-models``, the default first.
KINDS = ("sqlite", "s3", "postgres")
POSTGRES_URL_VARIABLE = "S3ES_POSTGRES_URL"


class SetupError(Exception):
    """The run cannot start: no S3 endpoint, bucket or read-model store to use."""


def open_read_models(
    arguments: argparse.Namespace,
    objects: ObjectStore,
    stack: contextlib.ExitStack,
    out: Callable[[str], None],
) -> ReadModelStore:
    """The store ``--read-models`` chose, closed (and its server stopped) by ``stack``."""
    if arguments.read_models == "s3":
        out(f"  models  in S3: one object per document, under {arguments.prefix}/_readmodels/")
        return S3ReadModelStore(objects, arguments.prefix)
    if arguments.read_models == "postgres":
        return _postgres(arguments.postgres_url, stack, out)
    path = arguments.sqlite_file
    if path is None:
        path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "read-models.sqlite3"
        out(f"  models  in SQLite: {path}, removed at the end")
    else:
        out(f"  models  in SQLite: {path}")
    return stack.enter_context(SQLiteReadModelStore(path))


def _postgres(
    url: str | None, stack: contextlib.ExitStack, out: Callable[[str], None]
) -> ReadModelStore:
    if url is not None:
        out("  models  in PostgreSQL: the database of --postgres-url")
    elif os.environ.get(POSTGRES_URL_VARIABLE):
        url = os.environ[POSTGRES_URL_VARIABLE]
        out(f"  models  in PostgreSQL: the database of ${POSTGRES_URL_VARIABLE}")
    else:
        url = _start_postgres(stack)
        out("  models  in PostgreSQL: a server started by pgserver for the run, stopped at the end")
    try:
        store = PostgresReadModelStore(url)
    except ImportError as error:  # psycopg, the postgres extra
        raise SetupError(f"{error}, for --read-models postgres") from error
    return stack.enter_context(store)


def _start_postgres(stack: contextlib.ExitStack) -> str:
    """The URI of a PostgreSQL server started in a temporary directory until ``stack`` ends."""
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (root shells, CI) as pgserver is
        # imported: it then keeps its lock file under /tmp, which is what we want.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        try:
            from pgserver.postgres_server import get_server  # noqa: PLC0415 - a dev dependency
        except ImportError as error:
            raise SetupError(
                f"--read-models postgres needs --postgres-url or {POSTGRES_URL_VARIABLE}, or "
                f"pgserver to start a server ({error})"
            ) from error
    directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="s3es-demo-pg-"))
    server = get_server(directory, cleanup_mode="stop")
    stack.callback(server.cleanup)
    uri: str = server.get_uri()
    return uri
