"""Google Analytics 4: Segment's e-commerce spec, pages and any other track as GA4 events, through
the Measurement Protocol.

Modules: presets.py (where fields come from, which events each action takes), fields.py (the
actions' fields), limits.py (GA4's limits, checked before sending), api.py (requests and answers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

import msgspec

from collector.destinations.actions.destination import Action, ActionDestination, ActionSettings
from collector.destinations.actions.settings import Secret
from collector.destinations.google_analytics_4.api import MAX_EVENTS, performer
from collector.destinations.google_analytics_4.fields import fields_of
from collector.destinations.google_analytics_4.presets import PRESETS

__all__ = ["GoogleAnalytics4", "GoogleAnalytics4Settings"]


class GoogleAnalytics4Settings(ActionSettings, tag="google_analytics_4", kw_only=True):
    api_secret: Annotated[Secret, msgspec.Meta(description="A Measurement Protocol API secret of the stream "
                                                           "(Admin > Data streams > the stream).")]
    measurement_id: Annotated[str, msgspec.Meta(description="A web stream's measurement id, G-XXXXXXXXXX.")] | None = None
    firebase_app_id: Annotated[str, msgspec.Meta(
        description="An app stream's Firebase app id, instead of measurement_id; its events need app_instance_id."
    )] | None = None
    debug_validation: Annotated[bool, msgspec.Meta(
        description="Also ask GA4's validator (/debug/mp/collect) about every request first, and dead-letter "
                    "the events it finds fault with: twice the requests.")] = False

    example: ClassVar[dict[str, Any]] = {
        "type": "google_analytics_4", "measurement_id": "G-XXXXXXXXXX", "api_secret": "${GA4_API_SECRET}",
    }

    def __post_init__(self) -> None:
        if bool(self.measurement_id) == bool(self.firebase_app_id):
            raise ValueError("set one of measurement_id (a web stream) or firebase_app_id (an app stream)")


def _action(name: str, title: str, description: str) -> Action:
    return Action(name, title, description, fields_of(name), performer(None if name == "custom_event" else name),
                  batch_size=MAX_EVENTS, batch_keys=("client_id", "app_instance_id", "user_id", "user_properties"))


ACTIONS: tuple[Action, ...] = (
    _action("page_view", "Page view", "A page_view event."),
    _action("custom_event", "Custom event", "An event named by the mapping (the track's event by default), "
            "the name made GA4-valid; params are mapped by hand (params field), as Segment does."),
    _action("search", "Search", "A search event."),
    _action("view_item_list", "View item list", "A view_item_list event: a list of products was seen."),
    _action("select_item", "Select item", "A select_item event: a product was chosen from a list."),
    _action("view_item", "View item", "A view_item event."),
    _action("add_to_cart", "Add to cart", "An add_to_cart event."),
    _action("remove_from_cart", "Remove from cart", "A remove_from_cart event."),
    _action("view_cart", "View cart", "A view_cart event."),
    _action("begin_checkout", "Begin checkout", "A begin_checkout event."),
    _action("add_payment_info", "Add payment info", "An add_payment_info event."),
    _action("purchase", "Purchase", "A purchase event; value is the order's total, else its revenue."),
    _action("refund", "Refund", "A refund event."),
    _action("view_promotion", "View promotion", "A view_promotion event; creative_name from properties.creative "
            "and creative_slot from properties.position (Segment puts the creative in creative_slot)."),
    _action("select_promotion", "Select promotion", "A select_promotion event, mapped as view_promotion."),
    _action("add_to_wishlist", "Add to wishlist", "An add_to_wishlist event."),
    _action("sign_up", "Sign up", "A sign_up event."),
    _action("login", "Login", "A login event."),
)


class GoogleAnalytics4(ActionDestination):
    """Send events to Google Analytics 4 with the Measurement Protocol.

    Events of one client (and user) travel together, up to 25 a request; the client id is the
    browser's GA cookie id when our analytics.js sent it. GA4 answers 2xx to everything and drops
    what breaks its limits without a word, so such events are dead-lettered here with the reason.
    """

    Config = GoogleAnalytics4Settings
    display_name = "Google Analytics 4"
    default_endpoint = "https://www.google-analytics.com"
    actions = ACTIONS
    presets = PRESETS
    config: GoogleAnalytics4Settings
    # Seconds since the epoch: GA4's 72-hour window is counted from here (tests set a fixed clock).
    clock: ClassVar[Callable[[], float]] = staticmethod(time.time)
