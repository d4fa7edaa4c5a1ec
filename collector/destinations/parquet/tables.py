"""Segment's warehouse schema for files, as pure functions: which tables an event goes to and the
row it makes in each.

A track goes to ``tracks`` (common columns only) and to its event's own table (common columns and
properties); identify, page, screen, group and alias calls to ``identifies``, ``pages``,
``screens``, ``groups`` and ``aliases``. Nested objects are flattened with ``_`` (context with a
``context_`` prefix), arrays kept as JSON text, names snake-cased as segmentio/go-snakecase does,
``_`` before a leading digit; a null makes no column; a property named like a system column is
discarded. ``users`` is an upserted table, which append-only files cannot be: it is not written.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import msgspec

from collector.destinations.warehouse_names import (  # noqa: F401 -- part of this module's API
    SYSTEM_COLUMNS, SYSTEM_TABLES, TABLE_OF_TYPE, event_table, identifier, schema_name, snake_case,
)

_COPIED = (("anonymousId", "anonymous_id"), ("userId", "user_id"), ("sentAt", "sent_at"),
           ("originalTimestamp", "original_timestamp"), ("timestamp", "timestamp"), ("channel", "channel"))

_json = msgspec.json.Encoder()


def source_name(source: str) -> str:
    """A source's partition value, named as Segment names its schema."""
    return schema_name(source)


def flatten(values: Any, prefix: str, into: dict[str, Any], skip_system: bool) -> None:
    """``values``' leaves into ``into`` as ``prefix + snake_key(_snake_key...)``; arrays as JSON text."""
    if not isinstance(values, dict):
        return
    for key, value in values.items():
        part = snake_case(str(key))
        if not part or value is None:
            continue
        column = prefix + part
        if isinstance(value, dict):
            flatten(value, column + "_", into, skip_system)
            continue
        if column[0].isdigit():
            column = "_" + column
        if skip_system and column in SYSTEM_COLUMNS:
            continue
        into[column] = _json.encode(value).decode() if isinstance(value, list) else value


def iso_ms(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def common_row(event: dict, received_ms: int) -> dict[str, Any]:
    """The columns every table has (``uuid_ts`` is the file's, added when it is written)."""
    row: dict[str, Any] = {"id": event.get("messageId"), "received_at": event.get("receivedAt") or iso_ms(received_ms)}
    for key, column in _COPIED:
        value = event.get(key)
        if value is not None and value != "":
            row[column] = value
    flatten(event.get("context"), "context_", row, skip_system=False)
    return row


def rows_for(event: dict, received_ms: int) -> list[tuple[str, dict[str, Any]]]:
    """The (table, row) pairs an event makes; none for a type without a table."""
    kind = event.get("type")
    table = TABLE_OF_TYPE.get(kind) if isinstance(kind, str) else None
    if table is None:
        return []
    row = common_row(event, received_ms)
    if kind == "track":
        name = event.get("event")
        if isinstance(name, str):
            row["event_text"] = name
            row["event"] = identifier(name)
        own = event_table(name)
        if own is None:
            return [(table, row)]
        detail = dict(row)
        flatten(event.get("properties"), "", detail, skip_system=True)
        return [(table, row), (own, detail)]
    if kind in ("identify", "group"):
        flatten(event.get("traits"), "", row, skip_system=True)
        if kind == "group" and event.get("groupId") is not None:
            row["group_id"] = event["groupId"]
    elif kind in ("page", "screen"):
        properties = event.get("properties")
        flatten(properties, "", row, skip_system=True)
        name = event.get("name")
        if name is None and isinstance(properties, dict):
            name = properties.get("name")
        if name is not None:
            row["name"] = name
    elif kind == "alias" and event.get("previousId") is not None:
        row["previous_id"] = event["previousId"]
    return [(table, row)]
