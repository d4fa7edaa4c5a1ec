"""The catalogue: `collector destinations [TYPE]` and the README's table, from the definitions."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from collector import cli
from collector.config.loader import load_config_text
from collector.destinations import registry
from collector.destinations.actions import catalogue
from collector.destinations.actions.subscriptions import compiled_subscriptions

from .toy import Toy, ToySettings

README = Path(__file__).resolve().parents[3] / "README.md"


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "toy", "tests.destinations.actions.toy.Toy")


def every_type() -> list[str]:
    return registry.destination_types()


def test_one_line_per_type_saying_which_are_action_destinations(toy_registered):
    lines = catalogue.summary_lines()
    assert [line.split()[0] for line in lines] == every_type()
    toy = next(line for line in lines if line.startswith("toy "))
    assert "Toy" in toy and "actions: track, add_to_list, page" in toy
    assert "Sends events to the Toy API" in toy
    webhook = next(line for line in lines if line.startswith("webhook "))
    assert "Webhooks" in webhook and "forwards events as stored" in webhook


def test_a_description_lists_settings_actions_fields_and_presets(toy_registered):
    text = catalogue.describe("toy")
    comments = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert re.search(r"api_key\s+string\s+required, secret", comments)
    assert re.search(r"region\s+eu \| us\s+default: us", comments)
    assert re.search(r"email\s+string\s+required, hashed \(email\)\s+The e-mail, hashed", comments)
    assert "add_to_list: Add to a list. Add the user's e-mail to a Toy list. (up to 100 events a request, " \
           "batched by list_id)" in comments
    assert 'Audience Entered: add_to_list when type = "track" and event = "Audience Entered"' in comments
    assert "mappings" not in re.findall(r"^#\s+(\w+)\s", comments, re.M)  # common settings are not listed as its own


def environment_for(text: str, monkeypatch) -> None:
    for name in re.findall(r"\$\{([A-Z0-9_]+)\}", text):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")


@pytest.mark.parametrize("type_name", [*registry.destination_types(), "toy"])
def test_the_printed_block_is_valid_yaml_and_a_valid_config(type_name, toy_registered, monkeypatch):
    text = catalogue.describe(type_name)
    data = yaml.safe_load(text)
    assert list(data["destinations"]) == [type_name]
    environment_for(text, monkeypatch)
    config = load_config_text(text, f"{type_name}.yaml")
    assert type(config.destinations[type_name]) is registry.destination_class(type_name).Config


def test_the_printed_mappings_are_the_presets(toy_registered, monkeypatch):
    text = catalogue.describe("toy")
    environment_for(text, monkeypatch)
    printed = load_config_text(text).destinations["toy"]
    built_in = ToySettings(api_key="k")
    assert [(s.name, s.action.name, s.trigger) for s in compiled_subscriptions(printed)] == \
        [(s.name, s.action.name, s.trigger) for s in compiled_subscriptions(built_in)]
    event = {"type": "track", "event": "E", "userId": "u", "messageId": "m", "properties": {"email": "A@b.c"}}
    assert compiled_subscriptions(printed)[0].prepare(event) == compiled_subscriptions(built_in)[0].prepare(event)


def test_secrets_are_printed_as_placeholders_even_when_the_example_has_a_value(toy_registered, monkeypatch):
    monkeypatch.setattr(ToySettings, "example", {"type": "toy", "api_key": "abc123", "region": "us"})
    block = yaml.safe_load(catalogue.describe("toy"))["destinations"]["toy"]
    assert block["api_key"] == "${TOY_API_KEY}"
    assert block["region"] == "us"


def test_the_readme_table_is_generated_from_the_definitions():
    assert not catalogue.update_readme(README, check=True), (
        "README.md's destination table is stale: run python -m collector.destinations.actions.catalogue --readme")


def test_the_readme_table_names_every_type_with_its_settings(toy_registered):
    table = catalogue.readme_table()
    rows = [line for line in table.splitlines()[2:]]
    assert [row.split("`")[1] for row in rows] == every_type()
    toy = next(row for row in rows if row.startswith("| `toy`"))
    assert "`api_key`, `region`" in toy and "Actions: `track`, `add_to_list`, `page`" in toy
    assert "Track Calls" in toy


def test_update_readme_rewrites_only_the_block(tmp_path, toy_registered):
    copy = tmp_path / "README.md"
    shutil.copy(README, copy)
    before = copy.read_text()
    assert catalogue.update_readme(copy, check=True)  # toy is registered now: the table is stale
    assert copy.read_text() == before  # --check changes nothing
    assert catalogue.update_readme(copy)
    after = copy.read_text()
    assert "| `toy` | `Toy` |" in after
    start, end = after.index(catalogue.README_BEGIN), after.index(catalogue.README_END)
    assert after[:start] == before[:before.index(catalogue.README_BEGIN)]
    assert after[end:] == before[before.index(catalogue.README_END):]
    assert not catalogue.update_readme(copy, check=True)


def test_the_command_lists_describes_and_refuses_unknown_types(toy_registered, capsys):
    assert cli.main(["destinations"]) == 0
    assert capsys.readouterr().out.splitlines() == catalogue.summary_lines()
    assert cli.main(["destinations", "toy"]) == 0
    assert capsys.readouterr().out == catalogue.describe("toy")
    assert cli.main(["destinations", "tyo"]) == 1
    assert "did you mean toy?" in capsys.readouterr().err


def test_the_toy_is_registered_for_these_tests_only():
    assert "toy" not in registry.destination_types()
    assert Toy.Config is ToySettings
