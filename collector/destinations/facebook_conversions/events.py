"""A mapped ``event`` payload as Meta's server event, or why Meta would refuse it.

Meta refuses a whole request for one bad event, so every event is checked here first, against what
the Conversions API documents (docs/vendors/analytics-ads.md §6): an ``event_time`` more than 7
days old (62 for ``physical_store``) or more than a minute ahead; a ``website`` event without
``event_source_url`` or ``client_user_agent``; no customer information parameter at all; a
Purchase without ``value`` and ``currency``, or a currency that is not a 3-letter code. Such an
event is refused here, with the reason, and the others are sent.

What cannot be wrong for the event's sake is mended rather than refused: a malformed ``fbc`` or
``fbp`` and an invalid IP address are left out (Meta would refuse the event for them); products
without an id are left out of ``contents`` and a missing quantity is 1.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from datetime import datetime
from typing import Any

from collector.destinations.facebook_conversions.fields import CUSTOM_DATA_KEYS, USER_DATA_KEYS

DAY = 86400
MAX_AGE = 7 * DAY
MAX_AGE_PHYSICAL_STORE = 62 * DAY
MAX_AHEAD = 60
CLICK_COOKIE = re.compile(r"fb\.\d\.\d+\.\S+")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_PRODUCT_EVENTS_WITH_CONTENTS = ("contents", "content_ids")


def epoch_seconds(moment: str) -> int:
    """A validated datetime field (``YYYY-MM-DDTHH:MM:SS.mmmZ``) as Unix seconds."""
    return int(datetime.fromisoformat(moment).timestamp())


def server_event(payload: dict[str, Any], default_source: str, now: float) -> dict[str, Any] | str:
    """Meta's server event for a validated, hashed payload; or, as a string, why Meta would refuse it."""
    event_time = epoch_seconds(payload["event_time"])
    source = payload.get("action_source")
    url = payload.get("event_source_url")
    if source is None:
        source = "website" if url and payload.get("client_user_agent") else default_source
    max_age = MAX_AGE_PHYSICAL_STORE if source == "physical_store" else MAX_AGE
    age = now - event_time
    if age > max_age:
        return (f"event_time {payload['event_time']} is {age / DAY:.1f} days old; Meta refuses {source} events "
                f"more than {max_age // DAY} days old")
    if age < -MAX_AHEAD:
        return f"event_time {payload['event_time']} is {-age:.0f}s ahead of this clock; Meta refuses future events"
    if source == "website":
        missing = [key for key in ("event_source_url", "client_user_agent") if not payload.get(key)]
        if missing:
            return (f"a website event needs {' and '.join(missing)} (Meta refuses it without); map "
                    "action_source, or set the destination's action_source for events that are not a browser's")
    event: dict[str, Any] = {"event_name": payload["event_name"], "event_time": event_time,
                             "action_source": source}
    if "event_id" in payload:
        event["event_id"] = payload["event_id"]
    if url:
        event["event_source_url"] = url
    user_data = _user_data(payload, url, event_time)
    if not user_data:
        return ("no customer information: Meta needs at least one user_data parameter (em, ph, external_id, "
                "client_ip_address, fbp, ...)")
    event["user_data"] = user_data
    custom_data = _custom_data(payload)
    if event["event_name"] == "Purchase":
        missing = [key for key in ("value", "currency") if key not in custom_data]
        if missing:
            return f"a Purchase needs {' and '.join(missing)} (Meta refuses it without); map it"
    currency = custom_data.get("currency")
    if currency is not None:
        if type(currency) is not str or _CURRENCY.fullmatch(currency) is None:
            return f"currency {currency!r} is not an ISO 4217 code such as USD"
        custom_data["currency"] = currency.upper()
    if custom_data:
        event["custom_data"] = custom_data
    if "data_processing_options" in payload:
        event["data_processing_options"] = payload["data_processing_options"]
        for key in ("data_processing_options_country", "data_processing_options_state"):
            if key in payload:
                event[key] = payload[key]
    return event


def _user_data(payload: dict[str, Any], url: str | None, event_time: int) -> dict[str, Any]:
    user_data = {key: payload[key] for key in USER_DATA_KEYS if key in payload}
    for key in ("fbc", "fbp"):
        value = user_data.get(key)
        if value is not None and CLICK_COOKIE.fullmatch(value) is None:
            del user_data[key]
    if "fbc" not in user_data and url and "fbclid=" in url:
        click_id = _fbclid(url)
        if click_id:  # Meta's format for a click id taken from the URL: fb.1.<ms>.<fbclid>
            user_data["fbc"] = f"fb.1.{event_time * 1000}.{click_id}"
    ip = user_data.get("client_ip_address")
    if ip is not None and not _is_ip(ip):
        del user_data["client_ip_address"]
    return user_data


def _fbclid(url: str) -> str | None:
    query = urllib.parse.urlsplit(url).query
    for value in urllib.parse.parse_qs(query).get("fbclid", ()):
        if value and not any(c.isspace() for c in value):
            return value
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _custom_data(payload: dict[str, Any]) -> dict[str, Any]:
    extra = payload.get("custom_data")
    custom_data = dict(extra) if extra else {}
    for key in CUSTOM_DATA_KEYS:
        if key in payload:
            custom_data[key] = payload[key]
    contents = custom_data.get("contents")
    if contents is not None and "contents" in payload:
        kept = [{**item, "quantity": item.get("quantity", 1)} for item in contents if item.get("id")]
        if kept:
            custom_data["contents"] = kept
            if "num_items" not in custom_data:
                custom_data["num_items"] = sum(item["quantity"] for item in kept)
        else:
            del custom_data["contents"]
    if "content_type" not in custom_data and any(key in custom_data for key in _PRODUCT_EVENTS_WITH_CONTENTS):
        custom_data["content_type"] = "product"
    return custom_data
