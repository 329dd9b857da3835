"""Streams of chunks on an object store: the chunk format, appends, reads and the change feed.

It knows keys, chunks and versions, and nothing of aggregates.
"""
