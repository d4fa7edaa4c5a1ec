"""Run the benchmarks: every scenario with its baseline, in one run, and print the table.

    python -m benchmarks                      # every scenario
    python -m benchmarks track batch          # a subset
    python -m benchmarks --duration 5 --backlog 500000 backlog
    python -m benchmarks --list

Everything runs on 127.0.0.1, in a temporary directory, and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.scenarios import SCENARIOS, Options, Row, Run, system_busy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"any of: {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of load per measurement (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--backlog", type=int, default=5_000_000,
                        help="events queued for the backlog scenario (default 5,000,000)")
    parser.add_argument("--drain-events", type=int, default=1_000_000,
                        help="events queued for the drain scenario (default 1,000,000)")
    parser.add_argument("--fanout", type=int, default=5, help="destinations in the fanout scenario")
    parser.add_argument("--repeat", type=int, default=1,
                        help="repeat each closed-loop measurement N times and keep the median")
    parser.add_argument("--quiet-wait", type=float, default=30.0, metavar="SECONDS",
                        help="before each measurement, wait up to this long for the machine to be idle")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="sample the collector with py-spy during each measurement, into DIR")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every figure measured to FILE")
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    parser.add_argument("--table-from", type=Path, metavar="FILE",
                        help="print the table of a run saved with --json, without running anything")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    args = parser.parse_args(argv)

    if args.table_from:
        saved = json.loads(args.table_from.read_text())["rows"]
        fields = set(Row.__dataclass_fields__)
        print(table([Row(**{k: v for k, v in r.items() if k in fields}) for r in saved], args.markdown))
        return 0
    if args.list:
        for name, fn in SCENARIOS.items():
            print(f"{name:10} {fn.__doc__.strip().splitlines()[0]}")
        return 0
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    chosen = args.scenarios or list(SCENARIOS)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    options = Options(
        duration=args.duration, connections=args.connections, threads=args.threads,
        backlog=args.backlog, drain_events=args.drain_events, fanout=args.fanout,
        profile=args.profile.resolve() if args.profile else None, quiet_wait=args.quiet_wait,
        repeat=args.repeat,
    )
    # SIGTERM unwinds like Ctrl-C, so that every server started so far is stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="collector-bench-"))
    run = Run(options, workdir)
    print(machine_summary(), file=sys.stderr)
    rows: list[Row] = []
    failed: list[str] = []
    started = time.monotonic()
    try:
        for name in chosen:
            print(f"{name}:", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            try:
                rows += SCENARIOS[name](run)
            except Exception as error:  # one broken scenario must not hide the others' figures
                failed.append(name)
                run.record(name, "error", repr(error))
                print(f"  FAILED: {error}", file=sys.stderr)
            run.record(name, "seconds", round(time.monotonic() - t0, 1))
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{len(chosen)} scenario(s) in {time.monotonic() - started:.0f}s\n", file=sys.stderr)
    print(table(rows, args.markdown))
    if failed:
        print(f"\nscenarios that failed to run: {', '.join(failed)}")
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine(), "options": vars(options) | {"profile": str(options.profile)},
            "rows": [vars(r) | {"ratio": r.ratio} for r in rows], "details": run.details,
        }, indent=2, default=str))
    missed = [r for r in rows if r.passed is False]
    return 1 if failed or missed else 0


def machine() -> dict:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    busy0 = system_busy()
    time.sleep(0.5)
    busy1 = system_busy()
    other = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]) * os.cpu_count()
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
        "python": platform.python_version(), "load_average": os.getloadavg(),
        "cpu_busy_before_start": round(other, 2),
    }


def machine_summary() -> str:
    m = machine()
    text = (f"{m['nproc']} x {m['cpu']}, Linux {m['kernel']}, Python {m['python']}, "
            f"load average {m['load_average'][0]:.2f}")
    if m["cpu_busy_before_start"] > 0.2:
        text += (f"\nwarning: {m['cpu_busy_before_start']:.2f} cores already busy before the run; "
                 "figures will be low and noisy")
    return text


def _fmt(value: float | None, text: str = "") -> str:
    if text:
        return text
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def table(rows: list[Row], markdown: bool = False) -> str:
    header = ["scenario", "measure", "collector", "baseline", "ratio", "target", "result"]
    lines = [[
        r.scenario, r.measure, _fmt(r.collector, r.collector_text),
        f"{_fmt(r.baseline, r.baseline_text)} ({r.baseline_name})" if r.baseline_name else "-",
        f"{r.ratio:.2f}" if r.ratio is not None else "-",
        r.target or "-",
        {True: "pass", False: "FAIL", None: "-"}[r.passed],
    ] for r in rows]
    if markdown:
        return "\n".join("| " + " | ".join(line) + " |"
                         for line in [header, ["---"] * len(header), *lines])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    out = [" | ".join(h.ljust(w) for h, w in zip(header, widths)),
           "-+-".join("-" * w for w in widths)]
    out += [" | ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
