"""Identifier normalisation and hashing, against the rules of the analytics-ads fact sheet
(§5 Google Ads "Hashing", §6 Meta CAPI "user_data hashing")."""

from __future__ import annotations

import hashlib

import pytest

from collector.destinations.actions.hashing import (
    HASHED_KINDS,
    KINDS,
    hash_identifier,
    hasher,
    is_sha256,
    normalize,
    normalizer,
)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# (kind, input, what Meta wants hashed)
META = [
    # em: trim, lowercase
    ("email", "  John.Doe@Example.COM ", "john.doe@example.com"),
    ("email", "John.Doe@GMail.com", "john.doe@gmail.com"),  # the gmail dot rule is Google's only
    ("email", " Jürgen.Müller@Beispiel.DE", "jürgen.müller@beispiel.de"),
    ("email", "ÅSA@EXAMPLE.SE", "åsa@example.se"),
    # ph: digits only, with the country code, no leading zeros or '+'
    ("phone", "+1 (650) 555-1212", "16505551212"),
    ("phone", "(650) 555-1212", "6505551212"),  # no default country: the sheet names none
    ("phone", "0044 20 7946 0958", "442079460958"),
    ("phone", "+44 (0)20 7946 0958", "442079460958"),
    ("phone", 16505551212, "16505551212"),
    ("phone", "+٤٤ ٢٠", "4420"),  # Arabic-Indic digits
    # fn, ln: lowercase, letters only, no punctuation, UTF-8 allowed
    ("first_name", "  Mary-Jane ", "maryjane"),
    ("first_name", "José", "josé"),
    ("first_name", "Jose\u0301", "josé"),  # a combining accent is kept with its letter
    ("last_name", "O'Brien", "obrien"),
    ("last_name", "Müller-Lüdenscheidt", "müllerlüdenscheidt"),
    ("last_name", "Nguyễn Văn", "nguyễnvăn"),
    # ct: lowercase, no spaces or punctuation
    ("city", "San Francisco", "sanfrancisco"),
    ("city", "St. Louis", "stlouis"),
    ("city", " Zürich ", "zürich"),
    # st: 2-letter code, lowercase
    ("state", "CA", "ca"),
    ("state", " California ", "ca"),
    ("state", "new york", "ny"),
    # zp: lowercase, no spaces or dashes; US: first 5 digits
    ("zip", "94107-1234", "94107"),
    ("zip", "941071234", "94107"),
    ("zip", " 94107 ", "94107"),
    ("zip", "SW1A 1AA", "sw1a1aa"),
    ("zip", 94107, "94107"),
    # country: ISO-3166-1 alpha-2, lowercase
    ("country", "US", "us"),
    ("country", " usa ", "us"),
    ("country", "United States", "us"),
    ("country", "UK", "gb"),
    ("country", "de", "de"),
    # ge: f or m
    ("gender", "Female", "f"),
    ("gender", " M ", "m"),
    ("gender", "f", "f"),
    # db: YYYYMMDD
    ("date_of_birth", "1990-01-31", "19900131"),
    ("date_of_birth", "1990-01-31T00:00:00.000Z", "19900131"),
    ("date_of_birth", "1990/1/5", "19900105"),
    ("date_of_birth", "19900131", "19900131"),
    ("date_of_birth", 19900131, "19900131"),
    ("date_of_birth", "2024-02-29", "20240229"),
    # external_id: trimmed only (an ID is case-sensitive)
    ("external_id", "  User-4711 ", "User-4711"),
    ("external_id", 4711, "4711"),
]

# (kind, input, what Google wants, hashed or not)
GOOGLE = [
    # trim, lowercase; gmail.com/googlemail.com: every dot of the local part goes
    ("email", " John.Doe@Gmail.com ", "johndoe@gmail.com"),
    ("email", "j.o.h.n@googlemail.com", "john@googlemail.com"),  # all dots, not only the first
    ("email", "john.doe@example.com", "john.doe@example.com"),
    ("email", "john.doe@mail.gmail.com", "john.doe@mail.gmail.com"),
    # phone: E.164
    ("phone", "+1 (650) 555-1212", "+16505551212"),
    ("phone", "001 650 555 1212", "+16505551212"),
    ("phone", "+44 (0)20 7946 0958", "+442079460958"),
    # first name: lowercase, extra spaces removed
    ("first_name", "  Mary   Jane ", "mary jane"),
    ("first_name", "Anne-Marie", "anne-marie"),
    # last name: lowercase, no punctuation
    ("last_name", " O'Brien-Smith ", "obriensmith"),
    ("last_name", "van der Berg", "van der berg"),
    ("last_name", "D’Àngelo", "dàngelo"),
    # street address: lowercase
    ("street_address", " 1600 Amphitheatre Pkwy ", "1600 amphitheatre pkwy"),
    # not hashed: city, state, postal code, country
    ("city", " San Francisco ", "san francisco"),
    ("state", "California", "ca"),
    ("state", "Bavaria", "bavaria"),
    ("zip", " 94107-1234 ", "94107-1234"),
    ("country", " us ", "US"),
    ("country", "United Kingdom", "GB"),
]

NOTHING = [None, "", "   ", True, 3.5, [], {}]


@pytest.mark.parametrize("kind, value, expected", META)
def test_meta_normalisation(kind, value, expected):
    assert normalize(kind, value, "meta") == expected


@pytest.mark.parametrize("kind, value, expected", META)
def test_meta_hash_is_sha256_of_the_normalised_utf8(kind, value, expected):
    assert hash_identifier(kind, value, "meta") == sha256(expected)


@pytest.mark.parametrize("kind, value, expected", GOOGLE)
def test_google_normalisation(kind, value, expected):
    assert normalize(kind, value, "google") == expected


@pytest.mark.parametrize(
    "kind, value, expected", [case for case in GOOGLE if case[0] in HASHED_KINDS["google"]]
)
def test_google_hash_is_sha256_of_the_normalised_utf8(kind, value, expected):
    assert hash_identifier(kind, value, "google") == sha256(expected)


def test_phone_differs_by_vendor():
    meta = hash_identifier("phone", "+1 650 555 1212", "meta")
    google = hash_identifier("phone", "+1 650 555 1212", "google")
    assert meta == sha256("16505551212")
    assert google == sha256("+16505551212")


@pytest.mark.parametrize(
    "kind, value",
    [
        ("phone", "n/a"),
        ("phone", "000"),
        ("first_name", "--- "),
        ("gender", "x"),
        ("gender", "other"),
        ("country", "Germany"),  # not a code, and not a name the table knows
        ("country", "éé"),
        ("date_of_birth", "1990-02-30"),
        ("date_of_birth", "1990-13-01"),
        ("date_of_birth", "31/01/1990"),  # day and month order cannot be known
        ("date_of_birth", "yesterday"),
    ],
)
def test_values_that_cannot_take_the_vendors_form_give_none(kind, value):
    assert normalize(kind, value, "meta") is None
    assert hash_identifier(kind, value, "meta") is None


@pytest.mark.parametrize("style", ["meta", "google"])
@pytest.mark.parametrize("value", NOTHING)
def test_missing_empty_and_unusable_values_give_none(style, value):
    for kind in KINDS:
        try:
            normalise_value = normalizer(kind, style)
        except ValueError:
            continue  # the style has no such kind
        assert normalise_value(value) is None, kind
        if kind in HASHED_KINDS[style]:
            assert hasher(kind, style)(value) is None, kind


@pytest.mark.parametrize("style", ["meta", "google"])
def test_already_hashed_values_are_not_hashed_twice(style):
    digest = sha256("someone@example.com")
    for kind in HASHED_KINDS[style]:
        # The phone normaliser would strip the letters, the name normaliser the digits: neither runs.
        assert hash_identifier(kind, digest.upper(), style) == digest, kind
        assert hash_identifier(kind, f"  {digest} ", style) == digest, kind


def test_is_sha256():
    digest = sha256("x")
    assert is_sha256(digest)
    assert is_sha256(digest.upper())
    assert not is_sha256(digest[:-1])
    assert not is_sha256(digest + "0")
    assert not is_sha256(digest[:-1] + "g")
    assert not is_sha256("٠" * 64)  # Unicode digits are not hex


def test_meta_user_data_keys_are_other_names_of_the_kinds():
    assert normalize("em", " A@B.COM") == normalize("email", " A@B.COM") == "a@b.com"
    assert hash_identifier("ph", "+1 650 555 1212") == sha256("16505551212")
    assert normalize("zp", "94107-1234") == "94107"


def test_google_refuses_to_hash_what_it_wants_unhashed():
    for kind in ("city", "state", "zip", "country"):
        with pytest.raises(ValueError, match="unhashed"):
            hasher(kind, "google")
        with pytest.raises(ValueError, match="unhashed"):
            hash_identifier(kind, "x", "google")


@pytest.mark.parametrize(
    "kind, style",
    [("shoe_size", "meta"), ("gender", "google"), ("street_address", "meta"), ("email", "tiktok")],
)
def test_unknown_kinds_and_styles_are_refused_at_compile_time(kind, style):
    with pytest.raises(ValueError):
        normalizer(kind, style)
    with pytest.raises(ValueError):
        hasher(kind, style)
