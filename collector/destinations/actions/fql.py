"""Segment's Filter Query Language (FQL), parsed once and compiled into a predicate over events.

``compile_fql(text)`` returns ``predicate(event) -> bool``. The text is parsed into a tree once, and
the tree becomes nested closures; per event there is no parsing and no exception handling, and the
predicate never raises for any JSON event (non-object values in the middle of a path, lists, huge
numbers, NaN): where a comparison cannot hold it is False. The event must be a dict, and is never
modified.

This is the full language of Segment's destination filters and Transformations, not the subset its
action triggers accept. A trigger Segment accepts means the same here, with three exceptions:
and/or have a real precedence here (Segment's triggers take a group's last and/or for all of its
terms); ``==`` is an error here (a trigger parses it as ``= "="``, which never matches); and
single quotes delimit strings here (a trigger keeps them as characters, so ``'x'`` never matches).

Grammar
-------
- Paths: dot paths from the top of the event: ``type``, ``anonymousId``, ``properties.a.b``. A
  field name is made of ``A-Z a-z 0-9 _ -``; escape any other character with ``\\``:
  ``properties.product\\ 1.price``, ``properties.a\\.b`` (the key ``"a.b"``). A path that meets a
  missing key, or a value that is not an object, is null. A path cannot start with a digit or
  ``-`` (those start numbers) unless escaped: ``\\0``. The bare words ``and or in true false null``
  are keywords; ``\\null`` names a top-level field called ``null``.
- Literals: strings in single or double quotes (``\\'``, ``\\"`` and ``\\\\`` are escapes; any other
  backslash is kept with the character after it, so ``match(s, 'ab\\*d')`` reaches the glob as
  ``ab\\*d``); numbers (``10``, ``-2``, ``1.5``, ``1e3``); ``true``, ``false``, ``null``; lists of
  literals ``['a', 'b']``, ``[1, 2]``.
- Operators: ``= != < <= > >=``, ``in``, ``!``, ``and``, ``or``, and parentheses (nested up to
  64 deep). Keywords are lowercase only, as Segment's: ``AND``, ``Or``, ``NULL`` (and ``None``) are
  errors with a hint.
- Precedence, tightest first: ``!``; then the comparisons and ``in``; then ``and``; then ``or``.
  So ``a or b and c`` is ``a or (b and c)``, and ``!a and b`` is ``(!a) and b``. Because that makes
  ``!x = 1`` mean ``(!x) = 1``, a trap, a bare ``!`` before a comparison is an error: write
  ``!(x = 1)``. Comparisons do not chain (``a = b = c`` is an error).
- A condition (an operand of and/or/!, or the whole expression) is a comparison, a function call,
  a path, or ``true``/``false``; a path or call there is true only when its value is the boolean
  ``true``. A string, number, list or null literal alone is an error there.

Types and null (Segment's rules)
--------------------------------
- ``=`` is type-strict: ``"10"`` never equals ``10``, ``true`` equals only the boolean, and
  ``1`` equals ``1.0``; lists and objects compare element by element. NaN equals nothing.
- ``!=`` is the negation of ``=``: true for another type and for a missing field.
- ``x = null`` is true when x is missing or null; ``x != null`` means x exists.
- ``< <= > >=`` hold only between two numbers (a string ``"20"`` fails ``> 10``; booleans are not
  numbers).
- ``v in list`` is true when the right side is a list holding an element ``=`` to v; the right
  side is never a string. Both ``'x' in properties.tags`` and ``properties.x in ['a', 'b']``.

Functions (lowercase names; arguments are any expressions)
----------------------------------------------------------
- ``contains(s, sub)``: s and sub strings and sub occurs in s; otherwise false.
- ``match(s, glob)``: the whole string s matches the case-sensitive glob: ``*`` any run of
  characters, ``?`` one character, ``[abc]``, ``[a-z]``, ``[!a]`` (not a), ``\\x`` a literal x. A
  malformed glob written as a literal is an error; one computed per event matches nothing.
- ``length(v)``: a string's length in UTF-8 bytes (as Segment: ``ア`` is 3), a list's number of
  elements; ``length(null)`` is 0; null for anything else.
- ``lowercase``, ``uppercase``; ``snakecase``/``kebabcase``, which replace each whitespace
  character with ``_``/``-`` and keep the case (as Segment documents them); ``titlecase``, which
  upper-cases the first character of each whitespace-separated word and keeps the rest. Each
  returns null for a non-string (``lowercase(null)`` is null).
- ``typeof(v)``: ``"string" "number" "list" "bool" "null" "object"``.
- ``bool(v)``: false for null, 0, NaN, empty lists and objects, and every string but ``"true"``
  (any case) and ``"1"``; true otherwise.
- ``string(v)``: strings unchanged; ``"null"``, ``"true"``, ``"false"``; numbers as text, integral
  ones without a fractional part (``1.0`` is ``"1"``; NaN and infinities as ``"NaN"``,
  ``"Infinity"``); lists and objects as compact JSON.
- ``number(v)``: numbers unchanged; a decimal string (``"12"``, ``"-1.5e3"``, no spaces) as a
  number; null for anything else.
- Segment's trigger syntax ``!contains(...)`` and ``!match(...)`` is plain ``!`` before a call.

Errors
------
``FQLError(ValueError)`` has ``.message`` and ``.column``, the 1-based position in the text (a
newline counts as one character); ``str()`` is ``"column N: message"``. Near-misses carry a hint:
``==`` and ``===`` (use =), ``&&``/``||`` (use and / or), ``=<``/``=>``/``<>``, unbalanced
parentheses, an unknown function (with the closest name), an operator with nothing after it, an
unterminated string, an empty expression.
"""

from __future__ import annotations

import difflib
import json
import operator
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

__all__ = ["FQLError", "Predicate", "compile_fql"]

Predicate = Callable[[dict], bool]
Getter = Callable[[dict], Any]

# Nesting of (, !, calls and lists; keeps parsing and evaluation far from Python's stack limit.
_MAX_DEPTH = 64


class FQLError(ValueError):
    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.message = message
        self.column = column


def compile_fql(text: str) -> Predicate:
    """Parse ``text`` once and return a predicate over event dicts; raise FQLError if invalid."""
    if not isinstance(text, str):
        raise TypeError(f"FQL must be a string, not {type(text).__name__}")
    tree = _Parser(_tokenize(text)).parse()
    return _compile_test(_fold(tree))


# ---------------------------------------------------------------------------------------- tokens

_KEYWORDS = frozenset({"and", "or", "in", "true", "false", "null"})
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_\\")
_DIGITS = frozenset("0123456789")
_SPACE = frozenset(" \t\r\n")
_NUMBER_LITERAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_MAX_INT_DIGITS = 4000  # below Python's int/str conversion limit


@dataclass(slots=True)
class _Token:
    kind: str  # string number path word op ! ( ) [ ] , end
    value: Any
    column: int
    text: str
    plain: str | None = None  # a path that is one unescaped name: a function or keyword candidate


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        column = i + 1
        if c in _SPACE:
            i += 1
            continue
        if c == "'" or c == '"':
            token, i = _lex_string(text, i)
        elif c in _DIGITS or (c == "-" and i + 1 < n and text[i + 1] in _DIGITS):
            token, i = _lex_number(text, i)
        elif c in _NAME_START:
            token, i = _lex_path(text, i)
        elif c in "()[],":
            token, i = _Token(c, c, column, c), i + 1
        else:
            token, i = _lex_operator(text, i)
        tokens.append(token)
    tokens.append(_Token("end", None, n + 1, "the end"))
    return tokens


def _lex_string(text: str, start: int) -> tuple[_Token, int]:
    quote = text[start]
    parts: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            following = text[i + 1]
            parts.append(following if following in "\\'\"" else c + following)
            i += 2
        elif c == quote:
            return _Token("string", "".join(parts), start + 1, text[start : i + 1]), i + 1
        else:
            parts.append(c)
            i += 1
    raise FQLError(f"unterminated string: no closing {quote}", start + 1)


def _lex_number(text: str, start: int) -> tuple[_Token, int]:
    found = _NUMBER_LITERAL.match(text, start)
    assert found is not None  # the caller saw a digit
    end = found.end()
    literal = found.group()
    if end < len(text) and (text[end] in _NAME_CHARS or text[end] in ".\\"):
        raise FQLError(f"malformed number {text[start:end + 1]!r}", start + 1)
    if "." in literal or "e" in literal or "E" in literal:
        value: int | float = float(literal)
        if value in (float("inf"), float("-inf")):
            raise FQLError(f"number {literal} is out of range", start + 1)
    elif len(literal) > _MAX_INT_DIGITS:
        raise FQLError("number is too long", start + 1)
    else:
        value = int(literal)
    return _Token("number", value, start + 1, literal), end


def _lex_path(text: str, start: int) -> tuple[_Token, int]:
    keys: list[str] = []
    escaped = False
    i, n = start, len(text)
    while True:
        name: list[str] = []
        while i < n:
            c = text[i]
            if c == "\\":
                if i + 1 >= n:
                    raise FQLError("a \\ at the end of a path escapes nothing", i + 1)
                name.append(text[i + 1])
                escaped = True
                i += 2
            elif c in _NAME_CHARS:
                name.append(c)
                i += 1
            else:
                break
        if not name:
            odd = text[i] if i < n and text[i] not in _SPACE and text[i] != "." else None
            hint = f"; escape other characters with \\, as in \\{odd}" if odd else ""
            raise FQLError(f"expected a field name after '.'{hint}", i + 1)
        keys.append("".join(name))
        if i < n and text[i] == ".":
            i += 1
            continue
        break
    source = text[start:i]
    plain = keys[0] if len(keys) == 1 and not escaped else None
    if plain is not None and plain in _KEYWORDS:
        return _Token("word", plain, start + 1, source), i
    if plain == "None":
        raise FQLError("write null, not None (or \\None for a field of that name)", start + 1)
    if plain is not None and plain.lower() in _KEYWORDS:
        raise FQLError(
            f"write {plain.lower()} in lowercase (or \\{plain} for a field of that name)", start + 1
        )
    return _Token("path", tuple(keys), start + 1, source, plain), i


# Near-misses first: each maps a spelling to (token, or None for an error) and a hint.
_OPERATORS: list[tuple[str, str | None, str]] = [
    ("===", None, "use = for equality"),
    ("!==", None, "use != for inequality"),
    ("==", None, "use = for equality"),
    ("=<", None, "use <="),
    ("=>", None, "use >="),
    ("<>", None, "use != for inequality"),
    ("&&", None, "use and instead of &&"),
    ("||", None, "use or instead of ||"),
    ("&", None, "use and instead of &"),
    ("|", None, "use or instead of |"),
    ("!=", "!=", ""),
    ("<=", "<=", ""),
    (">=", ">=", ""),
    ("=", "=", ""),
    ("<", "<", ""),
    (">", ">", ""),
    ("!", "!", ""),
]


def _lex_operator(text: str, start: int) -> tuple[_Token, int]:
    for spelling, symbol, hint in _OPERATORS:
        if text.startswith(spelling, start):
            if symbol is None:
                raise FQLError(f"{spelling} is not FQL: {hint}", start + 1)
            kind = "!" if symbol == "!" else "op"
            return _Token(kind, symbol, start + 1, spelling), start + len(spelling)
    c = text[start]
    if c == "$":
        raise FQLError(
            "paths start at the top of the event: write properties.x, not $.properties.x", start + 1
        )
    hint = "" if c.isascii() else f" (in a field name, escape it: \\{c})"
    raise FQLError(f"unexpected character {c!r}{hint}", start + 1)


# ------------------------------------------------------------------------------------------ tree


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any
    column: int


@dataclass(frozen=True, slots=True)
class _Path:
    keys: tuple[str, ...]
    column: int


@dataclass(frozen=True, slots=True)
class _Call:
    name: str
    args: tuple[Any, ...]
    column: int


@dataclass(frozen=True, slots=True)
class _Not:
    operand: Any
    column: int


@dataclass(frozen=True, slots=True)
class _Compare:
    op: str  # = != < <= > >= in
    left: Any
    right: Any
    column: int


@dataclass(frozen=True, slots=True)
class _And:
    operands: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Or:
    operands: tuple[Any, ...]


_Node = _Literal | _Path | _Call | _Not | _Compare | _And | _Or

_OPERAND_START = frozenset({"string", "number", "path", "!", "(", "["})
_LITERAL_WORDS = {"true": True, "false": False, "null": None}


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> _Node:
        if self.peek().kind == "end":
            raise FQLError("empty expression", 1)
        node = _condition(self.disjunction())
        token = self.peek()
        if token.kind != "end":
            raise self.unexpected(token, inside_parentheses=False)
        return node

    def disjunction(self) -> _Node:
        operands = [self.conjunction()]
        while self.peek().kind == "word" and self.peek().value == "or":
            self.expect_operand(self.take(), "a condition")
            operands.append(self.conjunction())
        if len(operands) == 1:
            return operands[0]
        return _Or(tuple(_condition(node) for node in operands))

    def conjunction(self) -> _Node:
        operands = [self.comparison()]
        while self.peek().kind == "word" and self.peek().value == "and":
            self.expect_operand(self.take(), "a condition")
            operands.append(self.comparison())
        if len(operands) == 1:
            return operands[0]
        return _And(tuple(_condition(node) for node in operands))

    def comparison(self) -> _Node:
        first = self.peek()
        left = self.unary()
        comparator = self.peek()
        if not _is_comparison(comparator):
            return left
        if first.kind == "!":
            raise FQLError(
                f"! binds tighter than {comparator.text}: write !(... {comparator.text} ...) "
                "to negate the comparison",
                first.column,
            )
        self.take()
        self.expect_operand(comparator, "a value")
        right = self.unary()
        is_literal_list = isinstance(right, _Literal) and isinstance(right.value, list)
        if comparator.value == "in" and isinstance(right, _Literal) and not is_literal_list:
            raise FQLError("in needs a list on its right, like ['a', 'b']", right.column)
        following = self.peek()
        if _is_comparison(following):
            message = f"comparisons do not chain: join them with and before {_shown(following)}"
            raise FQLError(message, following.column)
        return _Compare(comparator.value, left, right, comparator.column)

    def unary(self) -> _Node:
        token = self.peek()
        if token.kind != "!":
            return self.primary()
        self.take()
        self.expect_operand(token, "a condition")
        self.enter(token)
        operand = self.unary()
        self.depth -= 1
        if not _is_comparison(self.peek()):  # if one follows, comparison() explains the precedence
            _condition(operand)
        return _Not(operand, token.column)

    def primary(self) -> _Node:
        token = self.take()
        kind = token.kind
        if kind == "string" or kind == "number":
            return _Literal(token.value, token.column)
        if kind == "word" and token.value in _LITERAL_WORDS:
            return _Literal(_LITERAL_WORDS[token.value], token.column)
        if kind == "path":
            if self.peek().kind == "(":
                return self.call(token)
            return _Path(token.value, token.column)
        if kind == "(":
            return self.parenthesised(token)
        if kind == "[":
            self.enter(token)
            literal = _Literal(self.list_items(token), token.column)
            self.depth -= 1
            return literal
        if kind == ")":
            raise FQLError("unmatched )", token.column)
        raise FQLError(f"expected a condition or a value, found {_shown(token)}", token.column)

    def parenthesised(self, opening: _Token) -> _Node:
        if self.peek().kind == ")":
            raise FQLError("empty parentheses", opening.column)
        self.enter(opening)
        node = self.disjunction()
        self.depth -= 1
        closing = self.peek()
        if closing.kind == "end":
            raise FQLError("unclosed (: add a matching )", opening.column)
        if closing.kind == ",":
            raise FQLError("unexpected ',': lists are written with [ ], not ( )", closing.column)
        if closing.kind != ")":
            raise self.unexpected(closing, inside_parentheses=True)
        self.take()
        return node

    def call(self, name_token: _Token) -> _Node:
        name = name_token.plain
        if name is None:
            raise FQLError(f"{name_token.text} is not a function", name_token.column)
        if name == "not":
            raise FQLError("use ! for negation: not is not an FQL keyword", name_token.column)
        function = _FUNCTIONS.get(name)
        if function is None:
            close = difflib.get_close_matches(name.lower(), _FUNCTIONS, n=1, cutoff=0.6)
            names = ", ".join(_FUNCTIONS)
            hint = f"; did you mean {close[0]}?" if close else f"; the functions are {names}"
            raise FQLError(f"unknown function {name}{hint}", name_token.column)
        opening = self.take()
        self.enter(opening)
        args: list[_Node] = []
        if self.peek().kind != ")":
            separator = opening
            while True:
                self.expect_operand(separator, "a value")
                args.append(self.disjunction())
                separator = self.peek()
                if separator.kind == ",":
                    self.take()
                    continue
                if separator.kind == ")":
                    break
                if separator.kind == "end":
                    raise FQLError(f"unclosed ( of {name}(): add a matching )", opening.column)
                found = _shown(separator)
                raise FQLError(f"expected , or ) in {name}(), found {found}", separator.column)
        self.take()
        self.depth -= 1
        if len(args) != function.arity:
            plural = "argument" if function.arity == 1 else "arguments"
            message = f"{name}() takes {function.arity} {plural}, got {len(args)}"
            raise FQLError(message, name_token.column)
        if name == "match":
            pattern = args[1]
            if isinstance(pattern, _Literal) and isinstance(pattern.value, str):
                try:
                    _glob_to_regex(pattern.value)
                except _GlobError as error:
                    raise FQLError(f"bad glob in match(): {error}", pattern.column) from None
        return _Call(name, tuple(args), name_token.column)

    def list_items(self, opening: _Token) -> list[Any]:
        items: list[Any] = []
        if self.peek().kind == "]":
            self.take()
            return items
        while True:
            token = self.take()
            if token.kind == "string" or token.kind == "number":
                items.append(token.value)
            elif token.kind == "word" and token.value in _LITERAL_WORDS:
                items.append(_LITERAL_WORDS[token.value])
            elif token.kind == "[":
                self.enter(token)
                items.append(self.list_items(token))
                self.depth -= 1
            elif token.kind == "end":
                raise FQLError("unclosed [: add a matching ]", opening.column)
            else:
                message = "list items are literals (strings, numbers, true, false, null)"
                raise FQLError(f"{message}, found {_shown(token)}", token.column)
            token = self.take()
            if token.kind == "]":
                return items
            if token.kind == "end":
                raise FQLError("unclosed [: add a matching ]", opening.column)
            if token.kind != ",":
                raise FQLError(f"expected , or ] in a list, found {_shown(token)}", token.column)

    def expect_operand(self, after: _Token, what: str) -> None:
        token = self.peek()
        if token.kind in _OPERAND_START or (token.kind == "word" and token.value in _LITERAL_WORDS):
            return
        if token.kind in ("end", ")", "]", ","):
            raise FQLError(f"{_shown(after)} needs {what} after it", after.column)
        raise FQLError(f"expected {what} after {_shown(after)}, found {_shown(token)}", token.column)

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise FQLError(f"nested more than {_MAX_DEPTH} levels deep", token.column)

    def unexpected(self, token: _Token, inside_parentheses: bool) -> FQLError:
        if token.kind == ")":
            return FQLError("unmatched )", token.column)
        previous = self.tokens[self.pos - 1]
        if previous.kind == "path" and previous.plain == "not":
            return FQLError("use ! for negation: not is not an FQL keyword", previous.column)
        if token.kind in _OPERAND_START or token.kind == "word" and token.value in _LITERAL_WORDS:
            return FQLError(f"missing and / or before {_shown(token)}", token.column)
        expected = "; expected )" if inside_parentheses else ""
        return FQLError(f"unexpected {_shown(token)}{expected}", token.column)


def _shown(token: _Token) -> str:
    if token.kind == "string" or token.kind == "end":
        return token.text
    return f"'{token.text}'"


def _is_comparison(token: _Token) -> bool:
    return token.kind == "op" or (token.kind == "word" and token.value == "in")


def _condition(node: _Node) -> _Node:
    if isinstance(node, _Literal) and not isinstance(node.value, bool):
        kind = _TYPE_NAMES[_kind(node.value)]
        raise FQLError(f"a {kind} on its own is not a condition: compare it with something", node.column)
    return node


# ----------------------------------------------------------------------------------- value rules


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "bool"
    cls = type(value)
    if cls is int or cls is float:
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "other"


_TYPE_NAMES = {
    "string": "string",
    "number": "number",
    "bool": "bool",
    "null": "null",
    "list": "list",
    "object": "object",
    "other": "object",
}


def _equal(a: Any, b: Any) -> bool:
    """Segment's strict ``=``: same type and same value, lists and objects element by element.
    Iterative, so no nesting depth can overflow the stack; a pair of containers seen before is not
    walked again, so a self-referencing value cannot loop."""
    pending = [(a, b)]
    seen: set[tuple[int, int]] | None = None
    while pending:
        a, b = pending.pop()
        kind = _kind(a)
        if kind != _kind(b) or kind == "other":
            return False
        if kind == "list" or kind == "object":
            if len(a) != len(b):
                return False
            if seen is None:
                seen = set()
            pair = (id(a), id(b))
            if pair in seen:
                continue
            seen.add(pair)
            if kind == "list":
                pending.extend(zip(a, b))
            else:
                if a.keys() != b.keys():
                    return False
                pending.extend((a[key], b[key]) for key in a)
        elif a != b:
            return False
    return True


def _is_number(value: Any) -> bool:
    cls = type(value)
    return cls is int or cls is float


def _list_holds(items: Any, value: Any) -> bool:
    if not isinstance(items, (list, tuple)):
        return False
    for item in items:
        if _equal(value, item):
            return True
    return False


# ------------------------------------------------------------------------------------- functions


def _contains(s: Any, sub: Any) -> bool:
    return isinstance(s, str) and isinstance(sub, str) and sub in s


def _match(s: Any, pattern: Any) -> bool:
    if not isinstance(s, str) or not isinstance(pattern, str):
        return False
    regex = _glob_regex(pattern)
    return regex is not None and regex.fullmatch(s) is not None


def _length(value: Any) -> int | None:
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, (list, tuple)):
        return len(value)
    if value is None:
        return 0
    return None


def _lowercase(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _uppercase(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) else None


_WHITESPACE = re.compile(r"\s")  # the same characters as str.isspace()
_WORD_START = re.compile(r"(?<!\S)\S")


def _snakecase(value: Any) -> str | None:
    return _WHITESPACE.sub("_", value) if isinstance(value, str) else None


def _kebabcase(value: Any) -> str | None:
    return _WHITESPACE.sub("-", value) if isinstance(value, str) else None


def _titlecase(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return _WORD_START.sub(lambda found: found.group().upper(), value)


def _typeof(value: Any) -> str:
    return _TYPE_NAMES[_kind(value)]


def _to_bool(value: Any) -> bool:
    if value is True or value is False:
        return value
    if _is_number(value):
        return value == value and value != 0  # NaN is false
    if isinstance(value, str):
        return value == "1" or value.lower() == "true"
    if isinstance(value, (list, tuple, dict)):
        return len(value) > 0
    return False


_BIG_INT = 10**_MAX_INT_DIGITS


def _to_string(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    cls = type(value)
    if cls is int:
        return str(value) if -_BIG_INT < value < _BIG_INT else None
    if cls is float:
        return _float_text(value)
    if isinstance(value, (list, tuple, dict)):
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        except (ValueError, TypeError, RecursionError):  # numbers too long, odd keys, absurd nesting
            return None
    return None


def _float_text(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _to_number(value: Any) -> int | float | None:
    if _is_number(value):
        return value
    if not isinstance(value, str) or _NUMBER_TEXT.fullmatch(value) is None:
        return None
    if value.lstrip("+-").isdigit() and len(value) <= _MAX_INT_DIGITS:
        return int(value)
    return float(value)


@dataclass(frozen=True, slots=True)
class _Function:
    apply: Callable[..., Any]
    arity: int
    returns_bool: bool


_FUNCTIONS: dict[str, _Function] = {
    "contains": _Function(_contains, 2, True),
    "match": _Function(_match, 2, True),
    "length": _Function(_length, 1, False),
    "lowercase": _Function(_lowercase, 1, False),
    "uppercase": _Function(_uppercase, 1, False),
    "snakecase": _Function(_snakecase, 1, False),
    "kebabcase": _Function(_kebabcase, 1, False),
    "titlecase": _Function(_titlecase, 1, False),
    "typeof": _Function(_typeof, 1, False),
    "bool": _Function(_to_bool, 1, True),
    "string": _Function(_to_string, 1, False),
    "number": _Function(_to_number, 1, False),
}


# ------------------------------------------------------------------------------------------ glob


class _GlobError(Exception):
    pass


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(_glob_to_regex(pattern), re.DOTALL)
    except _GlobError:
        return None


def _glob_to_regex(pattern: str) -> str:
    parts: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            while i < n and pattern[i] == "*":
                i += 1
            parts.append(".*")
            continue
        if c == "[":
            i, regex = _glob_class(pattern, i)
            parts.append(regex)
            continue
        if c == "?":
            parts.append(".")
        elif c == "\\":
            if i + 1 >= n:
                raise _GlobError("a trailing \\ escapes nothing")
            i += 1
            parts.append(re.escape(pattern[i]))
        else:
            parts.append(re.escape(c))
        i += 1
    return "".join(parts)


def _glob_class(pattern: str, start: int) -> tuple[int, str]:
    i, n = start + 1, len(pattern)
    negate = i < n and pattern[i] == "!"
    if negate:
        i += 1
    members: list[str] = []
    while True:
        if i >= n:
            raise _GlobError("[ has no closing ]")
        if pattern[i] == "]":
            break
        low, i = _glob_class_char(pattern, i)
        if i + 1 < n and pattern[i] == "-" and pattern[i + 1] != "]":
            high, i = _glob_class_char(pattern, i + 1)
            if high < low:
                raise _GlobError(f"the range {low}-{high} is reversed")
            members.append(f"{re.escape(low)}-{re.escape(high)}")
        else:
            members.append(re.escape(low))
    if not members:
        raise _GlobError("[] holds no character")
    return i + 1, "[" + ("^" if negate else "") + "".join(members) + "]"


def _glob_class_char(pattern: str, i: int) -> tuple[str, int]:
    if pattern[i] != "\\":
        return pattern[i], i + 1
    if i + 1 >= len(pattern):
        raise _GlobError("a trailing \\ escapes nothing")
    return pattern[i + 1], i + 2


# -------------------------------------------------------------------------------------- compiler


def _always(event: dict) -> bool:
    return True


def _never(event: dict) -> bool:
    return False


def _fold(node: _Node) -> _Node:
    """Replace every subtree that reads no field by its value, computed once here."""
    if isinstance(node, (_Literal, _Path)):
        return node
    if isinstance(node, _Call):
        node = _Call(node.name, tuple(_fold(arg) for arg in node.args), node.column)
        children: tuple[_Node, ...] = node.args
    elif isinstance(node, _Not):
        node = _Not(_fold(node.operand), node.column)
        children = (node.operand,)
    elif isinstance(node, _Compare):
        node = _Compare(node.op, _fold(node.left), _fold(node.right), node.column)
        children = (node.left, node.right)
    else:
        node = type(node)(tuple(_fold(operand) for operand in node.operands))
        children = node.operands
    if all(isinstance(child, _Literal) for child in children):
        return _Literal(_compile_value(node)({}), getattr(node, "column", 0))
    return node


def _compile_test(node: _Node) -> Predicate:
    """A closure that is True exactly when ``node``, as a condition, holds."""
    if isinstance(node, _Literal):
        return _always if node.value is True else _never
    if isinstance(node, _Path):
        if len(node.keys) == 1:
            key = node.keys[0]
            return lambda event: event.get(key) is True
        get = _path_getter(node.keys)
        return lambda event: get(event) is True
    if isinstance(node, _Call):
        call = _compile_call(node)
        if _FUNCTIONS[node.name].returns_bool:
            return call
        return lambda event: call(event) is True
    if isinstance(node, _Not):
        operand = _compile_test(node.operand)
        return lambda event: not operand(event)
    if isinstance(node, _Compare):
        return _compile_compare(node)
    tests = [_compile_test(operand) for operand in node.operands]
    if isinstance(node, _And):
        return _all_of(tests)
    return _any_of(tests)


def _compile_value(node: _Node) -> Getter:
    """A closure returning the value of ``node`` for an event."""
    if isinstance(node, _Literal):
        value = node.value
        return lambda event: value
    if isinstance(node, _Path):
        return _path_getter(node.keys)
    if isinstance(node, _Call):
        return _compile_call(node)
    return _compile_test(node)


def _all_of(tests: list[Predicate]) -> Predicate:
    if len(tests) == 2:
        first, second = tests
        return lambda event: first(event) and second(event)
    if len(tests) == 3:
        first, second, third = tests
        return lambda event: first(event) and second(event) and third(event)

    def all_hold(event: dict) -> bool:
        for test in tests:
            if not test(event):
                return False
        return True

    return all_hold


def _any_of(tests: list[Predicate]) -> Predicate:
    if len(tests) == 2:
        first, second = tests
        return lambda event: first(event) or second(event)
    if len(tests) == 3:
        first, second, third = tests
        return lambda event: first(event) or second(event) or third(event)

    def any_holds(event: dict) -> bool:
        for test in tests:
            if test(event):
                return True
        return False

    return any_holds


def _path_getter(keys: tuple[str, ...]) -> Getter:
    if len(keys) == 1:
        key = keys[0]
        return lambda event: event.get(key)
    if len(keys) == 2:
        first, second = keys

        def get_two(event: dict) -> Any:
            value = event.get(first)
            return value.get(second) if isinstance(value, dict) else None

        return get_two

    def get(event: dict) -> Any:
        value: Any = event
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return get


def _compile_call(node: _Call) -> Getter:
    function = _FUNCTIONS[node.name]
    if node.name in ("match", "contains") and isinstance(node.args[1], _Literal):
        return _compile_string_test(node.name, _compile_value(node.args[0]), node.args[1].value)
    getters = [_compile_value(arg) for arg in node.args]
    apply = function.apply
    if len(getters) == 1:
        (argument,) = getters
        return lambda event: apply(argument(event))
    first, second = getters
    return lambda event: apply(first(event), second(event))


def _compile_string_test(name: str, get: Getter, constant: Any) -> Predicate:
    if not isinstance(constant, str):
        return _never
    if name == "contains":

        def contains(event: dict) -> bool:
            value = get(event)
            return isinstance(value, str) and constant in value

        return contains
    regex = _glob_regex(constant)
    if regex is None:  # a glob computed from literals; a glob written as a literal was checked
        return _never
    fullmatch = regex.fullmatch

    def matches(event: dict) -> bool:
        value = get(event)
        return isinstance(value, str) and fullmatch(value) is not None

    return matches


_MIRRORED = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_ORDERINGS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _compile_compare(node: _Compare) -> Predicate:
    op, left, right = node.op, node.left, node.right
    if op == "in":
        return _compile_in(left, right)
    if isinstance(left, _Literal):
        left, right, op = right, left, _MIRRORED[op]
    if isinstance(right, _Literal):
        if op == "=" or op == "!=":
            equals = _equals_constant(left, right.value)
            if op == "=":
                return equals
            return lambda event: not equals(event)
        return _order_against_constant(op, _compile_value(left), right.value)
    first, second = _compile_value(left), _compile_value(right)
    if op == "=":
        return lambda event: _equal(first(event), second(event))
    if op == "!=":
        return lambda event: not _equal(first(event), second(event))
    return _order_values(op, first, second)


def _equals_constant(left: _Node, constant: Any) -> Predicate:
    kind = _kind(constant)
    if kind == "string" and isinstance(left, _Path) and len(left.keys) == 1:
        key = left.keys[0]
        return lambda event: event.get(key) == constant  # str == x is False for every non-string
    get = _compile_value(left)
    if kind == "string":
        return lambda event: get(event) == constant
    if kind == "null":
        return lambda event: get(event) is None
    if kind == "bool":
        return lambda event: get(event) is constant
    if kind == "number":

        def equals_number(event: dict) -> bool:
            value = get(event)
            cls = type(value)
            return (cls is int or cls is float) and value == constant

        return equals_number
    return lambda event: _equal(get(event), constant)


def _order_against_constant(op: str, get: Getter, constant: Any) -> Predicate:
    if not _is_number(constant):
        return _never
    compare = _ORDERINGS[op]

    def ordered(event: dict) -> bool:
        value = get(event)
        cls = type(value)
        return (cls is int or cls is float) and compare(value, constant)

    return ordered


def _order_values(op: str, first: Getter, second: Getter) -> Predicate:
    compare = _ORDERINGS[op]

    def ordered(event: dict) -> bool:
        a, b = first(event), second(event)
        return _is_number(a) and _is_number(b) and compare(a, b)

    return ordered


def _compile_in(left: _Node, right: _Node) -> Predicate:
    if isinstance(right, _Literal):
        if not isinstance(right.value, list):  # only after folding, e.g. x in lowercase('A')
            return _never
        return _member_of_constant(_compile_value(left), right.value)
    get_items = _compile_value(right)
    if isinstance(left, _Literal) and isinstance(left.value, str):
        constant = left.value
        return lambda event: isinstance(items := get_items(event), (list, tuple)) and constant in items
    get = _compile_value(left)
    return lambda event: _list_holds(get_items(event), get(event))


def _member_of_constant(get: Getter, items: list[Any]) -> Predicate:
    strings = frozenset(item for item in items if isinstance(item, str))
    numbers = frozenset(item for item in items if _is_number(item))
    booleans = frozenset(item for item in items if item is True or item is False)
    holds_null = any(item is None for item in items)
    containers = [item for item in items if isinstance(item, list)]

    def member(event: dict) -> bool:
        value = get(event)
        cls = type(value)
        if cls is str:
            return value in strings
        if cls is int or cls is float:
            return value in numbers
        if cls is bool:
            return value in booleans
        if value is None:
            return holds_null
        for container in containers:
            if _equal(value, container):
                return True
        return False

    return member
