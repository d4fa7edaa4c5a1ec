"""What a vendor destination's subscriptions cost per event: trigger, mapping, validation and
hashing, for every preset of every registered action destination, on Segment spec events.

    python -m benchmarks.actions_cost            # a table, best of 7 rounds per cell
    python -m benchmarks.actions_cost --json FILE

Each row is one subscription of a destination built from its type's example settings: the cost
of its trigger on every event of the sample, and, for the events it takes, of mapping one into its
payload, and of that plus validating and hashing it. Nothing is sent; this is the per-event work the layer adds before a
request is built (target: under 10 us per event per action for a preset).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import timeit
from pathlib import Path
from typing import Any

from collector.destinations.actions.destination import ActionDestination
from collector.destinations.actions.subscriptions import compiled_subscriptions
from collector.destinations.base import PositiveInt  # noqa: F401 -- loads the destination base first
from collector.destinations.registry import destination_class, destination_types
from collector.config.loader import load_config_text

import yaml

NOW = "2026-12-01T12:00:00.000Z"
CONTEXT = {
    "ip": "203.0.113.9",
    "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "library": {"name": "analytics.js", "version": "next-1.84.3"},
    "page": {"url": "https://shop.example.com/checkout", "path": "/checkout", "title": "Checkout",
             "referrer": "https://www.google.com/"},
    "traits": {"email": "Ann.Lee@example.com", "phone": "+1 650 555 1212", "first_name": "Ann"},
    "locale": "en-US",
}
PRODUCTS = [
    {"product_id": f"sku-{i}", "name": f"Product {i}", "price": 19.99 + i, "quantity": 1 + i % 2,
     "category": "Shoes", "brand": "Acme"}
    for i in range(3)
]


def sample_events() -> list[dict[str, Any]]:
    base = {"userId": "user-0042", "anonymousId": "anon-0042-5f1c2a", "messageId": "bench-message-0001",
            "timestamp": NOW, "receivedAt": NOW, "sentAt": NOW, "context": CONTEXT}
    return [
        {**base, "type": "track", "event": "Order Completed",
         "properties": {"order_id": "o-0001", "total": 69.97, "revenue": 64.97, "currency": "USD",
                        "products": PRODUCTS}},
        {**base, "type": "track", "event": "Product Viewed",
         "properties": {"product_id": "sku-1", "name": "Product 1", "price": 20.99, "currency": "USD"}},
        {**base, "type": "track", "event": "Signed Up", "properties": {"plan": "pro", "type": "email"}},
        {**base, "type": "page", "name": "Checkout", "properties": {"url": CONTEXT["page"]["url"]}},
        {**base, "type": "identify", "traits": {"email": "ann.lee@example.com", "name": "Ann Lee", "plan": "pro"}},
    ]


def settings_of(type_name: str) -> Any:
    """The type's example settings, ${VAR}s filled in, loaded as the collector loads a config."""
    example = json.loads(re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}", "bench", json.dumps(
        destination_class(type_name).Config.example)))
    text = yaml.safe_dump({"sources": {"web": {"write_key": "wk"}}, "destinations": {"d": example}})
    return load_config_text(text, f"<{type_name} example>").destinations["d"]


def best_us(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6


def measure() -> list[dict[str, Any]]:
    events = sample_events()
    rows = []
    for type_name in destination_types():
        if not issubclass(destination_class(type_name), ActionDestination):
            continue
        for sub in compiled_subscriptions(settings_of(type_name)):
            trigger_us = best_us(lambda: [sub.matches(e) for e in events], 2000) / len(events)
            taken = [e for e in events if sub.matches(e)]
            prepare_us, mapping_us = [], []
            for event in taken:
                try:
                    sub.prepare(event)
                except ValueError:
                    continue  # a payload this sample cannot fill (e.g. a required id it lacks)
                prepare_us.append(best_us(lambda event=event: sub.prepare(event), 500))
                mapping_us.append(best_us(lambda event=event: sub.mapping(event), 500))
            prepare = statistics.mean(prepare_us) if prepare_us else None
            mapping = statistics.mean(mapping_us) if mapping_us else None
            rows.append({
                "type": type_name, "subscription": sub.name, "action": sub.action.name,
                "trigger_us": trigger_us, "events_taken": len(taken),
                "mapping_us": mapping, "prepare_us": prepare,
                "trigger_mapping_us": trigger_us + (mapping or 0.0),
                "total_us": trigger_us + (prepare or 0.0),
            })
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the rows to FILE")
    args = parser.parse_args()
    rows = measure()
    print("| type | subscription | action | trigger | mapping | trigger + mapping | mapping + validation + hashing "
          "| all (us/event) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if r["prepare_us"] is None:
            print(f"| {r['type']} | {r['subscription']} | {r['action']} | {r['trigger_us']:.2f} | - | - | - | - |")
            continue
        print(f"| {r['type']} | {r['subscription']} | {r['action']} | {r['trigger_us']:.2f} | {r['mapping_us']:.2f} "
              f"| {r['trigger_mapping_us']:.2f} | {r['prepare_us']:.2f} | {r['total_us']:.2f} |")
    measured = [r for r in rows if r["prepare_us"] is not None]
    if measured:
        for key, what in (("trigger_mapping_us", "trigger + mapping"), ("total_us", "trigger + mapping + validation"
                                                                                       " + hashing")):
            figures = [r[key] for r in measured]
            print(f"{what}: median {statistics.median(figures):.2f} us, max {max(figures):.2f} us per event, over "
                  f"{len(figures)} subscriptions with a sample event (target: under 10 us)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
