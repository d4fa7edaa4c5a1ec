"""The nats destination's settings, as the config loader reads them."""

from __future__ import annotations

from collector.config.loader import load_config_text
from tests.destinations.stream_checks import config_errors

GOOD = 'type: nats\nurl: nats://n1:4222, nats://n2:4222\nsubject: "events.{type}.{source}"'


def test_good_settings_and_several_servers() -> None:
    assert config_errors(GOOD) == []
    text = "destinations:\n  out:\n" + "".join(f"    {line}\n" for line in GOOD.splitlines())
    config = load_config_text(text).destinations["out"]
    assert config.servers() == ["nats://n1:4222", "nats://n2:4222"]
    assert (config.stream, config.ack_timeout, config.ack_wait()) == (None, None, 20)  # 2/3 of timeout


def test_a_subject_template_nats_could_not_take_is_an_error_at_the_destination() -> None:
    assert config_errors('type: nats\nurl: nats://n1:4222\nsubject: "events.>.{type}"') == [
        "collector.yaml:5:5: destinations.out: subject: a NATS subject to publish to has no spaces and no "
        "wildcards ('*', '>'): 'events.>.{type}'"]
    assert config_errors('type: nats\nurl: nats://n1:4222\nsubject: "events.{}"') == [
        "collector.yaml:5:5: destinations.out: subject: {} is not a field path such as {type} or "
        "{context.library.name} (at character 9): 'events.{}'"]


def test_the_url_is_a_nats_url() -> None:
    assert config_errors("type: nats\nurl: http://n1:4222\nsubject: e") == [
        "collector.yaml:5:5: destinations.out: url must start with nats:// or tls:// (ws:// and wss:// "
        "for websockets), got 'http://n1:4222'"]


def test_ack_timeout_below_the_send_timeout() -> None:
    assert config_errors(f"{GOOD}\nack_timeout: 1m") == [
        "collector.yaml:5:5: destinations.out: ack_timeout (60s) must be less than timeout (30s)"]
