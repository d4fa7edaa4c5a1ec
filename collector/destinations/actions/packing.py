"""Cutting a request's items into bodies of at most a number of bytes: vendors whose API takes a
JSON list of items inside a fixed envelope (PostHog's ``{"api_key":..,"batch":[..]}``,
Customer.io's ``{"batch":[..]}``) encode each item once, then pack them in order."""

from __future__ import annotations

Encoded = list[tuple[int, bytes]]  # (index of the item, the item as JSON)


def pack(encoded: Encoded, overhead: int, limit: int) -> list[Encoded]:
    """The items cut into requests whose body (``overhead`` plus the items and their commas) stays
    within ``limit``, in order. An item larger than ``limit`` on its own still gets a request of
    its own: checking sizes against the vendor's per-item limit is the caller's."""
    requests: list[Encoded] = []
    current: Encoded = []
    size = overhead
    for piece in encoded:
        extra = len(piece[1]) + (1 if current else 0)
        if current and size + extra > limit:
            requests.append(current)
            current, size, extra = [], overhead, len(piece[1])
        current.append(piece)
        size += extra
    if current:
        requests.append(current)
    return requests
