"""The `collector` command: run, check, snippet, destinations, version."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from collector import __version__

log = logging.getLogger("collector")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="collector", description="A Segment-compatible event collector.")
    parser.add_argument("--version", action="version", version=f"collector {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the collector")
    run.add_argument("--config", "-c", help="YAML config file (default: the embedded defaults)")
    check = commands.add_parser("check", help="validate a config file and exit (1 on any error)")
    check.add_argument("--config", "-c", required=True, help="YAML config file")
    snippet = commands.add_parser("snippet", help="print the ready-to-paste browser snippet for a source")
    snippet.add_argument("--config", "-c", help="YAML config file (default: the embedded defaults)")
    snippet.add_argument("--source", help="the source's name (default: the only source)")
    snippet.add_argument("--origin", help="the collector's public origin (default: server.public_url)")
    snippet.add_argument("--official", action="store_true", help="load Segment's official bundle, served first-party")
    catalogue = commands.add_parser(
        "destinations", help="list the destination types, or print one's settings, actions and presets as YAML")
    catalogue.add_argument("type", nargs="?", help="a destination type, e.g. webhook")
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(args.config)
    if args.command == "snippet":
        return _snippet(args)
    if args.command == "destinations":
        return _destinations(args.type)
    return _run(args.config)


def _load(path: str | None):
    from collector.config.loader import load_config, load_default_config

    return load_config(path) if path else load_default_config()


def _check(path: str) -> int:
    from collector.config.loader import ConfigError

    try:
        config = _load(path)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{path}: OK ({_summary(config)})")
    print(f"{path}: {_dedup_memory(config.storage)}")
    from collector.config.advice import advice

    for note in advice(config):
        print(f"{path}: warning: {note}", file=sys.stderr)
    return 0


def _summary(config) -> str:
    parts = [_count(len(config.sources), "source"), _count(len(config.destinations), "destination")]
    if config.tracking_plans:
        planned = sum(1 for source in config.sources.values() if source.tracking_plan is not None)
        parts.append(f"{_count(len(config.tracking_plans), 'tracking plan')} used by {_count(planned, 'source')}")
    rules = sum(len(source.pii) for source in config.sources.values())
    if rules:
        parts.append(_count(rules, "PII rule"))
    return ", ".join(parts)


# The dedup index's memory per messageId (README, "Dedup"); measured 30-45 bytes.
_DEDUP_BYTES_PER_ID = 40


def _dedup_memory(storage) -> str:
    """What the dedup index may cost in memory, for sizing the machine (or systemd's MemoryMax)."""
    seconds = float(storage.dedup_window)
    window = (f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min" if seconds >= 60
              else f"{seconds:g} s")
    per_second = seconds * _DEDUP_BYTES_PER_ID / 1e6
    if not storage.dedup_max_ids:
        return (f"dedup: every messageId of the last {window}, no cap: about {per_second:,.1f} MB of memory"
                f" for each event/s received")
    cap = storage.dedup_max_ids * _DEDUP_BYTES_PER_ID / 1e6
    rate = storage.dedup_max_ids / seconds
    return (f"dedup: messageIds of the last {window}, at most {storage.dedup_max_ids:,} held (about {cap:,.0f} MB"
            f" of memory); above {rate:,.0f} events/s the window in force is shorter")


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def _destinations(type_name: str | None) -> int:
    from collector.destinations.actions import catalogue

    return catalogue.main([type_name] if type_name else [])


def _snippet(args: argparse.Namespace) -> int:
    from collector.browser.routes import render_snippet
    from collector.config.loader import ConfigError

    try:
        config = _load(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    if args.source is None and len(config.sources) != 1:
        print(f"name the source with --source (one of: {', '.join(sorted(config.sources))})", file=sys.stderr)
        return 1
    name = args.source or next(iter(config.sources))
    if name not in config.sources:
        print(f"no source named {name!r} (sources: {', '.join(sorted(config.sources))})", file=sys.stderr)
        return 1
    origin = args.origin or config.server.public_url
    if not origin:
        print("give the collector's public origin with --origin (or set server.public_url)", file=sys.stderr)
        return 1
    print(render_snippet(config.sources[name].write_key, origin.rstrip("/"), official=args.official, script_tag=True))
    return 0


def _run(path: str | None) -> int:
    from collector import logs
    from collector.config.loader import ConfigError

    try:
        config = _load(path)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    logs.configure(config.logging.level, config.logging.format)
    try:
        import uvloop
    except ImportError:  # uvloop is optional on platforms without it
        return asyncio.run(_serve(config))
    return uvloop.run(_serve(config))


async def _serve(config) -> int:
    from collector import systemd
    from collector.app import Collector
    from collector.gc_tuning import tune_for_serving

    collector = Collector(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await collector.start()
    except Exception:
        log.exception("the collector could not start")
        await collector.stop()
        return 1
    tune_for_serving()
    systemd.notify("READY=1")
    await stop.wait()
    log.info("stopping: no new requests; finishing those under way")
    systemd.notify("STOPPING=1")
    await collector.stop()
    return 0
