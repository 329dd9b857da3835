"""Requests and dollars: what each operation costs on S3, counted as it runs.

S3 charges per request, so every adapter counts the requests it sends
(``store.requests``), and :func:`measure_requests` counts those one block of code causes, in
its own thread or task. :class:`RequestCounts` subtract, add, print as ``1 LIST + 1 GET`` and
price themselves with :class:`RequestPrices`.
"""

from s3es._storage.metering import (
    S3_STANDARD_PRICES,
    RequestCounts,
    RequestMeter,
    RequestPrices,
    measure_requests,
)

__all__ = [
    "S3_STANDARD_PRICES",
    "RequestCounts",
    "RequestMeter",
    "RequestPrices",
    "measure_requests",
]
