"""The collector as a real process, the way ops run it: a config file, `collector run`, signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import urllib.request

import yaml


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (the collector's: its log writer process)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
    except OSError:
        return []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CollectorProcess:
    """Writes ``config`` (a dict) to ``directory/collector.yaml`` and runs the collector on it.

    ``server.listen`` and ``storage.path`` are filled in when absent; restarts reuse both, so a
    restarted collector finds its log again."""

    def __init__(self, directory: Path, config: dict) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        config = dict(config)
        server = dict(config.get("server") or {})
        server.setdefault("listen", f"127.0.0.1:{free_port()}")
        config["server"] = server
        storage = dict(config.get("storage") or {})
        storage.setdefault("path", str(self.directory / "data"))
        config["storage"] = storage
        config.setdefault("logging", {"level": "info", "format": "json"})
        self.config = config
        self.config_path = self.directory / "collector.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.port = int(server["listen"].rsplit(":", 1)[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.directory / "collector.log"
        self.proc: subprocess.Popen | None = None

    def start(self, wait: float = 15.0) -> CollectorProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "collector", "run", "--config", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the collector exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the collector did not become ready in {wait}s:\n{self.logs()}")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, as systemd stops it; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a Prometheus sample over the series matching ``labels``."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as answer:
            text = answer.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name):
                continue
            series, _, value = line.rpartition(" ")
            metric_name, _, label_text = series.partition("{")
            if metric_name != name:
                continue
            if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
                total += float(value)
        return total

    def __enter__(self) -> CollectorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
