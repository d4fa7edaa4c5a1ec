"""The nats destination end to end: Segment's Python library -> the collector process -> NATS
JetStream -> the stream read back message by message."""

from __future__ import annotations

import time
from pathlib import Path

from tests.destinations.nats.support import delete_stream, make_stream, stream_messages
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
from tests.support.brokers import SHARED_NATS, NatsServer, run_blocking
from tests.support.waiting import wait_until


def test_every_event_arrives_as_stored_with_its_message_id(collector_factory) -> None:
    events = make_events(users=6, per_user=12)
    prefix = unique("e2e")
    stream = prefix.upper()
    run_blocking(lambda: make_stream(SHARED_NATS, stream, [f"{prefix}.>"]))
    try:
        collector = collector_factory(collector_config(
            {"type": "nats", "url": SHARED_NATS, "subject": f"{prefix}.events.{{type}}.{{source}}", "stream": stream}))
        send_with_sdk(collector, events)
        wait_delivered(collector, len(events))
        messages = run_blocking(lambda: stream_messages(SHARED_NATS, stream))
    finally:
        run_blocking(lambda: delete_stream(SHARED_NATS, stream))

    stored = stored_bodies(collector)
    sent = {e["messageId"]: e for e in events}
    assert sorted(m.headers["Nats-Msg-Id"] for m in messages) == sorted(sent)  # each exactly once
    for message in messages:
        event = sent[message.headers["Nats-Msg-Id"]]
        assert message.subject == f"{prefix}.events.{event['type']}.web"
        assert message.headers == {"Nats-Msg-Id": event["messageId"], "source": "web", "Nats-Expected-Stream": stream}
        assert message.data == stored[event["messageId"]]
    # One stream keeps one order for all its subjects: each user's events in the order posted.
    assert order_report(events, [m.data for m in messages]) == ([], 0, [])


def test_server_restarted_mid_load_loses_nothing_and_stores_no_copy(collector_factory, tmp_path: Path) -> None:
    """A private nats-server, killed (SIGKILL) while the collector publishes and started again on
    the same store: JetStream drops what is sent again by its Nats-Msg-Id."""
    events = make_events(users=20, per_user=60)
    with NatsServer(tmp_path / "nats") as server:
        run_blocking(lambda: make_stream(server.url, "EVENTS", ["events.>"]))
        # Down longer than a publish waits for its acknowledgement: the collector sends again what
        # the server may already have stored.
        collector = collector_factory(collector_config(
            {"type": "nats", "url": server.url, "subject": "events.{type}.{source}", "stream": "EVENTS",
             "ack_timeout": 1}))
        poster = Poster(collector, events)
        wait_delivered(collector, len(events) // 4)
        server.kill()
        delivered_before = delivered(collector)
        time.sleep(2.5)
        server.start()
        poster.join()
        wait_delivered(collector, len(events), timeout=60)
        messages = run_blocking(lambda: stream_messages(server.url, "EVENTS"))

    copies = check_received(collector, events, [m.data for m in messages])
    assert delivered_before < len(events), "the server went down with nothing left to deliver"
    assert collector.metric("collector_delivery_retries_total", destination=DESTINATION) > 0, "no outage seen"
    assert copies == 0, f"{copies} copies stored despite Nats-Msg-Id"


def test_a_stalled_server_drops_the_copies_sent_again_by_message_id(collector_factory, tmp_path: Path) -> None:
    """The server hangs (SIGSTOP) past the acknowledgement's timeout while messages wait unread on
    its connection: the collector sends them again, then the server wakes and reads both."""
    events = make_events(users=10, per_user=30)
    with NatsServer(tmp_path / "nats") as server:
        run_blocking(lambda: make_stream(server.url, "EVENTS", ["events.>"]))
        collector = collector_factory(collector_config(
            {"type": "nats", "url": server.url, "subject": "events.{type}.{source}", "stream": "EVENTS",
             "ack_timeout": 0.5}))
        poster = Poster(collector, events)
        wait_delivered(collector, len(events) // 4)
        server.pause()
        try:
            wait_until("sends retried while the server hangs", lambda: collector.metric(
                "collector_delivery_retries_total", destination=DESTINATION) >= 2)
        finally:
            server.resume()
        poster.join()
        wait_delivered(collector, len(events), timeout=60)
        messages = run_blocking(lambda: stream_messages(server.url, "EVENTS"))

    assert check_received(collector, events, [m.data for m in messages]) == 0, "copies stored despite Nats-Msg-Id"
