"""One event: validated as Segment validates it, then enriched with the server's fields.

Events stay open dicts (clients send fields we do not know and destinations may want them); only
the fields Segment defines are checked. What is added: `receivedAt`, `originalTimestamp` (what the
client sent as `timestamp`), a clock-corrected `timestamp`, a `messageId` when absent and
`context.ip`; the batch's `context`/`integrations` are merged in and `writeKey` is removed.
Then the source's filters (tracking plan, PII rules; collector/filters) change the event, or
block it, before it is encoded: the size limit applies to what is stored.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import msgspec

from collector.ingest.errors import EventError

if TYPE_CHECKING:
    from collector.filters.source import SourceFilters

CALL_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})
MAX_MESSAGE_ID = 100
_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")
# The size limit applies to the event as the client sent it; what we add (receivedAt, timestamps,
# messageId, ip) is at most this many bytes, so it is allowed on top rather than re-encoding twice.
_ENRICHMENT_ALLOWANCE = 512

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


@dataclass(slots=True)
class RequestFacts:
    """What the server knows about the request the events came in."""

    received_iso: str
    received_ms: int
    ip: str | None
    batch_context: dict | None = None
    batch_integrations: dict | None = None
    batch_sent_at: str | None = None
    batch_sent_at_us: int | None = None  # batch_sent_at in microseconds since 1970
    # The batch's context / integrations encoded once, when they hold nested objects (see _inherited).
    _inherited_json: dict[str, bytes | None] | None = None


_clock: tuple[int, str] = (0, "")


def request_facts(ip: str | None) -> RequestFacts:
    """The server's clock at millisecond resolution; under load many requests share a millisecond,
    so its ISO text is made once per millisecond."""
    global _clock
    now_ms = time.time_ns() // 1_000_000
    if _clock[0] != now_ms:
        _clock = (now_ms, iso_us(now_ms * 1000))
    return RequestFacts(_clock[1], now_ms, ip)


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds, as Segment writes it: 2024-05-01T12:00:00.123Z."""
    return iso_us(epoch_us(moment))


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
# "YYYY-MM-DDTHH:MM:SS" by Unix second: the events of a batch mostly share a few seconds.
_second_texts: dict[int, str] = {}


def epoch_us(moment: datetime) -> int:
    """Microseconds since 1970 (UTC) of an aware datetime: exact, unlike timestamp()."""
    return (moment - _EPOCH) // _MICROSECOND


def iso_us(us: int) -> str:
    """iso() of a time given in microseconds since 1970; OverflowError outside years 1-9999.
    Formatting each event's time with isoformat(timespec=...) cost 2.5 us an event."""
    second, micro = divmod(us, 1_000_000)
    text = _second_texts.get(second)
    if text is None:
        if len(_second_texts) >= 4096:
            _second_texts.clear()
        text = _second_texts[second] = (_EPOCH + timedelta(seconds=second)).isoformat()[:19]
    return f"{text}.{micro // 1000:03d}Z"


def _is_canonical(text: str) -> bool:
    """Whether ``text`` (a valid ISO-8601 date) is already written as iso() would write it."""
    return len(text) == 24 and text[23] == "Z" and text[19] == "." and text[10] == "T"


def parse_time(value: object, field: str) -> datetime:
    if not isinstance(value, str):
        raise EventError("invalid_timestamp", f"{field} must be an ISO-8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise EventError("invalid_timestamp", f"{field} is not an ISO-8601 date: {value[:64]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _identifier(event: dict, field: str) -> str | None:
    value = event.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = event[field] = str(value)  # Segment's SDKs and API take numeric ids as strings
        return value
    raise EventError("invalid_field", f"{field} must be a string")


def _required(event: dict, field: str, call_type: str) -> None:
    if _identifier(event, field) is None:
        raise EventError(f"missing_{field}", f"{call_type} needs {field}")


def validate(event: dict, call_type: str) -> None:
    """Segment's per-call rules."""
    # Both are read (not `a is None and b is None`), so that a numeric anonymousId beside a userId
    # becomes a string too.
    user_id, anonymous_id = _identifier(event, "userId"), _identifier(event, "anonymousId")
    if user_id is None and anonymous_id is None:
        raise EventError("missing_identity", "userId or anonymousId is required")
    if call_type == "track":
        name = event.get("event")
        if not isinstance(name, str) or not name.strip():
            raise EventError("missing_event", "track needs event, a non-empty string")
    elif call_type == "group":
        _required(event, "groupId", call_type)
    elif call_type == "alias":
        _required(event, "previousId", call_type)
        _required(event, "userId", call_type)
    elif call_type in ("page", "screen"):
        for field in ("name", "category"):
            value = event.get(field)
            if value is not None and not isinstance(value, str):
                raise EventError("invalid_field", f"{field} must be a string")
    for field in _OBJECT_FIELDS:
        if field in event:
            value = event[field]
            if value is None:
                del event[field]
            elif not isinstance(value, dict):
                raise EventError("invalid_field", f"{field} must be an object")


def normalize(
    item: object, call_type: str | None, facts: RequestFacts, max_bytes: int, filters: SourceFilters | None = None
) -> tuple[str, bytes]:
    """Validate, enrich and filter one event; returns (messageId, stored JSON). Raises EventError,
    or collector.filters.source.EventBlocked when the source's tracking plan blocks it."""
    if not isinstance(item, dict):
        raise EventError("invalid_event", "an event must be a JSON object")
    event = item
    if call_type is None:
        call_type = event.get("type")
        if not isinstance(call_type, str) or call_type not in CALL_TYPES:  # a list or object is unhashable
            raise EventError(
                "invalid_type", f"type must be one of {', '.join(sorted(CALL_TYPES))}, got {str(call_type)[:32]!r}"
            )
    else:
        event["type"] = call_type
    event.pop("writeKey", None)
    validate(event, call_type)

    if facts.batch_context is not None:
        event["context"] = {**_inherited(facts, "context", facts.batch_context), **event.get("context", {})}
    if facts.batch_integrations is not None:
        event["integrations"] = {
            **_inherited(facts, "integrations", facts.batch_integrations), **event.get("integrations", {})
        }

    message_id = event.get("messageId")
    if message_id is None or message_id == "":
        message_id = event["messageId"] = f"api-{os.urandom(16).hex()}"
    elif isinstance(message_id, (int, float)) and not isinstance(message_id, bool):
        message_id = event["messageId"] = str(message_id)
    elif not isinstance(message_id, str):
        raise EventError("invalid_field", "messageId must be a string")
    if len(message_id) > MAX_MESSAGE_ID:
        raise EventError("invalid_field", f"messageId is longer than {MAX_MESSAGE_ID} characters")

    _fix_clock(event, facts)

    if facts.ip is not None:
        context = event.get("context")
        if context is None:
            event["context"] = {"ip": facts.ip}
        elif "ip" not in context:
            context["ip"] = facts.ip

    if filters is not None:
        filters.apply(event, call_type)

    try:
        body = _encoder.encode(event)
    except UnicodeEncodeError:
        raise EventError("invalid_utf8", "the event holds text that is not valid Unicode") from None
    if len(body) > max_bytes + _ENRICHMENT_ALLOWANCE:
        raise EventError("event_too_large", f"the event is larger than {max_bytes} bytes")
    return message_id, body


def _inherited(facts: RequestFacts, key: str, value: dict) -> dict:
    """The batch's ``context`` or ``integrations`` for one of its events: a copy of its own, nested
    objects included, so that a change to one event (a PII rule hashing context.traits.email in
    place) never reaches the others. Nested objects are copied by decoding the batch's value,
    encoded once per request; a value without nested objects needs only the merge's shallow copy."""
    cache = facts._inherited_json
    if cache is None:
        cache = facts._inherited_json = {}
    if key not in cache:
        nested = any(isinstance(v, (dict, list)) for v in value.values())
        try:
            cache[key] = _encoder.encode(value) if nested else None
        except UnicodeEncodeError:
            raise EventError("invalid_utf8", f"the batch's {key} holds text that is not valid Unicode") from None
    encoded = cache[key]
    return value if encoded is None else _decoder.decode(encoded)


def _fix_clock(event: dict, facts: RequestFacts) -> None:
    """timestamp = receivedAt - (sentAt - originalTimestamp): the client's clock may be wrong, but
    the time between its event and its send is right."""
    sent_at = event.get("sentAt")
    if sent_at is None and facts.batch_sent_at is not None:
        sent_at = event["sentAt"] = facts.batch_sent_at
        sent_us = facts.batch_sent_at_us
    else:
        sent_us = epoch_us(parse_time(sent_at, "sentAt")) if sent_at is not None else None
    timestamp = event.get("timestamp")
    if timestamp is None:
        event["timestamp"] = facts.received_iso
    else:
        original = parse_time(timestamp, "timestamp")
        event["originalTimestamp"] = timestamp
        try:
            if sent_us is not None:
                event["timestamp"] = iso_us(facts.received_ms * 1000 - sent_us + epoch_us(original))
            elif not _is_canonical(timestamp):  # most SDKs already send it as iso() writes it
                event["timestamp"] = iso(original)
        except OverflowError:  # e.g. year 1 with a +01:00 offset, or sentAt 9999 vs timestamp 0001
            raise EventError("invalid_timestamp", "timestamp (corrected by sentAt) is out of range") from None
    event["receivedAt"] = facts.received_iso
