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

import re
from datetime import datetime, timezone
from typing import Any

import msgspec

SYSTEM_TABLES = frozenset({"tracks", "pages", "screens", "aliases", "groups", "accounts", "users", "identifies"})
TABLE_OF_TYPE = {"identify": "identifies", "page": "pages", "screen": "screens", "group": "groups",
                 "alias": "aliases", "track": "tracks"}
# Columns filled from the message itself; a property or trait of the same name is discarded.
SYSTEM_COLUMNS = frozenset({
    "id", "received_at", "sent_at", "original_timestamp", "timestamp", "uuid_ts", "loaded_at", "uuid",
    "event", "event_text", "user_id", "anonymous_id", "channel", "group_id", "previous_id",
})
_COPIED = (("anonymousId", "anonymous_id"), ("userId", "user_id"), ("sentAt", "sent_at"),
           ("originalTimestamp", "original_timestamp"), ("timestamp", "timestamp"), ("channel", "channel"))

_PLAIN = re.compile(r"[a-z0-9_]*")
_WORDS = re.compile(r"[A-Z0-9]*[a-z]*")
_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")
_json = msgspec.json.Encoder()


def snake_case(text: str) -> str:
    """segmentio/go-snakecase: a word is a run of uppercase letters or digits followed by a run of
    lowercase letters; anything else separates words."""
    if _PLAIN.fullmatch(text):
        return text
    words: list[str] = []
    for chunk in _NOT_WORD.split(text):
        words += [w.lower() for w in _WORDS.findall(chunk) if w]
    return "_".join(words)


def identifier(text: str) -> str:
    """A table or column name: snake-cased, ``_`` before a leading digit ("" when nothing is left)."""
    name = snake_case(text)
    return "_" + name if name[:1].isdigit() else name


def source_name(source: str) -> str:
    """A source's partition value, named as Segment names its schema: alphanumeric runs
    snake-cased and joined by ``_``; ``_`` before a leading digit; ``stringempty`` when empty."""
    name = "_".join(snake_case(part) for part in _NOT_WORD.split(source) if part)
    if not name:
        return "stringempty"
    return "_" + name if name[0].isdigit() else name


def event_table(event_name: Any) -> str | None:
    """A track's own table; None when the name leaves nothing. A name like a system table gets ``_``."""
    if not isinstance(event_name, str):
        return None
    name = identifier(event_name)
    if not name:
        return None
    return "_" + name if name in SYSTEM_TABLES else name


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
