"""The contention harness that ``python -m examples.orders`` (``make demo``) runs.

Not part of the example's application: it drives the :class:`~examples.orders.app.Shop` hard
and checks what it stored. :mod:`.contention` runs the customers and the reactor at once and
measures,
:mod:`.checks` reads every stream and read model back, :mod:`.report` tells the story and
the cost, :mod:`.main` is the command line (S3 endpoint, bucket, logging).
"""
