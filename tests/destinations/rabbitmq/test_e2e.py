"""The rabbitmq destination end to end: Segment's Python library -> the collector process ->
RabbitMQ (a topic exchange, a durable queue bound to every key) -> the queue drained."""

from __future__ import annotations

import time

from tests.destinations.rabbitmq.support import declare, drain, remove
from tests.destinations.stream_checks import order_report, unique
from tests.destinations.stream_e2e import (
    DESTINATION,
    Poster,
    check_received,
    collector_config,
    delivered,
    make_events,
    send_with_sdk,
    stored_bodies,
    wait_delivered,
)
from tests.support.brokers import SHARED_RABBITMQ, RabbitMQNode, run_blocking


def test_every_event_arrives_as_stored_persistent_with_its_message_id(collector_factory) -> None:
    events = make_events(users=6, per_user=12)
    queue = unique("e2e")
    exchange = f"{queue}.events"
    run_blocking(lambda: declare(SHARED_RABBITMQ, exchange, queue))
    try:
        collector = collector_factory(collector_config(
            {"type": "rabbitmq", "url": SHARED_RABBITMQ, "exchange": exchange, "exchange_type": "topic",
             "routing_key": "{type}.{source}"}))
        send_with_sdk(collector, events)
        wait_delivered(collector, len(events))
        messages = run_blocking(lambda: drain(SHARED_RABBITMQ, queue))
    finally:
        run_blocking(lambda: remove(SHARED_RABBITMQ, [exchange], [queue]))

    stored = stored_bodies(collector)
    sent = {e["messageId"]: e for e in events}
    assert sorted(m.message_id for m in messages) == sorted(sent)  # each exactly once
    for message in messages:
        event = sent[message.message_id]
        assert (message.exchange, message.routing_key) == (exchange, f"{event['type']}.web")
        assert (message.content_type, int(message.delivery_mode), message.headers) == (
            "application/json", 2, {"source": "web"})
        assert message.body == stored[event["messageId"]]
    # One queue keeps the order its exchange routed in: each user's events in the order posted.
    assert order_report(events, [m.body for m in messages]) == ([], 0, [])


def test_broker_restarted_mid_load_loses_nothing_and_keeps_each_users_order(collector_factory) -> None:
    """A RabbitMQ node of the test's own, its Erlang VM killed (SIGKILL) while the collector
    publishes, and started again on the same database: confirmed persistent messages in a durable
    queue are there after it. A message whose confirm died with the node may be there twice:
    such copies are counted."""
    events = make_events(users=20, per_user=60)
    with RabbitMQNode() as node:
        run_blocking(lambda: declare(node.url, "events", "all-events"), timeout=60)
        collector = collector_factory(collector_config(
            {"type": "rabbitmq", "url": node.url, "exchange": "events", "routing_key": "{type}.{source}"}))
        poster = Poster(collector, events)
        wait_delivered(collector, len(events) // 4)
        node.kill()
        delivered_before = delivered(collector)
        time.sleep(1.0)
        node.start()
        poster.join()
        wait_delivered(collector, len(events), timeout=60)
        messages = run_blocking(lambda: drain(node.url, "all-events"))

    copies = check_received(collector, events, [m.body for m in messages])
    assert delivered_before < len(events), "the broker went down with nothing left to deliver"
    assert collector.metric("collector_delivery_retries_total", destination=DESTINATION) > 0, "no outage seen"
    print(f"rabbitmq: {len(events)} events, {copies} extra copies after the broker's restart")
