"""Destinations that fail: retried (Retry-After honoured) without loss and in order per user, without
holding the other destinations up; rejected for good or given up on into the dead-letter store."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict

from tests.support.process import free_port
from tests.support.receiver import Receiver

from .helpers import (
    FAST_BATCH,
    FAST_RETRY,
    STORAGE,
    by_message_id,
    dead_letters,
    post,
    received_events,
    received_with_times,
    request_json,
    wait_for_events,
    wait_until,
)

WRITE_KEY = "wk_outage"


def config(**destinations: dict) -> dict:
    return {"storage": STORAGE, "sources": {"app": {"write_key": WRITE_KEY}}, "destinations": destinations}


def segment(receiver_url: str, **settings: object) -> dict:
    return {"type": "segment", "endpoint": receiver_url, "write_key": "wk_vendor",
            "batch": FAST_BATCH, "retry": FAST_RETRY, **settings}


def webhook(receiver_url: str, **settings: object) -> dict:
    return {"type": "webhook", "url": receiver_url + "/hook", "batch": FAST_BATCH, "retry": FAST_RETRY, **settings}


def user_events(run: str, users: int, per_user: int) -> list[dict]:
    """per_user events for each user, interleaved across users; properties.seq counts per user."""
    return [
        {"type": "track", "userId": f"u{u}-{run}", "event": "Step", "messageId": f"{run}-u{u}-{n}",
         "properties": {"seq": n}}
        for n in range(per_user) for u in range(users)
    ]


def post_all(url: str, events: list[dict], per_request: int) -> None:
    for start in range(0, len(events), per_request):
        status, answer = post(url, "/v1/batch", {"batch": events[start:start + per_request]}, WRITE_KEY)
        assert (status, answer) == (200, {"success": True})


def first_delivery_order(receiver: Receiver) -> dict[str, list[int]]:
    """For each user, the properties.seq of their events in the order each was FIRST delivered."""
    seen: set[str] = set()
    order: dict[str, list[int]] = defaultdict(list)
    for event in received_events(receiver):
        if event["messageId"] not in seen:
            seen.add(event["messageId"])
            order[event["userId"]].append(event["properties"]["seq"])
    return order


def test_503_then_429_then_200_loses_nothing_keeps_user_order_and_holds_no_one_up(
    collector_factory, receiver: Receiver
) -> None:
    users, per_user = 8, 15
    with Receiver() as other:
        # Four lanes, small batches: several batches in flight, each user's in one lane.
        receiver.script(503, 503, (429, {"Retry-After": "1"}), (429, {"Retry-After": "1"}))
        collector = collector_factory(config(
            flaky=segment(receiver.url, concurrency=4, batch={**FAST_BATCH, "max_events": 5}),
            steady=webhook(other.url, batch={**FAST_BATCH, "max_events": 5}),
        ))
        events = user_events(uuid.uuid4().hex[:8], users, per_user)
        posted_at = time.monotonic()
        post_all(collector.url, events, per_request=20)
        total = len(events)

        flaky_events = wait_for_events(receiver, total, timeout=30)
        steady = received_with_times(other)

    ids = {e["messageId"] for e in events}
    # Everything arrived at both; at the steady one exactly once.
    assert set(by_message_id(flaky_events)) == ids
    assert by_message_id(e for e, _ in steady) == {i: 1 for i in ids}

    # The script was played: two 503s and two 429s, each failed batch re-sent (the same batch)
    # until it got a 200; after a 429 with Retry-After: 1 not sooner than a second, after a 503
    # (no Retry-After) by the short backoff, unless a 429 paused the whole destination meanwhile.
    requests = list(receiver.requests)
    failed = [i for i, r in enumerate(requests) if r.status != 200]
    assert [requests[i].status for i in failed] == [503, 503, 429, 429]
    # (the receiver stamps a request once read: a little slack either way)
    pauses = [(r.at, r.at + 1.0) for r in requests if r.status == 429]
    redeliveries_after_429 = []
    for index in failed:
        bad = requests[index]
        batch_ids = {e["messageId"] for e in request_json(bad)["batch"]}
        attempts = [r for r in requests[index + 1:] if {e["messageId"] for e in request_json(r)["batch"]} == batch_ids]
        assert attempts and any(r.status == 200 for r in attempts), f"the batch answered {bad.status} was not re-sent"
        wait = attempts[0].at - bad.at
        if bad.status == 429:
            assert wait >= 0.95, f"re-sent {wait:.3f}s after a 429 with Retry-After: 1"
            redeliveries_after_429.append(attempts[0].at)
        else:
            paused_until = max((end for start, end in pauses if bad.at <= start < attempts[0].at), default=None)
            if paused_until is None:
                assert wait < 0.9, f"re-sent {wait:.3f}s after a 503 (initial_backoff 0.1s)"
            else:
                assert attempts[0].at - paused_until < 0.9, "re-sent long after the 429's pause ended"
    # A Retry-After pauses every lane of the destination: nothing is sent during one (but what was
    # already on its way when the 429 came).
    for start, end in pauses:
        during = [r.at - start for r in requests if start + 0.1 < r.at < end - 0.05]
        assert during == [], f"sent during a Retry-After pause, at +{during}s"
    # No retry that the script did not call for.
    assert len(requests) - len(failed) == len({frozenset(e["messageId"] for e in request_json(r)["batch"])
                                               for r in requests})

    # Per-user order of first delivery is the order the user's events were sent.
    order = first_delivery_order(receiver)
    assert len(order) == users
    for user, seqs in order.items():
        assert seqs == list(range(per_user)), f"{user}: delivered in order {seqs}"

    # The steady destination was not held up: it had every event before the flaky one recovered
    # (sent again what it had been answered 429, a second later).
    steady_done = max(at for _, at in steady)
    recovered = min(redeliveries_after_429)
    assert steady_done < recovered, (
        f"the steady destination had everything {steady_done - posted_at:.3f}s after the first post, "
        f"the flaky one recovered {recovered - posted_at:.3f}s after it"
    )
    assert collector.metric("collector_delivery_retries_total", destination="flaky") == 4
    assert collector.metric("collector_delivery_retries_total", destination="steady") == 0
    assert collector.metric("collector_dead_lettered_events_total") == 0


def test_a_400_dead_letters_the_rejected_event_and_the_rest_still_flows(
    collector_factory, receiver: Receiver
) -> None:
    # A 400 means "never": nothing is retried as is. The engine halves a rejected batch until the
    # rejected events stand alone, so with [a b c d] answered 400, [a b] 400, [a] 400, then 200s,
    # only a is dead-lettered and b, c, d are delivered.
    receiver.script(400, 400, 400)
    collector = collector_factory(config(vendor=segment(receiver.url, concurrency=1)))
    run = uuid.uuid4().hex[:8]
    first = [{"type": "track", "userId": "ada", "event": "Step", "messageId": f"{run}-{i}", "properties": {"seq": i}}
             for i in range(4)]
    post_all(collector.url, first, per_request=4)

    wait_until("the rejected event in the dead-letter store",
               lambda: collector.metric("collector_dead_lettered_events_total", destination="vendor") >= 1)
    delivered = wait_for_events(receiver, 3)
    batches = [[e["messageId"] for e in request_json(r)["batch"]] for r in receiver.requests]
    statuses = [r.status for r in receiver.requests]
    ids = [e["messageId"] for e in first]
    assert list(zip(statuses, batches)) == [
        (400, ids), (400, ids[:2]), (400, ids[:1]), (200, ids[1:2]), (200, ids[2:]),
    ]
    assert [e["properties"]["seq"] for e in delivered] == [1, 2, 3]

    later = [{"type": "track", "userId": "ada", "event": "Step", "messageId": f"{run}-{i}", "properties": {"seq": i}}
             for i in range(4, 7)]
    post_all(collector.url, later, per_request=3)
    delivered = wait_for_events(receiver, 6)
    assert by_message_id(delivered) == {m: 1 for m in ids[1:] + [e["messageId"] for e in later]}
    assert [e["properties"]["seq"] for e in delivered] == [1, 2, 3, 4, 5, 6]

    assert collector.metric("collector_dead_lettered_events_total", destination="vendor") == 1
    assert collector.metric("collector_delivery_retries_total", destination="vendor") == 0
    letters = dead_letters(collector.config["storage"]["path"], "vendor")
    assert [d["event"]["messageId"] for d in letters] == ids[:1]
    assert letters[0]["reason"].startswith("HTTP 400"), letters[0]["reason"]


def test_a_destination_down_longer_than_give_up_after_dead_letters_with_the_reason(
    collector_factory, receiver: Receiver
) -> None:
    give_up = 2.0
    retry = {**FAST_RETRY, "give_up_after": give_up}
    receiver.script(*[503] * 10_000)  # a vendor answering 503 all along
    collector = collector_factory(config(
        unreachable=webhook(f"http://127.0.0.1:{free_port()}", retry=retry),  # nothing listens there
        failing=segment(receiver.url, retry=retry),
    ))
    run = uuid.uuid4().hex[:8]
    events = [{"type": "track", "userId": f"u{i % 3}", "event": "Lost", "messageId": f"{run}-{i}"} for i in range(9)]
    posted_at = time.monotonic()
    post_all(collector.url, events, per_request=9)

    for name in ("unreachable", "failing"):
        wait_until(f"{name} to give up",
                   lambda: collector.metric("collector_dead_lettered_events_total", destination=name) >= len(events),
                   timeout=give_up + 15, every=0.05)
    gave_up_after = time.monotonic() - posted_at
    assert gave_up_after >= give_up
    assert received_events(receiver) == []  # nothing got through, nothing was lost either
    attempts = len(receiver.requests)
    assert attempts >= 3, "the failing destination was not retried before giving up"

    path = collector.config["storage"]["path"]
    for name, cause in (("unreachable", "Connect"), ("failing", "HTTP 503")):
        assert collector.metric("collector_dead_lettered_events_total", destination=name) == len(events)
        letters = dead_letters(path, name)
        assert sorted(d["event"]["messageId"] for d in letters) == sorted(e["messageId"] for e in events)
        for letter in letters:
            assert letter["reason"].startswith("gave up after "), letter["reason"]
            assert cause in letter["reason"], letter["reason"]
            assert letter["failed"] - letter["received"] >= give_up * 1000

    # Once the vendor is back, new events flow and the given-up ones are not sent again.
    receiver.answers.clear()
    later = [{"type": "track", "userId": "u0", "event": "Back", "messageId": f"{run}-back"}]
    post_all(collector.url, later, per_request=1)
    delivered = wait_for_events(receiver, 1)
    assert [e["messageId"] for e in delivered] == [f"{run}-back"]
    assert collector.metric("collector_dead_lettered_events_total", destination="failing") == len(events)
