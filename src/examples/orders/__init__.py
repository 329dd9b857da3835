"""The orders example: an Order aggregate, a warehouse's Inventory, and services that race.

``python -m examples.orders`` runs the demo (see :mod:`examples.orders.demo`); the rules are in
:mod:`examples.orders.domain` (orders) and :mod:`examples.orders.inventory` (stock), the
services that send commands in :mod:`examples.orders.services`, the read models (orders by
status, stock reserved per product) in :mod:`examples.orders.projections`.
"""

from examples.orders.demo import main

__all__ = ["main"]
