"""Presets and mappings of google_ads: a Segment spec event in, Google's request entry out."""

from __future__ import annotations

import msgspec
import pytest

from collector.config.loader import ConfigError, load_config_text
from collector.config.units import decode_hook
from collector.destinations.actions.catalogue import describe
from collector.destinations.actions.subscriptions import compiled_subscriptions
from collector.destinations.google_ads import GoogleAdsSettings, api

from .conftest import ACTION_ID, CID, LIST_ID, audience, order, sha

BASE = {"type": "google_ads", "customer_id": "123-456-7890", "developer_token": "dev",
        "oauth": {"client_id": "c", "client_secret": "s", "refresh_token": "r"}}
CLICK = {"name": "Click Conversion", "fields": {"conversion_action": ACTION_ID}}


def settings(**overrides) -> GoogleAdsSettings:
    return msgspec.convert({**BASE, **overrides}, GoogleAdsSettings, strict=False, dec_hook=decode_hook)


def payloads(config: GoogleAdsSettings, event: dict) -> dict[str, dict]:
    """The payload of every subscription the event matches, by subscription name."""
    return {s.name: s.prepare(event) for s in compiled_subscriptions(config) if s.matches(event)}


def test_order_completed_becomes_a_click_conversion_normalised_and_hashed_as_google_asks():
    event = order(1, gclid="Cj0KCQ-abc")
    payload = payloads(settings(mappings=[CLICK]), event)["Click Conversion"]
    assert api.click_conversion(payload, CID) == {
        "conversionAction": f"customers/{CID}/conversionActions/{ACTION_ID}",
        "conversionDateTime": "2024-06-10 12:00:00+00:00",
        "gclid": "Cj0KCQ-abc",
        # Google's rules: trimmed, lower case, no dots in a gmail.com local part; phones in E.164.
        "userIdentifiers": [{"hashedEmail": sha("buyer1@gmail.com")}, {"hashedPhoneNumber": sha("+14155550100")}],
        "orderId": "o-1",
        "conversionValue": 31,
        "currencyCode": "USD",
    }


def test_the_conversion_time_is_taken_to_utc():
    event = {**order(2, gclid="g"), "timestamp": "2024-06-10T23:30:05.999+02:00"}
    payload = payloads(settings(mappings=[CLICK]), event)["Click Conversion"]
    assert api.click_conversion(payload, CID)["conversionDateTime"] == "2024-06-10 21:30:05+00:00"


def test_revenue_and_orderId_stand_in_for_total_and_order_id():
    event = order(3, gclid="g")
    event["properties"] = {"orderId": "legacy-7", "revenue": 12.5, "gclid": "g"}
    payload = payloads(settings(mappings=[CLICK]), event)["Click Conversion"]
    assert (payload["order_id"], payload["value"]) == ("legacy-7", 12.5)


def test_a_lead_without_a_click_id_is_matched_by_its_hashed_identifiers():
    event = order(4)
    payload = payloads(settings(mappings=[CLICK]), event)["Click Conversion"]
    conversion = api.click_conversion(payload, CID)
    assert "gclid" not in conversion
    assert conversion["userIdentifiers"][0] == {"hashedEmail": sha("buyer4@gmail.com")}


def test_an_already_hashed_email_is_not_hashed_again():
    digest = sha("ann@example.com")
    event = order(5, gclid="g")
    event["context"]["traits"] = {"email": digest.upper()}
    payload = payloads(settings(mappings=[CLICK]), event)["Click Conversion"]
    assert payload["email"] == digest


def test_a_conversion_google_could_not_attribute_is_refused_before_any_request():
    event = order(6)
    event["context"] = {}
    payload = payloads(settings(mappings=[CLICK]), event)["Click Conversion"]
    with pytest.raises(ValueError, match="no gclid, gbraid, wbraid, e-mail or phone"):
        api.click_conversion(payload, CID)


@pytest.mark.parametrize(("given", "sent"), [
    ("456", f"customers/{CID}/conversionActions/456"),
    (f"customers/{CID}/conversionActions/789", f"customers/{CID}/conversionActions/789"),
])
def test_the_conversion_action_is_an_id_or_a_resource_name(given, sent):
    payload = payloads(settings(mappings=[{**CLICK, "fields": {"conversion_action": given}}]),
                       order(7, gclid="g"))["Click Conversion"]
    assert api.click_conversion(payload, CID)["conversionAction"] == sent


def test_a_malformed_conversion_action_is_refused_naming_it():
    payload = payloads(settings(mappings=[{**CLICK, "fields": {"conversion_action": "Purchase"}}]),
                       order(8, gclid="g"))["Click Conversion"]
    with pytest.raises(ValueError, match="'Purchase' is neither an id nor"):
        api.click_conversion(payload, CID)


def test_conversions_have_no_preset_in_force_until_a_mapping_gives_the_conversion_action():
    names = [s.name for s in compiled_subscriptions(settings())]
    assert names == ["Audience Entered", "Audience Exited"]
    assert payloads(settings(), order(1, gclid="g")) == {}  # unmatched, and counted so by the layer
    names = [s.name for s in compiled_subscriptions(settings(mappings=[CLICK]))]
    assert names == ["Audience Entered", "Audience Exited", "Click Conversion"]


def test_turning_every_preset_on_without_a_conversion_action_says_what_to_add():
    text = """
destinations:
  ads:
    type: google_ads
    customer_id: 1234567890
    developer_token: dev
    oauth: {client_id: c, client_secret: s, refresh_token: r}
    presets: true
"""
    with pytest.raises(ConfigError, match=r"the 'Click Conversion' preset needs a conversion action: add the "
                                          r"mapping \{name: Click Conversion, fields: \{conversion_action: <id>\}\}"):
        load_config_text(text, "ads.yaml")
    config = load_config_text(text.replace("presets: true", "presets: true\n    mappings: [{name: Click Conversion, "
                                                            "fields: {conversion_action: '1'}}]"), "ads.yaml")
    assert len(compiled_subscriptions(config.destinations["ads"])) == 3


def test_the_catalogue_says_the_conversion_preset_waits_for_its_conversion_action():
    text = describe("google_ads")
    assert "the 'Click Conversion' preset is off until a mapping of that name gives it" in text
    assert 'Click Conversion: upload_click_conversion when type = "track" and event = "Order Completed"' in text


def test_an_enhanced_conversion_mapping_sends_the_address_google_wants_hashed_or_in_clear():
    mapping = {"name": "Enhance orders", "action": "upload_enhanced_conversion",
               "trigger": 'event = "Order Completed"', "fields": {"conversion_action": ACTION_ID}}
    event = order(9)
    event["context"]["userAgent"] = "Mozilla/5.0"
    event["context"]["traits"].update(firstName=" Zoë ", lastName="O'Brien-Smith",
                                      address={"street": "1 Main St.", "city": "San Francisco", "state": "California",
                                               "postalCode": "94105", "country": "usa"})
    payload = payloads(settings(mappings=[mapping]), event)["Enhance orders"]
    assert api.enhancement(payload, CID) == {
        "conversionAction": f"customers/{CID}/conversionActions/{ACTION_ID}",
        "adjustmentType": "ENHANCEMENT",
        "orderId": "o-9",
        "userIdentifiers": [
            {"hashedEmail": sha("buyer9@gmail.com")}, {"hashedPhoneNumber": sha("+14155550100")},
            {"addressInfo": {"hashedFirstName": sha("zoë"), "hashedLastName": sha("obriensmith"),
                             "hashedStreetAddress": sha("1 main st."), "city": "san francisco", "state": "ca",
                             "postalCode": "94105", "countryCode": "US"}},
        ],
        "userAgent": "Mozilla/5.0",
    }


def test_properties_address_comes_before_the_traits_unlike_segments_stray_comma():
    mapping = {"name": "Enhance", "action": "upload_enhanced_conversion", "trigger": 'event = "Order Completed"',
               "fields": {"conversion_action": ACTION_ID}}
    event = order(10, address={"city": "Köln"})
    event["context"]["traits"]["address"] = {"city": "Berlin"}
    assert payloads(settings(mappings=[mapping]), event)["Enhance"]["city"] == "köln"


def test_audience_entered_and_exited_add_and_remove_the_hashed_user():
    config = settings(user_lists={"high_value": LIST_ID})
    entered = payloads(config, audience("Audience Entered", " Ann@Example.com"))
    exited = payloads(config, audience("Audience Exited", "ann@example.com"))
    assert list(entered) == ["Audience Entered"] and list(exited) == ["Audience Exited"]
    assert entered["Audience Entered"] == {"user_list": "high_value", "operation": "add",
                                           "email": sha("ann@example.com")}
    assert exited["Audience Exited"]["operation"] == "remove"
    assert api.user_list(entered["Audience Entered"], config) == f"customers/{CID}/userLists/{LIST_ID}"
    assert api.user_data(entered["Audience Entered"]) == {"userIdentifiers": [{"hashedEmail": sha("ann@example.com")}]}


def test_the_list_comes_from_the_event_then_the_settings():
    config = settings(user_lists={"vip": 5151}, user_list_id="9-9")
    personas = audience("Audience Entered", "a@x.io", personas={"external_audience_id": "777",
                                                                 "computation_key": "vip"})
    chosen = {name: api.user_list(p, config) for name, p in payloads(config, personas).items()}
    assert chosen == {"Audience Entered": f"customers/{CID}/userLists/777"}
    listed = payloads(config, audience("Audience Entered", "a@x.io", key="vip"))["Audience Entered"]
    assert api.user_list(listed, config) == f"customers/{CID}/userLists/5151"
    unlisted = payloads(config, audience("Audience Entered", "a@x.io", key="churned"))["Audience Entered"]
    assert api.user_list(unlisted, config) == f"customers/{CID}/userLists/99"
    with pytest.raises(ValueError, match="no Google Ads user list for audience 'churned'"):
        api.user_list(unlisted, settings())


def test_an_address_goes_to_customer_match_only_whole():
    event = audience("Audience Entered", "a@x.io")
    event["context"]["traits"].update(firstName="Ann", lastName="Lee", address={"country": "US"})
    payload = payloads(settings(user_list_id=LIST_ID), event)["Audience Entered"]
    assert api.user_data(payload) == {"userIdentifiers": [{"hashedEmail": sha("a@x.io")}]}
    event["context"]["traits"]["address"]["postalCode"] = " 94105 "
    payload = payloads(settings(user_list_id=LIST_ID), event)["Audience Entered"]
    assert api.user_data(payload)["userIdentifiers"][1] == {"addressInfo": {
        "hashedFirstName": sha("ann"), "hashedLastName": sha("lee"), "countryCode": "US", "postalCode": "94105"}}
    event["context"]["traits"] = {}
    with pytest.raises(ValueError, match="no e-mail, phone or whole address"):
        api.user_data(payloads(settings(user_list_id=LIST_ID), event)["Audience Entered"])


@pytest.mark.parametrize(("given", "digits"), [("123-456-7890", "1234567890"), (1234567890, "1234567890"),
                                               ("1234567890", "1234567890")])
def test_customer_ids_keep_their_digits(given, digits):
    config = settings(customer_id=given, login_customer_id=given)
    assert (config.customer_id, config.login_customer_id) == (digits, digits)


def test_a_customer_id_that_is_not_digits_is_refused():
    with pytest.raises(msgspec.ValidationError, match=r"customer_id"):
        settings(customer_id="123 456 7890")
