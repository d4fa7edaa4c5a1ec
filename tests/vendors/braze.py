"""Braze REST API, ``POST /users/track`` (docs/vendors/crm-messaging.md §9; braze.com/docs/api).

The body is ``{attributes?: [...], events?: [...], purchases?: [...]}``, ``Authorization: Bearer
<REST API key>``. What the double checks, as the fact sheet states it:

- 401 ``{"message": "Invalid API key: ..."}`` without the key, or with another one;
- 400 (fatal, nothing ingested): a body that is not a JSON object, no object at all, an array that
  is not a list, more than 75 objects in one of the three arrays (``combined_limit=True``: the
  newer accounts' 75 objects in all three together);
- each object needs exactly one identifier (``external_id``, ``user_alias`` {alias_name,
  alias_label}, ``braze_id``; else ``email``, which is otherwise an attribute); an event a ``name`` and a ``time``; a purchase a
  ``product_id``, a three-letter ``currency``, a numeric ``price`` and a ``time``. An object that
  fails is a non-fatal error: only it is dropped, and the answer (201) is
  ``{"message": "success", "attributes_processed"..., "errors": [{"type", "input_array", "index"}]}``;
- 429 / 5xx only when scripted with ``fail_next`` (Braze sends ``X-RateLimit-Limit``,
  ``-Remaining`` and ``-Reset``, the Unix second the window resets).

``accepted``: ``(input_array, object)`` pairs ingested, in order; ``profiles``: the attributes
set, by identifier (``external_id`` value, or ``alias_label:alias_name``).
"""

from __future__ import annotations

import re
from typing import Any

from tests.vendors.base import Answer, Recorded, VendorDouble

TRACK_PATH = "/users/track"
ARRAYS = ("attributes", "events", "purchases")
MAX_OBJECTS = 75
IDENTIFIERS = ("external_id", "user_alias", "braze_id", "email")
_CURRENCY = re.compile(r"[A-Z]{3}")


class BrazeDouble(VendorDouble):
    vendor = "braze"

    def __init__(self, api_key: str = "braze-rest-key", *, combined_limit: bool = False) -> None:
        super().__init__()
        self.api_key = api_key
        self.combined_limit = combined_limit
        self.profiles: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        super().reset()
        self.profiles.clear()

    def routes(self):
        return [("POST", TRACK_PATH, self._track)]

    def failure_body(self, status: int, call: Recorded) -> Any:
        return {
            401: {"message": "Invalid API key"},
            429: {"message": "API rate limit reached"},
        }.get(status, {"message": f"Internal server error ({status})"})

    def objects(self, array: str) -> list[dict[str, Any]]:
        return [item for kind, item in list(self.accepted) if kind == array]

    # -- the endpoint

    def _track(self, call: Recorded) -> Answer:
        if call.headers.get("Authorization") != f"Bearer {self.api_key}":
            return Answer(401, {"message": "Invalid API key: " + call.headers.get("Authorization", "none")})
        body = call.json
        if not isinstance(body, dict):
            return Answer(400, {"message": f"Invalid request: {call.json_error or 'not a JSON object'}"})
        counts = {}
        for array in ARRAYS:
            items = body.get(array, [])
            if not isinstance(items, list):
                return Answer(400, {"message": f"'{array}' must be an array"})
            counts[array] = len(items)
            if len(items) > MAX_OBJECTS:
                return Answer(400, {"message": f"Too many {array}: {len(items)}, at most {MAX_OBJECTS} a request"})
        if not sum(counts.values()):
            return Answer(400, {"message": "Request must contain attributes, events or purchases"})
        if self.combined_limit and sum(counts.values()) > MAX_OBJECTS:
            return Answer(400, {"message": f"Too many objects: {sum(counts.values())}, at most {MAX_OBJECTS} a request"})
        errors: list[dict[str, Any]] = []
        processed = dict.fromkeys(ARRAYS, 0)
        for array in ARRAYS:
            for index, item in enumerate(body.get(array, [])):
                problem = _problem(array, item)
                if problem:
                    errors.append({"type": problem, "input_array": array, "index": index})
                    continue
                processed[array] += 1
                self.accepted.append((array, item))
                if array == "attributes":
                    profile = self.profiles.setdefault(_identity(item), {})
                    profile.update({k: v for k, v in item.items() if k != identifier_key(item)})
        answer: dict[str, Any] = {"message": "success"}
        answer.update({f"{array}_processed": processed[array] for array in ARRAYS if counts[array]})
        if errors:
            answer["errors"] = errors
        return Answer(201, answer)


def identifier_key(item: dict[str, Any]) -> str:
    """Which key identifies the object's user."""
    for key in IDENTIFIERS:
        if item.get(key) not in (None, ""):
            return key
    return ""


def _identity(item: dict[str, Any]) -> str:
    if "user_alias" in item:
        alias = item["user_alias"]
        return f"{alias['alias_label']}:{alias['alias_name']}"
    for key in IDENTIFIERS:
        if item.get(key) not in (None, ""):
            return str(item[key])
    return ""


def _problem(array: str, item: Any) -> str:
    if not isinstance(item, dict):
        return f"{array[:-1]} object is not an object"
    # email is an attribute too: it identifies the user only when no other identifier is given.
    present = [key for key in IDENTIFIERS[:3] if item.get(key) not in (None, "")]
    if not present and item.get("email") not in (None, ""):
        present = ["email"]
    if len(present) != 1:
        return ("Object must contain exactly one of external_id, user_alias, braze_id or email"
                f" (found {present or 'none'})")
    alias = item.get("user_alias")
    if alias is not None and not (isinstance(alias, dict) and isinstance(alias.get("alias_name"), str)
                                  and isinstance(alias.get("alias_label"), str)):
        return "user_alias must have string alias_name and alias_label"
    if array == "events":
        if not isinstance(item.get("name"), str) or not item["name"]:
            return "Event name is missing"
        if not isinstance(item.get("time"), str):
            return "Event time is missing or invalid"
    elif array == "purchases":
        if not isinstance(item.get("product_id"), str) or not item["product_id"]:
            return "Purchase product_id is missing"
        if not isinstance(item.get("currency"), str) or not _CURRENCY.fullmatch(item["currency"]):
            return "Purchase currency must be a three-letter ISO 4217 code"
        if isinstance(item.get("price"), bool) or not isinstance(item.get("price"), (int, float)):
            return "Purchase price must be a number"
        if not isinstance(item.get("time"), str):
            return "Purchase time is missing or invalid"
    return ""
