"""Examples built on s3es. Not part of the wheel: run them from the source tree.

``python -m examples.orders`` (``make demo``) runs the orders example on an embedded S3 endpoint.
"""
