"""A double of Amplitude's ingestion API: ``/2/httpapi``, ``/batch``, ``/identify``,
``/groupidentify`` and ``/usermap``.

``/2/httpapi`` and ``/batch`` take JSON ``{api_key, events, options}``. Amplitude rejects a whole
request when any event is bad: the 400 lists the bad events by index
(``events_with_missing_fields``, ``events_with_invalid_fields``,
``events_with_invalid_id_lengths``) and nothing of the request is ingested, so the sender must
drop those and resend the rest. A wrong ``api_key`` is a 400 ``Invalid API key: <key>``; too many
events or bytes a 413; a throttled user or device (see ``throttle``) a 429 naming them, and a
silenced device (see ``silence``) a 400 naming it, again with nothing ingested. Events are
deduplicated on ``insert_id`` for 7 days.

``/identify`` and ``/groupidentify`` take form-encoded ``api_key`` + ``identification`` (one JSON
object or an array) and answer ``success``; ``/usermap`` takes ``api_key`` + ``mapping``.

Where Amplitude's documentation and its observed answers differ the double takes the stricter:
an ID shorter than ``min_id_length`` is refused (a 400 naming it) on /batch too, as observed,
rather than dropped as the Batch API page says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.vendors.base import Answer, Recorded, VendorDouble

HOSTS = {"US": "api2.amplitude.com", "EU": "api.eu.amplitude.com"}
HTTPAPI_MAX_EVENTS = 2000
HTTPAPI_MAX_BYTES = 1_000_000  # "keep request sizes under 1 MB"; over it: 413
BATCH_MAX_BYTES = 20_000_000
MIN_ID_LENGTH = 5
DEDUP_SECONDS = 7 * 86400
ZERO_DEVICE_ID = "00000000-0000-0000-0000-000000000000"
INTEGER_FIELDS = ("time", "session_id", "event_id", "quantity")
NUMBER_FIELDS = ("price", "revenue", "location_lat", "location_lng")
OBJECT_FIELDS = ("event_properties", "user_properties", "groups", "group_properties")
PROPERTY_OPERATIONS = frozenset(
    {"$set", "$setOnce", "$add", "$append", "$prepend", "$unset", "$preInsert", "$postInsert", "$remove", "$clearAll"}
)


@dataclass
class _EventProblems:
    missing: dict[str, list[int]] = field(default_factory=dict)
    invalid: dict[str, list[int]] = field(default_factory=dict)
    id_lengths: dict[str, list[int]] = field(default_factory=dict)

    def add(self, kind: dict[str, list[int]], name: str, index: int) -> None:
        indices = kind.setdefault(name, [])
        if not indices or indices[-1] != index:
            indices.append(index)

    def answer(self) -> dict[str, Any] | None:
        if not (self.missing or self.invalid or self.id_lengths):
            return None
        if self.missing:
            error = "Request missing required field"
        elif self.id_lengths:
            error = "Invalid id length for user_id or device_id"
        else:
            error = "Invalid field values on some events"
        body: dict[str, Any] = {"code": 400, "error": error}
        for key, value in (
            ("events_with_missing_fields", self.missing),
            ("events_with_invalid_fields", self.invalid),
            ("events_with_invalid_id_lengths", self.id_lengths),
        ):
            if value:
                body[key] = value
        return body


class AmplitudeDouble(VendorDouble):
    """One Amplitude project (``host`` is the regional host it stands for).

    ``accepted``: every ingested event dict (from /2/httpapi and /batch), once per ``insert_id``
    within 7 days (events without one are all kept). ``duplicates``: events ignored as repeats.
    ``identifications`` / ``group_identifications`` / ``user_mappings``: the objects applied by
    /identify, /groupidentify and /usermap."""

    vendor = "amplitude"

    def __init__(
        self,
        *,
        api_key: str = "amp-key",
        region: str = "US",
        httpapi_max_bytes: int = HTTPAPI_MAX_BYTES,
        batch_max_bytes: int = BATCH_MAX_BYTES,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.region = region
        self.host = HOSTS[region]
        self.httpapi_max_bytes = httpapi_max_bytes
        self.batch_max_bytes = batch_max_bytes
        self.now = now
        self.accepted: list[dict[str, Any]] = []
        self.duplicates: list[dict[str, Any]] = []
        self.identifications: list[dict[str, Any]] = []
        self.group_identifications: list[dict[str, Any]] = []
        self.user_mappings: list[dict[str, Any]] = []
        self._insert_ids: dict[str, float] = {}
        self._throttled_users: dict[str, bool] = {}  # id -> over the daily quota (else per-second)
        self._throttled_devices: dict[str, bool] = {}
        self._silenced_devices: set[str] = set()

    def routes(self):
        return [
            ("POST", "/2/httpapi", self._httpapi),
            ("POST", "/batch", self._batch),
            ("POST", "/identify", self._identify),
            ("POST", "/groupidentify", self._groupidentify),
            ("POST", "/usermap", self._usermap),
        ]

    # -- scripting throttles

    def throttle(
        self, *, users: tuple[str, ...] = (), devices: tuple[str, ...] = (), daily_quota: bool = False
    ) -> None:
        """Answer 429 to every request carrying one of these IDs until ``clear_throttles``:
        per-second throttling, or with ``daily_quota`` the daily limit
        (``exceeded_daily_quota_users`` / ``_devices``)."""
        self._throttled_users.update(dict.fromkeys(users, daily_quota))
        self._throttled_devices.update(dict.fromkeys(devices, daily_quota))

    def silence(self, *devices: str) -> None:
        """Answer 400 "Events silenced for device_id" to requests carrying these device IDs."""
        self._silenced_devices.update(devices)

    def clear_throttles(self) -> None:
        self._throttled_users.clear()
        self._throttled_devices.clear()
        self._silenced_devices.clear()

    def reset(self) -> None:
        super().reset()
        for store in (self.duplicates, self.identifications, self.group_identifications, self.user_mappings):
            store.clear()
        self._insert_ids.clear()
        self.clear_throttles()

    def failure_body(self, status: int, call: Recorded) -> Any:
        if status == 413:
            return {"code": 413, "error": "Payload too large"}
        if status == 429:
            events = _events_of(call)
            users = {e["user_id"]: 31 for e in events if isinstance(e, dict) and e.get("user_id")}
            devices = {e["device_id"]: 31 for e in events if isinstance(e, dict) and e.get("device_id")}
            return {
                "code": 429,
                "error": "Too many requests for some devices and users",
                "eps_threshold": 30,
                "throttled_users": users,
                "throttled_devices": devices,
                "throttled_events": list(range(len(events))),
            }
        return {"code": status, "error": f"scripted {status}"}

    # -- /2/httpapi and /batch

    def _httpapi(self, call: Recorded) -> Answer:
        return self._upload(call, self.httpapi_max_bytes, HTTPAPI_MAX_EVENTS, eps_threshold=30)

    def _batch(self, call: Recorded) -> Answer:
        return self._upload(call, self.batch_max_bytes, None, eps_threshold=1000)

    def _upload(self, call: Recorded, max_bytes: int, max_events: int | None, eps_threshold: int) -> Answer:
        if call.decode_error:
            return _invalid(call.decode_error)
        if len(call.decoded) > max_bytes:
            return Answer(413, {"code": 413, "error": "Payload too large"})
        if call.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            return _invalid("Content-Type must be application/json")
        if not isinstance(call.json, dict):
            return _invalid("Invalid JSON request body")
        refusal = self._api_key_refusal(call.json.get("api_key"))
        if refusal is not None:
            return refusal
        events = call.json.get("events")
        if not isinstance(events, list) or not events:
            return Answer(400, {"code": 400, "error": "Request missing required field", "missing_field": "events"})
        if max_events is not None and len(events) > max_events:
            return Answer(413, {"code": 413, "error": "Payload too large"})
        options = call.json.get("options") or {}
        min_id_length = options.get("min_id_length", MIN_ID_LENGTH) if isinstance(options, dict) else None
        if not isinstance(min_id_length, int) or isinstance(min_id_length, bool) or min_id_length < 1:
            return _invalid("options.min_id_length must be a positive integer")
        problems = _EventProblems()
        for index, event in enumerate(events):
            _check_event(event, index, min_id_length, problems)
        if (answer := problems.answer()) is not None:
            return Answer(400, answer)
        refusal = self._silence_or_throttle(events, eps_threshold)
        if refusal is not None:
            return refusal
        for event in events:
            self._ingest(event)
        return Answer(
            200,
            {
                "code": 200,
                "events_ingested": len(events),
                "payload_size_bytes": len(call.decoded),
                "server_upload_time": int(self.now() * 1000),
            },
        )

    def _api_key_refusal(self, api_key: Any) -> Answer | None:
        if not api_key:
            return Answer(400, {"code": 400, "error": "Request missing required field", "missing_field": "api_key"})
        if api_key != self.api_key:
            return _invalid(f"Invalid API key: {api_key}")
        return None

    def _silence_or_throttle(self, records: list[dict[str, Any]], eps_threshold: int) -> Answer | None:
        silenced = [i for i, r in enumerate(records) if r.get("device_id") in self._silenced_devices]
        if silenced:
            return Answer(
                400,
                {
                    "code": 400,
                    "error": "Events silenced for device_id",
                    "eps_threshold": eps_threshold,
                    "exceeded_daily_quota_devices": {},
                    "silenced_devices": sorted({records[i]["device_id"] for i in silenced}),
                    "silenced_events": silenced,
                    "throttled_devices": {},
                    "throttled_events": [],
                },
            )
        body: dict[str, Any] = {
            "code": 429,
            "error": "Too many requests for some devices and users",
            "eps_threshold": eps_threshold,
            "throttled_devices": {},
            "throttled_users": {},
            "exceeded_daily_quota_users": {},
            "exceeded_daily_quota_devices": {},
            "throttled_events": [],
        }
        for index, record in enumerate(records):
            hit = False
            for key, throttled, per_second, daily in (
                ("user_id", self._throttled_users, "throttled_users", "exceeded_daily_quota_users"),
                ("device_id", self._throttled_devices, "throttled_devices", "exceeded_daily_quota_devices"),
            ):
                value = record.get(key)
                if value in throttled:
                    hit = True
                    if throttled[value]:
                        body[daily][value] = 500_001
                    else:
                        body[per_second][value] = eps_threshold + 1
            if hit:
                body["throttled_events"].append(index)
        return Answer(429, body) if body["throttled_events"] else None

    def _ingest(self, event: dict[str, Any]) -> None:
        insert_id = event.get("insert_id")
        now = self.now()
        if insert_id is not None:
            seen = self._insert_ids.get(insert_id)
            if seen is not None and now - seen < DEDUP_SECONDS:
                self.duplicates.append(event)
                return
            self._insert_ids[insert_id] = now
        self.accepted.append(event)

    # -- /identify, /groupidentify, /usermap

    def _identify(self, call: Recorded) -> Answer:
        return self._form_upload(call, "identification", _identification_problem, self.identifications, throttled=True)

    def _groupidentify(self, call: Recorded) -> Answer:
        return self._form_upload(call, "identification", _group_identification_problem, self.group_identifications)

    def _usermap(self, call: Recorded) -> Answer:
        return self._form_upload(call, "mapping", _mapping_problem, self.user_mappings)

    def _form_upload(
        self,
        call: Recorded,
        field_name: str,
        problem_of: Callable[[Any], str | None],
        store: list[dict[str, Any]],
        throttled: bool = False,
    ) -> Answer:
        if call.form is None:
            return _invalid("the body must be form-encoded (api_key and " + field_name + ")")
        refusal = self._api_key_refusal(call.form.get("api_key"))
        if refusal is not None:
            return refusal
        raw = call.form.get(field_name)
        if not raw:
            return Answer(400, {"code": 400, "error": "Request missing required field", "missing_field": field_name})
        try:
            data = json.loads(raw)
        except ValueError:
            return _invalid(f"{field_name} is not valid JSON")
        records = data if isinstance(data, list) else [data]
        for record in records:
            problem = problem_of(record)
            if problem is not None:
                return _invalid(problem)
        if throttled and (refusal := self._silence_or_throttle(records, 30)) is not None:
            return refusal
        store.extend(records)
        return Answer(200, "success")


# -- checks


def _check_event(event: Any, index: int, min_id_length: int, problems: _EventProblems) -> None:
    if not isinstance(event, dict):
        problems.add(problems.invalid, "event", index)
        return
    event_type = event.get("event_type")
    if event_type is None or event_type == "":
        problems.add(problems.missing, "event_type", index)
    elif not isinstance(event_type, str):
        problems.add(problems.invalid, "event_type", index)
    _check_ids(event, index, min_id_length, problems)
    for name in INTEGER_FIELDS:
        if name in event and event[name] is not None and not _is_integer(event[name]):
            problems.add(problems.invalid, name, index)
    for name in NUMBER_FIELDS:
        if name in event and event[name] is not None and not _is_number(event[name]):
            problems.add(problems.invalid, name, index)
    for name in OBJECT_FIELDS:
        if name in event and event[name] is not None and not isinstance(event[name], dict):
            problems.add(problems.invalid, name, index)
    if "insert_id" in event and not isinstance(event["insert_id"], str):
        problems.add(problems.invalid, "insert_id", index)


def _check_ids(record: dict[str, Any], index: int, min_id_length: int, problems: _EventProblems) -> None:
    present = 0
    for name in ("user_id", "device_id"):
        value = record.get(name)
        if value is None or value == "":
            continue
        present += 1
        if not isinstance(value, str):
            problems.add(problems.invalid, name, index)
        elif name == "device_id" and value == ZERO_DEVICE_ID:
            problems.add(problems.invalid, name, index)
        elif len(value) < min_id_length:
            problems.add(problems.id_lengths, name, index)
    if not present:  # "each event needs user_id or device_id": both are missing
        problems.add(problems.missing, "user_id", index)
        problems.add(problems.missing, "device_id", index)


def _identification_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return "an identification must be a JSON object"
    problems = _EventProblems()
    _check_ids(record, 0, MIN_ID_LENGTH, problems)
    if problems.answer() is not None:
        return "an identification needs a user_id or device_id of at least 5 characters"
    properties = record.get("user_properties")
    if properties is not None:
        if not isinstance(properties, dict):
            return "user_properties must be an object"
        operations = [key for key in properties if key.startswith("$")]
        if any(key not in PROPERTY_OPERATIONS for key in operations):
            return "unknown user property operation"
        if operations and len(operations) != len(properties):
            return "user_properties cannot mix operations and plain properties"
    groups = record.get("groups")
    if groups is not None and not isinstance(groups, dict):
        return "groups must be an object"
    return None


def _group_identification_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return "an identification must be a JSON object"
    for key in ("group_type", "group_value"):
        if not isinstance(record.get(key), str) or not record[key]:
            return f"{key} is required"
    if not isinstance(record.get("group_properties", {}), dict):
        return "group_properties must be an object"
    return None


def _mapping_problem(record: Any) -> str | None:
    if not isinstance(record, dict) or not isinstance(record.get("user_id"), str) or not record["user_id"]:
        return "a mapping needs user_id"
    if record.get("unmap") is True:
        return None
    if not isinstance(record.get("global_user_id"), str) or not record["global_user_id"]:
        return "a mapping needs global_user_id (or unmap: true)"
    return None


def _events_of(call: Recorded) -> list[Any]:
    if isinstance(call.json, dict) and isinstance(call.json.get("events"), list):
        return call.json["events"]
    return []


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _invalid(message: str) -> Answer:
    return Answer(400, {"code": 400, "error": message})
