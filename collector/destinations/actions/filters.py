"""Destination filters, with Segment's semantics: drop, sample, drop or allow properties.

Every destination type takes ``filters:`` (``DestinationConfig.filters``); the dispatcher runs
them as it routes events, before the destination (and an action destination's triggers) sees
them. Segment's order holds whatever the order in the file: first every ``sample``, then every
``drop``, then every ``drop_properties``, then every ``allow_properties``. Each condition (``if``,
FQL) is judged on the event as it arrived, not as an earlier filter left it.

The filtered event is a new dict that copies only the objects it changes: the event it came from
is never modified (it may be shared). ``type`` and ``messageId`` are always kept: routing and the
log need them.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any

import msgspec

from collector.destinations.actions.fql import FQLError, compile_fql
from collector.destinations.actions.settings import ConfigProblem, FilterConfig, SettingsError

# The event as filtered (the same dict when nothing changed), or None when it is dropped.
EventFilter = Callable[[dict], "dict | None"]
Predicate = Callable[[dict], bool]
_Edit = Callable[[dict], dict]

PROTECTED_KEYS = frozenset({"type", "messageId"})
_ABSENT = object()
_CACHE_KEY = "_compiled_filters"


def compiled_filters(config: Any) -> EventFilter | None:
    """The filter of a destination config (None without filters), compiled once and kept on it."""
    cached = config.__dict__.get(_CACHE_KEY, _ABSENT)
    if cached is _ABSENT:
        cached = config.__dict__[_CACHE_KEY] = compile_filters(config.filters)
    return cached


def compile_filters(filters: list[FilterConfig]) -> EventFilter | None:
    """One function for a destination's filters; None when none is enabled. Raises SettingsError
    naming every problem (paths start with "filters")."""
    problems: list[ConfigProblem] = []
    samples: list[tuple[Predicate, float, Callable[[dict], Any] | None]] = []
    drops: list[Predicate] = []
    drop_edits: list[tuple[Predicate, _Edit]] = []
    allow_edits: list[tuple[Predicate, _Edit]] = []
    for i, spec in enumerate(filters):
        at = ("filters", i)
        condition = _condition(spec.if_, at, problems)
        if not (spec.drop or spec.sample or spec.drop_properties is not None or spec.allow_properties is not None):
            problems.append(ConfigProblem(at, "a filter needs one of drop: true, sample, drop_properties or "
                                              "allow_properties"))
        key = None
        if spec.sample is not None and spec.sample.path is not None:
            key = _getter(spec.sample.path, (*at, "sample", "path"), problems)
        drop_edit = allow_edit = None
        if spec.drop_properties is not None:
            drop_edit = _property_edit(spec.drop_properties, (*at, "drop_properties"), problems, keep=False)
        if spec.allow_properties is not None:
            allow_edit = _property_edit(spec.allow_properties, (*at, "allow_properties"), problems, keep=True)
        if not spec.enabled:  # checked like the others, but not applied
            continue
        if spec.sample is not None:
            samples.append((condition, spec.sample.percent, key))
        if spec.drop:
            drops.append(condition)
        if drop_edit is not None:
            drop_edits.append((condition, drop_edit))
        if allow_edit is not None:
            allow_edits.append((condition, allow_edit))
    if problems:
        raise SettingsError(problems)
    if not (samples or drops or drop_edits or allow_edits):
        return None
    edits = drop_edits + allow_edits

    def apply(event: dict) -> dict | None:
        for condition, percent, key in samples:
            if condition(event) and not _sampled(event, percent, key):
                return None
        for condition in drops:
            if condition(event):
                return None
        result = event
        for condition, edit in edits:
            if condition(event):
                result = edit(result)
        return result

    return apply


def _always(event: dict) -> bool:
    return True


def _condition(text: str | None, at: tuple, problems: list[ConfigProblem]) -> Predicate:
    if text is None:
        return _always
    try:
        return compile_fql(text)
    except FQLError as error:
        problems.append(ConfigProblem((*at, "if"), error.message, column=error.column))
        return _always


def _sampled(event: dict, percent: float, key: Callable[[dict], Any] | None) -> bool:
    if key is not None:
        value = key(event)
        if value is not None:
            # Stable across processes and restarts (hash() of a str is not).
            digest = hashlib.blake2b(msgspec.json.encode(value), digest_size=8).digest()
            return int.from_bytes(digest, "big") % 10_000 < percent * 100
    return random.random() * 100 < percent


def _split(path: str, at: tuple, problems: list[ConfigProblem]) -> list[str] | None:
    parts = path.split(".") if path else []
    if path and not all(parts):
        problems.append(ConfigProblem(at, f"expected a dotted path such as properties or context.page, got {path!r}"))
        return None
    return parts


def _getter(path: str, at: tuple, problems: list[ConfigProblem]) -> Callable[[dict], Any]:
    parts = _split(path, at, problems)
    if parts == []:
        problems.append(ConfigProblem(at, "expected a dotted path such as userId or properties.account_id"))
    parts = parts or []

    def get(event: dict) -> Any:
        node: Any = event
        for part in parts:
            if not isinstance(node, dict):
                return None
            node = node.get(part)
        return node

    return get


def _property_edit(spec: dict[str, list[str]], at: tuple, problems: list[ConfigProblem], keep: bool) -> _Edit:
    edits: list[_Edit] = []
    for object_path, keys in spec.items():
        parts = _split(object_path, (*at, object_path), problems)
        if parts is None:
            continue
        names = frozenset(keys)
        if not parts:
            if not keep and names & PROTECTED_KEYS:
                problems.append(ConfigProblem((*at, object_path), f"{', '.join(sorted(names & PROTECTED_KEYS))} "
                                              "cannot be dropped: routing and the log need it"))
            names |= PROTECTED_KEYS if keep else frozenset()
        edits.append(_edit_at(parts, _keep_only(names) if keep else _drop(names)))

    def edit(event: dict) -> dict:
        for one in edits:
            event = one(event)
        return event

    return edit


def _drop(names: frozenset[str]) -> _Edit:
    def drop(obj: dict) -> dict:
        if names.isdisjoint(obj):
            return obj
        return {k: v for k, v in obj.items() if k not in names}

    return drop


def _keep_only(names: frozenset[str]) -> _Edit:
    def keep(obj: dict) -> dict:
        if names.issuperset(obj):
            return obj
        return {k: v for k, v in obj.items() if k in names}

    return keep


def _edit_at(parts: list[str], edit: _Edit) -> _Edit:
    """``edit`` applied to the object at ``parts`` (to each object of a list met on the way),
    copying only the containers on the way to a change."""
    depth = len(parts)

    def walk(node: Any, i: int) -> Any:
        if isinstance(node, list):
            changed = [walk(item, i) for item in node]
            return changed if any(new is not old for new, old in zip(changed, node)) else node
        if not isinstance(node, dict):
            return node
        if i == depth:
            return edit(node)
        child = node.get(parts[i], _ABSENT)
        if child is _ABSENT:
            return node
        new = walk(child, i + 1)
        if new is child:
            return node
        copy = dict(node)
        copy[parts[i]] = new
        return copy

    return lambda event: walk(event, 0)
