"""Warnings about a configuration that loads but probably does not do what its author wants.
`collector check` prints them and the collector logs them at start."""

from __future__ import annotations

from collector.config.model import Config


def advice(config: Config) -> list[str]:
    notes = []
    if not config.sources:
        notes.append("no sources, so every tracking request will be answered 401")
    explicit_origins = [o for o in config.server.cors.allowed_origins if o != "*"]
    if config.browser.enabled and config.browser.cookie.enabled and not explicit_origins:
        notes.append(
            "browser.cookie.enabled: server.cors.allowed_origins lists no origin, so browsers send the cookie"
            " only from pages on the collector's own origin; list the site's origins (e.g."
            " https://www.example.com) for pages on another origin (credentials are never allowed to '*')"
        )
    return notes
