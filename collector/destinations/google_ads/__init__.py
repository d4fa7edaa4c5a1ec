"""Google Ads: offline click conversions, enhanced conversions and Customer Match lists.

Requests go to the Google Ads REST API (``https://googleads.googleapis.com/{api_version}/...``)
with an OAuth 2 access token obtained from the refresh token (``oauth``), the ``developer-token``
header and, through a manager account, ``login-customer-id``. See api.py for the requests,
answers.py for how Google's answers are read, presets.py for what is sent without a mapping.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from collector.config.units import ByteSize
from collector.destinations.actions.auth import GOOGLE_TOKEN_URL, OAuth2RefreshToken
from collector.destinations.actions.destination import Action, ActionDestination, ActionSettings
from collector.destinations.actions.settings import Secret
from collector.destinations.base import BatchConfig
from collector.destinations.google_ads import api, fields
from collector.destinations.google_ads.presets import ACTIVE, CLICK_CONVERSION, PRESETS

# The API version of the fact sheet (docs/vendors/analytics-ads.md §5); Google sunsets each after about a year.
API_VERSION = "v22"
MAX_CONVERSIONS = 2000  # per uploadClickConversions / uploadConversionAdjustments request
# Operations per addOperations request: Google takes up to 100,000 identifiers, and at most 4 are sent per user.
MAX_USER_LIST_OPERATIONS = 10_000

# Customer ids are written 123-456-7890 in Google's interface; the API wants the digits.
CustomerId = Annotated[str, msgspec.Meta(pattern=r"^[0-9]+(-[0-9]+)*$")] | Annotated[int, msgspec.Meta(ge=0)]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class GoogleAdsOAuth(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The OAuth 2 client and the refresh token of a user who can access the account."""

    client_id: NonEmpty
    client_secret: Annotated[Secret, msgspec.Meta(min_length=1)]
    refresh_token: Annotated[Secret, msgspec.Meta(min_length=1)]
    token_url: str = GOOGLE_TOKEN_URL


def _digits(value: str | int) -> str:
    return str(value).replace("-", "")


class GoogleAdsSettings(ActionSettings, tag="google_ads", kw_only=True):
    customer_id: Annotated[CustomerId, msgspec.Meta(description="The Google Ads account (dashes allowed)")]
    developer_token: Annotated[Secret, msgspec.Meta(min_length=1, description="The API developer token")]
    oauth: GoogleAdsOAuth
    login_customer_id: Annotated[CustomerId | None, msgspec.Meta(
        description="The manager account to act through, when the account is reached through one")] = None
    api_version: Annotated[str, msgspec.Meta(pattern=r"^v[0-9]+$")] = API_VERSION
    user_list_id: Annotated[CustomerId | None, msgspec.Meta(
        description="Customer Match list for audience events that name no list of their own")] = None
    user_lists: Annotated[dict[str, CustomerId], msgspec.Meta(
        description="Audience key (properties.audience_key) -> Customer Match list id")] = {}
    # Only the Customer Match presets: the conversion preset needs a conversion_action (presets.py).
    presets: bool | list[str] = msgspec.field(default_factory=lambda: list(ACTIVE))
    batch: BatchConfig = msgspec.field(
        default_factory=lambda: BatchConfig(max_events=MAX_CONVERSIONS, max_bytes=ByteSize(8 * 1024 * 1024)))

    example: ClassVar[dict[str, Any]] = {
        "type": "google_ads",
        "customer_id": "123-456-7890",
        "developer_token": "${GOOGLE_ADS_DEVELOPER_TOKEN}",
        "login_customer_id": "111-222-3333",
        "oauth": {
            "client_id": "1234567890-abc.apps.googleusercontent.com",
            "client_secret": "${GOOGLE_ADS_CLIENT_SECRET}",
            "refresh_token": "${GOOGLE_ADS_REFRESH_TOKEN}",
        },
        "user_lists": {"high_value_customers": "4242"},
        "mappings": [{"name": "Click Conversion", "fields": {"conversion_action": "987654321"}}],
    }

    def __post_init__(self) -> None:
        self.customer_id = _digits(self.customer_id)
        if self.login_customer_id is not None:
            self.login_customer_id = _digits(self.login_customer_id)
        if self.user_list_id is not None:
            self.user_list_id = _digits(self.user_list_id)
        self.user_lists = {key: _digits(value) for key, value in self.user_lists.items()}
        kept = self.presets is True or (isinstance(self.presets, list) and CLICK_CONVERSION in self.presets)
        if kept and not any(m.name == CLICK_CONVERSION and "conversion_action" in m.fields for m in self.mappings):
            raise ValueError(f"presets: the {CLICK_CONVERSION!r} preset needs a conversion action: add the mapping "
                             f"{{name: {CLICK_CONVERSION}, fields: {{conversion_action: <id>}}}}, or list only the "
                             f"presets to keep ({', '.join(ACTIVE)})")


def _action(name: str, title: str, description: str, fields_: dict, perform: Any, batch_size: int,
            batch_keys: tuple[str, ...]) -> Action:
    return Action(name, title, description, fields_, perform, batch_size=batch_size, batch_keys=batch_keys,
                  hash_style="google")


UPLOAD_CLICK_CONVERSION = _action(
    "upload_click_conversion", "Upload click conversion",
    "An offline conversion attributed by its click id (gclid, gbraid, wbraid) or, for enhanced conversions for "
    "leads, by the hashed e-mail and phone. Needs conversion_action: the 'Click Conversion' preset is off until "
    "a mapping of that name gives it. Conversions Google already has count as delivered.",
    fields.CLICK_CONVERSION, api.upload_click_conversions, MAX_CONVERSIONS, ("conversion_action",),
)
UPLOAD_ENHANCED_CONVERSION = _action(
    "upload_enhanced_conversion", "Enhance a web conversion",
    "Enhanced conversions for web: hashed e-mail, phone and address added to a conversion the website tag "
    "recorded with the same order id. No preset: a mapping gives its trigger and conversion_action.",
    fields.ENHANCED_CONVERSION, api.upload_enhancements, MAX_CONVERSIONS, ("conversion_action",),
)
CUSTOMER_MATCH = _action(
    "customer_match", "Customer Match list",
    "Add users to or remove them from a Customer Match list (hashed e-mail, phone, address), through an offline "
    "user data job per request.",
    fields.CUSTOMER_MATCH, api.change_user_list, MAX_USER_LIST_OPERATIONS,
    ("user_list", "operation", "ad_user_data_consent", "ad_personalization_consent"),
)


class GoogleAds(ActionDestination):
    """Send offline click conversions, enhanced conversions and Customer Match list changes to Google Ads."""

    Config = GoogleAdsSettings
    display_name = "Google Ads"
    default_endpoint = "https://googleads.googleapis.com"
    actions = (UPLOAD_CLICK_CONVERSION, UPLOAD_ENHANCED_CONVERSION, CUSTOMER_MATCH)
    presets = PRESETS
    config: GoogleAdsSettings

    def headers(self) -> dict[str, str]:
        headers = {"developer-token": self.config.developer_token}
        if self.config.login_customer_id is not None:
            headers["login-customer-id"] = str(self.config.login_customer_id)
        return headers

    def token_source_for(self) -> OAuth2RefreshToken:
        oauth = self.config.oauth
        return OAuth2RefreshToken(oauth.token_url, oauth.client_id, oauth.client_secret, oauth.refresh_token)
