"""The fields of the Google Ads actions, with the event paths they are filled from by default.

Identifiers are normalised and hashed as Google asks (``hash_style="google"`` on the actions):
e-mail, phone, first and last name and street address are SHA-256 hashed, city, state, postal code
and country are only normalised, since Google wants them in clear. A value that is already a
SHA-256 hex digest is sent as it is.
"""

from __future__ import annotations

from typing import Any

from collector.destinations.actions.fields import Field

CONSENT = ("GRANTED", "DENIED")


def either(first: str, second: str) -> dict[str, Any]:
    """The value at ``first`` when it exists, else the one at ``second``."""
    return {"@if": {"exists": {"@path": first}, "then": {"@path": first}, "else": {"@path": second}}}


def _consent(what: str) -> Field:
    return Field("string", f"Consent to {what} (EEA users), GRANTED or DENIED; left out when unset", choices=CONSENT)


def _conversion_action() -> Field:
    return Field("string", "The conversion action: its id (123456789) or resource name "
                           "(customers/<customer id>/conversionActions/<id>). No default: a mapping names it",
                 required=True)


# Each action gets its own Field objects (and default dicts), so that no two mappings share one.
def _order_id() -> dict[str, Any]:
    return either("$.properties.order_id", "$.properties.orderId")


def _email() -> Field:
    return Field("string", "E-mail address, hashed", hashed="email",
                 default=either("$.properties.email", "$.context.traits.email"))


def _phone() -> Field:
    return Field("string", "Phone number, hashed in E.164 form (+ and digits, with the country code)",
                 hashed="phone", default=either("$.properties.phone", "$.context.traits.phone"))


def _trait(name: str) -> dict[str, Any]:
    return either(f"$.properties.{name}", f"$.context.traits.{name}")


def _address(name: str) -> dict[str, Any]:
    return either(f"$.properties.address.{name}", f"$.context.traits.address.{name}")


CLICK_CONVERSION: dict[str, Field] = {
    "conversion_action": _conversion_action(),
    "conversion_date_time": Field("datetime", "When the conversion happened (sent as yyyy-mm-dd hh:mm:ss+00:00)",
                                  required=True, default={"@path": "$.timestamp"}),
    "gclid": Field("string", "Google click id of the ad click", default=_trait("gclid")),
    "gbraid": Field("string", "Click id for app conversions from iOS web traffic",
                    default={"@path": "$.properties.gbraid"}),
    "wbraid": Field("string", "Click id for web conversions from iOS app traffic",
                    default={"@path": "$.properties.wbraid"}),
    "order_id": Field("string", "The order (transaction) id: Google counts one conversion per order id",
                      default=_order_id()),
    "value": Field("number", "The conversion's value",
                   default=either("$.properties.total", "$.properties.revenue")),
    "currency": Field("string", "ISO 4217 currency code of the value (sent in upper case)",
                      default={"@path": "$.properties.currency"}),
    # Enhanced conversions for leads: Google matches these to the click when there is no click id.
    "email": _email(),
    "phone": _phone(),
    "user_ip_address": Field("string", "The visitor's IP address on the landing page (no default: a server-side "
                                       "call's context.ip is the server's)"),
    "ad_user_data_consent": _consent("sending user data to Google for advertising"),
    "ad_personalization_consent": _consent("ad personalisation"),
}

ENHANCED_CONVERSION: dict[str, Field] = {
    "conversion_action": _conversion_action(),
    "order_id": Field("string", "The order id the website tag recorded with the conversion", required=True,
                      default=_order_id()),
    "email": _email(),
    "phone": _phone(),
    "first_name": Field("string", "First name, hashed", hashed="first_name", default=_trait("firstName")),
    "last_name": Field("string", "Last name, hashed", hashed="last_name", default=_trait("lastName")),
    # Segment's defaults for these hold a stray comma ("$.properties.address.city,"), so only
    # context.traits.address ever resolves there; here properties.address comes first, as intended.
    "street_address": Field("string", "Street address, hashed", hashed="street_address", default=_address("street")),
    "city": Field("string", "City (not hashed)", hashed="city", default=_address("city")),
    "state": Field("string", "State or region (not hashed)", hashed="state", default=_address("state")),
    "postal_code": Field("string", "Postal code (not hashed)", hashed="zip", default=_address("postalCode")),
    "country": Field("string", "Country, as an ISO 3166-1 code (not hashed)", hashed="country",
                     default=_address("country")),
    "user_agent": Field("string", "The browser's user agent", default={"@path": "$.context.userAgent"}),
}

CUSTOMER_MATCH: dict[str, Field] = {
    "user_list": Field(
        "string",
        "The Customer Match list: its id, its resource name, or an audience key looked up in the user_lists "
        "setting; when absent or not listed, the user_list_id setting",
        default=either("$.context.personas.external_audience_id", "$.properties.audience_key"),
    ),
    "operation": Field("string", "add to or remove from the list", required=True, choices=("add", "remove"),
                       default="add"),
    "email": _email(),
    "phone": _phone(),
    # Google matches an address only as a whole: first and last name, country and postal code.
    "first_name": Field("string", "First name, hashed", hashed="first_name", default=_trait("firstName")),
    "last_name": Field("string", "Last name, hashed", hashed="last_name", default=_trait("lastName")),
    "country": Field("string", "Country, as an ISO 3166-1 code (not hashed)", hashed="country",
                     default=_address("country")),
    "postal_code": Field("string", "Postal code (not hashed)", hashed="zip", default=_address("postalCode")),
    "ad_user_data_consent": _consent("sending user data to Google for advertising"),
    "ad_personalization_consent": _consent("ad personalisation"),
}
