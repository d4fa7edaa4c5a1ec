"""The mqtt destination's settings, as the config loader reads them."""

from __future__ import annotations

from tests.destinations.stream_checks import config_errors

GOOD = 'type: mqtt\nurl: mqtt://m1:1883\ntopic: "events/{source}/{type}"'


def test_good_settings() -> None:
    assert config_errors(GOOD) == []
    assert config_errors(f"{GOOD}\nqos: 2\nprotocol: '3.1.1'") == []
    assert config_errors('type: mqtt\nurl: wss://m1/mqtt\ntopic: "e/{type}"') == []


def test_a_topic_template_with_wildcards_is_an_error_at_the_destination() -> None:
    assert config_errors('type: mqtt\nurl: mqtt://m1\ntopic: "events/+/{type}"') == [
        "collector.yaml:5:5: destinations.out: topic: an MQTT topic to publish to has no wildcards ('+', '#') "
        "and no NUL: 'events/+/{type}'"]
    assert config_errors('type: mqtt\nurl: mqtt://m1\ntopic: "$SYS/{type}"') == [
        "collector.yaml:5:5: destinations.out: topic: MQTT topics starting with '$' are the broker's own: "
        "'$SYS/{type}'"]


def test_the_url_is_an_mqtt_url() -> None:
    assert config_errors("type: mqtt\nurl: tcp://m1:1883\ntopic: t") == [
        "collector.yaml:5:5: destinations.out: url must be mqtt://, mqtts://, ws:// or wss:// with a host, "
        "got 'tcp://m1:1883'"]
    assert config_errors("type: mqtt\nurl: mqtt://m1:99999\ntopic: t") == [
        "collector.yaml:5:5: destinations.out: url: Port out of range 0-65535"]


def test_qos_0_is_not_offered() -> None:
    # QoS 0 has no acknowledgement: an event could not be known to be delivered.
    assert config_errors(f"{GOOD}\nqos: 0") == [
        "collector.yaml:8:10: destinations.out.qos: invalid value 0; expected one of: 1, 2"]
