"""Benchmarks of s3es: requests, dollars and speed per operation (``make bench``).

Each module measures one thing and returns plain results; ``bench.report`` turns them into
tables and ``docs/benchmarks.md``; ``python -m bench`` runs everything.
"""
