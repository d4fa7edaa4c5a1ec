"""Mixpanel's limits and answers: requests of at most 2,000 events and 10 MB, failed_records as
per-event outcomes, 413, /engage refusals, 401, 429, 5xx; hosts, auth, service accounts."""

from __future__ import annotations

import base64
import gzip
import json
import math

import msgspec
import pytest

from collector.destinations.base import BuildContext
from collector.destinations.mixpanel import Mixpanel
from collector.destinations.mixpanel.api import MAX_REQUEST_BYTES
from tests.vendors.mixpanel import MixpanelDouble

from .expected import SECRET, TOKEN
from .support import build, call, kinds, reasons, send, settings_of, track


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def import_sizes(double: MixpanelDouble) -> list[int]:
    return [len(r.json) for r in double.requests if r.path == "/import" and r.status == 200]


# --- Requests --------------------------------------------------------------------------------------


async def test_import_is_a_gzipped_json_array_with_basic_auth_and_strict(double, http):
    assert (await send(build(double, http), [track("A"), track("B")])).kind == "ok"
    [request] = double.requests
    assert (request.method, request.path, request.query) == ("POST", "/import", {"strict": "1"})
    assert request.headers["Authorization"] == basic(SECRET)
    assert (request.headers["Content-Type"], request.headers["Content-Encoding"]) == ("application/json", "gzip")
    assert json.loads(gzip.decompress(request.body)) == request.json and len(request.json) == 2


async def test_without_an_api_secret_the_project_token_authenticates_import(http):
    async with MixpanelDouble(api_secret=SECRET, project_token=TOKEN, accept_token_auth=True) as double:
        assert (await send(build(double, http, api_secret=None), [track("A")])).kind == "ok"
        assert double.requests[0].headers["Authorization"] == basic(TOKEN)


async def test_a_service_account_authenticates_import_with_the_project_id(http):
    async with MixpanelDouble(service_account=("sa.user", "sa-pass"), project_id="4242", accept_token_auth=False,
                              api_secret="unused-secret") as double:
        destination = build(double, http, api_secret=None, service_account_user="sa.user",
                            service_account_secret="sa-pass", project_id="4242")
        assert (await send(destination, [track("A")])).kind == "ok"
        [request] = double.requests
        assert request.headers["Authorization"] == basic("sa.user", "sa-pass")
        assert request.query == {"strict": "1", "project_id": "4242"}


@pytest.mark.parametrize("partial", [{"service_account_user": "sa"}, {"service_account_secret": "x"},
                                     {"service_account_user": "sa", "service_account_secret": "x"}])
def test_a_service_account_needs_all_three_settings(partial):
    with pytest.raises(msgspec.ValidationError, match="a service account needs"):
        settings_of({"type": "mixpanel", "project_token": TOKEN, **partial})


@pytest.mark.parametrize(("region", "host"), [("us", "api.mixpanel.com"), ("eu", "api-eu.mixpanel.com"),
                                              ("in", "api-in.mixpanel.com"), (None, "api.mixpanel.com")])
def test_the_region_picks_the_host(region, host):
    data = {"type": "mixpanel", "project_token": TOKEN, **({"region": region} if region else {})}
    destination = Mixpanel("mp", settings_of(data), BuildContext(None, ""))
    assert destination.url("/import") == f"https://{host}/import"


def test_the_defaults_fit_mixpanel():
    config = settings_of({"type": "mixpanel", "project_token": TOKEN})
    assert config.batch.max_events == 2000
    assert (config.retry.initial_backoff, config.retry.max_backoff) == (2, 60)


# --- Limits ----------------------------------------------------------------------------------------


async def test_2001_events_are_two_requests(double, http):
    outcome = await send(build(double, http), [track("E", {"n": n}) for n in range(2001)])
    assert outcome.kind == "ok"
    assert import_sizes(double) == [2000, 1]
    assert [e["properties"]["n"] for e in double.imported] == list(range(2001))


async def test_requests_stay_under_10_mb_uncompressed(double, http):
    blob = "x" * 900_000  # each event just under Mixpanel's 1 MB
    outcome = await send(build(double, http), [track("Big", {"blob": blob, "n": n}) for n in range(23)])
    assert outcome.kind == "ok", outcome
    sizes = [len(r.decoded) for r in double.requests]
    assert all(size <= MAX_REQUEST_BYTES for size in sizes)
    assert len(sizes) == math.ceil(23 * 900_000 / MAX_REQUEST_BYTES) == 3
    assert sorted(e["properties"]["n"] for e in double.imported) == list(range(23))


async def test_an_event_over_1_mb_is_refused_here_and_the_others_are_sent(double, http):
    events = [track("E", {"n": 0}), track("Huge", {"blob": "x" * (1024 * 1024)}), track("E", {"n": 2})]
    outcome = await send(build(double, http), events)
    assert kinds(outcome, 3) == ["ok", "reject", "ok"]
    assert "Mixpanel takes records under 1,048,576 bytes" in reasons(outcome, 3)[1]
    assert [e["event"] for e in double.imported] == ["E", "E"]


async def test_a_413_halves_the_request_until_mixpanel_takes_it(http):
    async with MixpanelDouble(api_secret=SECRET, project_token=TOKEN, max_request_bytes=3000) as double:
        outcome = await send(build(double, http), [track("E", {"n": n, "pad": "y" * 300}) for n in range(12)])
        assert outcome.kind == "ok", outcome
        assert double.answered(413) and all(len(r.decoded) <= 3000 for r in double.answered(200))
        assert sorted(e["properties"]["n"] for e in double.imported) == list(range(12))


# --- failed_records --------------------------------------------------------------------------------


async def test_failed_records_refuse_those_events_only_and_nothing_is_sent_again(double, http):
    too_many = {f"p{i}": i for i in range(300)}
    events = [track("Good", {"n": 0}), track("Bad", too_many), track("Good", {"n": 2}),
              track("Anonymous", user="anonymous", anonymous=None), track("Good", {"n": 4})]
    outcome = await send(build(double, http), events)
    assert kinds(outcome, 5) == ["ok", "reject", "ok", "reject", "ok"]
    refused = reasons(outcome, 5)
    assert refused[1] == ("track_event (Track Calls): Mixpanel refused the event: "
                          "properties: an event must have fewer than 255 properties")
    assert refused[3].startswith("track_event (Track Calls): Mixpanel refused the event: 'properties.distinct_id' is "
                                 "invalid")
    assert len(double.requests) == 1 and double.requests[0].status == 400  # no bisection, no resend
    assert [e["properties"]["n"] for e in double.imported] == [0, 2, 4]


async def test_a_refused_product_event_refuses_its_order(double, http):
    bad_product = {"product_id": "p2", "tags": list(range(300))}  # arrays hold fewer than 255 elements
    order = track("Order Completed", {"order_id": "o1", "products": [{"product_id": "p1"}, bad_product]})
    outcome = await send(build(double, http), [order, track("Other")])
    assert kinds(outcome, 2) == ["reject", "ok"]
    assert reasons(outcome, 2)[0].startswith(
        'track_purchase (Order Completed Calls): Mixpanel refused its "Product Purchased" event for product 2: ')
    assert "arrays must have fewer than 255 elements" in reasons(outcome, 2)[0]
    # Mixpanel took the rest of the request (a partial success): nothing of it is sent again.
    assert sorted(e["event"] for e in double.imported) == ["Order Completed", "Other", "Product Purchased"]
    assert len(double.requests) == 2  # one for each action, none sent again


async def test_a_400_without_failed_records_refuses_the_request_with_mixpanels_message(double, http):
    double.fail_next(400, {"code": 400, "error": "unexpected body", "status": "Bad Request"})
    outcome = await send(build(double, http), [track("A"), track("B")])
    assert outcome.kind == "reject" and "unexpected body" in outcome.reason


# --- Profiles and groups ---------------------------------------------------------------------------


async def test_a_refused_profile_update_is_found_by_halving_and_the_others_are_set(double, http):
    identifies = [call("identify", user=f"u{n}", anonymous=None, traits={"n": n}) for n in range(8)]
    identifies[5] = call("identify", user="null", anonymous=None, traits={"n": 5})  # a placeholder id
    outcome = await send(build(double, http), identifies)
    assert kinds(outcome, 8) == ["ok"] * 5 + ["reject"] + ["ok"] * 2
    assert reasons(outcome, 8)[5] == ("identify_user (Identify Calls): Mixpanel /engage refused the profile update: "
                                      "$distinct_id is invalid")
    assert sorted(double.profiles) == sorted(f"u{n}" for n in range(8) if n != 5)
    assert len(double.requests) <= 1 + 2 * math.ceil(math.log2(8))


async def test_a_refused_token_is_a_credentials_problem_and_not_halved(double, http):
    double.project_token = "another-project"
    identifies = [call("identify", user=f"u{n}", anonymous=None, traits={"n": n}) for n in range(4)]
    outcome = await send(build(double, http), identifies)
    assert outcome.kind == "retry" and "credentials refused" in outcome.reason and "token" in outcome.reason
    assert len(double.requests) == 1


async def test_groups_go_200_a_request(double, http):
    groups = [call("group", groupId=f"g{n}", traits={"n": n}) for n in range(201)]
    assert (await send(build(double, http), groups)).kind == "ok"
    assert [len(json.loads(r.form["data"])) for r in double.requests] == [200, 1]
    assert all(r.form["verbose"] == "1" for r in double.requests)


# --- Errors ----------------------------------------------------------------------------------------


async def test_a_401_is_a_credentials_problem_retried_and_the_secret_stays_out(http):
    async with MixpanelDouble(api_secret="the-real-secret", project_token=TOKEN, accept_token_auth=False) as double:
        double.fail_next(401, {"error": f"Invalid credentials for {basic(SECRET)} ({SECRET})"})
        outcome = await send(build(double, http), [track("A")])
    assert outcome.kind == "retry" and "credentials refused" in outcome.reason
    assert SECRET not in outcome.reason and base64.b64encode(f"{SECRET}:".encode()).decode() not in outcome.reason


async def test_a_429_without_retry_after_pauses_the_destination_for_the_initial_backoff(double, http):
    destination = build(double, http)
    double.fail_next(429)
    outcome = await send(destination, [track("A")])
    assert (outcome.kind, outcome.retry_after) == ("retry", 2.0)
    assert "Project exceeded rate limits" in outcome.reason
    again = await send(destination, [track("B")])  # another lane: held, without a request
    assert again.kind == "retry" and 0 < again.retry_after <= 2.0
    assert len(double.requests) == 1


@pytest.mark.parametrize(("status", "headers", "after"), [(503, {"Retry-After": "30"}, 30.0), (500, {}, None),
                                                          (502, {}, None)])
async def test_5xx_is_retried_with_its_retry_after(double, http, status, headers, after):
    double.fail_next(status, "busy", headers=headers)
    outcome = await send(build(double, http), [track("A"), track("B")])
    assert (outcome.kind, outcome.retry_after) == ("retry", after) and f"HTTP {status}: busy" in outcome.reason
