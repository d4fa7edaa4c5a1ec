"""Send events to Mixpanel: events through /import, user profiles through /engage, group profiles
through /groups.

Authentication on /import is HTTP Basic: a service account (``service_account_user:secret`` and
``?project_id=``), else the project's API secret, else its project token (which Mixpanel also
takes); /engage and /groups carry the project token in each update.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec

from collector.config.units import ByteSize, Duration
from collector.destinations.actions.auth import basic_auth
from collector.destinations.actions.destination import Action, ActionDestination, ActionSettings
from collector.destinations.base import BatchConfig, RetryConfig
from collector.destinations.mixpanel import api, fields
from collector.destinations.mixpanel.presets import PRESETS

HOSTS = {"us": "https://api.mixpanel.com", "eu": "https://api-eu.mixpanel.com", "in": "https://api-in.mixpanel.com"}


def _about(text: str, secret: bool = False) -> msgspec.Meta:
    return msgspec.Meta(description=text, extra={"secret": True} if secret else None)


class MixpanelSettings(ActionSettings, tag="mixpanel", kw_only=True):
    project_token: Annotated[str, _about("The project's token (Project Settings); /engage and /groups send it")]
    api_secret: Annotated[str | None, _about("The project's API secret, for /import (without it or a service "
                                             "account, the project token authenticates /import)", secret=True)] = None
    region: Annotated[Literal["us", "eu", "in"], _about("The project's data residency: api, api-eu or "
                                                        "api-in.mixpanel.com")] = "us"
    service_account_user: Annotated[str | None, _about("A service account's username, for /import")] = None
    service_account_secret: Annotated[str | None, _about("That service account's secret", secret=True)] = None
    project_id: Annotated[str | None, _about("The project's id, which /import needs with a service account")] = None
    # Mixpanel takes 2,000 events a request; without Retry-After on its 429, back off from 2 s to
    # 60 s as it advises.
    batch: BatchConfig = msgspec.field(
        default_factory=lambda: BatchConfig(max_events=2000, max_bytes=ByteSize(8 * 1024 * 1024)))
    retry: RetryConfig = msgspec.field(
        default_factory=lambda: RetryConfig(initial_backoff=Duration(2), max_backoff=Duration(60)))

    example: ClassVar[dict[str, Any]] = {
        "type": "mixpanel",
        "project_token": "${MIXPANEL_PROJECT_TOKEN}",
        "api_secret": "${MIXPANEL_API_SECRET}",
        "region": "eu",
    }

    def __post_init__(self) -> None:
        service_account = (self.service_account_user, self.service_account_secret, self.project_id)
        if self.service_account_user is not None or self.service_account_secret is not None:
            missing = [name for name, value in zip(("service_account_user", "service_account_secret", "project_id"),
                                                   service_account) if not value]
            if missing:
                raise ValueError(f"a service account needs service_account_user, service_account_secret and "
                                 f"project_id; missing: {', '.join(missing)}")


class Mixpanel(ActionDestination):
    """Send events to Mixpanel's /import API, identifies to user profiles and groups to group
    profiles."""

    Config = MixpanelSettings
    display_name = "Mixpanel"
    default_endpoint = HOSTS["us"]
    config: MixpanelSettings

    actions = (
        Action("track_event", "Track Event",
               "Send an event to Mixpanel (/import?strict=1). Its $insert_id always fits Mixpanel's format: a "
               "messageId longer than 36 characters is hashed (Segment sends it as it is, and Mixpanel refuses it).",
               fields.EVENT, api.track_events, batch_size=api.MAX_IMPORT_EVENTS),
        Action("track_purchase", "Track Purchase",
               "Send an order to Mixpanel, with a \"Product Purchased\" event per product. Each product's "
               "$insert_id hashes the messageId and the product's number into Mixpanel's 36 characters (Segment's "
               "index-prefixed ids overflow them).",
               fields.PURCHASE, api.track_purchases, batch_size=api.MAX_IMPORT_EVENTS),
        Action("identify_user", "Identify User",
               "Merge the anonymous id into the user id ($identify) and set the user's profile properties.",
               fields.IDENTIFY, api.identify_users, batch_size=api.MAX_ENGAGE_UPDATES),
        Action("group_identify_user", "Group Identify User", "Set a group profile's properties.",
               fields.GROUP, api.identify_groups, batch_size=api.MAX_GROUP_UPDATES),
        Action("alias", "Alias", "Merge a new distinct id into an existing one ($create_alias; Original and "
                                 "Legacy ID management only).", fields.ALIAS, api.create_aliases,
               batch_size=api.MAX_IMPORT_EVENTS),
    )
    presets = PRESETS

    def vendor_endpoint(self) -> str:
        return HOSTS[self.config.region]

    def headers(self) -> dict[str, str]:
        config = self.config
        if config.service_account_user is not None and config.service_account_secret is not None:
            return {"Authorization": basic_auth(config.service_account_user, config.service_account_secret)}
        return {"Authorization": basic_auth(config.api_secret or config.project_token, "")}
