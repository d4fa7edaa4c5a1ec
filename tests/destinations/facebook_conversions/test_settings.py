"""The destination's settings: what a config may say, and what `collector check` refuses."""

from __future__ import annotations

import textwrap

import msgspec
import pytest

from collector.config.loader import ConfigError, load_config_text
from collector.destinations.base import BuildContext
from collector.destinations.facebook_conversions import FacebookConversions

from .support import settings


def test_ids_may_be_written_as_numbers_and_the_defaults_are_metas():
    config = settings(pixel_id=1234567890123456, audiences={"vip": 23850000000000001})
    assert (config.pixel_id, config.audiences) == (1234567890123456, {"vip": 23850000000000001})
    assert (config.api_version, config.action_source, config.test_event_code) == ("v24.0", "other", None)
    assert FacebookConversions.default_endpoint == "https://graph.facebook.com"


@pytest.mark.parametrize(("key", "value"), [
    ("api_version", "24.0"), ("api_version", "v24"), ("pixel_id", "pixel-1"), ("action_source", "web"),
    ("audiences", {"vip": "not-an-id"}),
])
def test_malformed_settings_are_refused(key, value):
    with pytest.raises(msgspec.ValidationError, match=key):
        settings(**{key: value})


def test_a_mapping_mistake_is_a_check_error_with_its_place():
    text = textwrap.dedent("""\
        destinations:
          meta:
            type: facebook_conversions
            pixel_id: 1234567890123456
            access_token: token
            mappings:
              - name: Order Completed
                fields:
                  valeu: {"@path": "$.properties.total"}
        """)
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "meta.yaml")
    assert "meta.yaml:9:" in str(caught.value) and "did you mean 'value'" in str(caught.value)


def test_the_access_token_is_never_in_a_reason():
    destination = FacebookConversions("meta", settings(access_token="EAAsecret-token-123"), BuildContext(None, ""))
    assert destination.redact("refused EAAsecret-token-123, Bearer EAAsecret-token-123") == "refused ***, ***"
