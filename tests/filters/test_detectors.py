"""collector.filters.detectors: each built-in detector, what it matches and what it must not."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.filters.detectors import DETECTORS, is_credit_card, is_email, is_ip, is_phone, is_us_ssn, luhn_valid


@pytest.mark.parametrize("text", ["ann@example.com", " Ann.Lee+tag@mail.example.co.uk ", "a@b.io"])
def test_email_matches_addresses(text):
    assert is_email(text)


@pytest.mark.parametrize("text", ["ann@example", "@example.com", "ann@@example.com", "ann @example.com",
                                  "write to ann@example.com", "ann@example..com", "example.com", ""])
def test_email_refuses_what_is_not_one_whole_address(text):
    assert not is_email(text)


def test_luhn_checksum():
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("79927398710")


@pytest.mark.parametrize("text", ["4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004",
                                  "378282246310005", " 6011111111111117 "])
def test_credit_card_matches_luhn_valid_numbers(text):
    assert is_credit_card(text)


@pytest.mark.parametrize("text", [
    "4111111111111112",          # Luhn fails: an order number, not a card
    "1234567890123",             # 13 digits, Luhn fails
    "411111111111",              # 12 digits: too short
    "41111111111111111111",      # 20 digits: too long
    "4111  1111 1111 1111",      # two separators in a row
    "4111-1111-1111-111a",
    "2024-05-01",
    "",
])
def test_credit_card_refuses_other_numbers(text):
    assert not is_credit_card(text)


@pytest.mark.parametrize("text", ["+442079460958", "+44 20 7946 0958", "+1 (415) 555-2671", "+33.1.23.45.67.89"])
def test_phone_matches_international_numbers(text):
    assert is_phone(text)


@pytest.mark.parametrize("text", ["020 7946 0958", "4155552671", "+1 555", "+12345678901234567", "2024-05-01",
                                  "+44 20 7946 0958 ext", "1+1=2"])
def test_phone_refuses_national_forms_and_other_numbers(text):
    assert not is_phone(text)


@pytest.mark.parametrize("text", ["203.0.113.9", "2001:db8::1", "::1", " 10.0.0.1 "])
def test_ip_matches_addresses(text):
    assert is_ip(text)


@pytest.mark.parametrize("text", ["1.2.3", "256.1.1.1", "v1.2.3.4", "2.11.1", "12:30", "abc", ""])
def test_ip_refuses_versions_times_and_words(text):
    assert not is_ip(text)


@given(st.ip_addresses())
def test_ip_matches_every_address_in_every_spelling(address):
    spellings = {str(address), str(address).upper()}
    if address.version == 6:
        spellings |= {address.exploded, f"{address.compressed}%eth0"}
    for text in spellings:
        assert is_ip(text), text


@given(st.text(alphabet="0123456789abcdefABCDEF:.% xyz", max_size=45))
def test_ip_agrees_with_the_standard_library(text):
    # The shape checks before ipaddress only make refusals cheaper: they never refuse an address.
    try:
        ipaddress.ip_address(text.strip())
        parses = True
    except ValueError:
        parses = False
    assert is_ip(text) == (parses and ("." in text or ":" in text))


def test_us_ssn():
    assert is_us_ssn("123-45-6789")
    for text in ("000-12-3456", "666-12-3456", "900-12-3456", "123-00-6789", "123-45-0000", "123456789", "12-345-6789"):
        assert not is_us_ssn(text), text


def test_every_detector_is_listed_in_the_config_type():
    from typing import get_args

    from collector.filters.config import Detector

    assert set(DETECTORS) == set(get_args(Detector))
