"""The mqtt destination end to end: Segment's Python library -> the collector process -> Mosquitto
-> a subscriber (MQTT 5, QoS 1)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.destinations.mqtt.support import Subscriber
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
from tests.support.brokers import SHARED_MQTT, MosquittoServer


def test_every_event_arrives_as_stored_with_its_properties(collector_factory) -> None:
    events = make_events(users=6, per_user=12)
    prefix = unique("e2e")
    subscriber = Subscriber(SHARED_MQTT, f"{prefix}/#").start()
    try:
        collector = collector_factory(collector_config(
            {"type": "mqtt", "url": SHARED_MQTT, "topic": f"{prefix}/events/{{source}}/{{type}}"}))
        send_with_sdk(collector, events)
        wait_delivered(collector, len(events))
        subscriber.wait_for(len(events))
        time.sleep(0.2)  # room for a copy too many to show up
    finally:
        subscriber.stop()

    stored = stored_bodies(collector)
    sent = {e["messageId"]: e for e in events}
    messages = subscriber.messages
    ids = [dict(m.properties.UserProperty)["messageId"] for m in messages]
    assert sorted(ids) == sorted(sent)  # each exactly once
    for mid, message in zip(ids, messages):
        event = sent[mid]
        assert str(message.topic) == f"{prefix}/events/web/{event['type']}"
        assert message.properties.UserProperty == [("messageId", mid), ("source", "web")]
        assert (message.qos, message.properties.ContentType) == (1, "application/json")
        assert message.payload == stored[mid]
    # Mosquitto passes a publisher's messages on in the order it took them: each user's in order.
    assert order_report(events, [m.payload for m in messages]) == ([], 0, [])


def test_broker_restarted_mid_load_loses_nothing_and_keeps_each_users_order(collector_factory, tmp_path: Path) -> None:
    """A private mosquitto stopped (SIGTERM: it saves its clients' subscriptions and queued messages;
    it keeps nothing it acknowledged after the last save if killed outright) while the collector
    publishes, and started again. The subscriber's state is kept by the broker (clean_start off, an
    expiry of an hour), so what was published while it was away waits for it. QoS 1 is
    at-least-once: a message whose PUBACK died with the broker is published again, and a message
    the broker had sent the subscriber unacknowledged is sent again; such copies are counted."""
    events = make_events(users=20, per_user=60)
    with MosquittoServer(tmp_path / "mosquitto") as broker:
        subscriber = Subscriber(broker.url, "events/#", client_id=unique("consumer"), clean=False).start()
        try:
            collector = collector_factory(collector_config(
                {"type": "mqtt", "url": broker.url, "topic": "events/{source}/{type}", "ack_timeout": 2}))
            poster = Poster(collector, events)
            wait_delivered(collector, len(events) // 4)
            broker.stop()
            delivered_before = delivered(collector)
            time.sleep(1.0)
            broker.start()
            poster.join()
            wait_delivered(collector, len(events), timeout=60)
            subscriber.wait_for(len(events), timeout=30)
            time.sleep(0.5)  # room for copies to show up
        finally:
            subscriber.stop()

    copies = check_received(collector, events, [m.payload for m in subscriber.messages])
    assert delivered_before < len(events), "the broker went down with nothing left to deliver"
    assert collector.metric("collector_delivery_retries_total", destination=DESTINATION) > 0, "no outage seen"
    print(f"mqtt: {len(events)} events, {copies} extra copies after the broker's restart")
