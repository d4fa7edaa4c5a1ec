"""The filters of one source, applied to each of its events between validation and storage.

``build_source_filters`` makes them from the config once, at start-up (collector/app.py), for
the sources that have a tracking plan or PII rules; the others have no entry and cost nothing.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any, Callable

from collector.filters.pii import PiiRules
from collector.filters.plan import TrackingPlan, Verdict

log = logging.getLogger(__name__)

# Where a flagged event carries its violations: RudderStack's name for the same list.
VIOLATIONS_FIELD = "violationErrors"
# Blocked events are logged at most once per source in this many seconds, with the counts since.
BLOCK_LOG_INTERVAL = 60.0


class EventBlocked(Exception):
    """The tracking plan blocks this event: it is not stored, and the client still gets 200."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BlockLog:
    """Info lines about blocked events, at most one per ``interval`` seconds: the first block is
    logged at once, later ones are counted and told in the next line due."""

    def __init__(self, source: str, interval: float = BLOCK_LOG_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.interval = interval
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self.example = ""
        self._due = float("-inf")

    def blocked(self, reason: str, example: str) -> None:
        self.counts[reason] += 1
        self.example = example
        now = self.clock()
        if now < self._due:
            return
        log.info(
            "source %s: %d events blocked by the tracking plan (%s); latest: %s", self.source,
            sum(self.counts.values()), ", ".join(f"{name}: {n}" for name, n in sorted(self.counts.items())),
            self.example, extra={"source": self.source},
        )
        self.counts.clear()
        self._due = now + self.interval


class SourceFilters:
    """The tracking plan check, then the PII rules (so the plan judges what the client sent)."""

    def __init__(self, source: str, plan: TrackingPlan | None, pii: PiiRules | None, metrics: Any = None) -> None:
        self.source = source
        self.plan = plan
        self.pii = pii
        self.metrics = metrics
        self.block_log = BlockLog(source)
        self._violation_counters: dict[str, Any] = {}
        self._blocked_counters: dict[str, Any] = {}

    def apply(self, event: dict, call_type: str) -> None:
        """Changes ``event`` in place; raises EventBlocked if it must not be stored."""
        if self.plan is not None:
            verdict = self.plan.check(event, call_type)
            if verdict is not None:
                self._judge(event, verdict)
        if self.pii is not None:
            self.pii.apply(event)

    def _judge(self, event: dict, verdict: Verdict) -> None:
        if self.metrics is not None:
            for violation in verdict.violations:
                self._counter(self._violation_counters, self.metrics.events_violations, violation["type"]).inc()
        if verdict.disposition == "block":
            if self.metrics is not None:
                self._counter(self._blocked_counters, self.metrics.events_blocked, verdict.reason).inc()
            name = event.get("event") if event.get("type") == "track" else event.get("type")
            self.block_log.blocked(verdict.reason, f"{str(name)[:100]!r}: {verdict.violations[0]['message']}")
            raise EventBlocked(verdict.reason)
        if verdict.disposition == "flag":
            context = event.get("context")
            if context is None:
                context = event["context"] = {}
            context[VIOLATIONS_FIELD] = verdict.violations

    def _counter(self, cache: dict[str, Any], metric: Any, label: str) -> Any:
        child = cache.get(label)
        if child is None:
            child = cache[label] = metric.labels(self.source, label)
        return child


def build_source_filters(config: Any, metrics: Any = None) -> dict[str, SourceFilters]:
    """Source name -> its filters, for the sources that have any (a collector.config.model.Config)."""
    plans: dict[str, TrackingPlan] = {}
    filters: dict[str, SourceFilters] = {}
    for name, source in config.sources.items():
        plan = None
        if source.tracking_plan is not None:
            plan = plans.get(source.tracking_plan)
            if plan is None:
                plan = plans[source.tracking_plan] = TrackingPlan(
                    source.tracking_plan, config.tracking_plans[source.tracking_plan]
                )
        pii = PiiRules(source.pii) if source.pii else None
        if plan is not None or pii is not None:
            filters[name] = SourceFilters(name, plan, pii, metrics)
    return filters
