"""How long to wait before the next attempt."""

from __future__ import annotations

import random

from collector.destinations.base import RetryConfig

# Clients cap Retry-After at 300 s; so do we, so that a confused vendor cannot park a destination.
MAX_RETRY_AFTER = 300.0


def next_delay(policy: RetryConfig, attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with "equal jitter" (half fixed, half random), never less than the
    vendor's Retry-After. ``attempt`` counts from 1."""
    ceiling = min(policy.max_backoff, policy.initial_backoff * (2 ** min(attempt - 1, 30)))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay
