"""Meta's Conversions API: server events for a pixel, and Custom Audience changes.

The presets send Segment's e-commerce events as Meta standard events (Order Completed -> Purchase,
Checkout Started -> InitiateCheckout, Product Added -> AddToCart, Product Viewed -> ViewContent,
Products Searched -> Search), page calls as PageView and every other track as a custom event, with
``event_id`` = messageId so that Meta merges them with the browser pixel's; Engage's Audience
Entered / Exited add users to and remove them from Custom Audiences. How each field is filled:
fields.py and presets.py; what Meta would refuse, checked before sending: events.py; the requests
and Meta's answers: api.py.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Callable, ClassVar, Literal

import msgspec

from collector.destinations.actions.auth import bearer
from collector.destinations.actions.destination import Action, ActionDestination, ActionSettings
from collector.destinations.actions.settings import Secret
from collector.destinations.facebook_conversions.api import change_audience, send_events
from collector.destinations.facebook_conversions.fields import ACTION_SOURCES, AUDIENCE_FIELDS, EVENT_FIELDS
from collector.destinations.facebook_conversions.presets import PRESETS

__all__ = ["FacebookConversions", "FacebookConversionsSettings"]

# Meta's events endpoint takes at most 1,000 events a request, its users endpoint 10,000 users.
MAX_EVENTS = 1000
MAX_AUDIENCE_USERS = 10000

ObjectId = Annotated[str, msgspec.Meta(pattern=r"^[0-9]+$")]


class FacebookConversionsSettings(ActionSettings, tag="facebook_conversions", kw_only=True):
    pixel_id: Annotated[int | ObjectId, msgspec.Meta(description="The pixel (dataset) id the events are for")]
    access_token: Annotated[Secret, msgspec.Meta(
        description="A system user's access token with ads_management on the pixel (and the audiences)")]
    test_event_code: Annotated[str | None, msgspec.Meta(
        description="Events Manager's test code (TEST...): the events show under Test events only")] = None
    api_version: Annotated[str, msgspec.Meta(pattern=r"^v[0-9]+\.[0-9]+$",
                                             description="The Graph API version in the path")] = "v24.0"
    action_source: Annotated[Literal[ACTION_SOURCES], msgspec.Meta(  # type: ignore[valid-type]
        description="Where events happened when not a browser's (a browser's event, with a page URL and a "
                    "user agent, is website)")] = "other"
    audiences: Annotated[dict[str, int | ObjectId], msgspec.Meta(
        description="Segment audience key -> Custom Audience id, for Audience Entered / Exited")] = {}

    example: ClassVar[dict[str, Any]] = {
        "type": "facebook_conversions",
        "pixel_id": "1234567890123456",
        "access_token": "${META_ACCESS_TOKEN}",
        "audiences": {"high_value_customers": "23850000000000001"},
    }


EVENT = Action(
    "event", "Send a server event",
    "A Conversions API event (standard or custom) for the pixel; user_data hashed by Meta's rules.",
    EVENT_FIELDS, send_events, batch_size=MAX_EVENTS,
)
AUDIENCE = Action(
    "audience", "Change a Custom Audience",
    "Add a user to, or remove them from, a Custom Audience (customer list), identifiers hashed.",
    AUDIENCE_FIELDS, change_audience, batch_size=MAX_AUDIENCE_USERS,
    batch_keys=("audience_id", "audience_key", "operation"),
)


class FacebookConversions(ActionDestination):
    """Send events to Meta's Conversions API and users to Custom Audiences.

    A pixel's server events (Purchase, AddToCart, PageView, custom ...) de-duplicated with the
    browser pixel by event_id, and Engage audiences as Custom Audience adds and removes."""

    Config = FacebookConversionsSettings
    display_name = "Facebook Conversions API"
    default_endpoint = "https://graph.facebook.com"
    actions = (EVENT, AUDIENCE)
    presets = PRESETS
    config: FacebookConversionsSettings
    # The clock that says how old an event is (Meta refuses events more than 7 days old).
    clock: ClassVar[Callable[[], float]] = staticmethod(time.time)

    def headers(self) -> dict[str, str]:
        return {"Authorization": bearer(self.config.access_token)}
