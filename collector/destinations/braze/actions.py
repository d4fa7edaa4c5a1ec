"""Braze's actions and their fields, after Segment's Braze Cloud Mode (Actions) destination
(``updateUserProfile``, ``trackEvent``, ``trackPurchase``), with these changes:

- An anonymous user (no userId) is identified by the ``user_alias`` {alias_name: anonymousId,
  alias_label: "anonymous_id"}; Segment's ``user_alias`` has no default, so Braze refuses its
  anonymous events ("exactly one of external_id, user_alias, braze_id").
- ``time`` is the event's ``timestamp``; Segment sends ``receivedAt``, which shifts events that
  reached the collector late.
- The identify's custom attributes are the traits without those already sent as Braze's standard
  attributes (firstName, lastName, email, phone, gender, birthday, avatar, address); Segment sends
  them twice. ``gender`` is turned into Braze's codes (M, F, O, N, P, U).
- ``sync_audience`` (not in Segment's Braze action destination) sets one boolean custom attribute
  per audience, so that an audience computed upstream can be used as a Braze segment.
"""

from __future__ import annotations

from typing import Any

from collector.destinations.actions.destination import Action
from collector.destinations.actions.fields import Field
from collector.destinations.braze import api

__all__ = ["ACTIONS", "ATTRIBUTE_FIELDS", "AUDIENCE_FIELDS", "EVENT_FIELDS", "PURCHASE_FIELDS", "first_of"]


def first_of(*paths: str) -> dict[str, Any]:
    """The first of these paths that is not blank (null, missing or ''), as a mapping directive."""
    spec: dict[str, Any] = {"@path": paths[-1]}
    for path in reversed(paths[:-1]):
        spec = {"@if": {"blank": {"@path": path}, "then": {"@path": path}, "else": spec}}
    return spec


def _identity() -> dict[str, Field]:
    return {
        "external_id": Field("string", "The user's external_id: the userId. Sent when present, instead of the "
                             "alias and the braze_id.", default={"@path": "$.userId"}),
        "user_alias": Field("object", "Identifies a user without external_id: alias_name is the anonymousId, "
                            "alias_label 'anonymous_id'.", properties={
                                "alias_name": Field("string", "The alias."),
                                "alias_label": Field("string", "The kind of alias."),
                            }, default={"alias_name": {"@path": "$.anonymousId"}, "alias_label": "anonymous_id"}),
        "braze_id": Field("string", "Braze's own user id, used when there is no external_id.",
                          default={"@path": "$.context.traits.braze_id"}),
        "update_existing_only": Field("boolean", "Sent as _update_existing_only: true updates known profiles only "
                                      "(false is needed to create an alias-only profile).", default=False),
    }


_IDENTITY = _identity()

ATTRIBUTE_FIELDS: dict[str, Field] = {
    **_IDENTITY,
    "first_name": Field("string", "first_name.", default={"@path": "$.traits.firstName"}),
    "last_name": Field("string", "last_name.", default={"@path": "$.traits.lastName"}),
    "email": Field("string", "email.", default={"@path": "$.traits.email"}),
    "phone": Field("string", "phone.", default={"@path": "$.traits.phone"}),
    "gender": Field("string", "gender, as Braze's code: M, F, O (other), N (not applicable), P (prefer not to "
                    "say), U (unknown); 'male', 'female' ... are converted.", default={"@path": "$.traits.gender"}),
    "dob": Field("string", "Date of birth (YYYY-MM-DD; a longer ISO time is cut to its date).",
                 default={"@path": "$.traits.birthday"}),
    "home_city": Field("string", "home_city.", default={"@path": "$.traits.address.city"}),
    "country": Field("string", "country (ISO 3166-1 alpha-2).",
                     default=first_of("$.traits.address.country", "$.context.location.country")),
    "image_url": Field("string", "image_url.", default={"@path": "$.traits.avatar"}),
    "custom_attributes": Field("object", "Custom attributes: the traits, without those sent above.",
                               default={"@path": "$.traits"}),
}

EVENT_FIELDS: dict[str, Field] = {
    **_IDENTITY,
    "name": Field("string", "The event's name.", required=True, default={"@path": "$.event"}),
    "time": Field("datetime", "When it happened: the event's timestamp.", required=True,
                  default={"@path": "$.timestamp"}),
    "properties": Field("object", "The event's properties.", default={"@path": "$.properties"}),
}

PURCHASE_FIELDS: dict[str, Field] = {
    **_IDENTITY,
    "time": Field("datetime", "When it happened: the event's timestamp.", required=True,
                  default={"@path": "$.timestamp"}),
    "currency": Field("string", "The order's currency (ISO 4217); USD when absent, as Segment.",
                      default={"@path": "$.properties.currency"}),
    "products": Field("object", "The products: one Braze purchase each (product_id, else sku; price; quantity, "
                      "1 when absent).", multiple=True, required=True, default={"@path": "$.properties.products"}),
    "properties": Field("object", "Properties of every purchase: the order's, without its products.",
                        default={"@path": "$.properties"}),
}

AUDIENCE_FIELDS: dict[str, Field] = {
    **_IDENTITY,
    "audience_key": Field("string", "The audience: the name of the boolean custom attribute set.", required=True,
                          default=first_of("$.properties.audience_key", "$.context.personas.computation_key")),
    "in_audience": Field("boolean", "In the audience (true) or not. When unmapped, the identify's trait named "
                         "like the audience is read."),
}

ACTIONS = (
    Action("update_user_profile", "Update User Profile", "Set a user's standard and custom attributes.",
           ATTRIBUTE_FIELDS, api.sender("attributes", api.attribute_objects), batch_size=api.MAX_OBJECTS),
    Action("track_event", "Track Event", "Record a custom event.",
           EVENT_FIELDS, api.sender("events", api.event_objects), batch_size=api.MAX_OBJECTS),
    Action("track_purchase", "Track Purchase", "Record one purchase per product of an order.",
           PURCHASE_FIELDS, api.sender("purchases", api.purchase_objects), batch_size=api.MAX_OBJECTS),
    Action("sync_audience", "Sync Audience", "Set a boolean custom attribute named after the audience: true "
           "when the user enters it, false when they leave.",
           AUDIENCE_FIELDS, api.sender("attributes", api.audience_objects), batch_size=api.MAX_OBJECTS),
)
