"""Customer.io: identifies, events, pages, screens, groups (objects), aliases (merges) and audience
membership to the Track API v2 (``POST track[-eu].customer.io/api/v2/batch``, Basic site_id:api_key)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec

from collector.destinations.actions.auth import basic_auth
from collector.destinations.actions.destination import ActionDestination, ActionSettings
from collector.destinations.actions.settings import Secret
from collector.destinations.customerio.actions import ACTIONS
from collector.destinations.customerio.presets import PRESETS

__all__ = ["ACTIONS", "CustomerIO", "CustomerIOSettings", "HOSTS"]

HOSTS = {"us": "https://track.customer.io", "eu": "https://track-eu.customer.io"}


class CustomerIOSettings(ActionSettings, tag="customerio", kw_only=True):
    site_id: Annotated[str, msgspec.Meta(
        min_length=1, description="The workspace's Site ID (Workspace Settings > API and webhook credentials).")]
    api_key: Annotated[Secret, msgspec.Meta(description="The workspace's Track API key (beside the Site ID).")]
    region: Annotated[Literal["us", "eu"], msgspec.Meta(
        description="Where the workspace lives: us (track.customer.io) or eu (track-eu.customer.io).")] = "us"

    example: ClassVar[dict[str, Any]] = {
        "type": "customerio",
        "site_id": "${CUSTOMERIO_SITE_ID}",
        "api_key": "${CUSTOMERIO_API_KEY}",
        "region": "us",
    }


class CustomerIO(ActionDestination):
    """Send people, events, page and screen views, objects, merges and audiences to Customer.io's Track API."""

    Config = CustomerIOSettings
    display_name = "Customer.io"
    default_endpoint = HOSTS["us"]
    actions = ACTIONS
    presets = PRESETS
    config: CustomerIOSettings

    def vendor_endpoint(self) -> str:
        return HOSTS[self.config.region]

    def headers(self) -> dict[str, str]:
        return {"Authorization": basic_auth(self.config.site_id, self.config.api_key)}
