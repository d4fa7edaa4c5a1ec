"""Config checks of the source filters, run by the loader: each problem as (key path, message).

Compiling every schema here means a bad one is a config error with its file, line and key; the
compiled validators are cached (collector.filters.schema), so start-up does not compile again.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from collector.filters.config import PiiRuleConfig, TrackingPlanConfig
from collector.filters.schema import schema_problems

# Fields a PII rule may never change: the log keys events by messageId, and routing needs type.
PROTECTED_FIELDS = frozenset({"messageId", "type"})


class Problem(NamedTuple):
    path: str
    message: str
    at_key: bool = False  # point at the key itself rather than at its value


def check_plan(path: str, plan: TrackingPlanConfig) -> list[Problem]:
    problems: list[Problem] = []
    schemas: list[tuple[str, Any]] = [(f"{path}.events.{name}", schema) for name, schema in plan.events.items()]
    schemas += [(f"{path}.{call}", getattr(plan, call)) for call in ("identify", "group", "page", "screen")]
    for where, schema in schemas:
        if schema is None:
            continue
        for error in schema_problems(schema):
            at_key = error.message.startswith("unknown JSON Schema keyword")
            problems.append(Problem(where + error.path, f"invalid JSON Schema: {error.message}", at_key))
    return problems


def check_pii_rule(path: str, rule: PiiRuleConfig) -> list[Problem]:
    problems: list[Problem] = []
    if not (rule.fields or rule.keys or rule.values or rule.pattern is not None):
        problems.append(Problem(path, "a rule needs at least one of fields, keys, values or pattern"))
    for i, field in enumerate(rule.fields):
        if not field or not all(field.split(".")):
            problems.append(Problem(f"{path}.fields[{i}]", f"expected a dotted path such as traits.email, got {field!r}"))
        elif field in PROTECTED_FIELDS:
            problems.append(Problem(f"{path}.fields[{i}]", f"{field} cannot be changed: the log and destinations need it"))
    for i, key in enumerate(rule.keys):
        if not key:
            problems.append(Problem(f"{path}.keys[{i}]", "expected a key name, got an empty string"))
    if rule.pattern is not None:
        try:
            re.compile(rule.pattern)
        except re.error as error:
            problems.append(Problem(f"{path}.pattern", f"invalid regular expression: {error}"))
    if rule.salt is not None and rule.action != "hash":
        problems.append(Problem(f"{path}.salt", f"salt applies only to action: hash, not {rule.action}", True))
    if rule.keep_last and rule.action != "mask":
        problems.append(Problem(f"{path}.keep_last", f"keep_last applies only to action: mask, not {rule.action}", True))
    return problems


def check_source(path: str, source: Any, plan_names: list[str]) -> list[Problem]:
    """A source's tracking_plan (among ``plan_names``, as written in the file) and PII rules."""
    problems: list[Problem] = []
    if source.tracking_plan is not None and source.tracking_plan not in plan_names:
        known = f"known plans: {', '.join(plan_names)}" if plan_names else "no tracking_plans are configured"
        problems.append(Problem(f"{path}.tracking_plan", f"unknown tracking plan {source.tracking_plan!r}; {known}"))
    for i, rule in enumerate(source.pii):
        problems += check_pii_rule(f"{path}.pii[{i}]", rule)
    return problems
