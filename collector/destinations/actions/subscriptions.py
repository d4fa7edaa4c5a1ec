"""Subscriptions: what a vendor declares (actions, presets) and what the config adds (mappings),
compiled at load into a trigger and a payload builder each.

A subscription is an enabled preset or mapping. The presets in force are those ``presets:``
keeps (all by default); a mapping named like a preset replaces it (what it leaves out is the
preset's, its ``fields`` are laid over the preset's mapping, a field set to null is removed); any
other mapping adds a subscription, starting from its action's field defaults. Each subscription
is compiled once: its FQL trigger into a predicate, its mapping into a closure, its action's
fields into a validator, its ``hashed`` fields into a hasher and its ``batch_keys`` into a key.
Every problem is reported at once (SettingsError), with its path in the destination's settings.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from collector.destinations.actions.fields import Field, check_mapping, compile_validator, default_mapping
from collector.destinations.actions.fql import FQLError, Predicate, compile_fql
from collector.destinations.actions.hashing import HASHED_KINDS, hasher, normalizer
from collector.destinations.actions.mapping import MISSING, MappingError, compile_mapping
from collector.destinations.actions.settings import ConfigProblem, SettingsError
from collector.destinations.base import Envelope, Outcome

if TYPE_CHECKING:
    from collector.destinations.actions.context import ActionContext
    from collector.destinations.actions.destination import ActionDestination, ActionSettings

__all__ = ["Action", "ActionItem", "Preset", "Subscription", "compiled_subscriptions"]


@dataclass(slots=True)
class ActionItem:
    """One event's payload for one action: ``payload`` is validated (and hashed); ``event`` is the
    event as the destination got it (after filters), not to be modified."""

    payload: dict
    event: dict
    envelope: Envelope


Perform = Callable[["ActionContext", list[ActionItem]], Awaitable[list[Outcome]]]


@dataclass(frozen=True)
class Action:
    """What a vendor can do with events. ``perform`` gets 1 to ``batch_size`` items (one when
    ``batch_size`` is None) and returns one Outcome per item, in order. ``batch_keys`` name fields
    whose resolved values must be equal within one request (a list id, GA4's client_id)."""

    name: str
    title: str
    description: str
    fields: Mapping[str, Field]
    perform: Perform
    batch_size: int | None = None
    batch_keys: tuple[str, ...] = ()
    # How fields marked ``hashed`` are normalised: Meta's rules or Google's.
    hash_style: Literal["meta", "google"] = "meta"

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"action {self.name}: batch_size must be at least 1")
        unknown = [key for key in self.batch_keys if key not in self.fields]
        if unknown:
            raise ValueError(f"action {self.name}: batch_keys {unknown} are not fields")
        _hasher_of(self.fields, self.hash_style)  # an unknown hashing kind fails here, not per event


@dataclass(frozen=True)
class Preset:
    """A subscription the destination starts with; ``mapping`` None means the fields' defaults."""

    name: str
    action: str
    trigger: str
    mapping: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    index: int
    name: str
    action: Action
    trigger: str
    matches: Predicate
    # event -> validated, hashed payload; raises PayloadError
    prepare: Callable[[dict], dict]
    # event -> the mapped payload, before validation and hashing (prepare's first step)
    mapping: Callable[[dict], dict]
    # payload -> the key that parts its batches (None: no batch keys)
    batch_key: Callable[[dict], Hashable] | None


_SUBSCRIPTIONS = "_compiled_subscriptions"


def compiled_subscriptions(config: ActionSettings, cls: type[ActionDestination] | None = None
                           ) -> tuple[Subscription, ...]:
    """The subscriptions of an action destination's settings, compiled once and kept on them.
    ``cls``: a subclass of the settings' destination with actions of its own (compiled apart).
    Raises SettingsError naming every problem."""
    linked = type(config).destination
    if cls is not None and cls is not linked:
        return _compile_subscriptions(cls, config)
    cached = config.__dict__.get(_SUBSCRIPTIONS)
    if cached is None:
        cached = config.__dict__[_SUBSCRIPTIONS] = _compile_subscriptions(linked, config)
    return cached


@dataclass
class _Plan:
    """A subscription as written, before compiling: from a preset, a mapping, or both."""

    name: str
    action: str
    trigger: str
    spec: dict
    at: tuple  # where it was written (the mapping), or () for a preset
    enabled: bool = True


def _compile_subscriptions(cls: type[ActionDestination], settings: ActionSettings) -> tuple[Subscription, ...]:
    problems: list[ConfigProblem] = []
    actions = {action.name: action for action in cls.actions}
    presets = {preset.name: preset for preset in cls.presets}
    plans = _plans(cls, settings, actions, presets, problems)
    subscriptions = []
    for plan in plans.values():
        action = actions[plan.action]
        subscription = _compile_plan(cls, plan, action, len(subscriptions), problems)
        if subscription is not None and plan.enabled:
            subscriptions.append(subscription)
    if problems:
        raise SettingsError(problems)
    return tuple(subscriptions)


def _plans(cls: type[ActionDestination], settings: ActionSettings, actions: dict[str, Action],
           presets: dict[str, Preset], problems: list[ConfigProblem]) -> dict[str, _Plan]:
    plans: dict[str, _Plan] = {}
    if settings.presets is True:
        kept = list(presets)
    elif settings.presets is False:
        kept = []
    else:
        kept = []
        for i, name in enumerate(settings.presets):
            if name in presets:
                kept.append(name)
            else:
                problems.append(ConfigProblem(("presets", i), f"no preset named {name!r}{_did_you_mean(name, presets)}"
                                              f"; presets of {_type(cls)}: {', '.join(map(repr, presets)) or 'none'}"))
    for name in kept:
        preset = presets[name]
        plans[name] = _Plan(name, preset.action, preset.trigger, _preset_spec(preset, actions), ())
    first_at: dict[str, int] = {}
    for i, mapping in enumerate(settings.mappings):
        at = ("mappings", i)
        name = mapping.name if mapping.name is not None else f"mappings[{i}]"
        if name in first_at:
            problems.append(ConfigProblem((*at, "name"), f"another mapping is named {name!r} (mappings[{first_at[name]}])"))
            continue
        first_at[name] = i
        preset = presets.get(name)
        action_name = mapping.action or (preset.action if preset else None)
        trigger = mapping.trigger or (preset.trigger if preset else None)
        if action_name is None or trigger is None:
            missing = " and ".join(key for key, value in (("action", action_name), ("trigger", trigger)) if value is None)
            hint = ""
            if mapping.name is not None and presets:
                hint = (f"; its name is not a preset's{_did_you_mean(mapping.name, presets)}: "
                        f"{', '.join(map(repr, presets))}")
            problems.append(ConfigProblem(at, f"a new mapping needs {missing}{hint}"))
            continue
        if action_name not in actions:
            problems.append(ConfigProblem((*at, "action"), f"unknown action {action_name!r}"
                                          f"{_did_you_mean(action_name, actions)}; actions of {_type(cls)}: "
                                          f"{', '.join(actions)}"))
            continue
        if preset is not None and preset.action == action_name:
            base = _preset_spec(preset, actions)
        else:
            base = default_mapping(actions[action_name].fields)
        spec = dict(base)
        for field, value in mapping.fields.items():
            if value is None:
                spec.pop(field, None)
            else:
                spec[field] = value
        plans[name] = _Plan(name, action_name, trigger, spec, at, mapping.enabled)
    return plans


def _preset_spec(preset: Preset, actions: dict[str, Action]) -> dict:
    action = actions.get(preset.action)
    if preset.mapping is not None:
        return dict(preset.mapping)
    return default_mapping(action.fields) if action is not None else {}


def _compile_plan(cls: type[ActionDestination], plan: _Plan, action: Action, index: int,
                  problems: list[ConfigProblem]) -> Subscription | None:
    before = len(problems)
    # A preset's problems are the vendor's bug: reported at the destination's type.
    where = plan.at or ("type",)
    prefix = "" if plan.at else f"preset {plan.name!r} of {_type(cls)}: "
    matches: Predicate | None = None
    try:
        matches = compile_fql(plan.trigger)
    except FQLError as error:
        if plan.at:
            problems.append(ConfigProblem((*plan.at, "trigger"), error.message, column=error.column))
        else:
            problems.append(ConfigProblem(where, f"{prefix}trigger: {error}"))
    for path, message in check_mapping(action.fields, plan.spec):
        fields_at = (*plan.at, "fields", *path) if plan.at else where
        text = message if plan.at else f"{prefix}fields.{'.'.join(map(str, path))}: {message}"
        problems.append(ConfigProblem(fields_at, text, at_key=plan.at != () and message.startswith("unknown field")))
    mapping = None
    try:
        mapping = compile_mapping(plan.spec)
    except MappingError as error:
        for one in error.errors:
            fields_at = (*plan.at, "fields", *one.path) if plan.at else where
            problems.append(ConfigProblem(fields_at, one.message if plan.at else f"{prefix}{one}"))
    if len(problems) > before or matches is None or mapping is None:
        return None
    return Subscription(index, plan.name, action, plan.trigger, matches,
                        _preparer(mapping, compile_validator(action.fields), _hasher_of(action.fields, action.hash_style)),
                        mapping, _batch_key(action.batch_keys))


def _preparer(mapping: Callable[[dict], dict], validate: Callable[[dict], dict],
              hash_fields: Callable[[dict], None] | None) -> Callable[[dict], dict]:
    if hash_fields is None:
        return lambda event: validate(mapping(event))

    def prepare(event: dict) -> dict:
        payload = validate(mapping(event))
        hash_fields(payload)
        return payload

    return prepare


def _hasher_of(fields: Mapping[str, Field], style: str) -> Callable[[dict], None] | None:
    """A function that replaces, in a validated payload (a fresh dict, ours to change), every
    ``hashed`` field's value by its normalised hash (normalised only, for the kinds the platform
    wants in clear); a value left empty by normalising is removed. None: nothing to hash."""
    steps: list[tuple[str, bool, Callable[[Any], Any] | None, Callable[[dict], None] | None]] = []
    for name, field in fields.items():
        if field.hashed is not None:
            make = hasher if field.hashed in HASHED_KINDS[style] else normalizer
            steps.append((name, field.multiple, make(field.hashed, style), None))
        elif field.properties:
            inner = _hasher_of(field.properties, style)
            if inner is not None:
                steps.append((name, field.multiple, None, inner))
    if not steps:
        return None

    def hash_fields(payload: dict) -> None:
        for name, multiple, function, inner in steps:
            value = payload.get(name, MISSING)
            if value is MISSING or value is None:
                continue
            if function is not None:
                if multiple:
                    hashed = [h for h in map(function, value) if h is not None]
                    if hashed:
                        payload[name] = hashed
                    else:
                        del payload[name]
                else:
                    result = function(value)
                    if result is None:
                        del payload[name]
                    else:
                        payload[name] = result
            else:
                for obj in value if multiple else (value,):
                    if isinstance(obj, dict):
                        inner(obj)

    return hash_fields


_SCALARS = (str, int, float, bool, type(None))


def _batch_key(keys: tuple[str, ...]) -> Callable[[dict], Hashable] | None:
    if not keys:
        return None

    def key(payload: dict) -> Hashable:
        values = tuple(payload.get(k) for k in keys)
        if all(isinstance(v, _SCALARS) for v in values):
            return values
        return msgspec.json.encode(values)  # lists and objects, compared by their JSON

    return key


def _type(cls: type[ActionDestination]) -> str:
    return cls.Config.__struct_config__.tag


def _did_you_mean(word: str, candidates: Mapping[str, Any] | list[str]) -> str:
    matches = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""
