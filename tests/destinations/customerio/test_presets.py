"""Each preset: a Segment spec event in, the Track API v2 entity Customer.io ingests out."""

from __future__ import annotations

import base64

from collector.destinations.customerio import CustomerIO
from tests.destinations.fakes import build, envelopes

from .fake import seconds
from .support import API_KEY, SITE_ID, destination, double, http  # noqa: F401

TS = "2024-11-28T13:26:00.000Z"


async def send_one(double, http, tmp_path, event, **overrides):
    outcome = await destination(double, http, tmp_path, **overrides).send(envelopes([event]))
    return outcome, list(double.accepted)


async def test_identify_is_a_person_identify_with_traits_email_and_anonymous_id(double, http, tmp_path):
    event = {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "m1", "timestamp": TS,
             "traits": {"email": "ada@example.com", "plan": "pro", "created_at": "2023-02-01T09:30:00Z"}}
    outcome, accepted = await send_one(double, http, tmp_path, event)
    assert outcome.kind == "ok"
    assert accepted == [{"type": "person", "action": "identify", "identifiers": {"id": "u1"},
                         "attributes": {"email": "ada@example.com", "plan": "pro",
                                        "created_at": seconds("2023-02-01T09:30:00Z"), "anonymous_id": "a1"},
                         "timestamp": seconds(TS)}]
    assert double.people == {"u1": accepted[0]["attributes"]}


async def test_identify_without_user_id_goes_by_email(double, http, tmp_path):
    event = {"type": "identify", "anonymousId": "a1", "messageId": "m1", "timestamp": TS,
             "traits": {"email": "ada@example.com"}}
    _, accepted = await send_one(double, http, tmp_path, event)
    assert accepted[0]["identifiers"] == {"email": "ada@example.com"}


async def test_identify_of_nobody_is_rejected_without_a_request(double, http, tmp_path):
    event = {"type": "identify", "anonymousId": "a1", "messageId": "m1", "timestamp": TS, "traits": {"plan": "x"}}
    outcome, accepted = await send_one(double, http, tmp_path, event)
    assert outcome.kind == "reject" and "no userId (id) or email" in outcome.reason
    assert accepted == [] and double.requests == []


async def test_track_is_an_event_with_message_id_and_data(double, http, tmp_path):
    event = {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "m1", "timestamp": TS,
             "properties": {"plan": "pro"}}
    _, accepted = await send_one(double, http, tmp_path, event)
    assert accepted == [{"type": "person", "action": "event", "identifiers": {"id": "u1"}, "name": "Signed Up",
                         "id": "m1", "attributes": {"plan": "pro"}, "timestamp": seconds(TS)}]


async def test_anonymous_track_goes_by_anonymous_id(double, http, tmp_path):
    event = {"type": "track", "event": "Viewed", "anonymousId": "a1", "messageId": "m1", "timestamp": TS}
    _, accepted = await send_one(double, http, tmp_path, event)
    assert accepted[0]["identifiers"] == {"anonymous_id": "a1"}


async def test_page_is_named_by_its_url_and_screen_by_its_name(double, http, tmp_path):
    page = {"type": "page", "name": "Home", "userId": "u1", "messageId": "m1", "timestamp": TS,
            "properties": {"url": "https://x.example/a"}}
    from_context = {"type": "page", "userId": "u1", "messageId": "m2", "timestamp": TS,
                    "context": {"page": {"url": "https://x.example/b"}}}
    screen = {"type": "screen", "name": "Settings", "userId": "u1", "messageId": "m3", "timestamp": TS}
    outcome = await destination(double, http, tmp_path).send(envelopes([page, from_context, screen]))
    assert outcome.kind == "ok"
    got = {(e["action"], e["name"]) for e in double.accepted}
    assert got == {("page", "https://x.example/a"), ("page", "https://x.example/b"), ("screen", "Settings")}


async def test_group_is_an_object_related_to_the_user(double, http, tmp_path):
    event = {"type": "group", "groupId": "acme", "userId": "u1", "messageId": "m1", "timestamp": TS,
             "traits": {"name": "Acme", "employees": 50}}
    _, accepted = await send_one(double, http, tmp_path, event)
    assert accepted == [{"type": "object", "action": "identify",
                         "identifiers": {"object_type_id": "1", "object_id": "acme"},
                         "attributes": {"name": "Acme", "employees": 50},
                         "cio_relationships": [{"identifiers": {"id": "u1"}}], "timestamp": seconds(TS)}]
    assert double.relationships == [("1", "acme", "u1")]


async def test_alias_is_a_merge(double, http, tmp_path):
    event = {"type": "alias", "userId": "u1", "previousId": "old", "messageId": "m1", "timestamp": TS}
    _, accepted = await send_one(double, http, tmp_path, event)
    assert double.merges == [({"id": "u1"}, {"id": "old"})]
    assert accepted[0]["timestamp"] == seconds(TS)


async def test_audience_events_set_the_audience_attribute_not_an_event(double, http, tmp_path):
    entered = {"type": "track", "event": "Audience Entered", "userId": "u1", "messageId": "m1", "timestamp": TS,
               "properties": {"audience_key": "high_value"}}
    exited = {**entered, "event": "Audience Exited", "userId": "u2", "messageId": "m2"}
    outcome = await destination(double, http, tmp_path).send(envelopes([entered, exited]))
    assert outcome.kind == "ok"
    assert double.entities("event") == []
    assert double.people == {"u1": {"high_value": True}, "u2": {"high_value": False}}


async def test_region_picks_the_host_and_headers_carry_basic_auth(tmp_path):
    for region, host in (("us", "https://track.customer.io"), ("eu", "https://track-eu.customer.io")):
        dest = build({"type": "customerio", "site_id": SITE_ID, "api_key": API_KEY, "region": region}, None, tmp_path)
        assert isinstance(dest, CustomerIO) and dest.base_url == host
        assert dest.base_headers["Authorization"] == "Basic " + base64.b64encode(f"{SITE_ID}:{API_KEY}".encode()).decode()


async def test_the_example_config_group_mapping_takes_the_object_type_from_traits(double, http, tmp_path):
    import yaml
    from pathlib import Path

    example = yaml.safe_load((Path(__file__).parents[3] / "config.example.yaml").read_text())["destinations"]["lifecycle_messaging"]
    (mapping,) = example["mappings"]
    groups = [{"type": "group", "groupId": "acct-1", "userId": "u1", "messageId": "m1", "timestamp": TS,
               "traits": {"name": "Acme", "object_type_id": "2"}},
              {"type": "group", "groupId": "acct-2", "userId": "u1", "messageId": "m2", "timestamp": TS,
               "traits": {"name": "Initech"}}]
    outcome = await destination(double, http, tmp_path, mappings=[mapping]).send(envelopes(groups))
    assert outcome.kind == "ok"
    assert set(double.objects) == {("2", "acct-1"), ("1", "acct-2")}
