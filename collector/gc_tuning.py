"""Garbage-collector settings for a long-running server process.

Python's cyclic collector is triggered by allocations: every 700 container objects by default,
and a full collection (all generations) whenever the objects that survived into the oldest one
grew by a quarter. Under load the collector allocates thousands of dicts per request (decoded
events) that live until their commit, so they survive young collections and keep triggering full
ones, and a full collection walks every object the process holds: aiohttp, prometheus-client,
the config, the modules. Measured in-process under 100-event batches (8 s of wrk, 2-vCPU VM):
22 full collections of up to 42.5 ms each, and 23% of the process's CPU in the collector; under
single events, full collections of 27.7 ms, each one a pause of every request in flight.

So, once started: everything allocated so far is frozen (moved out of the collector's sight for
good: it lives as long as the process anyway), and young collections wait for many more
allocations. Reference counting still frees every object that is not in a cycle at once; only
cycles wait longer, and at most about ``YOUNG_THRESHOLD`` new containers' worth of them.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def tune_for_serving() -> None:
    """Call once the process holds its long-lived objects (after start-up)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
