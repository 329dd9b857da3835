"""The bottom layer: the object-store port, its adapters (S3, memory), keys and accounting.

Nothing here knows of events, aggregates or projections.
"""
