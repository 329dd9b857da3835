"""The orders example: a shop's orders and a warehouse's stock, written by services that race.

Read it in this order:

1. :mod:`examples.orders.domain`: the rules of an order (commands, events, ``decide``,
   ``evolve``), and :mod:`examples.orders.inventory`: the rules of a warehouse's stock;
2. :mod:`examples.orders.projections`: the read models (orders by status, stock per product);
3. :mod:`examples.orders.services`: the payment, inventory and shipping services, which turn
   what happens outside into commands;
4. :mod:`examples.orders.app`: how they are wired to s3es (object store, event store,
   repositories, command handlers and their retry policy, projectors).

:mod:`examples.orders.harness` is what ``python -m examples.orders`` (``make demo``) runs: the
services racing over the same orders on S3, then reports and checks. Importing this package
imports none of it (nor boto3).
"""
