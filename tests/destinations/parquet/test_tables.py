"""Segment's table and column names for an event's rows."""

from __future__ import annotations

import pytest

from collector.destinations.parquet.tables import event_table, identifier, rows_for, snake_case, source_name

RECEIVED_MS = 1_732_800_360_373  # 2024-11-28T13:26:00.373Z


@pytest.mark.parametrize(("text", "expected"), [
    ("Order Completed", "order_completed"), ("HTTPServer", "httpserver"), ("accountType", "account_type"),
    ("page2Url", "page_2url"), ("userID", "user_id"), ("$amount", "amount"), ("Signed Up!", "signed_up"),
    ("_private", "_private"),
])
def test_snake_case_matches_go_snakecase_vectors(text: str, expected: str) -> None:
    assert snake_case(text) == expected


def test_identifier_prefixes_a_leading_digit() -> None:
    assert identifier("3 Doctors") == "_3_doctors"
    assert identifier("!!!") == ""


@pytest.mark.parametrize(("name", "table"), [
    ("Order Completed", "order_completed"), ("Tracks", "_tracks"), ("identifies", "_identifies"),
    ("   ", None), (None, None), (42, None),
])
def test_event_table(name: object, table: str | None) -> None:
    assert event_table(name) == table


@pytest.mark.parametrize(("source", "name"), [("My Web-App", "my_web_app"), ("2nd site", "_2nd_site"),
                                              ("", "stringempty"), ("///", "stringempty")])
def test_source_name(source: str, name: str) -> None:
    assert source_name(source) == name


def test_track_goes_to_tracks_without_properties_and_to_its_own_table_with_them() -> None:
    event = {"type": "track", "event": "Order Completed", "messageId": "m1", "userId": "u1",
             "anonymousId": "a1", "receivedAt": "2024-11-28T13:26:00.373Z", "sentAt": "2024-11-28T13:26:00.350Z",
             "properties": {"orderId": "o1", "total": 27.5, "coupon": None, "items": [{"sku": "x"}],
                            "shipping": {"Method": "DHL", "cost": {"EUR": 4}}, "id": "discarded"},
             "context": {"library": {"name": "analytics.js"}, "userAgent": "UA", "ip": "203.0.113.7"}}
    rows = dict(rows_for(event, RECEIVED_MS))
    common = {"id": "m1", "received_at": "2024-11-28T13:26:00.373Z", "sent_at": "2024-11-28T13:26:00.350Z",
              "user_id": "u1", "anonymous_id": "a1", "context_library_name": "analytics.js",
              "context_user_agent": "UA", "context_ip": "203.0.113.7",
              "event": "order_completed", "event_text": "Order Completed"}
    assert rows["tracks"] == common
    assert rows["order_completed"] == {**common, "order_id": "o1", "total": 27.5, "items": '[{"sku":"x"}]',
                                       "shipping_method": "DHL", "shipping_cost_eur": 4}


def test_track_without_a_usable_name_goes_to_tracks_only() -> None:
    rows = rows_for({"type": "track", "event": "!!", "messageId": "m"}, RECEIVED_MS)
    assert [t for t, _ in rows] == ["tracks"]


def test_received_at_falls_back_to_the_collectors_receive_time() -> None:
    [(_, row)] = rows_for({"type": "alias", "messageId": "m", "previousId": "old", "userId": "new"}, RECEIVED_MS)
    assert row == {"id": "m", "received_at": "2024-11-28T13:26:00.373Z", "user_id": "new", "previous_id": "old"}


def test_identify_group_page_screen() -> None:
    identify = {"type": "identify", "messageId": "i", "userId": "u", "anonymousId": None,
                "traits": {"email": "e@x", "address": {"city": "Köln"}, "user_id": "discarded", "1st": True}}
    assert rows_for(identify, RECEIVED_MS) == [("identifies", {
        "id": "i", "received_at": "2024-11-28T13:26:00.373Z", "user_id": "u", "email": "e@x",
        "address_city": "Köln", "_1st": True})]
    group = {"type": "group", "messageId": "g", "groupId": "g1", "traits": {"name": "Initech"}}
    assert rows_for(group, RECEIVED_MS)[0][1]["group_id"] == "g1"
    assert rows_for(group, RECEIVED_MS)[0][1]["name"] == "Initech"
    page = {"type": "page", "messageId": "p", "properties": {"name": "From Props", "path": "/a"}}
    assert rows_for(page, RECEIVED_MS)[0] == ("pages", {"id": "p", "received_at": "2024-11-28T13:26:00.373Z",
                                                        "name": "From Props", "path": "/a"})
    screen = {"type": "screen", "messageId": "s", "name": "Home", "properties": {"name": "Other"}}
    assert rows_for(screen, RECEIVED_MS)[0][0] == "screens"
    assert rows_for(screen, RECEIVED_MS)[0][1]["name"] == "Home"


def test_unknown_type_makes_no_row_and_the_event_is_not_changed() -> None:
    assert rows_for({"type": "bogus", "messageId": "m"}, RECEIVED_MS) == []
    event = {"type": "track", "event": "A", "messageId": "m", "properties": {"n": {"deep": 1}}}
    before = repr(event)
    rows_for(event, RECEIVED_MS)
    assert repr(event) == before
