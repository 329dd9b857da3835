"""``python -m s3es``: the ``s3es`` command."""

from s3es._cli.main import main

raise SystemExit(main())
