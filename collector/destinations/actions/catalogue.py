"""The catalogue of destination types, printed from their own definitions.

- ``collector destinations``: one line per registered type.
- ``collector destinations TYPE``: its settings, actions (fields) and presets, then a config block
  ready to paste (``${VAR}`` for secrets), in which the presets are written out as mappings.
- ``python -m collector.destinations.actions.catalogue --readme [README.md]`` rewrites the
  README's table between ``<!-- destinations:begin -->`` and ``<!-- destinations:end -->``;
  ``--check`` exits 1 when it is out of date (tests/destinations/actions/test_catalogue.py too).
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import sys
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import yaml

from collector.config.units import ByteSize, Duration
from collector.destinations import registry
from collector.destinations.actions.destination import ActionDestination, ActionSettings
from collector.destinations.actions.fields import default_mapping
from collector.destinations.base import Destination, DestinationConfig

__all__ = ["describe", "readme_table", "summary_lines", "update_readme"]

README_BEGIN = "<!-- destinations:begin -->"
README_END = "<!-- destinations:end -->"
_README = Path(__file__).resolve().parents[3] / "README.md"
_COMMON = {f.name for f in msgspec.structs.fields(DestinationConfig)}
_COMMON_ACTIONS = {f.name for f in msgspec.structs.fields(ActionSettings)} - _COMMON


# --- One line per type -----------------------------------------------------------------------------


def summary_lines() -> list[str]:
    rows = []
    for type_name in registry.destination_types():
        cls = registry.destination_class(type_name)
        if issubclass(cls, ActionDestination):
            kind = f"actions: {', '.join(a.name for a in cls.actions)}"
        else:
            kind = "forwards events as stored"
        rows.append((type_name, cls.display_name, kind, what_it_does(cls)))
    width = max((len(r[0]) for r in rows), default=0)
    named = max((len(r[1]) for r in rows), default=0)
    return [f"{t:<{width}}  {name:<{named}}  {does} ({kind})" for t, name, kind, does in rows]


def what_it_does(cls: type[Destination]) -> str:
    """The first sentence of the destination's docstring (its class's, else its module's)."""
    text = inspect.getdoc(cls) if cls.__doc__ else inspect.getdoc(sys.modules[cls.__module__])
    first = " ".join((text or "").split("\n\n")[0].split())
    return first.split(". ")[0].rstrip(".") + "." if first else ""


# --- One type in full ------------------------------------------------------------------------------


def describe(type_name: str) -> str:
    """The settings, actions and presets of a type, as comments, then a working config block."""
    cls = registry.destination_class(type_name)
    lines = [f"{cls.display_name} (type: {type_name}): {what_it_does(cls)}", ""]
    lines += ["Settings (those every destination has are in config.example.yaml: enabled, sources,",
              "concurrency, timeout, batch, retry, filters ...):"]
    lines += _settings_table(cls.Config)
    if issubclass(cls, ActionDestination):
        lines += ["", "Settings of every action destination: " + ", ".join(sorted(_COMMON_ACTIONS)) + ".",
                  "", "Actions:"]
        for action in cls.actions:
            size = f"up to {action.batch_size} events a request" if action.batch_size else "one event a request"
            keys = f", batched by {', '.join(action.batch_keys)}" if action.batch_keys else ""
            lines.append(f"  {action.name}: {action.title}. {action.description} ({size}{keys})")
            lines += _fields_table(action.fields, "    ")
        lines += ["", "Presets (below as mappings: edit them, or delete them to keep the built-in ones;",
                  "`presets: false` turns every preset off):"]
        lines += [f"  {preset.name}: {preset.action} when {preset.trigger}" for preset in cls.presets]
    lines += ["", "Paste the block under `destinations:` (it is a whole config as it stands):"]
    header = "\n".join(f"# {line}".rstrip() for line in lines)
    block = {"destinations": {type_name: example_settings(cls)}}
    return header + "\n" + yaml.dump(block, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


class _Dumper(yaml.SafeDumper):
    """Block style, but a small mapping of scalars (a directive, batch settings) on one line; no
    anchors and aliases (&id001) where two presets share a value: the output is pasted by hand."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_dict(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
    flat = len(data) <= 3 and all(not isinstance(v, (dict, list)) for v in data.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flat)


_Dumper.add_representer(dict, _represent_dict)


def example_settings(cls: type[Destination]) -> dict[str, Any]:
    """The type's example with ``${VAR}`` for every secret and, for an action destination, its
    presets written out as mappings."""
    example = _placeholders(dict(cls.Config.example), mi.type_info(cls.Config), cls.Config.__struct_config__.tag)
    if issubclass(cls, ActionDestination):
        own = list(example.get("mappings") or [])
        named = {m.get("name") for m in own}
        presets = [_preset_mapping(cls, preset) for preset in cls.presets if preset.name not in named]
        if presets or own:
            example["mappings"] = presets + own
    return example


def _preset_mapping(cls: type[ActionDestination], preset: Any) -> dict[str, Any]:
    action = next(a for a in cls.actions if a.name == preset.action)
    fields = dict(preset.mapping) if preset.mapping is not None else default_mapping(action.fields)
    return {"name": preset.name, "action": preset.action, "trigger": preset.trigger, "fields": fields}


def _placeholders(example: dict[str, Any], info: Any, prefix: str) -> dict[str, Any]:
    fields = {f.encode_name: f.type for f in info.fields} if isinstance(info, mi.StructType) else {}
    result = {}
    for key, value in example.items():
        kind = fields.get(key)
        if _is_secret(kind) and not (isinstance(value, str) and value.startswith("${")):
            value = "${" + f"{prefix}_{key}".upper().replace("-", "_") + "}"
        elif isinstance(value, dict):
            value = _placeholders(value, _struct_in(kind), f"{prefix}_{key}")
        result[key] = value
    return result


def _is_secret(info: Any) -> bool:
    if isinstance(info, mi.Metadata):
        return bool((info.extra or {}).get("secret"))
    if isinstance(info, mi.UnionType):
        return any(_is_secret(member) for member in info.types)
    return False


def _struct_in(info: Any) -> Any:
    if isinstance(info, mi.Metadata):
        return _struct_in(info.type)
    if isinstance(info, mi.UnionType):
        return next((m for m in map(_struct_in, info.types) if m is not None), None)
    return info if isinstance(info, mi.StructType) else None


def own_settings(config: type[DestinationConfig]) -> list[Any]:
    """The fields of a type's settings beyond those every destination (or action destination) has."""
    common = _COMMON | (_COMMON_ACTIONS if issubclass(config, ActionSettings) else set())
    return [field for field in mi.type_info(config).fields if field.name not in common]


def _settings_table(config: type[DestinationConfig]) -> list[str]:
    rows = []
    for field in own_settings(config):
        notes = ["required" if field.required else f"default: {_default(field)}"]
        if _is_secret(field.type):
            notes.append("secret")
        description = _description(field.type)
        rows.append((field.encode_name, _type_name(field.type), ", ".join(notes), description))
    return _columns(rows, "  ") or ["  (none)"]


def _fields_table(fields: Any, indent: str) -> list[str]:
    return _columns(_field_rows(fields, ""), indent)


def _field_rows(fields: Any, prefix: str) -> list[tuple[str, ...]]:
    rows = []
    for name, field in fields.items():
        kind = f"list of {field.type}" if field.multiple else field.type
        notes = [word for word, on in (("required", field.required), ("null allowed", field.allow_null)) if on]
        if field.hashed:
            notes.append(f"hashed ({field.hashed})")
        if field.choices:
            notes.append("one of " + "|".join(map(str, field.choices)))
        rows.append((prefix + name, kind, ", ".join(notes), field.description))
        if field.properties:
            rows += _field_rows(field.properties, f"{prefix}{name}.")
    return rows


def _columns(rows: list[tuple[str, ...]], indent: str) -> list[str]:
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [(indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]).rstrip()
            for row in rows]


def _default(field: Any) -> str:
    value = field.default
    if value is msgspec.NODEFAULT and field.default_factory is not msgspec.NODEFAULT:
        value = field.default_factory()
    if isinstance(value, Duration):
        return f"{value:g}s"
    if isinstance(value, ByteSize):
        return str(int(value))
    return yaml.safe_dump(msgspec.to_builtins(value), default_flow_style=True, width=1000).strip().removesuffix("...").strip()


def _description(info: Any) -> str:
    if isinstance(info, mi.Metadata):
        return (info.extra_json_schema or {}).get("description", "") or _description(info.type)
    if isinstance(info, mi.UnionType):
        return next((d for d in map(_description, info.types) if d), "")
    return ""


def _type_name(info: Any) -> str:
    if isinstance(info, mi.Metadata):
        return _type_name(info.type)
    if isinstance(info, mi.UnionType):
        names = [_type_name(t) for t in info.types if not isinstance(t, mi.NoneType)]
        return " | ".join(names) + (" | null" if len(names) < len(info.types) else "")
    if isinstance(info, mi.LiteralType):
        return " | ".join(map(str, info.values))
    if isinstance(info, (mi.ListType, mi.VarTupleType)):
        return f"list of {_type_name(info.item_type)}"
    if isinstance(info, mi.DictType):
        return f"mapping of {_type_name(info.value_type)}"
    if isinstance(info, mi.StructType):
        return "{" + ", ".join(f.encode_name for f in info.fields) + "}"
    if isinstance(info, mi.CustomType):
        return {"Duration": "duration", "ByteSize": "size"}.get(info.cls.__name__, info.cls.__name__)
    names = {mi.StrType: "string", mi.IntType: "integer", mi.FloatType: "number", mi.BoolType: "boolean",
             mi.AnyType: "any"}
    return names.get(type(info), type(info).__name__.removesuffix("Type").lower())


def unknown_type_message(type_name: str) -> str:
    known = registry.destination_types()
    matches = difflib.get_close_matches(type_name, known, n=1)
    hint = f" (did you mean {matches[0]}?)" if matches else ""
    return f"no destination type {type_name!r}{hint}; known types: {', '.join(known)}"


# --- The README's table ----------------------------------------------------------------------------


def readme_table() -> str:
    lines = ["| type | integration name | what it does | settings of its own |", "|---|---|---|---|"]
    for type_name in registry.destination_types():
        cls = registry.destination_class(type_name)
        own = [field.encode_name for field in own_settings(cls.Config)]
        does = what_it_does(cls)
        if issubclass(cls, ActionDestination):
            does += " Actions: " + ", ".join(f"`{a.name}`" for a in cls.actions)
            if cls.presets:
                does += "; presets: " + ", ".join(p.name for p in cls.presets)
            does += "."
        settings = ", ".join(f"`{name}`" for name in own) or "none"
        lines.append(f"| `{type_name}` | `{cls.display_name}` | {does} | {settings} |")
    return "\n".join(lines)


def update_readme(path: Path = _README, check: bool = False) -> bool:
    """Rewrite the README's generated block; return whether it was (or, with check, would be) changed."""
    text = path.read_text(encoding="utf-8")
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"{path}: no {README_BEGIN} ... {README_END} block")
    updated = text[:begin + len(README_BEGIN)] + "\n" + readme_table() + "\n" + text[end:]
    if updated == text:
        return False
    if not check:
        path.write_text(updated, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collector.destinations.actions.catalogue")
    parser.add_argument("--readme", nargs="?", const=str(_README), help="rewrite the README's destination table")
    parser.add_argument("--check", action="store_true", help="with --readme: exit 1 if it is out of date")
    parser.add_argument("type", nargs="?", help="describe one destination type")
    args = parser.parse_args(argv)
    if args.readme:
        changed = update_readme(Path(args.readme), check=args.check)
        if args.check and changed:
            print(f"{args.readme}: the destination table is out of date; run without --check", file=sys.stderr)
            return 1
        return 0
    if args.type:
        if args.type not in registry.destination_types():
            print(unknown_type_message(args.type), file=sys.stderr)
            return 1
        print(describe(args.type), end="")
        return 0
    print("\n".join(summary_lines()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
