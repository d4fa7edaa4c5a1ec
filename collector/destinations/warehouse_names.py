"""Segment's warehouse naming, shared by the warehouse (postgres) and data lake (parquet)
destinations: which table a call goes to, the columns a message fills itself, and how a source,
an event name or a property becomes a schema, table or column name (segmentio/go-snakecase)."""

from __future__ import annotations

import re
from typing import Any

SYSTEM_TABLES = frozenset({"tracks", "pages", "screens", "aliases", "groups", "accounts", "users", "identifies"})
TABLE_OF_TYPE = {"identify": "identifies", "page": "pages", "screen": "screens", "group": "groups",
                 "alias": "aliases", "track": "tracks"}
# Columns filled from the message itself; a property or trait of the same name is discarded.
SYSTEM_COLUMNS = frozenset({
    "id", "received_at", "sent_at", "original_timestamp", "timestamp", "uuid_ts", "loaded_at", "uuid",
    "event", "event_text", "user_id", "anonymous_id", "channel", "group_id", "previous_id",
})

_PLAIN = re.compile(r"[a-z0-9_]*")
_WORDS = re.compile(r"[A-Z0-9]*[a-z]*")
NOT_WORD = re.compile(r"[^A-Za-z0-9]+")


def snake_case(text: str) -> str:
    """segmentio/go-snakecase: a word is a run of uppercase letters or digits followed by a run of
    lowercase letters; anything else (spaces, punctuation, non-ASCII) separates words."""
    if _PLAIN.fullmatch(text):
        return text
    words: list[str] = []
    for chunk in NOT_WORD.split(text):
        words += [w.lower() for w in _WORDS.findall(chunk) if w]
    return "_".join(words)


def identifier(text: str, limit: int | None = None) -> str:
    """A table or column name: snake-cased, ``_`` before a leading digit ("" when nothing is left),
    cut to ``limit`` characters when the store has one."""
    name = snake_case(text)
    if name[:1].isdigit():
        name = "_" + name
    return name[:limit] if limit else name


def schema_name(source: str, limit: int | None = None) -> str:
    """A source's schema (or partition) name: its alphanumeric runs snake-cased and joined by ``_``;
    ``_`` before a leading digit; ``stringempty`` when nothing is left."""
    name = "_".join(snake_case(part) for part in NOT_WORD.split(source) if part)
    if not name:
        return "stringempty"
    name = "_" + name if name[0].isdigit() else name
    return name[:limit] if limit else name


def event_table(event_name: Any, limit: int | None = None) -> str | None:
    """A track's own table; None when the name leaves nothing. A name like a system table gets ``_``."""
    if not isinstance(event_name, str):
        return None
    name = identifier(event_name, limit)
    if not name:
        return None
    return "_" + name if name in SYSTEM_TABLES else name
