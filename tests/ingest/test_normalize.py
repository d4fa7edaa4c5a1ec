"""normalize.py: Segment's per-call rules and the fields the server adds, one rule at a time."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.ingest.errors import EventError
from collector.ingest.normalize import (
    MAX_MESSAGE_ID, RequestFacts, epoch_us, iso, iso_us, normalize, parse_time, request_facts,
)

RECEIVED = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)
RECEIVED_ISO = "2024-05-01T12:00:00.250Z"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
IP = "203.0.113.9"
LIMIT = 32 * 1024


def facts(ip: str | None = IP, **batch: object) -> RequestFacts:
    return RequestFacts(iso(RECEIVED), int(RECEIVED.timestamp() * 1000), ip, **batch)


def run(event: object, call_type: str | None = "track", f: RequestFacts | None = None, max_bytes: int = LIMIT) -> dict:
    message_id, body = normalize(event, call_type, f or facts(), max_bytes)
    stored = msgspec.json.decode(body)
    assert stored["messageId"] == message_id
    return stored


def rejected(event: object, call_type: str | None = "track", f: RequestFacts | None = None, max_bytes: int = LIMIT) -> str:
    with pytest.raises(EventError) as caught:
        normalize(event, call_type, f or facts(), max_bytes)
    assert caught.value.message  # every rejection says why
    return caught.value.code


def track(**fields: object) -> dict:
    return {"userId": "u1", "event": "Order Completed", **fields}


# -- identity -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("call_type", ["track", "identify", "page", "screen", "group"])
def test_userid_or_anonymousid_is_required(call_type: str) -> None:
    event = {"event": "E", "groupId": "g1"}
    assert rejected(dict(event), call_type) == "missing_identity"
    assert rejected({**event, "userId": None, "anonymousId": None}, call_type) == "missing_identity"
    assert rejected({**event, "userId": "", "anonymousId": ""}, call_type) == "missing_identity"
    assert run({**event, "userId": "u1"}, call_type)["userId"] == "u1"
    assert run({**event, "anonymousId": "a1"}, call_type)["anonymousId"] == "a1"


def test_browser_null_userid_with_anonymousid_is_accepted() -> None:
    stored = run({"userId": None, "anonymousId": "2f1c-anon", "event": "Clicked"})
    assert stored["anonymousId"] == "2f1c-anon"
    assert stored["userId"] is None


@pytest.mark.parametrize("field", ["userId", "anonymousId"])
@pytest.mark.parametrize("value, expected", [(42, "42"), (0, "0"), (-7, "-7"), (3.5, "3.5"), (12345678901234, "12345678901234")])
def test_numeric_identities_become_strings(field: str, value: object, expected: str) -> None:
    assert run({"event": "E", field: value})[field] == expected


@pytest.mark.parametrize("field", ["userId", "anonymousId"])
@pytest.mark.parametrize("value", [True, False, {"id": 1}, ["u1"]])
def test_identities_of_other_types_are_rejected(field: str, value: object) -> None:
    assert rejected({"event": "E", field: value}) == "invalid_field"


def test_numeric_group_and_previous_ids_become_strings() -> None:
    assert run({"userId": "u1", "groupId": 99}, "group")["groupId"] == "99"
    stored = run({"userId": 5, "previousId": 4}, "alias")
    assert (stored["userId"], stored["previousId"]) == ("5", "4")


# -- per-call rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [None, "", "   ", 5, ["E"], {"name": "E"}])
def test_track_needs_an_event_name(name: object) -> None:
    event = {"userId": "u1"} if name is None else {"userId": "u1", "event": name}
    assert rejected(event, "track") == "missing_event"


def test_track_with_event_and_properties() -> None:
    stored = run(track(properties={"revenue": 9.99, "items": [1, 2]}))
    assert stored["type"] == "track"
    assert stored["event"] == "Order Completed"
    assert stored["properties"] == {"revenue": 9.99, "items": [1, 2]}


@pytest.mark.parametrize("group_id", [None, ""])
def test_group_needs_a_group_id(group_id: object) -> None:
    event = {"userId": "u1", "traits": {"plan": "pro"}}
    if group_id is not None:
        event["groupId"] = group_id
    assert rejected(event, "group") == "missing_groupId"


def test_group_with_group_id() -> None:
    stored = run({"userId": "u1", "groupId": "acme", "traits": {"plan": "pro"}}, "group")
    assert (stored["type"], stored["groupId"], stored["traits"]) == ("group", "acme", {"plan": "pro"})


def test_group_id_of_a_wrong_type_is_rejected() -> None:
    assert rejected({"userId": "u1", "groupId": {"id": 1}}, "group") == "invalid_field"


def test_alias_needs_previous_id() -> None:
    assert rejected({"userId": "u1"}, "alias") == "missing_previousId"
    assert rejected({"userId": "u1", "previousId": ""}, "alias") == "missing_previousId"


def test_alias_needs_user_id_even_with_an_anonymous_id() -> None:
    assert rejected({"anonymousId": "a1", "previousId": "a1"}, "alias") == "missing_userId"
    assert rejected({"userId": None, "anonymousId": "a1", "previousId": "a1"}, "alias") == "missing_userId"


def test_alias_with_both_ids() -> None:
    stored = run({"userId": "u1", "previousId": "anon-1"}, "alias")
    assert (stored["type"], stored["userId"], stored["previousId"]) == ("alias", "u1", "anon-1")


def test_identify_needs_only_an_identity() -> None:
    stored = run({"userId": "u1", "traits": {"email": "a@example.com"}}, "identify")
    assert (stored["type"], stored["traits"]) == ("identify", {"email": "a@example.com"})


@pytest.mark.parametrize("call_type", ["page", "screen"])
def test_page_and_screen_name_and_category_are_optional_strings(call_type: str) -> None:
    assert "name" not in run({"userId": "u1"}, call_type)
    stored = run({"userId": "u1", "name": "Pricing", "category": "Docs", "properties": {"path": "/p"}}, call_type)
    assert (stored["type"], stored["name"], stored["category"]) == (call_type, "Pricing", "Docs")
    assert run({"userId": "u1", "name": None, "category": None}, call_type)["type"] == call_type


@pytest.mark.parametrize("call_type", ["page", "screen"])
@pytest.mark.parametrize("field", ["name", "category"])
@pytest.mark.parametrize("value", [5, True, ["x"], {"x": 1}])
def test_page_and_screen_name_and_category_of_other_types_are_rejected(call_type: str, field: str, value: object) -> None:
    assert rejected({"userId": "u1", field: value}, call_type) == "invalid_field"


@pytest.mark.parametrize("call_type", ["track", "identify", "page", "screen", "group", "alias"])
@pytest.mark.parametrize("field", ["properties", "traits", "context", "integrations"])
@pytest.mark.parametrize("value", [[], ["a"], "text", 1, True])
def test_object_fields_must_be_objects(call_type: str, field: str, value: object) -> None:
    event = {"userId": "u1", "event": "E", "groupId": "g", "previousId": "p", field: value}
    assert rejected(event, call_type) == "invalid_field"


@pytest.mark.parametrize("field", ["properties", "traits", "context", "integrations"])
def test_null_object_fields_are_dropped_and_objects_kept(field: str) -> None:
    assert field not in run(track(**{field: None}), f=facts(ip=None))
    assert run(track(**{field: {"k": "v"}}))[field]["k"] == "v"


# -- type -----------------------------------------------------------------------------------------------


def test_single_routes_set_the_type_of_their_route() -> None:
    assert run(track(type="identify"), "track")["type"] == "track"
    assert run({"userId": "u1", "type": "track"}, "identify")["type"] == "identify"


@pytest.mark.parametrize("call_type", ["track", "identify", "page", "screen", "group", "alias"])
def test_batch_items_take_their_own_type(call_type: str) -> None:
    event = {"type": call_type, "userId": "u1", "event": "E", "groupId": "g", "previousId": "p"}
    assert run(event, None)["type"] == call_type


@pytest.mark.parametrize("call_type", [None, "", "Track", "batch", "delete", 1, ["track"]])
def test_batch_items_without_a_known_type_are_rejected(call_type: object) -> None:
    event = track() if call_type is None else track(type=call_type)
    assert rejected(event, None) == "invalid_type"


@pytest.mark.parametrize("item", [None, 1, "track", ["track"], True])
def test_an_item_that_is_not_an_object_is_rejected(item: object) -> None:
    assert rejected(item, None) == "invalid_event"


# -- messageId, writeKey --------------------------------------------------------------------------------


def test_message_id_is_generated_when_absent() -> None:
    first, second = run(track())["messageId"], run(track())["messageId"]
    assert isinstance(first, str) and 0 < len(first) <= MAX_MESSAGE_ID
    assert first != second
    assert run(track(messageId=""))["messageId"] not in ("", first, second)
    assert run(track(messageId=None))["messageId"]


@pytest.mark.parametrize(
    "message_id", ["ajs-next-1714564800000-3f2a9c1e-6b7d-4e8f-9a0b-1c2d3e4f5a6b", str(uuid.uuid4()), "x", "m" * 100]
)
def test_message_id_is_kept_when_present(message_id: str) -> None:
    message_id_out, body = normalize(track(messageId=message_id), "track", facts(), LIMIT)
    assert message_id_out == message_id
    assert msgspec.json.decode(body)["messageId"] == message_id


def test_numeric_message_id_becomes_a_string() -> None:
    assert run(track(messageId=1234))["messageId"] == "1234"


@pytest.mark.parametrize("message_id", ["m" * 101, "é" * 101, "x" * 1000])
def test_message_id_over_100_characters_is_rejected(message_id: str) -> None:
    assert rejected(track(messageId=message_id)) == "invalid_field"


@pytest.mark.parametrize("message_id", [True, {"id": 1}, ["m"]])
def test_message_id_of_other_types_is_rejected(message_id: object) -> None:
    assert rejected(track(messageId=message_id)) == "invalid_field"


def test_write_key_is_not_stored() -> None:
    assert "writeKey" not in run(track(writeKey="wk_secret"))
    assert "writeKey" not in run({**track(writeKey="wk_secret"), "type": "track"}, None)
    _, body = normalize(track(writeKey="wk_secret"), "track", facts(), LIMIT)
    assert b"wk_secret" not in body


def test_unknown_fields_are_kept() -> None:
    stored = run(track(_metadata={"bundled": ["Segment.io"]}, custom=[1, {"a": None}]))
    assert stored["_metadata"] == {"bundled": ["Segment.io"]}
    assert stored["custom"] == [1, {"a": None}]


# -- batch context and integrations ------------------------------------------------------------------


def test_batch_context_is_merged_with_the_items_keys_winning() -> None:
    batch_context = {"library": {"name": "analytics-python", "version": "2.3.4"}, "locale": "en-US"}
    f = facts(batch_context=batch_context)
    stored = run(track(context={"locale": "fr-FR", "page": {"path": "/"}}), "track", f)
    assert stored["context"]["library"] == {"name": "analytics-python", "version": "2.3.4"}
    assert stored["context"]["locale"] == "fr-FR"
    assert stored["context"]["page"] == {"path": "/"}
    # an item without context gets the batch's; the batch's object itself is left untouched
    assert run(track(), "track", f)["context"]["locale"] == "en-US"
    assert batch_context == {"library": {"name": "analytics-python", "version": "2.3.4"}, "locale": "en-US"}


def test_batch_integrations_are_merged_with_the_items_keys_winning() -> None:
    f = facts(batch_integrations={"All": False, "Mixpanel": True, "Amplitude": True})
    stored = run(track(integrations={"Amplitude": False, "Webhooks": {"x": 1}}), "track", f)
    assert stored["integrations"] == {"All": False, "Mixpanel": True, "Amplitude": False, "Webhooks": {"x": 1}}
    assert run(track(), "track", f)["integrations"] == {"All": False, "Mixpanel": True, "Amplitude": True}


def test_each_event_of_a_batch_gets_its_own_copy_of_the_batchs_nested_objects() -> None:
    f = facts(batch_context={"traits": {"email": "a@b.c"}, "tags": ["x"], "locale": "en"},
              batch_integrations={"Webhooks": {"token": "t"}, "All": True})
    first, second = track(), track()
    normalize(first, "track", f, 32 * 1024)
    normalize(second, "track", f, 32 * 1024)
    assert first["context"]["traits"] == second["context"]["traits"] == {"email": "a@b.c"}
    for key in ("traits", "tags"):
        assert first["context"][key] is not second["context"][key]
        assert first["context"][key] is not f.batch_context[key]
    assert first["integrations"]["Webhooks"] is not second["integrations"]["Webhooks"]
    first["context"]["traits"]["email"] = "changed"
    assert second["context"]["traits"] == f.batch_context["traits"] == {"email": "a@b.c"}


def test_a_batch_context_with_text_that_is_not_unicode_is_refused() -> None:
    f = facts(batch_context={"traits": {"email": "\ud800"}})
    with pytest.raises(EventError) as error:
        normalize(track(), "track", f, 32 * 1024)
    assert error.value.code == "invalid_utf8"


def test_without_batch_fields_nothing_is_merged() -> None:
    stored = run(track())
    assert "integrations" not in stored
    assert stored["context"] == {"ip": IP}


# -- time ------------------------------------------------------------------------------------------------


def test_received_at_is_the_server_clock() -> None:
    assert run(track())["receivedAt"] == RECEIVED_ISO
    assert run(track(receivedAt="1999-01-01T00:00:00Z"))["receivedAt"] == RECEIVED_ISO
    before = datetime.now(timezone.utc)
    live = run(track(), "track", request_facts(None))
    after = datetime.now(timezone.utc)
    received = parse_time(live["receivedAt"], "receivedAt")
    assert before - timedelta(milliseconds=1) <= received <= after
    assert live["receivedAt"].endswith("Z")


def test_no_client_timestamp_means_timestamp_is_received_at() -> None:
    stored = run(track())
    assert stored["timestamp"] == RECEIVED_ISO
    assert "originalTimestamp" not in stored
    with_sent_at = run(track(sentAt="2024-05-01T11:00:00Z"))
    assert with_sent_at["timestamp"] == RECEIVED_ISO


def test_clock_skew_is_corrected_with_the_events_sent_at() -> None:
    # the client's clock is 3 hours behind; it sent the event 5.5 s after it happened
    stored = run(track(timestamp="2024-05-01T09:00:00.000Z", sentAt="2024-05-01T09:00:05.500Z"))
    assert stored["originalTimestamp"] == "2024-05-01T09:00:00.000Z"
    assert stored["timestamp"] == "2024-05-01T11:59:54.750Z"  # receivedAt - 5.5 s
    assert stored["receivedAt"] == RECEIVED_ISO


def test_clock_skew_is_corrected_with_the_batch_sent_at() -> None:
    sent_at = "2024-05-01T14:00:10Z"  # a clock 2 hours ahead
    f = facts(batch_sent_at=sent_at, batch_sent_at_us=epoch_us(parse_time(sent_at, "sentAt")))
    stored = run(track(timestamp="2024-05-01T14:00:00Z"), "track", f)
    assert stored["originalTimestamp"] == "2024-05-01T14:00:00Z"
    assert stored["timestamp"] == "2024-05-01T11:59:50.250Z"


def test_the_events_sent_at_wins_over_the_batchs() -> None:
    batch_sent = "2024-05-01T20:00:00Z"
    f = facts(batch_sent_at=batch_sent, batch_sent_at_us=epoch_us(parse_time(batch_sent, "sentAt")))
    stored = run(track(timestamp="2024-05-01T10:00:00Z", sentAt="2024-05-01T10:00:01Z"), "track", f)
    assert stored["timestamp"] == "2024-05-01T11:59:59.250Z"


def test_offsets_are_honoured() -> None:
    stored = run(track(timestamp="2024-05-01T12:00:00+02:00", sentAt="2024-05-01T10:00:30Z"))
    assert stored["originalTimestamp"] == "2024-05-01T12:00:00+02:00"
    assert stored["timestamp"] == "2024-05-01T11:59:30.250Z"


@given(
    original=st.datetimes(timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30)),
                                                     timezone(timedelta(hours=-8))])),
    skew_us=st.integers(-10**15, 10**15),
)
def test_the_corrected_timestamp_is_the_datetime_arithmetic_to_the_millisecond(original, skew_us) -> None:
    """The correction is computed in integer microseconds and formatted a second at a time; it
    must write exactly what datetime arithmetic would, or fail the same way out of range."""
    received = RECEIVED
    sent_us = epoch_us(received) + skew_us
    try:
        corrected = received - (EPOCH + timedelta(microseconds=sent_us) - original)
        expected = corrected.isoformat(timespec="milliseconds")[:23] + "Z"  # received is in UTC
    except OverflowError:
        with pytest.raises(OverflowError):
            iso_us(epoch_us(received) - sent_us + epoch_us(original))
        return
    assert iso_us(epoch_us(received) - sent_us + epoch_us(original)) == expected


def test_timestamp_without_sent_at_is_kept_in_utc() -> None:
    stored = run(track(timestamp="2024-04-30T23:00:00.123+01:00"))
    assert stored["originalTimestamp"] == "2024-04-30T23:00:00.123+01:00"
    assert stored["timestamp"] == "2024-04-30T22:00:00.123Z"


@pytest.mark.parametrize(
    "fields",
    [
        {"timestamp": "yesterday"},
        {"timestamp": ""},
        {"timestamp": 1714564800},
        {"timestamp": {"t": 1}},
        {"timestamp": "2024-13-01T00:00:00Z"},
        {"timestamp": "2024-05-01T12:00:00Z", "sentAt": "soon"},
        {"timestamp": "2024-05-01T12:00:00Z", "sentAt": 5},
        {"sentAt": "not a date"},
        # out of datetime's range once converted or corrected
        {"timestamp": "0001-01-01T00:00:00+01:00"},
        {"timestamp": "9999-12-31T23:59:59-01:00"},
        {"timestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-12-31T23:59:59Z"},
    ],
)
def test_invalid_timestamps_are_rejected(fields: dict) -> None:
    assert rejected(track(**fields)) == "invalid_timestamp"


def test_parse_time_reads_naive_times_as_utc() -> None:
    assert parse_time("2024-05-01T12:00:00", "timestamp") == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert iso(datetime(2024, 5, 1, 14, 0, 0, 5000, tzinfo=timezone(timedelta(hours=2)))) == "2024-05-01T12:00:00.005Z"


# -- context.ip ----------------------------------------------------------------------------------------


def test_context_ip_is_filled_when_absent() -> None:
    assert run(track())["context"] == {"ip": IP}
    assert run(track(context={"locale": "de"}))["context"] == {"locale": "de", "ip": IP}


def test_context_ip_from_the_client_is_kept() -> None:
    assert run(track(context={"ip": "198.51.100.1"}))["context"]["ip"] == "198.51.100.1"
    batch = facts(batch_context={"ip": "198.51.100.2"})
    assert run(track(), "track", batch)["context"]["ip"] == "198.51.100.2"


def test_no_known_ip_adds_nothing() -> None:
    assert "context" not in run(track(), "track", facts(ip=None))
    assert run(track(context={"a": 1}), "track", facts(ip=None))["context"] == {"a": 1}


# -- size ----------------------------------------------------------------------------------------------


def test_an_event_under_the_limit_is_accepted() -> None:
    stored = run(track(properties={"blob": "x" * (LIMIT - 1024)}))
    assert len(stored["properties"]["blob"]) == LIMIT - 1024


@pytest.mark.parametrize("size", [LIMIT + 1024, 2 * LIMIT, 10 * LIMIT])
def test_an_event_over_the_limit_is_rejected(size: int) -> None:
    assert rejected(track(properties={"blob": "x" * size})) == "event_too_large"


def test_the_limit_is_the_configured_one() -> None:
    assert run(track(properties={"blob": "x" * 300}), max_bytes=1000)
    assert rejected(track(properties={"blob": "x" * 2000}), max_bytes=1000) == "event_too_large"


def test_the_limit_counts_encoded_bytes_not_characters() -> None:
    # 12,000 three-byte characters: 12k characters, 36 KB of UTF-8
    assert rejected(track(properties={"blob": "€" * 12000})) == "event_too_large"


def test_text_that_is_not_unicode_is_rejected() -> None:
    assert rejected(track(properties={"bad": "\ud800"})) == "invalid_utf8"


@pytest.mark.parametrize("sent, stored_as", [
    ("2024-05-01T12:00:00.000Z", "2024-05-01T12:00:00.000Z"),  # already canonical: kept as sent
    ("2024-05-01t12:00:00.000Z", "2024-05-01T12:00:00.000Z"),
    ("2024-05-01 12:00:00.5+00:00", "2024-05-01T12:00:00.500Z"),
    ("2024-05-01T12:00:00.123456Z", "2024-05-01T12:00:00.123Z"),
])
def test_timestamp_without_sent_at_is_written_canonically(sent: str, stored_as: str) -> None:
    facts = request_facts("10.0.0.1")
    _, body = normalize({"type": "track", "event": "E", "userId": "u", "timestamp": sent}, None, facts, 32_000)
    assert msgspec.json.decode(body)["timestamp"] == stored_as


# -- source filters -------------------------------------------------------------------------------------


def test_filters_see_the_enriched_event_and_what_they_leave_is_stored() -> None:
    from collector.filters.config import PiiRuleConfig
    from collector.filters.pii import PiiRules
    from collector.filters.source import SourceFilters

    filters = SourceFilters("web", None, PiiRules([PiiRuleConfig(fields=["context.ip"], action="truncate_ip")]))
    message_id, body = normalize(track(messageId="m1"), "track", facts(), LIMIT, filters)
    stored = msgspec.json.decode(body)
    assert message_id == stored["messageId"] == "m1"
    assert stored["context"]["ip"] == "203.0.113.0"  # context.ip was added before the filters ran


def test_a_blocked_event_raises_event_blocked_and_is_not_encoded() -> None:
    from collector.filters.config import TrackingPlanConfig
    from collector.filters.plan import TrackingPlan
    from collector.filters.source import EventBlocked, SourceFilters

    plan = TrackingPlan("p", TrackingPlanConfig(unplanned_events="block"))
    with pytest.raises(EventBlocked) as caught:
        normalize(track(), "track", facts(), LIMIT, SourceFilters("web", plan, None))
    assert caught.value.reason == "unplanned_event"


def test_the_size_limit_applies_to_the_filtered_event() -> None:
    from collector.filters.config import PiiRuleConfig
    from collector.filters.pii import PiiRules
    from collector.filters.source import SourceFilters

    big = track(properties={"blob": "x" * 40_000})
    assert rejected(dict(big)) == "event_too_large"
    drop_blob = SourceFilters("web", None, PiiRules([PiiRuleConfig(keys=["blob"], action="drop")]))
    _, body = normalize(big, "track", facts(), LIMIT, drop_blob)
    assert "blob" not in msgspec.json.decode(body)["properties"]
