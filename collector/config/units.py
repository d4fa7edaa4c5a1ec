"""Human-friendly units in the config: durations ("500ms", "4h", "7d") and sizes ("32KB", "1GiB")."""

from __future__ import annotations

import re

_DURATION_UNITS = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE_UNITS = {
    "": 1, "b": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}
_NUMBER_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


class Duration(float):
    """Seconds. Written in the config as a number of seconds ("30" too, as an env var gives it)
    or as "250ms", "30s", "5m", "4h", "7d"."""

    @classmethod
    def parse(cls, value: object) -> Duration:
        if isinstance(value, bool):
            raise ValueError(f"expected a duration such as '30s' or '4h', got {value!r}")
        if isinstance(value, (int, float)):
            if value < 0:
                raise ValueError(f"a duration cannot be negative, got {value!r}")
            return cls(value)
        if isinstance(value, str):
            match = _NUMBER_UNIT.match(value)
            if match and match.group(2).lower() in _DURATION_UNITS:
                return cls(float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()])
        raise ValueError(f"expected a duration such as '30s', '5m', '4h' or '7d', got {value!r}")


class ByteSize(int):
    """Bytes. Written as a number of bytes or as "32KB", "500KB", "10GiB" (KB = 1000, KiB = 1024)."""

    @classmethod
    def parse(cls, value: object) -> ByteSize:
        if isinstance(value, bool):
            raise ValueError(f"expected a size such as '32KB' or '1GiB', got {value!r}")
        if isinstance(value, int):
            if value < 0:
                raise ValueError(f"a size cannot be negative, got {value!r}")
            return cls(value)
        if isinstance(value, str):
            match = _NUMBER_UNIT.match(value)
            if match and match.group(2).lower() in _SIZE_UNITS:
                return cls(int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]))
        raise ValueError(f"expected a size such as '32KB', '500KB' or '1GiB', got {value!r}")


def decode_hook(type_: type, value: object) -> object:
    """msgspec dec_hook: turns config scalars into Duration / ByteSize."""
    if type_ is Duration:
        return Duration.parse(value)
    if type_ is ByteSize:
        return ByteSize.parse(value)
    raise NotImplementedError(type_)
