"""google_ads end to end: Segment's Python SDK sends to the real collector process, whose google_ads
destination talks to the Google Ads and OAuth doubles (tests/vendors/) through the real dispatcher."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
from segment.analytics.client import Client

from tests.e2e.helpers import FAST_RETRY, STORAGE, dead_letters, wait_until
from tests.vendors.base import ThreadedDouble
from tests.vendors.google_ads import GoogleAdsDouble
from tests.vendors.oauth import OAuthDouble

WRITE_KEY = "wk_google_ads_e2e"
CID, MANAGER = "1234567890", "1112223333"
DEV = "dev-token-e2e-0123"
CLIENT_ID = "e2e-client.apps.googleusercontent.com"
CLIENT_SECRET = "e2e-client-secret-4567"
REFRESH = "1//e2e-refresh-token-89ab"
ACTION_ID, LIST_ID = "456", "4242"
UPLOAD = f"/v22/customers/{CID}:uploadClickConversions"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def google():
    with ThreadedDouble(OAuthDouble(clients={CLIENT_ID: CLIENT_SECRET}, refresh_tokens=[REFRESH])) as oauth, \
            ThreadedDouble(GoogleAdsDouble(oauth.double, developer_token=DEV, customer_ids=[CID],
                                           login_customer_id=MANAGER, conversion_actions=[ACTION_ID],
                                           user_list_ids=[LIST_ID])) as ads:
        yield oauth, ads


def config(oauth: Any, ads: Any, **destination: Any) -> dict[str, Any]:
    return {
        "storage": STORAGE,
        "sources": {"app": {"write_key": WRITE_KEY}},
        "destinations": {"ads": {
            "type": "google_ads",
            "endpoint": ads.url,
            "customer_id": "123-456-7890",
            "login_customer_id": "111-222-3333",
            "developer_token": DEV,
            "oauth": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH,
                      "token_url": oauth.token_url},
            "user_lists": {"high_value": LIST_ID},
            "mappings": [{"name": "Click Conversion", "fields": {"conversion_action": ACTION_ID}}],
            "concurrency": 1,
            "batch": {"max_events": 2500, "max_bytes": "8MiB", "max_wait": 0.05},
            "retry": FAST_RETRY,
            **destination,
        }},
    }


def sdk(collector: Any, sync_mode: bool) -> Client:
    return Client(WRITE_KEY, host=collector.url, sync_mode=sync_mode, upload_size=100, max_retries=2, timeout=10)


def order(client: Client, n: int, gclid: str) -> dict[str, Any]:
    ok, message = client.track(f"user-{n}", "Order Completed",
                               {"order_id": f"o-{n}", "total": 10 + n, "currency": "eur", "gclid": gclid},
                               context={"traits": {"email": f" Buyer.{n}@Example.com"}})
    assert ok
    return message


def uploads(ads: Any) -> list[Any]:
    return [call for call in list(ads.requests) if call.path == UPLOAD]


def wait_uploads(ads: Any, count: int) -> list[Any]:
    """The upload requests, once there are ``count`` (a request is recorded once answered)."""
    return ads.wait_for(lambda: len(calls := uploads(ads)) >= count and calls, timeout=15, what=f"{count} uploads")


def test_sdk_events_arrive_as_conversions_and_list_changes_with_failures_dead_lettered(google, collector_factory):
    oauth, ads = google
    # The first run only takes the events in; the second delivers the whole backlog at once, so
    # that one batch holds more conversions than Google takes in a request.
    first = collector_factory(config(oauth, ads, enabled=False, start_from="earliest"), "run")
    client = sdk(first, sync_mode=False)
    orders = [order(client, n, "g-expired" if n == 7 else f"g-{n}") for n in range(2001)]
    for email in ("ann@example.com", "bob@example.com", "cy@example.com"):
        assert client.track(email, "Audience Entered", {"audience_key": "high_value", "high_value": True},
                            context={"traits": {"email": email}})[0]
    assert client.track("bob@example.com", "Audience Exited", {"audience_key": "high_value", "high_value": False},
                        context={"traits": {"email": "bob@example.com"}})[0]
    client.flush()
    client.join()
    first.stop()
    ads.fail_click("g-expired", "EXPIRED_EVENT")

    collector = collector_factory(config(oauth, ads, start_from="earliest"), "run")
    wait_until("2000 conversions at Google", lambda: len(ads.accepted) >= 2000)
    wait_until("1 event dead-lettered",
               lambda: collector.metric("collector_dead_lettered_events_total", destination="ads") >= 1)
    wait_until("every other event delivered",
               lambda: collector.metric("collector_delivered_events_total", destination="ads") >= 2004)

    # Google's limit: 2,000 conversions a request; the 2,001 in one batch went as 2,000 + 1.
    calls = uploads(ads)
    assert sorted(len(json.loads(call.decoded)["conversions"]) for call in calls) == [1, 2000]  # sent in parallel
    token = oauth.accepted[0].access_token
    for call in calls:
        assert call.method == "POST" and call.status == 200
        assert call.headers["Authorization"] == f"Bearer {token}"
        assert (call.headers["developer-token"], call.headers["login-customer-id"]) == (DEV, MANAGER)
        assert call.headers["Content-Type"] == "application/json"
        assert json.loads(call.decoded)["partialFailure"] is True
    sent = {c["gclid"]: c for call in calls for c in json.loads(call.decoded)["conversions"]}
    stamp = orders[0]["timestamp"]  # the SDK's, e.g. 2024-06-10T12:00:00.123456+00:00; sent in UTC seconds
    assert sent["g-0"] == {
        "conversionAction": f"customers/{CID}/conversionActions/{ACTION_ID}",
        "conversionDateTime": f"{stamp[:10]} {stamp[11:19]}+00:00",
        "gclid": "g-0",
        "userIdentifiers": [{"hashedEmail": sha("buyer.0@example.com")}],
        "orderId": "o-0",
        "conversionValue": 10,
        "currencyCode": "EUR",
    }
    assert sorted(c["orderId"] for c in ads.accepted) == sorted(f"o-{n}" for n in range(2001) if n != 7)

    # The expired click: dead-lettered alone, with Google's reason; the other 2,000 delivered.
    [letter] = dead_letters(collector.config["storage"]["path"], "ads")
    assert letter["event"]["messageId"] == orders[7]["messageId"]
    assert "conversionUploadError.EXPIRED_EVENT" in letter["reason"]
    assert collector.metric("collector_dead_lettered_events_total", destination="ads") == 1
    assert collector.metric("collector_delivered_events_total", destination="ads") == 2004

    # Customer Match: one job for the entries, one for the exit (after it: same user), each run.
    assert ads.members[LIST_ID] == {("hashedEmail", sha("ann@example.com")), ("hashedEmail", sha("cy@example.com"))}
    creates = [json.loads(c.decoded) for c in ads.requests if c.path.endswith("offlineUserDataJobs:create")]
    assert [c["job"]["customerMatchUserListMetadata"]["userList"] for c in creates] == [
        f"customers/{CID}/userLists/{LIST_ID}"] * 2
    assert all(job.status == "SUCCESS" for job in ads.jobs.values()) and len(ads.jobs) == 2
    assert collector.metric("collector_delivery_retries_total", destination="ads") == 0


def test_googles_error_answers_through_the_dispatcher(google, collector_factory):
    oauth, ads = google
    collector = collector_factory(config(oauth, ads))
    client = sdk(collector, sync_mode=True)
    retries = lambda: collector.metric("collector_delivery_retries_total", destination="ads")  # noqa: E731

    # 429 RESOURCE_EXHAUSTED with the delay Google asks for in its body: nothing is sent before it.
    exhausted = {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                           "status": "RESOURCE_EXHAUSTED", "details": [
                               {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}]}}
    ads.fail_next(429, exhausted)
    order(client, 1, "g-1")
    refused, taken = wait_uploads(ads, 2)
    assert (refused.status, taken.status) == (429, 200)
    assert taken.at - refused.at >= 2.0 - 0.05, "sent again before Google's retry delay"
    assert retries() == 1

    # 503: retried.
    ads.fail_next(503)
    order(client, 2, "g-2")
    assert [c.status for c in wait_uploads(ads, 4)][2:] == [503, 200]
    assert retries() == 2

    # The access token expires: the 401 gets one new token and one more try, within the attempt.
    fetched = oauth.token_requests
    oauth.expire_all()
    order(client, 3, "g-3")
    expired, renewed = wait_uploads(ads, 6)[4:]
    assert expired.status == 401 and "OAUTH_TOKEN_EXPIRED" in json.dumps(expired.answer)
    assert renewed.status == 200
    assert expired.headers["Authorization"] != renewed.headers["Authorization"]
    assert oauth.token_requests == fetched + 1
    assert retries() == 2  # no retry of the batch: the refresh happened inside the attempt

    # The refresh token is revoked: the events wait, with a clear reason and no secret in the logs.
    oauth.revoke_refresh_token(REFRESH)
    order(client, 4, "g-4")
    wait_until("a retry for the revoked refresh token", lambda: retries() >= 4)
    assert not any(c["gclid"] == "g-4" for c in ads.accepted)
    assert collector.metric("collector_dead_lettered_events_total", destination="ads") == 0
    waiting = [json.loads(line) for line in collector.logs().splitlines()
               if line.startswith("{") and "will be retried" in line]
    assert any("refused the credentials: HTTP 400 invalid_grant" in json.dumps(entry) for entry in waiting)
    logs = collector.logs()
    for secret in (REFRESH, CLIENT_SECRET, DEV):
        assert secret not in logs
    oauth.refresh_tokens.add(REFRESH)  # the operator fixes the credentials: the events go
    ads.wait_for(lambda: any(c["gclid"] == "g-4" for c in ads.accepted), timeout=15, what="g-4 once fixed")
    wait_until("4 events delivered",
               lambda: collector.metric("collector_delivered_events_total", destination="ads") >= 4)
    assert [c["orderId"] for c in ads.accepted] == ["o-1", "o-2", "o-3", "o-4"]
    time.sleep(0.2)
    assert collector.metric("collector_dead_lettered_events_total", destination="ads") == 0
