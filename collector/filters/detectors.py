"""Built-in detectors of personal data in a value (the `values:` selector of a PII rule).

Each looks at a whole value (leading and trailing spaces aside), not at words inside free text:
`pattern:` is for that. Each is strict enough that ordinary analytics values (order ids, prices,
dates, SKUs, versions) do not match:

- ``email``: one ``@``, no spaces, a dot in the domain: ``ann@example.com``.
- ``credit_card``: 13 to 19 digits, optionally grouped by single spaces or dashes, passing the
  Luhn checksum (which 9 in 10 random digit strings fail): ``4111 1111 1111 1111``.
- ``phone``: international (E.164) form only, ``+`` then 8 to 15 digits, optionally separated by
  spaces, dots, dashes or parentheses: ``+44 20 7946 0958``. National forms (``020 7946 0958``)
  cannot be told from other numbers and are not matched.
- ``ip``: an IPv4 or IPv6 address: ``203.0.113.9``, ``2001:db8::1``.
- ``us_ssn``: a US social security number written ``123-45-6789`` (area not 000, 666 or 9xx).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable

_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
_CARD = re.compile(r"\d(?:[ -]?\d){12,18}")
_PHONE = re.compile(r"\+\d(?:[ .()-]{0,2}\d){7,14}")
_SSN = re.compile(r"(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}")
_NOT_DIGIT = re.compile(r"\D")
# The shapes an address can have, checked before ipaddress parses it: its ValueError for a URL, a
# price or a version string cost 3 us a value, the regular expression 0.2.
_IPV4_SHAPE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_IPV6_SHAPE = re.compile(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[^\s%]+)?")


def is_email(text: str) -> bool:
    return "@" in text and _EMAIL.fullmatch(text.strip()) is not None


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits (every second digit from the right doubled)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def is_credit_card(text: str) -> bool:
    if not 13 <= len(text) <= 64:
        return False
    text = text.strip()
    if not text[:1].isdigit() or _CARD.fullmatch(text) is None:
        return False
    return luhn_valid(_NOT_DIGIT.sub("", text))


def is_phone(text: str) -> bool:
    return "+" in text and _PHONE.fullmatch(text.strip()) is not None


def is_ip(text: str) -> bool:
    if len(text) > 64 or not (":" in text or "." in text):
        return False
    text = text.strip()
    if _IPV4_SHAPE.fullmatch(text) is None and _IPV6_SHAPE.fullmatch(text) is None:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_us_ssn(text: str) -> bool:
    return "-" in text and _SSN.fullmatch(text.strip()) is not None


DETECTORS: dict[str, Callable[[str], bool]] = {
    "email": is_email,
    "credit_card": is_credit_card,
    "phone": is_phone,
    "ip": is_ip,
    "us_ssn": is_us_ssn,
}
