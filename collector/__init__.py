"""A self-hosted, first-party, Segment-compatible event collector and router."""

__version__ = "0.1.0"
