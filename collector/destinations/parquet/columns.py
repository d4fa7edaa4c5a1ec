"""Rows -> an Arrow table: a file's columns are the union of its rows' columns, each typed from its
values as Segment infers them (integer, float, boolean, timestamp, string).

A column whose values disagree is widened: integers and floats make a float column; anything else
mixed makes a string column, each value written as text (a timestamp-looking string keeps its
text). System timestamp columns are always timestamps; a value there that does not parse is null.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import msgspec
import pyarrow as pa

INT, FLOAT, BOOLEAN, DATETIME, STRING = "int", "float", "boolean", "datetime", "string"
ARROW_TYPES = {INT: pa.int64(), FLOAT: pa.float64(), BOOLEAN: pa.bool_(),
               DATETIME: pa.timestamp("ms", tz="UTC"), STRING: pa.string()}
SYSTEM_TYPES = {
    "id": STRING, "received_at": DATETIME, "sent_at": DATETIME, "original_timestamp": DATETIME,
    "timestamp": DATETIME, "uuid_ts": DATETIME, "event": STRING, "event_text": STRING, "user_id": STRING,
    "anonymous_id": STRING, "channel": STRING, "group_id": STRING, "previous_id": STRING, "name": STRING,
}
# The order system columns come first in, as Segment's tables list them; then the rest by name.
_FIRST = ("id", "received_at", "uuid_ts", "timestamp", "original_timestamp", "sent_at", "anonymous_id",
          "user_id", "event", "event_text", "group_id", "previous_id", "name", "channel")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
_INT64 = (-(2**63), 2**63 - 1)
_json = msgspec.json.Encoder()


def parse_datetime(value: str) -> datetime | None:
    """An ISO-8601 string of at most 40 characters as an aware UTC datetime; None otherwise."""
    if len(value) > 40 or not _ISO.fullmatch(value):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:  # matched the shape but not a real date, e.g. 2024-13-45
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INT if _INT64[0] <= value <= _INT64[1] else STRING
    if isinstance(value, float):
        return FLOAT
    if isinstance(value, str) and parse_datetime(value) is not None:
        return DATETIME
    return STRING


def widen(a: str, b: str) -> str:
    if a == b:
        return a
    if {a, b} == {INT, FLOAT}:
        return FLOAT
    return STRING


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return _json.encode(value).decode()


def column_types(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Every column of ``rows`` and its type."""
    types: dict[str, str] = {}
    for row in rows:
        for column, value in row.items():
            if value is None or column in SYSTEM_TYPES:
                continue
            kind = kind_of(value)
            seen = types.get(column)
            types[column] = kind if seen is None else widen(seen, kind)
    for row in rows:
        for column in row:
            if column in SYSTEM_TYPES:
                types[column] = SYSTEM_TYPES[column]
    return types


def _convert(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == STRING:
        return as_text(value)
    if kind == DATETIME:
        return parse_datetime(value) if isinstance(value, str) else None
    if kind == FLOAT:
        return float(value)
    return value


def ordered(columns: list[str]) -> list[str]:
    first = [c for c in _FIRST if c in columns]
    return first + sorted(set(columns) - set(first))


def arrow_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The rows as one Arrow table, columns in the union of the rows', typed by ``column_types``."""
    types = column_types(rows)
    arrays = {}
    for column in ordered(list(types)):
        kind = types[column]
        arrays[column] = pa.array([_convert(row.get(column), kind) for row in rows], type=ARROW_TYPES[kind])
    return pa.table(arrays)
