"""Processes, ports and probes shared by the scenarios. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class Proc:
    """A server under test, started by us and stopped by us (SIGTERM, then SIGKILL)."""

    name: str
    argv: list[str]
    log_path: Path
    cwd: Path = REPO
    env: dict[str, str] | None = None
    popen: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> Proc:
        self.log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def check_alive(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; log tail:\n{tail}")

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        def ready() -> bool:
            self.check_alive()
            return http_get(url, timeout=1.0)[0] == 200

        wait_until(ready, timeout, what=f"{self.name} at {url}")

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()
        return self.popen.returncode

    # --- what /proc says about it ---

    def pids(self) -> list[int]:
        """The process and its descendants (nginx's worker, forked collector workers)."""
        pids, i = [self.pid], 0
        while i < len(pids):
            try:
                for task in os.listdir(f"/proc/{pids[i]}/task"):
                    with open(f"/proc/{pids[i]}/task/{task}/children") as f:
                        pids += [int(p) for p in f.read().split()]
            except OSError:
                pass
            i += 1
        return pids

    def status(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak RSS) in bytes, summed over the process tree."""
        out = {"VmRSS": 0, "VmHWM": 0}
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        key, _, value = line.partition(":")
                        if key in out:
                            out[key] += int(value.split()[0]) * 1024
            except OSError:
                pass
        return out

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process tree, all threads."""
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rpartition(")")[2].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / CLK_TCK


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


# --- Prometheus text format ---

Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str) -> Metrics:
    """Samples of the text format: ``name{a="x",b="y"} value [timestamp]``."""
    out: Metrics = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line.split(" ", 1)[0]:
            head, _, tail = line.rpartition("}")
            name, _, labels = head.partition("{")
        else:
            name, _, tail = line.partition(" ")
            labels = ""
        try:
            value = float(tail.split()[0])
        except (IndexError, ValueError):
            continue
        pairs = tuple(sorted((k, v) for k, v in _LABEL.findall(labels)))
        out[(name, pairs)] = value
    return out


_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric(metrics: Metrics, name: str, **labels: str) -> float:
    """Sum of every sample of ``name`` whose labels include ``labels``."""
    total = 0.0
    for (n, pairs), value in metrics.items():
        if n == name and all((k, v) in pairs for k, v in labels.items()):
            total += value
    return total


def metric_names(metrics: Metrics) -> set[str]:
    return {n for n, _ in metrics}
