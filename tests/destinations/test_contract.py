"""The contract every registered destination keeps, checked against a local fake of its vendor.

Like Vector's ``run_and_assert_sink_compliance``: a destination added to the registry is covered
here automatically, and fails here until tests/destinations/fakes.py has a fake for it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import pytest

from collector.destinations.base import Destination, DestinationConfig
from collector.destinations.registry import destination_class, destination_types

from .fakes import FAKES, build, client_session, envelopes, parse, started

TYPES = destination_types()


def _fake(type_name: str) -> Any:
    if type_name not in FAKES:
        pytest.fail(f"destination type {type_name!r} has no fake: add one to FAKES in "
                    "tests/destinations/fakes.py")
    return FAKES[type_name]


def _error_cases() -> list[Any]:
    params = []
    for t in TYPES:
        cases = FAKES[t].error_cases if t in FAKES else [None]
        params += [pytest.param(t, c, id=f"{t}-{c.name if c else 'no fake'}") for c in cases]
    return params


@pytest.mark.parametrize("type_name", TYPES)
def test_has_a_fake_with_error_cases(type_name: str) -> None:
    fake = _fake(type_name)
    assert any(c.kind == "retry" for c in fake.error_cases), f"{fake.__name__} has no retryable error case"


def test_fakes_are_for_registered_types_only() -> None:
    assert set(FAKES) <= set(TYPES)


@pytest.mark.parametrize("type_name", TYPES)
def test_declares_config_example_and_name(type_name: str) -> None:
    cls = destination_class(type_name)
    assert issubclass(cls, Destination)
    assert issubclass(cls.Config, DestinationConfig)
    assert cls.Config.__struct_config__.tag == type_name
    assert isinstance(cls.display_name, str) and cls.display_name.strip()
    assert isinstance(cls.Config.example, dict) and cls.Config.example["type"] == type_name
    assert cls.send is not Destination.send


@pytest.mark.parametrize("type_name", TYPES)
def test_example_config_parses_into_the_union(type_name: str) -> None:
    cls = destination_class(type_name)
    config = parse(cls.Config.example)
    assert type(config) is cls.Config


@pytest.mark.parametrize("type_name", TYPES)
def test_unknown_setting_is_an_error(type_name: str) -> None:
    example = destination_class(type_name).Config.example
    with pytest.raises(msgspec.ValidationError, match="nonsense_key"):
        parse({**example, "nonsense_key": 1})


@pytest.mark.parametrize("type_name", TYPES)
async def test_builds_without_network_or_side_effects(
    type_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with client_session() as (http, requests):
        destination = build(destination_class(type_name).Config.example, http, tmp_path / "data")
        assert destination.integration_name == destination.display_name
        await asyncio.sleep(0.05)  # give anything the constructor scheduled a chance to run
        assert requests == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("type_name", TYPES)
async def test_sends_a_batch_to_its_fake(type_name: str, tmp_path: Path) -> None:
    batch = envelopes()
    assert [e.routing.type for e in batch] == ["track", "identify", "page"]
    async with _fake(type_name)(tmp_path) as fake, client_session() as (http, requests):
        settings = fake.point(destination_class(type_name).Config.example)
        async with started(build(settings, http, tmp_path / "data")) as destination:
            outcome = await destination.send(batch)
        # Every event handled: delivered, or (a vendor with no use for it) passed as unmatched.
        answers = outcome.per_event if outcome.kind == "mixed" else (outcome,) * len(batch)
        assert all(a.kind in ("ok", "skip") for a in answers) and any(a.ok for a in answers), outcome
        fake.assert_delivered(batch)


@pytest.mark.parametrize(("type_name", "case"), _error_cases())
async def test_classifies_vendor_errors(type_name: str, case: Any, tmp_path: Path) -> None:
    async with _fake(type_name)(tmp_path) as fake, client_session() as (http, _):
        case.arrange(fake)
        settings = fake.point(destination_class(type_name).Config.example)
        async with started(build(settings, http, tmp_path / "data")) as destination:
            outcome = await destination.send(envelopes())
    assert (outcome.kind, outcome.retry_after) == (case.kind, case.retry_after), outcome
    assert case.reason in outcome.reason, outcome
