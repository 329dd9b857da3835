"""``python -m examples.orders.web`` (``make serve``): the app with uvicorn, on an embedded S3.

uvicorn, aiobotocore and moto (the ``web``, ``async`` and ``testing`` extras) are imported
when :func:`main` runs, not with the package.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

from examples.orders.app import Shop
from examples.orders.inventory import ReceiveStock, StockItem
from examples.orders.web.app import create_app
from examples.orders.web.state import s3_objects

#: What ``make serve`` stocks the warehouse with, so that the orders of the examples ship.
SEED_STOCK = (StockItem(sku="widget", quantity=100), StockItem(sku="gadget", quantity=20))


def main(argv: Sequence[str] | None = None) -> int:
    """``make serve``: the app with uvicorn on 127.0.0.1, over an embedded S3 endpoint.

    The read models go to an SQLite file in a temporary folder, removed at the end; the
    warehouse starts with :data:`SEED_STOCK`.
    """
    import uvicorn  # noqa: PLC0415 - the web extra
    from aiobotocore.session import get_session  # noqa: PLC0415 - the async extra

    from s3es.readmodels import SQLiteReadModelStore  # noqa: PLC0415
    from s3es.testing import EmbeddedS3  # noqa: PLC0415 - the testing extra (moto)

    parser = argparse.ArgumentParser(prog="make serve", description=main.__doc__)
    parser.add_argument("--port", type=int, default=8000, help="the port (default: 8000)")
    parser.add_argument("--bucket", default="orders", help="the embedded endpoint's bucket")
    arguments = parser.parse_args(argv)
    # s3es logs each pass at INFO, every second: warnings and errors only (uvicorn logs its own).
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with (
        EmbeddedS3() as s3,
        tempfile.TemporaryDirectory(prefix="s3es-serve-") as folder,
        SQLiteReadModelStore(Path(folder) / "read-models.sqlite") as read_models,
    ):
        s3.create_bucket(arguments.bucket)
        shop = Shop(s3.object_store(arguments.bucket), read_models=read_models)
        shop.warehouse_handler.handle(
            shop.warehouse_id, ReceiveStock(warehouse_id=shop.warehouse_id, items=SEED_STOCK)
        )
        session = get_session()
        session.set_credentials("testing", "testing")  # the embedded endpoint takes any
        objects = s3_objects(
            arguments.bucket, endpoint_url=s3.endpoint_url, region_name="us-east-1", session=session
        )
        app = create_app(shop, objects)
        url = f"http://127.0.0.1:{arguments.port}"
        stocked = ", ".join(f"{item.quantity} {item.sku}" for item in SEED_STOCK)
        print(f"s3es orders on {url} (S3: {s3.endpoint_url}, read models: {folder})")
        print(f"{shop.warehouse_id} holds {stocked}. Try:")
        print(
            f"  curl -i -X POST {url}/orders/o-1 -H 'If-None-Match: *' "
            "-H 'Idempotency-Key: place-o-1' -H 'Content-Type: application/json' "
            """-d '{"lines": [{"sku": "widget", "quantity": 2, "unit_price_cents": 1250}]}'"""
        )
        print(f"  curl -i {url}/orders/o-1")
        print(f"  API documentation: {url}/docs")
        uvicorn.run(app, host="127.0.0.1", port=arguments.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
