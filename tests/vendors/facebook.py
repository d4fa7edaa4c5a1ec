"""Meta Graph API: the Conversions API and Custom Audience users (docs/vendors/analytics-ads.md §6).

``POST /v{N}/{pixel_id}/events`` with the access token in the ``access_token`` query parameter, a
``Bearer`` header, or the body; the body is JSON ``{data: [...], test_event_code?}`` or a form whose
``data`` is a JSON string (as Meta's own examples send it). A wrong token is a Graph
``OAuthException`` code 190 (HTTP 400, as graph.facebook.com answers; ``auth_error_status`` changes
it); a missing one is code 104.

At most 1000 events. One invalid event rejects the whole batch: HTTP 400, code 100, with
``error_subcode`` 2804003 for an ``event_time`` more than 7 days old (62 for ``physical_store``),
2804019 otherwise, and ``error_user_msg`` saying ``Event at index N: ...`` (the wording is the
double's). Checked per event: ``event_name``; ``event_time`` (Unix seconds, or an ISO-8601 string
which Meta converts; at most a minute ahead); ``action_source`` (Meta's documented values);
``website`` events need ``event_source_url`` and ``user_data.client_user_agent``; ``user_data`` holds at
least one customer-information parameter; ``em ph fn ln ge db ct st zp country`` are SHA-256 hex
(lower case, 64 characters; ``external_id`` too when ``require_hashed_external_id``); the
must-not-hash fields are not hashes, ``client_ip_address`` is an IP and ``fbc``/``fbp`` are
``fb.N.<time>.<id>``. A valid request answers ``{events_received, messages: [], fbtrace_id}``; events
with the same pixel, ``event_name`` and ``event_id`` within 48 h are received but kept once.

``POST`` / ``DELETE /v{N}/{audience_id}/users`` with ``payload: {schema, data}`` (JSON, or a JSON
string in a form or query parameter) adds or removes users; rows that are not validly hashed are
counted in ``num_invalid_entries`` rather than refused, as Meta answers.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from tests.vendors.base import Answer, Recorded, VendorDouble

MAX_EVENTS = 1000
MAX_AUDIENCE_ROWS = 10000
MAX_AGE = 7 * 86400
MAX_AGE_PHYSICAL_STORE = 62 * 86400
MAX_AHEAD = 60
DEDUP_WINDOW = 48 * 3600
HEX64 = re.compile(r"[0-9a-f]{64}")
CLICK_COOKIE = re.compile(r"fb\.\d\.\d+\.\S+")

ACTION_SOURCES = frozenset(
    {"email", "website", "app", "phone_call", "chat", "physical_store", "system_generated", "business_messaging",
     "other"}
)
HASHED_USER_DATA = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country")
PLAIN_USER_DATA = ("client_ip_address", "client_user_agent", "fbc", "fbp", "subscription_id", "lead_id",
                   "fb_login_id", "anon_id", "madid", "page_id", "page_scoped_user_id", "ctwa_clid",
                   "ig_account_id", "ig_sid")
CUSTOMER_INFORMATION = frozenset(HASHED_USER_DATA + PLAIN_USER_DATA + ("external_id",))

AUDIENCE_KEYS = frozenset({"EXTERN_ID", "EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI", "CT",
                           "ST", "ZIP", "MADID", "COUNTRY", "EMAIL_SHA256", "PHONE_SHA256",
                           "MOBILE_ADVERTISER_ID"})
UNHASHED_AUDIENCE_KEYS = frozenset({"EXTERN_ID", "MADID", "MOBILE_ADVERTISER_ID"})


@dataclass
class ServerEvent:
    """One event Meta kept."""

    pixel_id: str
    event: dict[str, Any]  # as sent
    test_event_code: str | None
    received_at: float


class _Refused(Exception):
    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.body)
        self.answer = answer


def _graph_error(
    status: int,
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    title: str | None = None,
    user_message: str | None = None,
    kind: str = "OAuthException",
    transient: bool | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient is not None:
        error["is_transient"] = transient
    if title is not None:
        error["error_user_title"] = title
    if user_message is not None:
        error["error_user_msg"] = user_message
    error["fbtrace_id"] = secrets.token_urlsafe(12)
    return Answer(status, {"error": error}, headers or {})


def _invalid(user_message: str, subcode: int = 2804019, title: str = "Invalid Parameter") -> _Refused:
    return _Refused(_graph_error(400, 100, "Invalid parameter", subcode=subcode, title=title,
                                 user_message=user_message, transient=False))


class FacebookDouble(VendorDouble):
    """``accepted``: the ``ServerEvent``s kept (deduplicated). ``duplicates``: events received but
    merged into an earlier one. ``audiences``: audience id -> its users as ``(KEY, value)`` pairs;
    ``audience_operations``: (audience id, "add" | "remove", rows as sent)."""

    vendor = "facebook"

    def __init__(
        self,
        access_token: str = "EAAtest-system-user-token",
        *,
        pixel_ids: Iterable[str | int] | None = None,
        audience_ids: Iterable[str | int] | None = None,
        auth_error_status: int = 400,
        require_hashed_external_id: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """
        pixel_ids / audience_ids: the objects that exist (None: any numeric id does).
        require_hashed_external_id: the fact sheet only recommends hashing ``external_id``; set this
            to refuse an unhashed one.
        """
        super().__init__()
        self.access_token = access_token
        self.pixel_ids = None if pixel_ids is None else {str(p) for p in pixel_ids}
        self.audience_ids = None if audience_ids is None else {str(a) for a in audience_ids}
        self.auth_error_status = auth_error_status
        self.hashed_keys = HASHED_USER_DATA + (("external_id",) if require_hashed_external_id else ())
        self.clock = clock
        self.duplicates: list[ServerEvent] = []
        self.audiences: dict[str, set[tuple[str, str]]] = {}
        self.audience_operations: list[tuple[str, str, list[Any]]] = []

    def events(self, name: str | None = None) -> list[ServerEvent]:
        return [e for e in list(self.accepted) if name is None or e.event.get("event_name") == name]

    def reset(self) -> None:
        super().reset()
        self.duplicates.clear()
        self.audiences.clear()
        self.audience_operations.clear()

    def routes(self):
        base = r"/{version:v\d+\.\d+}/{object_id:\d+}"
        return [
            ("POST", base + "/events", self._events),
            ("POST", base + "/users", self._audience_users),
            ("DELETE", base + "/users", self._audience_users),
        ]

    def failure_body(self, status: int, call: Recorded) -> Any:
        if status == 401:
            return self._bad_token().body
        code, message = {
            400: (100, "Invalid parameter"),
            403: (200, "(#200) Permissions error"),
            429: (4, "(#4) Application request limit reached"),
            503: (2, "An unexpected error has occurred. Please retry your request later."),
        }.get(status, (1, "An unknown error occurred"))
        return _graph_error(status, code, message, transient=status >= 429).body

    # -- common

    def _bad_token(self) -> Answer:
        return _graph_error(
            self.auth_error_status, 190, "Invalid OAuth access token - Cannot parse access token",
            headers={"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token" "Invalid OAuth access token."'},
        )

    def _params(self, call: Recorded) -> dict[str, Any]:
        """The Graph parameters: query, then the form or JSON body."""
        params: dict[str, Any] = dict(call.query)
        if call.form is not None:
            params.update(call.form)
        elif isinstance(call.json, dict):
            params.update(call.json)
        elif call.decoded.strip():
            raise _invalid(f"The body could not be read: {call.json_error}.")
        return params

    def _authorised(self, call: Recorded, params: dict[str, Any]) -> None:
        token = params.get("access_token")
        scheme, _, bearer = call.headers.get("Authorization", "").partition(" ")
        if token is None and scheme.lower() in ("bearer", "oauth") and bearer.strip():
            token = bearer.strip()
        if not token:
            raise _Refused(_graph_error(400, 104, "An access token is required to request this resource."))
        if token != self.access_token:
            raise _Refused(self._bad_token())

    def _check_object(self, object_id: str, known: set[str] | None) -> None:
        if known is not None and object_id not in known:
            raise _Refused(_graph_error(
                400, 100, f"Unsupported post request. Object with ID '{object_id}' does not exist, cannot be "
                "loaded due to missing permissions, or does not support this operation.",
                subcode=33, kind="GraphMethodException"))

    # -- Conversions API

    def _events(self, call: Recorded) -> Answer:
        try:
            params = self._params(call)
            self._authorised(call, params)
            pixel_id = call.params["object_id"]
            self._check_object(pixel_id, self.pixel_ids)
            events = _json_param(params, "data")
            if not isinstance(events, list) or not events:
                raise _invalid("The parameter data must be a non-empty array of events.")
            if len(events) > MAX_EVENTS:
                raise _invalid(f"A batch holds at most {MAX_EVENTS} events; this one has {len(events)}.")
            for index, event in enumerate(events):
                self._check_event(index, event)
        except _Refused as refused:
            return refused.answer
        test_code = params.get("test_event_code")
        now = self.clock()
        for event in events:
            self._keep(ServerEvent(pixel_id, event, test_code, now))
        return Answer(200, {"events_received": len(events), "messages": [], "fbtrace_id": secrets.token_urlsafe(12)})

    def _keep(self, received: ServerEvent) -> None:
        event_id = received.event.get("event_id")
        if event_id is not None:
            for earlier in self.accepted:
                if (earlier.pixel_id == received.pixel_id
                        and earlier.event.get("event_name") == received.event.get("event_name")
                        and earlier.event.get("event_id") == event_id
                        and received.received_at - earlier.received_at <= DEDUP_WINDOW):
                    self.duplicates.append(received)
                    return
        self.accepted.append(received)

    def _check_event(self, index: int, event: Any) -> None:
        def refuse(problem: str, subcode: int = 2804019, title: str = "Invalid Parameter") -> _Refused:
            return _invalid(f"Event at index {index}: {problem}", subcode, title)

        if not isinstance(event, dict):
            raise refuse("an event must be an object.")
        name = event.get("event_name")
        if not isinstance(name, str) or not name:
            raise refuse("the parameter event_name is required.")
        moment = _event_time(event.get("event_time"))
        if moment is None:
            raise refuse("the parameter event_time is required: Unix seconds or an ISO-8601 time.")
        source = event.get("action_source")
        if source not in ACTION_SOURCES:
            raise refuse(f"action_source must be one of {', '.join(sorted(ACTION_SOURCES))}.")
        max_age = MAX_AGE_PHYSICAL_STORE if source == "physical_store" else MAX_AGE
        now = self.clock()
        if moment < now - max_age:
            raise refuse(
                "The timestamp for this event is too far in the past. Events need to be sent from your server "
                f"within {max_age // 86400} days of when they occurred.", 2804003, "Event Timestamp Too Old")
        if moment > now + MAX_AHEAD:
            raise refuse("event_time is in the future.")
        user_data = event.get("user_data")
        if not isinstance(user_data, dict):
            raise refuse("the parameter user_data is required.")
        if not any(_present(user_data.get(key)) for key in CUSTOMER_INFORMATION):
            raise refuse("user_data needs at least one customer information parameter.")
        if source == "website":
            if not event.get("event_source_url"):
                raise refuse("website events need event_source_url.")
            if not user_data.get("client_user_agent"):
                raise refuse("website events need user_data.client_user_agent.")
        problem = self._user_data_problem(user_data)
        if problem:
            raise refuse(problem)
        custom_data = event.get("custom_data")
        if custom_data is not None and not isinstance(custom_data, dict):
            raise refuse("custom_data must be an object.")

    def _user_data_problem(self, user_data: dict[str, Any]) -> str | None:
        for key in self.hashed_keys:
            for value in _values(user_data.get(key)):
                if not isinstance(value, str) or not HEX64.fullmatch(value):
                    return f"user_data.{key} must be SHA-256 hashed (64 lower-case hex characters)."
        for key in PLAIN_USER_DATA:
            for value in _values(user_data.get(key)):
                if isinstance(value, str) and HEX64.fullmatch(value.lower()):
                    return f"user_data.{key} must not be hashed."
        ip = user_data.get("client_ip_address")
        if ip is not None:
            try:
                ipaddress.ip_address(str(ip))
            except ValueError:
                return "user_data.client_ip_address is not a valid IP address."
        for key in ("fbc", "fbp"):
            value = user_data.get(key)
            if value is not None and not (isinstance(value, str) and CLICK_COOKIE.fullmatch(value)):
                return f"user_data.{key} must be of the form fb.1.<creation time>.<id>."
        return None

    # -- Custom Audiences

    def _audience_users(self, call: Recorded) -> Answer:
        removing = call.method == "DELETE"
        try:
            params = self._params(call)
            self._authorised(call, params)
            audience_id = call.params["object_id"]
            self._check_object(audience_id, self.audience_ids)
            payload = _json_param(params, "payload")
            schema, rows = _audience_payload(payload)
        except _Refused as refused:
            return refused.answer
        members = self.audiences.setdefault(audience_id, set())
        invalid_count, samples = 0, {}
        for row in rows:
            pairs, problem = _audience_row(schema, row)
            if problem is not None:
                invalid_count += 1
                if len(samples) < 10:
                    samples.setdefault(json.dumps(row), problem)
                continue
            if removing:
                members.difference_update(pairs)
            else:
                members.update(pairs)
        self.audience_operations.append((audience_id, "remove" if removing else "add", rows))
        return Answer(200, {
            "audience_id": audience_id, "session_id": str(secrets.randbelow(10**18)),
            "num_received": len(rows), "num_invalid_entries": invalid_count, "invalid_entry_samples": samples,
        })


def _json_param(params: dict[str, Any], name: str) -> Any:
    if name not in params:
        raise _invalid(f"The parameter {name} is required.")
    value = params[name]
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise _invalid(f"The parameter {name} is not valid JSON.") from None
    return value


def _event_time(value: Any) -> float | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _present(value: Any) -> bool:
    return any(v not in (None, "") for v in _values(value))


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _audience_payload(payload: Any) -> tuple[list[str], list[Any]]:
    if not isinstance(payload, dict):
        raise _invalid("The parameter payload must be an object with schema and data.")
    schema, data = payload.get("schema"), payload.get("data")
    keys = [schema] if isinstance(schema, str) else schema
    if not isinstance(keys, list) or not keys or any(key not in AUDIENCE_KEYS for key in keys):
        raise _invalid(f"Invalid schema {json.dumps(schema)}.")
    if not isinstance(data, list) or not data:
        raise _invalid("The payload data must be a non-empty array.")
    if len(data) > MAX_AUDIENCE_ROWS:
        raise _invalid(f"At most {MAX_AUDIENCE_ROWS} users per request.")
    for row in data:
        width = len(row) if isinstance(row, list) else 1
        if width != len(keys):
            raise _invalid("Each row of data must have as many values as the schema has keys.")
    return keys, data


def _audience_row(schema: list[str], row: Any) -> tuple[set[tuple[str, str]], str | None]:
    values = row if isinstance(row, list) else [row]
    pairs = set()
    for key, value in zip(schema, values):
        if value in (None, ""):
            continue
        text = str(value)
        if key not in UNHASHED_AUDIENCE_KEYS and not HEX64.fullmatch(text):
            return set(), f"{key} is not a SHA-256 hash"
        pairs.add((key.removesuffix("_SHA256"), text))
    if not pairs:
        return set(), "no identifier"
    return pairs, None
