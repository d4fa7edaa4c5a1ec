"""What a PII rule does to a value it selected. Each action takes the value and returns the new
one, or ``DROP`` to remove the key (or the list item) that held it.

- ``drop``: the key is removed.
- ``hash``: the lower-case hex SHA-256 of the value, as ad platforms' customer matching expects:
  text is trimmed, and an email address is also lower-cased; a number or boolean is hashed as its
  JSON text (``42``, ``true``), an object or list as its JSON with sorted keys. With a ``salt``,
  the salt is prefixed to the text before hashing (ad platforms then cannot match it). null stays.
- ``mask``: ``"[redacted]"``; with ``keep_last: N``, every character but the last N becomes ``*``
  (``************1111``); a value of N characters or fewer is redacted whole. null stays.
- ``truncate_ip``: an IPv4 address loses its last octet (``203.0.113.9`` -> ``203.0.113.0``), an
  IPv6 address its last 80 bits (kept: the /48, ``2001:db8:85a3::``), as Google Analytics
  anonymises IPs. A value that is not an IP address is removed: it cannot be made safe.
"""

from __future__ import annotations

import hashlib
import socket
from typing import Any, Callable

import msgspec

from collector.filters.detectors import is_email

DROP: Any = object()  # the key is removed
REDACTED = "[redacted]"

ValueAction = Callable[[Any], Any]


def drop(value: Any) -> Any:
    return DROP


def hash_value(salt: str | None = None) -> ValueAction:
    prefix = (salt or "").encode()

    def apply(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            text = value.strip()
            if is_email(text):
                text = text.lower()
            data = text.encode("utf-8", "surrogatepass")
        else:
            data = msgspec.json.encode(value, order="sorted")
        return hashlib.sha256(prefix + data).hexdigest()

    return apply


def mask(keep_last: int = 0) -> ValueAction:
    def apply(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, (dict, list)) or not keep_last:
            return REDACTED
        text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
        if len(text) <= keep_last:
            return REDACTED
        return "*" * (len(text) - keep_last) + text[-keep_last:]

    return apply


def truncate_ip(value: Any) -> Any:
    if not isinstance(value, str):
        return DROP
    text = value.strip().partition("%")[0]  # an IPv6 zone (fe80::1%eth0) goes too
    # inet_pton is strict (no leading zeros, no short forms) and ten times faster than ipaddress.
    try:
        packed = socket.inet_pton(socket.AF_INET, text)
        return f"{packed[0]}.{packed[1]}.{packed[2]}.0"
    except OSError:
        pass
    try:
        packed = socket.inet_pton(socket.AF_INET6, text)
    except OSError:
        return DROP
    return socket.inet_ntop(socket.AF_INET6, packed[:6] + bytes(10))


def make_action(name: str, *, salt: str | None = None, keep_last: int = 0) -> ValueAction:
    if name == "drop":
        return drop
    if name == "hash":
        return hash_value(salt)
    if name == "mask":
        return mask(keep_last)
    if name == "truncate_ip":
        return truncate_ip
    raise ValueError(f"unknown action {name!r}")
