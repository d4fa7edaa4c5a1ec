"""GA4's limits, checked before sending: /mp/collect answers 2xx to everything and silently drops
what breaks them (a whole request, for one bad event), so an event that would be dropped is
refused here, with the reason, and never sent.

The limits (developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events,
#limitations): event and param names [A-Za-z][A-Za-z0-9_]*, at most 40 characters, without the
reserved names and prefixes; at most 25 params an event; param values at most 100 characters
(page_location 1000, page_referrer 420, page_title 300); no nested params but ``items``; each
item with item_id or item_name and at most 10 custom params; at most 25 user properties, names of
at most 24 characters and values of at most 36; events at most 72 hours old.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

MAX_PARAMS = 25
MAX_NAME = 40
MAX_PARAM_VALUE = 100
LONGER_PARAM_VALUES = {"page_location": 1000, "page_referrer": 420, "page_title": 300}
MAX_USER_PROPERTIES = 25
MAX_USER_PROPERTY_NAME = 24
MAX_USER_PROPERTY_VALUE = 36
MAX_CUSTOM_ITEM_PARAMS = 10
MAX_AGE_MICROS = 72 * 3600 * 1_000_000
# An event is refused a minute before GA4's 72 hours run out: it must still be in time on arrival.
AGE_MARGIN_MICROS = 60 * 1_000_000
# A timestamp this far ahead of our clock is clock skew: sent as now. Further ahead: refused.
SKEW_MICROS = 60 * 1_000_000

RESERVED_PREFIXES = ("google_", "ga_", "firebase_")
RESERVED_EVENT_NAMES = frozenset({
    "ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "ad_reward", "adunit_exposure",
    "app_background", "app_clear_data", "app_exception", "app_install", "app_remove", "app_store_refund",
    "app_store_subscription_cancel", "app_store_subscription_convert", "app_store_subscription_renew",
    "app_update", "app_upgrade", "dynamic_link_app_open", "dynamic_link_app_update", "dynamic_link_first_open",
    "error", "first_open", "first_visit", "in_app_purchase", "notification_dismiss", "notification_foreground",
    "notification_open", "notification_receive", "os_update", "screen_view", "session_start",
    "session_start_with_rollout", "user_engagement",
})
RESERVED_USER_PROPERTIES = frozenset(
    {"first_open_time", "first_visit_time", "last_deep_link_referrer", "user_id", "first_open_after_install"})
STANDARD_ITEM_PARAMS = frozenset({
    "item_id", "item_name", "affiliation", "coupon", "discount", "index", "item_brand", "item_category",
    "item_category2", "item_category3", "item_category4", "item_category5", "item_list_id", "item_list_name",
    "item_variant", "location_id", "price", "quantity", "creative_name", "creative_slot", "promotion_id",
    "promotion_name",
})

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
_WHITESPACE = re.compile(r"\s")
_NOT_NAME_CHARACTER = re.compile(r"[^A-Za-z0-9_]")
_LEADING_NON_LETTERS = re.compile(r"^[^A-Za-z]+")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_SCALARS = frozenset({str, int, float, bool})

_sanitised: dict[tuple[str, bool], str] = {}


def event_name(name: str, lowercase: bool = False) -> str:
    """A custom event's name made GA4-valid: whitespace becomes ``_``, other characters GA4 refuses
    are dropped, leading characters up to the first letter too, and it is cut to 40 characters;
    ``""`` when nothing is left. Names are few: each is worked out once."""
    key = (name, lowercase)
    done = _sanitised.get(key)
    if done is None:
        done = _LEADING_NON_LETTERS.sub("", _NOT_NAME_CHARACTER.sub("", _WHITESPACE.sub("_", name)))
        done = done[:MAX_NAME]
        if lowercase:
            done = done.lower()
        if len(_sanitised) < 10_000:
            _sanitised[key] = done
    return done


_name_problems: dict[str, str | None] = {}


def name_problem(kind: str, name: str) -> str | None:
    """Why ``name`` is no valid param name (None: it is). Names are few: each is checked once."""
    if name in _name_problems:
        problem = _name_problems[name]
        return None if problem is None else f"{kind} name {problem}"
    if _NAME.fullmatch(name) is None:
        problem = f"{name!r} is not [A-Za-z][A-Za-z0-9_]* of at most {MAX_NAME} characters"
    elif name.startswith(RESERVED_PREFIXES):
        problem = f"{name!r} starts with a reserved prefix ({', '.join(RESERVED_PREFIXES)})"
    else:
        problem = None
    if len(_name_problems) < 10_000:
        _name_problems[name] = problem
    return None if problem is None else f"{kind} name {problem}"


def event_name_problem(name: str, original: str) -> str | None:
    if not name:
        return f"the event name {original!r} has no character GA4 accepts ([A-Za-z][A-Za-z0-9_]*)"
    if name in RESERVED_EVENT_NAMES:
        return f"the event name {name!r} is reserved by GA4"
    return name_problem("event", name)


def _describe(value: Any) -> str:
    return "an object" if isinstance(value, dict) else "a list" if isinstance(value, list) else "null"


def params_problems(params: dict[str, Any]) -> list[str]:
    problems = []
    if len(params) > MAX_PARAMS:
        problems.append(f"{len(params)} params, more than GA4's {MAX_PARAMS} an event")
    for key, value in params.items():
        problem = name_problem("param", key)
        if problem is not None:
            problems.append(problem)
            continue
        if key == "items":
            problems += items_problems(value)
        elif type(value) not in _SCALARS:
            problems.append(f"param {key} is {_describe(value)}: GA4 takes text, numbers or booleans "
                            "(only items is a list)")
        elif type(value) is str and len(value) > LONGER_PARAM_VALUES.get(key, MAX_PARAM_VALUE):
            problems.append(f"param {key} has {len(value)} characters, more than GA4's "
                            f"{LONGER_PARAM_VALUES.get(key, MAX_PARAM_VALUE)}")
    return problems


def items_problems(items: Any) -> list[str]:
    if type(items) is not list:
        return [f"param items is {type(items).__name__}, not a list"]
    problems = []
    for i, item in enumerate(items):
        if type(item) is not dict:
            problems.append(f"items[{i}] is {_describe(item)}, not an object")
            continue
        if not item.get("item_id") and not item.get("item_name"):
            problems.append(f"items[{i}] has neither item_id nor item_name")
        if len(item) > MAX_CUSTOM_ITEM_PARAMS:  # (more keys than that may all be standard ones)
            custom = [key for key in item if key not in STANDARD_ITEM_PARAMS]
            if len(custom) > MAX_CUSTOM_ITEM_PARAMS:
                problems.append(f"items[{i}] has {len(custom)} custom params, more than GA4's "
                                f"{MAX_CUSTOM_ITEM_PARAMS}")
        for key, value in item.items():
            problem = None if key in STANDARD_ITEM_PARAMS else name_problem(f"items[{i}] param", key)
            if problem is not None:
                problems.append(problem)
            elif type(value) not in _SCALARS:
                problems.append(f"items[{i}].{key} is {_describe(value)}: GA4 takes text or numbers")
            elif type(value) is str and len(value) > MAX_PARAM_VALUE:
                problems.append(f"items[{i}].{key} has {len(value)} characters, more than GA4's {MAX_PARAM_VALUE}")
    return problems


def user_properties_problems(properties: dict[str, Any]) -> list[str]:
    problems = []
    if len(properties) > MAX_USER_PROPERTIES:
        problems.append(f"{len(properties)} user properties, more than GA4's {MAX_USER_PROPERTIES}")
    for key, value in properties.items():
        if _NAME.fullmatch(key) is None or len(key) > MAX_USER_PROPERTY_NAME:
            problems.append(f"user property name {key!r} is not [A-Za-z][A-Za-z0-9_]* of at most "
                            f"{MAX_USER_PROPERTY_NAME} characters")
        elif key in RESERVED_USER_PROPERTIES or key.startswith(RESERVED_PREFIXES):
            problems.append(f"user property name {key!r} is reserved by GA4")
        elif type(value) not in _SCALARS:
            problems.append(f"user property {key} is {_describe(value)}: GA4 takes text or numbers")
        elif type(value) is str and len(value) > MAX_USER_PROPERTY_VALUE:
            problems.append(f"user property {key} has {len(value)} characters, more than GA4's "
                            f"{MAX_USER_PROPERTY_VALUE}")
    return problems


def currency_problem(params: dict[str, Any]) -> str | None:
    """A currency must be an ISO 4217 code. (A value without one is taken, but counts as no
    revenue: not a reason to refuse the event.)"""
    currency = params.get("currency")
    if currency is not None and (type(currency) is not str or _CURRENCY.fullmatch(currency) is None):
        return f"currency {currency!r} is not a 3-letter ISO 4217 code"
    return None


def timestamp_micros(text: str, now: int) -> int | str:
    """A validated datetime field (``YYYY-MM-DDTHH:MM:SS.mmmZ``) as epoch microseconds, or why GA4
    would drop the event: more than 72 hours old, or in the future beyond clock skew. ``now`` in
    epoch microseconds."""
    moment = datetime.fromisoformat(text)
    micros = int(moment.timestamp()) * 1_000_000 + moment.microsecond
    if micros > now:
        if micros - now > SKEW_MICROS:
            return f"timestamp {text} is in the future; GA4 drops such events"
        return now
    if now - micros > MAX_AGE_MICROS - AGE_MARGIN_MICROS:
        return f"timestamp {text} is more than 72 hours old; GA4 drops such events"
    return micros
