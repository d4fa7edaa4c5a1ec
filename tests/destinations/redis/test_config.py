"""The redis destination's settings, as the config loader reads them."""

from __future__ import annotations

from tests.destinations.stream_checks import config_errors

GOOD = 'type: redis\nurl: redis://r1:6379/0\nstream: "events:{source}"'


def test_good_settings() -> None:
    assert config_errors(GOOD) == []
    assert config_errors(f"{GOOD}\nmax_length: null\ncreate_stream: false") == []


def test_a_key_template_with_spaces_is_an_error_at_the_destination() -> None:
    assert config_errors('type: redis\nurl: redis://r1:6379/0\nstream: "events {source}"') == [
        "collector.yaml:5:5: destinations.out: stream: a stream key written here has no spaces or control "
        "characters: 'events {source}'"]


def test_the_url_is_a_redis_url() -> None:
    assert config_errors("type: redis\nurl: r1:6379\nstream: s") == [
        "collector.yaml:5:5: destinations.out: url must start with redis://, rediss:// or unix://, got 'r1:6379'"]


def test_max_length_is_positive() -> None:
    assert config_errors(f"{GOOD}\nmax_length: 0") == [
        "collector.yaml:5:5: destinations.out: max_length must be at least 1 (or null: never trim), got 0"]
