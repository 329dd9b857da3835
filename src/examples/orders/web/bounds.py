"""What a request to the web app may be, beyond the domain's bounds.

The fields of a command are held to :mod:`examples.orders.limits` (the aggregates' own
bounds); these are HTTP's: how large a body may be, what media type it is sent as, how long an
``Idempotency-Key`` is. :mod:`~examples.orders.web.gate` and
:mod:`~examples.orders.web.requests` enforce them; :mod:`~examples.orders.web.problems` states
them on the pages of the problems that refuse a request out of them.
"""

from __future__ import annotations

#: The largest request body taken, in bytes. An order of MAX_LINES lines of the longest SKUs and
#: amounts takes 17 KB of JSON (37 KB with non-ASCII SKUs sent as ``\uXXXX`` escapes); a body
#: is refused (413) as soon as it passes this, unread.
MAX_BODY_BYTES = 64 * 1024
#: What a body must be: JSON (or a ``+json`` type).
JSON_TYPE = "application/json"
#: The longest ``Idempotency-Key`` taken: the longest command id s3es takes.
MAX_IDEMPOTENCY_KEY = 200
