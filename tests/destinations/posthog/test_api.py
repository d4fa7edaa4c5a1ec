"""Requests to PostHog's capture double and the reading of its answers: body, limits, bisecting a
400 or 413, credentials, 429/503 with Retry-After, and failures in the middle of a perform."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collector.destinations.posthog import api
from collector.destinations.posthog.actions import SHAPES
from collector.destinations.posthog.api import EVENT_MAX_BYTES, REQUEST_MAX_BYTES, pack, request_prefix
from tests.destinations.fakes import build, client_session, envelopes
from tests.vendors.posthog import PostHogDouble

API_KEY = "phc_unit_project_key"


@pytest.fixture
async def double():
    async with PostHogDouble(api_key=API_KEY) as running:
        yield running


@pytest.fixture
async def http():
    async with client_session() as (session, _):
        yield session


def destination(double: PostHogDouble, http: Any, tmp_path: Path, **overrides: Any) -> Any:
    settings = {"type": "posthog", "api_key": API_KEY, "endpoint": double.url, **overrides}
    return build(settings, http, tmp_path)


def track(n: int, user: str = "u1", **properties: Any) -> dict:
    return {"type": "track", "event": f"Event {n}", "userId": user, "messageId": f"m-{n}",
            "timestamp": "2024-11-28T13:26:00.000Z", "properties": {"n": n, **properties}}


def kinds(outcome: Any, size: int) -> list[str]:
    return [o.kind for o in outcome.per_event] if outcome.kind == "mixed" else [outcome.kind] * size


def sent_numbers(double: PostHogDouble) -> list[list[int]]:
    return [[e["properties"]["n"] for e in r.json["batch"]] for r in double.requests]


# --- The request --------------------------------------------------------------------------------


async def test_one_request_carries_the_key_the_flag_and_the_events(double, http, tmp_path):
    outcome = await destination(double, http, tmp_path).send(envelopes([track(0), track(1)]))
    assert outcome.kind == "ok"
    (request,) = double.requests
    assert (request.method, request.path, request.status) == ("POST", "/batch/", 200)
    assert request.headers["Content-Type"] == "application/json"
    assert request.json["api_key"] == API_KEY and request.json["historical_migration"] is False
    assert [e.event for e in double.accepted] == ["Event 0", "Event 1"]


async def test_historical_migration_is_sent_when_set(double, http, tmp_path):
    await destination(double, http, tmp_path, historical_migration=True).send(envelopes([track(0)]))
    assert double.requests[0].json["historical_migration"] is True
    assert double.accepted[0].historical_migration is True


async def test_a_resent_event_keeps_its_uuid_and_posthog_keeps_it_once(double, http, tmp_path):
    sender = destination(double, http, tmp_path)
    for _ in range(2):
        assert (await sender.send(envelopes([track(0)]))).kind == "ok"
    assert len(double.accepted) == 1 and len(double.duplicates) == 1


# --- Limits -------------------------------------------------------------------------------------


def padded(n: int, characters: int, text: str = "x") -> dict:
    return track(n, pad=text * characters)


async def test_an_event_over_the_limit_is_rejected_alone(double, http, tmp_path):
    events = [track(0), padded(1, EVENT_MAX_BYTES + 10), track(2)]
    outcome = await destination(double, http, tmp_path).send(envelopes(events))
    assert kinds(outcome, 3) == ["ok", "reject", "ok"]
    assert "over the 921600 it allows" in outcome.per_event[1].reason
    assert sent_numbers(double) == [[0, 2]]


def dumped_size(sender: Any, event: dict) -> int:
    """The size of the PostHog event made of ``event``, as PostHog's Python SDK measures it."""
    (subscription,) = [s for s in sender.subscriptions if s.matches(event)]
    built, _ = api.posthog_event(SHAPES[subscription.action.name], subscription.prepare(event))
    return len(json.dumps(built))


async def test_the_limit_is_measured_as_posthogs_sdk_measures_it(double, http, tmp_path):
    sender = destination(double, http, tmp_path)
    # 400,000 "é" are 800,000 bytes of UTF-8 but 2,400,000 as json.dumps writes them (\u00e9).
    outcome = await sender.send(envelopes([padded(0, 400_000, "é")]))
    assert outcome.kind == "reject" and double.requests == []
    # Exactly at the limit: sent, and PostHog takes it; one byte more: refused here.
    pad = 800_000 + EVENT_MAX_BYTES - dumped_size(sender, padded(1, 800_000))
    assert dumped_size(sender, padded(1, pad)) == EVENT_MAX_BYTES
    outcome = await sender.send(envelopes([padded(1, pad), padded(2, pad + 1)]))
    assert kinds(outcome, 2) == ["ok", "reject"]
    assert [e.event for e in double.accepted] == ["Event 1"]


async def test_events_over_20_mb_go_in_several_requests_in_order(double, http, tmp_path):
    events = [padded(n, 850_000) for n in range(26)]  # about 22 MB
    outcome = await destination(double, http, tmp_path).send(envelopes(events))
    assert outcome.kind == "ok"
    assert len(double.requests) == 2 and all(len(r.body) <= REQUEST_MAX_BYTES for r in double.requests)
    assert sum(sent_numbers(double), []) == list(range(26))
    assert len(double.accepted) == 26


def test_pack_fills_requests_up_to_the_limit_exactly():
    events = [(i, b"x" * 10) for i in range(5)]
    # overhead 5: 5 + 10 = 15, + 11 (a comma and the event) = 26, + 11 = 37 > 26 -> a new request.
    assert [[i for i, _ in r] for r in pack(events, 5, 26)] == [[0, 1], [2, 3], [4]]
    assert [[i for i, _ in r] for r in pack(events, 5, 25)] == [[0], [1], [2], [3], [4]]
    assert pack([], 5, 26) == []


def test_the_request_prefix_is_json_with_the_key_escaped():
    body = request_prefix('phc_"odd\\key', True) + b"]}"
    assert json.loads(body) == {"api_key": 'phc_"odd\\key', "historical_migration": True, "batch": []}


# --- Answers ------------------------------------------------------------------------------------


async def test_a_400_is_bisected_until_the_refused_event_stands_alone(double, http, tmp_path):
    # PostHog does not say which event it refused: [0 1 2 3] -> [0 1] -> [0] refused, [1], [2 3].
    double.fail_next(400, body="event submitted without a distinct_id", times=3)
    outcome = await destination(double, http, tmp_path).send(envelopes([track(n) for n in range(4)]))
    assert kinds(outcome, 4) == ["reject", "ok", "ok", "ok"]
    assert outcome.per_event[0].reason == "event (Track Calls): HTTP 400: event submitted without a distinct_id"
    assert sent_numbers(double) == [[0, 1, 2, 3], [0, 1], [0], [1], [2, 3]]
    assert [e.event for e in double.accepted] == ["Event 1", "Event 2", "Event 3"]


async def test_a_413_is_split_and_a_413_for_one_event_rejects_it(double, http, tmp_path):
    double.fail_next(413, body="Failed to buffer the request body: length limit exceeded")
    outcome = await destination(double, http, tmp_path).send(envelopes([track(0), track(1)]))
    assert outcome.kind == "ok" and sent_numbers(double) == [[0, 1], [0], [1]]
    double.reset()
    double.fail_next(413, body="too large")
    outcome = await destination(double, http, tmp_path).send(envelopes([track(2)]))
    assert (outcome.kind, outcome.split) == ("reject", False) and "HTTP 413: too large" in outcome.reason


async def test_a_wrong_key_waits_for_the_operator_and_stays_out_of_the_reason(double, http, tmp_path):
    wrong = "phc_not_this_projects_key"
    outcome = await destination(double, http, tmp_path, api_key=wrong).send(envelopes([track(0), track(1)]))
    assert outcome.kind == "retry" and outcome.credentials_refused
    assert "credentials refused (HTTP 401: API key is not valid" in outcome.reason
    assert wrong not in outcome.reason and len(double.requests) == 1  # a 401 is not bisected


async def test_a_429_is_retried_after_its_retry_after_and_pauses_the_destination(double, http, tmp_path):
    sender = destination(double, http, tmp_path)
    double.fail_next(429, headers={"Retry-After": "30"})
    outcome = await sender.send(envelopes([track(0)]))
    assert (outcome.kind, outcome.retry_after) == ("retry", 30.0) and "HTTP 429: rate limited" in outcome.reason
    again = await sender.send(envelopes([track(1)]))  # another lane, during the pause: no request
    assert again.kind == "retry" and 29 <= again.retry_after <= 30 and len(double.requests) == 1


@pytest.mark.parametrize(("status", "headers", "after"), [(503, {"Retry-After": "12"}, 12.0), (503, {}, None),
                                                          (500, {}, None), (502, {}, None)])
async def test_server_errors_are_retried(double, http, tmp_path, status, headers, after):
    double.fail_next(status, headers=headers)
    outcome = await destination(double, http, tmp_path).send(envelopes([track(0), track(1)]))
    assert (outcome.kind, outcome.retry_after) == ("retry", after)
    assert f"HTTP {status}" in outcome.reason and len(double.requests) == 1


async def test_a_429_in_the_middle_keeps_what_was_delivered(double, http, tmp_path, monkeypatch):
    monkeypatch.setattr(api, "REQUEST_MAX_BYTES", 400)  # one event a request
    double.fail_next(200, body={"status": 1})  # the first request goes through
    double.fail_next(429, headers={"Retry-After": "5"})
    outcome = await destination(double, http, tmp_path).send(envelopes([track(0), track(1), track(2)]))
    assert kinds(outcome, 3) == ["ok", "retry", "retry"]
    assert outcome.per_event[1].retry_after == 5.0 and 4 < outcome.per_event[2].retry_after <= 5
    assert "paused by the vendor" in outcome.per_event[2].reason
    assert len(double.requests) == 2  # the third was not sent into the pause


async def test_a_network_failure_in_the_middle_keeps_what_was_delivered(double, http, tmp_path, monkeypatch):
    monkeypatch.setattr(api, "REQUEST_MAX_BYTES", 400)
    sender = destination(double, http, tmp_path)
    requests = 0
    real_request = type(sender.http).request

    def request(session: Any, method: str, url: str, **kwargs: Any) -> Any:
        nonlocal requests
        requests += 1
        if requests == 2:
            url = "http://127.0.0.1:9/batch/"  # nothing listens on the discard port
        return real_request(session, method, url, **kwargs)

    monkeypatch.setattr(type(sender.http), "request", request)
    outcome = await sender.send(envelopes([track(0), track(1), track(2)]))
    assert kinds(outcome, 3) == ["ok", "retry", "ok"]
    assert "ClientConnectorError" in outcome.per_event[1].reason
    assert [e.event for e in double.accepted] == ["Event 0", "Event 2"]
