"""The PostHog settings as the config loader reads them: endpoint required, the project key."""

from __future__ import annotations

import textwrap

import pytest

from collector.config.loader import ConfigError, load_config_text
from collector.destinations.posthog import PostHogSettings


def load(body: str):
    return load_config_text("destinations:\n  ph:\n" + textwrap.indent(textwrap.dedent(body), "    "), "ph.yaml")


def test_a_cloud_region_or_self_hosted_url_is_taken():
    for endpoint in ("https://us.i.posthog.com", "https://eu.i.posthog.com", "http://posthog.internal:8000"):
        config = load(f"type: posthog\napi_key: phc_k\nendpoint: {endpoint}\n").destinations["ph"]
        assert isinstance(config, PostHogSettings) and config.endpoint == endpoint


def test_without_endpoint_the_check_names_the_choices_at_the_destination():
    with pytest.raises(ConfigError) as caught:
        load("type: posthog\napi_key: phc_k\n")
    message = str(caught.value)
    assert message.startswith("ph.yaml:3:5: destinations.ph: endpoint is required for posthog: ")
    assert "https://us.i.posthog.com (US Cloud)" in message and "https://eu.i.posthog.com (EU Cloud)" in message
    assert "self-hosted" in message


def test_an_endpoint_with_a_path_is_refused_at_its_line():
    with pytest.raises(ConfigError, match=r"ph.yaml:5:15: destinations.ph.endpoint: expected scheme://host"):
        load("type: posthog\napi_key: phc_k\nendpoint: https://eu.i.posthog.com/batch/\n")


def test_a_personal_api_key_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match="phx_... is a personal API key, which capture refuses"):
        load("type: posthog\napi_key: phx_personal\nendpoint: https://eu.i.posthog.com\n")


def test_project_id_and_historical_migration():
    config = load("type: posthog\napi_key: phc_k\nendpoint: https://eu.i.posthog.com\n"
                  "project_id: '12345'\nhistorical_migration: true\n").destinations["ph"]
    assert (config.project_id, config.historical_migration) == (12345, True)
    with pytest.raises(ConfigError, match="project_id"):
        load("type: posthog\napi_key: phc_k\nendpoint: https://eu.i.posthog.com\nproject_id: 0\n")
