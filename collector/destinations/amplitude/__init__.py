"""Send events, purchases, user properties, groups and user mappings to Amplitude.

Track, page and screen calls become events of the HTTP V2 API (``/2/httpapi``, or ``/batch``
with ``use_batch_endpoint``), "Order Completed" an event with revenue plus one "Product Purchased"
event per product, identify calls user properties through ``/identify``; group calls (``/identify``
then ``/groupidentify``) and alias calls (``/usermap``) once mapped. See api.py for how Amplitude's
answers are read, fields.py for where the presets differ from Segment's.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec

from collector.destinations.actions.destination import (
    Action,
    ActionContext,
    ActionDestination,
    ActionItem,
    ActionSettings,
)
from collector.destinations.actions.settings import Secret
from collector.destinations.amplitude import events
from collector.destinations.amplitude.api import FORM_MAX_RECORDS, MAX_EVENTS, send_events, send_form
from collector.destinations.amplitude.fields import (
    EVENT_FIELDS,
    GROUP_FIELDS,
    IDENTIFY_FIELDS,
    MAP_USER_FIELDS,
    PURCHASE_FIELDS,
)
from collector.destinations.amplitude.presets import PRESETS
from collector.destinations.base import Outcome

HOSTS = {"us": "https://api2.amplitude.com", "eu": "https://api.eu.amplitude.com"}
# /usermap lives on another host in the US.
USERMAP_URLS = {"us": "https://api.amplitude.com/usermap", "eu": "https://api.eu.amplitude.com/usermap"}


class AmplitudeSettings(ActionSettings, tag="amplitude", kw_only=True):
    api_key: Annotated[Secret, msgspec.Meta(description="The project's API key (Settings > Projects).")]
    secret_key: Annotated[Secret, msgspec.Meta(
        description="The project's secret key: for Amplitude's user deletion API (not used yet).")] | None = None
    region: Annotated[Literal["us", "eu"], msgspec.Meta(
        description="Where the project lives: us (api2.amplitude.com) or eu (api.eu.amplitude.com).")] = "us"
    use_batch_endpoint: Annotated[bool, msgspec.Meta(
        description="Send events to /batch (20 MB, 1,000 events a second per user or device) instead of "
                    "/2/httpapi (1 MB, 30 a second).")] = False
    min_id_length: Annotated[int, msgspec.Meta(
        ge=1, description="The shortest user_id or device_id Amplitude accepts (its default: 5).")] | None = None

    example: ClassVar[dict[str, Any]] = {
        "type": "amplitude",
        "api_key": "${AMPLITUDE_API_KEY}",
        "secret_key": "${AMPLITUDE_SECRET_KEY}",
        "region": "us",
    }


def _event_label(item: ActionItem) -> str:
    return f"the event {item.payload.get('event_type')!r}"


async def log_event(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
    return await send_events(ctx, [[events.event(i.payload)] for i in items], [_event_label(i) for i in items])


async def log_purchase(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
    return await send_events(ctx, [events.purchase_events(i.payload) for i in items],
                             [_event_label(i) for i in items])


def _user_label(item: ActionItem) -> str:
    payload = item.payload
    return f"the identification of {payload.get('user_id') or payload.get('device_id')!r}"


async def identify_user(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
    return await send_form(ctx, "/identify", "identification",
                           [events.identification(i.payload) for i in items], [_user_label(i) for i in items])


async def group_identify_user(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
    """The user joins the group (/identify), then the group gets its properties (/groupidentify)
    for the users that joined."""
    labels = [_user_label(i) for i in items]
    joined = await send_form(ctx, "/identify", "identification",
                             [events.group_association(i.payload) for i in items], labels)
    ready = [n for n, outcome in enumerate(joined) if outcome.kind == "ok"]
    if ready:
        described = await send_form(ctx, "/groupidentify", "identification",
                                    [events.group_identification(items[n].payload) for n in ready],
                                    [f"the group {items[n].payload['group_value']!r}" for n in ready])
        for n, outcome in zip(ready, described):
            joined[n] = outcome
    return joined


async def map_user(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
    records = [{"user_id": i.payload["user_id"], "global_user_id": i.payload["global_user_id"]} for i in items]
    return await send_form(ctx, USERMAP_URLS[ctx.settings.region], "mapping", records,
                           [f"the mapping of {i.payload['user_id']!r}" for i in items])


ACTIONS = (
    Action("log_event", "Log Event",
           "Send an event to Amplitude's HTTP V2 API, with insert_id = messageId (Segment sends none).",
           EVENT_FIELDS, log_event, batch_size=MAX_EVENTS),
    Action("log_purchase", "Log Purchase",
           "Send an order with its revenue, plus one 'Product Purchased' event per product.",
           PURCHASE_FIELDS, log_purchase, batch_size=MAX_EVENTS),
    Action("identify_user", "Identify User",
           "Set user properties (and the user ID of a device) through Amplitude's Identify API.",
           IDENTIFY_FIELDS, identify_user, batch_size=FORM_MAX_RECORDS),
    Action("group_identify_user", "Group Identify User",
           "Put the user in a group and set the group's properties (Amplitude's Accounts add-on).",
           GROUP_FIELDS, group_identify_user, batch_size=FORM_MAX_RECORDS),
    Action("map_user", "Map User",
           "Map a user ID to a global user ID with Amplitude's User Mapping API (Portfolio add-on).",
           MAP_USER_FIELDS, map_user, batch_size=FORM_MAX_RECORDS),
)


class Amplitude(ActionDestination):
    """Send events, purchases, user and group properties and user mappings to Amplitude."""

    Config = AmplitudeSettings
    display_name = "Amplitude"
    default_endpoint = HOSTS["us"]
    actions = ACTIONS
    presets = PRESETS
    config: AmplitudeSettings

    def vendor_endpoint(self) -> str:
        return HOSTS[self.config.region]


__all__ = ["ACTIONS", "Amplitude", "AmplitudeSettings"]
