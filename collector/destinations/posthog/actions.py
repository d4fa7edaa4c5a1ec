"""PostHog's actions: their typed fields and the PostHog event each one builds.

Every action sends to ``/batch/``; they differ in the event's name and in which fields become
which of PostHog's reserved properties (``$set``, ``$anon_distinct_id``, ``$group_key`` ...).
A field's default is its mapping in the presets unless a preset says otherwise (presets.py).
"""

from __future__ import annotations

from typing import Any

from collector.destinations.actions.destination import Action
from collector.destinations.actions.fields import Field
from collector.destinations.posthog.api import EventShape, sender

__all__ = ["ACTIONS", "ALIAS", "EVENT", "GROUP", "IDENTIFY", "SHAPES", "first_of"]


def first_of(*paths: str) -> dict[str, Any]:
    """The first of these paths that is not blank (null, missing or ''), as a mapping directive."""
    spec: dict[str, Any] = {"@path": paths[-1]}
    for path in reversed(paths[:-1]):
        spec = {"@if": {"blank": {"@path": path}, "then": {"@path": path}, "else": spec}}
    return spec


def _common() -> dict[str, Field]:
    """The fields every action has: who, when, which event, and where it came from. (Built anew
    for each action: shared default objects would print as YAML anchors in the catalogue.)"""
    return {
        # Segment's PostHog action takes the userId only and fails every anonymous event; PostHog
        # keys an anonymous visitor by its anonymous id, and $identify merges it into the user.
        "distinct_id": Field("string", "The user: the userId, else the anonymousId (Segment's action drops "
                             "anonymous events).", required=True, default=first_of("$.userId", "$.anonymousId")),
        "timestamp": Field("datetime", "When it happened: the event's timestamp (Segment's action sends "
                           "receivedAt, which shifts events that reached the collector late).",
                           default={"@path": "$.timestamp"}),
        "uuid": Field("string", "PostHog's event id, for deduplication: the messageId when it is a UUID, "
                      "else a UUID derived from it (uuid5), the same on every retry.",
                      default={"@path": "$.messageId"}),
        "ip": Field("string", "$ip: the client's IP, for GeoIP.", default={"@path": "$.context.ip"}),
        "geoip_disable": Field("boolean", "$geoip_disable: true when the event carries no IP, so that PostHog "
                               "does not locate the user at the collector's address.",
                               default={"@if": {"exists": {"@path": "$.context.ip"}, "else": True}}),
        "user_agent": Field("string", "$raw_user_agent.", default={"@path": "$.context.userAgent"}),
        "lib": Field("string", "$lib: the library that sent the event.",
                     default={"@path": "$.context.library.name"}),
        "lib_version": Field("string", "$lib_version.", default={"@path": "$.context.library.version"}),
    }


_COMMON_PROPERTIES = {"ip": "$ip", "geoip_disable": "$geoip_disable", "user_agent": "$raw_user_agent",
                      "lib": "$lib", "lib_version": "$lib_version"}

EVENT_FIELDS: dict[str, Field] = {
    "event": Field("string", "The event's name in PostHog ($pageview, $screen, or the track's event).",
                   required=True, default={"@path": "$.event"}),
    **_common(),
    "properties": Field("object", "The event's properties.", default={"@path": "$.properties"}),
    "current_url": Field("string", "$current_url.", default={"@path": "$.context.page.url"}),
    "pathname": Field("string", "$pathname.", default={"@path": "$.context.page.path"}),
    "referrer": Field("string", "$referrer.", default={"@path": "$.context.page.referrer"}),
    "title": Field("string", "title: the page's title (a $pageview's)."),
    "screen_name": Field("string", "$screen_name (a $screen's)."),
    "set": Field("object", "$set: person properties this event sets."),
    "set_once": Field("object", "$set_once: person properties set only if not set yet."),
    "groups": Field("object", "$groups: the groups the event belongs to, {group type: group key}."),
    "process_person_profile": Field("boolean", "$process_person_profile: false sends a person-less "
                                    "event (cheaper; no person profile is created or updated). Not set: "
                                    "PostHog's default, which processes it."),
}

IDENTIFY_FIELDS: dict[str, Field] = {
    **_common(),
    "anon_distinct_id": Field("string", "$anon_distinct_id: the anonymous id whose person is merged into "
                              "the user's (sent when the identify has a userId).",
                              default={"@if": {"blank": {"@path": "$.userId"}, "then": {"@path": "$.anonymousId"}}}),
    "set": Field("object", "$set: the person's properties.", default={"@path": "$.traits"}),
    "set_once": Field("object", "$set_once: person properties set only if not set yet."),
}

GROUP_FIELDS: dict[str, Field] = {
    **_common(),
    "group_type": Field("string", "$group_type: the kind of group (PostHog allows five per project); Segment's "
                        "group call has none, so it is 'company' unless mapped.", required=True, default="company"),
    "group_key": Field("string", "$group_key: the group's id.", required=True, default={"@path": "$.groupId"}),
    "group_set": Field("object", "$group_set: the group's properties.", default={"@path": "$.traits"}),
}

ALIAS_FIELDS: dict[str, Field] = {
    **_common(),
    "alias": Field("string", "alias: the other id, merged into distinct_id's person (the previousId).",
                   required=True, default={"@path": "$.previousId"}),
}

# The PostHog event each action builds: its name, and the fields that become properties.
SHAPES = {
    "event": EventShape(None, (*_COMMON_PROPERTIES.items(), ("current_url", "$current_url"),
                               ("pathname", "$pathname"), ("referrer", "$referrer"), ("title", "title"),
                               ("screen_name", "$screen_name"), ("set", "$set"), ("set_once", "$set_once"),
                               ("groups", "$groups"), ("process_person_profile", "$process_person_profile"))),
    "identify": EventShape("$identify", (*_COMMON_PROPERTIES.items(), ("anon_distinct_id", "$anon_distinct_id"),
                                         ("set", "$set"), ("set_once", "$set_once"))),
    "group": EventShape("$groupidentify", (*_COMMON_PROPERTIES.items(), ("group_type", "$group_type"),
                                           ("group_key", "$group_key"), ("group_set", "$group_set"))),
    "alias": EventShape("$create_alias", (*_COMMON_PROPERTIES.items(), ("alias", "alias"))),
}

EVENT = Action(
    "event", "Send an event",
    "A track, page ($pageview) or screen ($screen) as a PostHog event; anonymous events included.",
    EVENT_FIELDS, sender(SHAPES["event"]), batch_size=1000,
)
IDENTIFY = Action(
    "identify", "Identify a user",
    "$identify: sets the person's properties and merges the anonymous visitor into the user.",
    IDENTIFY_FIELDS, sender(SHAPES["identify"]), batch_size=1000,
)
GROUP = Action(
    "group", "Identify a group",
    "$groupidentify: creates or updates a group and its properties.",
    GROUP_FIELDS, sender(SHAPES["group"]), batch_size=1000,
)
ALIAS = Action(
    "alias", "Alias",
    "$create_alias: merges the previous id's person into the user's.",
    ALIAS_FIELDS, sender(SHAPES["alias"]), batch_size=1000,
)

ACTIONS = (EVENT, IDENTIFY, GROUP, ALIAS)
