"""Helpers for testing code built on s3es: aggregate specifications and an embedded S3.

``AggregateSpec`` checks an aggregate's rules without any store::

    spec = AggregateSpec(Order)
    spec.given(OrderPlaced(...)).when(RecordPayment(...)).then(PaymentRecorded(...))
    spec.given().when(Ship()).then_raises(OrderError, match="not placed")

``EmbeddedS3`` (in ``s3es.testing.embedded_s3``, which needs moto's server) runs an S3 endpoint
on 127.0.0.1 for integration tests and demos.
"""

from s3es.testing._spec import AggregateSpec, Given, When

__all__ = ["AggregateSpec", "Given", "When"]
