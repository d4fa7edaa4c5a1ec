"""Customer identifiers normalised and SHA-256 hashed the way ad platforms match them.

Two styles, because the platforms disagree on details:

- ``"meta"``: Conversions API ``user_data`` (customer information parameters). Every kind is
  hashed. Phone: digits only with the country code, no ``+`` and no leading zeros. Names: lower
  case, letters only. City: lower case without spaces or punctuation. State: the 2-letter code.
  Zip: no spaces or dashes, and a US ZIP+4 is cut to its first 5 digits. Country: ISO 3166-1
  alpha-2. Gender: ``f`` or ``m``. Date of birth: ``YYYYMMDD``. External ID: trimmed only.
- ``"google"``: Google Ads enhanced conversions. Only e-mail, phone, first name, last name and
  street address are hashed; city, state, postal code and country go unhashed, so those kinds have
  a normaliser but no hasher. Everything is trimmed and lower-cased. Phone: E.164 (``+`` then
  digits). E-mail: for ``gmail.com`` and ``googlemail.com`` every dot of the local part is removed.
  First name: inner runs of spaces become one space. Last name: no punctuation.

A value that is already a SHA-256 hex digest (64 hex characters, any case) is never hashed again;
it is passed on in lower case.

Compile at load, run per event: ``hasher(kind, style)`` and ``normalizer(kind, style)`` check the
kind once and return a plain function; ``hash_identifier`` and ``normalize`` look that function up
on every call. A value that is missing, not a string or an integer, empty after normalising, or
impossible to put in the vendor's form (gender ``x``, a date that does not exist) gives ``None``:
the identifier is left out rather than sent in a form the platform cannot match.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import string
import unicodedata
from typing import Any, Callable, Literal

Style = Literal["meta", "google"]
# A normaliser or a hasher as ``hasher``/``normalizer`` return it: any event value in, text or None out.
IdentifierFunction = Callable[[Any], "str | None"]

KINDS = (
    "email", "phone", "first_name", "last_name", "street_address", "city", "state", "zip",
    "country", "gender", "date_of_birth", "external_id",
)
# Meta's own user_data keys and a few common spellings, as other names of the kinds above.
ALIASES = {
    "em": "email", "ph": "phone", "fn": "first_name", "ln": "last_name", "ct": "city",
    "st": "state", "zp": "zip", "postal_code": "zip", "ge": "gender", "db": "date_of_birth",
    "birthday": "date_of_birth",
}

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_NON_DIGITS = re.compile(r"[^0-9]+")
# "+44 (0)20 …": the bracketed national trunk zero is not dialled from abroad.
_TRUNK_ZERO = re.compile(r"\(\s*0\s*\)")
_NON_ASCII_LETTERS = re.compile(r"[^a-z]+")
_NON_ASCII_ALNUM = re.compile(r"[^a-z0-9]+")
_SPACES_AND_DASHES = re.compile(r"[\s\-]+")
_US_ZIP_PLUS4 = re.compile(r"[0-9]{9}")
_DATE_SEPARATED = re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})(?:[T ].*)?", re.DOTALL)
_DATE_COMPACT = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
# ASCII punctuation and symbols are exactly string.punctuation (Unicode categories P* and S*).
_ASCII_PUNCTUATION = str.maketrans("", "", string.punctuation)

_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_GENDERS = {"f": "f", "female": "f", "m": "m", "male": "m"}

_US_STATES = {
    "alabama": "al", "alaska": "ak", "arizona": "az", "arkansas": "ar", "california": "ca",
    "colorado": "co", "connecticut": "ct", "delaware": "de", "districtofcolumbia": "dc",
    "florida": "fl", "georgia": "ga", "hawaii": "hi", "idaho": "id", "illinois": "il",
    "indiana": "in", "iowa": "ia", "kansas": "ks", "kentucky": "ky", "louisiana": "la",
    "maine": "me", "maryland": "md", "massachusetts": "ma", "michigan": "mi", "minnesota": "mn",
    "mississippi": "ms", "missouri": "mo", "montana": "mt", "nebraska": "ne", "nevada": "nv",
    "newhampshire": "nh", "newjersey": "nj", "newmexico": "nm", "newyork": "ny",
    "northcarolina": "nc", "northdakota": "nd", "ohio": "oh", "oklahoma": "ok", "oregon": "or",
    "pennsylvania": "pa", "rhodeisland": "ri", "southcarolina": "sc", "southdakota": "sd",
    "tennessee": "tn", "texas": "tx", "utah": "ut", "vermont": "vt", "virginia": "va",
    "washington": "wa", "westvirginia": "wv", "wisconsin": "wi", "wyoming": "wy",
    "americansamoa": "as", "guam": "gu", "northernmarianaislands": "mp", "puertorico": "pr",
    "virginislands": "vi", "usvirginislands": "vi",
}
# Country names seen often in free-text addresses; anything else must already be a 2-letter code.
# "uk" is not ISO 3166-1 (the United Kingdom is "gb") but is what people write.
_COUNTRY_ALIASES = {
    "usa": "us", "unitedstates": "us", "unitedstatesofamerica": "us",
    "uk": "gb", "unitedkingdom": "gb", "greatbritain": "gb",
}


def is_sha256(value: str) -> bool:
    """True for a SHA-256 hex digest (64 hex characters, any case): such a value is never hashed again."""
    return len(value) == 64 and _SHA256_HEX.fullmatch(value) is not None


def sha256_hex(text: str) -> str:
    """Lower-case hex SHA-256 of the UTF-8 bytes of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------ text steps the normalisers share


def _as_text(value: Any) -> str | None:
    """Event values arrive as JSON: strings, or integers for phones, zips and IDs."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _keep_categories(text: str, first_letters: str) -> str:
    """The characters of ``text`` whose Unicode category starts with one of ``first_letters``."""
    text = unicodedata.normalize("NFC", text)  # "e" + combining accent becomes one letter
    return "".join(c for c in text if unicodedata.category(c)[0] in first_letters)


def _letters(text: str) -> str:
    text = text.lower()
    if text.isascii():
        return _NON_ASCII_LETTERS.sub("", text)
    return _keep_categories(text, "LM")


def _letters_and_digits(text: str) -> str:
    text = text.lower()
    if text.isascii():
        return _NON_ASCII_ALNUM.sub("", text)
    return _keep_categories(text, "LMN")


def _without_punctuation(text: str) -> str:
    if text.isascii():
        return text.translate(_ASCII_PUNCTUATION)
    return _keep_categories(text, "LMNZC")


def _phone_digits(text: str) -> str:
    if not text.isascii():  # other scripts' decimal digits, e.g. "٠١٢", as 0-9
        text = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)
    if "(" in text:
        text = _TRUNK_ZERO.sub("", text)
    # Leading zeros are an international call prefix ("00 44 …") or a trunk prefix: never E.164.
    return _NON_DIGITS.sub("", text).lstrip("0")


def _or_none(text: str) -> str | None:
    return text or None


# ------------------------------------------------------------------------------ normalisers
# Each takes the value as text and returns the normalised text, or None.


def _email(text: str) -> str | None:
    return _or_none(text.strip().lower())


def _email_google(text: str) -> str | None:
    text = text.strip().lower()
    local, at, domain = text.rpartition("@")
    if at and domain in _GMAIL_DOMAINS and "." in local:
        text = local.replace(".", "") + "@" + domain
    return _or_none(text)


def _phone_meta(text: str) -> str | None:
    return _or_none(_phone_digits(text))


def _phone_google(text: str) -> str | None:
    digits = _phone_digits(text)
    return "+" + digits if digits else None


def _name_meta(text: str) -> str | None:
    return _or_none(_letters(text))


def _first_name_google(text: str) -> str | None:
    return _or_none(" ".join(text.lower().split()))


def _last_name_google(text: str) -> str | None:
    return _or_none(" ".join(_without_punctuation(text.lower()).split()))


def _trim_lower(text: str) -> str | None:
    return _or_none(text.strip().lower())


def _trim(text: str) -> str | None:
    return _or_none(text.strip())


def _city_meta(text: str) -> str | None:
    return _or_none(_letters_and_digits(text))


def _state_meta(text: str) -> str | None:
    compact = _letters_and_digits(text)
    return _or_none(_US_STATES.get(compact, compact))


def _state_google(text: str) -> str | None:
    text = text.strip().lower()
    return _or_none(_US_STATES.get(_letters(text), text))


def _zip_meta(text: str) -> str | None:
    compact = _SPACES_AND_DASHES.sub("", text.lower())
    if len(compact) == 9 and _US_ZIP_PLUS4.fullmatch(compact):
        return compact[:5]
    return _or_none(compact)


def _country_code(text: str) -> str | None:
    letters = _letters(text)
    code = _COUNTRY_ALIASES.get(letters, letters)
    return code if len(code) == 2 and code.isascii() else None


def _country_google(text: str) -> str | None:
    code = _country_code(text)
    # Sent unhashed in ``country_code``, where ISO 3166-1 writes its codes in capitals.
    return code.upper() if code is not None else None


def _gender(text: str) -> str | None:
    return _GENDERS.get(text.strip().lower())


def _date_of_birth(text: str) -> str | None:
    text = text.strip()
    match = _DATE_SEPARATED.fullmatch(text) or _DATE_COMPACT.fullmatch(text)
    if match is None:
        return None
    groups = match.groups()
    year, month, day = int(groups[0]), int(groups[-2]), int(groups[-1])
    if not (year >= 1 and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        return None
    return f"{year:04d}{month:02d}{day:02d}"


_NORMALIZERS: dict[str, dict[str, Callable[[str], str | None]]] = {
    "meta": {
        "email": _email,
        "phone": _phone_meta,
        "first_name": _name_meta,
        "last_name": _name_meta,
        "city": _city_meta,
        "state": _state_meta,
        "zip": _zip_meta,
        "country": _country_code,
        "gender": _gender,
        "date_of_birth": _date_of_birth,
        "external_id": _trim,
    },
    "google": {
        "email": _email_google,
        "phone": _phone_google,
        "first_name": _first_name_google,
        "last_name": _last_name_google,
        "street_address": _trim_lower,
        "city": _trim_lower,
        "state": _state_google,
        "zip": _trim_lower,
        "country": _country_google,
    },
}
# What each platform wants hashed; the other kinds of a style are sent as normalised text.
HASHED_KINDS: dict[str, frozenset[str]] = {
    "meta": frozenset(_NORMALIZERS["meta"]),
    "google": frozenset({"email", "phone", "first_name", "last_name", "street_address"}),
}


def _lookup(kind: str, style: str) -> Callable[[str], str | None]:
    by_kind = _NORMALIZERS.get(style)
    if by_kind is None:
        raise ValueError(f"unknown hashing style {style!r}; expected one of {sorted(_NORMALIZERS)}")
    function = by_kind.get(ALIASES.get(kind, kind))
    if function is None:
        raise ValueError(f"{style} has no identifier kind {kind!r}; it has {sorted(by_kind)}")
    return function


def normalizer(kind: str, style: Style = "meta") -> IdentifierFunction:
    """The function that normalises one kind of identifier for one platform (ValueError if it has none)."""
    function = _lookup(kind, style)

    def normalize_value(value: Any) -> str | None:
        text = _as_text(value)
        return None if text is None else function(text)

    return normalize_value


def hasher(kind: str, style: Style = "meta") -> IdentifierFunction:
    """The function that normalises and hashes one kind of identifier for one platform.

    ValueError if the platform has no such kind or wants it sent unhashed (Google: city, state,
    zip, country; use ``normalizer`` for those)."""
    function = _lookup(kind, style)
    canonical = ALIASES.get(kind, kind)
    if canonical not in HASHED_KINDS[style]:
        raise ValueError(f"{style} wants {canonical!r} unhashed; normalise it instead")

    def hash_value(value: Any) -> str | None:
        text = _as_text(value)
        if text is None:
            return None
        stripped = text.strip()
        if len(stripped) == 64 and _SHA256_HEX.fullmatch(stripped):
            return stripped.lower()
        normalised = function(text)
        return None if normalised is None else hashlib.sha256(normalised.encode("utf-8")).hexdigest()

    return hash_value


def _cached(factory: Callable[[str, Style], IdentifierFunction]) -> Callable[[str, Style], IdentifierFunction]:
    cache: dict[tuple[str, str], IdentifierFunction] = {}

    def get(kind: str, style: Style) -> IdentifierFunction:
        function = cache.get((kind, style))
        if function is None:
            function = cache[(kind, style)] = factory(kind, style)
        return function

    return get


_normalizer_for = _cached(normalizer)
_hasher_for = _cached(hasher)


def normalize(kind: str, value: Any, style: Style = "meta") -> str | None:
    """``value`` normalised as ``style`` wants that kind of identifier, or None when nothing is left."""
    return _normalizer_for(kind, style)(value)


def hash_identifier(kind: str, value: Any, style: Style = "meta") -> str | None:
    """Lower-case hex SHA-256 of the normalised ``value``; an existing SHA-256 digest comes back
    lower-cased, unhashed; None when nothing is left after normalising."""
    return _hasher_for(kind, style)(value)
