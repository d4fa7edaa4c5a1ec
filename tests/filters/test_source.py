"""collector.filters.source: the plan's verdict applied (allow, flag, block), metrics, the
rate-limited log of blocked events, PII after the plan, and which sources get filters."""

from __future__ import annotations

import hashlib
import logging
import textwrap

import pytest

from collector.config.loader import load_config_text
from collector.filters.source import BlockLog, EventBlocked, SourceFilters, build_source_filters
from collector.metrics import Metrics

CONFIG = """\
tracking_plans:
  shop:
    unplanned_events: {unplanned}
    violations: {violations}
    events:
      Order Completed:
        type: object
        required: [order_id]
        properties: {{order_id: {{type: string}}}}
    identify:
      properties: {{email: {{type: string, format: email}}}}
sources:
  web:
    write_key: wk_web
    tracking_plan: shop
    pii:
      - {{fields: [traits.email], action: hash}}
  plain: {{write_key: wk_plain}}
  private:
    write_key: wk_private
    pii: [{{keys: [password], action: drop}}]
"""


def filters(unplanned: str = "allow", violations: str = "flag") -> tuple[dict[str, SourceFilters], Metrics]:
    config = load_config_text(textwrap.dedent(CONFIG.format(unplanned=unplanned, violations=violations)), "c.yaml")
    metrics = Metrics()
    return build_source_filters(config, metrics), metrics


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def order(order_id: object = "o1", name: str = "Order Completed") -> dict:
    return {"type": "track", "event": name, "userId": "u1", "properties": {"order_id": order_id}}


def test_only_sources_with_a_plan_or_rules_get_filters():
    built, _ = filters()
    assert sorted(built) == ["private", "web"]
    assert built["web"].plan is not None and built["web"].pii is not None
    assert built["private"].plan is None and built["private"].pii is not None


def test_a_valid_event_is_unchanged_and_counts_nothing():
    built, metrics = filters()
    event = order()
    built["web"].apply(event, "track")
    assert event == order()
    assert sample(metrics, "collector_events_violations_total", source="web", type="Datatype-Mismatch") == 0


def test_flag_attaches_the_violations_to_the_context():
    built, metrics = filters(violations="flag")
    event = order(order_id=7)
    built["web"].apply(event, "track")
    assert event["context"]["violationErrors"] == [
        {"type": "Datatype-Mismatch", "message": "properties.order_id must be string", "path": "properties.order_id"}
    ]
    assert sample(metrics, "collector_events_violations_total", source="web", type="Datatype-Mismatch") == 1


def test_flag_keeps_the_rest_of_the_context_and_replaces_violations_a_client_sent():
    built, _ = filters(violations="flag")
    event = {**order(order_id=7), "context": {"ip": "203.0.113.9", "violationErrors": ["forged"]}}
    built["web"].apply(event, "track")
    assert event["context"]["ip"] == "203.0.113.9"
    assert [v["type"] for v in event["context"]["violationErrors"]] == ["Datatype-Mismatch"]


def test_allow_stores_the_event_as_sent_but_counts_the_violation():
    built, metrics = filters(violations="allow", unplanned="allow")
    event = order(order_id=7)
    built["web"].apply(event, "track")
    assert event == order(order_id=7)
    unplanned = order(name="Order Refunded")
    built["web"].apply(unplanned, "track")
    assert "context" not in unplanned
    assert sample(metrics, "collector_events_violations_total", source="web", type="Datatype-Mismatch") == 1
    assert sample(metrics, "collector_events_violations_total", source="web", type="Unplanned-Event") == 1


def test_block_raises_and_counts_by_reason():
    built, metrics = filters(violations="block", unplanned="block")
    with pytest.raises(EventBlocked) as caught:
        built["web"].apply(order(order_id=7), "track")
    assert caught.value.reason == "violation"
    with pytest.raises(EventBlocked) as caught:
        built["web"].apply(order(name="Order Refunded"), "track")
    assert caught.value.reason == "unplanned_event"
    assert sample(metrics, "collector_events_blocked_total", source="web", reason="violation") == 1
    assert sample(metrics, "collector_events_blocked_total", source="web", reason="unplanned_event") == 1
    assert sample(metrics, "collector_events_violations_total", source="web", type="Unplanned-Event") == 1


def test_the_plan_judges_what_the_client_sent_then_pii_applies():
    built, metrics = filters()
    event = {"type": "identify", "userId": "u1", "traits": {"email": "Ann@Example.com"}}
    built["web"].apply(event, "identify")
    # The plan saw an e-mail address (a hash would have failed format: email) ...
    assert "context" not in event
    # ... and the stored value is the hash.
    assert event["traits"]["email"] == hashlib.sha256(b"ann@example.com").hexdigest()


def test_blocked_events_are_logged_at_most_once_per_interval(caplog):
    now = [100.0]
    block_log = BlockLog("web", interval=60, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="collector.filters.source"):
        for _ in range(50):
            block_log.blocked("violation", "'Order Completed': properties.order_id must be string")
        now[0] += 61
        block_log.blocked("unplanned_event", "'Order Refunded': not in the plan")
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("source web: 1 events blocked by the tracking plan (violation: 1)")
    assert "50 events blocked" in lines[1] and "unplanned_event: 1, violation: 49" in lines[1]
    assert lines[1].endswith("latest: 'Order Refunded': not in the plan")


def test_filters_log_through_the_rate_limited_log(caplog):
    built, _ = filters(violations="block")
    with caplog.at_level(logging.INFO, logger="collector.filters.source"):
        for _ in range(20):
            with pytest.raises(EventBlocked):
                built["web"].apply(order(order_id=7), "track")
    assert len(caplog.records) == 1
