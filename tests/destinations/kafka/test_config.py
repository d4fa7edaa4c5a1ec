"""The kafka destination's settings, as the config loader reads them."""

from __future__ import annotations

from collector.config.loader import load_config_text
from tests.destinations.stream_checks import config_errors

GOOD = 'type: kafka\nbrokers: ["k1:9092"]\ntopic: "events.{type}"'


def test_good_settings_and_their_defaults() -> None:
    assert config_errors(GOOD) == []
    text = "destinations:\n  out:\n" + "".join(f"    {line}\n" for line in GOOD.splitlines())
    config = load_config_text(text).destinations["out"]
    assert (config.idempotent, config.compression, config.security_protocol) == (True, "none", "PLAINTEXT")


def test_a_topic_template_kafka_could_not_take_is_an_error_at_the_destination() -> None:
    assert config_errors('type: kafka\nbrokers: ["k1:9092"]\ntopic: "events/{type}"') == [
        "collector.yaml:5:5: destinations.out: topic: a Kafka topic has only ASCII letters, digits, "
        "'.', '_' and '-'; not '/': 'events/{type}'"]
    assert config_errors('type: kafka\nbrokers: ["k1:9092"]\ntopic: "events.{type"') == [
        "collector.yaml:5:5: destinations.out: topic: unmatched '{' (write '{{' for a literal one) "
        "(at character 8): 'events.{type'"]


def test_brokers_are_host_and_port() -> None:
    assert config_errors('type: kafka\nbrokers: ["k1"]\ntopic: t') == [
        "collector.yaml:5:5: destinations.out: brokers: expected host:port, got 'k1'"]
    assert config_errors("type: kafka\nbrokers: []\ntopic: t") == [
        "collector.yaml:5:5: destinations.out: brokers: name at least one broker, as host:port"]


def test_request_timeout_below_the_send_timeout() -> None:
    assert config_errors(f"{GOOD}\nrequest_timeout: 30s\ntimeout: 30s") == [
        "collector.yaml:5:5: destinations.out: request_timeout (30s) must be less than timeout (30s)"]


def test_sasl_needs_credentials() -> None:
    assert config_errors(f"{GOOD}\nsecurity_protocol: SASL_SSL\nusername: u") == [
        "collector.yaml:5:5: destinations.out: security_protocol SASL_SSL needs username and password"]


def test_compression_is_one_of_the_codecs() -> None:
    assert config_errors(f"{GOOD}\ncompression: brotli") == [
        "collector.yaml:8:18: destinations.out.compression: invalid value 'brotli'; "
        "expected one of: gzip, lz4, none, snappy, zstd"]
