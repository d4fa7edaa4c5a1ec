"""The configuration of the source filters: ``tracking_plans:`` and ``sources.<name>.pii``.

Example::

    tracking_plans:
      shop:
        unplanned_events: flag
        violations: block
        events:
          Order Completed:            # a JSON Schema (draft-07) of the event's properties
            type: object
            required: [order_id]
            properties:
              order_id: {type: string}
    sources:
      web:
        write_key: ...
        tracking_plan: shop
        pii:
          - {fields: [context.ip], action: truncate_ip}
          - {keys: [password], action: drop}
          - {values: [email], action: hash}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

# allow: stored as sent (the violation is only counted); flag: stored with the violations in
# context.violationErrors; block: not stored (the client still gets 200).
Disposition = Literal["allow", "flag", "block"]
Detector = Literal["email", "credit_card", "phone", "ip", "us_ssn"]
Action = Literal["drop", "hash", "mask", "truncate_ip"]
# A JSON Schema written in YAML; checked and compiled by collector.filters.schema.
Schema = dict[str, Any]


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class TrackingPlanConfig(_Section):
    """The events a source may send and the shape of each; Segment Protocols' tracking plan."""

    # Track events not named in `events`. Segment and RudderStack let them through by default.
    unplanned_events: Disposition = "allow"
    # Events that fail their schema.
    violations: Disposition = "flag"
    # Remove the top-level properties (traits for identify/group) that the schema's `properties`
    # does not declare, before validating (Segment's "omit unplanned properties").
    drop_unplanned_properties: bool = False
    # Track event name -> schema of its `properties` (null: planned, any properties).
    events: dict[str, Schema | None] = {}
    # Schemas of identify `traits`, group `traits`, page and screen `properties` (null: unchecked).
    identify: Schema | None = None
    group: Schema | None = None
    page: Schema | None = None
    screen: Schema | None = None


class PiiRuleConfig(_Section, kw_only=True):
    """Selects values of an event and applies one action to them."""

    # Dotted paths from the event root, e.g. traits.email, context.ip, userId.
    fields: list[str] = []
    # Key names (any case) at any depth inside properties, traits and context.
    keys: list[str] = []
    # Built-in detectors of values anywhere inside properties, traits and context.
    values: list[Detector] = []
    # A regular expression searched in those values.
    pattern: str | None = None
    action: Action
    # hash: prefixed to the value before hashing (null: a plain SHA-256, as ad platforms expect).
    salt: str | None = None
    # mask: keep this many trailing characters (0: the value becomes "[redacted]").
    keep_last: Annotated[int, msgspec.Meta(ge=0)] = 0
