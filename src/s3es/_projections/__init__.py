"""The read side: projections, the projector and its lease, inline projections.

Consumers read from the event store and write to their own store; nothing below imports them.
"""
