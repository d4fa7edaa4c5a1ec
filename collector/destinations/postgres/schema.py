"""Segment's warehouse schema as pure functions: names, flattening, rows per table, type inference
and coercion of a value into its column's type.

An event becomes rows (``rows_for``): a track goes to ``tracks`` (common columns only) and to its
event's own table (common columns and properties); an identify to ``identifies`` and, with a
userId, to ``users``; page, screen, group and alias calls to their tables. Nested objects are
flattened with ``_`` (context with a ``context_`` prefix), arrays kept as JSON text, names
snake-cased as segmentio/go-snakecase does. Nulls make no column.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any, Callable

import msgspec

from collector.destinations.warehouse_names import (  # noqa: F401 -- part of this module's API
    SYSTEM_COLUMNS, SYSTEM_TABLES, TABLE_OF_TYPE, event_table, identifier, schema_name, snake_case,
)

# The logical column types (Segment's); each dialect names them physically.
INT, FLOAT, STRING, DATETIME, BOOLEAN, JSON = "int", "float", "string", "datetime", "boolean", "json"

# Columns whose type is fixed whatever value arrives first.
SYSTEM_TYPES: dict[str, str] = {
    "id": STRING, "received_at": DATETIME, "sent_at": DATETIME, "original_timestamp": DATETIME,
    "timestamp": DATETIME, "uuid_ts": DATETIME, "event": STRING, "event_text": STRING, "user_id": STRING,
    "anonymous_id": STRING, "channel": STRING, "group_id": STRING, "previous_id": STRING,
    "name": STRING, "category": STRING,
}

_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")


# (prefix, limit) -> key -> (the joined name, for nesting; the column name, "" when discarded).
# Property names repeat from event to event: snake-casing each once keeps it off the hot path.
_NAMES: dict[tuple[str, int], dict[str, tuple[str, str]]] = {}
_NAMES_PER_PREFIX = 50_000


def _name(prefix: str, key: str, limit: int) -> tuple[str, str]:
    joined = prefix + snake_case(key) if prefix else identifier(key, limit)
    column = joined[:limit] if joined and joined not in SYSTEM_COLUMNS else ""
    return joined, column


_EVENT_NAMES: dict[tuple[Any, int], tuple[str | None, str | None]] = {}


def _event_names(name: Any, limit: int) -> tuple[str | None, str | None]:
    """(the ``event`` column, the event's own table) of a track's event name, remembered."""
    key = (name, limit) if isinstance(name, str) else (None, limit)
    names = _EVENT_NAMES.get(key)
    if names is None:
        names = (identifier(name, limit) if isinstance(name, str) else None, event_table(name, limit))
        if len(_EVENT_NAMES) < _NAMES_PER_PREFIX:
            _EVENT_NAMES[key] = names
    return names


def flatten(obj: dict, prefix: str, out: dict[str, Any], limit: int = 63) -> None:
    """Nested objects joined with ``_``; arrays as JSON text; nulls dropped; reserved names discarded."""
    names = _NAMES.get((prefix, limit))
    if names is None:
        names = _NAMES.setdefault((prefix, limit), {})
    for key, value in obj.items():
        if value is None:
            continue
        known = names.get(key)
        if known is None:
            known = _name(prefix, key, limit)
            if len(names) < _NAMES_PER_PREFIX:
                names[key] = known
        if type(value) is dict:
            flatten(value, known[0] + "_", out, limit)
        elif known[1]:
            out[known[1]] = msgspec.json.encode(value).decode() if type(value) is list else value


_COMMON = (("received_at", "receivedAt"), ("sent_at", "sentAt"), ("timestamp", "timestamp"),
           ("original_timestamp", "originalTimestamp"), ("user_id", "userId"), ("anonymous_id", "anonymousId"),
           ("channel", "channel"))


def _common(event: dict, table: str, limit: int) -> dict[str, Any]:
    row: dict[str, Any] = {"id": event.get("messageId")}
    get = event.get
    for column, key in _COMMON:
        value = get(key)
        if value is not None and value != "":
            row[column] = value
    context = event.get("context")
    if isinstance(context, dict):
        flatten(context, "context_", row, limit)
    return row


def rows_for(event: dict, limit: int = 63) -> list[tuple[str, dict[str, Any]]]:
    """(table, row) pairs for one event; rows hold raw JSON values, coerced later per column type.
    Events without a messageId or of an unknown type give none."""
    kind = event.get("type")
    table = TABLE_OF_TYPE.get(kind)  # type: ignore[arg-type]
    if table is None or not event.get("messageId"):
        return []
    row = _common(event, table, limit)
    if kind == "track":
        name = event.get("event")
        row["event_text"] = name
        row["event"], own = _event_names(name, limit)
        rows = [("tracks", row)]
        if own:
            detailed = dict(row)
            props = event.get("properties")
            if isinstance(props, dict):
                flatten(props, "", detailed, limit)
            rows.append((own, detailed))
        return rows
    if kind in ("page", "screen"):
        props = event.get("properties")
        props = props if isinstance(props, dict) else {}
        flatten(props, "", row, limit)
        name = event.get("name") or props.get("name")
        if name is not None:
            row["name"] = name
        if kind == "page" and event.get("category") is not None:
            row["category"] = event["category"]
        return [(table, row)]
    traits = event.get("traits")
    if kind in ("identify", "group") and isinstance(traits, dict):
        flatten(traits, "", row, limit)
    if kind == "group" and event.get("groupId") is not None:
        row["group_id"] = event["groupId"]
    if kind == "alias" and event.get("previousId") is not None:
        row["previous_id"] = event["previousId"]
    rows = [(table, row)]
    if kind == "identify" and event.get("userId") not in (None, ""):
        user: dict[str, Any] = {"id": event["userId"], "received_at": event.get("receivedAt")}
        if isinstance(traits, dict):
            flatten(traits, "", user, limit)
        rows.append(("users", user))
    return rows


def infer_type(value: Any) -> str:
    """The logical type a column gets from its first value (RudderStack's dataTypeFor)."""
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return INT if value.is_integer() else FLOAT
    if isinstance(value, str) and len(value) <= 40 and _ISO_DATETIME.fullmatch(value):
        return DATETIME if parse_datetime(value) is not None else STRING
    return STRING


def parse_datetime(value: str) -> datetime | None:
    """An ISO-8601 time, in UTC (naive input is taken as UTC); None when it does not parse."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    tz = parsed.tzinfo
    if tz is timezone.utc:
        return parsed
    if tz is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


# A coercer returns the value for its column, or MISFIT when the value cannot go there.
MISFIT = object()
_INT_MIN, _INT_MAX = -(2 ** 63), 2 ** 63 - 1


def _to_string(value: Any) -> Any:
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def _to_int(value: Any) -> Any:
    if isinstance(value, bool):
        return MISFIT
    if isinstance(value, float):
        if not math.isfinite(value):
            return MISFIT
        value = int(value)
    if isinstance(value, int) and _INT_MIN <= value <= _INT_MAX:
        return value
    return MISFIT


def _to_float(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return MISFIT
    return float(value) if math.isfinite(value) else MISFIT


def _to_bool(value: Any) -> Any:
    return value if isinstance(value, bool) else MISFIT


def _to_datetime(value: Any) -> Any:
    if isinstance(value, str) and len(value) <= 40:
        parsed = parse_datetime(value)
        if parsed is not None and 1 <= parsed.year <= 9999:
            return parsed
    return MISFIT


def _to_naive_datetime(value: Any) -> Any:
    parsed = _to_datetime(value)
    return parsed if parsed is MISFIT else parsed.replace(tzinfo=None)


COERCE: dict[str, Callable[[Any], Any]] = {
    INT: _to_int, FLOAT: _to_float, STRING: _to_string, BOOLEAN: _to_bool, DATETIME: _to_datetime,
    JSON: _to_string,
}
# Values of this Python type go into a column of that type as they are (no call per value).
UNCHANGED: dict[str, type] = {FLOAT: float, STRING: str, BOOLEAN: bool}  # not int: its range is checked
# Redshift's ``timestamp`` has no time zone: UTC, naive.
COERCE_NAIVE_TIME: dict[str, Callable[[Any], Any]] = {**COERCE, DATETIME: _to_naive_datetime}
