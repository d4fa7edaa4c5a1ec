"""Requests to the Track API double and the reading of its answers: size limits, 207 per-entity
errors, a 400 bisected, 401, 429 with Retry-After, 5xx."""

from __future__ import annotations

from collector.destinations.customerio.api import ENTITY_MAX_BYTES, REQUEST_MAX_BYTES, pack, read_multistatus
from tests.destinations.fakes import envelopes
from tests.vendors.customerio import BATCH_MAX_BYTES

from .support import destination, double, http, kinds  # noqa: F401

TS = "2024-11-28T13:26:00.000Z"


def track(n: int, user: str = "u1", **properties) -> dict:
    return {"type": "track", "event": f"Event {n}", "userId": user, "messageId": f"m-{n}", "timestamp": TS,
            "properties": {"n": n, **properties}}


async def test_a_large_batch_is_split_by_bytes_under_the_request_limit(double, http, tmp_path):
    events = [track(n, blob="x" * 20_000) for n in range(60)]  # ~1.2 MB in all
    outcome = await destination(double, http, tmp_path).send(envelopes(events))
    assert outcome.kind == "ok"
    assert len(double.requests) >= 3
    assert all(len(r.decoded) <= REQUEST_MAX_BYTES <= BATCH_MAX_BYTES and r.status == 200 for r in double.requests)
    assert [e["attributes"]["n"] for e in double.accepted] == list(range(60))


async def test_an_entity_over_32_kb_is_rejected_alone(double, http, tmp_path):
    events = [track(0), track(1, blob="x" * ENTITY_MAX_BYTES), track(2)]
    outcome = await destination(double, http, tmp_path).send(envelopes(events))
    assert kinds(outcome, 3) == ["ok", "reject", "ok"]
    assert "32 KB" in outcome.per_event[1].reason
    assert [e["attributes"]["n"] for e in double.accepted] == [0, 2]


async def test_207_errors_reject_those_entities_with_the_reason_and_deliver_the_rest(double, http, tmp_path):
    nameless_page = {"type": "page", "userId": "u1", "messageId": "p", "timestamp": TS, "properties": {"url": "u"}}
    events = [track(0), track(1), nameless_page]
    # An entity the double refuses: override the page's name with an empty string.
    dest = destination(double, http, tmp_path, mappings=[{"name": "Track Calls", "fields": {
        "name": {"@if": {"exists": {"@path": "$.properties.bad"}, "then": "", "else": {"@path": "$.event"}}}}}])
    events[1]["properties"]["bad"] = True
    outcome = await dest.send(envelopes(events))
    assert kinds(outcome, 3) == ["ok", "reject", "ok"]
    assert "Customer.io refused the entity" in outcome.per_event[1].reason
    assert "field name" in outcome.per_event[1].reason
    assert sorted(e.get("id") for e in double.accepted) == ["m-0", "p"]
    assert any(r.status == 207 for r in double.requests)


def test_read_multistatus_ignores_unknown_indexes():
    outcomes = read_multistatus({"errors": [{"batch_index": 1, "reason": "bad", "field": "x"},
                                            {"batch_index": 9, "reason": "?"}]}, 2)
    assert [o.kind for o in outcomes] == ["ok", "reject"] and outcomes[1].reason.endswith("bad (field x)")


def test_pack_keeps_order_and_limit():
    pieces = [(i, b"x" * 40) for i in range(10)]
    chunks = pack(pieces, limit=100)
    assert [i for chunk in chunks for i, _ in chunk] == list(range(10))
    assert all(len(b'{"batch":[]}') + sum(len(d) for _, d in c) + len(c) - 1 <= 100 for c in chunks)
    assert len(chunks) == 5


async def test_a_400_for_several_is_bisected_to_the_entity_refused(double, http, tmp_path):
    double.fail_next(400, {"meta": {"error": "bad request"}})  # the first request of three entities
    outcome = await destination(double, http, tmp_path).send(envelopes([track(0), track(1), track(2)]))
    assert outcome.kind == "ok"
    assert [r.status for r in double.requests] == [400, 200, 200]
    assert sorted(e["attributes"]["n"] for e in double.accepted) == [0, 1, 2]


async def test_a_400_for_one_entity_rejects_it_with_the_reason(double, http, tmp_path):
    double.fail_next(400, {"meta": {"error": "unparseable"}})
    outcome = await destination(double, http, tmp_path).send(envelopes([track(0)]))
    assert outcome.kind == "reject" and "unparseable" in outcome.reason


async def test_401_is_a_retry_for_credentials(double, http, tmp_path):
    double.api_key = "rotated"
    outcome = await destination(double, http, tmp_path).send(envelopes([track(0)]))
    assert outcome.kind == "retry" and "401" in outcome.reason and "cio-unit-key" not in outcome.reason


async def test_429_retry_after_is_honoured(double, http, tmp_path):
    double.fail_next(429, headers={"Retry-After": "9"})
    outcome = await destination(double, http, tmp_path).send(envelopes([track(0)]))
    assert outcome.kind == "retry" and outcome.retry_after == 9.0


async def test_5xx_is_retried(double, http, tmp_path):
    double.fail_next(502)
    outcome = await destination(double, http, tmp_path).send(envelopes([track(0)]))
    assert outcome.kind == "retry" and "502" in outcome.reason
    assert double.accepted == []
