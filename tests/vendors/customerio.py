"""Customer.io Track API v2 (docs/vendors/crm-messaging.md §11, §13).

``POST /api/v2/batch`` takes ``{"batch": [entity ...]}``, ``POST /api/v2/entity`` one entity; both
with HTTP Basic ``site_id:api_key``. An entity is ``{"type": "person"|"object", "action", ...}``:

- person: ``identifiers`` holds exactly one of ``id``, ``email``, ``cio_id`` (``anonymous_id`` is
  allowed instead for ``event``, ``page`` and ``screen``); ``event``/``page``/``screen`` need a
  ``name``; ``merge`` takes ``primary`` and ``secondary`` identifiers instead; ``attributes`` is an
  object; ``timestamp`` is integer Unix seconds;
- object: ``identifiers`` ``{object_type_id, object_id}`` (strings), action ``identify``;
  ``cio_relationships`` a list of ``{"identifiers": {...person...}}``.

Answers:
- 401 without or with wrong Basic credentials (body ``{"meta": {"error": ...}}``);
- 400 ``{"meta": {"error"}}`` for a body that is not ``{"batch": [...]}`` (or not an object for
  ``/entity``), and for a batch body over 500 KB;
- 200 ``{}`` when every entity is valid; **207** ``{"errors": [{"batch_index", "reason", "field"}]}``
  when some are not (the valid ones are accepted), an entity over 32 KB among them;
- 429 / 5xx only when scripted with ``fail_next``.

``accepted`` holds the entities accepted, as sent; ``people`` id/email -> merged attributes;
``objects`` (type id, object id) -> attributes; ``relationships`` (type id, object id, person);
``merges`` (primary, secondary).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.vendors.base import Answer, Recorded, VendorDouble

BATCH_MAX_BYTES = 500 * 1024
ENTITY_MAX_BYTES = 32 * 1024
PERSON_KEYS = ("id", "email", "cio_id")
PERSON_ACTIONS = ("identify", "event", "page", "screen", "delete", "merge")
ANONYMOUS_ACTIONS = ("event", "page", "screen")
NAMED_ACTIONS = ("event", "page", "screen")


class CustomerIODouble(VendorDouble):
    vendor = "customerio"

    def __init__(self, site_id: str = "site-test", api_key: str = "cio-test-key") -> None:
        super().__init__()
        self.site_id = site_id
        self.api_key = api_key
        self.people: dict[str, dict[str, Any]] = {}
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.relationships: list[tuple[str, str, str]] = []
        self.merges: list[tuple[dict, dict]] = []
        self.refused: list[tuple[dict, str]] = []  # (entity, reason) answered in a 207

    def reset(self) -> None:
        super().reset()
        self.people.clear()
        self.objects.clear()
        self.relationships.clear()
        self.merges.clear()
        self.refused.clear()

    def routes(self):
        return [("POST", "/api/v2/batch", self._batch), ("POST", "/api/v2/entity", self._entity)]

    def failure_body(self, status: int, call: Recorded) -> Any:
        return {"meta": {"error": {401: "Unauthorized request", 429: "Too Many Requests"}.get(status, "Internal Server Error")}}

    def entities(self, action: str | None = None) -> list[dict]:
        return [e for e in list(self.accepted) if action is None or e.get("action") == action]

    # -- routes

    def _batch(self, call: Recorded) -> Answer:
        refusal = self._refusal(call)
        if refusal is not None:
            return refusal
        if len(call.decoded) > BATCH_MAX_BYTES:
            return _error(400, f"batch request body is {len(call.decoded)} bytes, over the 500 KB limit")
        body = call.json
        if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
            return _error(400, "request body must be an object with a batch array")
        errors = []
        for index, entity in enumerate(body["batch"]):
            problem = _problem(entity)
            if problem is None:
                self._ingest(entity)
            else:
                field, reason = problem
                self.refused.append((entity, reason))
                errors.append({"batch_index": index, "reason": reason, "field": field})
        if errors:
            return Answer(207, {"errors": errors})
        return Answer(200, {})

    def _entity(self, call: Recorded) -> Answer:
        refusal = self._refusal(call)
        if refusal is not None:
            return refusal
        problem = _problem(call.json)
        if problem is not None:
            return _error(400, f"{problem[0]}: {problem[1]}")
        self._ingest(call.json)
        return Answer(200, {})

    def _refusal(self, call: Recorded) -> Answer | None:
        expected = "Basic " + base64.b64encode(f"{self.site_id}:{self.api_key}".encode()).decode()
        if call.headers.get("Authorization") != expected:
            return _error(401, "Unauthorized request")
        if call.json is None:
            return _error(400, f"invalid JSON: {call.json_error}")
        return None

    def _ingest(self, entity: dict) -> None:
        self.accepted.append(entity)
        if entity["type"] == "object":
            ids = entity["identifiers"]
            key = (ids["object_type_id"], ids["object_id"])
            self.objects.setdefault(key, {}).update(entity.get("attributes") or {})
            for relation in entity.get("cio_relationships") or []:
                person = next(iter(relation["identifiers"].values()))
                self.relationships.append((key[0], key[1], str(person)))
            return
        action = entity["action"]
        if action == "merge":
            self.merges.append((entity["primary"], entity["secondary"]))
        elif action == "identify":
            ids = entity["identifiers"]
            person = str(next(iter(ids.values())))
            self.people.setdefault(person, {}).update(entity.get("attributes") or {})


def _error(status: int, message: str) -> Answer:
    return Answer(status, {"meta": {"error": message}})


def _problem(entity: Any) -> tuple[str, str] | None:
    """(field, reason) for an entity Customer.io refuses, or None."""
    if not isinstance(entity, dict):
        return "", "entity must be an object"
    if len(json.dumps(entity, separators=(",", ":")).encode()) > ENTITY_MAX_BYTES:
        return "", "entity is larger than 32 KB"
    kind = entity.get("type")
    attributes = entity.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        return "attributes", "attributes must be an object"
    timestamp = entity.get("timestamp")
    if timestamp is not None and (not isinstance(timestamp, int) or isinstance(timestamp, bool)):
        return "timestamp", "timestamp must be an integer (Unix seconds)"
    if kind == "object":
        return _object_problem(entity)
    if kind != "person":
        return "type", f"unknown type {kind!r}"
    action = entity.get("action")
    if action not in PERSON_ACTIONS:
        return "action", f"unknown person action {action!r}"
    if action == "merge":
        for side in ("primary", "secondary"):
            if _person_problem(entity.get(side), anonymous=False):
                return side, f"{side} must hold exactly one of id, email, cio_id"
        return None
    problem = _person_problem(entity.get("identifiers"), anonymous=action in ANONYMOUS_ACTIONS)
    if problem:
        return "identifiers", problem
    if action in NAMED_ACTIONS and not (isinstance(entity.get("name"), str) and entity["name"]):
        return "name", f"a {action} needs a name"
    return None


def _person_problem(identifiers: Any, anonymous: bool) -> str | None:
    if not isinstance(identifiers, dict):
        return "identifiers must be an object"
    allowed = PERSON_KEYS + (("anonymous_id",) if anonymous else ())
    keys = [k for k in identifiers if k in allowed and identifiers[k] not in (None, "")]
    if set(identifiers) - set(allowed):
        return f"unknown identifiers {sorted(set(identifiers) - set(allowed))}"
    if len(keys) != 1:
        return f"identifiers must hold exactly one of {', '.join(allowed)}"
    return None


def _object_problem(entity: dict) -> tuple[str, str] | None:
    if entity.get("action") != "identify":
        return "action", f"unknown object action {entity.get('action')!r}"
    ids = entity.get("identifiers")
    if not isinstance(ids, dict) or not all(isinstance(ids.get(k), str) and ids[k] for k in ("object_type_id", "object_id")):
        return "identifiers", "object identifiers need object_type_id and object_id (strings)"
    relations = entity.get("cio_relationships")
    if relations is not None:
        if not isinstance(relations, list):
            return "cio_relationships", "cio_relationships must be a list"
        for relation in relations:
            if not isinstance(relation, dict) or _person_problem(relation.get("identifiers"), anonymous=False):
                return "cio_relationships", "a relationship needs identifiers with one of id, email, cio_id"
    return None
