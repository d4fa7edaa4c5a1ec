"""The YAML shapes the layer adds to a destination's config, and the problems found in them.

``filters:`` is accepted by every destination type (``DestinationConfig`` holds it);
``mappings:``, ``presets:``, ``endpoint`` and ``rate_limit`` only by action destinations
(``ActionSettings`` in destination.py). These structs import nothing of the layer, so that
``collector.destinations.base`` can use them without a cycle.
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

import msgspec

Percent = Annotated[float, msgspec.Meta(ge=0, le=100)]
# The settings of a vendor that hold a secret: never logged, printed as ${VAR} by the catalogue.
Secret = Annotated[str, msgspec.Meta(extra={"secret": True})]


class _Shape(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class SampleConfig(_Shape):
    # The share of matching events kept, 0-100.
    percent: Percent
    # A dotted path such as userId: events with the same value there share one fate (an event
    # without a value there is kept or dropped at random).
    path: str | None = None


class FilterConfig(_Shape):
    """One destination filter: a condition and what to do with the events it matches.

    In YAML ``if`` is the key of the condition (FQL); without it the filter applies to every event.
    Property lists map an object's dotted path (``properties``, ``context.page``; ``""`` for the
    top level) to the keys to drop or to keep in it; a path through a list of objects applies to
    each of them (``properties.products: [price]``).
    """

    if_: str | None = msgspec.field(default=None, name="if")
    enabled: bool = True
    drop: bool = False
    sample: SampleConfig | None = None
    drop_properties: dict[str, list[str]] | None = None
    allow_properties: dict[str, list[str]] | None = None


class MappingConfig(_Shape):
    """A subscription written in the config: which events (``trigger``) go to which ``action``,
    and where each of its fields comes from (``fields``).

    A mapping named like one of the destination's presets replaces that preset: what it leaves
    out (action, trigger) is the preset's, and its ``fields`` are laid over the preset's mapping.
    Any other mapping adds a subscription; it needs ``action`` and ``trigger``, and its ``fields``
    are laid over the action's field defaults. A field set to null is removed from the mapping
    (write ``{"@literal": null}`` to send a null).
    """

    name: str | None = None
    action: str | None = None
    trigger: str | None = None
    fields: dict[str, Any] = {}
    enabled: bool = True


class ConfigProblem(NamedTuple):
    """One problem in a destination's settings, at a path relative to the destination."""

    path: tuple[str | int, ...]
    message: str
    at_key: bool = False  # point at the key rather than at its value
    # For a problem inside a string (an FQL error): the 1-based column in that string.
    column: int | None = None


class SettingsError(ValueError):
    """A destination's settings cannot be compiled; ``problems`` says every reason."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("; ".join(f"{dotted(p.path)}: {p.message}" for p in problems))
        self.problems = problems


def dotted(path: tuple[str | int, ...]) -> str:
    """("mappings", 0, "trigger") -> "mappings[0].trigger"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
