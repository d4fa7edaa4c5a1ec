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
"""

from __future__ import annotations

import re
from typing import Any

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
        for path in self.fields:
            self._apply_field(event, path)
        if self.deep:
            for name in SCANNED:
                container = event.get(name)
                if type(container) is dict:
                    self._walk_dict(container)

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


class PiiRules:
    """A source's rules, in order."""

    def __init__(self, configs: list[PiiRuleConfig]) -> None:
        self.rules = [PiiRule(config) for config in configs]

    def apply(self, event: dict) -> None:
        for rule in self.rules:
            rule.apply(event)
