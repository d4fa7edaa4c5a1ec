"""Typed action fields: each coercion, each error (all reported at once, naming the field), and the
static checks of a mapping against its fields."""

from __future__ import annotations

import copy

import pytest

from collector.destinations.actions.fields import (
    Field,
    PayloadError,
    check_mapping,
    compile_validator,
    default_mapping,
    format_issue,
    validate_payload,
)
from collector.destinations.actions.mapping import MISSING


def clean(field: Field, value):
    """The cleaned value of a lone field named ``f`` (MISSING when dropped)."""
    return validate_payload({"f": field}, {"f": value}).get("f", MISSING)


def problems(fields, payload) -> list[str]:
    with pytest.raises(PayloadError) as info:
        validate_payload(fields, payload)
    assert str(info.value) == "; ".join(info.value.problems)
    return info.value.problems


# ---------------------------------------------------------------------------------------------------
# Coercions and pass-through

@pytest.mark.parametrize("field, value, expected", [
    (Field("string"), "abc", "abc"),
    (Field("text"), "long text", "long text"),
    (Field("password"), "s3cret", "s3cret"),
    (Field("string"), "", ""),
    (Field("number"), 3, 3),
    (Field("number"), 1.5, 1.5),
    (Field("number"), "12", 12),
    (Field("number"), "1.5", 1.5),
    (Field("number"), "-0.25", -0.25),
    (Field("number"), " 7 ", 7),
    (Field("number"), "1e3", 1000.0),
    (Field("number"), ".5", 0.5),
    (Field("integer"), 4, 4),
    (Field("integer"), 4.0, 4),
    (Field("integer"), "12", 12),
    (Field("integer"), "12.0", 12),
    (Field("integer"), "-3", -3),
    (Field("boolean"), True, True),
    (Field("boolean"), False, False),
    (Field("boolean"), "true", True),
    (Field("boolean"), "false", False),
    (Field("object"), {"a": None, "b": [1]}, {"a": None, "b": [1]}),
    (Field("object"), {}, {}),
    # multiple: a scalar becomes a list, each item is coerced
    (Field("string", multiple=True), "a", ["a"]),
    (Field("string", multiple=True), ["a", "b"], ["a", "b"]),
    (Field("integer", multiple=True), ["1", 2.0, 3], [1, 2, 3]),
    (Field("number", multiple=True), "2.5", [2.5]),
    (Field("object", multiple=True), {"a": 1}, [{"a": 1}]),
    (Field("string", multiple=True), [], []),
    # null and ''
    (Field("string"), None, MISSING),
    (Field("string", allow_null=True), None, None),
    (Field("number", allow_null=True), None, None),
    (Field("number"), "", MISSING),
    (Field("integer"), "", MISSING),
    (Field("boolean"), "", MISSING),
    (Field("datetime"), "", MISSING),
    (Field("object"), "", MISSING),
    (Field("string", multiple=True), None, MISSING),
    (Field("number", multiple=True), "", MISSING),
    (Field("text"), "", ""),
    (Field("password"), "", ""),
])
def test_clean_values(field, value, expected):
    result = clean(field, value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("value, expected", [
    ("2024-05-01T12:00:00.000Z", "2024-05-01T12:00:00.000Z"),
    ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00.000Z"),
    ("2024-05-01T12:00:00.1Z", "2024-05-01T12:00:00.100Z"),
    ("2024-05-01T12:00:00.123456789Z", "2024-05-01T12:00:00.123Z"),
    ("2024-05-01T12:00:00,5Z", "2024-05-01T12:00:00.500Z"),
    ("2024-05-01T14:30:00+02:00", "2024-05-01T12:30:00.000Z"),
    ("2024-05-01T14:30:00+0200", "2024-05-01T12:30:00.000Z"),
    ("2024-05-01T01:00:00-03:00", "2024-05-01T04:00:00.000Z"),
    ("2024-05-01T00:30:00+01:00", "2024-04-30T23:30:00.000Z"),
    ("2024-05-01T12:00", "2024-05-01T12:00:00.000Z"),
    ("2024-05-01 12:00:00", "2024-05-01T12:00:00.000Z"),
    ("2024-05-01", "2024-05-01T00:00:00.000Z"),
    # epoch seconds below 1e11, milliseconds from 1e11
    (1714564800, "2024-05-01T12:00:00.000Z"),
    (1714564800.25, "2024-05-01T12:00:00.250Z"),
    (1714564800123, "2024-05-01T12:00:00.123Z"),
    ("1714564800", "2024-05-01T12:00:00.000Z"),
    ("1714564800123", "2024-05-01T12:00:00.123Z"),
    (0, "1970-01-01T00:00:00.000Z"),
    (-86400, "1969-12-31T00:00:00.000Z"),
    (99_999_999_999, "5138-11-16T09:46:39.000Z"),
    (100_000_000_000, "1973-03-03T09:46:40.000Z"),
])
def test_datetime_is_normalised_to_utc_milliseconds(value, expected):
    assert clean(Field("datetime"), value) == expected


@pytest.mark.parametrize("value, expected", [(12345, "12345"), (10.0, "10"), (1.5, "1.5"), (-3, "-3"), ("x", "x")])
def test_numbers_become_text_in_string_fields(value, expected):
    assert clean(Field("string"), value) == expected


# ---------------------------------------------------------------------------------------------------
# Errors

@pytest.mark.parametrize("field, value, message", [
    (Field("string"), True, "f: expected string, got boolean true"),
    (Field("string"), {"a": 1}, 'f: expected string, got object {"a":1}'),
    (Field("string"), ["a", "b"], 'f: expected string, got array ["a","b"]'),
    (Field("number"), "abc", 'f: expected number, got string "abc"'),
    (Field("number"), "12abc", 'f: expected number, got string "12abc"'),
    (Field("number"), "0x10", 'f: expected number, got string "0x10"'),
    (Field("number"), "NaN", 'f: expected number, got string "NaN"'),
    (Field("number"), "inf", 'f: expected number, got string "inf"'),
    (Field("number"), "1e999", 'f: expected number, got string "1e999"'),
    (Field("number"), "1_000", 'f: expected number, got string "1_000"'),
    (Field("number"), True, "f: expected number, got boolean true"),
    (Field("integer"), 1.5, "f: expected integer, got number 1.5"),
    (Field("integer"), "1.5", 'f: expected integer, got string "1.5"'),
    (Field("integer"), False, "f: expected integer, got boolean false"),
    (Field("boolean"), "yes", 'f: expected boolean, got string "yes"'),
    (Field("boolean"), "True", 'f: expected boolean, got string "True"'),
    (Field("boolean"), 1, "f: expected boolean, got number 1"),
    (Field("object"), "x", 'f: expected object, got string "x"'),
    (Field("object"), [{"a": 1}], 'f: expected object, got array [{"a":1}]'),
    (Field("datetime"), "yesterday",
     'f: expected an ISO-8601 date-time or epoch seconds/milliseconds, got string "yesterday"'),
    (Field("datetime"), True,
     "f: expected an ISO-8601 date-time or epoch seconds/milliseconds, got boolean true"),
    (Field("datetime"), "2024-02-30T00:00:00Z",
     'f: invalid date-time string "2024-02-30T00:00:00Z": day is out of range for month'),
    (Field("datetime"), "2024-05-01T25:00:00Z",
     'f: invalid date-time string "2024-05-01T25:00:00Z": hour must be in 0..23'),
    (Field("datetime"), 1e16, "f: epoch time out of range (years 1 to 9999): number 1e16"),
    (Field("datetime"), "0001-01-01T00:00:00+01:00",
     'f: date-time out of range: string "0001-01-01T00:00:00+01:00"'),
    (Field("string", required=True), None, "f: required but missing"),
    (Field("number", required=True), "", "f: required but missing"),
    (Field("string", choices=("USD", "EUR")), "usd", 'f: string "usd" is not one of "USD", "EUR"'),
    (Field("integer", choices=(1, 2)), "3", "f: number 3 is not one of 1, 2"),
    (Field("number", minimum=0), -1, "f: number -1 is below the minimum 0"),
    (Field("number", maximum=10), "10.5", "f: number 10.5 is above the maximum 10"),
    (Field("string", max_length=3), "abcd", "f: 4 characters, more than the maximum 3"),
    (Field("string", multiple=True), ["a", True, None], "f[1]: expected string, got boolean true; "
                                                        "f[2]: expected string, got null"),
])
def test_errors(field, value, message):
    assert "; ".join(problems({"f": field}, {"f": value})) == message


@pytest.mark.parametrize("field, value", [
    (Field("string", choices=("USD", "EUR")), "EUR"),
    (Field("number", minimum=0, maximum=10), 0),
    (Field("number", minimum=0, maximum=10), 10),
    (Field("string", max_length=3), "abc"),
    (Field("string", choices=({"label": "US dollar", "value": "USD"},)), "USD"),
])
def test_constraints_accept_their_bounds(field, value):
    assert clean(field, value) == value


def test_choices_compare_numbers_as_numbers_and_never_as_booleans_or_strings():
    assert clean(Field("integer", choices=(1, 0)), "1.0") == 1
    assert clean(Field("number", choices=(1, 2)), 1.0) == 1.0
    assert clean(Field("string", choices=("1",)), 1) == "1"
    assert problems({"f": Field("string", choices=("1",))}, {"f": True}) == [
        "f: expected string, got boolean true"]
    assert problems({"f": Field("boolean", choices=(True,))}, {"f": "false"}) == [
        "f: boolean false is not one of true"]
    assert problems({"f": Field("object", choices=(1,))}, {"f": {}}) == [
        "f: object {} is not one of 1"]


def test_every_problem_is_listed_at_once():
    fields = {
        "transaction_id": Field("string", required=True),
        "currency": Field("string", required=True),
        "value": Field("number"),
        "items": Field("object", multiple=True, required=True, properties={
            "item_id": Field("string", required=True),
            "price": Field("number"),
        }),
        "ok": Field("string"),
    }
    payload = {"currency": False, "value": "abc", "ok": "fine",
               "items": [{"item_id": "a", "price": "1"}, {"price": "x"}, "oops"]}
    assert problems(fields, payload) == [
        "transaction_id: required but missing",
        "currency: expected string, got boolean false",
        'value: expected number, got string "abc"',
        "items[1].item_id: required but missing",
        'items[1].price: expected number, got string "x"',
        'items[2]: expected object, got string "oops"',
    ]


# ---------------------------------------------------------------------------------------------------
# Objects, unknown keys, the payload itself

def test_object_properties_are_validated_and_unknown_sub_keys_kept():
    user_data = Field("object", properties={
        "email": Field("string", hashed="email"),
        "age": Field("integer"),
        "vip": Field("boolean", allow_null=True),
        "phone": Field("string"),
        "address": Field("object", properties={"zip": Field("string", required=True)}),
    })
    value = {"email": "a@b.c", "age": "41", "vip": None, "phone": None, "extra": None,
             "address": {"zip": "75001", "city": "Paris"}}
    before = copy.deepcopy(value)
    assert clean(user_data, value) == {"email": "a@b.c", "age": 41, "vip": None, "extra": None,
                                       "address": {"zip": "75001", "city": "Paris"}}
    assert value == before
    # a sub-field that is only dropped changes the object too
    assert clean(user_data, {"email": "a@b.c", "phone": ""}) == {"email": "a@b.c", "phone": ""}
    assert clean(user_data, {"email": "a@b.c", "phone": None}) == {"email": "a@b.c"}


def test_nested_problems_name_their_full_path():
    fields = {"user_data": Field("object", properties={
        "email": Field("string"),
        "address": Field("object", properties={"zip": Field("string", required=True)}),
    })}
    assert problems(fields, {"user_data": {"email": True, "address": {"city": "Paris"}}}) == [
        "user_data.email: expected string, got boolean true",
        "user_data.address.zip: required but missing",
    ]


def test_undeclared_fields_are_dropped_and_the_payload_is_not_changed():
    fields = {"a": Field("integer"), "b": Field("object", properties={"n": Field("number")})}
    payload = {"a": "1", "b": {"n": "2", "x": 1}, "undeclared": 1, "nothing": None}
    before = copy.deepcopy(payload)
    assert validate_payload(fields, payload) == {"a": 1, "b": {"n": 2, "x": 1}}
    assert payload == before


def test_a_compiled_validator_is_reusable():
    validate = compile_validator({"n": Field("number", required=True)})
    assert validate({"n": "1"}) == {"n": 1}
    assert validate({"n": 2.5}) == {"n": 2.5}
    with pytest.raises(PayloadError) as info:
        validate({})
    assert info.value.problems == ["n: required but missing"]
    assert isinstance(info.value, ValueError)


def test_required_with_allow_null_accepts_null():
    assert validate_payload({"f": Field("string", required=True, allow_null=True)}, {"f": None}) == {
        "f": None}


# ---------------------------------------------------------------------------------------------------
# Field definitions

@pytest.mark.parametrize("kwargs, fragment", [
    ({"type": "float"}, "unknown field type"),
    ({"type": "string", "properties": {"a": Field("string")}}, "properties apply to object"),
    ({"type": "string", "minimum": 1}, "minimum and maximum"),
    ({"type": "number", "max_length": 1}, "max_length applies"),
    ({"type": "string", "choices": ()}, "must not be empty"),
])
def test_bad_field_definitions(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        Field(**kwargs)


def test_field_is_frozen_and_normalises_choices():
    field = Field("string", choices=["a", {"label": "B", "value": "b"}], properties=None)
    assert field.choices == ("a", "b")
    with pytest.raises(AttributeError):
        field.required = True  # type: ignore[misc]


def test_properties_cannot_be_changed_through_the_field():
    source = {"a": Field("string")}
    field = Field("object", properties=source)
    source["b"] = Field("number")
    assert list(field.properties) == ["a"]
    with pytest.raises(TypeError):
        field.properties["c"] = Field("string")  # type: ignore[index]


def test_default_mapping():
    fields = {"a": Field("string", default={"@path": "$.userId"}), "b": Field("number"),
              "c": Field("integer", default=1), "d": Field("string", default=None)}
    assert default_mapping(fields) == {"a": {"@path": "$.userId"}, "c": 1, "d": None}


# ---------------------------------------------------------------------------------------------------
# check_mapping

GA4_PURCHASE = {
    "client_id": Field("string", required=True),
    "transaction_id": Field("string", required=True),
    "currency": Field("string", required=True, choices=("USD", "EUR")),
    "value": Field("number"),
    "engagement_time_msec": Field("integer", minimum=1),
    "send_to": Field("boolean"),
    "timestamp_micros": Field("datetime"),
    "items": Field("object", multiple=True, required=True, properties={
        "item_id": Field("string", required=True),
        "quantity": Field("integer"),
    }),
    "params": Field("object"),
}

VALID = {
    "client_id": {"@path": "$.anonymousId"},
    "transaction_id": {"@path": "$.properties.order_id"},
    "currency": "USD",
    "value": "12.5",
    "engagement_time_msec": 1,
    "send_to": "true",
    "timestamp_micros": "2024-05-01T12:00:00Z",
    "items": {"@arrayPath": ["$.properties.products", {"item_id": {"@path": "$.sku"}}]},
    "params": {"anything": {"@path": "$.properties"}},
}


def test_check_mapping_accepts_a_good_mapping():
    assert check_mapping(GA4_PURCHASE, VALID) == []


@pytest.mark.parametrize("change, expected", [
    ({"curency": "USD"}, [(("curency",), "unknown field 'curency'; did you mean 'currency'?")]),
    ({"zzz": 1}, [(("zzz",), "unknown field 'zzz'")]),
    ({"transaction_id": MISSING}, [(("transaction_id",), "required field absent from the mapping")]),
    ({"value": "abc"}, [(("value",), 'expected number, got string "abc"')]),
    ({"value": [1, 2]}, [(("value",), "expected a single number, got a list")]),
    ({"currency": "GBP"}, [(("currency",), 'string "GBP" is not one of "USD", "EUR"')]),
    ({"currency": None}, [(("currency",), "required, but the literal null is dropped")]),
    ({"engagement_time_msec": 0}, [(("engagement_time_msec",), "number 0 is below the minimum 1")]),
    ({"engagement_time_msec": 1.5}, [(("engagement_time_msec",), "expected integer, got number 1.5")]),
    ({"engagement_time_msec": ""}, []),
    ({"send_to": "yes"}, [(("send_to",), 'expected boolean, got string "yes"')]),
    ({"timestamp_micros": "2024-13-01"},
     [(("timestamp_micros",), 'invalid date-time string "2024-13-01": month must be in 1..12')]),
    ({"params": "text"}, [(("params",), 'expected object, got string "text"')]),
    ({"items": [{"item_id": "a", "quantity": "x"}, {"quantity": 1}, {"@path": "$.p"}, "oops"]}, [
        (("items", 0, "quantity"), 'expected integer, got string "x"'),
        (("items", 1, "item_id"), "required field absent from the mapping"),
        (("items", 3), 'expected object, got string "oops"'),
    ]),
    ({"items": {"item_id": {"@path": "$.sku"}, "extra": 1}}, []),
    ({"items": {"item_id": True}}, [(("items", "item_id"), "expected string, got boolean true")]),
])
def test_check_mapping_finds_static_problems(change, expected):
    spec = {**VALID, **{k: v for k, v in change.items() if v is not MISSING}}
    for key in [k for k, v in change.items() if v is MISSING]:
        del spec[key]
    assert check_mapping(GA4_PURCHASE, spec) == expected


def test_check_mapping_with_a_non_object():
    assert check_mapping(GA4_PURCHASE, ["x"]) == [((), "a mapping is an object of field names, got array")]


def test_format_issue():
    assert format_issue((("items", 0, "quantity"), "bad")) == "items[0].quantity: bad"
    assert format_issue(((), "bad")) == "bad"
