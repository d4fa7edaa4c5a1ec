"""The scenarios. Each one measures the collector and its baseline in the same run, one after the
other on the same machine with the same load, and returns rows for the table.

Targets come from issue 2 ("Speed") and issue 4 ("Benchmarks").

track and batch measure the collector twice: with one webhook destination and the sink it delivers
to, all on the same two cores as the load generator (what a deployment does), and with no
destination (ingestion alone, the same work as the no-op baseline plus storing). Both rows carry
the target; the table says which passed.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from benchmarks import payloads, servers, wrk
from benchmarks.harness import metric
from benchmarks.payloads import Load, write_bodies
from benchmarks.profile import Sampler

MB = 1024 * 1024


@dataclass
class Row:
    scenario: str
    measure: str
    collector: float | None
    baseline: float | None = None
    baseline_name: str = ""
    unit: str = ""
    target: str = ""
    passed: bool | None = None  # None: no target
    # Shown instead of the number, e.g. "0.9 / 3.1 / 12.0" for p50 / p99 / p999.
    collector_text: str = ""
    baseline_text: str = ""

    @property
    def ratio(self) -> float | None:
        if self.collector is None or not self.baseline:
            return None
        return self.collector / self.baseline


@dataclass
class Options:
    duration: float = 10.0
    connections: int = 64
    threads: int = 1
    backlog: int = 5_000_000
    drain_events: int = 1_000_000
    fanout: int = 5
    profile: Path | None = None
    # Seconds to wait, before each measurement, for other work on the machine to calm down.
    quiet_wait: float = 30.0
    repeat: int = 1


@dataclass
class Run:
    """What the scenarios of one `python -m benchmarks` share."""

    options: Options
    workdir: Path
    # Figures one scenario measures and another reuses (the maximum rate for the latency runs).
    cache: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)

    def say(self, message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    def record(self, scenario: str, label: str, value: object) -> None:
        self.details.setdefault(scenario, {})[label] = value


# --- measuring ---


def system_busy() -> tuple[int, int]:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def wait_quiet(run: Run, limit: float = 0.3) -> float:
    """Wait until the machine (our idle servers included) uses under ``limit`` cores, or give up
    after ``quiet_wait`` seconds; return the cores it used. Other people's tests share this box."""
    deadline = time.monotonic() + run.options.quiet_wait
    while True:
        before = system_busy()
        time.sleep(0.5)
        busy = _cores(before, system_busy())
        if busy < limit:
            return busy
        if time.monotonic() > deadline:
            run.say(f"warning: the machine was busy ({busy:.2f} cores) before this measurement")
            return busy


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CommitMonitor(threading.Thread):
    """Events committed in each second of a measurement, to show stalls that an average hides
    (-1: /metrics did not answer within a second). On the first second with nothing committed,
    keeps a py-spy dump of the collector's threads."""

    def __init__(self, coll: servers.Collector, dump_to: Path) -> None:
        super().__init__(daemon=True)
        self.coll, self.dump_to = coll, dump_to
        self.per_second: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        last = self.coll.committed()
        while not self.halt.wait(1.0):
            try:
                now = self.coll.committed(timeout=1.0)
            except OSError:  # a timeout: the collector's event loop is stuck
                now = None
            self.per_second.append(-1 if now is None else int(now - last))
            if now in (None, last) and not self.dump_to.exists() and shutil.which("py-spy"):
                with open(self.dump_to, "w") as out:
                    subprocess.run(["py-spy", "dump", "--pid", str(self.coll.proc.pid)], stdout=out,
                                   stderr=subprocess.STDOUT, timeout=30)
            last = now if now is not None else last

    def stop(self) -> list[int]:
        self.halt.set()
        self.join()
        return self.per_second


def closed_loop(run: Run, server: servers.Server, load: Load, label: str, scenario: str,
                sink: servers.Sink | None = None) -> dict:
    """wrk against ``server`` for the run's duration, after a short warm-up; with ``--repeat N``,
    N times, keeping the run of median req/s (every run is in the JSON details).

    For a collector, events/s is what its /metrics says was committed, not what wrk sent; with a
    ``sink``, also what the sink received in the same window.
    """
    opts = run.options
    wrk.run(load, server.url, run.workdir, min(2.0, opts.duration / 5), opts.connections, opts.threads)
    if opts.repeat == 1:
        return _measure(run, server, load, label, scenario, sink)
    runs = [_measure(run, server, load, f"{label}-run{i + 1}", scenario, sink) for i in range(opts.repeat)]
    out = sorted(runs, key=lambda r: r["requests_per_s"])[len(runs) // 2]
    out = out | {"all_requests_per_s": [r["requests_per_s"] for r in runs]}
    run.record(scenario, label, out)
    return out


def alternating(run: Run, contenders: list[tuple[str, servers.Server, servers.Sink | None]], load: Load,
                scenario: str) -> dict[str, dict]:
    """closed_loop for several servers that are all up, measured in turns (A B C, A B C, ...)
    rather than each N times in a row: this VM's speed drifts within minutes (the no-op handler
    went from 13,375 to 20,659 req/s between two runs a few seconds apart), and turns spread the
    drift over all of them. Each gets its median run, and ``rounds``: its req/s in each turn, for
    ratios taken turn by turn (see ``paired``)."""
    opts = run.options
    for _, server, _ in contenders:
        wrk.run(load, server.url, run.workdir, min(2.0, opts.duration / 5), opts.connections, opts.threads)
    runs: dict[str, list[dict]] = {label: [] for label, _, _ in contenders}
    for turn in range(opts.repeat):
        for label, server, sink in contenders:
            name = f"{label}-run{turn + 1}" if opts.repeat > 1 else label
            runs[label].append(_measure(run, server, load, name, scenario, sink))
    out = {}
    for label, results in runs.items():
        median = sorted(results, key=lambda r: r["requests_per_s"])[len(results) // 2]
        out[label] = median | {"rounds": results}
        if opts.repeat > 1:
            run.record(scenario, label, out[label] | {"all_requests_per_s": [r["requests_per_s"] for r in results]})
    return out


def paired(collector: dict, baseline: dict, key: str = "requests_per_s") -> tuple[float, float]:
    """(collector, baseline) of the turn whose ratio is the median of the turns' ratios."""
    pairs = sorted(zip((r[key] for r in collector["rounds"]), (r[key] for r in baseline["rounds"])),
                   key=lambda pair: pair[0] / pair[1])
    return pairs[len(pairs) // 2]


def _measure(run: Run, server: servers.Server, load: Load, label: str, scenario: str,
             sink: servers.Sink | None) -> dict:
    opts = run.options
    seconds = opts.duration
    url = server.url
    is_collector = isinstance(server, servers.Collector)
    quiet = wait_quiet(run)
    committed0 = server.committed() if is_collector else 0.0
    received0 = sink.stats()["events"] if sink else 0
    cpu0, busy0, wrk0, t0 = server.proc.cpu_seconds(), system_busy(), _children_cpu(), time.monotonic()
    sampler = monitor = None
    if opts.profile and is_collector:
        sampler = Sampler(server.proc.pid, opts.profile / f"{scenario}-{label}.txt", seconds)
    if is_collector:
        monitor = CommitMonitor(server, (opts.profile or run.workdir) / f"{scenario}-{label}-stall.txt")
        monitor.start()
    result = wrk.run(load, url, run.workdir, seconds, opts.connections, opts.threads)
    elapsed = time.monotonic() - t0
    cpu1, busy1, wrk1 = server.proc.cpu_seconds(), system_busy(), _children_cpu()
    server.proc.check_alive()
    out = {
        "requests_per_s": result.rps,
        "events_per_s_sent": result.rps * load.events_per_request,
        "errors": result.errors,
        "latency_ms": result.latency_ms,
        "server_cpu_cores": (cpu1 - cpu0) / elapsed,
        "wrk_cpu_cores": (wrk1 - wrk0) / elapsed,
        "machine_cpu_cores": _cores(busy0, busy1),
        "machine_busy_before": quiet,
        **server.proc.status(),
    }
    if is_collector:
        out["events_per_s_committed"] = (server.committed() - committed0) / elapsed
        out["queue_depth_after"] = server.queue_depth()
        out["committed_each_second"] = monitor.stop()
        if monitor.dump_to.exists():
            out["stall_dump"] = str(monitor.dump_to)
    if sink:
        out["sink_events_per_s"] = (sink.stats()["events"] - received0) / elapsed
    if sampler:
        out["profile"] = str(sampler.finish())
    run.record(scenario, label, out)
    figure = out.get("events_per_s_committed", out["events_per_s_sent"])
    extra = f", sink got {out['sink_events_per_s']:,.0f} events/s" if sink else ""
    extra += f", errors {result.errors}" if result.errors else ""
    run.say(f"{label}: {result.rps:,.0f} req/s, {figure:,.0f} events/s, "
            f"server {out['server_cpu_cores']:.2f} cores{extra}")
    return out


def _cores(before: tuple[int, int], after: tuple[int, int]) -> float:
    busy, total = after[0] - before[0], after[1] - before[1]
    return busy / total * os.cpu_count() if total else 0.0


def open_loop(run: Run, server: servers.Server, load: Load, rate: float, label: str,
              scenario: str) -> dict:
    bodies = write_bodies(run.workdir / f"bodies-{load.name}.bin", load.bodies)
    quiet = wait_quiet(run)
    argv = [
        sys.executable, "-m", "benchmarks.openloop", "--url", server.url, "--path", load.path,
        "--bodies", str(bodies), "--rate", f"{rate:.0f}", "--duration", str(run.options.duration),
    ]
    for name, value in load.headers.items():
        argv += ["--header", f"{name}: {value}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=run.options.duration + 120)
    if done.returncode != 0:
        raise RuntimeError(f"open-loop generator failed: {done.stderr[-2000:]}")
    server.proc.check_alive()
    out = json.loads(done.stdout) | {"machine_busy_before": quiet}
    run.record(scenario, label, out)
    lat = out["latency_ms"]
    run.say(f"{label}: {out['achieved_rate']:,.0f}/s of {rate:,.0f}/s ({out['throughput']:,.0f}/s answered while"
            f" sending), latency p50 {lat['p50']} "
            f"p99 {lat['p99']} p999 {lat['p999']} ms, errors {out['errors']}")
    return out


def fill(run: Run, coll: servers.Collector, events: int, scenario: str) -> dict:
    """Post 100-event batches until ``events`` more are committed (destinations down: a backlog)."""
    start = coll.committed()
    target = start + events
    proc = wrk.start(payloads.batch_load(), coll.url, run.workdir, connections=run.options.connections,
                     threads=run.options.threads)
    t0 = last_report = last_progress = time.monotonic()
    seen = start
    try:
        while (done := coll.committed()) < target:
            coll.proc.check_alive()
            if proc.poll() is not None:
                raise RuntimeError(f"wrk stopped while filling: {proc.stdout.read()}")
            if done > seen:
                seen, last_progress = done, time.monotonic()
            elif time.monotonic() - last_progress > 60:
                raise RuntimeError(f"nothing committed for 60s while filling ({done - start:,.0f} so far)")
            if time.monotonic() - last_report > 15:
                last_report = time.monotonic()
                rate = (done - start) / (last_report - t0)
                run.say(f"filling: {done - start:,.0f} of {events:,} events, {rate:,.0f}/s")
            time.sleep(0.2)
    finally:
        result = wrk.stop(proc)
    seconds = time.monotonic() - t0
    committed = coll.committed() - start
    out = {"events": committed, "seconds": seconds, "events_per_s": committed / seconds,
           "wrk_errors": result.errors if result else "unknown"}
    run.record(scenario, "fill", out)
    run.say(f"filled {committed:,.0f} events in {seconds:.1f}s ({committed / seconds:,.0f}/s)")
    return out


def _collector_with_sink(run: Run, name: str, sync: str = "full", destinations: int = 1):
    sink = servers.sink(run.workdir)
    dests = {f"sink{i}": servers.webhook(f"{sink.url}/d{i}") for i in range(1, destinations + 1)}
    try:
        coll = servers.collector(run.workdir, name, dests, sync=sync)
    except Exception:
        sink.stop()
        raise
    return coll, sink


def _down_destination() -> dict:
    """A webhook destination pointing at a port nobody listens on: every event stays queued."""
    return {"down": servers.webhook(f"http://127.0.0.1:{servers.free_port()}/ingest")}


def _with(server: servers.Server, *others: servers.Server):
    """Stop every server, whatever happens in between."""

    class _Stopper:
        def __enter__(self):
            return server

        def __exit__(self, *exc):
            for s in (server, *others):
                s.stop()

    return _Stopper()


def _kept(stack: contextlib.ExitStack, *started: servers.Server):
    """Servers to stop when ``stack`` closes, whatever happens in between; returns them (one, or a
    tuple of several)."""
    for server in started:
        stack.callback(server.stop)
    return started[0] if len(started) == 1 else started


def _mb(status: dict) -> float:
    return status.get("VmHWM", 0) / MB


# --- scenarios ---


def track(run: Run) -> list[Row]:
    """Single events on /v1/track, sync full, against the no-op handler (in turns) and nginx."""
    load = payloads.track_load()
    with _with(servers.nginx_server(run.workdir)) as nginx:
        ngx = closed_loop(run, nginx, load, "nginx", "track")
    with contextlib.ExitStack() as up:
        noop = _kept(up, servers.noop(run.workdir))
        full, full_sink = _kept(up, *_collector_with_sink(run, "track-full", "full"))
        normal, normal_sink = _kept(up, *_collector_with_sink(run, "track-normal", "normal"))
        # Ingestion alone: no destination reading the log and no sink process on the same two
        # cores, which is what the no-op handler is compared with.
        alone = _kept(up, servers.collector(run.workdir, "track-ingest", {}, sync="full"))
        got = alternating(run, [("noop", noop, None), ("collector-full", full, full_sink),
                                ("collector-ingest-only", alone, None),
                                ("collector-normal", normal, normal_sink)], load, "track")
    base = got["noop"]
    run.cache["track_max"] = got["collector-full"]["requests_per_s"]
    rows = []
    for label, measure in (("collector-full", "req/s, sync full"),
                           ("collector-ingest-only", "req/s, sync full, no destination"),
                           ("collector-normal", "req/s, sync normal")):
        collector_rps, noop_rps = paired(got[label], base)
        target = label != "collector-normal"
        rows.append(Row("track", measure, collector_rps, noop_rps, "no-op aiohttp, same turn", "req/s",
                        ">= 60% of no-op" if target else "", collector_rps >= 0.60 * noop_rps if target else None))
    full_result = got["collector-full"]
    return rows + [
        Row("track", "req/s, sync full", full_result["requests_per_s"], ngx["requests_per_s"], "nginx", "req/s"),
        Row("track", "events/s committed, sync full", full_result["events_per_s_committed"],
            full_result["requests_per_s"], "acknowledged", "events/s"),
        Row("memory", "peak RSS, track load", _mb(full_result), _mb(base), "no-op aiohttp", "MiB"),
    ]


def textplain(run: Run) -> list[Row]:
    """Browser-style: text/plain body with the write key in it, on the short route /v1/t."""
    load = payloads.textplain_load()
    with _with(servers.noop(run.workdir)) as noop:
        base = closed_loop(run, noop, load, "noop", "textplain")
    coll, sink = _collector_with_sink(run, "textplain")
    with _with(coll, sink):
        got = closed_loop(run, coll, load, "collector", "textplain", sink=sink)
    return [Row("textplain", "req/s, /v1/t text/plain", got["requests_per_s"], base["requests_per_s"],
                "no-op aiohttp", "req/s")]


def governance(run: Run) -> list[Row]:
    """Single events and 100-event batches with a tracking plan and PII rules on the source,
    against the same collector without them (in turns; no destination, to isolate their cost)."""
    rows = []
    for load in (payloads.track_load(), payloads.batch_load()):
        with contextlib.ExitStack() as up:
            plain = _kept(up, servers.collector(run.workdir, f"{load.name}-unfiltered", {}))
            filtered = _kept(up, servers.collector(run.workdir, f"{load.name}-filtered", {},
                                                   source=payloads.FILTERED_SOURCE,
                                                   tracking_plans=payloads.TRACKING_PLANS))
            got = alternating(run, [("unfiltered", plain, None), ("filtered", filtered, None)], load,
                              f"governance-{load.name}")
        with_rules, without = paired(got["filtered"], got["unfiltered"], "events_per_s_committed")
        what = "single events" if load.events_per_request == 1 else "100-event batches"
        rows.append(Row("governance", f"events/s committed, {what}, plan + 4 PII rules", with_rules, without,
                        "no plan, no rules, same turn", "events/s"))
    return rows


def sqlite_baseline(run: Run, seconds: float, index: bool = False) -> dict:
    argv = [sys.executable, "-m", "benchmarks.baselines.sqlite_insert", "--seconds", str(seconds),
            "--dir", str(run.workdir)] + (["--index"] if index else [])
    wait_quiet(run)
    out = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    run.record("batch", "sqlite-indexed" if index else "sqlite", out)
    run.say(f"raw SQLite{' + messageId index' if index else ''}: {out['rows_per_s']:,.0f} rows/s "
            f"({out['row_bytes']:.0f}-byte rows, {out['rows_per_commit']} per commit, "
            f"synchronous={out['synchronous']})")
    return out


def batch(run: Run) -> list[Row]:
    """100-event batches: events/s committed, against raw SQLite and the no-op handler (in turns)."""
    load = payloads.batch_load()
    sql = sqlite_baseline(run, run.options.duration)
    sql_indexed = sqlite_baseline(run, run.options.duration, index=True)
    with contextlib.ExitStack() as up:
        noop = _kept(up, servers.noop(run.workdir))
        ceiling = _kept(up, servers.validate_only(run.workdir))
        coll, sink = _kept(up, *_collector_with_sink(run, "batch"))
        alone = _kept(up, servers.collector(run.workdir, "batch-ingest", {}))
        got = alternating(run, [("noop", noop, None), ("validate-only", ceiling, None), ("collector", coll, sink),
                                ("collector-ingest-only", alone, None)], load, "batch")
    base, with_destination, ingest_only = got["noop"], got["collector"], got["collector-ingest-only"]
    ceiling_eps = got["validate-only"]["events_per_s_sent"]
    run.cache["batch_max"] = with_destination["requests_per_s"]
    eps = with_destination["events_per_s_committed"]
    alone_eps = ingest_only["events_per_s_committed"]
    return [
        Row("batch", "events/s committed (100/request)", eps, sql["rows_per_s"], "raw SQLite inserts",
            "events/s", ">= 150,000 events/s", eps >= 150_000),
        Row("batch", "events/s committed, no destination", alone_eps, sql["rows_per_s"],
            "raw SQLite inserts", "events/s", ">= 150,000 events/s", alone_eps >= 150_000),
        Row("batch", "events/s committed (100/request)", eps, sql_indexed["rows_per_s"],
            "raw SQLite + messageId index", "events/s"),
        Row("batch", "events/s committed (100/request)", eps, base["events_per_s_sent"], "no-op aiohttp",
            "events/s"),
        # What the collector's Python does to each event before the disk, alone on one core: the
        # ceiling of any design that keeps that work (see benchmarks/baselines/validate_server.py).
        Row("batch", "events/s committed, no destination", alone_eps, ceiling_eps,
            "validation alone, no storage", "events/s"),
        Row("memory", "peak RSS, batch load", _mb(with_destination), _mb(base), "no-op aiohttp", "MiB"),
    ]


def gzip(run: Run) -> list[Row]:
    """100-event batches gzipped, as the SDKs send them with gzip on."""
    load = payloads.gzip_load()
    with _with(servers.noop(run.workdir)) as noop:
        base = closed_loop(run, noop, load, "noop", "gzip")
    coll, sink = _collector_with_sink(run, "gzip")
    with _with(coll, sink):
        got = closed_loop(run, coll, load, "collector", "gzip", sink=sink)
    return [Row("gzip", "events/s committed (gzip, 100/request)", got["events_per_s_committed"],
                base["events_per_s_sent"], "no-op aiohttp", "events/s")]


def fanout(run: Run) -> list[Row]:
    """The same batch load with 1 and with N webhook destinations (all to one local sink)."""
    n = run.options.fanout
    load = payloads.batch_load()
    figures = {}
    for count in (1, n):
        coll, sink = _collector_with_sink(run, f"fanout-{count}", destinations=count)
        with _with(coll, sink):
            got = closed_loop(run, coll, load, f"collector-{count}-dest", "fanout", sink=sink)
            run.say(f"{count} destination(s): sink got {got['sink_events_per_s']:,.0f} events/s, "
                    f"queue depth after {got['queue_depth_after']:,.0f}")
            figures[count] = got
    one, many = figures[1], figures[n]
    return [
        Row("fanout", f"events/s committed, {n} destinations", many["events_per_s_committed"],
            one["events_per_s_committed"], "1 destination", "events/s"),
        Row("fanout", f"events/s delivered (sum of {n})", many["sink_events_per_s"],
            one["sink_events_per_s"], "1 destination", "events/s"),
    ]


def vendors(run: Run) -> list[Row]:
    """Every vendor destination attached (each with its presets, all sending to one local sink that
    answers as the vendors do) against one webhook destination, in turns, under the same batch
    load of Segment spec e-commerce events."""
    load = payloads.vendor_load()
    with contextlib.ExitStack() as up:
        vendor_sink = _kept(up, servers.sink(run.workdir))
        dests = servers.vendor_destinations(vendor_sink.url)
        many = _kept(up, servers.collector(run.workdir, "vendors", dests))
        one, one_sink = _kept(up, *_collector_with_sink(run, "vendors-webhook"))
        got = alternating(run, [("webhook", one, one_sink), ("vendors", many, vendor_sink)], load, "vendors")
    n = len(dests)
    run.say(f"{n} vendor destinations: {', '.join(dests)}")
    committed_many, committed_one = paired(got["vendors"], got["webhook"], "events_per_s_committed")
    delivered_many, delivered_one = paired(got["vendors"], got["webhook"], "sink_events_per_s")
    return [
        Row("vendors", f"events/s committed, {n} vendor destinations", committed_many, committed_one,
            "1 webhook destination, same turn", "events/s"),
        Row("vendors", f"vendor events/s delivered (sum of {n})", delivered_many, delivered_one,
            "1 webhook destination, same turn", "events/s"),
        Row("memory", f"peak RSS, {n} vendor destinations", _mb(got["vendors"]), _mb(got["webhook"]),
            "1 webhook destination", "MiB"),
    ]


def drain(run: Run) -> list[Row]:
    """A backlog built while the destination is down, then timed as it drains to the local sink."""
    n = run.options.drain_events
    sink_port = servers.free_port()
    dests = {"sink": servers.webhook(f"http://127.0.0.1:{sink_port}/ingest", fast_retry=True)}
    coll = servers.collector(run.workdir, "drain", dests)
    with _with(coll):
        filled = fill(run, coll, n, "drain")
        queued = coll.queue_depth()
        # Every committed event is for the one destination: the sink must get them all.
        expected = coll.committed()
        run.say(f"queue depth before the sink starts: {queued:,.0f}")
        sink = servers.sink(run.workdir, sink_port)
        with _with(sink):
            sampler = None
            if run.options.profile:
                sampler = Sampler(coll.proc.pid, run.options.profile / "drain-collector.txt",
                                  min(run.options.duration, 20))
            cpu0 = coll.proc.cpu_seconds()
            servers.wait_for(lambda: sink.stats()["events"] >= expected, max(120, expected / 10_000),
                             "the sink to receive the backlog", [coll.proc, sink.proc])
            stats = sink.stats()
            seconds = stats["last"] - stats["first"]
            rate = stats["events"] / seconds
            out = {"queued": queued, "committed": expected, "received": stats["events"], "requests": stats["requests"],
                   "seconds": seconds, "events_per_s": rate,
                   "collector_cpu_cores": (coll.proc.cpu_seconds() - cpu0) / seconds,
                   **coll.proc.status()}
            if sampler:
                out["profile"] = str(sampler.finish())
    run.record("drain", "drain", out)
    run.say(f"drained {stats['events']:,} events in {seconds:.2f}s: {rate:,.0f} events/s")
    return [Row("drain", f"events/s delivered, {expected:,.0f} queued", rate, filled["events_per_s"],
                "ingest rate (fill)", "events/s", ">= 100,000 events/s", rate >= 100_000)]


# The backlog scenario holds the dedup index to this many ids (storage.dedup_max_ids), so that the
# queue is all that differs between its sides: the fill records every messageId of the window,
# and the index's size has a cost of its own (13.1 us per new id at 1M ids, 18.2 at 9M:
# `python -m benchmarks.dedup_file normal N --spread`, run 5).
BACKLOG_DEDUP_IDS = 1_000_000


def backlog(run: Run) -> list[Row]:
    """Batch ingest rate with the backlog queued behind a down destination, against the same
    process once that backlog is drained (the destination down again, the queue empty), and
    against its start; the dedup index held to BACKLOG_DEDUP_IDS throughout."""
    n = run.options.backlog
    load = payloads.batch_load()
    port = servers.free_port()
    coll = servers.collector(run.workdir, "backlog",
                             {"down": servers.webhook(f"http://127.0.0.1:{port}/ingest", fast_retry=True)},
                             storage={"dedup_max_ids": BACKLOG_DEDUP_IDS})
    with _with(coll):
        start = closed_loop(run, coll, load, "start", "backlog")
        fill(run, coll, n, "backlog")
        queued = coll.queue_depth()
        run.say(f"queue depth: {queued:,.0f}")
        full = closed_loop(run, coll, load, "with-backlog", "backlog")
        full["queue_depth"] = coll.queue_depth()
        db_bytes = metric(coll.metrics(), "collector_storage_bytes")
        expected = coll.committed()
        with _with(servers.sink(run.workdir, port)) as sink:  # the destination is back until the queue is empty
            servers.wait_for(lambda: sink.stats()["events"] >= expected, max(120, expected / 10_000),
                             "the backlog to drain", [coll.proc, sink.proc])
        drained = closed_loop(run, coll, load, "drained", "backlog")
        ids = metric(coll.metrics(), "collector_dedup_ids")
    ratio = full["events_per_s_committed"] / drained["events_per_s_committed"]
    run.record("backlog", "storage_bytes", db_bytes)
    run.record("backlog", "dedup_ids_at_end", ids)
    return [
        Row("backlog", f"events/s committed, {queued:,.0f} queued", full["events_per_s_committed"],
            drained["events_per_s_committed"], "same process, queue drained", "events/s", "within 10% of empty",
            ratio >= 0.90),
        Row("backlog", f"events/s committed, {queued:,.0f} queued", full["events_per_s_committed"],
            start["events_per_s_committed"], "same process at start", "events/s"),
        Row("memory", f"peak RSS, {queued:,.0f} queued", _mb(full), _mb(start),
            "same process at start", "MiB"),
    ]


def latency(run: Run) -> list[Row]:
    """Open-loop /v1/track at 50% and 80% of the maximum, then the no-op handler at the same rates.

    The maximum is the one the open-loop generator itself reaches: offered wrk's closed-loop maximum,
    it answers fewer, since the generator (Python) takes more of the two cores than wrk does. Taking
    80% of wrk's figure measured an overload, not a latency (runs 3 and 4)."""
    load = payloads.track_load()
    rows = []
    coll, sink = _collector_with_sink(run, "latency")
    with _with(coll, sink):
        closed = run.cache.get("track_max") or closed_loop(run, coll, load, "max", "latency")["requests_per_s"]
        reached = open_loop(run, coll, load, closed, "open-loop-max", "latency")["throughput"]
        top = min(closed, reached)
        run.say(f"latency: maximum {top:,.0f}/s (open loop offered wrk's {closed:,.0f}/s)")
        got = {share: open_loop(run, coll, load, top * share, f"collector-{share:.0%}", "latency")
               for share in (0.5, 0.8)}
    with _with(servers.noop(run.workdir)) as noop:
        base = {share: open_loop(run, noop, load, top * share, f"noop-{share:.0%}", "latency")
                for share in (0.5, 0.8)}
    for share in (0.5, 0.8):
        c, b = got[share]["latency_ms"], base[share]["latency_ms"]
        rows.append(Row(
            "latency", f"track at {share:.0%} of the open-loop max ({top * share:,.0f}/s of {top:,.0f}/s): p50 / p99 / p999 ms",
            c["p99"], b["p99"], "no-op aiohttp", "ms",
            collector_text=f"{c['p50']:.1f} / {c['p99']:.1f} / {c['p999']:.1f}",
            baseline_text=f"{b['p50']:.1f} / {b['p99']:.1f} / {b['p999']:.1f}",
        ))
    return rows


# In the order `python -m benchmarks` runs them: quick ones first, the backlog last.
SCENARIOS: dict[str, Callable[[Run], list[Row]]] = {
    "track": track,
    "textplain": textplain,
    "batch": batch,
    "gzip": gzip,
    "governance": governance,
    "fanout": fanout,
    "vendors": vendors,
    "latency": latency,
    "drain": drain,
    "backlog": backlog,
}
