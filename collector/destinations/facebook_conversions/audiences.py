"""Custom Audience changes: which audience an event's user joins or leaves, and Meta's
``{schema, data}`` payload for the users of one request.

The audience: a mapped ``audience_id``, else the event's Segment audience key (Engage puts it in
``properties.audience_key`` and ``context.personas.computation_key``) looked up in the
destination's ``audiences`` setting, which maps audience keys to Custom Audience ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.destinations.facebook_conversions.fields import AUDIENCE_COLUMNS


def audience_of(payload: dict[str, Any], audiences: Mapping[str, str | int]) -> str | None:
    audience_id = payload.get("audience_id")
    if audience_id:
        return audience_id
    found = audiences.get(payload.get("audience_key") or "")
    return str(found) if found is not None else None


def no_audience_reason(payload: dict[str, Any], audiences: Mapping[str, str | int]) -> str:
    key = payload.get("audience_key")
    if not key:
        return ("no audience: the event has no audience key (properties.audience_key, "
                "context.personas.computation_key) and no audience_id is mapped")
    known = ", ".join(sorted(audiences)) or "none"
    return (f"no Custom Audience for the audience key {key!r}: add it to the destination's audiences setting "
            f"(audience key: Custom Audience id); configured: {known}")


def row_values(payload: dict[str, Any]) -> dict[str, str]:
    """The user's identifiers by schema key (hashed already, but MADID, which Meta takes lower-cased)."""
    values = {}
    for field, _, key in AUDIENCE_COLUMNS:
        value = payload.get(field)
        if value:
            values[key] = value.strip().lower() if key == "MADID" else value
    return values


def audience_payload(users: list[dict[str, str]]) -> dict[str, Any]:
    """``{schema, data}`` with the schema keys that at least one user has, in a fixed order."""
    present = {key for values in users for key in values}
    schema = [key for _, _, key in AUDIENCE_COLUMNS if key in present]
    return {"schema": schema, "data": [[values.get(key, "") for key in schema] for values in users]}
