"""google_ads against the Google Ads and OAuth doubles: requests, limits, and Google's answers read
event by event (partial failures, 429 with its delay, 5xx, refused tokens)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from collector.destinations.actions.context import Response
from collector.destinations.actions.subscriptions import ActionItem
from collector.destinations.google_ads import api
from collector.destinations.google_ads.answers import partial_outcomes, read_answer
from tests.destinations.fakes import envelopes

from .conftest import (
    ACTION_ID, CID, CLIENT_SECRET, DEV, LIST_ID, MANAGER, REFRESH, Google, audience, build, kinds, order, sha,
)

UPLOAD = f"/v22/customers/{CID}:uploadClickConversions"
V = "type.googleapis.com/google.ads.googleads.v22.errors.GoogleAdsFailure"


def body(call: Any) -> Any:
    return json.loads(call.decoded)


# --- requests ---------------------------------------------------------------------------------------


async def test_conversions_go_in_one_request_with_googles_headers(google, http):
    destination = build(google, http)
    outcome = await destination.send(envelopes([order(i, gclid=f"g-{i}") for i in range(3)]))
    assert outcome.kind == "ok", outcome
    [call] = google.calls(":uploadClickConversions")
    assert (call.method, call.path) == ("POST", UPLOAD)
    token = google.oauth.accepted[0].access_token
    assert call.headers["Authorization"] == f"Bearer {token}"
    assert call.headers["developer-token"] == DEV
    assert call.headers["login-customer-id"] == MANAGER
    assert call.headers["Content-Type"] == "application/json"
    sent = body(call)
    assert sent["partialFailure"] is True
    assert [c["gclid"] for c in sent["conversions"]] == ["g-0", "g-1", "g-2"]
    assert [c["orderId"] for c in google.ads.accepted] == ["o-0", "o-1", "o-2"]
    assert google.oauth.token_requests == 1


async def test_more_conversions_than_google_takes_are_cut_into_requests_of_2000(google, http):
    destination = build(google, http)
    events = [order(i, gclid=f"g-{i}") for i in range(4001)]
    for event in events:
        event["userId"] = "one-user"  # one user's events: the requests go one after the other, in order
    outcome = await destination.send(envelopes(events))
    assert outcome.kind == "ok", outcome.reason
    sizes = [len(body(call)["conversions"]) for call in google.calls(":uploadClickConversions")]
    assert sizes == [2000, 2000, 1]
    assert [c["gclid"] for c in google.ads.accepted] == [f"g-{i}" for i in range(4001)]


async def test_each_conversion_action_gets_its_own_requests(google, http):
    mapping = {"name": "Click Conversion", "fields": {"conversion_action": {"@path": "$.properties.action"}}}
    destination = build(google, http, mappings=[mapping])
    events = [order(i, gclid=f"g-{i}", action=[ACTION_ID, "789"][i % 2]) for i in range(4)]
    assert (await destination.send(envelopes(events))).kind == "ok"
    actions = [{c["conversionAction"] for c in body(call)["conversions"]} for call in google.calls("Conversions")]
    assert sorted(map(sorted, actions)) == [[f"customers/{CID}/conversionActions/{ACTION_ID}"],
                                            [f"customers/{CID}/conversionActions/789"]]


async def test_an_event_google_could_not_attribute_is_refused_alone_without_a_request(google, http):
    lost = order(1)
    lost["context"] = {}
    outcome = await build(google, http).send(envelopes([order(0, gclid="g-0"), lost]))
    assert kinds(outcome, 2) == ["ok", "reject"]
    assert "no gclid, gbraid, wbraid, e-mail or phone" in outcome.per_event[1].reason
    assert [len(body(c)["conversions"]) for c in google.calls(":uploadClickConversions")] == [1]


# --- per-item outcomes ------------------------------------------------------------------------------


async def test_partial_failures_mark_their_events_only(google, http):
    google.ads.fail_click("g-expired", "EXPIRED_EVENT")
    google.ads.fail_click("g-recent", "TOO_RECENT_EVENT")
    google.ads.add_rule("RESOURCE_EXHAUSTED", lambda c: c.get("gclid") == "g-quota", category="quotaError")
    events = [order(0, gclid="g-0"), order(1, gclid="g-expired"), order(2, gclid="g-recent"),
              order(3, gclid="g-3", currency="XYZ"), order(4, gclid="g-quota"), order(5, gclid="g-5")]
    outcome = await build(google, http).send(envelopes(events))
    assert kinds(outcome, 6) == ["ok", "reject", "retry", "reject", "retry", "ok"]
    _, expired, recent, currency, quota, _ = outcome.per_event
    assert expired.reason == ("upload_click_conversion (Click Conversion): conversionUploadError.EXPIRED_EVENT: "
                              "The click is older than the conversion action's click-through lookback window.")
    assert "TOO_RECENT_EVENT" in recent.reason and "6 hours" in recent.reason
    assert recent.retry_after is None  # one young click must not pause every lane
    assert "currencyCodeError.UNSUPPORTED" in currency.reason
    assert "quotaError.RESOURCE_EXHAUSTED" in quota.reason
    assert [c["gclid"] for c in google.ads.accepted] == ["g-0", "g-5"]
    assert len(google.calls(":uploadClickConversions")) == 1  # no bisection: Google said which


@pytest.mark.parametrize(("with_order_id", "code"), [(True, "ORDER_ID_ALREADY_IN_USE"),
                                                     (False, "CLICK_CONVERSION_ALREADY_EXISTS")])
async def test_a_conversion_google_already_has_counts_as_delivered(google, http, with_order_id, code):
    destination = build(google, http)
    event = order(0, gclid="g-0")
    if not with_order_id:
        del event["properties"]["order_id"]
    assert (await destination.send(envelopes([event]))).kind == "ok"
    # The same conversion again, as after an answer lost on the way: Google keeps one, and says so.
    outcome = await destination.send(envelopes([event]))
    assert outcome.kind == "ok"
    [_, again] = google.calls(":uploadClickConversions")
    assert code in json.dumps(again.answer)
    assert len(google.ads.accepted) == 1


async def test_enhanced_conversions_for_web_upload_adjustments(google, http):
    mapping = {"name": "Enhance", "action": "upload_enhanced_conversion", "trigger": 'event = "Order Completed"',
               "fields": {"conversion_action": ACTION_ID}}
    destination = build(google, http, mappings=[mapping])
    no_order = order(2)
    del no_order["properties"]["order_id"]
    outcome = await destination.send(envelopes([order(0), order(1), no_order]))
    assert kinds(outcome, 3) == ["ok", "ok", "reject"]
    assert "order_id: required but missing" in outcome.per_event[2].reason
    [call] = google.calls(":uploadConversionAdjustments")
    assert body(call)["partialFailure"] is True
    assert [(a["orderId"], a["adjustmentType"]) for a in google.ads.adjustments] == [("o-0", "ENHANCEMENT"),
                                                                                     ("o-1", "ENHANCEMENT")]
    again = await destination.send(envelopes([order(1)]))  # CONVERSION_ALREADY_ENHANCED
    assert again.kind == "ok" and len(google.ads.adjustments) == 2


# --- whole-request answers -------------------------------------------------------------------------------


def _rpc(status: int, name: str, *details: dict) -> dict:
    return {"error": {"code": status, "message": "refused", "status": name, "details": list(details)}}


async def test_429_waits_for_the_delay_google_asks_and_pauses_every_lane(google, http):
    retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "42s"}
    google.ads.fail_next(429, _rpc(429, "RESOURCE_EXHAUSTED", retry_info))
    destination = build(google, http)
    outcome = await destination.send(envelopes([order(0, gclid="g-0")]))
    assert (outcome.kind, outcome.retry_after) == ("retry", 42.0)
    assert "HTTP 429 RESOURCE_EXHAUSTED" in outcome.reason
    assert 40 < destination.pause.remaining() <= 42
    paused = await destination.send(envelopes([order(1, gclid="g-1")]))
    assert paused.kind == "retry" and "paused by the vendor" in paused.reason
    assert len(google.calls(":uploadClickConversions")) == 1  # nothing sent during the pause


async def test_5xx_is_retried_with_its_retry_after(google, http):
    google.ads.fail_next(503, headers={"Retry-After": "9"})
    outcome = await build(google, http).send(envelopes([order(0, gclid="g-0")]))
    assert (outcome.kind, outcome.retry_after) == ("retry", 9.0)
    assert outcome.reason.endswith("HTTP 503 UNAVAILABLE: The service is currently unavailable.")


async def test_a_400_that_names_conversions_rejects_them_and_sends_the_others_again(google, http):
    violation = {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [
        {"field": "conversions[1].conversion_value", "description": "Invalid value at 'conversions[1]'"}]}
    google.ads.fail_next(400, _rpc(400, "INVALID_ARGUMENT", violation))
    outcome = await build(google, http).send(envelopes([order(i, gclid=f"g-{i}") for i in range(3)]))
    assert kinds(outcome, 3) == ["retry", "reject", "retry"]
    assert "Invalid value at 'conversions[1]'" in outcome.per_event[1].reason
    assert google.ads.accepted == []


async def test_a_400_about_the_request_rejects_every_event_with_its_reason(google, http):
    failure = {"@type": V, "errors": [{"errorCode": {"requestError": "INVALID_INPUT"}, "message": "Bad input."}]}
    google.ads.fail_next(400, _rpc(400, "INVALID_ARGUMENT", failure))
    outcome = await build(google, http).send(envelopes([order(i, gclid=f"g-{i}") for i in range(2)]))
    assert outcome.kind == "reject"
    assert outcome.reason.endswith("HTTP 400 INVALID_ARGUMENT: requestError.INVALID_INPUT: Bad input.")


@pytest.mark.parametrize("bad_token_status", [401, 400])
async def test_an_expired_token_gets_one_new_token_and_one_more_try(http, bad_token_status):
    async with Google(bad_token_status=bad_token_status) as google:
        destination = build(google, http)
        assert (await destination.send(envelopes([order(0, gclid="g-0")]))).kind == "ok"
        google.oauth.expire_all()
        assert (await destination.send(envelopes([order(1, gclid="g-1")]))).kind == "ok"
        statuses = [call.status for call in google.calls(":uploadClickConversions")]
        assert statuses == [200, bad_token_status, 200]
        assert google.oauth.token_requests == 2
        tokens = [call.headers["Authorization"] for call in google.calls(":uploadClickConversions")]
        assert tokens[0] == tokens[1] != tokens[2]
        assert [c["gclid"] for c in google.ads.accepted] == ["g-0", "g-1"]


async def test_a_token_refused_again_is_not_refreshed_in_a_loop(google, http):
    destination = build(google, http)
    google.ads.fail_next(401, times=5)
    outcome = await destination.send(envelopes([order(0, gclid="g-0")]))
    assert outcome.kind == "retry" and "credentials refused" in outcome.reason
    assert len(google.calls(":uploadClickConversions")) == 2
    assert google.oauth.token_requests == 2


async def test_a_revoked_refresh_token_keeps_the_events_waiting_with_a_reason_free_of_secrets(google, http):
    google.oauth.revoke_refresh_token(REFRESH)
    outcome = await build(google, http).send(envelopes([order(0, gclid="g-0")]))
    assert outcome.kind == "retry"
    assert "refused the credentials: HTTP 400 invalid_grant" in outcome.reason
    for secret in (REFRESH, CLIENT_SECRET, DEV):
        assert secret not in outcome.reason
    assert google.calls(":uploadClickConversions") == []


# --- Customer Match ---------------------------------------------------------------------------------


async def test_audience_events_run_one_offline_user_data_job_per_request(google, http):
    destination = build(google, http, user_lists={"high_value": LIST_ID})
    entered = [audience("Audience Entered", f"user{i}@example.com") for i in range(3)]
    assert (await destination.send(envelopes(entered))).kind == "ok"
    assert google.ads.members[LIST_ID] == {("hashedEmail", sha(f"user{i}@example.com")) for i in range(3)}
    [create] = google.calls("offlineUserDataJobs:create")
    metadata = {"userList": f"customers/{CID}/userLists/{LIST_ID}"}
    assert body(create) == {"job": {"type": "CUSTOMER_MATCH_USER_LIST", "customerMatchUserListMetadata": metadata}}
    [add] = google.calls(":addOperations")
    assert body(add)["enablePartialFailure"] is True
    assert [list(op) for op in body(add)["operations"]] == [["create"]] * 3
    exited = [audience("Audience Exited", "user1@example.com")]
    assert (await destination.send(envelopes(exited))).kind == "ok"
    assert google.ads.members[LIST_ID] == {("hashedEmail", sha(f"user{i}@example.com")) for i in (0, 2)}
    assert [list(op) for op in body(google.calls(":addOperations")[1])["operations"]] == [["remove"]]
    assert len(google.calls(":run")) == 2 and all(job.status == "SUCCESS" for job in google.ads.jobs.values())


async def test_each_list_and_consent_gets_its_own_job(google, http):
    consent = {"name": "Audience Entered", "fields": {"ad_user_data_consent": {"@path": "$.properties.consent"}}}
    destination = build(google, http, user_lists={"high_value": LIST_ID, "vip": "5151"}, mappings=[consent])
    events = [audience("Audience Entered", "a@x.io"), audience("Audience Entered", "b@x.io", key="vip"),
              audience("Audience Entered", "c@x.io")]
    events[2]["properties"]["consent"] = "DENIED"
    assert (await destination.send(envelopes(events))).kind == "ok"
    metadata = sorted((body(c)["job"]["customerMatchUserListMetadata"] for c in google.calls("Jobs:create")),
                      key=json.dumps)
    assert metadata == sorted([{"userList": f"customers/{CID}/userLists/{LIST_ID}"},
                               {"userList": f"customers/{CID}/userLists/5151"},
                               {"userList": f"customers/{CID}/userLists/{LIST_ID}",
                                "consent": {"adUserData": "DENIED"}}], key=json.dumps)


async def test_an_audience_without_a_list_is_refused_naming_it(google, http):
    outcome = await build(google, http).send(envelopes([audience("Audience Entered", "a@x.io", key="churned")]))
    assert outcome.kind == "reject"
    assert ("no Google Ads user list for audience 'churned': list it in user_lists, or set user_list_id"
            in outcome.reason)
    assert google.ads.requests == []


async def test_a_list_google_does_not_know_rejects_its_events(google, http):
    outcome = await build(google, http, user_list_id="999").send(envelopes([audience("Audience Entered", "a@x.io")]))
    assert outcome.kind == "reject" and "offlineUserDataJobError.INVALID_USER_LIST_ID" in outcome.reason


class _ScriptedContext:
    """An ActionContext answering from a script, for the steps of a job the double cannot fail alone."""

    def __init__(self, settings: Any, answers: list[tuple[int, Any]]) -> None:
        self.settings = settings
        self.answers = answers
        self.sent: list[tuple[str, Any]] = []

    async def request(self, method: str, url: str, *, json: Any = None) -> Response:
        import json as json_module

        self.sent.append((url, json))
        status, answer = self.answers.pop(0)
        return Response(status, {}, json_module.dumps(answer).encode())

    def classify(self, response: Response) -> Any:
        raise AssertionError("not expected")


async def test_a_job_that_does_not_run_is_retried_and_refused_operations_stay_refused(google):
    settings = google.settings(user_list_id=LIST_ID)
    job = f"customers/{CID}/offlineUserDataJobs/77"
    bad_one = {"partialFailureError": {"code": 3, "message": "x", "details": [{"@type": V, "errors": [
        {"errorCode": {"offlineUserDataJobError": "INVALID_SHA256_FORMAT"}, "message": "Not a SHA-256 digest.",
         "location": {"fieldPathElements": [{"fieldName": "operations", "index": 1}]}}]}]}}
    ctx = _ScriptedContext(settings, [(200, {"resourceName": job}), (200, bad_one),
                                      (503, _rpc(503, "UNAVAILABLE"))])
    items = [ActionItem({"operation": "add", "email": sha(f"{i}@x.io")}, {}, None) for i in range(3)]
    answers = await api.change_user_list(ctx, items)
    assert [a.kind for a in answers] == ["retry", "reject", "retry"]
    assert answers[1].reason == "offlineUserDataJobError.INVALID_SHA256_FORMAT: Not a SHA-256 digest."
    assert [url for url, _ in ctx.sent] == [f"/v22/customers/{CID}/offlineUserDataJobs:create",
                                            f"/v22/{job}:addOperations", f"/v22/{job}:run"]


# --- reading answers ---------------------------------------------------------------------------------


def test_an_error_that_names_no_item_is_about_every_item():
    answer = {"partialFailureError": {"details": [{"@type": V, "errors": [
        {"errorCode": {"conversionUploadError": "INVALID_CONVERSION_ACTION"}, "message": "Unknown action."},
        {"errorCode": {"conversionUploadError": "EXPIRED_EVENT"}, "message": "Old.",
         "location": {"fieldPathElements": [{"fieldName": "conversions", "index": 0}]}}]}]}}
    first, second = partial_outcomes(answer, 2, "conversions")
    assert first.kind == second.kind == "reject"
    assert "EXPIRED_EVENT" in first.reason and "INVALID_CONVERSION_ACTION" in first.reason
    assert second.reason == "conversionUploadError.INVALID_CONVERSION_ACTION: Unknown action."


def test_a_partial_failure_without_details_retries_every_item():
    outcomes = partial_outcomes({"partialFailureError": {"code": 3, "message": "something failed"}}, 2, "conversions")
    assert [o.kind for o in outcomes] == ["retry", "retry"]
    assert "something failed" in outcomes[0].reason


def test_a_transient_error_of_an_item_is_retried():
    answer = {"partialFailureError": {"details": [{"@type": V, "errors": [
        {"errorCode": {"databaseError": "CONCURRENT_MODIFICATION"}, "message": "Retry.",
         "location": {"fieldPathElements": [{"fieldName": "conversion_adjustments", "index": 1}]}}]}]}}
    assert [o.kind for o in partial_outcomes(answer, 2, "conversion_adjustments")] == ["ok", "retry"]


async def test_the_quota_delay_in_a_googleadsfailure_is_honoured(google, http):
    destination = build(google, http)

    class Ctx:
        settings = destination.config

        def pause(self, seconds: float) -> None:  # as ActionContext.pause does
            destination.pause.extend(seconds)

    failure = {"@type": V, "errors": [{"errorCode": {"quotaError": "RESOURCE_TEMPORARILY_EXHAUSTED"},
                                       "message": "Slow down.",
                                       "details": {"quotaErrorDetails": {"retryDelay": "12.5s"}}}]}
    response = Response(429, {}, json.dumps(_rpc(429, "RESOURCE_EXHAUSTED", failure)).encode())
    outcomes = read_answer(Ctx(), response, 2, "conversions")  # type: ignore[arg-type]
    assert [(o.kind, o.retry_after) for o in outcomes] == [("retry", 12.5)] * 2
    assert 12 < destination.pause.remaining() <= 12.5
