"""The Customer.io Track API double refuses and answers as the fact sheet says (§11)."""

from __future__ import annotations

import base64

import aiohttp

from tests.vendors.customerio import CustomerIODouble

AUTH = {"Authorization": "Basic " + base64.b64encode(b"site-test:cio-test-key").decode()}


async def post(double, path, body, headers=AUTH):
    async with aiohttp.ClientSession() as http:
        async with http.post(double.url + path, json=body, headers=headers) as answer:
            return answer.status, await answer.json(content_type=None)


PERSON = {"type": "person", "action": "identify", "identifiers": {"id": "u1"}, "attributes": {"plan": "pro"}}
EVENT = {"type": "person", "action": "event", "identifiers": {"anonymous_id": "a1"}, "name": "Viewed",
         "timestamp": 1700000000}


async def test_valid_batch_is_accepted_and_applied():
    async with CustomerIODouble() as double:
        group = {"type": "object", "action": "identify", "identifiers": {"object_type_id": "1", "object_id": "acme"},
                 "attributes": {"name": "Acme"}, "cio_relationships": [{"identifiers": {"id": "u1"}}]}
        merge = {"type": "person", "action": "merge", "primary": {"id": "u1"}, "secondary": {"id": "old"}}
        status, body = await post(double, "/api/v2/batch", {"batch": [PERSON, EVENT, group, merge]})
        assert (status, body) == (200, {})
        assert double.accepted == [PERSON, EVENT, group, merge]
        assert double.people == {"u1": {"plan": "pro"}}
        assert double.objects == {("1", "acme"): {"name": "Acme"}}
        assert double.relationships == [("1", "acme", "u1")]
        assert double.merges == [({"id": "u1"}, {"id": "old"})]


async def test_wrong_or_missing_credentials_are_401():
    async with CustomerIODouble() as double:
        wrong = {"Authorization": "Basic " + base64.b64encode(b"site-test:other").decode()}
        assert (await post(double, "/api/v2/batch", {"batch": [PERSON]}, wrong))[0] == 401
        assert (await post(double, "/api/v2/batch", {"batch": [PERSON]}, {}))[0] == 401
        assert double.accepted == []


async def test_invalid_entities_come_back_as_207_errors_by_index():
    async with CustomerIODouble() as double:
        anonymous_identify = {**PERSON, "identifiers": {"anonymous_id": "a1"}}
        nameless = {k: v for k, v in EVENT.items() if k != "name"}
        iso_time = {**EVENT, "timestamp": "2024-01-01T00:00:00Z"}
        huge = {**PERSON, "attributes": {"blob": "x" * (32 * 1024)}}
        status, body = await post(double, "/api/v2/batch", {"batch": [anonymous_identify, PERSON, nameless, iso_time, huge]})
        assert status == 207
        assert [(e["batch_index"], e["field"]) for e in body["errors"]] == [
            (0, "identifiers"), (2, "name"), (3, "timestamp"), (4, "")]
        assert "32 KB" in body["errors"][3]["reason"]
        assert double.accepted == [PERSON]


async def test_two_identifiers_are_refused():
    async with CustomerIODouble() as double:
        both = {**PERSON, "identifiers": {"id": "u1", "email": "a@example.com"}}
        status, body = await post(double, "/api/v2/batch", {"batch": [both]})
        assert status == 207 and body["errors"][0]["field"] == "identifiers"


async def test_batch_over_500_kb_and_malformed_body_are_400():
    async with CustomerIODouble() as double:
        item = {**PERSON, "attributes": {"blob": "x" * 20_000}}
        status, body = await post(double, "/api/v2/batch", {"batch": [item] * 30})
        assert status == 400 and "500 KB" in body["meta"]["error"]
        status, body = await post(double, "/api/v2/batch", [PERSON])
        assert status == 400 and "batch" in body["meta"]["error"]
        assert double.accepted == []


async def test_single_entity_endpoint():
    async with CustomerIODouble() as double:
        assert await post(double, "/api/v2/entity", PERSON) == (200, {})
        status, body = await post(double, "/api/v2/entity", {**EVENT, "name": ""})
        assert status == 400 and "name" in body["meta"]["error"]


async def test_scripted_429_comes_before_the_checks():
    async with CustomerIODouble() as double:
        double.fail_next(429, headers={"Retry-After": "3"})
        status, body = await post(double, "/api/v2/batch", {"batch": [PERSON]}, {})
        assert status == 429 and body == {"meta": {"error": "Too Many Requests"}}
        assert double.accepted == []
        assert (await post(double, "/api/v2/batch", {"batch": [PERSON]}))[0] == 200
