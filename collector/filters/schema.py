"""JSON Schemas of a tracking plan: checked against draft-07, compiled once, failures as violations.

fastjsonschema turns a schema into Python code (about ten times faster than the jsonschema
library on valid events, the common case). Its own definition errors name no location, and it
ignores keywords it does not know, so a schema is first checked here against a meta-schema of
draft-07 that also refuses unknown keywords (a typo such as `requird` would otherwise silently
check nothing) and formats it does not check; keys starting with `x-` are left alone.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from typing import Any, Callable

import fastjsonschema
import msgspec
from fastjsonschema.draft07 import CodeGeneratorDraft07

__all__ = ["SchemaError", "Validator", "compile_schema", "declared_properties", "schema_problems", "violations"]

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
_SIMPLE_TYPES = ["array", "boolean", "integer", "null", "number", "object", "string"]
# Formats fastjsonschema really checks; any other would pass every value.
FORMATS = sorted({*CodeGeneratorDraft07.FORMAT_REGEXS, "regex"})

Validator = Callable[[Any], Any]

_SCHEMA = {"$ref": "#/definitions/schema"}
_SCHEMA_ARRAY = {"type": "array", "minItems": 1, "items": _SCHEMA}
_SCHEMA_MAP = {"type": "object", "additionalProperties": _SCHEMA}
_COUNT = {"type": "integer", "minimum": 0}
_NUMBER = {"type": "number"}
_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING, "uniqueItems": True}
_KEYWORDS: dict[str, Any] = {
    "$schema": {"enum": [DRAFT_07, DRAFT_07.rstrip("#")]},
    "$id": _STRING, "$comment": _STRING, "title": _STRING, "description": _STRING,
    "$ref": {"type": "string", "pattern": "^#"},  # local only: a remote $ref would fetch a URL
    "default": {}, "examples": {"type": "array"}, "readOnly": {"type": "boolean"}, "writeOnly": {"type": "boolean"},
    "type": {"anyOf": [{"enum": _SIMPLE_TYPES},
                       {"type": "array", "items": {"enum": _SIMPLE_TYPES}, "minItems": 1, "uniqueItems": True}]},
    "enum": {"type": "array"}, "const": {},
    "multipleOf": {"type": "number", "exclusiveMinimum": 0},
    "maximum": _NUMBER, "exclusiveMaximum": _NUMBER, "minimum": _NUMBER, "exclusiveMinimum": _NUMBER,
    "maxLength": _COUNT, "minLength": _COUNT, "pattern": {"type": "string", "format": "regex"},
    "format": {"enum": FORMATS}, "contentMediaType": _STRING, "contentEncoding": _STRING,
    "items": {"anyOf": [_SCHEMA, _SCHEMA_ARRAY]}, "additionalItems": _SCHEMA, "contains": _SCHEMA,
    "maxItems": _COUNT, "minItems": _COUNT, "uniqueItems": {"type": "boolean"},
    "required": _STRINGS, "properties": _SCHEMA_MAP, "additionalProperties": _SCHEMA,
    "patternProperties": {"type": "object", "propertyNames": {"format": "regex"}, "additionalProperties": _SCHEMA},
    "dependencies": {"type": "object", "additionalProperties": {"anyOf": [_SCHEMA, _STRINGS]}},
    "propertyNames": _SCHEMA, "maxProperties": _COUNT, "minProperties": _COUNT,
    "definitions": _SCHEMA_MAP,
    "allOf": _SCHEMA_ARRAY, "anyOf": _SCHEMA_ARRAY, "oneOf": _SCHEMA_ARRAY, "not": _SCHEMA,
    "if": _SCHEMA, "then": _SCHEMA, "else": _SCHEMA,
}
_META_SCHEMA = {
    "$schema": DRAFT_07,
    "definitions": {
        "schema": {
            "type": ["object", "boolean"],
            "properties": _KEYWORDS,
            "patternProperties": {"^x-": {}},
            "additionalProperties": False,
        },
    },
    "$ref": "#/definitions/schema",
}


def _no_remote(uri: str) -> Any:
    raise fastjsonschema.JsonSchemaDefinitionException(f"remote $ref {uri!r} is not allowed; use #/definitions/...")


# Every scheme urllib would open: resolving a $ref must never reach the network or the disk.
_NO_REMOTE = {scheme: _no_remote for scheme in ("http", "https", "file", "ftp", "data")}
_check_schema = fastjsonschema.compile(_META_SCHEMA, handlers=_NO_REMOTE, use_default=False)


class SchemaError(Exception):
    """A schema that cannot be used; ``path`` is where, below the schema, e.g. ``.properties.total.type``."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def compile_schema(schema: dict) -> Validator:
    """A validator for ``schema`` (draft-07 unless it says otherwise); SchemaError if it is unusable.

    The same schema (by content) is compiled once per process: checking a config and then
    starting on it compile nothing twice."""
    try:
        key = msgspec.json.encode(schema, order="sorted")
    except (TypeError, msgspec.EncodeError) as error:
        raise SchemaError("", f"not a JSON value: {error}") from None
    return _compile(key)


def schema_problems(schema: dict, limit: int = 20) -> list[SchemaError]:
    """Every problem of ``schema``, not only the first: each offending key is left out of a copy
    and the rest is checked again (as the config loader does with msgspec's errors)."""
    problems: list[SchemaError] = []
    schema = copy.deepcopy(schema)
    for _ in range(limit):
        try:
            compile_schema(schema)
            break
        except SchemaError as error:
            problems.append(error)
            if not _remove(schema, error.path):
                break
    return problems


def _remove(schema: dict, path: str) -> bool:
    """Deletes the key or list item at ``path`` (``.a.b[0]``); False if there is none."""
    segments: list[str | int] = [name or int(index) for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path)]
    if not segments:
        return False
    node: Any = schema
    for segment in segments[:-1]:
        try:
            node = node[segment]
        except (KeyError, IndexError, TypeError):
            return False
    try:
        del node[segments[-1]]
    except (KeyError, IndexError, TypeError):
        return False
    return True


@functools.lru_cache(maxsize=1024)
def _compile(key: bytes) -> Validator:
    schema = msgspec.json.decode(key)
    _check(schema)
    schema.setdefault("$schema", DRAFT_07)  # fastjsonschema's default draft changed in 2.22
    try:
        # use_default=False: a schema's `default` must not write values into events.
        return fastjsonschema.compile(schema, handlers=_NO_REMOTE, use_default=False)
    except fastjsonschema.JsonSchemaDefinitionException as error:
        raise SchemaError("", f"cannot compile: {str(error).removeprefix('data: ')}") from None
    except (ValueError, TypeError, KeyError, AttributeError, re.error) as error:
        raise SchemaError("", f"cannot compile: {error}") from None


def _check(schema: object, prefix: str = "") -> None:
    try:
        _check_schema(schema)
    except fastjsonschema.JsonSchemaValueException as error:
        found = _schema_error(error)
        found.path = prefix + found.path
        raise found from None


def _check_alternative(path: str, value: object) -> None:
    """`items` and `dependencies` take a schema or a list: say what is wrong inside it."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, str):
                _check(item, f"{path}[{index}]")
    else:
        _check(value, path)


def _schema_error(error: fastjsonschema.JsonSchemaValueException) -> SchemaError:
    path = _below(error.name)
    keyword = path.rpartition(".")[2]
    if error.rule == "additionalProperties" and isinstance(error.value, dict):
        unknown = sorted(key for key in error.value if key not in _KEYWORDS and not key.startswith("x-"))
        if unknown:
            close = _close(unknown[0], list(_KEYWORDS))
            return SchemaError(f"{path}.{unknown[0]}", f"unknown JSON Schema keyword {unknown[0]!r}{close}")
    if keyword == "patternProperties" and isinstance(error.value, dict):
        for pattern in error.value:
            try:
                re.compile(pattern)
            except re.error as bad:
                return SchemaError(f"{path}.{pattern}", f"invalid regular expression: {bad}")
    if error.rule == "anyOf" and keyword != "type":
        try:
            _check_alternative(path, error.value)
        except SchemaError as inner:
            return inner
    if keyword == "type" and error.rule in ("anyOf", "enum"):
        return SchemaError(path, f"unknown type {error.value!r}; expected one of: {', '.join(_SIMPLE_TYPES)}")
    if keyword == "format" and error.rule == "enum":
        return SchemaError(path, f"format {error.value!r} is not checked; supported: {', '.join(FORMATS)}")
    if keyword == "$ref" and error.rule == "pattern":
        return SchemaError(path, f"only local references (#/definitions/...) are allowed, got {error.value!r}")
    if error.rule == "format" and error.rule_definition == "regex":
        try:
            re.compile(error.value)
        except re.error as bad:
            return SchemaError(path, f"invalid regular expression: {bad}")
    if error.rule == "type":
        return SchemaError(path, f"{_must(error)}, got {error.value!r}")
    return SchemaError(path, _must(error))


def _close(word: str, candidates: list[str]) -> str:

    matches = difflib.get_close_matches(word, candidates, n=1)
    return f"; did you mean {matches[0]}?" if matches else ""


def _below(name: str | None) -> str:
    """fastjsonschema names a place ``data.a.b[0]``; this is ``.a.b[0]``."""
    return (name or "data")[4:]


def _must(error: fastjsonschema.JsonSchemaValueException) -> str:
    """The message without its leading name: "must be number"."""
    name = error.name or "data"
    message = error.message
    return message[len(name) + 1:] if message.startswith(name + " ") else message


# --- Validation failures as violations ------------------------------------------------------------

# RudderStack's violation types (context.violationErrors[].type).
REQUIRED_MISSING = "Required-Missing"
DATATYPE_MISMATCH = "Datatype-Mismatch"
ADDITIONAL_PROPERTIES = "Additional-Properties"
UNKNOWN_VIOLATION = "Unknown-Violation"
UNPLANNED_EVENT = "Unplanned-Event"
_TYPES = {"required": REQUIRED_MISSING, "type": DATATYPE_MISMATCH, "additionalProperties": ADDITIONAL_PROPERTIES}


def violations(error: fastjsonschema.JsonSchemaValueException, root: str) -> list[dict]:
    """The violations one validation failure stands for; paths start at ``root`` (``properties``).

    fastjsonschema stops at the first failure; a missing required property or an additional one
    becomes one violation per property concerned, as RudderStack reports them."""
    path = root + _below(error.name)
    kind = _TYPES.get(error.rule or "", UNKNOWN_VIOLATION)
    value = error.value
    if kind == REQUIRED_MISSING and isinstance(value, dict) and isinstance(error.rule_definition, list):
        missing = [name for name in error.rule_definition if name not in value]
        return [_violation(kind, f"{path}.{name} is required", f"{path}.{name}") for name in missing]
    if kind == ADDITIONAL_PROPERTIES and isinstance(value, dict) and isinstance(error.definition, dict):
        declared = error.definition.get("properties") or {}
        patterns = [re.compile(p) for p in error.definition.get("patternProperties") or {}]
        extra = [key for key in value if key not in declared and not any(p.search(key) for p in patterns)]
        if extra:
            return [_violation(kind, f"{path}.{key} is not in the tracking plan", f"{path}.{key}") for key in extra]
    return [_violation(kind, f"{path} {_must(error)}", path)]


def _violation(kind: str, message: str, path: str) -> dict:
    return {"type": kind, "message": message[:300], "path": path}


def declared_properties(schema: dict | None) -> frozenset[str]:
    """The top-level property names a schema declares (``properties``)."""
    if not isinstance(schema, dict):
        return frozenset()
    return frozenset(schema.get("properties") or ())
