"""collector.filters.actions: drop, hash, mask, truncate_ip on every kind of value."""

from __future__ import annotations

import hashlib

import pytest

from collector.filters.actions import DROP, REDACTED, drop, hash_value, make_action, mask, truncate_ip


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_drop():
    assert drop("anything") is DROP
    assert make_action("drop")(None) is DROP


def test_hash_is_sha256_hex_of_the_trimmed_text():
    assert hash_value()("  pro plan ") == sha256("pro plan")
    assert hash_value()("Pro") == sha256("Pro")  # only e-mail addresses are lower-cased


def test_hash_lower_cases_and_trims_email_addresses_as_ad_platforms_expect():
    assert hash_value()("  Ann.Lee@Example.COM ") == sha256("ann.lee@example.com")


def test_hash_with_a_salt_prefixes_it():
    assert hash_value("s3cret")("ann@example.com") == sha256("s3cretann@example.com")
    assert hash_value("s3cret")("ann@example.com") != hash_value()("ann@example.com")


def test_hash_of_numbers_objects_and_null():
    assert hash_value()(42) == sha256("42")
    assert hash_value()(True) == sha256("true")
    assert hash_value()({"b": 1, "a": [2]}) == sha256('{"a":[2],"b":1}')
    assert hash_value()(None) is None


def test_mask_redacts_whole_values_by_default():
    assert mask()("4111111111111111") == REDACTED
    assert mask()({"street": "1 Main St"}) == REDACTED
    assert mask()(None) is None


def test_mask_keep_last():
    assert mask(4)("4111111111111111") == "************1111"
    assert mask(4)(41111111) == "****1111"
    assert mask(4)("1111") == REDACTED  # nothing would be hidden
    assert mask(4)(["a", "b"]) == REDACTED


@pytest.mark.parametrize("address, truncated", [
    ("203.0.113.9", "203.0.113.0"),
    (" 10.1.2.255 ", "10.1.2.0"),
    ("2001:db8:85a3:1234:5678:8a2e:370:7334", "2001:db8:85a3::"),
    ("2001:db8:85a3::1", "2001:db8:85a3::"),
    ("fe80::1%eth0", "fe80::"),
    ("::ffff:203.0.113.9", "::"),
])
def test_truncate_ip_zeroes_the_last_octet_or_80_bits(address, truncated):
    assert truncate_ip(address) == truncated


@pytest.mark.parametrize("value", ["not an ip", "203.0.113.9, 10.0.0.1", "010.0.0.1", "", 2130706433, None])
def test_truncate_ip_removes_what_is_not_an_address(value):
    assert truncate_ip(value) is DROP


def test_make_action_refuses_unknown_names():
    with pytest.raises(ValueError):
        make_action("encrypt")
