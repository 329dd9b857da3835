"""The write side: aggregates (deciders), upcasting, the repository and the command handler.

Data flows one way: command -> handler -> repository -> event store -> object store.
"""
