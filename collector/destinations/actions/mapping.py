"""Mapping directives (Segment's mapping-kit), compiled once into closures that run per event.

A mapping value is either a literal (string, number, boolean, null, list, or an object whose keys are
not directives) or a directive: an object with exactly one ``@`` key (an optional ``_metadata`` key,
which Segment's exports carry, is ignored). Lists and objects may hold directives at any depth.

``compile_mapping(spec)`` turns ``{field: value}`` into ``event -> payload``; ``compile_value(spec)``
compiles a single value. All parsing (paths, templates, directive arguments) happens there, and every
mistake found is reported as a ``MappingError`` naming where in the spec it sits. Per event, the
closures only walk dicts and lists.

Where we differ from Segment on purpose:

- ``@path``: a missing or non-container intermediate gives MISSING. Segment walks ``prev && prev[k]``,
  so a falsy intermediate (``0``, ``''``, ``false``) leaks out as the result.
- ``@template``: an object or list renders as compact JSON, where Segment writes ``[object Object]``.
  Numbers render as JavaScript would (``10.0`` -> ``10``), booleans as ``true``/``false``, null as ''.
- ``@if``: a falsy ``else`` (``false``, ``0``, ``""``) is kept; Segment drops the key. ``blank`` means
  null, missing or ``''`` only; Segment's loose ``!= ''`` also counts ``0``, ``false`` and ``[]`` blank.
- ``@replace``: the replacement is literal text (JavaScript would expand ``$&`` and ``$1``), there is
  no 10-character limit, and a missing value stays missing (Segment gives ``''``).
- ``@path`` and ``@template`` take a literal string (Segment resolves a directive there first, which
  would mean parsing per event).
- A MISSING item inside a list becomes null, which is what Segment's JSON serialisation sends.

Results never share containers with the event: a dict or list taken from the event is copied, and
literal containers are rebuilt on every call, so a caller may mutate what it gets back.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any, Final

import msgspec

__all__ = [
    "MISSING",
    "MappingError",
    "Resolver",
    "compile_mapping",
    "compile_value",
    "format_path",
    "is_directive",
    "parse_path",
]


class _Missing:
    """The absence of a value: a key that a mapping leaves out (JavaScript's ``undefined``)."""

    __slots__ = ()
    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __copy__(self) -> _Missing:
        return self

    def __deepcopy__(self, memo: object) -> _Missing:
        return self

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

Resolver = Callable[[Any], Any]
SpecPath = tuple["str | int", ...]


def format_path(path: SpecPath) -> str:
    """``("items", "@arrayPath", 1, "id")`` -> ``items.@arrayPath[1].id``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


class MappingError(ValueError):
    """A mapping that cannot be compiled. ``path`` locates the problem inside the spec; ``errors``
    holds every problem found in the same spec (this one first)."""

    def __init__(self, message: str, path: SpecPath = ()) -> None:
        super().__init__(message, path)
        self.message = message
        self.path = tuple(path)
        self.errors: tuple[MappingError, ...] = (self,)

    def __str__(self) -> str:
        where = format_path(self.path)
        head = f"{where}: {self.message}" if where else self.message
        if len(self.errors) > 1:
            return "\n".join([head, *(str(e) for e in self.errors[1:])])
        return head


# ---------------------------------------------------------------------------------------------------
# Paths

class _PathSyntaxError(Exception):
    pass


def parse_path(text: str) -> tuple[str | int, ...]:
    """Parses ``$.a.b[0]['c d']`` (the ``$.`` is optional; ``$`` alone is the root) into its steps.

    A bracketed number is an int step; everything else is a str key. Raises ValueError on bad syntax.
    """
    try:
        return _parse_path(text)
    except _PathSyntaxError as exc:
        raise ValueError(str(exc)) from None


def _parse_path(text: str) -> tuple[str | int, ...]:
    if not isinstance(text, str):
        raise _PathSyntaxError(f"a path must be a string, got {_json_type(text)}")
    if text == "$":
        return ()
    if text.startswith("$.") or text.startswith("$["):
        rest = text[1:] if text[1] == "[" else text[2:]
    else:
        rest = text
    if not rest:
        raise _PathSyntaxError(f"empty path {text!r}")
    steps: list[str | int] = []
    i, n = 0, len(rest)
    while i < n:
        c = rest[i]
        if c == "[":
            i = _parse_bracket(rest, i, steps, text)
        elif c == "]":
            raise _PathSyntaxError(f"unexpected ']' in path {text!r}")
        else:
            if steps or i:
                if c != ".":
                    raise _PathSyntaxError(f"expected '.' or '[' after {rest[:i]!r} in path {text!r}")
                i += 1
            j = i
            while j < n and rest[j] not in ".[]":
                j += 1
            if j == i:
                raise _PathSyntaxError(f"empty key in path {text!r}")
            steps.append(rest[i:j])
            i = j
    return tuple(steps)


def _parse_bracket(rest: str, i: int, steps: list[str | int], text: str) -> int:
    """Parses ``[0]``, ``['key']`` or ``["key"]`` starting at ``rest[i] == '['``; returns the index
    just past the closing bracket."""
    quote = rest[i + 1] if i + 1 < len(rest) else ""
    if quote in ("'", '"'):
        end = rest.find(quote, i + 2)
        if end < 0 or rest[end + 1:end + 2] != "]":
            raise _PathSyntaxError(f"unterminated [{quote}...{quote}] in path {text!r}")
        steps.append(rest[i + 2:end])
        return end + 2
    end = rest.find("]", i)
    if end < 0:
        raise _PathSyntaxError(f"unterminated '[' in path {text!r}")
    inside = rest[i + 1:end]
    if not (inside.isascii() and inside.isdigit()):
        raise _PathSyntaxError(
            f"[{inside}] in path {text!r}: brackets take a non-negative index or a quoted key")
    steps.append(int(inside))
    return end + 1


def _walk_steps(path: tuple[str | int, ...]) -> tuple[tuple[str, int | None], ...]:
    """Each step as (dict key, list index or None): ``[0]`` and ``.0`` both index a list and both
    look up the key "0" in an object, as lodash does."""
    out = []
    for step in path:
        key = str(step)
        index = int(key) if key.isascii() and key.isdigit() else None
        out.append((key, index))
    return tuple(out)


def _copy_json(value: Any) -> Any:
    t = type(value)
    if t is dict:
        return {k: (_copy_json(v) if type(v) in _CONTAINERS else v) for k, v in value.items()}
    if t is list:
        return [(_copy_json(v) if type(v) in _CONTAINERS else v) for v in value]
    return value


_CONTAINERS = (dict, list)


def _getter(path: tuple[str | int, ...], copy: bool) -> Resolver:
    """A closure returning the value at ``path`` (MISSING when any step is absent), copied when it is
    a container and ``copy`` is set. Short all-key paths get unrolled closures: they are most paths."""
    steps = _walk_steps(path)
    if not steps:
        if copy:
            return _copy_json
        return lambda data: data
    if all(index is None for _, index in steps) and len(steps) <= 3:
        keys = [key for key, _ in steps]
        if len(keys) == 1:
            (a,) = keys

            def get1(data: Any) -> Any:
                if type(data) is not dict:
                    return MISSING
                v = data.get(a, MISSING)
                return _copy_json(v) if copy and type(v) in _CONTAINERS else v
            get1.key_path = (a,)  # type: ignore[attr-defined]  # inlined by _build_object
            get1.copies = copy  # type: ignore[attr-defined]
            return get1
        if len(keys) == 2:
            a, b = keys

            def get2(data: Any) -> Any:
                if type(data) is not dict:
                    return MISSING
                v = data.get(a)
                if type(v) is not dict:
                    return MISSING
                v = v.get(b, MISSING)
                return _copy_json(v) if copy and type(v) in _CONTAINERS else v
            get2.key_path = (a, b)  # type: ignore[attr-defined]
            get2.copies = copy  # type: ignore[attr-defined]
            return get2
        a, b, c = keys

        def get3(data: Any) -> Any:
            if type(data) is not dict:
                return MISSING
            v = data.get(a)
            if type(v) is not dict:
                return MISSING
            v = v.get(b)
            if type(v) is not dict:
                return MISSING
            v = v.get(c, MISSING)
            return _copy_json(v) if copy and type(v) in _CONTAINERS else v
        return get3

    def get(data: Any) -> Any:
        v = data
        for key, index in steps:
            t = type(v)
            if t is dict:
                v = v.get(key, MISSING)
                if v is MISSING:
                    return MISSING
            elif t is list and index is not None and index < len(v):
                v = v[index]
            else:
                return MISSING
        return _copy_json(v) if copy and type(v) in _CONTAINERS else v
    return get


# ---------------------------------------------------------------------------------------------------
# Rendering values as text (templates, @replace)

def _number_text(value: int | float) -> str:
    """A number as JavaScript's ``String(n)`` writes it, for the values JSON can carry."""
    if type(value) is float and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


_JSON_ENCODER = msgspec.json.Encoder()


def _template_text(value: Any) -> str:
    t = type(value)
    if t is str:
        return value
    if value is None or value is MISSING:
        return ""
    if t is bool:
        return "true" if value else "false"
    if t is int or t is float:
        return _number_text(value)
    return _json_encode(value)


def _json_encode(value: Any) -> str:
    return _JSON_ENCODER.encode(value).decode()


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if value is MISSING:
        return "missing"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


# ---------------------------------------------------------------------------------------------------
# The compiler

_SCALARS = (str, int, float, bool, type(None))
_METADATA_KEY = "_metadata"


def is_directive(spec: Any) -> bool:
    """Whether ``spec`` is an object with a directive key (well-formed or not)."""
    return isinstance(spec, dict) and any(isinstance(k, str) and k.startswith("@") for k in spec)


def _missing(_data: Any) -> Any:
    return MISSING


def _did_you_mean(word: str, candidates: list[str], quote: bool = False) -> str:
    lowered = {c.lower(): c for c in candidates}
    match = lowered.get(word.lower())
    if match is None:
        matches = difflib.get_close_matches(word, candidates, n=1)
        match = matches[0] if matches else None
    if match is None:
        return ""
    return f"; did you mean {match!r}?" if quote else f"; did you mean {match}?"


def _constant(value: Any) -> Resolver:
    if type(value) in _CONTAINERS:
        return lambda _data: _copy_json(value)
    return lambda _data: value


def _build_list(items: tuple[Resolver, ...]) -> Resolver:
    def build(data: Any) -> list[Any]:
        out = []
        for resolve in items:
            v = resolve(data)
            out.append(None if v is MISSING else v)
        return out
    return build


def _build_object(entries: tuple[tuple[str, Resolver | None, Any], ...]) -> Callable[[Any], dict]:
    """Entries are (key, resolver, constant); a scalar literal has no resolver and is stored as is.
    A one- or two-key @path is looked up here rather than through its resolver: most fields of a
    mapping are such paths, and a call per field was most of a wide mapping's cost."""
    steps = []
    for key, resolve, constant in entries:
        path = getattr(resolve, "key_path", None)
        if path is None:
            steps.append((key, resolve, constant, None, None, False))
        else:
            steps.append((key, resolve, constant, path[0], path[1] if len(path) > 1 else None, resolve.copies))

    def build(data: Any) -> dict[str, Any]:
        out = {}
        is_dict = type(data) is dict
        for key, resolve, constant, first, second, copies in steps:
            if first is not None:
                if not is_dict:
                    continue
                v = data.get(first, MISSING)
                if second is not None:
                    if type(v) is not dict:
                        continue
                    v = v.get(second, MISSING)
                if v is MISSING:
                    continue
                out[key] = _copy_json(v) if copies and type(v) in _CONTAINERS else v
            elif resolve is None:
                out[key] = constant
            else:
                v = resolve(data)
                if v is not MISSING:
                    out[key] = v
        return out
    return build


class _Compiler:
    def __init__(self) -> None:
        self.errors: list[MappingError] = []

    def fail(self, at: SpecPath, message: str) -> Resolver:
        self.errors.append(MappingError(message, at))
        return _missing

    def raise_errors(self) -> None:
        if self.errors:
            first = self.errors[0]
            first.errors = tuple(self.errors)
            raise first

    # -- values ----------------------------------------------------------------------------------

    def value(self, spec: Any, at: SpecPath) -> Resolver:
        t = type(spec)
        if t in _SCALARS:
            if t is float and spec != spec:
                return self.fail(at, "NaN is not a JSON value")
            return _constant(spec)
        if t is list:
            return _build_list(tuple(self.value(item, (*at, i)) for i, item in enumerate(spec)))
        if t is dict:
            if is_directive(spec):
                return self.directive(spec, at)
            return self.object(spec, at)
        return self.fail(at, f"unsupported value of type {type(spec).__name__} "
                             "(quote dates and other YAML scalars to make them strings)")

    def object(self, spec: dict, at: SpecPath) -> Callable[[Any], dict]:
        entries = []
        for key, sub in spec.items():
            if not isinstance(key, str):
                self.fail((*at, key), f"object keys must be strings, got {_json_type(key)} {key!r}")
                continue
            if type(sub) in _SCALARS:
                if self.literal(sub, (*at, key)):
                    entries.append((key, None, sub))
            else:
                entries.append((key, self.value(sub, (*at, key)), None))
        return _build_object(tuple(entries))

    def literal(self, spec: Any, at: SpecPath) -> bool:
        """Checks that a literal holds only JSON values; reports and returns False otherwise."""
        t = type(spec)
        if t in _SCALARS:
            if t is float and spec != spec:
                self.fail(at, "NaN is not a JSON value")
                return False
            return True
        if t is list:
            return all([self.literal(v, (*at, i)) for i, v in enumerate(spec)])
        if t is dict:
            ok = True
            for k, v in spec.items():
                if not isinstance(k, str):
                    self.fail((*at, k), f"object keys must be strings, got {_json_type(k)} {k!r}")
                    ok = False
                elif not self.literal(v, (*at, k)):
                    ok = False
            return ok
        self.fail(at, f"unsupported value of type {type(spec).__name__}")
        return False

    # -- directives ------------------------------------------------------------------------------

    def directive(self, spec: dict, at: SpecPath) -> Resolver:
        names = [k for k in spec if isinstance(k, str) and k.startswith("@")]
        if len(names) > 1:
            return self.fail(at, f"an object holds one directive, found {', '.join(names)}")
        others = [k for k in spec if k != names[0] and k != _METADATA_KEY]
        if others:
            return self.fail(at, f"{names[0]} cannot be mixed with plain keys "
                                 f"({', '.join(map(repr, others))}); wrap them in another object")
        name = names[0]
        compile_directive = _DIRECTIVES.get(name)
        if compile_directive is None:
            return self.fail((*at, name),
                             f"unknown directive {name}{_did_you_mean(name, list(_DIRECTIVES))}")
        return compile_directive(self, spec[name], (*at, name))

    def options(self, arg: Any, at: SpecPath, name: str, allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> dict | None:
        """Checks that a directive's argument is an object with known keys; reports otherwise."""
        if not isinstance(arg, dict) or is_directive(arg):
            got = "a directive" if is_directive(arg) else _json_type(arg)
            self.fail(at, f"{name} takes an object with {', '.join(allowed)}, got {got}")
            return None
        ok = True
        for key in arg:
            if key not in allowed:
                self.fail((*at, key), f"{name} has no option {key!r}"
                                      f"{_did_you_mean(str(key), list(allowed), quote=True)}")
                ok = False
        for key in required:
            if key not in arg:
                self.fail(at, f"{name} requires {key!r}")
                ok = False
        return arg if ok else None

    def path_string(self, arg: Any, at: SpecPath, name: str) -> tuple[str | int, ...] | None:
        if not isinstance(arg, str):
            self.fail(at, f"{name} takes a path string, got {_json_type(arg)}")
            return None
        try:
            return _parse_path(arg)
        except _PathSyntaxError as exc:
            self.fail(at, str(exc))
            return None

    def choice(self, opts: dict, key: str, at: SpecPath, name: str, choices: tuple[Any, ...],
               default: Any) -> Any:
        value = opts.get(key, default)
        if value not in choices or type(value) is not type(choices[0]):
            listed = ", ".join(_json_encode(c) for c in choices)
            self.fail((*at, key), f"{name} {key} must be one of {listed}, got {_json_encode_safe(value)}")
            return default
        return value


def _json_encode_safe(value: Any) -> str:
    try:
        return _json_encode(value)
    except (TypeError, msgspec.EncodeError):
        return repr(value)


def _compile_path(c: _Compiler, arg: Any, at: SpecPath) -> Resolver:
    path = c.path_string(arg, at, "@path")
    return _missing if path is None else _getter(path, copy=True)


_PLACEHOLDER = re.compile(r"\{\{\{?\s*([^{}]*?)\s*\}?\}\}")


def _compile_template(c: _Compiler, arg: Any, at: SpecPath) -> Resolver:
    if not isinstance(arg, str):
        return c.fail(at, f"@template takes a string, got {_json_type(arg)}")
    parts: list[str | Resolver] = []
    last = 0
    for match in _PLACEHOLDER.finditer(arg):
        if match.start() > last:
            parts.append(arg[last:match.start()])
        path = c.path_string(match.group(1), at, "@template")
        parts.append(_missing if path is None else _getter(path, copy=False))
        last = match.end()
    if last < len(arg):
        parts.append(arg[last:])
    if not any(callable(p) for p in parts):
        return _constant(arg)
    frozen = tuple(parts)

    def render(data: Any) -> str:
        return "".join([p if type(p) is str else _template_text(p(data)) for p in frozen])
    return render


def _compile_literal(c: _Compiler, arg: Any, at: SpecPath) -> Resolver:
    return _constant(arg) if c.literal(arg, at) else _missing


def _compile_if(c: _Compiler, arg: Any, at: SpecPath) -> Resolver:
    opts = c.options(arg, at, "@if", ("exists", "blank", "then", "else"))
    if opts is None:
        return _missing
    conditions = [k for k in ("exists", "blank") if k in opts]
    if len(conditions) != 1:
        return c.fail(at, "@if takes exactly one of 'exists' or 'blank'"
                          + (", not both" if conditions else ""))
    kind = conditions[0]
    subject_spec = opts[kind]
    if isinstance(subject_spec, str) and subject_spec.startswith("$"):
        return c.fail((*at, kind), f"{subject_spec!r} is a literal string, always present; "
                                   f"write {{'@path': {subject_spec!r}}} to test the event")
    subject = c.value(subject_spec, (*at, kind))
    then = c.value(opts["then"], (*at, "then")) if "then" in opts else _missing
    otherwise = c.value(opts["else"], (*at, "else")) if "else" in opts else _missing

    if kind == "exists":
        def if_exists(data: Any) -> Any:
            v = subject(data)
            return then(data) if v is not None and v is not MISSING else otherwise(data)
        return if_exists

    def if_not_blank(data: Any) -> Any:
        v = subject(data)
        return then(data) if v is not None and v is not MISSING and v != "" else otherwise(data)
    return if_not_blank


def _compile_case(c: _Compiler, arg: Any, at: SpecPath) -> Resolver:
    opts = c.options(arg, at, "@case", ("operator", "value"), required=("operator", "value"))
    if opts is None:
        return _missing
    operator = c.choice(opts, "operator", at, "@case", ("lower", "upper"), "lower")
    value = c.value(opts["value"], (*at, "value"))
    convert = str.lower if operator == "lower" else str.upper

    def case(data: Any) -> Any:
        v = value(data)
        return convert(v) if type(v) is str else v
    return case


def _compile_replace(c: _Compiler, arg: Any, at: SpecPath) -> Resolver:
    opts = c.options(arg, at, "@replace", ("value", "pattern", "replacement", "global", "ignorecase",
                                           "pattern2", "replacement2"), required=("value", "pattern"))
    if opts is None:
        return _missing
    for key in ("pattern", "replacement", "pattern2", "replacement2"):
        if key in opts and not isinstance(opts[key], str):
            c.fail((*at, key), f"@replace {key} must be a string, got {_json_type(opts[key])}")
    for key in ("global", "ignorecase"):
        if key in opts and not isinstance(opts[key], bool):
            c.fail((*at, key), f"@replace {key} must be true or false, got {_json_type(opts[key])}")
    if "replacement2" in opts and "pattern2" not in opts:
        c.fail((*at, "replacement2"), "@replace replacement2 needs pattern2")
    if opts.get("pattern") == "":
        c.fail((*at, "pattern"), "@replace pattern must not be empty")
    value = c.value(opts["value"], (*at, "value"))
    every = opts.get("global", True) is True
    ignorecase = opts.get("ignorecase", False) is True
    steps = [_literal_replacer(str(opts["pattern"]), str(opts.get("replacement", "")), every,
                               ignorecase)]
    if isinstance(opts.get("pattern2"), str) and opts["pattern2"]:
        steps.append(_literal_replacer(opts["pattern2"], str(opts.get("replacement2", "")), every,
                                       ignorecase))
    replacers = tuple(steps)

    def replace(data: Any) -> Any:
        v = value(data)
        t = type(v)
        if t is str:
            text = v
        elif t is bool:
            text = "true" if v else "false"
        elif t is int or t is float:
            text = _number_text(v)
        elif v is MISSING:
            return MISSING
        else:
            return ""
        for step in replacers:
            text = step(text)
        return text
    return replace


def _literal_replacer(pattern: str, replacement: str, every: bool, ignorecase: bool
                      ) -> Callable[[str], str]:
    if not ignorecase:
        count = -1 if every else 1
        return lambda text: text.replace(pattern, replacement, count)
    regex = re.compile(re.escape(pattern), re.IGNORECASE)
    escaped = replacement.replace("\\", "\\\\")
    count = 0 if every else 1
    return lambda text: regex.sub(escaped, text, count=count)


def _compile_array_path(c: _Compiler, arg: Any, at: SpecPath) -> Resolver:
    if not isinstance(arg, list) or not 1 <= len(arg) <= 2:
        return c.fail(at, "@arrayPath takes [path] or [path, item shape], got "
                          + (f"a list of {len(arg)}" if isinstance(arg, list) else _json_type(arg)))
    root_spec = arg[0]
    if isinstance(root_spec, str):
        path = c.path_string(root_spec, (*at, 0), "@arrayPath")
        root = _missing if path is None else _getter(path, copy=False)
    else:
        root = c.value(root_spec, (*at, 0))
    shape_spec = arg[1] if len(arg) == 2 else None
    if shape_spec is not None and not isinstance(shape_spec, dict):
        return c.fail((*at, 1), f"@arrayPath item shape must be an object, got {_json_type(shape_spec)}")
    if not shape_spec:
        def whole(data: Any) -> Any:
            v = root(data)
            return _copy_json(v) if type(v) in _CONTAINERS else v
        return whole
    shape = c.value(shape_spec, (*at, 1))

    def each(data: Any) -> Any:
        v = root(data)
        t = type(v)
        if t is list:
            return [None if (r := shape(item)) is MISSING else r for item in v]
        if t is dict:
            r = shape(v)
            return [None if r is MISSING else r]
        return v
    return each


def _compile_json(c: _Compiler, arg: Any, at: SpecPath) -> Resolver:
    opts = c.options(arg, at, "@json", ("mode", "value"), required=("mode", "value"))
    if opts is None:
        return _missing
    mode = c.choice(opts, "mode", at, "@json", ("encode", "decode"), "encode")
    value = c.value(opts["value"], (*at, "value"))
    if mode == "encode":
        def encode(data: Any) -> Any:
            v = value(data)
            return MISSING if v is MISSING else _json_encode(v)
        return encode

    decoder = msgspec.json.Decoder()

    def decode(data: Any) -> Any:
        v = value(data)
        if type(v) is not str:
            return v
        try:
            return decoder.decode(v)
        except msgspec.DecodeError:  # invalid JSON is returned unchanged, as Segment does
            return v
    return decode


def _compile_flatten(c: _Compiler, arg: Any, at: SpecPath) -> Resolver:
    opts = c.options(arg, at, "@flatten", ("value", "separator", "omitArrays"), required=("value",))
    if opts is None:
        return _missing
    separator = opts.get("separator", ".")
    if not isinstance(separator, str):
        c.fail((*at, "separator"), f"@flatten separator must be a string, got {_json_type(separator)}")
        separator = "."
    omit_arrays = opts.get("omitArrays", False)
    if not isinstance(omit_arrays, bool):
        c.fail((*at, "omitArrays"), f"@flatten omitArrays must be true or false, got "
                                    f"{_json_type(omit_arrays)}")
    flattenable = (dict,) if omit_arrays is True else (dict, list)
    value = c.value(opts["value"], (*at, "value"))

    def into(out: dict[str, Any], prefix: str, v: Any) -> None:
        items = v.items() if type(v) is dict else enumerate(v)
        for k, sub in items:
            key = f"{prefix}{separator}{k}" if prefix else str(k)
            if type(sub) in flattenable:
                into(out, key, sub)
            else:
                out[key] = sub

    def flatten(data: Any) -> Any:
        v = value(data)
        if type(v) not in flattenable:
            return v
        out: dict[str, Any] = {}
        into(out, "", v)
        return out
    return flatten


def _compile_merge(c: _Compiler, arg: Any, at: SpecPath) -> Resolver:
    opts = c.options(arg, at, "@merge", ("objects", "direction"), required=("objects",))
    if opts is None:
        return _missing
    if not isinstance(opts["objects"], list):
        return c.fail((*at, "objects"), f"@merge objects must be a list, got "
                                        f"{_json_type(opts['objects'])}")
    direction = c.choice(opts, "direction", at, "@merge", ("right", "left"), "right")
    objects = [c.value(o, (*at, "objects", i)) for i, o in enumerate(opts["objects"])]
    # "right": later objects win, so update in order; "left": earlier ones win.
    ordered = tuple(objects if direction == "right" else reversed(objects))

    def merge(data: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for resolve in ordered:
            v = resolve(data)
            if type(v) is dict:
                out.update(v)
        return out
    return merge


def _without_nulls(value: Any) -> Any:
    t = type(value)
    if t is dict:
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if t is list:
        return [_without_nulls(v) for v in value if v is not None]
    return value


def _compile_exclude_when_null(c: _Compiler, arg: Any, at: SpecPath) -> Resolver:
    value = c.value(arg, at)

    def exclude_when_null(data: Any) -> Any:
        v = value(data)
        return MISSING if v is None else _without_nulls(v)
    return exclude_when_null


def _compile_transform(c: _Compiler, arg: Any, at: SpecPath) -> Resolver:
    opts = c.options(arg, at, "@transform", ("apply", "mapping"), required=("apply", "mapping"))
    if opts is None:
        return _missing
    apply = c.value(opts["apply"], (*at, "apply"))
    mapping = c.value(opts["mapping"], (*at, "mapping"))

    def transform(data: Any) -> Any:
        return mapping(apply(data))
    return transform


_DIRECTIVES: dict[str, Callable[[_Compiler, Any, SpecPath], Resolver]] = {
    "@path": _compile_path,
    "@template": _compile_template,
    "@literal": _compile_literal,
    "@if": _compile_if,
    "@case": _compile_case,
    "@replace": _compile_replace,
    "@arrayPath": _compile_array_path,
    "@json": _compile_json,
    "@flatten": _compile_flatten,
    "@merge": _compile_merge,
    "@excludeWhenNull": _compile_exclude_when_null,
    "@transform": _compile_transform,
}


# ---------------------------------------------------------------------------------------------------
# Entry points

def compile_value(spec: Any, *, at: SpecPath = ()) -> Resolver:
    """Compiles one mapping value into ``event -> value`` (MISSING when absent).

    ``at`` prefixes the paths of the errors raised, for a value that sits inside a larger spec.
    """
    compiler = _Compiler()
    resolver = compiler.value(spec, tuple(at))
    compiler.raise_errors()
    return resolver


def compile_mapping(spec: dict[str, Any], *, at: SpecPath = ()) -> Callable[[dict], dict]:
    """Compiles ``{field: value}`` into ``event -> {field: result}``; a MISSING result leaves the
    field out, null is kept. Raises MappingError listing every problem in ``spec``."""
    at = tuple(at)
    compiler = _Compiler()
    if not isinstance(spec, dict):
        compiler.fail(at, f"a mapping is an object of field names, got {_json_type(spec)}")
    else:
        for key in spec:
            if isinstance(key, str) and key.startswith("@"):
                compiler.fail((*at, key), f"{key}: a mapping's keys are field names; put the "
                                          "directive under a field")
    compiler.raise_errors()
    build = compiler.object(spec, at)
    compiler.raise_errors()
    return build
