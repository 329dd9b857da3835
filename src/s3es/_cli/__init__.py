"""The ``s3es`` command: the operator's view of a bucket."""

from s3es._cli.main import main

__all__ = ["main"]
