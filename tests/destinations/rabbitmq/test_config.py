"""The rabbitmq destination's settings, as the config loader reads them."""

from __future__ import annotations

from tests.destinations.stream_checks import config_errors

GOOD = 'type: rabbitmq\nurl: amqp://u:p@r1:5672/%2F\nexchange: events\nrouting_key: "{type}.{source}"'


def test_good_settings() -> None:
    assert config_errors(GOOD) == []
    assert config_errors(f"{GOOD}\nexchange_type: topic\nmandatory: false") == []


def test_a_routing_key_with_wildcards_is_an_error_at_the_destination() -> None:
    assert config_errors('type: rabbitmq\nurl: amqp://r1\nexchange: e\nrouting_key: "#.{type}"') == [
        "collector.yaml:5:5: destinations.out: routing_key: a routing key to publish with has no spaces and "
        "no wildcards ('*', '#'): '#.{type}'"]


def test_the_url_is_an_amqp_url() -> None:
    assert config_errors("type: rabbitmq\nurl: http://r1\nexchange: e\nrouting_key: k") == [
        "collector.yaml:5:5: destinations.out: url must start with amqp:// or amqps://, got 'http://r1'"]


def test_the_default_exchange_is_not_declared() -> None:
    assert config_errors('type: rabbitmq\nurl: amqp://r1\nexchange: ""\nrouting_key: q\nexchange_type: direct') == [
        "collector.yaml:5:5: destinations.out: exchange_type: the default exchange (\"\") cannot be declared"]


def test_the_exchange_type_is_one_of_amqps() -> None:
    assert config_errors(f"{GOOD}\nexchange_type: x-delayed") == [
        "collector.yaml:9:20: destinations.out.exchange_type: invalid value 'x-delayed'; "
        "expected one of: direct, fanout, headers, topic"]
