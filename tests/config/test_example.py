"""config.example.yaml is the configuration reference: it must load, and document every key."""

from pathlib import Path

import msgspec
import yaml

from collector.config.loader import load_config
from collector.config.model import Config, SourceConfig
from collector.destinations.base import DestinationConfig
from collector.destinations.registry import destination_class, destination_types
from collector.filters.config import PiiRuleConfig, TrackingPlanConfig

EXAMPLE = Path(__file__).parents[2] / "config.example.yaml"


def struct_paths(struct_type: type, prefix: str = "") -> set[str]:
    paths = set()
    for field in msgspec.structs.fields(struct_type):
        if field.name in ("origin", "example"):
            continue
        path = f"{prefix}{field.name}"
        paths.add(path)
        inner = field.type
        if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
            paths |= struct_paths(inner, path + ".")
    return paths


def yaml_paths(data: object, prefix: str = "") -> set[str]:
    paths = set()
    if isinstance(data, dict):
        for key, value in data.items():
            paths.add(f"{prefix}{key}")
            paths |= yaml_paths(value, f"{prefix}{key}.")
    return paths


def test_the_example_loads():
    config = load_config(EXAMPLE)
    assert config.sources and config.destinations


def test_every_setting_is_documented_in_the_example():
    data = yaml.safe_load(EXAMPLE.read_text())
    documented = yaml_paths(data)
    wanted = {p for p in struct_paths(Config) if not p.startswith(("sources", "destinations"))}
    assert not wanted - documented, f"undocumented settings: {sorted(wanted - documented)}"

    source_keys = set().union(*(yaml_paths(s) for s in data["sources"].values()))
    assert not struct_paths(SourceConfig) - source_keys


def test_every_filter_setting_is_documented_in_the_example():
    data = yaml.safe_load(EXAMPLE.read_text())
    plan_keys = set().union(*(yaml_paths(plan) for plan in data["tracking_plans"].values()))
    assert not struct_paths(TrackingPlanConfig) - plan_keys
    rules = [rule for source in data["sources"].values() for rule in source.get("pii") or []]
    rule_keys = set().union(*(yaml_paths(rule) for rule in rules))
    assert not struct_paths(PiiRuleConfig) - rule_keys, sorted(struct_paths(PiiRuleConfig) - rule_keys)


def test_every_destination_setting_is_documented_in_the_example():
    destinations = yaml.safe_load(EXAMPLE.read_text())["destinations"].values()
    # The keys every destination has are documented once, on any destination ...
    anywhere = set().union(*(yaml_paths(entry) for entry in destinations))
    assert not struct_paths(DestinationConfig) - anywhere
    # ... each type's own keys on a destination of that type.
    for type_name in destination_types():
        entries = [d for d in destinations if d["type"] == type_name]
        assert entries, f"config.example.yaml has no destination of type {type_name}"
        keys = set().union(*(yaml_paths(entry) for entry in entries))
        own = struct_paths(destination_class(type_name).Config) - struct_paths(DestinationConfig)
        assert not own - keys, f"{type_name}: undocumented settings {sorted(own - keys)}"
