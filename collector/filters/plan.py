"""A tracking plan, compiled: which track events are planned, and the schema each call must meet.

What is validated: a track event's ``properties`` against the schema of its ``event`` name;
identify's and group's ``traits`` and page's and screen's ``properties`` against the plan's
``identify``, ``group``, ``page``, ``screen`` schemas when it has them. Alias is never checked,
nor a call type the plan has no schema for. A missing object is validated as ``{}`` (so that its
required properties are reported) but not added to the event.
"""

from __future__ import annotations

from dataclasses import dataclass

import fastjsonschema

from collector.filters.config import TrackingPlanConfig
from collector.filters.schema import UNPLANNED_EVENT, Validator, compile_schema, declared_properties, violations

_CHECKED_OBJECT = {"identify": "traits", "group": "traits", "page": "properties", "screen": "properties"}
UNPLANNED = "unplanned_event"
VIOLATION = "violation"


@dataclass(slots=True)
class Verdict:
    """What is wrong with one event and what to do about it."""

    disposition: str  # allow | flag | block
    reason: str  # UNPLANNED or VIOLATION
    violations: list[dict]


@dataclass(slots=True)
class _Rule:
    validate: Validator
    declared: frozenset[str]
    field: str  # the object validated: "properties" or "traits"


class TrackingPlan:
    def __init__(self, name: str, config: TrackingPlanConfig) -> None:
        """Compiles every schema; raises collector.filters.schema.SchemaError for a bad one
        (collector.filters.check has reported it with its position at config load)."""
        self.name = name
        self.unplanned = config.unplanned_events
        self.on_violation = config.violations
        self.drop_unplanned = config.drop_unplanned_properties
        self.events = {
            event: None if schema is None else _rule(schema, "properties") for event, schema in config.events.items()
        }
        self.calls = {
            call: _rule(schema, field) for call, field in _CHECKED_OBJECT.items()
            if (schema := getattr(config, call)) is not None
        }

    def check(self, event: dict, call_type: str) -> Verdict | None:
        """None when the event keeps to the plan (or the plan says nothing about it). With
        drop_unplanned_properties, undeclared top-level properties are removed first."""
        if call_type == "track":
            name = event.get("event")
            if name not in self.events:
                message = f"event {str(name)[:100]!r} is not in tracking plan {self.name!r}"
                return Verdict(self.unplanned, UNPLANNED, [{"type": UNPLANNED_EVENT, "message": message, "path": "event"}])
            rule = self.events[name]
        else:
            rule = self.calls.get(call_type)
        if rule is None:
            return None
        checked = event.get(rule.field)
        if checked is None:
            checked = {}
        elif self.drop_unplanned:
            for key in [key for key in checked if key not in rule.declared]:
                del checked[key]
        try:
            rule.validate(checked)
        except fastjsonschema.JsonSchemaValueException as error:
            return Verdict(self.on_violation, VIOLATION, violations(error, rule.field))
        return None


def _rule(schema: dict, field: str) -> _Rule:
    return _Rule(compile_schema(schema), declared_properties(schema), field)
