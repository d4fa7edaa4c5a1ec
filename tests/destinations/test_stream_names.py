"""Broker name templates: what a template makes of an event, and what it refuses at load."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from collector.destinations.base import Envelope, RoutingFields
from collector.destinations.stream_names import (
    AMQP_ROUTING_KEY,
    KAFKA_TOPIC,
    MQTT_TOPIC,
    NATS_SUBJECT,
    REDIS_KEY,
    NameTemplate,
    TemplateError,
    compile_template,
)


def envelope(event: dict[str, Any], source: str = "web") -> Envelope:
    raw = msgspec.json.encode(event)
    try:
        routing = msgspec.json.decode(raw, type=RoutingFields)
    except msgspec.ValidationError:  # as the dispatcher routes such an event
        routing = RoutingFields()
    return Envelope(1, source, 0, raw, routing)


TRACK = {
    "type": "track", "event": "Order Completed", "messageId": "m-1", "userId": "u-1",
    "properties": {"total": 27.5, "paid": True, "items": 3, "plan": None, "tags": ["a", "b"]},
    "context": {"library": {"name": "analytics.js", "version": "2.1"}},
}


def name(template: str, event: dict[str, Any], rules: Any = NATS_SUBJECT, source: str = "web") -> str:
    return NameTemplate(template, rules).address(envelope(event, source))[0]


def test_fields_and_source_fill_the_template() -> None:
    assert name("events.{type}.{source}", TRACK) == "events.track.web"
    assert name("{context.library.name}", TRACK, KAFKA_TOPIC) == "analytics.js"
    assert name("app-{source}", TRACK, KAFKA_TOPIC, source="ios_app") == "app-ios_app"


def test_the_message_id_comes_with_the_name() -> None:
    assert NameTemplate("events", KAFKA_TOPIC).address(envelope(TRACK)) == ("events", "m-1")
    assert NameTemplate("e.{type}", NATS_SUBJECT).address(envelope({"type": "page"})) == ("e.page", "")


@pytest.mark.parametrize(("rules", "expected"), [
    (KAFKA_TOPIC, "Order_Completed.analytics.js"),
    (NATS_SUBJECT, "Order_Completed.analytics_js"),
    (REDIS_KEY, "Order_Completed.analytics.js"),
    (AMQP_ROUTING_KEY, "Order_Completed.analytics_js"),
    (MQTT_TOPIC, "Order_Completed.analytics.js"),
])
def test_values_keep_only_what_the_broker_allows(rules: Any, expected: str) -> None:
    # In NATS subjects and routing keys a '.' would start a new token: it is replaced there.
    assert name("{event}.{context.library.name}", TRACK, rules) == expected


def test_separators_wildcards_and_other_characters_in_values_are_replaced() -> None:
    event = {"type": "track", "event": "a/b+c#d*e>f g\u00e9h.i"}
    assert name("x/{event}", event, MQTT_TOPIC) == "x/a_b_c_d_e_f_g_h.i"
    assert name("x.{event}", event, NATS_SUBJECT) == "x.a_b_c_d_e_f_g_h_i"


def test_numbers_booleans_and_json_values_render_as_json_would() -> None:
    assert name("{properties.total}.{properties.paid}.{properties.items}", TRACK, KAFKA_TOPIC) == "27.5.true.3"
    assert name("t-{properties.tags}", TRACK, KAFKA_TOPIC) == "t-__a___b__"


def test_missing_null_and_empty_values_render_as_underscore_or_the_stand_in() -> None:
    event = {**TRACK, "event": ""}
    assert name("e.{event}.{properties.plan}.{nothing.here}", event) == "e._._._"
    assert name("e.{event|unnamed}.{properties.plan|free tier}", event) == "e.unnamed.free_tier"


def test_a_path_below_a_value_that_is_not_an_object_is_missing() -> None:
    assert name("e.{type.name}.{properties.total.x}", TRACK) == "e._._"


def test_an_event_with_fields_of_unexpected_shape_still_gets_a_name() -> None:
    # "context" a string: the decoder's shape does not fit, the event is read as it is.
    odd = {"type": "track", "context": "not an object", "messageId": 7, "event": "Signed Up"}
    template = NameTemplate("{event}.{context.library.name}.{type}", NATS_SUBJECT)
    assert template.address(envelope(odd)) == ("Signed_Up._.track", "")


def test_a_whole_object_and_a_path_inside_it_in_one_template() -> None:
    assert name("{context.library}.{context.library.name}", TRACK, REDIS_KEY) == (
        "__name___analytics.js___version___2.1__.analytics.js")


def test_long_values_and_names_are_cut() -> None:
    event = {"type": "track", "event": "x" * 300}
    assert name("{event}", event, NATS_SUBJECT) == "x" * 100
    assert len(name("{event}.{event}.{event}", event, KAFKA_TOPIC)) == 249


def test_literal_braces() -> None:
    assert name("{{hash}}:{type}", TRACK, REDIS_KEY) == "{hash}:track"


def test_a_constant_template_decodes_nothing_but_the_message_id() -> None:
    template = NameTemplate("all-events", KAFKA_TOPIC)
    assert template.constant == "all-events" and template.paths == ()


@pytest.mark.parametrize(("text", "rules", "message", "column"), [
    ("", KAFKA_TOPIC, "cannot be empty", None),
    ("events.{type", NATS_SUBJECT, "unmatched '{'", 8),
    ("events.type}", NATS_SUBJECT, "unmatched '}'", 12),
    ("events.{}", NATS_SUBJECT, "{} is not a field path", 9),
    ("events.{ type }", NATS_SUBJECT, "is not a field path", 9),
    ("events.{a..b}", NATS_SUBJECT, "is not a field path", 9),
    ("events.{type|}", NATS_SUBJECT, "after '|'", 9),
    ("events..{type}", NATS_SUBJECT, "tokens (between dots) cannot be empty", None),
    ("events.{type}.", NATS_SUBJECT, "tokens (between dots) cannot be empty", None),
    ("events.*.{type}", NATS_SUBJECT, "wildcards", None),
    ("events {type}", NATS_SUBJECT, "no spaces", None),
    ("events/#/{type}", MQTT_TOPIC, "wildcards", None),
    ("$SYS/{type}", MQTT_TOPIC, "the broker's own", None),
    ("events:{type}", KAFKA_TOPIC, "not ':'", None),
    ("..", KAFKA_TOPIC, "not a valid Kafka topic", None),
    ("e" * 250, KAFKA_TOPIC, "at most 249", None),
    ("events.#.{type}", AMQP_ROUTING_KEY, "wildcards", None),
    ("events {source}", REDIS_KEY, "no spaces", None),
])
def test_templates_the_broker_could_not_take_are_refused(
    text: str, rules: Any, message: str, column: int | None
) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)) as caught:
        NameTemplate(text, rules)
    assert caught.value.column == column


def test_compile_template_names_the_setting_and_the_position() -> None:
    with pytest.raises(ValueError, match=r"^subject: unmatched '\{' .* \(at character 8\): 'events.\{type'$"):
        compile_template("subject", "events.{type", NATS_SUBJECT)
