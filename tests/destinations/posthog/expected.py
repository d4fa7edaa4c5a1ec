"""What the PostHog presets must make of stored events, written from the fact sheet and the
presets' documentation rather than from the code (tests import it; fake.py too)."""

from __future__ import annotations

import uuid
from typing import Any

API_KEY = "phc_contract_project_key"
# Written out here rather than imported, so that a change to the derivation fails this test.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "segment:messageId")


def expected_uuid(message_id: str) -> str:
    try:
        return str(uuid.UUID(message_id))
    except ValueError:
        return str(uuid.uuid5(NAMESPACE, message_id))


def expected_event(event: dict[str, Any]) -> dict[str, Any]:
    """What the presets make of a stored track, identify or page event (in the double's terms)."""
    context = event.get("context") or {}
    page = context.get("page") or {}
    library = context.get("library") or {}
    common = {"$lib": library.get("name"), "$lib_version": library.get("version")}
    if context.get("ip"):
        common["$ip"] = context["ip"]
    else:
        common["$geoip_disable"] = True
    if context.get("userAgent"):
        common["$raw_user_agent"] = context["userAgent"]
    distinct_id = event.get("userId") or event.get("anonymousId")
    kind = event["type"]
    if kind == "track":
        name = event["event"]
        properties = {**event["properties"], **common, "$current_url": page["url"], "$pathname": page["path"],
                      "$referrer": page["referrer"]}
    elif kind == "identify":
        name = "$identify"
        properties = {**common, "$set": event["traits"]}
    elif kind == "page":
        name = "$pageview"
        props = event["properties"]
        properties = {"name": event["name"], "category": event["category"], **props, **common,
                      "$current_url": props["url"], "$pathname": props["path"],
                      "$referrer": page["referrer"], "title": props["title"]}
    else:
        raise AssertionError(f"no expectation written for {kind}")
    return {"event": name, "distinct_id": distinct_id, "properties": properties,
            "timestamp": event["timestamp"], "uuid": expected_uuid(event["messageId"])}
