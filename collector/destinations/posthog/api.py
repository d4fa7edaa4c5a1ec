"""PostHog's capture API: the events of an action as ``POST /batch/`` requests, and its answers.

The body is ``{"api_key", "historical_migration", "batch": [event ...]}``; each event is
``{"event", "distinct_id", "properties", "timestamp", "uuid"}`` (docs/vendors/analytics-ads.md §4).

Limits, checked before sending so that one event never fails a request:
- an event over 1 MB is refused by PostHog; we refuse one over 900 KiB measured as PostHog's own
  SDK measures it (``len(json.dumps(event))``), and dead-letter it alone;
- a request body is at most 20 MB: the events are packed into as many requests as that takes.

PostHog answers for the whole request, never per event. A 400 (a malformed event) or a 413 (a
proxy with a smaller body limit) for several events is bisected here, in this attempt, until the
events it refuses stand alone and are rejected with PostHog's reason while the others go through;
401 waits for new credentials, 429 and 503 are retried with their Retry-After (ctx.classify).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import msgspec

from collector.destinations.actions.context import ActionContext, DestinationPaused
from collector.destinations.actions.packing import Encoded, pack
from collector.destinations.actions.subscriptions import ActionItem
from collector.destinations.base import DELIVERED, Outcome, reject, retry

__all__ = [
    "BATCH_PATH", "EVENT_MAX_BYTES", "EventShape", "MESSAGE_ID_NAMESPACE", "REQUEST_MAX_BYTES",
    "event_uuid", "pack", "posthog_event", "sender", "size_problem",
]

BATCH_PATH = "/batch/"
# PostHog discards an event over 1 MB; its Python SDK refuses one over 900 KiB of json.dumps.
EVENT_MAX_BYTES = 900 * 1024
# The /batch/ body limit is 20 MB (capture's router); 20,000,000 is under it however MB is read.
REQUEST_MAX_BYTES = 20_000_000
# json.dumps writes at most 3 bytes for each byte of compact UTF-8 JSON ("é": 2 bytes -> \u00e9,
# "," -> ", "), so below a third of the limit the exact measure is not needed.
_EXACT_MEASURE_FROM = EVENT_MAX_BYTES // 3

# A messageId that is not a UUID (analytics.js "ajs-next-...", analytics-node "node-next-...")
# becomes uuid5(MESSAGE_ID_NAMESPACE, messageId): stable, so a resent event keeps its uuid.
MESSAGE_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "segment:messageId")
_NAMESPACE_BYTES = MESSAGE_ID_NAMESPACE.bytes
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

_encode = msgspec.json.Encoder().encode
_JSON = {"Content-Type": "application/json"}


def event_uuid(message_id: str) -> str:
    """PostHog's ``uuid`` for a messageId: itself (lower case) when it is a UUID, else its uuid5."""
    if _UUID.fullmatch(message_id) is not None:
        return message_id.lower()
    # uuid.uuid5(MESSAGE_ID_NAMESPACE, message_id), without building UUID objects (3x faster).
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + message_id.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass(frozen=True, slots=True)
class EventShape:
    """How an action's payload becomes a PostHog event: its fixed name (None: the ``event``
    field) and (field, PostHog property) pairs for the fields that go into ``properties``."""

    name: str | None
    properties: tuple[tuple[str, str], ...]


def posthog_event(shape: EventShape, payload: dict) -> tuple[dict | None, str]:
    """The PostHog event for a validated payload, or (None, why PostHog would refuse it).
    The payload is the action's own fresh dict: its ``properties`` object is reused."""
    name = shape.name or payload.get("event")
    distinct_id = payload.get("distinct_id")
    if not name:
        return None, "the event name is empty (PostHog refuses an event without one)"
    if not distinct_id:
        return None, "distinct_id is empty (PostHog refuses an event without one)"
    properties = payload.get("properties")
    properties = {} if properties is None else properties
    for field, key in shape.properties:
        value = payload.get(field)
        if value is not None:
            properties[key] = value
    event = {"event": name, "distinct_id": distinct_id, "properties": properties}
    timestamp = payload.get("timestamp")
    if timestamp is not None:
        event["timestamp"] = timestamp
    message_id = payload.get("uuid")
    if message_id:
        event["uuid"] = event_uuid(message_id)
    return event, ""


def size_problem(event: dict, encoded: bytes) -> str:
    """Why the event is too large for PostHog, or ''."""
    size = len(encoded)
    if size >= _EXACT_MEASURE_FROM:
        size = max(size, len(json.dumps(event)))  # ASCII only (ensure_ascii): characters are bytes
    if size > EVENT_MAX_BYTES:
        return (f"the event is {size} bytes as PostHog's SDK measures it, over the {EVENT_MAX_BYTES} it allows "
                "(PostHog discards an event over 1 MB)")
    return ""


def request_prefix(api_key: str, historical_migration: bool) -> bytes:
    return (b'{"api_key":' + _encode(api_key) + b',"historical_migration":'
            + (b"true" if historical_migration else b"false") + b',"batch":[')


_SPLIT_STATUSES = (400, 413)  # the request's content: some of its events may be fine


async def _post(ctx: ActionContext, prefix: bytes, chunk: Encoded, answers: list[Outcome]) -> None:
    body = prefix + b",".join(data for _, data in chunk) + b"]}"
    try:
        response = await ctx.request("POST", BATCH_PATH, data=body, headers=_JSON)
    except DestinationPaused as paused:  # an earlier request of this perform got a 429
        outcome = retry(str(paused), paused.seconds)
    except asyncio.TimeoutError:  # (before OSError, its base class) those answered stay answered
        outcome = retry(f"no answer within {ctx.settings.timeout:g}s")
    except (aiohttp.ClientError, OSError) as error:
        outcome = retry(f"{type(error).__name__}: {error}")
    else:
        if response.status in _SPLIT_STATUSES and len(chunk) > 1:
            half = len(chunk) // 2
            await _post(ctx, prefix, chunk[:half], answers)
            await _post(ctx, prefix, chunk[half:], answers)
            return
        outcome = ctx.classify(response)
        if outcome.kind == "reject":  # one event alone: it is the one refused (no split flag)
            outcome = reject(outcome.reason)
    for index, _ in chunk:
        answers[index] = outcome


def sender(shape: EventShape) -> Callable[[ActionContext, list[ActionItem]], Awaitable[list[Outcome]]]:
    """The perform of an action whose payloads become events of this shape."""

    async def send_batch(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
        answers: list[Outcome] = [DELIVERED] * len(items)
        ready: Encoded = []
        for index, item in enumerate(items):
            event, problem = posthog_event(shape, item.payload)
            if event is not None:
                encoded = _encode(event)
                problem = size_problem(event, encoded)
                if not problem:
                    ready.append((index, encoded))
                    continue
            answers[index] = reject(problem)
        settings = ctx.settings
        prefix = request_prefix(settings.api_key, settings.historical_migration)
        for chunk in pack(ready, len(prefix) + 2, REQUEST_MAX_BYTES):
            await _post(ctx, prefix, chunk, answers)
        return answers

    return send_batch
