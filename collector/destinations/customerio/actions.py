"""Customer.io's actions: their typed fields and the Track API v2 entity each one builds.

Every action sends to ``/api/v2/batch``. A person is identified by ``id`` (the userId), else by
``email``; events, pages and screens of an anonymous visitor go by ``anonymous_id``.
"""

from __future__ import annotations

from typing import Any

from collector.destinations.actions.destination import Action
from collector.destinations.actions.fields import Field
from collector.destinations.customerio.api import identifiers, sender, unix_seconds

__all__ = ["ACTIONS", "AUDIENCE", "EVENT", "IDENTIFY", "MERGE", "OBJECT", "PAGE", "SCREEN"]

BATCH_SIZE = 1000  # entities per perform; requests are cut further by size (api.pack)

_NO_PERSON = "no person to send: the event has no userId (id) or email"
_NO_VISITOR = "no person to send: the event has no userId (id), email or anonymousId"


def _person(anonymous: bool) -> dict[str, Field]:
    """Who: built anew per action (shared default objects would print as YAML anchors)."""
    fields = {
        "person_id": Field("string", "The person's id in Customer.io: the userId.", default={"@path": "$.userId"}),
        "email": Field("string", "The person's email, their identifier when there is no userId.",
                       default={"@if": {"exists": {"@path": "$.traits.email"}, "then": {"@path": "$.traits.email"},
                                        "else": {"@path": "$.context.traits.email"}}}),
        "anonymous_id": Field("string", "The anonymousId: the identifier of an anonymous visitor's events"
                              + ("." if anonymous else "; sent as an attribute, so that Customer.io merges "
                                 "the visitor's earlier events into the person."),
                              default={"@path": "$.anonymousId"}),
        "timestamp": Field("datetime", "When it happened (sent as Unix seconds).", default={"@path": "$.timestamp"}),
    }
    return fields


def _stamped(entity: dict, payload: dict) -> dict:
    seconds = unix_seconds(payload.get("timestamp"))
    if seconds is not None:
        entity["timestamp"] = seconds
    return entity


# -- identify -----------------------------------------------------------------------------------

IDENTIFY_FIELDS: dict[str, Field] = {
    **_person(anonymous=False),
    "attributes": Field("object", "The person's attributes: the traits.", default={"@path": "$.traits"}),
    "created_at": Field("datetime", "created_at attribute (Unix seconds), from traits.createdAt or created_at.",
                        default={"@if": {"exists": {"@path": "$.traits.createdAt"},
                                         "then": {"@path": "$.traits.createdAt"},
                                         "else": {"@path": "$.traits.created_at"}}}),
}


def _identify_entity(payload: dict) -> tuple[dict | None, str]:
    ids = identifiers(payload, anonymous=False)
    if ids is None:
        return None, _NO_PERSON
    attributes = dict(payload.get("attributes") or {})
    attributes.pop("createdAt", None)
    created_at = unix_seconds(payload.get("created_at"))
    if created_at is not None:
        attributes["created_at"] = created_at
    if payload.get("email") and "id" in ids:
        attributes["email"] = payload["email"]
    if payload.get("anonymous_id"):
        attributes["anonymous_id"] = payload["anonymous_id"]
    entity = {"type": "person", "action": "identify", "identifiers": ids, "attributes": attributes}
    return _stamped(entity, payload), ""


# -- event, page, screen ------------------------------------------------------------------------

EVENT_FIELDS: dict[str, Field] = {
    **_person(anonymous=True),
    "name": Field("string", "The event's name.", required=True, default={"@path": "$.event"}),
    "event_id": Field("string", "The event's id, Customer.io's deduplication key: the messageId.",
                      default={"@path": "$.messageId"}),
    "data": Field("object", "The event's data: the properties.", default={"@path": "$.properties"}),
}
PAGE_FIELDS: dict[str, Field] = {
    **EVENT_FIELDS,
    "name": Field("string", "The page's URL: properties.url, else context.page.url.", required=True,
                  default={"@if": {"exists": {"@path": "$.properties.url"}, "then": {"@path": "$.properties.url"},
                                   "else": {"@path": "$.context.page.url"}}}),
}
SCREEN_FIELDS: dict[str, Field] = {
    **EVENT_FIELDS,
    "name": Field("string", "The screen's name.", required=True, default={"@path": "$.name"}),
}


def _event_builder(action: str):
    def build(payload: dict) -> tuple[dict | None, str]:
        ids = identifiers(payload, anonymous=True)
        if ids is None:
            return None, _NO_VISITOR
        entity: dict[str, Any] = {"type": "person", "action": action, "identifiers": ids, "name": payload["name"]}
        if payload.get("event_id"):
            entity["id"] = payload["event_id"]
        data = payload.get("data")
        if data is not None:
            entity["attributes"] = data
        return _stamped(entity, payload), ""

    return build


# -- object (group) -----------------------------------------------------------------------------

OBJECT_FIELDS: dict[str, Field] = {
    "object_id": Field("string", "The object's id: the groupId.", required=True, default={"@path": "$.groupId"}),
    "object_type_id": Field("string", "The object type's id in Customer.io (Data & Integrations > Objects); "
                            "1 is the first type a workspace creates.", required=True, default="1"),
    "attributes": Field("object", "The object's attributes: the group's traits (Segment reads "
                        "traits.objectAttributes, which no Segment group call carries).", default={"@path": "$.traits"}),
    "person_id": Field("string", "The person related to the object: the userId.", default={"@path": "$.userId"}),
    "email": Field("string", "The related person's email, when there is no userId.",
                   default={"@path": "$.context.traits.email"}),
    "timestamp": Field("datetime", "When it happened (sent as Unix seconds).", default={"@path": "$.timestamp"}),
}


def _object_entity(payload: dict) -> tuple[dict | None, str]:
    entity: dict[str, Any] = {
        "type": "object", "action": "identify",
        "identifiers": {"object_type_id": payload["object_type_id"], "object_id": payload["object_id"]},
        "attributes": payload.get("attributes") or {},
    }
    person = identifiers(payload, anonymous=False)
    if person is not None:
        entity["cio_relationships"] = [{"identifiers": person}]
    return _stamped(entity, payload), ""


# -- merge (alias) ------------------------------------------------------------------------------

MERGE_FIELDS: dict[str, Field] = {
    "primary_id": Field("string", "The person that remains: the userId.", required=True, default={"@path": "$.userId"}),
    "secondary_id": Field("string", "The person merged into it and deleted: the previousId.", required=True,
                          default={"@path": "$.previousId"}),
    "timestamp": Field("datetime", "When it happened (sent as Unix seconds).", default={"@path": "$.timestamp"}),
}


def _merge_entity(payload: dict) -> tuple[dict | None, str]:
    entity = {"type": "person", "action": "merge", "primary": {"id": payload["primary_id"]},
              "secondary": {"id": payload["secondary_id"]}}
    return _stamped(entity, payload), ""


# -- audience -----------------------------------------------------------------------------------

AUDIENCE_FIELDS: dict[str, Field] = {
    **_person(anonymous=False),
    "audience_key": Field("string", "The audience, the person attribute set: properties.audience_key.",
                          required=True, default={"@path": "$.properties.audience_key"}),
    "in_audience": Field("boolean", "true when the person entered the audience, false when they left.",
                         required=True),
}


def _audience_entity(payload: dict) -> tuple[dict | None, str]:
    ids = identifiers(payload, anonymous=False)
    if ids is None:
        return None, _NO_PERSON
    entity = {"type": "person", "action": "identify", "identifiers": ids,
              "attributes": {payload["audience_key"]: payload["in_audience"]}}
    return _stamped(entity, payload), ""


IDENTIFY = Action("identify", "Identify a person",
                  "Creates or updates a person with the traits as attributes.",
                  IDENTIFY_FIELDS, sender(_identify_entity), batch_size=BATCH_SIZE)
EVENT = Action("event", "Track an event",
               "A person event (an anonymous visitor's by anonymous_id), with the messageId as its id.",
               EVENT_FIELDS, sender(_event_builder("event")), batch_size=BATCH_SIZE)
PAGE = Action("page", "Track a page view", "A person page view, named by its URL.",
              PAGE_FIELDS, sender(_event_builder("page")), batch_size=BATCH_SIZE)
SCREEN = Action("screen", "Track a screen view", "A person screen view, named by the screen.",
                SCREEN_FIELDS, sender(_event_builder("screen")), batch_size=BATCH_SIZE)
OBJECT = Action("object", "Identify an object",
                "Creates or updates an object (a group) and relates the person to it.",
                OBJECT_FIELDS, sender(_object_entity), batch_size=BATCH_SIZE)
MERGE = Action("merge", "Merge people",
               "Merges the secondary person into the primary (Customer.io deletes the secondary).",
               MERGE_FIELDS, sender(_merge_entity), batch_size=BATCH_SIZE)
AUDIENCE = Action("audience", "Sync audience membership",
                  "Sets the person attribute named by the audience to true (entered) or false (exited).",
                  AUDIENCE_FIELDS, sender(_audience_entity), batch_size=BATCH_SIZE)

ACTIONS = (IDENTIFY, EVENT, PAGE, SCREEN, OBJECT, MERGE, AUDIENCE)
