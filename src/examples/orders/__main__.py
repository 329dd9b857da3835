"""``python -m examples.orders``: the contention run of the orders example."""

from examples.orders.harness.main import main

if __name__ == "__main__":
    raise SystemExit(main())
