"""Naming, flattening, rows per table and type inference, from the warehouse fact sheet's examples."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from collector.destinations.postgres.schema import (
    BOOLEAN, COERCE, COERCE_NAIVE_TIME, DATETIME, FLOAT, INT, MISFIT, STRING,
    event_table, flatten, identifier, infer_type, rows_for, schema_name, snake_case,
)


@pytest.mark.parametrize(("text", "want"), [
    ("Order Completed", "order_completed"), ("HTTPServer", "httpserver"), ("accountType", "account_type"),
    ("page2Url", "page_2url"), ("userID", "user_id"), ("$amount", "amount"), ("Signed Up!", "signed_up"),
    ("_private", "_private"), ("already_snake_1", "already_snake_1"), ("Zoë's Plan", "zo_s_plan"),
])
def test_snake_case_as_go_snakecase(text: str, want: str) -> None:
    assert snake_case(text) == want


def test_identifiers_prefix_a_leading_digit_and_are_cut_to_the_limit() -> None:
    assert identifier("3doctors") == "_3doctors"
    assert identifier("x" * 80, limit=63) == "x" * 63  # PostgreSQL's limit, which the destination passes
    assert identifier("x" * 80) == "x" * 80  # no limit: the data lake
    assert identifier("x" * 200, limit=127) == "x" * 127


@pytest.mark.parametrize(("source", "want"), [
    ("web", "web"), ("My Web Site", "my_web_site"), ("iOS App (prod)", "i_os_app_prod"),
    ("3 apps", "_3_apps"), ("!!!", "stringempty"),
])
def test_schema_name_of_a_source(source: str, want: str) -> None:
    assert schema_name(source) == want


@pytest.mark.parametrize(("name", "want"), [
    ("Order Completed", "order_completed"), ("Tracks", "_tracks"), ("users", "_users"),
    ("identifies", "_identifies"), ("  ", None), ("", None), (None, None), (42, None),
])
def test_event_table(name: object, want: str | None) -> None:
    assert event_table(name) == want


def test_flatten_joins_nested_objects_keeps_arrays_as_json_drops_nulls_and_reserved() -> None:
    out: dict = {}
    flatten({"address": {"street": "Main St", "geo": {"lat": 1.5}}, "tags": ["a", 2], "nothing": None,
             "accountType": "pro", "id": "mine", "received_at": "x", "empty": {}}, "", out)
    assert out == {"address_street": "Main St", "address_geo_lat": 1.5, "tags": '["a",2]', "account_type": "pro"}
    ctx: dict = {}
    flatten({"app": {"version": "1.2"}, "userAgent": "UA"}, "context_", ctx)
    assert ctx == {"context_app_version": "1.2", "context_user_agent": "UA"}


def _track(**extra: object) -> dict:
    return {"type": "track", "event": "Order Completed", "messageId": "m1", "userId": "u1", "anonymousId": "a1",
            "receivedAt": "2024-11-28T13:26:00.373Z", "sentAt": "2024-11-28T13:26:00.350Z",
            "timestamp": "2024-11-28T13:26:00.123Z", "originalTimestamp": "2024-11-28T13:26:00.100Z",
            "context": {"library": {"name": "analytics.js"}, "ip": "203.0.113.7"},
            "properties": {"total": 27.5, "currency": "EUR", "event": "shadowed"}, **extra}


def test_a_track_goes_to_tracks_without_properties_and_to_its_own_table_with_them() -> None:
    rows = dict(rows_for(_track()))
    common = {"id": "m1", "user_id": "u1", "anonymous_id": "a1", "received_at": "2024-11-28T13:26:00.373Z",
              "sent_at": "2024-11-28T13:26:00.350Z", "timestamp": "2024-11-28T13:26:00.123Z",
              "original_timestamp": "2024-11-28T13:26:00.100Z", "context_library_name": "analytics.js",
              "context_ip": "203.0.113.7", "event": "order_completed", "event_text": "Order Completed"}
    assert rows == {"tracks": common, "order_completed": {**common, "total": 27.5, "currency": "EUR"}}


def test_a_track_with_a_blank_name_goes_to_tracks_only() -> None:
    assert [t for t, _ in rows_for(_track(event="  "))] == ["tracks"]


def test_identify_goes_to_identifies_and_users_only_with_a_user_id() -> None:
    identify = {"type": "identify", "messageId": "m2", "userId": "u1", "receivedAt": "2024-11-28T13:26:01Z",
                "traits": {"email": "a@example.com", "address": {"city": "Köln"}}, "context": {"locale": "de"}}
    rows = dict(rows_for(identify))
    assert rows["identifies"] == {"id": "m2", "user_id": "u1", "received_at": "2024-11-28T13:26:01Z",
                                  "context_locale": "de", "email": "a@example.com", "address_city": "Köln"}
    assert rows["users"] == {"id": "u1", "received_at": "2024-11-28T13:26:01Z", "email": "a@example.com",
                             "address_city": "Köln"}
    assert [t for t, _ in rows_for({**identify, "userId": None, "anonymousId": "a"})] == ["identifies"]


def test_page_screen_group_alias_rows() -> None:
    page = dict(rows_for({"type": "page", "messageId": "p", "category": "Docs", "properties": {"name": "Home", "x": 1}}))
    assert page == {"pages": {"id": "p", "name": "Home", "category": "Docs", "x": 1}}
    screen = dict(rows_for({"type": "screen", "messageId": "s", "name": "Main", "properties": {"name": "Other"}}))
    assert screen == {"screens": {"id": "s", "name": "Main"}}
    group = dict(rows_for({"type": "group", "messageId": "g", "groupId": "acme", "traits": {"employees": 10}}))
    assert group == {"groups": {"id": "g", "group_id": "acme", "employees": 10}}
    alias = dict(rows_for({"type": "alias", "messageId": "al", "userId": "new", "previousId": "old"}))
    assert alias == {"aliases": {"id": "al", "user_id": "new", "previous_id": "old"}}


def test_events_without_message_id_or_known_type_make_no_rows() -> None:
    assert rows_for({"type": "track", "event": "X"}) == []
    assert rows_for({"type": "nonsense", "messageId": "m"}) == []


@pytest.mark.parametrize(("value", "want"), [
    (1, INT), (1.0, INT), (1.5, FLOAT), (True, BOOLEAN), ("text", STRING),
    ("2024-11-28T13:26:00.123Z", DATETIME), ("2024-11-28", DATETIME), ("2024-13-45T00:00:00Z", STRING),
    ("2024-11-28T13:26:00Z and more", STRING), ("12345", STRING),
])
def test_type_inference_from_the_first_value(value: object, want: str) -> None:
    assert infer_type(value) == want


@pytest.mark.parametrize(("column_type", "value", "want"), [
    (STRING, 12, "12"), (STRING, True, "true"), (STRING, {"a": 1}, '{"a":1}'), (STRING, "s", "s"),
    (FLOAT, 3, 3.0), (INT, 7.9, 7), (INT, 2 ** 70, MISFIT), (INT, "7", MISFIT), (INT, True, MISFIT),
    (BOOLEAN, "true", MISFIT), (BOOLEAN, False, False), (FLOAT, "1.5", MISFIT),
    (DATETIME, "2024-11-28T13:26:00+01:00", datetime(2024, 11, 28, 12, 26, tzinfo=timezone.utc)),
    (DATETIME, "not a time", MISFIT), (DATETIME, 1732800360, MISFIT),
])
def test_coercion_into_a_column_of_another_type(column_type: str, value: object, want: object) -> None:
    assert COERCE[column_type](value) == want if want is not MISFIT else COERCE[column_type](value) is MISFIT


def test_redshift_times_are_naive_utc() -> None:
    assert COERCE_NAIVE_TIME[DATETIME]("2024-11-28T13:26:00+01:00") == datetime(2024, 11, 28, 12, 26)
