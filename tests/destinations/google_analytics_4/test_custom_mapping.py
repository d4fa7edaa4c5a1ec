"""The brief's custom mapping (category -> event_category, event -> name, properties.name ->
event_label, properties.price -> value), as the YAML the README shows, loaded by the config loader
and sent to the GA4 double."""

from __future__ import annotations

import pytest

from collector.config.loader import ConfigError, load_config_text
from collector.destinations.base import BuildContext
from tests.destinations.fakes import client_session, envelopes
from tests.vendors.ga4 import GA4Double

from .support import MEASUREMENT_ID, NOW, SECRET, FixedClock, track

# Exactly as in the README's Google Analytics 4 section.
README_YAML = """\
destinations:
  ga4:
    type: google_analytics_4
    measurement_id: G-XXXXXXXXXX
    api_secret: ${GA4_API_SECRET}
    mappings:
      - name: Custom Event          # the preset for tracks that are not e-commerce events
        fields:
          name: {"@path": "$.event"}
          params:
            event_category: {"@path": "$.properties.category"}
            event_label: {"@path": "$.properties.name"}
            value: {"@path": "$.properties.price"}
"""


def load(endpoint: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GA4_API_SECRET", SECRET)
    text = README_YAML.replace("G-XXXXXXXXXX", MEASUREMENT_ID) + f"    endpoint: {endpoint}\n"
    return load_config_text(text, "readme.yaml").destinations["ga4"]


async def test_the_readmes_custom_mapping_sends_category_label_and_value(monkeypatch):
    async with GA4Double(api_secret=SECRET, measurement_id=MEASUREMENT_ID, now=lambda: NOW) as double, \
            client_session() as (http, _):
        destination = FixedClock("ga4", load(double.url, monkeypatch), BuildContext(http, ""))
        events = [
            track("Video Played", {"category": "Videos", "name": "Intro", "price": 0}),
            track("Coupon Applied", {"category": "Checkout", "name": "SPRING", "price": "4.50"}),
            track("Newsletter Signup", {}),  # nothing to map: the params are left out, not sent empty
            track("Order Completed", {"order_id": "o1", "total": 5, "currency": "EUR", "category": "Shop"}),
        ]
        assert (await destination.send(envelopes(events))).kind == "ok"
        assert double.invalid == []
        got = {e.name: e.params for e in double.accepted}
        assert got == {
            "Video_Played": {"event_category": "Videos", "event_label": "Intro", "value": 0, "engagement_time_msec": 1},
            "Coupon_Applied": {"event_category": "Checkout", "event_label": "SPRING", "value": "4.50",
                               "engagement_time_msec": 1},
            "Newsletter_Signup": {"engagement_time_msec": 1},
            # The e-commerce presets keep their own mappings.
            "purchase": {"transaction_id": "o1", "value": 5, "currency": "EUR", "engagement_time_msec": 1},
        }


def test_a_mistake_in_the_mapping_is_a_load_error_with_its_line(monkeypatch):
    monkeypatch.setenv("GA4_API_SECRET", SECRET)
    broken = README_YAML.replace('name: {"@path": "$.event"}', 'nmae: {"@path": "$.event"}')
    with pytest.raises(ConfigError) as error:
        load_config_text(broken, "readme.yaml")
    lines = broken.splitlines()
    line = next(i for i, text in enumerate(lines) if "nmae" in text)
    where = f"readme.yaml:{line + 1}:{lines[line].index('nmae') + 1}: destinations.ga4.mappings[0].fields.nmae"
    assert str(error.value) == f"{where}: unknown field 'nmae'; did you mean 'name'?"
