"""collector.filters.check through the loader: every filter problem is a config error with its
file, line, column and key, all reported in one pass."""

from __future__ import annotations

import textwrap

import pytest

from collector.config.loader import ConfigError, load_config_text
from collector.filters.config import PiiRuleConfig, TrackingPlanConfig


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(textwrap.dedent(text), "collector.yaml")
    return caught.value.errors


def test_a_complete_filter_config_is_typed():
    config = load_config_text(textwrap.dedent("""\
        tracking_plans:
          shop:
            unplanned_events: block
            violations: allow
            drop_unplanned_properties: true
            events:
              Order Completed: {type: object, required: [order_id]}
              Signed Up:
            identify: {properties: {email: {format: email}}}
        sources:
          web:
            write_key: wk
            tracking_plan: shop
            pii:
              - {fields: [context.ip], action: truncate_ip}
              - {values: [credit_card], pattern: "^tok_", action: mask, keep_last: 4}
              - {keys: [email], action: hash, salt: pepper}
        """), "collector.yaml")
    plan = config.tracking_plans["shop"]
    assert plan == TrackingPlanConfig(
        unplanned_events="block", violations="allow", drop_unplanned_properties=True,
        events={"Order Completed": {"type": "object", "required": ["order_id"]}, "Signed Up": None},
        identify={"properties": {"email": {"format": "email"}}},
    )
    source = config.sources["web"]
    assert source.tracking_plan == "shop"
    assert source.pii == [
        PiiRuleConfig(fields=["context.ip"], action="truncate_ip"),
        PiiRuleConfig(values=["credit_card"], pattern="^tok_", action="mask", keep_last=4),
        PiiRuleConfig(keys=["email"], action="hash", salt="pepper"),
    ]


def test_an_unknown_plan_name_points_at_the_source_key():
    assert errors("""\
        tracking_plans:
          shop: {}
        sources:
          web:
            write_key: wk
            tracking_plan: shopp
        """) == ["collector.yaml:6:20: sources.web.tracking_plan: unknown tracking plan 'shopp'; known plans: shop"]


def test_a_plan_name_without_any_plan():
    assert errors("sources:\n  web: {write_key: wk, tracking_plan: shop}\n") == [
        "collector.yaml:2:39: sources.web.tracking_plan: unknown tracking plan 'shop'; "
        "no tracking_plans are configured"
    ]


def test_bad_schemas_point_at_the_line_and_key_of_each_problem():
    assert errors("""\
        tracking_plans:
          shop:
            events:
              Order Completed:
                type: object
                requird: [order_id]
                properties:
                  order_id: {type: strng}
                  total: {type: number, minimum: "0"}
            identify:
              properties:
                email: {format: emial}
        """) == [
        "collector.yaml:6:9: tracking_plans.shop.events.Order Completed.requird: invalid JSON Schema: "
        "unknown JSON Schema keyword 'requird'; did you mean required?",
        "collector.yaml:8:28: tracking_plans.shop.events.Order Completed.properties.order_id.type: "
        "invalid JSON Schema: unknown type 'strng'; expected one of: array, boolean, integer, null, number, "
        "object, string",
        "collector.yaml:9:42: tracking_plans.shop.events.Order Completed.properties.total.minimum: "
        "invalid JSON Schema: must be number, got '0'",
        "collector.yaml:12:25: tracking_plans.shop.identify.properties.email.format: invalid JSON Schema: "
        "format 'emial' is not checked; supported: " + ", ".join(__import__("collector.filters.schema",
                                                                             fromlist=["FORMATS"]).FORMATS),
    ]


def test_plan_settings_are_typed():
    assert errors("tracking_plans:\n  shop:\n    violations: warn\n    unplaned_events: allow\n") == [
        "collector.yaml:3:17: tracking_plans.shop.violations: invalid value 'warn'; expected one of: allow, block, flag",
        "collector.yaml:4:5: tracking_plans.shop.unplaned_events: unknown field unplaned_events; "
        "did you mean unplanned_events?",
    ]


def test_a_schema_must_be_a_mapping():
    assert errors("tracking_plans:\n  shop:\n    events:\n      Signed Up: [a]\n") == [
        "collector.yaml:4:7: tracking_plans.shop.events: expected object | null, got list (in one of its values)"
    ]


def test_pii_rule_problems():
    assert errors("""\
        sources:
          web:
            write_key: wk
            pii:
              - {action: drop}
              - {fields: [messageId, "traits..email", type], action: hash, keep_last: 2}
              - {pattern: "([", keys: [""], action: mask, salt: s}
        """) == [
        "collector.yaml:5:9: sources.web.pii[0]: a rule needs at least one of fields, keys, values or pattern",
        "collector.yaml:6:19: sources.web.pii[1].fields[0]: messageId cannot be changed: the log and "
        "destinations need it",
        "collector.yaml:6:30: sources.web.pii[1].fields[1]: expected a dotted path such as traits.email, "
        "got 'traits..email'",
        "collector.yaml:6:47: sources.web.pii[1].fields[2]: type cannot be changed: the log and destinations need it",
        "collector.yaml:6:68: sources.web.pii[1].keep_last: keep_last applies only to action: mask, not hash",
        "collector.yaml:7:19: sources.web.pii[2].pattern: invalid regular expression: unterminated character "
        "set at position 1",
        "collector.yaml:7:32: sources.web.pii[2].keys[0]: expected a key name, got an empty string",
        "collector.yaml:7:51: sources.web.pii[2].salt: salt applies only to action: hash, not mask",
    ]


def test_pii_rule_types():
    assert errors("""\
        sources:
          web:
            write_key: wk
            pii:
              - {values: [emal], action: mask}
              - {keys: [a], action: encrypt, keep_last: -1}
        """) == [
        "collector.yaml:5:19: sources.web.pii[0].values[0]: invalid value 'emal'; expected one of: credit_card, "
        "email, ip, phone, us_ssn",
        "collector.yaml:6:29: sources.web.pii[1].action: invalid value 'encrypt'; expected one of: drop, hash, "
        "mask, truncate_ip",
        "collector.yaml:6:49: sources.web.pii[1].keep_last: expected int >= 0, got -1",
    ]
