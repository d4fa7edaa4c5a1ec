"""PII rules: select values of an event and drop, hash, mask or truncate them, before it is stored.

A rule selects with any of (the union of what each selects):

- ``fields``: dotted paths from the event's root (``traits.email``, ``context.ip``, ``userId``);
  the only way to reach anything outside ``properties``, ``traits`` and ``context``;
- ``keys``: every key of that name (compared without case) at any depth inside ``properties``,
  ``traits`` and ``context``, whatever its value (an object or a list is acted on whole);
- ``values``: built-in detectors (collector.filters.detectors) and ``pattern``: a regular
  expression searched in the value; both look at text values, and at integers as their digits,
  at any depth inside ``properties``, ``traits`` and ``context``, list items included.

Rules apply in the order written, each to the event as the rules before it left it. ``messageId``
and ``type`` are never touched (the log and every destination need them), nor ``userId``,
``anonymousId`` or any other top-level field unless a rule names it in ``fields``.

Several rules that look at any depth (``keys``, ``values``) share one walk of the event
(``DeepWalk``): each value met is put through those rules in order, which gives what one walk per
rule gives, at the cost of one walk. A rule's ``fields`` that reach into ``properties``, ``traits``
or ``context`` end the shared walk (the rules before them must have acted first); ``fields``
outside them (``userId``) cannot meet a deep rule and are simply applied first.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from collector.filters.actions import DROP, make_action
from collector.filters.config import PiiRuleConfig
from collector.filters.detectors import DETECTORS

# Where `keys` and `values` look.
SCANNED = ("properties", "traits", "context")


class PiiRule:
    def __init__(self, config: PiiRuleConfig) -> None:
        self.fields = [tuple(path.split(".")) for path in config.fields]
        self.keys = frozenset(key.lower() for key in config.keys)
        self.detectors = [DETECTORS[name] for name in config.values]
        self.pattern = re.compile(config.pattern) if config.pattern is not None else None
        self.action = make_action(config.action, salt=config.salt, keep_last=config.keep_last)
        self.by_value = bool(self.detectors) or self.pattern is not None
        self.deep = bool(self.keys) or self.by_value

    def apply(self, event: dict) -> None:
        """This rule alone (PiiRules applies several, sharing their walks)."""
        self.apply_fields(event)
        if self.deep:
            for name in SCANNED:
                container = event.get(name)
                if type(container) is dict:
                    self._walk_dict(container)

    def apply_fields(self, event: dict) -> None:
        for path in self.fields:
            self._apply_field(event, path)

    @property
    def fields_reach_scanned(self) -> bool:
        """Whether some of its ``fields`` lie where deep rules look."""
        return any(path[0] in SCANNED for path in self.fields)

    def _apply_field(self, event: dict, path: tuple[str, ...]) -> None:
        node: Any = event
        for key in path[:-1]:
            node = node.get(key) if type(node) is dict else None
            if node is None:
                return
        last = path[-1]
        if type(node) is dict and last in node:
            self._act(node, last, node[last])

    def _act(self, container: dict, key: str, value: Any) -> None:
        new = self.action(value)
        if new is DROP:
            del container[key]
        else:
            container[key] = new

    def _selects(self, value: Any) -> bool:
        kind = type(value)
        if kind is str:
            text = value
        elif kind is int:
            if self.pattern is None and -10**12 < value < 10**12:  # too short for any detector (cards: 13+ digits)
                return False
            text = str(value)
        else:
            return False
        for detector in self.detectors:
            if detector(text):
                return True
        return self.pattern is not None and self.pattern.search(text) is not None

    def _walk_dict(self, node: dict) -> None:
        selected = None
        keys, by_value = self.keys, self.by_value
        for key, value in node.items():
            kind = type(value)
            if keys and key.lower() in keys:
                pass
            elif kind is dict:
                self._walk_dict(value)
                continue
            elif kind is list:
                self._walk_list(value)
                continue
            elif not by_value or not self._selects(value):
                continue
            if selected is None:
                selected = []
            selected.append(key)
        if selected is not None:  # changed after the loop: a dict cannot change size while iterated
            for key in selected:
                self._act(node, key, node[key])

    def _walk_list(self, items: list) -> None:
        dropped = False
        for index, value in enumerate(items):
            kind = type(value)
            if kind is dict:
                self._walk_dict(value)
            elif kind is list:
                self._walk_list(value)
            elif self.by_value and self._selects(value):
                new = self.action(value)
                items[index] = new
                dropped = dropped or new is DROP
        if dropped:
            items[:] = [item for item in items if item is not DROP]


class DeepWalk:
    """The deep part (``keys``, ``values``) of consecutive rules, in one walk of the event."""

    def __init__(self, rules: list[PiiRule]) -> None:
        self.rules = rules
        self.keys = frozenset().union(*(rule.keys for rule in rules))  # every key any of them names
        self.value_rules = [rule for rule in rules if rule.by_value]

    def __call__(self, event: dict) -> None:
        for name in SCANNED:
            container = event.get(name)
            if type(container) is dict:
                self._walk_dict(container, self.rules)

    def _settle(self, value: Any, key: str | None, rules: list[PiiRule]) -> Any:
        """``value`` as the rules leave it, one after the other, or DROP. A container is walked
        (in place) by each rule that does not select it whole; consecutive such rules walk it once."""
        walking: list[PiiRule] = []
        for rule in rules:
            kind = type(value)
            if key is not None and rule.keys and key in rule.keys:
                pass
            elif kind is dict or kind is list:
                walking.append(rule)
                continue
            elif not rule.by_value or not rule._selects(value):
                continue
            if walking:  # the rules before this one see inside the value first
                self._walk(value, walking)
                walking = []
            value = rule.action(value)
            if value is DROP:
                return DROP
        if walking:
            self._walk(value, walking)
        return value

    def _walk(self, value: Any, rules: list[PiiRule]) -> None:
        if type(value) is dict:
            self._walk_dict(value, rules)
        else:
            self._walk_list(value, rules)

    def _walk_dict(self, node: dict, rules: list[PiiRule]) -> None:
        changed = None
        keys = self.keys
        # The common cases without _settle: a key no rule names, holding a container (every rule
        # walks it) or a value no rule selects.
        whole = rules is self.rules
        value_rules = self.value_rules if whole else [rule for rule in rules if rule.by_value]
        for key, value in node.items():
            lower = key.lower() if keys else None
            if lower is None or lower not in keys:
                kind = type(value)
                if kind is dict:
                    self._walk_dict(value, rules)
                    continue
                if kind is list:
                    self._walk_list(value, rules)
                    continue
                if kind is not str and kind is not int:
                    continue
                for rule in value_rules:
                    if rule._selects(value):
                        break
                else:
                    continue
            new = self._settle(value, lower, rules)
            if new is not value:
                if changed is None:
                    changed = []
                changed.append((key, new))
        if changed is not None:  # after the loop: a dict cannot change size while iterated
            for key, new in changed:
                if new is DROP:
                    del node[key]
                else:
                    node[key] = new

    def _walk_list(self, items: list, rules: list[PiiRule]) -> None:
        dropped = False
        for index, value in enumerate(items):
            new = self._settle(value, None, rules)
            if new is not value:
                items[index] = new
                dropped = dropped or new is DROP
        if dropped:
            items[:] = [item for item in items if item is not DROP]


class PiiRules:
    """A source's rules, in order, as steps: each rule's ``fields``, and deep walks shared by
    consecutive rules (see the module's docstring)."""

    def __init__(self, configs: list[PiiRuleConfig]) -> None:
        self.rules = [PiiRule(config) for config in configs]
        self.steps: list[Callable[[dict], None]] = []
        walk: list[PiiRule] = []
        for rule in self.rules:
            if rule.fields:
                if walk and rule.fields_reach_scanned:
                    self.steps.append(DeepWalk(walk))
                    walk = []
                self.steps.append(rule.apply_fields)
            if rule.deep:
                walk.append(rule)
        if walk:
            self.steps.append(DeepWalk(walk))

    def apply(self, event: dict) -> None:
        for step in self.steps:
            step(event)
