"""Starting what a scenario measures: the collector, its baselines and the receiving sink."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks import harness
from benchmarks.baselines.nginx import nginx
from benchmarks.harness import HOST, Proc, free_port, http_get, metric, parse_metrics
from benchmarks.payloads import WRITE_KEY

COMMITTED = "collector_events_committed_total"
QUEUE_DEPTH = "collector_destination_queue_depth"
DELIVERED = "collector_delivered_events_total"


@dataclass
class Server:
    proc: Proc
    url: str

    def stop(self) -> None:
        self.proc.stop()


def noop(workdir: Path) -> Server:
    return _baseline(workdir, "benchmarks.baselines.noop_server", "no-op server", "noop.log")


def validate_only(workdir: Path) -> Server:
    """The collector's per-event work without storage (benchmarks/baselines/validate_server.py)."""
    return _baseline(workdir, "benchmarks.baselines.validate_server", "validate-only server", "validate.log")


def _baseline(workdir: Path, module: str, name: str, log: str) -> Server:
    port = free_port()
    argv = harness.python_module(module, "--port", str(port))
    proc = Proc(name, argv, workdir / log).start()
    url = f"http://{HOST}:{port}"
    proc.wait_http(url + "/readyz")
    return Server(proc, url)


def nginx_server(workdir: Path) -> Server:
    port = free_port()
    proc = nginx(workdir, port).start()
    url = f"http://{HOST}:{port}"
    proc.wait_http(url + "/")
    return Server(proc, url)


class Sink(Server):
    def stats(self) -> dict:
        return json.loads(http_get(self.url + "/stats")[1])


def sink(workdir: Path, port: int | None = None) -> Sink:
    port = port or free_port()
    argv = harness.python_module("benchmarks.sink", "--port", str(port))
    proc = Proc("sink", argv, workdir / f"sink-{port}.log").start()
    url = f"http://{HOST}:{port}"
    proc.wait_http(url + "/readyz")
    return Sink(proc, url)


def webhook(url: str, fast_retry: bool = False) -> dict:
    dest = {
        "type": "webhook",
        "url": url,
        "batch": {"max_events": 1000, "max_bytes": "1MiB", "max_wait": "50ms"},
    }
    if fast_retry:
        # For a destination that is down on purpose and comes back: retry soon after it does.
        dest["retry"] = {"initial_backoff": "100ms", "max_backoff": "500ms"}
    return dest


def vendor_destinations(sink_url: str) -> dict[str, dict]:
    """Every action (vendor) destination, from its type's example settings with its secrets
    filled in, pointed at the sink (which answers as each vendor does, tokens included)."""
    import re

    from collector.destinations.actions.destination import ActionDestination
    from collector.destinations.registry import destination_class, destination_types

    found = {}
    for type_name in destination_types():
        cls = destination_class(type_name)
        if not issubclass(cls, ActionDestination):
            continue
        text = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}", "bench", json.dumps(cls.Config.example))
        settings = json.loads(text) | {"endpoint": sink_url, "enabled": True}
        if isinstance(settings.get("oauth"), dict):
            settings["oauth"] = settings["oauth"] | {"token_url": f"{sink_url}/token"}
        settings["batch"] = {"max_events": 1000, "max_bytes": "4MiB", "max_wait": "50ms"}
        found[type_name] = settings
    return found


class Collector(Server):
    def metrics(self, timeout: float = 30.0):
        status, body = http_get(self.url + "/metrics", timeout=timeout)
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        return parse_metrics(body.decode())

    def committed(self, timeout: float = 30.0) -> float:
        return metric(self.metrics(timeout), COMMITTED)

    def queue_depth(self) -> float:
        return metric(self.metrics(), QUEUE_DEPTH)


def collector(workdir: Path, name: str, destinations: dict[str, dict], sync: str = "full",
              source: dict | None = None, tracking_plans: dict | None = None,
              storage: dict | None = None) -> Collector:
    """A collector with its own empty storage directory, configured for the benchmark; ``source``
    adds keys to its one source (e.g. a tracking plan and PII rules), ``storage`` to its storage."""
    directory = workdir / name
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "server": {"listen": f"{HOST}:{port}"},
        "storage": {"path": str(directory / "data"), "sync": sync, **(storage or {})},
        "logging": {"level": "warning"},
        "sources": {"bench": {"write_key": WRITE_KEY, **(source or {})}},
        "destinations": destinations,
    }
    if tracking_plans:
        config["tracking_plans"] = tracking_plans
    path = directory / "collector.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    argv = harness.python_module("collector", "run", "--config", str(path))
    proc = Proc(f"collector ({name})", argv, directory / "collector.log").start()
    url = f"http://{HOST}:{port}"
    proc.wait_http(url + "/readyz", timeout=60)
    return Collector(proc, url)


def wait_for(predicate, timeout: float, what: str, procs: list[Proc] = ()) -> None:
    """Poll until ``predicate()``; fail early if one of ``procs`` died."""
    deadline = time.monotonic() + timeout
    while not predicate():
        for p in procs:
            p.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)
