"""Maintenance and operations: compaction, deletion, erasure, verification, policies, tiering.

Built on the event store's read, append and replace primitives, beside the write path.
"""
