"""Action destinations: a vendor described as settings, actions with typed fields, and presets.

The model is Segment's action destinations, with its traps fixed. A vendor module declares:

- ``Config``: its settings, a msgspec struct subclassing ``ActionSettings`` (which adds
  ``mappings``, ``presets``, ``endpoint``, ``rate_limit``, ``parallel_requests`` to what every
  destination has, ``filters`` among them); a setting typed ``Secret`` is never logged and is
  printed as ``${VAR}`` by the catalogue;
- ``actions``: each an ``Action`` with typed ``fields`` (``Field``: type, required, multiple,
  allow_null, default, hashed ...), a ``batch_size`` (None: one event per request), optional
  ``batch_keys`` and ``perform(ctx, items) -> list[Outcome]``, one outcome per item, in order;
- ``presets``: the subscriptions it starts with (``Preset(name, action, trigger, mapping)``,
  mapping None meaning the fields' defaults);
- ``display_name``, ``default_endpoint`` (or ``vendor_endpoint()`` for regions), and optionally
  ``headers()`` (API keys, Basic auth) and ``token_source_for()`` (an OAuth 2 or JWT token source).

A minimal vendor::

    from typing import ClassVar

    from collector.destinations.actions.auth import bearer
    from collector.destinations.actions.destination import (
        Action, ActionContext, ActionDestination, ActionItem, ActionSettings, Preset)
    from collector.destinations.actions.fields import Field
    from collector.destinations.actions.settings import Secret
    from collector.destinations.base import DELIVERED, Outcome, reject

    class Settings(ActionSettings, tag="acme", kw_only=True):
        api_key: Secret
        example: ClassVar[dict] = {"type": "acme", "api_key": "${ACME_API_KEY}"}

    async def send_events(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
        response = await ctx.request("POST", "/v1/batch", json={"events": [i.payload for i in items]})
        if response.status == 207:  # the vendor says which events failed
            return [DELIVERED if r["ok"] else reject(r["error"]) for r in response.json()["results"]]
        return ctx.each(ctx.classify(response), items)

    class Acme(ActionDestination):
        \"\"\"Send events to Acme's event API.\"\"\"
        Config = Settings
        display_name = "Acme"
        default_endpoint = "https://api.acme.example"
        actions = (Action("track", "Track", "Send an event to Acme.", {
            "name": Field("string", "The event", required=True, default={"@path": "$.event"}),
            "email": Field("string", "Hashed", hashed="email", default={"@path": "$.context.traits.email"}),
        }, send_events, batch_size=500),)
        presets = (Preset("Track Calls", "track", 'type = "track"'),)

        def headers(self) -> dict[str, str]:
            return {"Authorization": bearer(self.config.api_key)}

and one line in ``collector/destinations/registry.py``.

How an event travels (modules in brackets):

1. The dispatcher routes it (sources, consent, ``integrations``), then runs the destination's
   ``filters`` [filters.py], for every destination type.
2. The config loader compiled, once, every subscription [subscriptions.py]: the presets ``presets:``
   keeps, replaced or added to by ``mappings:`` (a mapping named like a preset replaces it, its
   ``fields`` laid over the preset's; any other adds one); each trigger into a predicate [fql.py],
   each mapping into a closure [mapping.py], each action's fields into a validator [fields.py] and
   its ``hashed`` fields into a hasher [hashing.py]. Every problem is a ``collector check`` error.
3. ``ActionDestination.send`` [destination.py] gives the event to every subscription whose
   trigger matches: mapped, validated, hashed; grouped by subscription and batch keys; cut into
   requests of ``batch_size``; performed, several at a time, one user's requests in order. An
   invalid payload rejects that event alone. An event no subscription takes is counted, logged
   (the first few a minute) and passed.
4. Each perform answers for each item; an event's outcome is the worst of its actions' (reject >
   retry > ok), and the dispatcher settles each event: delivered, dead-lettered with its own
   reason, or retried alone (and then only for the actions that failed).
5. Every request goes through ``ActionContext.request`` [context.py]: the ``endpoint`` override,
   headers, access token (a 401 gets one new token and one more try, never a loop), the
   ``rate_limit`` and the pause a 429 or Retry-After sets for every lane [ratelimit.py]; reasons
   are stripped of secrets [auth.py].

``collector destinations [TYPE]`` and the README's table come from the same definitions
[catalogue.py].
"""
