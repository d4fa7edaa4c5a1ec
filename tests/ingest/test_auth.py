"""auth.py: the three ways clients give their write key, and every way of getting it wrong."""

from __future__ import annotations

import base64

import pytest

from collector.config.model import SourceConfig
from collector.ingest.auth import header_write_key, resolve_source
from collector.ingest.errors import IngestError

SOURCES = {
    "wk_web": ("website", SourceConfig(write_key="wk_web")),
    "wk_server": ("backend", SourceConfig(write_key="wk_server")),
    "wk_off": ("retired", SourceConfig(write_key="wk_off", enabled=False)),
    "wk:colon": ("colon", SourceConfig(write_key="wk:colon")),
}


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def refused(authorization: str | None, body_key: object) -> tuple[int, str]:
    with pytest.raises(IngestError) as caught:
        resolve_source(authorization, body_key, SOURCES)
    error = caught.value
    assert error.message
    return error.status, error.code


# -- the three modes ----------------------------------------------------------------------------


def test_write_key_in_the_body() -> None:
    assert resolve_source(None, "wk_web", SOURCES) == "website"
    assert resolve_source("", "wk_server", SOURCES) == "backend"


def test_basic_auth_with_the_write_key_as_user_name() -> None:
    assert resolve_source(basic("wk_web"), None, SOURCES) == "website"
    assert resolve_source(basic("wk_server"), None, SOURCES) == "backend"


def test_basic_auth_ignores_the_password() -> None:
    assert resolve_source(basic("wk_web", "anything"), None, SOURCES) == "website"


def test_basic_auth_without_a_colon() -> None:
    header = "Basic " + base64.b64encode(b"wk_web").decode()
    assert resolve_source(header, None, SOURCES) == "website"


@pytest.mark.parametrize("header", ["basic {}", "BASIC {}", "Basic   {}  ", "  Basic {}"])
def test_basic_scheme_and_spacing_are_lenient(header: str) -> None:
    credentials = base64.b64encode(b"wk_web:").decode()
    assert resolve_source(header.format(credentials), None, SOURCES) == "website"


def test_bearer_token_with_the_write_key_in_the_body() -> None:
    assert resolve_source("Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig", "wk_web", SOURCES) == "website"
    assert resolve_source("bearer token", "wk_server", SOURCES) == "backend"


def test_the_header_decides_when_both_are_given() -> None:
    assert resolve_source(basic("wk_server"), "wk_web", SOURCES) == "backend"


def test_an_empty_basic_user_falls_back_to_the_body() -> None:
    assert resolve_source(basic(""), "wk_web", SOURCES) == "website"
    assert resolve_source("Basic", "wk_web", SOURCES) == "website"


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "", "Bearer tok", "Basic " + base64.b64encode(b":").decode()])
@pytest.mark.parametrize("body_key", [None, ""])
def test_no_write_key_is_401(authorization: str | None, body_key: object) -> None:
    assert refused(authorization, body_key) == (401, "missing_write_key")


@pytest.mark.parametrize(
    "authorization, body_key",
    [
        (None, "wk_nope"),
        (None, "WK_WEB"),
        (None, "wk_web "),
        ("Bearer tok", "wk_nope"),
        (basic("wk_nope"), None),
        (basic("wk_nope"), "wk_web"),  # a wrong header is not rescued by the body
        ("Digest username=wk_web", "wk_nope"),
    ],
)
def test_an_unknown_write_key_is_401(authorization: str | None, body_key: object) -> None:
    assert refused(authorization, body_key) == (401, "invalid_write_key")


@pytest.mark.parametrize("body_key", [123, True, ["wk_web"], {"key": "wk_web"}])
def test_a_write_key_that_is_not_a_string_is_401(body_key: object) -> None:
    assert refused(None, body_key) == (401, "invalid_write_key")


@pytest.mark.parametrize(
    "credentials",
    ["%%%", "d2tfd2ViOg", "d2tf d2ViOg==", "é", "d2tfd2Vi\u00e9Og==", "//79"],
    ids=["symbols", "unpadded", "inner-space", "non-ascii", "non-ascii-inside", "not-utf8"],
)
def test_a_broken_basic_header_is_401(credentials: str) -> None:
    assert refused(f"Basic {credentials}", "wk_web") == (401, "invalid_authorization")


def test_a_disabled_source_is_403() -> None:
    assert refused(None, "wk_off") == (403, "source_disabled")
    assert refused(basic("wk_off"), None) == (403, "source_disabled")


def test_the_error_names_no_source_for_an_unknown_key() -> None:
    with pytest.raises(IngestError) as caught:
        resolve_source(None, "wk_nope", SOURCES)
    body = caught.value.body()
    assert b"website" not in body and b"wk_web" not in body


# -- header_write_key ---------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "Bearer abc", "Token abc", "Digest x=1"])
def test_no_basic_header_gives_no_key(header: str | None) -> None:
    assert header_write_key(header) is None


def test_the_write_key_is_the_part_before_the_first_colon() -> None:
    assert header_write_key(basic("wk_web", "a:b:c")) == "wk_web"
    assert header_write_key(basic("wk_ünïcode")) == "wk_ünïcode"
