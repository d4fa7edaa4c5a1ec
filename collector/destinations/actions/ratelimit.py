"""How fast an action destination may send: its ``rate_limit``, and the pause a vendor asks for.

Both are shared by every lane of the destination, since they live on the destination object and
every HTTP request it makes goes through them (``ActionContext.request``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """``rate`` requests a second on average, with bursts of up to ``burst`` (default: one
    second's worth, at least 1). Requests that find it empty wait their turn, first come first
    served: each reservation takes the next free slot, so waiting callers never overtake each
    other or exceed the rate together."""

    def __init__(self, rate: float, burst: float | None = None, *, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1.0, rate if burst is None else burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()

    def reserve(self) -> float:
        """Take one token; return how long the caller must wait before it may send (0: now)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)


class Pause:
    """A time before which nothing is sent, set from a vendor's 429 or Retry-After."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.until = 0.0

    def extend(self, seconds: float) -> None:
        self.until = max(self.until, self._clock() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.until - self._clock())
