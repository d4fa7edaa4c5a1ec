"""Mapping directives: what each one gives, the traps where we differ from Segment, compile errors
with their location in the spec, and that no result shares a container with the event."""

from __future__ import annotations

import copy
import datetime
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.destinations.actions.mapping import (
    MISSING,
    MappingError,
    compile_mapping,
    compile_value,
    format_path,
    parse_path,
)

EVENT = {
    "type": "track",
    "event": "Order Completed",
    "userId": None,
    "anonymousId": "anon-1",
    "messageId": "m-1",
    "timestamp": "2024-05-01T12:00:00.000Z",
    "properties": {
        "order_id": "o-1",
        "total": 30.5,
        "count": 0,
        "empty": "",
        "flag": False,
        "nothing": None,
        "name": "Mixed Case",
        "tags": ["a", "b"],
        "key with space": "spaced",
        "0": "zero-key",
        "products": [
            {"product_id": "p1", "name": "Pen", "price": 1.5, "quantity": 2},
            {"product_id": "p2", "name": "Ink", "price": 4, "category": {"id": 7}},
        ],
        "single": {"product_id": "p9", "name": "Solo"},
        "nested": {"a": {"b": {"c": {"d": "deep"}}}},
        "json_text": '{"x": [1, 2]}',
    },
    "traits": {"name": "Ada", "address": {"city": "Paris"}},
    "context": {"page": {"url": "https://example.com/"}},
}


def resolve(spec, event=EVENT):
    return compile_value(spec)(event)


# ---------------------------------------------------------------------------------------------------
# Paths

@pytest.mark.parametrize("text, steps", [
    ("$", ()),
    ("$.properties", ("properties",)),
    ("properties", ("properties",)),
    ("$.properties.products[0].name", ("properties", "products", 0, "name")),
    ("properties.products[12]", ("properties", "products", 12)),
    ("$['key with space']", ("key with space",)),
    ("$.properties['key with space']", ("properties", "key with space")),
    ('properties["it\'s"]', ("properties", "it's")),
    ("properties['a.b[c]']", ("properties", "a.b[c]")),
    ("a.b c.d", ("a", "b c", "d")),
    ("a.0", ("a", "0")),
    ("$[0][1]", (0, 1)),
])
def test_parse_path(text, steps):
    assert parse_path(text) == steps


@pytest.mark.parametrize("text, fragment", [
    ("", "empty path"),
    ("$.", "empty path"),
    ("a..b", "empty key"),
    ("a.", "empty key"),
    (".a", "empty key"),
    ("a[", "unterminated '['"),
    ("a[0", "unterminated '['"),
    ("a['b]", "unterminated"),
    ("a[x]", "brackets take"),
    ("a[-1]", "brackets take"),
    ("a[]", "brackets take"),
    ("a]", "unexpected ']'"),
    ("a[0]b", "expected '.' or '['"),
])
def test_parse_path_rejects(text, fragment):
    with pytest.raises(ValueError, match=None) as info:
        parse_path(text)
    assert fragment in str(info.value)


@pytest.mark.parametrize("path, expected", [
    ("$.type", "track"),
    ("type", "track"),
    ("$.properties.order_id", "o-1"),
    ("$.traits.address.city", "Paris"),
    ("$.properties.nested.a.b.c.d", "deep"),
    ("$.properties.products[1].category.id", 7),
    ("$.properties.products.1.name", "Ink"),
    ("$.properties.tags[1]", "b"),
    ("$.properties['key with space']", "spaced"),
    ("$.properties[0]", "zero-key"),
    ("$.properties.0", "zero-key"),
    ("$.userId", None),
    ("$.properties.nothing", None),
    ("$.properties.count", 0),
    ("$.properties.flag", False),
    ("$.properties.empty", ""),
    # absent
    ("$.missing", MISSING),
    ("$.properties.missing", MISSING),
    ("$.properties.products[2]", MISSING),
    ("$.properties.products[0].missing", MISSING),
    ("$.properties.products.first", MISSING),
    # a falsy or non-container intermediate never leaks (Segment would return 0, '', false or null)
    ("$.properties.count.x", MISSING),
    ("$.properties.empty.x", MISSING),
    ("$.properties.flag.x", MISSING),
    ("$.properties.nothing.x", MISSING),
    ("$.userId.x", MISSING),
    ("$.type.length", MISSING),
    ("$.type[0]", MISSING),
    ("$.properties.name[0]", MISSING),
    ("$.properties.tags.a.b", MISSING),
    ("$.properties.tags.x", MISSING),
])
def test_path(path, expected):
    assert resolve({"@path": path}) == expected
    assert (resolve({"@path": path}) is MISSING) == (expected is MISSING)


def test_path_root_is_a_copy_of_the_whole_event():
    whole = resolve({"@path": "$"})
    assert whole == EVENT and whole is not EVENT


def test_path_on_a_non_dict_root():
    assert compile_value({"@path": "$.a"})("text") is MISSING
    assert compile_value({"@path": "$[1]"})(["x", "y"]) == "y"


# ---------------------------------------------------------------------------------------------------
# @template

@pytest.mark.parametrize("template, expected", [
    ("Hi {{traits.name}}", "Hi Ada"),
    ("Hi {{{traits.name}}}", "Hi Ada"),
    ("Hi {{ traits.name }}!", "Hi Ada!"),
    ("{{$.traits.name}}/{{event}}", "Ada/Order Completed"),
    ("<{{traits.missing}}>", "<>"),
    ("<{{userId}}>", "<>"),
    ("<{{properties.count.deeper}}>", "<>"),
    ("{{properties.total}}", "30.5"),
    ("{{properties.count}}", "0"),
    ("{{properties.flag}}", "false"),
    ("{{properties.products[1].price}}", "4"),
    ("{{traits.address}}", '{"city":"Paris"}'),
    ("{{properties.tags}}", '["a","b"]'),
    ("{{properties['key with space']}}", "spaced"),
    ("no placeholders", "no placeholders"),
    ("", ""),
])
def test_template(template, expected):
    assert resolve({"@template": template}) == expected


@pytest.mark.parametrize("value, text", [(10.0, "10"), (-2.0, "-2"), (0.1, "0.1"), (True, "true"),
                                         (12, "12"), (1e21, "1e+21")])
def test_template_writes_numbers_as_javascript_does(value, text):
    assert compile_value({"@template": "{{v}}"})({"v": value}) == text


# ---------------------------------------------------------------------------------------------------
# @literal, plain containers

def test_literal_returns_the_value_without_running_directives_inside():
    assert resolve({"@literal": {"@path": "$.type"}}) == {"@path": "$.type"}
    assert resolve({"@literal": None}) is None
    assert resolve({"@literal": ""}) == ""


def test_plain_containers_resolve_directives_at_any_depth():
    spec = {"a": [1, {"b": {"@path": "$.type"}, "c": {"@path": "$.nope"}}, {"@path": "$.nope"}],
            "d": None, "e": {"f": {"g": {"@template": "{{traits.name}}"}}}}
    assert resolve(spec) == {"a": [1, {"b": "track"}, None], "d": None, "e": {"f": {"g": "Ada"}}}


def test_compile_mapping_leaves_missing_out_and_keeps_null():
    mapping = compile_mapping({"kept_null": {"@path": "$.userId"}, "gone": {"@path": "$.nope"},
                               "literal_null": None, "n": 1})
    assert mapping(EVENT) == {"kept_null": None, "literal_null": None, "n": 1}


def test_metadata_next_to_a_directive_is_ignored():
    assert resolve({"@path": "$.type", "_metadata": {"label": "Type"}}) == "track"


# ---------------------------------------------------------------------------------------------------
# @if

def _if(condition, subject, **branches):
    return {"@if": {condition: {"@path": subject}, **branches}}


@pytest.mark.parametrize("spec, expected", [
    (_if("exists", "$.anonymousId", then="yes", **{"else": "no"}), "yes"),
    (_if("exists", "$.missing", then="yes", **{"else": "no"}), "no"),
    (_if("exists", "$.userId", then="yes", **{"else": "no"}), "no"),
    (_if("exists", "$.properties.count", then="yes", **{"else": "no"}), "yes"),
    (_if("exists", "$.properties.flag", then="yes", **{"else": "no"}), "yes"),
    (_if("exists", "$.properties.empty", then="yes", **{"else": "no"}), "yes"),
    # blank: null, missing or '' only (Segment's loose != '' also counts 0, false and [] as blank)
    (_if("blank", "$.properties.empty", then="filled", **{"else": "blank"}), "blank"),
    (_if("blank", "$.properties.nothing", then="filled", **{"else": "blank"}), "blank"),
    (_if("blank", "$.missing", then="filled", **{"else": "blank"}), "blank"),
    (_if("blank", "$.properties.count", then="filled", **{"else": "blank"}), "filled"),
    (_if("blank", "$.properties.flag", then="filled", **{"else": "blank"}), "filled"),
    (_if("blank", "$.properties.name", then="filled", **{"else": "blank"}), "filled"),
    # a falsy else is kept (Segment drops the key)
    (_if("exists", "$.missing", then="yes", **{"else": False}), False),
    (_if("exists", "$.missing", then="yes", **{"else": 0}), 0),
    (_if("exists", "$.missing", then="yes", **{"else": ""}), ""),
    (_if("exists", "$.missing", then="yes", **{"else": None}), None),
    # a missing branch removes the key
    (_if("exists", "$.missing", then="yes"), MISSING),
    (_if("exists", "$.type", **{"else": "no"}), MISSING),
    # the usual fallback idiom
    (_if("exists", "$.userId", then={"@path": "$.userId"}, **{"else": {"@path": "$.anonymousId"}}),
     "anon-1"),
    (_if("exists", "$.anonymousId", then={"@path": "$.anonymousId"}), "anon-1"),
])
def test_if(spec, expected):
    result = resolve(spec)
    assert result == expected and type(result) is type(expected)


# ---------------------------------------------------------------------------------------------------
# @case, @replace

@pytest.mark.parametrize("operator, path, expected", [
    ("lower", "$.properties.name", "mixed case"),
    ("upper", "$.properties.name", "MIXED CASE"),
    ("upper", "$.properties.total", 30.5),
    ("upper", "$.properties.tags", ["a", "b"]),
    ("upper", "$.userId", None),
    ("upper", "$.missing", MISSING),
])
def test_case(operator, path, expected):
    assert resolve({"@case": {"operator": operator, "value": {"@path": path}}}) == expected


@pytest.mark.parametrize("options, value, expected", [
    ({"pattern": "-"}, "a-b-c", "abc"),
    ({"pattern": "-", "replacement": "_"}, "a-b-c", "a_b_c"),
    ({"pattern": "-", "replacement": "_", "global": False}, "a-b-c", "a_b-c"),
    ({"pattern": "ab", "replacement": "x"}, "AB ab Ab", "AB x Ab"),
    ({"pattern": "ab", "replacement": "x", "ignorecase": True}, "AB ab Ab", "x x x"),
    ({"pattern": "ab", "replacement": "x", "ignorecase": True, "global": False}, "AB ab", "x ab"),
    # the pattern is literal text, not a regular expression, and so is the replacement
    ({"pattern": ".*", "replacement": "$&"}, "a.*b", "a$&b"),
    ({"pattern": "(", "replacement": "\\1", "ignorecase": True}, "f(x)", "f\\1x)"),
    ({"pattern": "a", "replacement": "b", "pattern2": "b", "replacement2": "c"}, "ab", "cc"),
    ({"pattern": " ", "pattern2": "-"}, "a b-c", "abc"),
    # numbers and booleans are written as JSON would, other non-strings give ''
    ({"pattern": ".", "replacement": ","}, 1.5, "1,5"),
    ({"pattern": "0", "replacement": "x"}, 10.0, "1x"),
    ({"pattern": "t", "replacement": "T"}, True, "True"),
    ({"pattern": "a"}, None, ""),
    ({"pattern": "a"}, {"a": 1}, ""),
    ({"pattern": "a"}, ["a"], ""),
])
def test_replace(options, value, expected):
    assert compile_value({"@replace": {"value": {"@path": "$.v"}, **options}})({"v": value}) == expected


def test_replace_keeps_a_missing_value_missing():
    assert resolve({"@replace": {"value": {"@path": "$.nope"}, "pattern": "a"}}) is MISSING


# ---------------------------------------------------------------------------------------------------
# @arrayPath

SHAPE = {"id": {"@path": "$.product_id"}, "name": {"@path": "name"}, "cat": {"@path": "$.category.id"}}


@pytest.mark.parametrize("spec, expected", [
    (["$.properties.products", SHAPE],
     [{"id": "p1", "name": "Pen"}, {"id": "p2", "name": "Ink", "cat": 7}]),
    # an object root is made a list of one
    (["$.properties.single", SHAPE], [{"id": "p9", "name": "Solo"}]),
    # paths in the shape start at the item, not at the event
    (["$.properties.products", {"t": {"@path": "$.type"}, "n": {"@path": "$.name"}}],
     [{"n": "Pen"}, {"n": "Ink"}]),
    # a directive as the whole shape
    (["$.properties.products", {"@path": "$.product_id"}], ["p1", "p2"]),
    (["$.properties.products", {"@path": "$.category"}], [None, {"id": 7}]),
    # scalar items: "$" is the item itself
    (["$.properties.tags", {"tag": {"@path": "$"}, "up": {"@case": {"operator": "upper",
                                                                     "value": {"@path": "$"}}}}],
     [{"tag": "a", "up": "A"}, {"tag": "b", "up": "B"}]),
    # no shape, or an empty one: the root as it is
    (["$.properties.products"], EVENT["properties"]["products"]),
    (["$.properties.products", {}], EVENT["properties"]["products"]),
    (["$.properties.tags"], ["a", "b"]),
    # a root that is not a container is returned as it is
    (["$.properties.name", SHAPE], "Mixed Case"),
    (["$.properties.nothing", SHAPE], None),
    (["$.missing", SHAPE], MISSING),
    # the root may be a directive too
    ([{"@path": "$.properties.products"}, {"@path": "$.name"}], ["Pen", "Ink"]),
])
def test_array_path(spec, expected):
    assert resolve({"@arrayPath": spec}) == expected


def test_array_path_in_a_mapping_drops_absent_lists():
    mapping = compile_mapping({"items": {"@arrayPath": ["$.properties.none", SHAPE]}, "n": 1})
    assert mapping(EVENT) == {"n": 1}


# ---------------------------------------------------------------------------------------------------
# @json, @flatten, @merge, @excludeWhenNull, @transform

@pytest.mark.parametrize("mode, value, expected", [
    ("encode", {"a": [1, "x", None, True]}, '{"a":[1,"x",null,true]}'),
    ("encode", "text", '"text"'),
    ("encode", None, "null"),
    ("decode", '{"x": [1, 2]}', {"x": [1, 2]}),
    ("decode", "12", 12),
    ("decode", "not json", "not json"),
    ("decode", "{", "{"),
    ("decode", 12, 12),
    ("decode", None, None),
])
def test_json(mode, value, expected):
    assert compile_value({"@json": {"mode": mode, "value": {"@path": "$.v"}}})({"v": value}) == expected


@pytest.mark.parametrize("mode", ["encode", "decode"])
def test_json_keeps_missing_missing(mode):
    assert resolve({"@json": {"mode": mode, "value": {"@path": "$.nope"}}}) is MISSING


@pytest.mark.parametrize("options, expected", [
    ({}, {"a.b": 1, "a.c.d": None, "l.0": 1, "l.1.x": 2, "s": "t"}),
    ({"separator": "_"}, {"a_b": 1, "a_c_d": None, "l_0": 1, "l_1_x": 2, "s": "t"}),
    ({"omitArrays": True}, {"a.b": 1, "a.c.d": None, "l": [1, {"x": 2}], "s": "t"}),
])
def test_flatten(options, expected):
    value = {"a": {"b": 1, "c": {"d": None}, "e": {}}, "l": [1, {"x": 2}], "s": "t"}
    spec = {"@flatten": {"value": {"@path": "$.v"}, **options}}
    assert compile_value(spec)({"v": value}) == expected


@pytest.mark.parametrize("value", ["text", 3, None])
def test_flatten_passes_scalars_through(value):
    assert compile_value({"@flatten": {"value": {"@path": "$.v"}}})({"v": value}) == value


def test_flatten_of_a_list_root():
    spec = {"@flatten": {"value": {"@path": "$.v"}}}
    assert compile_value(spec)({"v": [{"a": 1}]}) == {"0.a": 1}
    spec = {"@flatten": {"value": {"@path": "$.v"}, "omitArrays": True}}
    assert compile_value(spec)({"v": [{"a": 1}]}) == [{"a": 1}]


@pytest.mark.parametrize("direction, expected", [
    ("right", {"a": 2, "b": 1, "c": 3}),
    ("left", {"a": 1, "b": 1, "c": 3}),
])
def test_merge(direction, expected):
    spec = {"@merge": {"direction": direction, "objects": [
        {"a": 1, "b": 1}, {"@path": "$.missing"}, {"@path": "$.type"}, {"a": 2, "c": 3}]}}
    assert resolve(spec) == expected


def test_merge_defaults_idiom():
    spec = {"@merge": {"direction": "right", "objects": [
        {"currency": "EUR", "source": "web"}, {"@path": "$.properties.single"}]}}
    assert resolve(spec) == {"currency": "EUR", "source": "web", "product_id": "p9", "name": "Solo"}


@pytest.mark.parametrize("value, expected", [
    (None, MISSING),
    ({"a": None, "b": {"c": None, "d": 1}, "e": [None, 2]}, {"b": {"d": 1}, "e": [2]}),
    (0, 0),
    ("", ""),
])
def test_exclude_when_null(value, expected):
    assert compile_value({"@excludeWhenNull": {"@path": "$.v"}})({"v": value}) == expected


def test_exclude_when_null_of_a_missing_value():
    assert resolve({"@excludeWhenNull": {"@path": "$.nope"}}) is MISSING


def test_transform_maps_the_result_of_a_first_mapping():
    spec = {"@transform": {"apply": {"who": {"@path": "$.traits.name"}, "n": {"@path": "$.properties"}},
                           "mapping": {"greeting": {"@template": "Hi {{who}}"},
                                       "id": {"@path": "$.n.order_id"}}}}
    assert resolve(spec) == {"greeting": "Hi Ada", "id": "o-1"}


# ---------------------------------------------------------------------------------------------------
# No shared containers, no mutation of the event

EVERY_DIRECTIVE = {
    "whole": {"@path": "$"},
    "props": {"@path": "$.properties"},
    "tags": {"@path": "$.properties.tags"},
    "products": {"@arrayPath": ["$.properties.products"]},
    "shaped": {"@arrayPath": ["$.properties.products", {"cat": {"@path": "$.category"}}]},
    "items": {"@arrayPath": ["$.properties.products", {"@path": "$.category"}]},
    "merged": {"@merge": {"direction": "right", "objects": [{"x": [1]}, {"@path": "$.traits"}]}},
    "flat": {"@flatten": {"value": {"@path": "$.properties.products"}, "omitArrays": True}},
    "flat_nested": {"@flatten": {"value": {"@path": "$.traits"}, "omitArrays": True}},
    "if": {"@if": {"exists": {"@path": "$.traits"}, "then": {"@path": "$.traits.address"}}},
    "no_nulls": {"@excludeWhenNull": {"@path": "$.traits"}},
    "literal": {"@literal": {"a": [1, {"b": 2}]}},
    "plain": {"list": [1, [2]], "obj": {"k": [3]}},
    "decoded": {"@json": {"mode": "decode", "value": {"@path": "$.properties.json_text"}}},
    "transformed": {"@transform": {"apply": {"@path": "$.traits"}, "mapping": {"@path": "$.address"}}},
}


def _mutate_everything(value):
    """Changes every container inside ``value`` in place."""
    if isinstance(value, dict):
        for v in list(value.values()):
            _mutate_everything(v)
        value["__mutated__"] = True
    elif isinstance(value, list):
        for v in value:
            _mutate_everything(v)
        value.append("__mutated__")


def test_mapping_never_mutates_the_event_nor_shares_its_containers():
    event = copy.deepcopy(EVENT)
    mapping = compile_mapping(EVERY_DIRECTIVE)
    result = mapping(event)
    assert event == EVENT
    _mutate_everything(result)
    assert event == EVENT


def test_literal_containers_are_fresh_on_every_call():
    mapping = compile_mapping(EVERY_DIRECTIVE)
    first = mapping(EVENT)
    _mutate_everything(first)
    second = mapping(EVENT)
    assert second["literal"] == {"a": [1, {"b": 2}]}
    assert second["plain"] == {"list": [1, [2]], "obj": {"k": [3]}}
    assert second["merged"]["x"] == [1]


def test_missing_sentinel_is_a_singleton_that_survives_copies():
    assert copy.deepcopy(MISSING) is MISSING
    assert copy.copy(MISSING) is MISSING
    assert pickle.loads(pickle.dumps(MISSING)) is MISSING
    assert not MISSING and repr(MISSING) == "MISSING"


# ---------------------------------------------------------------------------------------------------
# Compile errors

@pytest.mark.parametrize("spec, path, fragment", [
    ({"x": {"@pth": "$.a"}}, ("x", "@pth"), "did you mean @path?"),
    ({"x": {"@arraypath": ["$.a"]}}, ("x", "@arraypath"), "did you mean @arrayPath?"),
    ({"x": {"@nothinglikeit": 1}}, ("x", "@nothinglikeit"), "unknown directive @nothinglikeit"),
    ({"x": {"@path": "a..b"}}, ("x", "@path"), "empty key"),
    ({"x": {"@path": 3}}, ("x", "@path"), "takes a path string"),
    ({"x": {"@path": {"@path": "$.a"}}}, ("x", "@path"), "takes a path string"),
    ({"items": {"@arrayPath": ["$.p", {"item_id": {"@path": "$.a["}}]}},
     ("items", "@arrayPath", 1, "item_id", "@path"), "unterminated"),
    ({"items": {"@arrayPath": ["$.p[x]"]}}, ("items", "@arrayPath", 0), "brackets take"),
    ({"items": {"@arrayPath": "$.p"}}, ("items", "@arrayPath"), "takes [path]"),
    ({"items": {"@arrayPath": ["$.p", {}, {}]}}, ("items", "@arrayPath"), "a list of 3"),
    ({"items": {"@arrayPath": ["$.p", "id"]}}, ("items", "@arrayPath", 1), "item shape must be an object"),
    ({"x": {"@template": "Hi {{a..b}}"}}, ("x", "@template"), "empty key"),
    ({"x": {"@template": "Hi {{ }}"}}, ("x", "@template"), "empty path"),
    ({"x": {"@template": ["a"]}}, ("x", "@template"), "takes a string"),
    ({"x": {"@if": {"then": 1}}}, ("x", "@if"), "exactly one of 'exists' or 'blank'"),
    ({"x": {"@if": {"exists": 1, "blank": 1}}}, ("x", "@if"), "not both"),
    ({"x": {"@if": {"exists": {"@path": "$.a"}, "than": 1}}}, ("x", "@if", "than"), "did you mean 'then'?"),
    ({"x": {"@if": "$.a"}}, ("x", "@if"), "takes an object"),
    ({"x": {"@if": {"@path": "$.a"}}}, ("x", "@if"), "got a directive"),
    ({"x": {"@if": {"exists": "$.userId", "then": 1}}}, ("x", "@if", "exists"), "always present"),
    ({"x": {"@case": {"operator": "title", "value": "a"}}}, ("x", "@case", "operator"), "one of"),
    ({"x": {"@case": {"value": "a"}}}, ("x", "@case"), "requires 'operator'"),
    ({"x": {"@replace": {"value": "a"}}}, ("x", "@replace"), "requires 'pattern'"),
    ({"x": {"@replace": {"value": "a", "pattern": ""}}}, ("x", "@replace", "pattern"), "must not be empty"),
    ({"x": {"@replace": {"value": "a", "pattern": "b", "global": "yes"}}},
     ("x", "@replace", "global"), "true or false"),
    ({"x": {"@replace": {"value": "a", "pattern": 1}}}, ("x", "@replace", "pattern"), "must be a string"),
    ({"x": {"@json": {"mode": "parse", "value": "a"}}}, ("x", "@json", "mode"), "one of"),
    ({"x": {"@flatten": {"value": "a", "separator": 1}}}, ("x", "@flatten", "separator"), "string"),
    ({"x": {"@merge": {"objects": {"a": 1}}}}, ("x", "@merge", "objects"), "must be a list"),
    ({"x": {"@merge": {"objects": [], "direction": "up"}}}, ("x", "@merge", "direction"), "one of"),
    ({"x": {"@path": "$.a", "other": 1}}, ("x",), "cannot be mixed with plain keys"),
    ({"x": {"@path": "$.a", "@template": "b"}}, ("x",), "one directive"),
    ({"x": [1, {"y": {"@case": {"operator": "upper"}}}]}, ("x", 1, "y", "@case"), "requires 'value'"),
    ({"x": datetime.date(2024, 5, 1)}, ("x",), "quote dates"),
    ({"x": {"@literal": {"d": datetime.date(2024, 5, 1)}}}, ("x", "@literal", "d"), "unsupported"),
    ({"x": {1: "a"}}, ("x", 1), "keys must be strings"),
    ({"x": float("nan")}, ("x",), "NaN"),
    ({"@path": "$.a"}, ("@path",), "field names"),
])
def test_compile_errors_say_where(spec, path, fragment):
    with pytest.raises(MappingError) as info:
        compile_mapping(spec)
    assert info.value.path == path
    assert fragment in info.value.message
    assert str(info.value).startswith(format_path(path) + ": ")


def test_compile_reports_every_problem_at_once():
    spec = {"a": {"@pth": "x"}, "b": {"@path": "x..y"}, "c": {"@path": "$.ok"}, "d": {"@if": {}}}
    with pytest.raises(MappingError) as info:
        compile_mapping(spec)
    assert [e.path for e in info.value.errors] == [("a", "@pth"), ("b", "@path"), ("d", "@if")]
    assert str(info.value).count("\n") == 2


def test_compile_mapping_wants_an_object():
    with pytest.raises(MappingError, match="object of field names"):
        compile_mapping(["a"])


def test_compile_value_prefixes_error_paths():
    with pytest.raises(MappingError) as info:
        compile_value({"@path": "a..b"}, at=("actions", "purchase", "mapping", "x"))
    assert info.value.path == ("actions", "purchase", "mapping", "x", "@path")


@pytest.mark.parametrize("path, text", [
    ((), ""), (("a",), "a"), (("a", 0, "b"), "a[0].b"), ((0,), "[0]"),
    (("items", "@arrayPath", 1, "item_id", "@path"), "items.@arrayPath[1].item_id.@path"),
])
def test_format_path(path, text):
    assert format_path(path) == text


# ---------------------------------------------------------------------------------------------------
# @path against a straightforward lookup, on random documents

_KEY = st.text(alphabet="ab01 .[]'\"", min_size=1, max_size=4)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(alphabet="xy", max_size=2),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_KEY, children, max_size=3),
    max_leaves=12,
)


def _reference_lookup(data, steps):
    for step in steps:
        key = str(step)
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and key.isdigit() and int(key) < len(data):
            data = data[int(key)]
        else:
            return MISSING
    return data


def _path_text(steps):
    text = "$"
    for step in steps:
        if isinstance(step, int):
            text += f"[{step}]"
        elif not any(c in step for c in ".[]"):
            text += f".{step}"
        elif '"' not in step:
            text += f'["{step}"]'
        else:
            text += f"['{step}']"
    return text


@st.composite
def _document_and_steps(draw):
    document = draw(st.dictionaries(_KEY, _JSON, min_size=1, max_size=4))
    steps = []
    node = document
    for _ in range(draw(st.integers(1, 5))):
        existing = (list(node) if isinstance(node, dict)
                    else list(range(len(node))) if isinstance(node, list) else [])
        if existing and draw(st.booleans()):
            step = draw(st.sampled_from(existing))
        else:
            step = draw(_KEY | st.integers(0, 3))
        if isinstance(step, str) and "'" in step and '"' in step:
            step = step.replace("'", "")
            if not step:
                step = "k"
        steps.append(step)
        node = _reference_lookup(node, [step])
    return document, steps


@settings(max_examples=300, deadline=None)
@given(_document_and_steps())
def test_path_agrees_with_a_reference_lookup(document_and_steps):
    document, steps = document_and_steps
    expected = _reference_lookup(document, steps)
    got = compile_value({"@path": _path_text(steps)})(document)
    assert got == expected
    assert (got is MISSING) == (expected is MISSING)
