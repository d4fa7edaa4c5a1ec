"""Closed-loop load with wrk (Debian's /usr/bin/wrk) and benchmarks/lua/post.lua."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from benchmarks.payloads import Load, write_bodies

WRK = os.environ.get("BENCH_WRK", "/usr/bin/wrk")
SCRIPT = Path(__file__).parent / "lua" / "post.lua"


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: dict[str, int]
    latency_ms: dict[str, float]
    text: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def _command(load: Load, url: str, workdir: Path, seconds: float, connections: int, threads: int):
    bodies = write_bodies(workdir / f"bodies-{load.name}.bin", load.bodies)
    env = dict(
        os.environ,
        BENCH_PATH=load.path,
        BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in load.headers.items()),
        BENCH_BODIES=str(bodies),
    )
    argv = [
        WRK, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "--timeout", "10s", "-s", str(SCRIPT), url,
    ]
    return argv, env


def run(load: Load, url: str, workdir: Path, seconds: float, connections: int = 64,
        threads: int = 1) -> WrkResult:
    argv, env = _command(load, url, workdir, seconds, connections, threads)
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    return parse(out.stdout)


def start(load: Load, url: str, workdir: Path, seconds: float = 3600, connections: int = 64,
          threads: int = 1) -> subprocess.Popen:
    """wrk in the background, for filling a backlog; stop it with ``stop``."""
    argv, env = _command(load, url, workdir, seconds, connections, threads)
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(proc: subprocess.Popen) -> WrkResult | None:
    # wrk stops on SIGINT and still prints its report.
    proc.send_signal(signal.SIGINT)
    try:
        text, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    try:
        return parse(text)
    except ValueError:
        return None


def parse(text: str) -> WrkResult:
    """The JSON line printed by post.lua's done(); wrk's own text report is kept for the record."""
    match = re.search(r"^BENCH_JSON (.*)$", text, re.M)
    if not match:
        raise ValueError(f"no BENCH_JSON line in wrk output:\n{text}")
    data = json.loads(match.group(1))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors={k: v for k, v in data["errors"].items() if v},
        latency_ms={k: v / 1000 for k, v in data["latency_us"].items()},
        text=text[: match.start()].strip(),
    )
