"""``python -m examples.orders``: run the orders demo."""

from examples.orders.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
