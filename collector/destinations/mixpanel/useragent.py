"""$browser and $browser_version from a User-Agent, named as Mixpanel's own web SDK names them.

Mixpanel reads the browser from the request's User-Agent only for its client SDKs; events sent
through /import carry none, so the collector names the browser of the client that sent them.
The rules are tried in order (a Chrome on Edge says both "Edg/" and "Chrome").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

_VERSION = r"(\d+(?:\.\d+)+)"

# (browser, does this user agent belong to it?, where its version is)
_RULES: tuple[tuple[str, Callable[[str], bool], re.Pattern[str] | None], ...] = (
    ("Opera Mini", lambda ua: " OPR/" in ua and "Mini" in ua, re.compile(r"(?:Opera|OPR)/" + _VERSION)),
    ("Opera", lambda ua: " OPR/" in ua, re.compile(r"(?:Opera|OPR)/" + _VERSION)),
    ("BlackBerry", lambda ua: re.search(r"BlackBerry|PlayBook|BB10", ua, re.I) is not None,
     re.compile(r"BlackBerry " + _VERSION)),
    ("Internet Explorer Mobile", lambda ua: "IEMobile" in ua or "WPDesktop" in ua, re.compile(r"rv:" + _VERSION)),
    ("Samsung Internet", lambda ua: "SamsungBrowser/" in ua, re.compile(r"SamsungBrowser/" + _VERSION)),
    ("Microsoft Edge", lambda ua: "Edge" in ua or "Edg/" in ua, re.compile(r"Edge?/" + _VERSION)),
    ("Facebook Mobile", lambda ua: "FBIOS" in ua, None),
    ("Chrome", lambda ua: "Chrome" in ua, re.compile(r"Chrome/" + _VERSION)),
    ("Chrome iOS", lambda ua: "CriOS" in ua, re.compile(r"CriOS/" + _VERSION)),
    ("UC Browser", lambda ua: "UCWEB" in ua or "UCBrowser" in ua, re.compile(r"(?:UCBrowser|UCWEB)/" + _VERSION)),
    ("Firefox iOS", lambda ua: "FxiOS" in ua, re.compile(r"FxiOS/" + _VERSION)),
    ("Mobile Safari", lambda ua: "Safari" in ua and "iPhone" in ua, re.compile(r"Version/" + _VERSION)),
    ("Safari", lambda ua: "Safari" in ua, re.compile(r"Version/" + _VERSION)),
    ("Android Mobile", lambda ua: "Android" in ua, re.compile(r"android\s" + _VERSION, re.I)),
    ("Konqueror", lambda ua: "Konqueror" in ua, re.compile(r"Konqueror:" + _VERSION)),
    ("Firefox", lambda ua: "Firefox" in ua, re.compile(r"Firefox/" + _VERSION)),
    ("Internet Explorer", lambda ua: "MSIE" in ua or "Trident/" in ua, re.compile(r"(?:rv:|MSIE )" + _VERSION)),
    ("Mozilla", lambda ua: "Gecko" in ua, re.compile(r"rv:" + _VERSION)),
)


@lru_cache(maxsize=1024)  # a site's visitors share a handful of user agents
def browser(user_agent: str) -> tuple[str | None, str | None]:
    """(browser, version) of a User-Agent; (None, None) when it names no browser known here."""
    for name, belongs, version in _RULES:
        if belongs(user_agent):
            found = version.search(user_agent) if version is not None else None
            return name, found.group(1) if found else None
    return None, None
