"""Every destination type, listed once. Adding a destination = one module + one line here."""

from __future__ import annotations

from typing import Union

from collector.destinations.base import Destination

# One line per destination type: "<type>": "<module>.<Class>". A destination that needs a vendor
# client library imports it in ``start()``, so that the library is loaded only when configured.
_REGISTRY: dict[str, str] = {
    "segment": "collector.destinations.segment.SegmentDestination",
    "webhook": "collector.destinations.webhook.WebhookDestination",
    "file": "collector.destinations.file.FileDestination",
    "kafka": "collector.destinations.kafka.KafkaDestination",
    "nats": "collector.destinations.nats_jetstream.NatsDestination",
    "redis": "collector.destinations.redis_stream.RedisStreamDestination",
    "rabbitmq": "collector.destinations.rabbitmq.RabbitMQDestination",
    "mqtt": "collector.destinations.mqtt.MqttDestination",
    "parquet": "collector.destinations.parquet.destination.ParquetDestination",
    "postgres": "collector.destinations.postgres.PostgresDestination",
    "google_ads": "collector.destinations.google_ads.GoogleAds",
    "mixpanel": "collector.destinations.mixpanel.Mixpanel",
    "google_analytics_4": "collector.destinations.google_analytics_4.GoogleAnalytics4",
    "posthog": "collector.destinations.posthog.PostHog",
    "amplitude": "collector.destinations.amplitude.Amplitude",
    "facebook_conversions": "collector.destinations.facebook_conversions.FacebookConversions",
    "customerio": "collector.destinations.customerio.CustomerIO",
    "braze": "collector.destinations.braze.Braze",
}


def destination_class(type_name: str) -> type[Destination]:
    import importlib

    module_name, _, class_name = _REGISTRY[type_name].rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)


def destination_types() -> list[str]:
    return sorted(_REGISTRY)


def config_union() -> object:
    """The tagged union of every destination config; msgspec dispatches on ``type:``."""
    return Union[tuple(destination_class(t).Config for t in destination_types())]  # noqa: UP007
