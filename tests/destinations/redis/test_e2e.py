"""The redis destination end to end: Segment's Python library -> the collector process -> Redis
streams -> XRANGE."""

from __future__ import annotations

import time
from pathlib import Path

import redis

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
from tests.support.brokers import SHARED_REDIS, RedisServer


def test_every_event_arrives_as_stored_in_its_stream(collector_factory) -> None:
    events = make_events(users=6, per_user=12)
    prefix = unique("e2e")
    client = redis.Redis.from_url(SHARED_REDIS)
    try:
        collector = collector_factory(collector_config(
            {"type": "redis", "url": SHARED_REDIS, "stream": f"{prefix}:{{type}}:{{source}}", "max_length": 50}))
        send_with_sdk(collector, events)
        wait_delivered(collector, len(events))
        streams = {key.decode(): client.xrange(key) for key in client.scan_iter(f"{prefix}:*")}
        lengths = {key: client.xlen(key) for key in streams}
    finally:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()

    stored = stored_bodies(collector)
    by_type = {t: [e for e in events if e["type"] == t] for t in ("track", "identify", "page")}
    assert sorted(streams) == sorted(f"{prefix}:{t}:web" for t in by_type)
    for kind, sent in by_type.items():
        entries = [fields for _, fields in streams[f"{prefix}:{kind}:web"]]
        for fields in entries:
            assert fields == {b"event": stored[fields[b"messageId"].decode()], b"messageId": fields[b"messageId"],
                              b"source": b"web"}
        # 24 events a stream and MAXLEN ~ 50: nothing trimmed yet, each once, in each user's order.
        assert lengths[f"{prefix}:{kind}:web"] == len(sent)
        assert order_report(sent, [fields[b"event"] for fields in entries]) == ([], 0, [])


def test_max_length_trims_the_stream(collector_factory) -> None:
    """MAXLEN ~ trims whole nodes of the stream (100 entries each by default), so a stream holds
    about max_length entries: at least that many, the newest ones."""
    events = make_events(users=3, per_user=200)
    key = unique("e2e")
    client = redis.Redis.from_url(SHARED_REDIS)
    try:
        collector = collector_factory(collector_config(
            {"type": "redis", "url": SHARED_REDIS, "stream": key, "max_length": 150}))
        send_with_sdk(collector, events)
        wait_delivered(collector, len(events))
        entries = client.xrange(key)
    finally:
        client.delete(key)
        client.close()
    assert 150 <= len(entries) < len(events)
    kept = [fields[b"messageId"].decode() for _, fields in entries]
    for user in {e["anonymousId"] for e in events}:  # what is left of each user: its newest events
        own = [e["messageId"] for e in events if e["anonymousId"] == user]
        kept_own = [m for m in kept if m in set(own)]
        assert kept_own == own[len(own) - len(kept_own):]


def test_server_restarted_mid_load_loses_nothing_and_keeps_each_users_order(collector_factory, tmp_path: Path) -> None:
    """A private redis-server (append-only file, fsync on every write) killed (SIGKILL) while the
    collector writes, and started again on the same file. Redis keeps no record of what it was
    sent: an XADD whose answer died with the server may be written twice; such copies are counted."""
    events = make_events(users=20, per_user=60)
    with RedisServer(tmp_path / "redis") as server:
        collector = collector_factory(collector_config(
            {"type": "redis", "url": server.url, "stream": "events:{source}", "max_length": None}))
        poster = Poster(collector, events)
        wait_delivered(collector, len(events) // 4)
        server.kill()
        delivered_before = delivered(collector)
        time.sleep(1.0)
        server.start()
        poster.join()
        wait_delivered(collector, len(events), timeout=60)
        client = redis.Redis.from_url(server.url)
        entries = client.xrange("events:web")
        client.close()

    copies = check_received(collector, events, [fields[b"event"] for _, fields in entries])
    assert delivered_before < len(events), "the server went down with nothing left to deliver"
    assert collector.metric("collector_delivery_retries_total", destination=DESTINATION) > 0, "no outage seen"
    print(f"redis: {len(events)} events, {copies} extra copies after the server's restart")
