"""A double of Mixpanel's ingestion API: ``/import``, ``/track``, ``/engage`` and ``/groups``.

- ``/import``: HTTP Basic auth with the project API secret (or the project token, or a service
  account plus ``?project_id=``), a JSON array or NDJSON body, gzip allowed. With ``strict=1`` a
  request whose events all pass answers 200 ``{code, num_records_imported, status}``; one with
  failures answers 400 with ``failed_records[{index, insert_id, field, message}]`` and still
  ingests the valid events (a partial success). Without ``strict=1`` invalid events are dropped
  silently (``dropped``). Over 2000 events or 10 MB uncompressed: 413, nothing ingested.
- ``/track``, ``/engage``, ``/groups``: form-encoded ``data=<json>`` (plain or base64) checked
  against the project token; the answer is 200 with ``1`` or ``0`` (``verbose=1``: JSON
  ``{status, error}``), and a request with any bad record ingests nothing.

Events are deduplicated as Mixpanel does, on ``event`` + ``distinct_id`` + ``time`` +
``$insert_id``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.vendors.base import Answer, Recorded, VendorDouble

HOSTS = {"US": "api.mixpanel.com", "EU": "api-eu.mixpanel.com", "IN": "api-in.mixpanel.com"}
MAX_RECORDS = 2000
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # older docs: 2 MB (pass max_request_bytes)
MAX_RECORD_BYTES = 1024 * 1024
MAX_PROPERTIES = 255  # "fewer than 255" properties, nested keys and array elements
EARLIEST_TIME = 31_536_000  # 1971-01-01T00:00:00Z, in seconds
MAX_FUTURE_SECONDS = 3600
TRACK_WINDOW_SECONDS = 5 * 86400
MS_THRESHOLD = 100_000_000_000  # a time above this is in milliseconds (1e11 s is year 5138)
PLACEHOLDER_IDS = frozenset({"anon", "anonymous", "nil", "none", "null", "n/a", "00000000-0000-0000-0000-000000000000"})
INSERT_ID = re.compile(r"[A-Za-z0-9-]{1,36}\Z")
PROFILE_OPERATIONS = ("$set", "$set_once", "$add", "$union", "$append", "$remove", "$unset", "$delete")
GROUP_OPERATIONS = ("$set", "$set_once", "$union", "$remove", "$unset", "$delete")
PROFILE_EXTRAS = frozenset({"$ip", "$time", "$ignore_time", "$ignore_alias", "$latitude", "$longitude"})
RATE_LIMITED = "Project exceeded rate limits. Please retry the request with exponential backoff."


@dataclass(frozen=True)
class FailedRecord:
    """A record the double refused with an answer naming it."""

    path: str
    index: int
    insert_id: str | None
    field: str
    message: str

    def answer(self) -> dict[str, Any]:
        return {"index": self.index, "insert_id": self.insert_id, "field": self.field, "message": self.message}


class _Refused(Exception):
    """A request-level refusal, raised only while reading a request (not per record)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer


class MixpanelDouble(VendorDouble):
    """One Mixpanel project in one region (``host`` is the regional host it stands for).

    ``accepted``: every ingested event dict (from /import and /track), once per dedup key.
    ``imported`` / ``tracked``: the same, split by endpoint. ``duplicates``: events ingested
    again under a key already seen. ``failed``: ``FailedRecord`` per refused record.
    ``dropped``: events discarded silently (/track older than 5 days, /import without strict).
    ``profile_updates`` / ``profiles``: applied /engage updates and the resulting profiles by
    distinct_id. ``group_updates`` / ``groups``: the same for /groups by (group_key, group_id).
    ``aliases`` / ``identifies``: the ``$create_alias`` / ``$identify`` events among ``accepted``."""

    vendor = "mixpanel"

    def __init__(
        self,
        *,
        api_secret: str = "mp-secret",
        project_token: str = "mp-token",
        region: str = "US",
        service_account: tuple[str, str] | None = None,
        project_id: str | None = None,
        accept_token_auth: bool = True,  # /import "also supports Project Token" as the username
        max_request_bytes: int = MAX_REQUEST_BYTES,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.api_secret = api_secret
        self.project_token = project_token
        self.region = region
        self.host = HOSTS[region]
        self.service_account = service_account
        self.project_id = project_id
        self.accept_token_auth = accept_token_auth
        self.max_request_bytes = max_request_bytes
        self.now = now
        self.accepted: list[dict[str, Any]] = []
        self.imported: list[dict[str, Any]] = []
        self.tracked: list[dict[str, Any]] = []
        self.duplicates: list[dict[str, Any]] = []
        self.failed: list[FailedRecord] = []
        self.dropped: list[dict[str, Any]] = []
        self.profile_updates: list[dict[str, Any]] = []
        self.profiles: dict[str, dict[str, Any]] = {}
        self.group_updates: list[dict[str, Any]] = []
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}
        self._seen: set[tuple[Any, ...]] = set()

    def routes(self):
        return [
            ("POST", "/import", self._import),
            ("POST", "/track", self._track),
            ("POST", "/engage", self._engage),
            ("POST", "/groups", self._groups),
        ]

    @property
    def aliases(self) -> list[dict[str, Any]]:
        return [event for event in self.accepted if event.get("event") == "$create_alias"]

    @property
    def identifies(self) -> list[dict[str, Any]]:
        return [event for event in self.accepted if event.get("event") == "$identify"]

    def reset(self) -> None:
        super().reset()
        for store in (self.imported, self.tracked, self.duplicates, self.failed, self.dropped,
                      self.profile_updates, self.group_updates):  # fmt: skip
            store.clear()
        self.profiles.clear()
        self.groups.clear()
        self._seen.clear()

    def failure_body(self, status: int, call: Recorded) -> Any:
        if status == 429:
            return {"code": 429, "error": RATE_LIMITED, "status": "Too Many Requests"}
        return _error(status, f"scripted {status}").body

    # -- /import

    def _import(self, call: Recorded) -> Answer:
        try:
            self._authenticate_import(call)
            events = self._import_records(call)
        except _Refused as refused:
            return refused.answer
        strict = call.query.get("strict") == "1"
        failed: list[FailedRecord] = []
        imported = 0
        now = self.now()
        for index, event in enumerate(events):
            problem = _event_problem(event, now, needs_insert_id=True)
            if problem is None:
                self._ingest(event, self.imported)
                imported += 1
            elif strict:
                failed.append(FailedRecord("/import", index, _insert_id(event), *problem))
            else:
                self.dropped.append(event)
        if not failed:
            return Answer(200, {"code": 200, "num_records_imported": imported, "status": "OK"})
        self.failed.extend(failed)
        return Answer(
            400,
            {
                "code": 400,
                "error": "some data points in the request failed validation",
                "status": "Bad Request",
                "num_records_imported": imported,
                "failed_records": [record.answer() for record in failed],
            },
        )

    def _authenticate_import(self, call: Recorded) -> None:
        credentials = _basic_credentials(call.headers.get("Authorization", ""))
        if credentials is None:
            raise _Refused(_error(401, "Unauthorized: missing or malformed Basic credentials"))
        username, password = credentials
        if password == "" and (
            username == self.api_secret or (self.accept_token_auth and username == self.project_token)
        ):
            return
        if self.service_account is not None and credentials == self.service_account:
            if self.project_id is not None and call.query.get("project_id") == self.project_id:
                return
            raise _Refused(_error(401, "Unauthorized: a service account needs the project_id parameter"))
        raise _Refused(_error(401, "Invalid credentials"))

    def _import_records(self, call: Recorded) -> list[Any]:
        if call.decode_error:
            raise _Refused(_error(400, call.decode_error))
        if len(call.decoded) > self.max_request_bytes:
            raise _Refused(_error(413, f"request exceeds max limit of {self.max_request_bytes} bytes"))
        if call.headers.get("Content-Type", "").startswith("application/x-ndjson"):
            try:
                records = [json.loads(line) for line in call.decoded.splitlines() if line.strip()]
            except ValueError as error:
                raise _Refused(_error(400, f"invalid NDJSON: {error}")) from None
        elif call.json_error:
            raise _Refused(_error(400, f"invalid JSON body ({call.json_error})"))
        else:
            records = call.json if isinstance(call.json, list) else [call.json]
        if len(records) > MAX_RECORDS:
            raise _Refused(_error(413, f"request exceeds max limit of {MAX_RECORDS} records"))
        return records

    # -- /track

    def _track(self, call: Recorded) -> Answer:
        verbose = (call.form or {}).get("verbose", call.query.get("verbose")) == "1"
        try:
            events = _form_data(call)
        except _Refused as refused:
            return _outcome(False, refused.answer.body, verbose)
        now = self.now()
        failed: list[FailedRecord] = []
        for index, event in enumerate(events):
            problem = self._track_problem(event, now)
            if problem is not None:
                failed.append(FailedRecord("/track", index, _insert_id(event), *problem))
        if failed:
            self.failed.extend(failed)
            return _outcome(False, failed[0].message, verbose)
        for event in events:
            if now - _seconds(event["properties"].get("time", now)) > TRACK_WINDOW_SECONDS:
                self.dropped.append(event)
            else:
                self._ingest(event, self.tracked)
        return _outcome(True, None, verbose)

    def _track_problem(self, event: Any, now: float) -> tuple[str, str] | None:
        if not isinstance(event, dict) or not isinstance(event.get("properties"), dict):
            return "properties", "an event needs a properties object"
        if event["properties"].get("token") != self.project_token:
            return "properties.token", "token, missing or invalid"
        problem = _event_problem(event, now, needs_insert_id=False, needs_time=False)
        if problem is not None:
            return problem
        properties = event["properties"]
        if event["event"] == "$create_alias":
            alias, original = properties.get("alias"), properties.get("distinct_id")
            if not alias or not original or alias == original:
                return "properties.alias", "$create_alias needs distinct_id and a different alias"
        if event["event"] == "$identify":
            if not properties.get("$identified_id") or not properties.get("$anon_id"):
                return "properties.$identified_id", "$identify needs $identified_id and $anon_id"
        return None

    # -- /engage and /groups

    def _engage(self, call: Recorded) -> Answer:
        return self._updates(call, "/engage", self._profile_problem, self._apply_profile)

    def _groups(self, call: Recorded) -> Answer:
        return self._updates(call, "/groups", self._group_problem, self._apply_group)

    def _updates(
        self,
        call: Recorded,
        path: str,
        problem_of: Callable[[Any], tuple[str, str] | None],
        apply: Callable[[dict[str, Any]], None],
    ) -> Answer:
        verbose = (call.form or {}).get("verbose", call.query.get("verbose")) == "1"
        try:
            updates = _form_data(call)
        except _Refused as refused:
            return _outcome(False, refused.answer.body, verbose)
        failed = [
            FailedRecord(path, index, None, *problem)
            for index, update in enumerate(updates)
            if (problem := problem_of(update)) is not None
        ]
        if failed:
            self.failed.extend(failed)
            return _outcome(False, failed[0].message, verbose)
        for update in updates:
            apply(update)
        return _outcome(True, None, verbose)

    def _profile_problem(self, update: Any) -> tuple[str, str] | None:
        common = self._update_problem(update, PROFILE_OPERATIONS, ("$distinct_id",))
        if common is not None:
            return common
        distinct_id = update["$distinct_id"]
        if not isinstance(distinct_id, (str, int)) or str(distinct_id).lower() in PLACEHOLDER_IDS:
            return "$distinct_id", "$distinct_id is invalid"
        return None

    def _group_problem(self, update: Any) -> tuple[str, str] | None:
        common = self._update_problem(update, GROUP_OPERATIONS, ("$group_key", "$group_id"))
        if common is not None:
            return common
        if not isinstance(update["$group_key"], str):
            return "$group_key", "$group_key must be a string"
        if not isinstance(update["$group_id"], (str, int)):
            return "$group_id", "$group_id must be a string or a number"
        return None

    def _update_problem(self, update: Any, operations: tuple[str, ...], ids: tuple[str, ...]) -> tuple[str, str] | None:
        if not isinstance(update, dict):
            return "", "an update must be an object"
        if update.get("$token") != self.project_token:
            return "$token", "token, missing or invalid"
        for key in ids:
            if update.get(key) in (None, ""):
                return key, f"{key} is required"
        if len(json.dumps(update)) >= MAX_RECORD_BYTES:
            return "", "an update must be smaller than 1MB"
        present = [key for key in update if key in operations]
        if len(present) != 1:
            return "", f"an update needs exactly one operation of {', '.join(operations)}"
        unknown = [
            key
            for key in update
            if key not in operations and key not in ids and key not in PROFILE_EXTRAS and key != "$token"
        ]
        if unknown:
            return unknown[0], f"unknown key {unknown[0]}"
        operation, value = present[0], update[present[0]]
        if operation == "$unset" and not (isinstance(value, list) and all(isinstance(k, str) for k in value)):
            return operation, "$unset takes a list of property names"
        if operation == "$delete":
            return None
        if operation != "$unset" and not isinstance(value, dict):
            return operation, f"{operation} takes an object"
        if operation == "$add" and not all(_is_number(v) for v in value.values()):
            return operation, "$add takes numeric values"
        if operation == "$union" and not all(isinstance(v, list) for v in value.values()):
            return operation, "$union takes list values"
        return None

    def _apply_profile(self, update: dict[str, Any]) -> None:
        self.profile_updates.append(update)
        _apply(self.profiles, str(update["$distinct_id"]), update)

    def _apply_group(self, update: dict[str, Any]) -> None:
        self.group_updates.append(update)
        _apply(self.groups, (update["$group_key"], str(update["$group_id"])), update)

    # -- ingestion

    def _ingest(self, event: dict[str, Any], by_endpoint: list[dict[str, Any]]) -> None:
        properties = event["properties"]
        insert_id = properties.get("$insert_id")
        if insert_id is not None:
            key = (event["event"], properties.get("distinct_id"), _millis(properties.get("time")), insert_id)
            if key in self._seen:
                self.duplicates.append(event)
                return
            self._seen.add(key)
        by_endpoint.append(event)
        self.accepted.append(event)


# -- validation of one event


def _event_problem(event: Any, now: float, *, needs_insert_id: bool, needs_time: bool = True) -> tuple[str, str] | None:
    """(field, message) of the first problem Mixpanel's validation would report, or None."""
    if not isinstance(event, dict):
        return "", "an event must be a JSON object"
    name = event.get("event")
    if not isinstance(name, str) or not name:
        return "event", "'event' is required and must be a non-empty string"
    properties = event.get("properties")
    if not isinstance(properties, dict):
        return "properties", "'properties' is required and must be an object"
    if "time" in properties or needs_time:
        problem = _time_problem(properties.get("time"), now)
        if problem is not None:
            return "properties.time", problem
    if "distinct_id" not in properties:
        return "properties.distinct_id", "'properties.distinct_id' is required"
    distinct_id = properties["distinct_id"]
    if not isinstance(distinct_id, (str, int)) or isinstance(distinct_id, bool):
        return "properties.distinct_id", "'properties.distinct_id' must be a string"
    if str(distinct_id).lower() in PLACEHOLDER_IDS:
        return "properties.distinct_id", f"'properties.distinct_id' is invalid: {distinct_id!r} is a placeholder"
    if "$insert_id" in properties or needs_insert_id:
        insert_id = properties.get("$insert_id")
        if insert_id is None:
            return "properties.$insert_id", "'properties.$insert_id' is required"
        if not isinstance(insert_id, str) or not INSERT_ID.match(insert_id) or insert_id.lower() in PLACEHOLDER_IDS:
            return "properties.$insert_id", "'properties.$insert_id' must be ≤36 alphanumeric characters or '-'"
    if len(properties) >= MAX_PROPERTIES:
        return "properties", f"an event must have fewer than {MAX_PROPERTIES} properties"
    nested = _nested_problem(properties, "properties")
    if nested is not None:
        return nested
    if len(json.dumps(event).encode()) >= MAX_RECORD_BYTES:
        return "", "an event must be smaller than 1MB of uncompressed JSON"
    return None


def _time_problem(value: Any, now: float) -> str | None:
    if not _is_number(value):
        return "'properties.time' is invalid: must be specified as seconds since epoch"
    seconds = _seconds(value)
    if seconds < EARLIEST_TIME:
        return "'properties.time' is invalid: events before 1971-01-01 are rejected"
    if seconds > now + MAX_FUTURE_SECONDS:
        return "'properties.time' is invalid: more than 1 hour in the future"
    return None


def _nested_problem(value: Any, path: str) -> tuple[str, str] | None:
    for key, item in value.items():
        if isinstance(item, dict):
            if len(item) >= MAX_PROPERTIES:
                return f"{path}.{key}", f"nested objects must have fewer than {MAX_PROPERTIES} keys"
            problem = _nested_problem(item, f"{path}.{key}")
            if problem is not None:
                return problem
        elif isinstance(item, list) and len(item) >= MAX_PROPERTIES:
            return f"{path}.{key}", f"arrays must have fewer than {MAX_PROPERTIES} elements"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _seconds(value: float) -> float:
    return value / 1000 if value >= MS_THRESHOLD else value


def _millis(value: Any) -> Any:
    return int(round(_seconds(value) * 1000)) if _is_number(value) else value


def _insert_id(event: Any) -> str | None:
    if isinstance(event, dict) and isinstance(event.get("properties"), dict):
        value = event["properties"].get("$insert_id")
        return value if isinstance(value, str) else None
    return None


# -- requests and answers


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, separator, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if separator else None


def _form_data(call: Recorded) -> list[Any]:
    """The records of a form-encoded ``data=`` field, JSON or base64-encoded JSON."""
    if call.decode_error:
        raise _Refused(_error(400, call.decode_error))
    if call.form is None or "data" not in call.form:
        raise _Refused(_error(400, "data, missing or empty"))
    raw = call.form["data"]
    try:
        data = json.loads(raw)
    except ValueError:
        try:
            data = json.loads(base64.b64decode(raw, validate=True))
        except (ValueError, binascii.Error):
            raise _Refused(_error(400, "data is neither JSON nor base64-encoded JSON")) from None
    records = data if isinstance(data, list) else [data]
    if len(records) > MAX_RECORDS:
        raise _Refused(_error(400, f"more than {MAX_RECORDS} records"))
    return records


def _outcome(ok: bool, error: Any, verbose: bool) -> Answer:
    if not verbose:
        return Answer(200, "1" if ok else "0")
    message = error.get("error") if isinstance(error, dict) else error
    return Answer(200, {"status": 1 if ok else 0, "error": None if ok else message})


def _error(status: int, message: str) -> Answer:
    reasons = {400: "Bad Request", 401: "Unauthorized", 413: "Request Entity Too Large", 429: "Too Many Requests"}
    return Answer(status, {"code": status, "error": message, "status": reasons.get(status, "Error")})


def _apply(store: dict[Any, dict[str, Any]], key: Any, update: dict[str, Any]) -> None:
    if "$delete" in update:
        store.pop(key, None)
        return
    properties = store.setdefault(key, {})
    for operation, value in update.items():
        if operation == "$set":
            properties.update(value)
        elif operation == "$set_once":
            for name, item in value.items():
                properties.setdefault(name, item)
        elif operation == "$add":
            for name, item in value.items():
                properties[name] = properties.get(name, 0) + item
        elif operation == "$union":
            for name, items in value.items():
                current = properties.setdefault(name, [])
                current.extend(item for item in items if item not in current)
        elif operation == "$append":
            for name, item in value.items():
                properties.setdefault(name, []).append(item)
        elif operation == "$remove":
            for name, item in value.items():
                if item in properties.get(name, []):
                    properties[name].remove(item)
        elif operation == "$unset":
            for name in value:
                properties.pop(name, None)
