"""Where a message goes on a broker: topic, subject, stream key or routing key, from a template.

A template is fixed text with placeholders: ``events.{type}.{source}``, ``{context.library.name}``.

- ``{a.b.c}`` is a path into the event as stored (``type``, ``event``, ``properties.plan``, ...);
  ``{source}`` is the name of the source the event came in by, not an event field.
- ``{path|text}``: ``text`` stands in when the event has no value there (absent, null or "");
  without ``|text``, such a value renders as ``_``.
- ``{{`` and ``}}`` are literal braces.

A value is made safe for the broker: every character outside the broker's safe set (per
``NameRules``, e.g. ``A-Za-z0-9._-`` for Kafka) becomes ``_``, so ``Order Completed`` renders as
``Order_Completed``; a value is cut to 100 characters, and the whole name to the broker's limit.
Numbers and booleans render as JSON writes them (``27.5``, ``true``); objects and lists as their
JSON, made safe like any value. The template's fixed text is checked against the broker's rules
when the configuration is loaded, so a template that could only make invalid names is an error
there.

Compiled once at load (``NameTemplate``); per event only the fields a template names are decoded
(msgspec skips the rest of the event without building it).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import msgspec

from collector.destinations.base import Envelope

MAX_VALUE_CHARS = 100
MISSING = "_"
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_SEGMENT = re.compile(r"[^.|{}\s]+")


class TemplateError(ValueError):
    """A template that cannot make valid names; ``column`` (1-based) points into its text."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class NameRules:
    """A broker's naming rules, as far as a template must keep them."""

    what: str  # "Kafka topic", for messages
    # The characters a value keeps (a regex character class body); all others become "_".
    safe: str
    # Checks the template's fixed text, rendered with "x" for every value: a problem, or None.
    check: Callable[[str], str | None]
    max_length: int | None = None
    # A value made safe; cached, as the same few values (types, event names) come again and again.
    clean: Callable[[str], str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unsafe = re.compile(f"[^{self.safe}]")
        object.__setattr__(self, "clean", functools.lru_cache(maxsize=4096)(
            lambda text: unsafe.sub("_", text[:MAX_VALUE_CHARS])))


def _kafka_topic(name: str) -> str | None:
    bad = sorted(set(re.sub(r"[A-Za-z0-9._-]", "", name)))
    if bad:
        return f"a Kafka topic has only ASCII letters, digits, '.', '_' and '-'; not {''.join(bad)!r}"
    if name in (".", ".."):
        return f"{name!r} is not a valid Kafka topic"
    return None


def _nats_subject(name: str) -> str | None:
    if re.search(r"[\s*>]", name):
        return "a NATS subject to publish to has no spaces and no wildcards ('*', '>')"
    if "" in name.split("."):
        return "a NATS subject's tokens (between dots) cannot be empty"
    return None


def _redis_key(name: str) -> str | None:
    if re.search(r"[\x00-\x20\x7f]", name):
        return "a stream key written here has no spaces or control characters"
    return None


def _amqp_routing_key(name: str) -> str | None:
    if re.search(r"[\x00-\x20\x7f*#]", name):
        return "a routing key to publish with has no spaces and no wildcards ('*', '#')"
    return None


def _mqtt_topic(name: str) -> str | None:
    if re.search(r"[+#\x00]", name):
        return "an MQTT topic to publish to has no wildcards ('+', '#') and no NUL"
    if name.startswith("$"):
        return "MQTT topics starting with '$' are the broker's own"
    return None


# Values keep only characters every tool handles in a name; a '.' (or '/') in a value would make
# extra levels where the broker splits names into levels.
KAFKA_TOPIC = NameRules("Kafka topic", "A-Za-z0-9._-", _kafka_topic, max_length=249)
NATS_SUBJECT = NameRules("NATS subject", "A-Za-z0-9_-", _nats_subject)
REDIS_KEY = NameRules("Redis stream key", "A-Za-z0-9._-", _redis_key)
AMQP_ROUTING_KEY = NameRules("RabbitMQ routing key", "A-Za-z0-9_-", _amqp_routing_key, max_length=255)
MQTT_TOPIC = NameRules("MQTT topic", "A-Za-z0-9._-", _mqtt_topic, max_length=65535)


class _Node:
    """A trie of the event paths a template needs."""

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.whole = False  # the value at this path itself is needed


def _struct_type(node: _Node, name: str) -> type:
    """A msgspec Struct holding just the paths below ``node``; field ``f<i>`` is the i-th key."""
    fields: list[tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    for i, (key, child) in enumerate(node.children.items()):
        attr = f"f{i}"
        rename[attr] = key
        inner: Any = Any if child.whole else Optional[_struct_type(child, f"{name}_{i}")]  # noqa: UP007
        fields.append((attr, inner, None))
    return msgspec.defstruct(name, fields, rename=rename, kw_only=True)


def _getter(node: _Node, path: tuple[str, ...]) -> Callable[[Any], Any]:
    """Reads ``path`` from an instance of ``_struct_type(node)``."""
    steps: list[str] = []
    rest: tuple[str, ...] = ()
    for depth, key in enumerate(path):
        steps.append(f"f{list(node.children).index(key)}")
        node = node.children[key]
        if node.whole:
            rest = path[depth + 1:]  # below a whole value: plain dict lookups
            break
    attrs = tuple(steps)

    def get(value: Any) -> Any:
        for attr in attrs:
            if value is None:
                return None
            value = getattr(value, attr)
        return _dig(value, rest) if rest else value

    return get


def _dig(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


_encode = msgspec.json.Encoder().encode


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return _encode(value).decode()


class NameTemplate:
    """A compiled template; ``address(envelope)`` gives the name and the event's messageId."""

    def __init__(self, text: str, rules: NameRules) -> None:
        self.text = text
        self.rules = rules
        pieces: list[str | tuple[str, tuple[str, ...], str]] = []  # literal, or (kind, path, default)
        pos = 0
        for match in _PLACEHOLDER.finditer(text):
            if match.start() > pos:
                pieces.append(text[pos:match.start()])
            token = match.group(0)
            if token in ("{{", "}}"):
                pieces.append(token[0])
            elif token in ("{", "}"):
                raise TemplateError(f"unmatched {token!r} (write {token * 2!r} for a literal one)", match.start() + 1)
            else:
                pieces.append(self._placeholder(match.group(1), match.start() + 2))
            pos = match.end()
        if pos < len(text):
            pieces.append(text[pos:])
        if not pieces:
            raise TemplateError(f"a {rules.what} cannot be empty")
        skeleton = "".join(p if isinstance(p, str) else "x" for p in pieces)
        problem = rules.check(skeleton)
        if problem:
            raise TemplateError(problem)
        if rules.max_length is not None and len("".join(p for p in pieces if isinstance(p, str))) > rules.max_length:
            raise TemplateError(f"a {rules.what} has at most {rules.max_length} characters")
        self.paths = tuple(dict.fromkeys(p[1] for p in pieces if isinstance(p, tuple) and p[0] == "event"))
        self._pieces = pieces
        self._compile()

    def _placeholder(self, body: str, column: int) -> tuple[str, tuple[str, ...], str]:
        path_text, bar, default = body.partition("|")
        segments = path_text.split(".")
        if not all(_SEGMENT.fullmatch(s) for s in segments):
            raise TemplateError(f"{{{body}}} is not a field path such as {{type}} or {{context.library.name}}", column)
        if bar and not default:
            raise TemplateError(f"{{{body}}}: the text after '|' (for a missing value) is empty", column)
        fallback = self.rules.clean(default) if bar else MISSING
        if path_text == "source":
            return ("source", (), fallback)
        return ("event", tuple(segments), fallback)

    def _compile(self) -> None:
        root = _Node()
        for path in self.paths + (("messageId",),):
            node = root
            for key in path:
                node = node.children.setdefault(key, _Node())
            node.whole = True
        self._decoder = msgspec.json.Decoder(_struct_type(root, "AddressFields"))
        self._plain_decoder = msgspec.json.Decoder()
        getters = {path: _getter(root, path) for path in self.paths}
        self._message_id = _getter(root, ("messageId",))
        self._parts: list[Any] = []  # str, or (getter, default) for an event field, or (None, default) for source
        for piece in self._pieces:
            if isinstance(piece, str):
                if self._parts and isinstance(self._parts[-1], str):
                    self._parts[-1] += piece
                else:
                    self._parts.append(piece)
            else:
                kind, path, default = piece
                self._parts.append((getters[path] if kind == "event" else None, default))
        self.constant = self._parts[0] if len(self._parts) == 1 and isinstance(self._parts[0], str) else None

    def address(self, envelope: Envelope) -> tuple[str, str]:
        """(the name for this event, its messageId or "")."""
        try:
            fields = self._decoder.decode(envelope.raw)
            message_id = self._message_id(fields)
        except msgspec.ValidationError:
            # A field of an unexpected shape (e.g. "context" a string): read the event as it is.
            return self._address_plain(envelope)
        if self.constant is not None:
            return self.constant, message_id if isinstance(message_id, str) else ""
        clean = self.rules.clean
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
                continue
            get, default = part
            text = envelope.source if get is None else _text(get(fields))
            out.append(default if text is None else clean(text))
        return self._fit("".join(out)), message_id if isinstance(message_id, str) else ""

    def _address_plain(self, envelope: Envelope) -> tuple[str, str]:
        event = self._plain_decoder.decode(envelope.raw)
        if not isinstance(event, dict):
            event = {}
        by_path = {path: _text(_dig(event, path)) for path in self.paths}
        out: list[str] = []
        for piece in self._pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            kind, path, default = piece
            text = envelope.source if kind == "source" else by_path[path]
            out.append(default if text is None else self.rules.clean(text))
        message_id = event.get("messageId")
        return self._fit("".join(out)), message_id if isinstance(message_id, str) else ""

    def _fit(self, name: str) -> str:
        limit = self.rules.max_length
        return name if limit is None or len(name) <= limit else name[:limit]

    def __repr__(self) -> str:
        return f"NameTemplate({self.text!r}, {self.rules.what})"


def compile_template(setting: str, text: str, rules: NameRules) -> NameTemplate:
    """A config struct's template, or a ValueError naming the setting (the config loader reports
    it at the destination's line)."""
    try:
        return NameTemplate(text, rules)
    except TemplateError as error:
        where = f" (at character {error.column})" if error.column else ""
        raise ValueError(f"{setting}: {error}{where}: {text!r}") from None
