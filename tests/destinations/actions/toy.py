"""A small action destination for the layer's tests: a made-up vendor ("Toy") whose API answers
207 with one status per event, so that per-event outcomes can be exercised. Registered by the
``toy_registered`` fixture only; never by the collector itself."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from collector.destinations.actions.destination import (
    Action,
    ActionContext,
    ActionDestination,
    ActionItem,
    ActionSettings,
    Preset,
)
from collector.destinations.actions.fields import Field
from collector.destinations.actions.settings import Secret
from collector.destinations.base import DELIVERED, Outcome, reject, retry


class ToySettings(ActionSettings, tag="toy", kw_only=True):
    api_key: Secret
    region: Literal["us", "eu"] = "us"

    example: ClassVar[dict[str, Any]] = {"type": "toy", "api_key": "${TOY_API_KEY}", "region": "eu"}


def read_statuses(ctx: ActionContext, response: Any, items: list[ActionItem]) -> list[Outcome]:
    """207: ``{"results": [{"status": 200} | {"status": 400, "error": "..."}]}``, one per item."""
    if response.status != 207:
        return ctx.each(ctx.classify(response), items)
    answers = []
    for result in response.json()["results"]:
        status = result["status"]
        if status < 300:
            answers.append(DELIVERED)
        elif status == 401:
            answers.append(Outcome("retry", result.get("error", "unauthorized"), credentials_refused=True))
        elif status >= 500 or status == 429:
            answers.append(retry(result.get("error", ""), result.get("retry_after")))
        else:
            answers.append(reject(result.get("error", "")))
    return answers


async def send_events(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
    response = await ctx.request("POST", "/v1/events", json={"events": [item.payload for item in items]})
    return read_statuses(ctx, response, items)


async def add_to_list(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
    list_id = items[0].payload["list_id"]
    response = await ctx.request("POST", f"/v1/lists/{list_id}/members",
                                 json={"members": [item.payload["email"] for item in items]})
    return read_statuses(ctx, response, items)


async def send_page(ctx: ActionContext, items: list[ActionItem]) -> list[Outcome]:
    response = await ctx.request("POST", "/v1/page", json=items[0].payload)
    return ctx.each(ctx.classify(response), items)


TRACK = Action(
    "track", "Track an event", "Send a track call as a Toy event.",
    {
        "name": Field("string", "The event's name", required=True, default={"@path": "$.event"}),
        "user_id": Field("string", "The user", default={"@path": "$.userId"}),
        "email": Field("string", "The user's e-mail, hashed", hashed="email",
                       default={"@path": "$.properties.email"}),
        "properties": Field("object", "Everything else", default={"@path": "$.properties"}),
        "message_id": Field("string", "For dedup", default={"@path": "$.messageId"}),
        "value": Field("number", "The event's value", default={"@path": "$.properties.value"}),
    },
    send_events, batch_size=3,
)
ADD_TO_LIST = Action(
    "add_to_list", "Add to a list", "Add the user's e-mail to a Toy list.",
    {
        "list_id": Field("string", "The list", required=True, default={"@path": "$.properties.list_id"}),
        "email": Field("string", "The e-mail, hashed", required=True, hashed="email",
                       default={"@path": "$.context.traits.email"}),
    },
    add_to_list, batch_size=100, batch_keys=("list_id",),
)
PAGE = Action(
    "page", "Page view", "One page view per request.",
    {"url": Field("string", "The page's URL", default={"@path": "$.properties.url"}),
     "count": Field("integer", "A number", default=1)},
    send_page,
)


class Toy(ActionDestination):
    """Sends events to the Toy API, a made-up vendor used by the tests."""

    Config = ToySettings
    display_name = "Toy"
    default_endpoint = "https://api.toy.example"
    actions = (TRACK, ADD_TO_LIST, PAGE)
    presets = (
        Preset("Track Calls", "track", 'type = "track" and event != "Audience Entered"'),
        Preset("Audience Entered", "add_to_list", 'type = "track" and event = "Audience Entered"'),
        Preset("Page Calls", "page", 'type = "page"'),
    )
    config: ToySettings

    def vendor_endpoint(self) -> str:
        return "https://eu.api.toy.example" if self.config.region == "eu" else self.default_endpoint

    def headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.config.api_key}


class ToyServer:
    """The Toy API, in process: records every request and answers as the Toy vendor would.

    ``/v1/events`` answers 207 with one status per event: the status in the event's
    ``properties.answer`` (200 by default), with ``error`` for a failure. A request without the
    right ``X-Api-Key`` (or Bearer token, when ``tokens`` is set) gets 401. ``script`` holds
    whole answers (status, headers, body) given to the next requests instead. With
    ``ignore_answers`` every event is taken, whatever its ``answer``."""

    def __init__(self, api_key: str = "toy-key", tokens: set[str] | None = None) -> None:
        from aiohttp import web

        self.api_key = api_key
        self.tokens = tokens
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, str], bytes]] = []
        self.ignore_answers = False
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.app = app
        self.server: Any = None

    async def __aenter__(self) -> ToyServer:
        from aiohttp.test_utils import TestServer

        self.server = TestServer(self.app)
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    async def _handle(self, request: Any) -> Any:
        import json

        from aiohttp import web

        body = await request.read()
        self.requests.append({"method": request.method, "path": request.path, "host": request.host,
                              "headers": dict(request.headers), "json": json.loads(body) if body else None})
        if self.script:
            status, headers, answer = self.script.pop(0)
            return web.Response(status=status, headers=headers, body=answer)
        authorized = request.headers.get("X-Api-Key") == self.api_key
        if self.tokens is not None:
            authorized = authorized and request.headers.get("Authorization", "").removeprefix("Bearer ") in self.tokens
        if not authorized:
            return web.json_response({"error": "unauthorized"}, status=401)
        if request.path == "/v1/events":
            results = []
            for event in json.loads(body)["events"]:
                status = 200 if self.ignore_answers else int((event.get("properties") or {}).get("answer", 200))
                results.append({"status": status} if status < 300 else {"status": status, "error": f"refused {status}"})
            return web.json_response({"results": results}, status=207)
        if request.path.startswith("/v1/lists/"):
            return web.json_response({"results": [{"status": 200}] * len(json.loads(body)["members"])}, status=207)
        return web.json_response({"ok": True})
