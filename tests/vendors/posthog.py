"""PostHog capture (docs/vendors/analytics-ads.md §4; PostHog rust/capture ``api.rs``, ``router.rs``).

``POST /batch/`` takes ``{api_key, historical_migration?, batch: [event...]}`` (also a bare list of
events, or one event); ``POST /i/v0/e/`` takes one event with its own ``api_key``. Each event needs
a non-empty ``event`` and a non-empty ``distinct_id`` (top level, else ``properties.distinct_id``;
a number counts as its string).

Whole-request answers (no per-event status), plain-text bodies as capture writes them:
- 200 ``{"status": 1}``;
- 400 decode/parse error, empty batch, missing event name or distinct_id, an event over 1 MB;
- 401 no ``api_key``, ``api_key`` values that differ within the request, or a key that is not the
  project's (capture itself only checks a key's form; the double knows the project, so a wrong key
  is refused here as the fact sheet says);
- 413 a body over 20 MB (``/batch``) or 2 MB (``/i/v0/e``), axum's body limit;
- 429 / 503 only when scripted with ``fail_next``.

After acceptance, per the ingestion docs: an invalid ``uuid`` drops that event (``dropped``); an
invalid ``timestamp`` or one more than 23 h ahead is only a warning (``warnings``); an event whose
``uuid`` was already ingested is not ingested again (``duplicates``).
"""

from __future__ import annotations

import json
import time
import uuid as uuid_module
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from tests.vendors.base import Answer, Recorded, VendorDouble

BATCH_MAX_BYTES = 20 * 1024 * 1024
SINGLE_MAX_BYTES = 2 * 1024 * 1024
EVENT_MAX_BYTES = 1024 * 1024
FUTURE_WARNING_SECONDS = 23 * 3600

BATCH_PATHS = ("/batch/", "/batch")
SINGLE_PATHS = ("/i/v0/e/", "/i/v0/e")


@dataclass
class CapturedEvent:
    """One event as PostHog ingests it."""

    event: str
    distinct_id: str
    properties: dict[str, Any]
    timestamp: str | None
    uuid: str | None
    historical_migration: bool
    path: str
    raw: dict[str, Any]


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class PostHogDouble(VendorDouble):
    """``accepted``: the ``CapturedEvent``s ingested, in order, deduplicated by ``uuid``.
    ``persons``: distinct_id -> properties set by ``$identify``/``$set``/``$set_once``;
    ``groups``: (group type, key) -> ``$group_set``; ``aliases``: (distinct_id, alias) pairs."""

    vendor = "posthog"

    def __init__(self, api_key: str = "phc_test_project_key", *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.api_key = api_key
        self.clock = clock
        self.persons: dict[str, dict[str, Any]] = {}
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}
        self.aliases: list[tuple[str, str]] = []
        self.warnings: list[tuple[str, dict[str, Any]]] = []  # (reason, event as sent)
        self.dropped: list[tuple[str, dict[str, Any]]] = []
        self.duplicates: list[CapturedEvent] = []
        self._uuids: set[str] = set()

    def events(self, name: str | None = None) -> list[CapturedEvent]:
        return [e for e in list(self.accepted) if name is None or e.event == name]

    def reset(self) -> None:
        super().reset()
        self.persons.clear()
        self.groups.clear()
        self.aliases.clear()
        self.warnings.clear()
        self.dropped.clear()
        self.duplicates.clear()
        self._uuids.clear()

    def routes(self):
        return [("POST", path, self._capture) for path in BATCH_PATHS + SINGLE_PATHS]

    def failure_body(self, status: int, call: Recorded) -> Any:
        return {
            400: "request holds no event",
            401: "event submitted without an api_key",
            429: "rate limited",
            503: "transient error, please retry",
        }.get(status, "")

    def _capture(self, call: Recorded) -> Answer:
        try:
            events, historical = self._checked(call)
        except _Refused as refused:
            return Answer(refused.status, refused.message)
        for event in events:
            self._ingest(event, historical, call.path)
        return Answer(200, {"status": 1})

    def _checked(self, call: Recorded) -> tuple[list[dict[str, Any]], bool]:
        limit = SINGLE_MAX_BYTES if call.path in SINGLE_PATHS else BATCH_MAX_BYTES
        if len(call.body) > limit or len(call.decoded) > limit:
            raise _Refused(413, "Failed to buffer the request body: length limit exceeded")
        if call.decode_error:
            raise _Refused(400, f"failed to decode request: {call.decode_error}")
        if call.json is None:
            raise _Refused(400, f"failed to parse request: {call.json_error}")
        body = call.json
        batch_key: str | None = None
        historical = False
        if isinstance(body, list):
            events = body
        elif isinstance(body, dict) and "batch" in body:
            events = body["batch"]
            batch_key = body.get("api_key")
            historical = body.get("historical_migration") is True
        elif isinstance(body, dict):
            events = [body]
        else:
            raise _Refused(400, "failed to parse request: not an event, a list or a batch")
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise _Refused(400, "failed to parse request: batch must be a list of objects")
        if not events:
            raise _Refused(400, "request holds no event")
        self._check_token(events, batch_key)
        for event in events:
            _check_event(event)
        return events, historical

    def _check_token(self, events: list[dict[str, Any]], batch_key: Any) -> None:
        tokens = {token for token in [batch_key, *map(_event_token, events)] if token is not None}
        if not tokens:
            raise _Refused(401, "event submitted without an api_key")
        if len(tokens) > 1:
            raise _Refused(401, "batch submitted with inconsistent api_key values")
        (token,) = tokens
        if not isinstance(token, str) or not token:
            raise _Refused(401, "API key is not valid: empty")
        if token.startswith("phx_"):
            raise _Refused(401, "API key is not valid: personal api key")
        if token != self.api_key:
            raise _Refused(401, "API key is not valid: not this project's key")

    def _ingest(self, event: dict[str, Any], historical: bool, path: str) -> None:
        event_uuid = event.get("uuid")
        if event_uuid is not None and not _is_uuid(event_uuid):
            self.dropped.append(("invalid_event_uuid", event))
            return
        timestamp = event.get("timestamp")
        if timestamp is not None:
            moment = _parse_iso(timestamp)
            if moment is None:
                self.warnings.append(("ignored_invalid_timestamp", event))
            elif moment - self.clock() > FUTURE_WARNING_SECONDS:
                self.warnings.append(("event_timestamp_in_future", event))
        properties = dict(event.get("properties") or {})
        for key in ("$set", "$set_once"):
            if isinstance(event.get(key), dict):
                properties.setdefault(key, event[key])
        captured = CapturedEvent(
            event=event["event"],
            distinct_id=_distinct_id(event),
            properties=properties,
            timestamp=timestamp,
            uuid=str(uuid_module.UUID(event_uuid)) if event_uuid is not None else None,
            historical_migration=historical,
            path=path,
            raw=event,
        )
        if captured.uuid is not None:
            if captured.uuid in self._uuids:
                self.duplicates.append(captured)
                return
            self._uuids.add(captured.uuid)
        self.accepted.append(captured)
        self._apply_person_and_group_updates(captured)

    def _apply_person_and_group_updates(self, captured: CapturedEvent) -> None:
        properties = captured.properties
        set_once, set_now = properties.get("$set_once"), properties.get("$set")
        if isinstance(set_once, dict) or isinstance(set_now, dict):
            person = self.persons.setdefault(captured.distinct_id, {})
            for key, value in (set_once if isinstance(set_once, dict) else {}).items():
                person.setdefault(key, value)
            person.update(set_now if isinstance(set_now, dict) else {})
        if captured.event == "$groupidentify":
            key = (str(properties.get("$group_type")), str(properties.get("$group_key")))
            self.groups.setdefault(key, {}).update(properties.get("$group_set") or {})
        elif captured.event == "$create_alias" and properties.get("alias") is not None:
            self.aliases.append((captured.distinct_id, str(properties["alias"])))


def _event_token(event: dict[str, Any]) -> Any:
    for key in ("api_key", "token", "$token"):
        if event.get(key) is not None:
            return event[key]
    properties = event.get("properties")
    if isinstance(properties, dict) and properties.get("token") is not None:
        return properties["token"]
    return None


def _check_event(event: dict[str, Any]) -> None:
    name = event.get("event")
    if not isinstance(name, str) or not name:
        raise _Refused(400, "event submitted with an empty event name")
    value = event.get("distinct_id")
    properties = event.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise _Refused(400, "failed to parse request: properties must be an object")
    if value is None and properties is not None:
        value = properties.get("distinct_id")
    if value is None:
        raise _Refused(400, "event submitted without a distinct_id")
    if _distinct_id(event) == "":
        raise _Refused(400, "event submitted with an empty distinct_id")
    if len(json.dumps(event).encode()) > EVENT_MAX_BYTES:
        raise _Refused(400, "maximum event size exceeded")


def _distinct_id(event: dict[str, Any]) -> str:
    value = event.get("distinct_id")
    if value is None:
        value = (event.get("properties") or {}).get("distinct_id")
    return value if isinstance(value, str) else json.dumps(value)


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid_module.UUID(value)
    except ValueError:
        return False
    return True


def _parse_iso(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp()
