"""Reads the YAML configuration into the typed model, reporting every problem as FILE:LINE:COL.

PyYAML's constructor forgets where each value was written and silently keeps the last of two
duplicate keys, so the file is only *composed* (parsed into nodes that keep their marks) and the
plain Python tree is built here, remembering the position of every dotted key path. msgspec then
types the tree; it stops at the first error, so each section is typed on its own and retried
without the offending key, which gets every error out in one pass.
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import os
import re
import typing
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import msgspec
import msgspec.inspect as mi
import yaml

from collector.browser.config import BrowserConfig
from collector.config.model import Config, LoggingConfig, ServerConfig, SourceConfig, StorageConfig
from collector.config.units import decode_hook
from collector.destinations import registry
from collector.destinations.actions.destination import settings_problems
from collector.destinations.actions.settings import dotted
from collector.filters import check as filter_checks
from collector.filters.config import TrackingPlanConfig

__all__ = ["ConfigError", "load_config", "load_config_text", "load_default_config"]

_SECTIONS: dict[str, type] = {
    "server": ServerConfig, "storage": StorageConfig, "logging": LoggingConfig, "browser": BrowserConfig,
}
_TOP_LEVEL_KEYS = [*_SECTIONS, "tracking_plans", "sources", "destinations"]
_NAME = re.compile(r"[A-Za-z0-9_-]+")
# A section with more errors than this is surely not worth reading further.
_MAX_ERRORS_PER_SECTION = 50


class ConfigError(Exception):
    """Everything wrong with a configuration, one "FILE:LINE:COL: key.path: message" per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(errors)
        self.errors = list(errors)

    def __str__(self) -> str:
        return "\n".join(self.errors)


def load_config(path: str | os.PathLike, destination_union: object = None) -> Config:
    """Reads and checks a YAML configuration file."""
    origin = os.fspath(path)
    try:
        with open(origin, encoding="utf-8-sig") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([f"{origin}: cannot read: {reason}"]) from exc
    return load_config_text(text, origin, destination_union)


def load_config_text(text: str, origin: str = "<string>", destination_union: object = None) -> Config:
    """Parses and checks a configuration; ``origin`` names it in messages.

    ``destination_union`` is the tagged union of destination configs; by default every type of
    ``collector.destinations.registry``.
    """
    doc = _Document(origin)
    root = _compose(text, origin)
    tree = _Builder(doc, os.environ).build_root(root)
    if tree is None:  # the top level is not a mapping: nothing more to say
        doc.raise_if_errors()
    config = _Typer(doc, _DestinationTypes(destination_union)).config(tree)
    _check(doc, config, tree)
    doc.raise_if_errors()
    return config


def load_default_config(destination_union: object = None) -> Config:
    """The embedded defaults (``collector/defaults.yaml``), used when no --config is given."""
    resource = resources.files("collector").joinpath("defaults.yaml")
    return load_config_text(resource.read_text(encoding="utf-8"), str(resource), destination_union)


# --- Positions and messages -------------------------------------------------------------------


@dataclass
class _Document:
    """Where every key path was written, and the problems found so far."""

    origin: str
    values: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> its value's (line, col)
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> its key's (line, col)
    # Paths whose value was unusable (already reported) and so left out of the tree.
    broken: set[str] = field(default_factory=set)
    # path -> (the text of a one-line string scalar as written, its value): to point inside it.
    strings: dict[str, tuple[str, str]] = field(default_factory=dict)
    problems: list[tuple[int, int, str]] = field(default_factory=list)

    def error(self, path: str, message: str, *, at_key: bool = False, pos: tuple[int, int] | None = None) -> None:
        line, col = pos or self.where(path, at_key=at_key)
        where = f"{self.origin}:{line}:{col}"
        self.problems.append((line, col, f"{where}: {path}: {message}" if path else f"{where}: {message}"))

    def where(self, path: str, *, at_key: bool = False) -> tuple[int, int]:
        """The position of ``path``, or of its nearest ancestor written in the file."""
        if at_key and path in self.keys:
            return self.keys[path]
        while path not in self.values and path:
            path = _parent(path)
        return self.values.get(path, (1, 1))

    def inside(self, path: str, value: str, column: int) -> tuple[int, int] | None:
        """The position of the 1-based ``column`` of the string at ``path``, when it was written
        on one line with no escapes (plain, or quoted), so that its characters map one to one."""
        written = self.strings.get(path)
        if written is None or written[1] != value:
            return None
        text = written[0]
        if text == value:
            offset = 0
        elif len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" and text[1:-1] == value:
            offset = 1
        else:
            return None
        line, col = self.values[path]
        return line, col + offset + column - 1

    def raise_if_errors(self) -> None:
        if self.problems:
            self.problems.sort(key=lambda problem: problem[:2])
            raise ConfigError([text for _, _, text in self.problems])


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _parent(path: str) -> str:
    match = re.fullmatch(r"(.*)(?:\.[^.]*|\[\d+\])", path)
    return match.group(1) if match else ""


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _kind(value: object) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _did_you_mean(word: str, candidates: list[str]) -> str:
    matches = difflib.get_close_matches(word, candidates, n=1)
    return f"; did you mean {matches[0]}?" if matches else ""


# --- YAML nodes to plain Python, with positions -------------------------------------------------

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_BROKEN = object()  # a value already reported as unusable
# `$${` is a literal `${`; `${NAME}` and `${NAME:-default}` are references.
_REFERENCE = re.compile(r"\$(\$?)\{([^}]*)(\}?)")
_REFERENCE_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


def _compose(text: str, origin: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = ", ".join(part for part in (exc.context, exc.problem) if part)
        where = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark else origin
        raise ConfigError([f"{where}: YAML syntax error: {what}"]) from exc
    except yaml.YAMLError as exc:  # e.g. a control character: no line and column to give
        raise ConfigError([f"{origin}: YAML syntax error: {exc}"]) from exc


class _Builder:
    def __init__(self, doc: _Document, env: Mapping[str, str]) -> None:
        self.doc = doc
        self.env = env
        self._scalars = yaml.constructor.SafeConstructor()
        self._open: set[int] = set()  # nodes being built, to catch an alias to its own ancestor

    def build_root(self, root: yaml.Node | None) -> dict | None:
        if root is None:
            return {}
        self.doc.values[""] = _pos(root)
        if isinstance(root, yaml.ScalarNode) and root.tag == "tag:yaml.org,2002:null":
            return {}
        if not isinstance(root, yaml.MappingNode):
            got = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
            self.doc.error("", f"the configuration must be a mapping of sections, got {got}")
            return None
        return self.build(root, "")

    def build(self, node: yaml.Node, path: str) -> Any:
        self.doc.values[path] = _pos(node)
        if id(node) in self._open:
            self.doc.error(path, "an alias refers to its own ancestor (recursive structure)")
            return _BROKEN
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return self._sequence(node, path)
            return self._scalar(node, path)
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: str) -> dict:
        result: dict[str, Any] = {}
        # `<<: *anchor` merges: explicit keys win, and an earlier merged mapping wins over a later one.
        for key_node, value_node in reversed(node.value):
            if key_node.tag == _MERGE_TAG:
                result.update(self._merged(value_node, path))
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.doc.error(path, "a key must be a plain string", pos=_pos(key_node))
                continue
            key = key_node.value  # the text as written: `on:` or `123:` stay strings
            key_path = _join(path, key)
            if key in first_line:
                message = f"duplicate key, first defined on line {first_line[key]}"
                self.doc.error(key_path, message, pos=_pos(key_node))
                continue
            first_line[key] = key_node.start_mark.line + 1
            self.doc.keys[key_path] = _pos(key_node)
            value = self.build(value_node, key_path)
            if value is _BROKEN:
                self.doc.broken.add(key_path)
                result.pop(key, None)
            else:
                result[key] = value
        return result

    def _merged(self, node: yaml.Node, path: str) -> dict:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        own_position = self.doc.values[path]
        result: dict[str, Any] = {}
        for source in reversed(sources):
            if not isinstance(source, yaml.MappingNode):
                self.doc.error(path, "a merge key (<<) takes a mapping or a list of mappings", pos=_pos(source))
                continue
            merged = self.build(source, path)
            if merged is not _BROKEN:
                result.update(merged)
        self.doc.values[path] = own_position  # build() moved it to the merged mapping
        return result

    def _sequence(self, node: yaml.SequenceNode, path: str) -> Any:
        items = [self.build(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        # Dropping just the broken item would renumber the others and misplace later messages.
        return _BROKEN if any(item is _BROKEN for item in items) else items

    def _scalar(self, node: yaml.ScalarNode, path: str) -> Any:
        if node.tag == _STR_TAG:
            value = self._substitute(node.value, path)
            start, end = node.start_mark, node.end_mark
            if start.line == end.line and start.buffer is not None and isinstance(value, str):
                self.doc.strings[path] = (start.buffer[start.pointer:end.pointer], value)
            return value
        try:
            return self._scalars.construct_object(node)
        except yaml.constructor.ConstructorError as exc:
            self.doc.error(path, exc.problem or str(exc))
            return _BROKEN

    def _substitute(self, text: str, path: str) -> Any:
        if "${" not in text:
            return text
        failed = False

        def replace(match: re.Match) -> str:
            nonlocal failed
            escaped, body, closed = match.groups()
            if escaped:
                return match.group(0)[1:]
            reference = _REFERENCE_BODY.fullmatch(body)
            if not closed or not reference:
                failed = True
                self.doc.error(path, f"invalid reference {match.group(0)!r}: write ${{NAME}}, "
                               "${NAME:-default}, or $${ for a literal ${")
                return ""
            name, default = reference.groups()
            value = self.env.get(name)
            if default is not None and not value:
                return default
            if value is None:
                failed = True
                self.doc.error(path, f"environment variable {name} is not set "
                               f"(write ${{{name}:-default}} to give a default)")
                return ""
            return value

        result = _REFERENCE.sub(replace, text)
        return _BROKEN if failed else result


# --- Plain Python to the typed model --------------------------------------------------------------


class _DestinationTypes:
    """The destination configs by ``type:``; from the registry, or from the union a caller gives."""

    def __init__(self, union: object) -> None:
        if union is None:
            self.names = registry.destination_types()
            # Imports only the destination modules the configuration uses.
            self.config: Callable[[str], type] = lambda name: registry.destination_class(name).Config
        else:
            members = {cls.__struct_config__.tag: cls for cls in typing.get_args(union) or (union,)}
            self.names = sorted(members)
            self.config = members.__getitem__


@dataclass
class _Problem:
    """One msgspec.ValidationError, taken apart."""

    kind: str  # "unknown" field, "missing" field, or "other"
    message: str  # without the " - at `$...`" suffix
    at: str  # the msgspec path without the "$", e.g. ".batch.max_events" or ".sources[1]"
    field: str = ""

    in_dict: bool = False  # the error is in a value of a dict at `at`; msgspec does not say which

    @classmethod
    def parse(cls, text: str) -> _Problem:
        message, _, at = text.partition(" - at `$")
        at, dict_value, _ = at.rstrip("`").partition("[...]")
        if match := re.match(r"Object contains unknown field `([^`]*)`", message):
            return cls("unknown", message, at, match.group(1))
        if match := re.match(r"Object missing required field `([^`]*)`", message):
            return cls("missing", message, at, match.group(1))
        return cls("other", message, at, in_dict=bool(dict_value))

    @property
    def segments(self) -> list[str | int]:
        return [name or int(index) for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", self.at)]


class _Typer:
    def __init__(self, doc: _Document, destination_types: _DestinationTypes) -> None:
        self.doc = doc
        self.destination_types = destination_types

    def config(self, tree: dict) -> Config:
        for key in tree:
            if key not in _TOP_LEVEL_KEYS:
                self.doc.error(key, f"unknown field {key}; expected one of: {', '.join(_TOP_LEVEL_KEYS)}",
                               at_key=True)
        sections = {name: self._section(name, tree.get(name), type_) for name, type_ in _SECTIONS.items()}
        plans = {name: self.convert(f"tracking_plans.{name}", entry, TrackingPlanConfig)
                 for name, entry in self._entries(tree, "tracking_plans")}
        sources = {name: self.convert(f"sources.{name}", entry, SourceConfig)
                   for name, entry in self._entries(tree, "sources")}
        destinations = {name: self._destination(name, entry) for name, entry in self._entries(tree, "destinations")}
        return Config(
            **sections,
            tracking_plans={name: value for name, value in plans.items() if value is not None},
            sources={name: value for name, value in sources.items() if value is not None},
            destinations={name: value for name, value in destinations.items() if value is not None},
            origin=self.doc.origin,
        )

    def _section(self, name: str, data: Any, type_: type) -> Any:
        typed = self.convert(name, data, type_)
        # A section in error is replaced by its defaults so that the other checks can still run.
        return type_() if typed is None else typed

    def _entries(self, tree: dict, section: str) -> list[tuple[str, Any]]:
        entries = tree.get(section)
        if entries is None:
            return []
        if not isinstance(entries, dict):
            self.doc.error(section, f"expected a mapping of {section[:-1]} names to their settings, "
                           f"got {_kind(entries)}")
            return []
        for name in entries:
            if not _NAME.fullmatch(name):
                self.doc.error(f"{section}.{name}", f"invalid name {name!r}: use only letters, digits, "
                               "'_' and '-'", at_key=True)
        return list(entries.items())

    def _destination(self, name: str, entry: Any) -> object | None:
        path = f"destinations.{name}"
        if entry is not None and not isinstance(entry, dict):
            self.doc.error(path, f"expected a mapping, got {_kind(entry)}")
            return None
        known = ", ".join(self.destination_types.names)
        type_name = (entry or {}).get("type")
        if type_name is None:
            if f"{path}.type" in self.doc.broken:
                return None  # already reported (an unset environment variable, say)
            self.doc.error(path, f"missing required field type; known destination types: {known}")
            return None
        if type_name not in self.destination_types.names:
            self.doc.error(f"{path}.type", f"unknown destination type {type_name!r}; known types: {known}")
            return None
        config_type = self.destination_types.config(type_name)
        return self.convert(path, _with_type_defaults(config_type, entry), config_type)

    def convert(self, path: str, data: Any, type_: type) -> Any:
        """``data`` as ``type_``, or None once every error in it is reported."""
        data = {} if data is None else copy.deepcopy(data)
        for _ in range(_MAX_ERRORS_PER_SECTION):
            try:
                return msgspec.convert(data, type_, strict=False, dec_hook=decode_hook)
            except msgspec.ValidationError as exc:
                problem = _Problem.parse(str(exc))
            if problem.kind == "missing" and f"{path}{problem.at}.{problem.field}" in self.doc.broken:
                return None  # we left it out ourselves, after reporting why
            self._report(path, type_, data, problem)
            dropped = _drop(data, problem.segments + ([problem.field] if problem.kind == "unknown" else []))
            if dropped is None:
                return None
            self.doc.broken.add(path + dropped)
        return None

    def _report(self, path: str, type_: type, data: Any, problem: _Problem) -> None:
        base = path + problem.at
        if problem.kind == "unknown":
            names = _field_names(_type_at(type_, problem.segments))
            message = f"unknown field {problem.field}{_did_you_mean(problem.field, names)}"
            self.doc.error(_join(base, problem.field), message, at_key=True)
        elif problem.kind == "missing":
            self.doc.error(base, f"missing required field {problem.field}")
        else:
            self.doc.error(base, self._explain(problem, type_, data))

    def _explain(self, problem: _Problem, type_: type, data: Any) -> str:
        # "Expected `object`, got `str`" -> "expected mapping, got str"
        words = {"object": "mapping", "array": "list"}
        message = re.sub(r"`([^`]*)`", lambda m: words.get(m.group(1), m.group(1)), problem.message)
        message = message[:1].lower() + message[1:]
        if problem.in_dict:
            return message + " (in one of its values)"
        value = _lookup(data, problem.segments)
        if message.startswith("expected") and value is not _BROKEN:
            # Show the value itself: "got '10'" says more than "got str".
            message = message.partition(", got")[0] + f", got {value!r}"
        if message.startswith("invalid enum value"):
            message = message.replace("invalid enum value", "invalid value", 1)
            choices = _choices(_type_at(type_, problem.segments))
            if choices:
                message += f"; expected one of: {', '.join(map(str, choices))}"
        return message


def _with_type_defaults(config_type: type, entry: dict) -> dict:
    """A destination type may have batch and retry defaults of its own (Mixpanel sends 2,000
    events a request): ``batch: {max_wait: 2s}`` in the file changes that key only, and the others
    stay the type's, not the generic defaults."""
    merged = entry
    for field in msgspec.structs.fields(config_type):
        written = entry.get(field.name)
        if not isinstance(written, dict) or field.default_factory is msgspec.NODEFAULT:
            continue
        default = field.default_factory()
        if isinstance(default, msgspec.Struct):
            # ByteSize and Duration are int and float subclasses: plain numbers decode back to them.
            defaults = {k: v if type(v) in (int, float, str, bool) or v is None else
                        int(v) if isinstance(v, int) else float(v) if isinstance(v, float) else v
                        for k, v in msgspec.structs.asdict(default).items()}
            merged = {**merged, field.name: {**defaults, **written}}
    return merged


def _drop(data: Any, segments: list[str | int]) -> str | None:
    """Removes the innermost mapping key on the path; returns its path, or None if there is none."""
    node, path = data, ""
    found: tuple[dict, str, str] | None = None
    for segment in segments:
        if isinstance(segment, str) and isinstance(node, dict) and segment in node:
            path += f".{segment}"
            found = (node, segment, path)
        elif isinstance(segment, int) and isinstance(node, list) and segment < len(node):
            path += f"[{segment}]"
        else:
            break
        node = node[segment]
    if found is None:
        return None
    container, key, key_path = found
    del container[key]
    return key_path


def _lookup(data: Any, segments: list[str | int]) -> Any:
    for segment in segments:
        try:
            data = data[segment]
        except (KeyError, IndexError, TypeError):
            return _BROKEN
    return data


def _type_at(type_: type, segments: list[str | int]) -> mi.Type | None:
    info: mi.Type | None = mi.type_info(type_)
    for segment in segments:
        info = _child_type(info, segment)
    return info


def _child_type(info: mi.Type | None, segment: str | int) -> mi.Type | None:
    if isinstance(info, mi.UnionType):  # e.g. `BatchConfig | None`
        found = (_child_type(member, segment) for member in info.types)
        return next((child for child in found if child is not None), None)
    if isinstance(info, mi.StructType) and isinstance(segment, str):
        return next((f.type for f in info.fields if f.encode_name == segment), None)
    if isinstance(info, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)) and isinstance(segment, int):
        return info.item_type
    return None


def _field_names(info: mi.Type | None) -> list[str]:
    members = info.types if isinstance(info, mi.UnionType) else (info,)
    return [f.encode_name for member in members if isinstance(member, mi.StructType) for f in member.fields]


def _choices(info: mi.Type | None) -> tuple:
    members = info.types if isinstance(info, mi.UnionType) else (info,)
    return next((member.values for member in members if isinstance(member, mi.LiteralType)), ())


# --- Checks that need more than one value ---------------------------------------------------------


def _check(doc: _Document, config: Config, tree: dict) -> None:
    _check_listen(doc, config.server.listen)
    _check_public_url(doc, config.server.public_url)
    _check_trusted_proxies(doc, config.server.trusted_proxies)
    _check_write_keys(doc, config.sources)
    _check_official_bundle(doc, config.browser.official_bundle_dir)
    # Names from the file, not from the typed sources: a source that failed to type still exists.
    source_names = list(tree["sources"]) if isinstance(tree.get("sources"), dict) else []
    for name, destination in config.destinations.items():
        _check_destination_sources(doc, name, getattr(destination, "sources", None), source_names)
        _check_destination_settings(doc, name, destination, tree)
    _check_filters(doc, config, tree)


_LISTEN = re.compile(r"(?:\[(?P<ipv6>[^\]]*)\]|(?P<host>[^:\[\]]+)):(?P<port>\d+)")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")


def _check_listen(doc: _Document, listen: str) -> None:
    path = "server.listen"
    match = _LISTEN.fullmatch(listen)
    if not match:
        hint = " (write an IPv6 address in brackets, e.g. [::1]:8088)" if listen.count(":") > 1 else ""
        doc.error(path, f"expected HOST:PORT such as 127.0.0.1:8088, got {listen!r}{hint}")
        return
    if match["ipv6"] is not None:
        try:
            ipaddress.IPv6Address(match["ipv6"])
        except ValueError:
            doc.error(path, f"{match['ipv6']!r} is not an IPv6 address")
    elif not _HOSTNAME.fullmatch(match["host"]):
        doc.error(path, f"{match['host']!r} is not a host name or IP address")
    # Port 0 is allowed: the system picks a free port (handy in tests).
    if int(match["port"]) > 65535:
        doc.error(path, f"port {int(match['port'])} is out of range (0-65535)")


def _check_public_url(doc: _Document, url: str | None) -> None:
    if url is None:
        return
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number or out of range
    except ValueError:
        parts = None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
            or parts.path not in ("", "/") or parts.query or parts.fragment or parts.username):
        doc.error("server.public_url", "expected an http(s) URL with no path, such as "
                  f"https://data.example.com, got {url!r}")


def _check_trusted_proxies(doc: _Document, proxies: list[str]) -> None:
    for i, proxy in enumerate(proxies):
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            doc.error(f"server.trusted_proxies[{i}]", f"expected an IP address or CIDR such as 10.0.0.0/8, "
                      f"got {proxy!r}")


def _check_official_bundle(doc: _Document, directory: str | None) -> None:
    if directory is not None and not os.path.isfile(os.path.join(directory, "standalone.js")):
        doc.error("browser.official_bundle_dir", f"{directory} has no standalone.js (expected the dist/umd "
                  "directory of @segment/analytics-next)")


def _check_write_keys(doc: _Document, sources: dict[str, SourceConfig]) -> None:
    owner: dict[str, str] = {}
    for name, source in sources.items():
        first = owner.setdefault(source.write_key, name)
        if first != name:
            line = doc.where(f"sources.{first}.write_key")[0]
            doc.error(f"sources.{name}.write_key", f"write key already used by source {first} (line {line})")


def _check_filters(doc: _Document, config: Config, tree: dict) -> None:
    """Tracking plans' schemas, the sources' plan names and PII rules (collector/filters/check.py)."""
    plan_names = list(tree["tracking_plans"]) if isinstance(tree.get("tracking_plans"), dict) else []
    problems = [p for name, plan in config.tracking_plans.items()
                for p in filter_checks.check_plan(f"tracking_plans.{name}", plan)]
    problems += [p for name, source in config.sources.items()
                 for p in filter_checks.check_source(f"sources.{name}", source, plan_names)]
    for problem in problems:
        doc.error(problem.path, problem.message, at_key=problem.at_key)


def _check_destination_settings(doc: _Document, name: str, destination: Any, tree: dict) -> None:
    """Destination filters, mappings and triggers, compiled here once (the destination reuses them)."""
    for problem in settings_problems(destination):
        path = f"destinations.{name}.{dotted(problem.path)}" if problem.path else f"destinations.{name}"
        pos = None
        if problem.column is not None:
            value = _lookup(tree, ["destinations", name, *problem.path])
            if isinstance(value, str):
                pos = doc.inside(path, value, problem.column)
        doc.error(path, problem.message, at_key=problem.at_key, pos=pos)


def _check_destination_sources(doc: _Document, name: str, sources: list[str] | None, known: list[str]) -> None:
    for i, source in enumerate(sources or []):
        if source not in known:
            listed = f"known sources: {', '.join(known)}" if known else "no sources are configured"
            doc.error(f"destinations.{name}.sources[{i}]", f"unknown source {source!r}; {listed}")
