"""The destination against the Meta Graph double (tests/vendors/facebook.py), in process: requests,
the 1,000-event limit, events Meta refuses by index, Graph errors, and Custom Audience changes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from collector.destinations.facebook_conversions import api
from tests.destinations.fakes import envelopes
from tests.vendors.facebook import FacebookDouble

from .support import AUDIENCE, NOW, PIXEL, TOKEN, browser_event, each, iso, kinds, on_double, sha

DAY = 86400
EVENTS_PATH = f"/v24.0/{PIXEL}/events"


def pages(count: int, ages: list[float] | None = None) -> list[dict[str, Any]]:
    """Page views of ``count`` visitors, ``ages[i]`` seconds old (a minute by default)."""
    events = []
    for i in range(count):
        event = browser_event("page", messageId=f"m{i}", anonymousId=f"anon-{i}", userId=None,
                              timestamp=iso(NOW - (ages[i] if ages else 60)))
        events.append(event)
    return events


def sent(double: FacebookDouble) -> list[list[str]]:
    """The event ids of every request to the events endpoint, in order."""
    return [[e["event_id"] for e in call.json["data"]] for call in double.requests if call.path == EVENTS_PATH]


# --- Requests and limits ---------------------------------------------------------------------------


async def test_requests_carry_the_token_as_bearer_json_and_the_test_event_code():
    async with FacebookDouble(TOKEN, pixel_ids=[PIXEL], clock=lambda: NOW) as double, \
            on_double(double, test_event_code="TEST4711") as destination:
        outcome = await destination.send(envelopes(pages(2)))
    assert outcome.kind == "ok"
    (call,) = double.requests
    assert (call.method, call.path, call.query) == ("POST", EVENTS_PATH, {})
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"
    assert call.headers["Content-Type"] == "application/json"
    assert set(call.json) == {"data", "test_event_code"} and call.json["test_event_code"] == "TEST4711"
    assert [e.test_event_code for e in double.accepted] == ["TEST4711", "TEST4711"]


async def test_a_batch_over_1000_events_goes_in_requests_of_at_most_1000():
    async with FacebookDouble(TOKEN, clock=lambda: NOW) as double, on_double(double) as destination:
        outcome = await destination.send(envelopes(pages(2300)))
    assert outcome.kind == "ok"
    assert sorted(len(ids) for ids in sent(double)) == [300, 1000, 1000]
    assert sorted(e.event["event_id"] for e in double.accepted) == sorted(f"m{i}" for i in range(2300))


async def test_a_resent_event_is_kept_once_by_meta():
    async with FacebookDouble(TOKEN, clock=lambda: NOW) as double, on_double(double) as destination:
        await destination.send(envelopes(pages(1)))
        await destination.send(envelopes(pages(1)))
    assert len(double.requests) == 2 and len(double.accepted) == 1 and len(double.duplicates) == 1


async def test_events_refused_here_are_not_sent_and_the_others_are():
    events = pages(3, ages=[60, 8 * DAY, 60])
    async with FacebookDouble(TOKEN, clock=lambda: NOW) as double, on_double(double) as destination:
        outcome = await destination.send(envelopes(events))
    assert kinds(outcome, 3) == ["ok", "reject", "ok"]
    assert outcome.per_event[1].reason == (
        f"event (Page Calls): event_time {iso(NOW - 8 * DAY)} is 8.0 days old; Meta refuses website events more "
        "than 7 days old")
    assert sent(double) == [["m0", "m2"]]


# --- Meta refusing a whole request for one event ----------------------------------------------------


async def test_an_event_meta_refuses_by_index_is_rejected_with_its_message_and_the_rest_resent():
    # Meta's clock is 7 days less half an hour ahead of ours: an event an hour old is too old for it,
    # which no check here can see.
    meta_now = NOW + 7 * DAY - 1800
    events = pages(4, ages=[60, 3600, 60, 3600])
    async with FacebookDouble(TOKEN, clock=lambda: meta_now) as double, on_double(double) as destination:
        outcome = await destination.send(envelopes(events))
    assert kinds(outcome, 4) == ["ok", "reject", "ok", "reject"]
    assert sent(double) == [["m0", "m1", "m2", "m3"], ["m0", "m2", "m3"], ["m0", "m2"]]
    assert [call.status for call in double.requests] == [400, 400, 200]
    first_refusal = double.requests[0].answer["error"]
    assert outcome.per_event[1].reason == (
        "event (Page Calls): Meta refused the event: Meta error #100/2804003: Event Timestamp Too Old - "
        + first_refusal["error_user_msg"])
    assert "Event at index 2:" in outcome.per_event[3].reason  # its index in the second request
    assert sorted(e.event["event_id"] for e in double.accepted) == ["m0", "m2"]


async def test_after_a_few_resends_the_remaining_events_are_retried_later():
    meta_now = NOW + 7 * DAY - 1800
    events = pages(6, ages=[3600] * 5 + [60])
    async with FacebookDouble(TOKEN, clock=lambda: meta_now) as double, on_double(double) as destination:
        outcome = await destination.send(envelopes(events))
    assert kinds(outcome, 6) == ["reject"] * 4 + ["retry"] * 2
    assert len(double.requests) == api.MAX_RESENDS + 1
    assert outcome.per_event[5].reason == ("event (Page Calls): Meta refused 4 events of this request one by one; "
                                           "the others are retried alone")


async def test_a_refusal_naming_an_index_in_error_data_is_read_too():
    body = {"error": {"message": "Invalid parameter", "type": "OAuthException", "code": 100,
                      "error_subcode": 2804019, "error_user_msg": "The event is invalid.",
                      "error_data": json.dumps({"event_index": 1})}}
    async with FacebookDouble(TOKEN, clock=lambda: NOW) as double, on_double(double) as destination:
        double.fail_next(400, body)
        outcome = await destination.send(envelopes(pages(3)))
    assert kinds(outcome, 3) == ["ok", "reject", "ok"]
    assert sent(double) == [["m0", "m1", "m2"], ["m0", "m2"]]


async def test_a_pause_set_by_the_refusal_leaves_the_rest_to_be_retried_after_it():
    body = {"error": {"message": "Invalid parameter", "code": 100, "error_user_msg": "Event at index 0: bad."}}
    async with FacebookDouble(TOKEN, clock=lambda: NOW) as double, on_double(double) as destination:
        double.fail_next(400, body, headers={"Retry-After": "30"})
        outcome = await destination.send(envelopes(pages(2)))
    refused, waiting = each(outcome, 2)
    assert (refused.kind, waiting.kind) == ("reject", "retry")
    assert 29 < waiting.retry_after <= 30 and "paused by the vendor" in waiting.reason
    assert len(double.requests) == 1


async def test_a_refusal_that_names_no_event_refuses_them_all_with_metas_message():
    body = {"error": {"message": "Invalid parameter", "type": "OAuthException", "code": 100,
                      "error_user_title": "Invalid Parameter", "error_user_msg": "The parameter data is malformed."}}
    async with FacebookDouble(TOKEN, clock=lambda: NOW) as double, on_double(double) as destination:
        double.fail_next(400, body)
        outcome = await destination.send(envelopes(pages(2)))
    assert (outcome.kind, outcome.reason) == (
        "reject", "event (Page Calls): Meta error #100: Invalid Parameter - The parameter data is malformed.")


# --- Graph errors ----------------------------------------------------------------------------------


async def test_a_bad_token_waits_for_the_operator_rather_than_dead_lettering():
    async with FacebookDouble("EAAsomeone-else", clock=lambda: NOW) as double, on_double(double) as destination:
        outcome = await destination.send(envelopes(pages(2)))
    assert outcome.kind == "retry" and outcome.credentials_refused
    assert outcome.reason == ("event (Page Calls): credentials refused (Meta error #190: Invalid OAuth access token "
                              "- Cannot parse access token); check the destination's access_token")
    assert TOKEN not in outcome.reason


@pytest.mark.parametrize(("status", "code"), [(400, 4), (400, 17), (400, 32), (403, 613), (400, 80004)])
async def test_rate_limit_codes_are_retried_and_pause_every_lane(status, code):
    body = {"error": {"message": f"(#{code}) rate limit", "type": "OAuthException", "code": code}}
    async with FacebookDouble(TOKEN, clock=lambda: NOW) as double, on_double(double) as destination:
        double.fail_next(status, body)
        outcome = await destination.send(envelopes(pages(2)))
        paused = destination.pause.remaining()
    assert (outcome.kind, outcome.retry_after) == ("retry", 1.0)  # retry.initial_backoff
    assert outcome.reason == f"event (Page Calls): rate limited (Meta error #{code}: (#{code}) rate limit)"
    assert 0 < paused <= 1.0


async def test_a_rate_limit_waits_for_metas_estimated_time_to_regain_access():
    body = {"error": {"message": "(#80004) There have been too many calls", "code": 80004, "error_subcode": 2446079}}
    usage = {"1234": [{"type": "ads_management", "call_count": 100, "estimated_time_to_regain_access": 2}]}
    async with FacebookDouble(TOKEN, clock=lambda: NOW) as double, on_double(double) as destination:
        double.fail_next(400, body, headers={"X-Business-Use-Case-Usage": json.dumps(usage)})
        outcome = await destination.send(envelopes(pages(1)))
    assert (outcome.kind, outcome.retry_after) == ("retry", 120.0)


async def test_429_with_retry_after_is_honoured():
    async with FacebookDouble(TOKEN, clock=lambda: NOW) as double, on_double(double) as destination:
        double.fail_next(429, headers={"Retry-After": "7"})
        outcome = await destination.send(envelopes(pages(1)))
        paused = destination.pause.remaining()
    assert (outcome.kind, outcome.retry_after) == ("retry", 7.0)
    assert 6 < paused <= 7


@pytest.mark.parametrize(("status", "body", "reason"), [
    (503, None, "Meta error #2: An unexpected error has occurred. Please retry your request later."),
    (500, b"upstream connect error", "HTTP 500: upstream connect error"),
    (500, {"error": {"message": "An unknown error occurred", "code": 1}}, "Meta error #1: An unknown error occurred"),
    (400, {"error": {"message": "Service temporarily unavailable", "code": 2}},
     "Meta error #2: Service temporarily unavailable"),
    (400, {"error": {"message": "Please retry", "code": 100, "is_transient": True}}, "Meta error #100: Please retry"),
])
async def test_server_errors_and_transient_codes_are_retried(status, body, reason):
    async with FacebookDouble(TOKEN, clock=lambda: NOW) as double, on_double(double) as destination:
        double.fail_next(status, body)
        outcome = await destination.send(envelopes(pages(1)))
    assert (outcome.kind, outcome.reason) == ("retry", f"event (Page Calls): {reason}")


async def test_a_missing_permission_or_an_unknown_pixel_waits_for_the_operator():
    body = {"error": {"message": "(#200) Permissions error", "code": 200}}
    async with FacebookDouble(TOKEN, clock=lambda: NOW) as double, on_double(double) as destination:
        double.fail_next(403, body)
        outcome = await destination.send(envelopes(pages(1)))
    assert outcome.kind == "retry" and "check the access_token's permissions" in outcome.reason
    async with FacebookDouble(TOKEN, pixel_ids=["42"], clock=lambda: NOW) as double, on_double(double) as destination:
        outcome = await destination.send(envelopes(pages(1)))
    assert outcome.kind == "retry"
    assert outcome.reason.endswith(f"Object with ID '{PIXEL}' does not exist, cannot be loaded due to missing "
                                   "permissions, or does not support this operation.; check the destination's "
                                   "pixel_id and audiences")


# --- Custom Audiences ------------------------------------------------------------------------------


def audience_event(event: str, key: str, email: str | None, n: int, **extra: Any) -> dict[str, Any]:
    body = browser_event("track", event, {"audience_key": key, key: event == "Audience Entered"},
                         messageId=f"a{n}", userId=f"user-{n}", anonymousId=f"anon-{n}")
    if email:
        body["context"]["traits"] = {"email": email}
    body.update(extra)
    return body


async def test_audience_entered_and_exited_add_and_remove_hashed_users():
    entered = [audience_event("Audience Entered", "vip", f"u{n}@example.com", n) for n in range(3)]
    async with FacebookDouble(TOKEN, audience_ids=[AUDIENCE], clock=lambda: NOW) as double, \
            on_double(double, audiences={"vip": AUDIENCE}) as destination:
        assert (await destination.send(envelopes(entered))).kind == "ok"
        members = set(double.audiences[AUDIENCE])
        exited = [audience_event("Audience Exited", "vip", "u1@example.com", 1)]
        assert (await destination.send(envelopes(exited))).kind == "ok"
    assert members == {(key, sha(value)) for n in range(3)
                       for key, value in (("EMAIL", f"u{n}@example.com"), ("EXTERN_ID", f"user-{n}"))}
    assert double.audiences[AUDIENCE] == members - {("EMAIL", sha("u1@example.com")), ("EXTERN_ID", sha("user-1"))}
    add, remove = double.requests
    assert (add.method, add.path, remove.method) == ("POST", f"/v24.0/{AUDIENCE}/users", "DELETE")
    assert add.headers["Authorization"] == f"Bearer {TOKEN}"
    assert add.json["payload"] == {"schema": ["EXTERN_ID", "EMAIL"],
                                   "data": [[sha(f"user-{n}"), sha(f"u{n}@example.com")] for n in range(3)]}


async def test_each_request_holds_one_audience_and_one_operation():
    events = [audience_event("Audience Entered", "vip", "a@example.com", 0),
              audience_event("Audience Entered", "churned", "b@example.com", 1),
              audience_event("Audience Exited", "vip", "c@example.com", 2),
              audience_event("Audience Entered", "vip", "d@example.com", 3)]
    async with FacebookDouble(TOKEN, clock=lambda: NOW) as double, \
            on_double(double, audiences={"vip": "111", "churned": "222"}) as destination:
        assert (await destination.send(envelopes(events))).kind == "ok"
    operations = sorted((audience, operation, len(rows)) for audience, operation, rows in double.audience_operations)
    assert operations == [("111", "add", 2), ("111", "remove", 1), ("222", "add", 1)]


async def test_an_audience_not_configured_or_a_user_without_identifiers_is_refused_here():
    events = [audience_event("Audience Entered", "unknown", "a@example.com", 0),
              audience_event("Audience Entered", "vip", None, 1, userId=None),
              audience_event("Audience Entered", "vip", "c@example.com", 2)]
    async with FacebookDouble(TOKEN, clock=lambda: NOW) as double, \
            on_double(double, audiences={"vip": AUDIENCE}) as destination:
        outcome = await destination.send(envelopes(events))
    unknown, anonymous, known = each(outcome, 3)
    assert unknown.reason == ("audience (Audience Entered): no Custom Audience for the audience key 'unknown': add it "
                              "to the destination's audiences setting (audience key: Custom Audience id); "
                              "configured: vip")
    assert anonymous.reason == ("audience (Audience Entered): no identifier for the Custom Audience (em, ph, "
                                "external_id, madid, ...)")
    assert known.kind == "ok"
    assert [(a, op, len(rows)) for a, op, rows in double.audience_operations] == [(AUDIENCE, "add", 1)]


async def test_a_mapped_audience_id_needs_no_audiences_setting():
    mapping = {"name": "Audience Entered", "fields": {"audience_id": AUDIENCE}}
    async with FacebookDouble(TOKEN, clock=lambda: NOW) as double, \
            on_double(double, mappings=[mapping]) as destination:
        outcome = await destination.send(envelopes([audience_event("Audience Entered", "any", "a@example.com", 0)]))
    assert outcome.kind == "ok" and ("EMAIL", sha("a@example.com")) in double.audiences[AUDIENCE]


async def test_users_meta_counts_invalid_are_refused_with_its_sample():
    events = [audience_event("Audience Entered", "vip", f"u{n}@example.com", n) for n in range(2)]
    row = json.dumps([sha("user-1"), sha("u1@example.com")])
    answer = {"audience_id": AUDIENCE, "num_received": 2, "num_invalid_entries": 1,
              "invalid_entry_samples": {row: "Invalid entry"}}
    async with FacebookDouble(TOKEN, clock=lambda: NOW) as double, \
            on_double(double, audiences={"vip": AUDIENCE}) as destination:
        double.fail_next(200, answer)
        outcome = await destination.send(envelopes(events))
    assert kinds(outcome, 2) == ["ok", "reject"]
    assert outcome.per_event[1].reason == "audience (Audience Entered): Meta counted the user as invalid: Invalid entry"


async def test_an_audience_request_refused_for_the_token_waits():
    async with FacebookDouble("EAAother", clock=lambda: NOW) as double, \
            on_double(double, audiences={"vip": AUDIENCE}) as destination:
        outcome = await destination.send(envelopes([audience_event("Audience Entered", "vip", "a@example.com", 0)]))
    assert outcome.kind == "retry" and "credentials refused (Meta error #190" in outcome.reason
