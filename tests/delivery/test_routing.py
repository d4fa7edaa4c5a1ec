import msgspec
import pytest

from collector.delivery.routing import consent_allows, integrations_allow, should_deliver
from collector.destinations.base import DestinationConfig, RoutingFields


class Config(DestinationConfig, tag="routing-test", kw_only=True):
    pass


def fields(**event) -> RoutingFields:
    return msgspec.json.decode(msgspec.json.encode(event), type=RoutingFields)


@pytest.mark.parametrize(
    "integrations, expected",
    [
        (None, True),
        ({}, True),
        ({"All": True}, True),
        ({"All": False}, False),
        ({"All": False, "Webhooks": True}, True),
        ({"All": False, "Webhooks": {"option": 1}}, True),
        ({"Webhooks": False}, False),
        ({"All": True, "Webhooks": False}, False),
        ({"webhooks": False}, True),  # names are case-sensitive
        ({"All": False, "Other": True}, False),
    ],
)
def test_integrations_object(integrations, expected):
    assert integrations_allow(fields(integrations=integrations), "Webhooks") is expected


@pytest.mark.parametrize(
    "consent, categories, expected",
    [
        (None, ["ads"], True),  # no consent object: no enforcement
        ({"categoryPreferences": {"ads": True}}, ["ads"], True),
        ({"categoryPreferences": {"ads": False}}, ["ads"], False),
        ({"categoryPreferences": {}}, ["ads"], False),  # empty preferences: everything denied
        ({"categoryPreferences": {"ads": True, "analytics": False}}, ["ads", "analytics"], False),
        ({"categoryPreferences": {"ads": True, "analytics": True}}, ["ads", "analytics"], True),
        ({"categoryPreferences": {"ads": False}}, [], True),  # unmapped destinations always receive
    ],
)
def test_consent(consent, categories, expected):
    context = {"consent": consent} if consent is not None else {}
    assert consent_allows(fields(context=context), categories) is expected


def test_sources_restrict_a_destination():
    config = Config(sources=["web"])
    assert should_deliver(fields(), "web", config, "X")
    assert not should_deliver(fields(), "app", config, "X")
    assert should_deliver(fields(), "app", Config(), "X")


def test_consent_and_integrations_both_apply():
    config = Config(consent_categories=["ads"])
    granted = {"consent": {"categoryPreferences": {"ads": True}}}
    assert should_deliver(fields(context=granted), "web", config, "X")
    assert not should_deliver(fields(context=granted, integrations={"X": False}), "web", config, "X")
    assert not should_deliver(fields(context={"consent": {"categoryPreferences": {"ads": False}}},
                                     integrations={"X": True}), "web", config, "X")
