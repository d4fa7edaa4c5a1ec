"""The Braze double refuses what Braze refuses and answers per object as Braze does
(docs/vendors/crm-messaging.md §9)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.vendors.braze import BrazeDouble

KEY = "braze-rest-key"


async def post(double: BrazeDouble, body: Any, key: str | None = KEY) -> tuple[int, Any, dict[str, str]]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{double.url}/users/track", data=json.dumps(body), headers=headers) as answer:
            return answer.status, await answer.json(content_type=None), dict(answer.headers)


def event(user: str = "u1", **extra: Any) -> dict[str, Any]:
    return {"external_id": user, "name": "Signed Up", "time": "2024-11-28T13:26:00Z", **extra}


async def test_accepts_the_three_arrays_and_counts_them():
    async with BrazeDouble() as double:
        body = {"attributes": [{"external_id": "u1", "first_name": "Zoë"}],
                "events": [event()],
                "purchases": [{"external_id": "u1", "product_id": "p1", "currency": "EUR", "price": 3.25,
                               "quantity": 2, "time": "2024-11-28T13:26:00Z"}]}
        status, answer, _ = await post(double, body)
    assert status == 201
    assert answer == {"message": "success", "attributes_processed": 1, "events_processed": 1,
                      "purchases_processed": 1}
    assert [kind for kind, _ in double.accepted] == ["attributes", "events", "purchases"]
    assert double.profiles == {"u1": {"first_name": "Zoë"}}


async def test_refuses_a_missing_or_wrong_key():
    async with BrazeDouble() as double:
        missing, _, _ = await post(double, {"events": [event()]}, key=None)
        wrong, answer, _ = await post(double, {"events": [event()]}, key="other")
    assert (missing, wrong) == (401, 401) and "Invalid API key" in answer["message"]
    assert double.accepted == []


async def test_more_than_75_of_one_array_is_fatal():
    async with BrazeDouble() as double:
        status, answer, _ = await post(double, {"events": [event(f"u{i}") for i in range(76)]})
        ok, _, _ = await post(double, {"events": [event(f"u{i}") for i in range(75)],
                                       "attributes": [{"external_id": f"u{i}"} for i in range(75)]})
    assert status == 400 and "at most 75" in answer["message"]
    assert ok == 201 and len(double.accepted) == 150


async def test_combined_limit_counts_all_three_arrays():
    async with BrazeDouble(combined_limit=True) as double:
        status, _, _ = await post(double, {"events": [event()] * 40, "attributes": [{"external_id": "u"}] * 40})
    assert status == 400 and double.accepted == []


async def test_an_empty_request_is_refused():
    async with BrazeDouble() as double:
        status, _, _ = await post(double, {"events": []})
    assert status == 400


async def test_invalid_objects_are_non_fatal_errors_by_array_and_index():
    async with BrazeDouble() as double:
        body = {"events": [event(), {"name": "No user", "time": "2024-11-28T13:26:00Z"}, event("u3")],
                "purchases": [{"external_id": "u1", "product_id": "p", "currency": "euro", "price": 1,
                               "time": "2024-11-28T13:26:00Z"}],
                "attributes": [{"external_id": "u1", "user_alias": {"alias_name": "a", "alias_label": "l"}}]}
        status, answer, _ = await post(double, body)
    assert status == 201 and answer["message"] == "success"
    assert [(e["input_array"], e["index"]) for e in answer["errors"]] == \
        [("attributes", 0), ("events", 1), ("purchases", 0)]
    assert "exactly one" in answer["errors"][1]["type"] and "currency" in answer["errors"][2]["type"]
    assert [item["external_id"] for _, item in double.accepted] == ["u1", "u3"]


async def test_an_alias_identifies_a_profile():
    async with BrazeDouble() as double:
        alias = {"alias_name": "anon-1", "alias_label": "anonymous_id"}
        status, _, _ = await post(double, {"attributes": [{"user_alias": alias, "plan": "pro"}]})
        bad, answer, _ = await post(double, {"attributes": [{"user_alias": {"alias_name": "x"}}]})
        by_email, _, _ = await post(double, {"attributes": [{"email": "a@example.com", "plan": "free"}]})
        both, _, _ = await post(double, {"attributes": [{"external_id": "u9", "email": "b@example.com"}]})
    assert status == 201 and double.profiles["anonymous_id:anon-1"] == {"plan": "pro"}
    assert (by_email, both) == (201, 201) and not double.requests[-1].answer.get("errors")
    assert double.profiles["a@example.com"] == {"plan": "free"}
    assert double.profiles["u9"] == {"email": "b@example.com"}
    assert bad == 201 and "alias_label" in answer["errors"][0]["type"]


async def test_scripted_429_carries_its_headers_and_ingests_nothing():
    async with BrazeDouble() as double:
        double.fail_next(429, headers={"X-RateLimit-Reset": "1732800400", "X-RateLimit-Remaining": "0"})
        status, answer, headers = await post(double, {"events": [event()]})
        again, _, _ = await post(double, {"events": [event()]})
    assert (status, again) == (429, 201)
    assert answer == {"message": "API rate limit reached"} and headers["X-RateLimit-Reset"] == "1732800400"
    assert len(double.accepted) == 1
