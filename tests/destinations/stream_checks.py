"""What the stream destinations' tests expect of a message, written out from the events (not from
the destinations' code)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import msgspec

from collector.destinations.base import Envelope


def unique(prefix: str = "t") -> str:
    """A name no other test (nor an earlier run) uses on a shared server."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def simple_name(template: str, envelope: Envelope) -> str:
    """``template`` filled in for a template of ``{type}`` and ``{source}`` only, whose values are
    already safe for every broker (track, identify, page; web)."""
    assert set(template.replace("{type}", "").replace("{source}", "")).isdisjoint("{}"), template
    return template.replace("{type}", envelope.routing.type).replace("{source}", envelope.source)


def user_of(raw: bytes) -> str:
    """The user a message is keyed by: the anonymousId when there is one, else the userId."""
    event = msgspec.json.decode(raw)
    return event.get("anonymousId") or event.get("userId") or ""


def message_id(raw: bytes) -> str:
    return msgspec.json.decode(raw)["messageId"]


def order_report(sent: list[dict[str, Any]], received: list[bytes]) -> tuple[list[str], int, list[str]]:
    """Checks what a consumer got against what was sent, per user.

    ``sent``: the events as posted, in posting order. Returns (messageIds never received, the number
    of copies beyond the first, and for each user whose events' first copies arrived out of the
    order they were posted in, a line saying so)."""
    got_ids = [message_id(raw) for raw in received]
    seen: set[str] = set()
    first_copies: list[str] = []
    for mid in got_ids:
        if mid not in seen:
            seen.add(mid)
            first_copies.append(mid)
    missing = [e["messageId"] for e in sent if e["messageId"] not in seen]
    users = {e["messageId"]: e.get("anonymousId") or e.get("userId") for e in sent}
    posted: dict[str, list[str]] = defaultdict(list)
    for e in sent:
        posted[users[e["messageId"]]].append(e["messageId"])
    arrived: dict[str, list[str]] = defaultdict(list)
    for mid in first_copies:
        if mid in users:
            arrived[users[mid]].append(mid)
    disorder = [f"user {user}: posted {posted[user]}, first copies arrived {arrived[user]}"
                for user in posted if arrived[user] != [m for m in posted[user] if m in arrived[user]]]
    return missing, len(got_ids) - len(first_copies), disorder


def config_errors(entry: str) -> list[str]:
    """The config loader's errors for one destination ``out`` whose settings are ``entry`` (YAML,
    one setting a line); its first setting is on line 5 of ``collector.yaml``."""
    from collector.config.loader import ConfigError, load_config_text

    lines = "".join(f"    {line}\n" for line in entry.strip().splitlines())
    try:
        load_config_text(f"sources:\n  web: {{write_key: wk_stream}}\ndestinations:\n  out:\n{lines}", "collector.yaml")
    except ConfigError as error:
        return error.errors
    return []
