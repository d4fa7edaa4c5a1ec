"""A double of the GA4 Measurement Protocol: ``POST /mp/collect`` and ``POST /debug/mp/collect``.

The real /mp/collect answers 2xx to everything, a wrong ``api_secret`` and a malformed payload
included, and silently drops what it cannot use. So does this double: it answers 204, ingests
(``accepted``) only the events of requests with no problem at all, and records every problem it
found in ``invalid`` so that a test can assert there is none. /debug/mp/collect answers 200 with
``validationMessages`` for the body's problems and ingests nothing.

A request with any problem is dropped whole: Google documents no per-event outcome, so the double
takes the strict reading.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.vendors.base import Answer, Recorded, VendorDouble

MAX_BODY_BYTES = 130_000  # "body <130 kB"
MAX_EVENTS = 25
MAX_PARAMS = 25
MAX_USER_PROPERTIES = 25
MAX_NAME = 40  # event and param names
MAX_USER_PROPERTY_NAME = 24
MAX_USER_PROPERTY_VALUE = 36
MAX_PARAM_VALUE = 100
# The collection limits let these three params carry longer values than the general 100.
LONGER_PARAM_VALUES = {"page_location": 1000, "page_referrer": 420, "page_title": 300}
MAX_USER_ID = 256
MAX_BACKDATE_MICROS = 72 * 3600 * 1_000_000

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
RESERVED_PREFIXES = ("google_", "ga_", "firebase_")
RESERVED_EVENT_NAMES = frozenset(
    {
        "ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "ad_reward",
        "adunit_exposure", "app_background", "app_clear_data", "app_exception", "app_install",
        "app_remove", "app_store_refund", "app_store_subscription_cancel",
        "app_store_subscription_convert", "app_store_subscription_renew", "app_update",
        "app_upgrade", "dynamic_link_app_open", "dynamic_link_app_update",
        "dynamic_link_first_open", "error", "first_open", "first_visit", "in_app_purchase",
        "notification_dismiss", "notification_foreground", "notification_open",
        "notification_receive", "os_update", "screen_view", "session_start",
        "session_start_with_rollout", "user_engagement",
    }
)  # fmt: skip
RESERVED_USER_PROPERTIES = frozenset(
    {"first_open_time", "first_visit_time", "last_deep_link_referrer", "user_id", "first_open_after_install"}
)
STANDARD_ITEM_PARAMS = frozenset(
    {
        "item_id", "item_name", "affiliation", "coupon", "discount", "index", "item_brand",
        "item_category", "item_category2", "item_category3", "item_category4", "item_category5",
        "item_list_id", "item_list_name", "item_variant", "location_id", "price", "quantity",
        "creative_name", "creative_slot", "promotion_id", "promotion_name",
    }
)  # fmt: skip
CONSENT_VALUES = ("GRANTED", "DENIED")


@dataclass(frozen=True)
class Problem:
    """One validation problem, as /debug/mp/collect would report it."""

    field_path: str
    description: str
    code: str  # validationCode: VALUE_INVALID, VALUE_REQUIRED, NAME_INVALID, NAME_RESERVED, ...

    def message(self) -> dict[str, str]:
        return {"fieldPath": self.field_path, "description": self.description, "validationCode": self.code}


@dataclass
class GA4Event:
    """One ingested event, with the request-level fields it was sent with."""

    name: str
    params: dict[str, Any]
    client_id: str | None
    app_instance_id: str | None
    user_id: str | None
    timestamp_micros: int | None
    user_properties: dict[str, Any]
    consent: dict[str, Any] | None
    measurement_id: str | None
    firebase_app_id: str | None


@dataclass
class _Checks:
    problems: list[Problem] = field(default_factory=list)

    def add(self, path: str, description: str, code: str) -> None:
        self.problems.append(Problem(path, description, code))


class GA4Double(VendorDouble):
    """One GA4 data stream: a web stream (``measurement_id``) or, with ``firebase_app_id``, an
    app stream (whose requests carry ``app_instance_id`` instead of ``client_id``).

    ``accepted``: ``GA4Event`` per ingested event; ``invalid``: ``Problem`` per problem found on
    /mp/collect (query and body). GA4 does not deduplicate, so neither does the double."""

    vendor = "ga4"

    def __init__(
        self,
        *,
        api_secret: str = "ga4-secret",
        measurement_id: str | None = "G-TEST0001",
        firebase_app_id: str | None = None,
        max_custom_item_params: int = 10,  # newer collection limits say 27; the stricter one
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        if firebase_app_id is not None:
            measurement_id = None
        self.api_secret = api_secret
        self.measurement_id = measurement_id
        self.firebase_app_id = firebase_app_id
        self.max_custom_item_params = max_custom_item_params
        self.now = now
        self.accepted: list[GA4Event] = []
        self.invalid: list[Problem] = []

    def routes(self):
        return [("POST", "/mp/collect", self._collect), ("POST", "/debug/mp/collect", self._debug)]

    def reset(self) -> None:
        super().reset()
        self.invalid.clear()

    def failure_body(self, status: int, call: Recorded) -> Any:
        return {"error": {"code": status, "message": f"scripted {status}"}}

    # -- endpoints

    def _collect(self, call: Recorded) -> Answer:
        problems = self._query_problems(call.query) + self._body_problems(call)
        if problems:
            self.invalid.extend(problems)
        else:
            self._ingest(call.query, call.json)
        return Answer(204)

    def _debug(self, call: Recorded) -> Answer:
        messages = [problem.message() for problem in self._body_problems(call)]
        return Answer(200, {"validationMessages": messages})

    def _ingest(self, query: dict[str, str], body: dict[str, Any]) -> None:
        for event in body["events"]:
            self.accepted.append(
                GA4Event(
                    name=event["name"],
                    params=dict(event.get("params") or {}),
                    client_id=body.get("client_id"),
                    app_instance_id=body.get("app_instance_id"),
                    user_id=body.get("user_id"),
                    timestamp_micros=event.get("timestamp_micros", body.get("timestamp_micros")),
                    user_properties=dict(body.get("user_properties") or {}),
                    consent=body.get("consent"),
                    measurement_id=query.get("measurement_id"),
                    firebase_app_id=query.get("firebase_app_id"),
                )
            )

    # -- validation

    def _query_problems(self, query: dict[str, str]) -> list[Problem]:
        checks = _Checks()
        secret = query.get("api_secret")
        if not secret:
            checks.add("api_secret", "api_secret is required", "VALUE_REQUIRED")
        elif secret != self.api_secret:
            checks.add("api_secret", "api_secret does not belong to this stream", "VALUE_INVALID")
        stream_key, stream_id = (
            ("firebase_app_id", self.firebase_app_id)
            if self.firebase_app_id
            else ("measurement_id", self.measurement_id)
        )
        other_key = "measurement_id" if stream_key == "firebase_app_id" else "firebase_app_id"
        if other_key in query:
            checks.add(other_key, f"{other_key} given for a stream identified by {stream_key}", "VALUE_INVALID")
        if not query.get(stream_key):
            checks.add(stream_key, f"{stream_key} is required", "VALUE_REQUIRED")
        elif query[stream_key] != stream_id:
            checks.add(stream_key, f"unknown {stream_key} {query[stream_key]!r}", "VALUE_INVALID")
        return checks.problems

    def _body_problems(self, call: Recorded) -> list[Problem]:
        checks = _Checks()
        if call.decode_error:
            checks.add("", call.decode_error, "VALUE_INVALID")
            return checks.problems
        if len(call.decoded) >= MAX_BODY_BYTES:
            checks.add(
                "", f"the body is {len(call.decoded)} bytes; it must be under {MAX_BODY_BYTES}", "VALUE_OUT_OF_BOUNDS"
            )
        body = call.json
        if not isinstance(body, dict):
            checks.add("", "the body must be a JSON object", "VALUE_INVALID")
            return checks.problems
        self._check_identity(body, checks)
        self._check_timestamp(body.get("timestamp_micros"), "timestamp_micros", checks)
        self._check_user_properties(body.get("user_properties"), checks)
        self._check_consent(body.get("consent"), checks)
        self._check_events(body.get("events"), checks)
        return checks.problems

    def _check_identity(self, body: dict[str, Any], checks: _Checks) -> None:
        key = "app_instance_id" if self.firebase_app_id else "client_id"
        value = body.get(key)
        if value is None or value == "":
            checks.add(key, f"{key} is required", "VALUE_REQUIRED")
        elif not isinstance(value, str):
            checks.add(key, f"{key} must be a string", "VALUE_INVALID")
        if "user_id" in body:
            user_id = body["user_id"]
            if not isinstance(user_id, str):
                checks.add("user_id", "user_id must be a string", "VALUE_INVALID")
            elif len(user_id) > MAX_USER_ID:
                checks.add("user_id", f"user_id is longer than {MAX_USER_ID} characters", "VALUE_OUT_OF_BOUNDS")

    def _check_timestamp(self, value: Any, path: str, checks: _Checks) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            checks.add(path, "timestamp_micros must be an integer", "VALUE_INVALID")
            return
        now_micros = int(self.now() * 1_000_000)
        if value > now_micros:
            checks.add(path, "timestamp_micros is in the future", "VALUE_OUT_OF_BOUNDS")
        elif now_micros - value > MAX_BACKDATE_MICROS:
            checks.add(path, "timestamp_micros is more than 72 hours in the past", "VALUE_OUT_OF_BOUNDS")

    def _check_user_properties(self, properties: Any, checks: _Checks) -> None:
        if properties is None:
            return
        if not isinstance(properties, dict):
            checks.add("user_properties", "user_properties must be an object", "VALUE_INVALID")
            return
        if len(properties) > MAX_USER_PROPERTIES:
            checks.add("user_properties", f"more than {MAX_USER_PROPERTIES} user properties", "EXCEEDED_MAX_ENTITIES")
        for name, holder in properties.items():
            path = f"user_properties.{name}"
            if not NAME.match(name) or len(name) > MAX_USER_PROPERTY_NAME:
                checks.add(
                    path,
                    f"user property names are [A-Za-z][A-Za-z0-9_]*, ≤{MAX_USER_PROPERTY_NAME} characters",
                    "NAME_INVALID",
                )
            elif name in RESERVED_USER_PROPERTIES or name.startswith(RESERVED_PREFIXES):
                checks.add(path, f"user property name {name!r} is reserved", "NAME_RESERVED")
            if not isinstance(holder, dict) or "value" not in holder:
                checks.add(path, 'a user property must be {"value": ...}', "VALUE_INVALID")
                continue
            value = holder["value"]
            if isinstance(value, (dict, list)):
                checks.add(f"{path}.value", "a user property value must be a string or a number", "VALUE_INVALID")
            elif isinstance(value, str) and len(value) > MAX_USER_PROPERTY_VALUE:
                checks.add(
                    f"{path}.value",
                    f"user property values are ≤{MAX_USER_PROPERTY_VALUE} characters",
                    "VALUE_OUT_OF_BOUNDS",
                )

    def _check_consent(self, consent: Any, checks: _Checks) -> None:
        if consent is None:
            return
        if not isinstance(consent, dict):
            checks.add("consent", "consent must be an object", "VALUE_INVALID")
            return
        for key in ("ad_user_data", "ad_personalization"):
            if key in consent and consent[key] not in CONSENT_VALUES:
                checks.add(f"consent.{key}", "consent values are GRANTED or DENIED", "VALUE_INVALID")

    def _check_events(self, events: Any, checks: _Checks) -> None:
        if not isinstance(events, list) or not events:
            checks.add("events", "events must be a non-empty array", "VALUE_REQUIRED")
            return
        if len(events) > MAX_EVENTS:
            checks.add("events", f"more than {MAX_EVENTS} events", "EXCEEDED_MAX_ENTITIES")
        for index, event in enumerate(events):
            self._check_event(event, f"events[{index}]", checks)

    def _check_event(self, event: Any, path: str, checks: _Checks) -> None:
        if not isinstance(event, dict):
            checks.add(path, "an event must be an object", "VALUE_INVALID")
            return
        name = event.get("name")
        if not isinstance(name, str) or not name:
            checks.add(f"{path}.name", "an event needs a name", "VALUE_REQUIRED")
        elif not NAME.match(name) or len(name) > MAX_NAME:
            checks.add(f"{path}.name", f"event names are [A-Za-z][A-Za-z0-9_]*, ≤{MAX_NAME} characters", "NAME_INVALID")
        elif name in RESERVED_EVENT_NAMES or name.startswith(RESERVED_PREFIXES):
            checks.add(f"{path}.name", f"event name {name!r} is reserved", "NAME_RESERVED")
        self._check_timestamp(event.get("timestamp_micros"), f"{path}.timestamp_micros", checks)
        params = event.get("params")
        if params is None:
            return
        if not isinstance(params, dict):
            checks.add(f"{path}.params", "params must be an object", "VALUE_INVALID")
            return
        if len(params) > MAX_PARAMS:
            checks.add(f"{path}.params", f"more than {MAX_PARAMS} params", "EXCEEDED_MAX_ENTITIES")
        for key, value in params.items():
            param_path = f"{path}.params.{key}"
            self._check_param_name(key, param_path, checks)
            if key == "items":
                self._check_items(value, param_path, checks)
            else:
                self._check_scalar(value, LONGER_PARAM_VALUES.get(key, MAX_PARAM_VALUE), param_path, checks)

    def _check_param_name(self, name: str, path: str, checks: _Checks) -> None:
        if not NAME.match(name) or len(name) > MAX_NAME:
            checks.add(path, f"param names are [A-Za-z][A-Za-z0-9_]*, ≤{MAX_NAME} characters", "NAME_INVALID")
        elif name.startswith(RESERVED_PREFIXES):
            checks.add(path, f"param name {name!r} has a reserved prefix", "NAME_RESERVED")

    def _check_scalar(self, value: Any, max_length: int, path: str, checks: _Checks) -> None:
        if value is None:
            checks.add(path, "param values cannot be null", "VALUE_INVALID")
        elif isinstance(value, (dict, list)):
            checks.add(path, "param values must be strings or numbers (only items is an array)", "VALUE_INVALID")
        elif isinstance(value, str) and len(value) > max_length:
            checks.add(path, f"param value is longer than {max_length} characters", "VALUE_OUT_OF_BOUNDS")

    def _check_items(self, items: Any, path: str, checks: _Checks) -> None:
        if not isinstance(items, list):
            checks.add(path, "items must be an array", "VALUE_INVALID")
            return
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            if not isinstance(item, dict):
                checks.add(item_path, "an item must be an object", "VALUE_INVALID")
                continue
            if not item.get("item_id") and not item.get("item_name"):
                checks.add(item_path, "an item needs item_id or item_name", "VALUE_REQUIRED")
            custom = [key for key in item if key not in STANDARD_ITEM_PARAMS]
            if len(custom) > self.max_custom_item_params:
                checks.add(
                    item_path, f"more than {self.max_custom_item_params} custom item params", "EXCEEDED_MAX_ENTITIES"
                )
            for key, value in item.items():
                self._check_param_name(key, f"{item_path}.{key}", checks)
                self._check_scalar(value, MAX_PARAM_VALUE, f"{item_path}.{key}", checks)
