"""collector.filters.schema: schemas checked against draft-07 with the place of each problem,
compiled once, and validation failures turned into violations."""

from __future__ import annotations

import fastjsonschema
import pytest

from collector.filters import schema as schema_module
from collector.filters.schema import SchemaError, compile_schema, declared_properties, schema_problems, violations


def problem(schema: dict) -> tuple[str, str]:
    with pytest.raises(SchemaError) as caught:
        compile_schema(schema)
    return caught.value.path, caught.value.message


def failure(schema: dict, data: dict) -> list[dict]:
    validate = compile_schema(schema)
    with pytest.raises(fastjsonschema.JsonSchemaValueException) as caught:
        validate(data)
    return violations(caught.value, "properties")


def test_a_valid_schema_compiles_and_validates():
    validate = compile_schema({"type": "object", "properties": {"n": {"type": "integer"}}, "x-owner": "growth"})
    validate({"n": 1})
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validate({"n": "1"})


def test_the_same_schema_is_compiled_once():
    schema = {"type": "object", "properties": {"only_here": {"type": "string", "maxLength": 77}}}
    assert compile_schema(schema) is compile_schema({**schema})


def test_draft_07_is_used_unless_the_schema_says_otherwise():
    # `dependentRequired` is draft 2019-09: under draft-07 it is an unknown keyword.
    assert problem({"dependentRequired": {"a": ["b"]}})[0] == ".dependentRequired"


@pytest.mark.parametrize("schema, path, message", [
    ({"properties": {"a": {"type": "nmber"}}}, ".properties.a.type", "unknown type 'nmber'"),
    ({"requird": ["a"]}, ".requird", "unknown JSON Schema keyword 'requird'; did you mean required?"),
    ({"required": "a"}, ".required", "must be array, got 'a'"),
    ({"required": ["a", 1]}, ".required[1]", "must be string, got 1"),
    ({"properties": {"a": {"minimum": "0"}}}, ".properties.a.minimum", "must be number"),
    ({"properties": {"a": {"pattern": "(["}}}, ".properties.a.pattern", "invalid regular expression"),
    ({"patternProperties": {"(": {}}}, ".patternProperties.(", "invalid regular expression"),
    ({"properties": {"a": {"format": "emial"}}}, ".properties.a.format", "format 'emial' is not checked"),
    ({"$ref": "https://example.com/s.json"}, ".$ref", "only local references"),
    ({"items": [{"type": "strin"}]}, ".items[0].type", "unknown type 'strin'"),
    ({"properties": {"a": {"$ref": "#/definitions/missing"}}}, "", "cannot compile"),
])
def test_a_bad_schema_says_where_and_what(schema, path, message):
    found_path, found_message = problem(schema)
    assert found_path == path
    assert message in found_message


def test_schema_problems_reports_every_problem():
    found = schema_problems({"requird": ["a"], "properties": {"a": {"type": "nmber"}, "b": {"minimum": "x"}}})
    assert sorted(error.path for error in found) == [".properties.a.type", ".properties.b.minimum", ".requird"]
    assert schema_problems({"type": "object"}) == []


def test_a_schema_default_does_not_write_into_events():
    validate = compile_schema({"properties": {"currency": {"type": "string", "default": "USD"}}})
    data: dict = {}
    validate(data)
    assert data == {}


def test_no_remote_reference_is_fetched(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a remote $ref was fetched")

    monkeypatch.setattr("urllib.request.urlopen", fail)
    for schema in ({"$ref": "https://example.com/other.json"},
                   {"$id": "https://example.com/root.json", "properties": {"a": {"$ref": "#/definitions/x"}}},
                   {"properties": {"a": {"$id": "file:///etc/x.json", "$ref": "#/definitions/y"}}}):
        with pytest.raises(SchemaError):
            compile_schema(schema)


def test_required_missing_gives_one_violation_per_property():
    schema = {"required": ["order_id", "total", "currency"]}
    assert failure(schema, {"total": 1}) == [
        {"type": "Required-Missing", "message": "properties.order_id is required", "path": "properties.order_id"},
        {"type": "Required-Missing", "message": "properties.currency is required", "path": "properties.currency"},
    ]


def test_datatype_mismatch_names_the_nested_path():
    schema = {"properties": {"items": {"type": "array", "items": {"properties": {"sku": {"type": "string"}}}}}}
    assert failure(schema, {"items": [{"sku": "a"}, {"sku": 7}]}) == [
        {"type": "Datatype-Mismatch", "message": "properties.items[1].sku must be string",
         "path": "properties.items[1].sku"},
    ]


def test_additional_properties_are_listed():
    schema = {"properties": {"a": {}}, "patternProperties": {"^x_": {}}, "additionalProperties": False}
    assert failure(schema, {"a": 1, "x_ok": 1, "b": 2}) == [
        {"type": "Additional-Properties", "message": "properties.b is not in the tracking plan", "path": "properties.b"},
    ]


def test_other_rules_are_unknown_violations_with_the_library_message():
    [found] = failure({"properties": {"total": {"minimum": 0}}}, {"total": -1})
    assert found["type"] == "Unknown-Violation"
    assert found["path"] == "properties.total"
    assert found["message"].startswith("properties.total must be bigger than or equal to 0")


def test_declared_properties():
    assert declared_properties({"properties": {"a": {}, "b": {}}}) == {"a", "b"}
    assert declared_properties({"type": "object"}) == frozenset()
    assert declared_properties(None) == frozenset()


def test_the_meta_schema_knows_every_draft_07_keyword():
    draft_07 = {"$schema", "$id", "$ref", "$comment", "title", "description", "default", "readOnly", "writeOnly",
                "examples", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
                "maxLength", "minLength", "pattern", "additionalItems", "items", "maxItems", "minItems",
                "uniqueItems", "contains", "maxProperties", "minProperties", "required", "additionalProperties",
                "definitions", "properties", "patternProperties", "dependencies", "propertyNames", "const",
                "enum", "type", "format", "contentMediaType", "contentEncoding", "if", "then", "else",
                "allOf", "anyOf", "oneOf", "not"}
    assert set(schema_module._KEYWORDS) == draft_07
