"""An action's typed fields, the validation of each mapped payload, and static checks of a mapping.

Validation follows what Segment does to a mapped payload (``removeEmptyValues`` then AJV with
``coerceTypes``), with its bugs fixed:

- null is dropped unless the field has ``allow_null``; ``''`` is dropped for every non-string type
  and kept for string types (Segment keeps root ``''`` in batches and drops it for single events).
- number and integer accept numeric strings (``"12"`` -> 12, ``"1.5"`` -> 1.5, ``" 1e3 "`` -> 1000.0);
  integer also takes integral floats (``2.0`` -> 2). A boolean is never a number.
- boolean accepts ``true``/``false`` and the strings ``"true"``/``"false"``.
- string, text and password take strings only: ``3`` is an error, not ``"3"``.
- datetime is *normalised* to ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC, milliseconds). It accepts ISO-8601
  extended date-times (a missing offset means UTC; a date alone is midnight UTC) and epoch numbers
  or numeric strings: an absolute value of 1e11 or more is milliseconds, below that seconds (1e11 s
  is the year 5138, 1e11 ms is March 1973). An impossible date is an error; Segment lets any numeric
  string through and never converts.
- a scalar given to a ``multiple`` field becomes ``[x]``; a null item in a list is an error.
- object requires a dict; with ``properties`` the sub-fields are validated by the same rules and
  unknown sub-keys are kept.
- fields not declared are dropped; every problem is reported at once, each naming its field.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, Literal

import msgspec

from collector.destinations.actions.mapping import MISSING, format_path, is_directive

__all__ = [
    "Field",
    "FieldType",
    "PayloadError",
    "check_mapping",
    "compile_validator",
    "default_mapping",
    "format_issue",
    "validate_payload",
]

FieldType = Literal["string", "text", "number", "integer", "datetime", "boolean", "object", "password"]
_TYPES = frozenset(FieldType.__args__)  # type: ignore[attr-defined]
_STRING_TYPES = frozenset({"string", "text", "password"})
_NUMERIC_TYPES = frozenset({"number", "integer"})


@dataclass(frozen=True, slots=True)
class Field:
    type: FieldType
    description: str = ""
    required: bool = False
    multiple: bool = False  # a list of `type`
    allow_null: bool = False
    default: Any = MISSING  # the preset mapping value (a literal or a directive)
    choices: tuple | None = None
    properties: Mapping[str, Field] | None = None  # sub-fields of an object (of each item if multiple)
    hashed: str | None = None  # the hashing kind ("email", "phone", ...) applied later; carried here
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"unknown field type {self.type!r}; one of {', '.join(sorted(_TYPES))}")
        if self.choices is not None:
            # Segment writes choices as [{label, value}]; keep the values.
            values = tuple(c["value"] if isinstance(c, dict) and "value" in c else c
                           for c in self.choices)
            if not values:
                raise ValueError("choices must not be empty")
            object.__setattr__(self, "choices", values)
        if self.properties is not None:
            if self.type != "object":
                raise ValueError(f"properties apply to object fields, not {self.type}")
            object.__setattr__(self, "properties", MappingProxyType(dict(self.properties)))
        if (self.minimum is not None or self.maximum is not None) and self.type not in _NUMERIC_TYPES:
            raise ValueError(f"minimum and maximum apply to number and integer fields, not {self.type}")
        if self.max_length is not None and self.type not in _STRING_TYPES:
            raise ValueError(f"max_length applies to string fields, not {self.type}")


class PayloadError(ValueError):
    """A mapped payload that does not fit its fields; ``problems`` names every field at fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


# ---------------------------------------------------------------------------------------------------
# Converting one value

class _Invalid:
    """What a converter returns instead of a value: (where below the field, what is wrong) pairs."""

    __slots__ = ("issues",)

    def __init__(self, issues: list[tuple[str, str]]) -> None:
        self.issues = issues


def _invalid(message: str) -> _Invalid:
    return _Invalid([("", message)])


Converter = Callable[[Any], Any]  # a value -> the clean value, or _Invalid


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    t = type(value)
    if t is bool:
        return "boolean"
    if t is int or t is float:
        return "number"
    if t is str:
        return "string"
    if t is dict:
        return "object"
    if t is list or t is tuple:
        return "array"
    return t.__name__


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    try:
        text = msgspec.json.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{_kind(value)} {text}"


def _expected(what: str, value: Any) -> _Invalid:
    return _invalid(f"expected {what}, got {_describe(value)}")


def _to_string(value: Any) -> Any:
    """Numbers become their text, as Segment's validator coerces them: an order id sent as 12345
    is "12345", 10.0 is "10" (as JavaScript writes it). Booleans, objects and lists do not."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        return str(value)
    if kind is float and value == value and value not in (float("inf"), float("-inf")):
        return str(int(value)) if value.is_integer() else repr(value)
    return _expected("string", value)


_NUMBER_TEXT = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")


def _parse_number(text: str) -> int | float | None:
    """A decimal number written as text; None if it is not one (or is not finite)."""
    if len(text) > 64 or _NUMBER_TEXT.fullmatch(text) is None:
        return None
    text = text.strip()
    if "." in text or "e" in text or "E" in text:
        number = float(text)
        return number if number - number == 0 else None  # rejects inf
    return int(text)


def _to_number(value: Any) -> Any:
    t = type(value)
    if t is int or t is float:
        return value
    if t is str:
        number = _parse_number(value)
        if number is not None:
            return number
    return _expected("number", value)


def _to_integer(value: Any) -> Any:
    number = _parse_number(value) if type(value) is str else value
    t = type(number)
    if t is int:
        return number
    if t is float and number.is_integer():
        return int(number)
    return _expected("integer", value)


def _to_boolean(value: Any) -> Any:
    if type(value) is bool:
        return value
    if value == "true" and type(value) is str:
        return True
    if value == "false" and type(value) is str:
        return False
    return _expected("boolean", value)


_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_CANONICAL_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_ISO_DATETIME = re.compile(
    r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:[.,]\d{1,9})?)?(?:Z|[+-]\d\d(?::?\d\d)?)?)?")
_MS_THRESHOLD = 1e11  # |epoch| at or above this is milliseconds
_MIN_MS = -62135596800000  # 0001-01-01T00:00:00Z
_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z


def _format_utc(moment: datetime) -> str:
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z")


def _from_epoch(number: int | float, original: Any) -> Any:
    ms = number if abs(number) >= _MS_THRESHOLD else number * 1000
    if not _MIN_MS <= ms <= _MAX_MS:
        return _invalid(f"epoch time out of range (years 1 to 9999): {_describe(original)}")
    return _format_utc(_EPOCH + timedelta(milliseconds=ms))


def _to_datetime(value: Any) -> Any:
    t = type(value)
    if t is str:
        if _ISO_DATETIME.fullmatch(value) is not None:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError as exc:  # the shape is right but the date is impossible (Feb 30)
                return _invalid(f"invalid date-time {_describe(value)}: {exc}")
            if len(value) == 24 and _CANONICAL_DATETIME.fullmatch(value) is not None:
                return value
            if moment.tzinfo is None:
                return _format_utc(moment)
            try:
                return _format_utc(moment.astimezone(_UTC))
            except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC year
                return _invalid(f"date-time out of range: {_describe(value)}")
        number = _parse_number(value)
        if number is not None:
            return _from_epoch(number, value)
    elif t is int or t is float:
        return _from_epoch(value, value)
    return _expected("an ISO-8601 date-time or epoch seconds/milliseconds", value)


_BASE_CONVERTERS: dict[str, Converter] = {
    "string": _to_string,
    "text": _to_string,
    "password": _to_string,
    "number": _to_number,
    "integer": _to_integer,
    "boolean": _to_boolean,
    "datetime": _to_datetime,
}


def _object_converter(properties: Mapping[str, Field] | None) -> Converter:
    if not properties:
        return lambda value: value if type(value) is dict else _expected("object", value)
    checks = {name: (index, clean_types, check) for index, (name, clean_types, check) in enumerate(_checks(properties))}
    required = tuple((name, checks[name]) for name, field in properties.items() if field.required)

    def to_object(value: Any) -> Any:
        if type(value) is not dict:
            return _expected("object", value)
        out = None  # copied on the first change: most objects are clean already
        issues: list[tuple[int, str, str]] | None = None
        for name, v in value.items():
            entry = checks.get(name)
            if entry is None or type(v) in entry[1]:  # undeclared keys are kept as they are
                continue
            result = entry[2](v)
            if result is v:
                continue
            if type(result) is _Invalid:
                issues = issues or []
                issues.extend((entry[0], f".{name}{where}", text) for where, text in result.issues)
                continue
            if out is None:
                out = dict(value)
            if result is MISSING:
                del out[name]
            else:
                out[name] = result
        for name, (index, _, check) in required:
            if name not in value:
                result = check(MISSING)
                if type(result) is _Invalid:
                    issues = issues or []
                    issues.extend((index, f".{name}{where}", text) for where, text in result.issues)
        if issues:
            issues.sort(key=lambda issue: issue[0])  # in the sub-fields' order, as declared
            return _Invalid([(where, text) for _, where, text in issues])
        return value if out is None else out
    return to_object


def _item_converter(field: Field) -> Converter:
    """Converts one item (the value itself, or each element of a ``multiple`` field)."""
    base = (_object_converter(field.properties) if field.type == "object"
            else _BASE_CONVERTERS[field.type])
    constraints: list[Callable[[Any], str | None]] = []
    if field.minimum is not None:
        low = field.minimum
        constraints.append(lambda v: f"{_describe(v)} is below the minimum {low}" if v < low else None)
    if field.maximum is not None:
        high = field.maximum
        constraints.append(lambda v: f"{_describe(v)} is above the maximum {high}" if v > high else None)
    if field.max_length is not None:
        limit = field.max_length
        constraints.append(
            lambda v: f"{len(v)} characters, more than the maximum {limit}" if len(v) > limit else None)
    if field.choices is not None:
        choices = field.choices
        listed = ", ".join(_describe(c).partition(" ")[2] or "null" for c in choices)
        constraints.append(
            lambda v: None if any(v == c and _kind(v) == _kind(c) for c in choices)
            else f"{_describe(v)} is not one of {listed}")
    if not constraints:
        return base
    checks = tuple(constraints)

    def constrained(value: Any) -> Any:
        result = base(value)
        if type(result) is _Invalid:
            return result
        for check in checks:
            message = check(result)
            if message is not None:
                return _invalid(message)
        return result
    return constrained


def _field_checker(field: Field) -> Converter:
    """Value (or MISSING) -> clean value, MISSING (drop the key) or _Invalid."""
    item = _item_converter(field)
    allow_null, required, multiple = field.allow_null, field.required, field.multiple
    drop_empty_string = field.type not in _STRING_TYPES

    def check(value: Any) -> Any:
        if value is None:
            if allow_null:
                return None
            value = MISSING
        elif drop_empty_string and value == "" and type(value) is str:
            value = MISSING
        if value is MISSING:
            return _invalid("required but missing") if required else MISSING
        if not multiple:
            return item(value)
        items = value if type(value) is list else [value]
        out = []
        issues: list[tuple[str, str]] | None = None
        for i, element in enumerate(items):
            result = item(element)
            if type(result) is _Invalid:
                issues = issues or []
                issues.extend((f"[{i}]{where}", text) for where, text in result.issues)
            else:
                out.append(result)
        return _Invalid(issues) if issues else out
    return check


_CLEAN_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "text": (str,), "password": (str,), "number": (int, float), "integer": (int,),
    "boolean": (bool,),
}


def _clean_types(field: Field) -> tuple[type, ...]:
    """The types in which a value of this field is already clean, taken as is without a call."""
    if (field.multiple or field.choices is not None or field.minimum is not None
            or field.maximum is not None or field.max_length is not None):
        return ()
    if field.type == "object":
        return () if field.properties else (dict,)
    return _CLEAN_TYPES.get(field.type, ())


def _checks(fields: Mapping[str, Field]) -> tuple[tuple[str, tuple[type, ...], Converter], ...]:
    return tuple((name, _clean_types(field), _field_checker(field)) for name, field in fields.items())


# ---------------------------------------------------------------------------------------------------
# Validating payloads

def compile_validator(fields: Mapping[str, Field]) -> Callable[[dict], dict]:
    """Builds ``payload -> clean payload`` for these fields, raising PayloadError with every problem.

    The clean payload is a new dict holding only declared fields; an object without ``properties``
    is passed through as the same dict (mapped payloads are fresh, so this shares nothing with events).
    """
    checks = {name: (index, clean_types, check) for index, (name, clean_types, check) in enumerate(_checks(fields))}
    # Only the required fields are looked at when absent: a mapped payload holds the fields that
    # resolved, usually a few of many declared.
    required = tuple((name, checks[name]) for name, field in fields.items() if field.required)

    def validate(payload: dict) -> dict:
        out = {}
        problems: list[tuple[int, str]] | None = None
        for name, value in payload.items():
            entry = checks.get(name)
            if entry is None:  # not a declared field: dropped
                continue
            index, clean_types, check = entry
            if type(value) in clean_types:
                out[name] = value
                continue
            result = check(value)
            if result is MISSING:
                continue
            if type(result) is _Invalid:
                problems = problems or []
                problems.extend((index, f"{name}{where}: {text}") for where, text in result.issues)
            else:
                out[name] = result
        for name, (index, _, check) in required:
            if name not in payload:
                result = check(MISSING)
                if type(result) is _Invalid:
                    problems = problems or []
                    problems.extend((index, f"{name}{where}: {text}") for where, text in result.issues)
        if problems:
            problems.sort(key=lambda problem: problem[0])  # in the fields' order, as declared
            raise PayloadError([text for _, text in problems])
        return out
    return validate


def validate_payload(fields: Mapping[str, Field], payload: dict) -> dict:
    """Validates one payload; compile_validator once instead when validating many."""
    return compile_validator(fields)(payload)


def default_mapping(fields: Mapping[str, Field]) -> dict[str, Any]:
    """The mapping made of the fields' defaults (Segment's ``defaultValues``)."""
    return {name: field.default for name, field in fields.items() if field.default is not MISSING}


# ---------------------------------------------------------------------------------------------------
# Static checks of a mapping against the fields

Issue = tuple[tuple, str]


def check_mapping(fields: Mapping[str, Field], spec: dict) -> list[Issue]:
    """Problems visible without an event: unknown or absent required fields, and literals that can
    never validate. Directives are checked per event. Returns (path inside spec, message) pairs."""
    if not isinstance(spec, dict):
        return [((), f"a mapping is an object of field names, got {_kind(spec)}")]
    issues: list[Issue] = []
    _check_object_literal(fields, spec, (), issues, unknown_allowed=False)
    return issues


def _did_you_mean(word: str, candidates: list[str]) -> str:
    matches = difflib.get_close_matches(word, candidates, n=1)
    return f"; did you mean {matches[0]!r}?" if matches else ""


def _check_object_literal(fields: Mapping[str, Field], spec: dict, at: tuple, issues: list[Issue],
                          unknown_allowed: bool) -> None:
    for key, value in spec.items():
        field = fields.get(key)
        if field is None:
            if not unknown_allowed:
                issues.append(((*at, key), f"unknown field {key!r}{_did_you_mean(str(key), list(fields))}"))
            continue
        _check_field_literal(field, value, (*at, key), issues)
    for name, field in fields.items():
        if field.required and name not in spec:
            issues.append(((*at, name), "required field absent from the mapping"))


def _check_field_literal(field: Field, value: Any, at: tuple, issues: list[Issue]) -> None:
    if is_directive(value):
        return
    if value is None or (value == "" and type(value) is str and field.type not in _STRING_TYPES):
        if field.required and not (value is None and field.allow_null):
            issues.append((at, f"required, but the literal {_describe(value)} is dropped"))
        return
    if type(value) is list:
        if not field.multiple:
            issues.append((at, f"expected a single {field.type}, got a list"))
            return
        for i, item in enumerate(value):
            if not is_directive(item):
                _check_item_literal(field, item, (*at, i), issues)
        return
    _check_item_literal(field, value, at, issues)


def _check_item_literal(field: Field, value: Any, at: tuple, issues: list[Issue]) -> None:
    if field.type == "object" and field.properties and type(value) is dict:
        _check_object_literal(field.properties, value, at, issues, unknown_allowed=True)
        return
    if field.type == "object" and type(value) is dict:
        return  # may hold directives; an object without properties takes any keys
    result = _item_converter(field)(value)
    if type(result) is _Invalid:
        issues.extend((at, text) for _, text in result.issues)


def format_issue(issue: Issue) -> str:
    """``(("items", 0, "price"), "expected number, ...")`` -> ``items[0].price: expected number, ...``."""
    path, message = issue
    where = format_path(path)
    return f"{where}: {message}" if where else message
