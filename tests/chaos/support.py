"""What the chaos tests share: raw HTTP over sockets, the process's memory, the archive a `file`
destination writes, and polling."""

from __future__ import annotations

import asyncio
import base64
import gzip
import http.client
import json
import select
import socket
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

from aiohttp import web

from tests.support.process import child_pids
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until  # noqa: F401  (re-exported for the tests)



def basic(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


def own_rss_kb(pid: int) -> int | None:
    """Resident memory of one process, in KiB, from /proc/PID/status (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return None


def rss_kb(pid: int) -> int:
    """Resident memory of a process and its children (the log writer process), in KiB."""
    own = own_rss_kb(pid)
    if own is None:
        raise AssertionError(f"no VmRSS for pid {pid}")
    return own + sum(own_rss_kb(child) or 0 for child in child_pids(pid))


class Archive:
    """The JSON lines a `file` destination writes (read incrementally; the file only grows)."""

    def __init__(self, directory: Path) -> None:
        self.file = Path(directory) / "events.jsonl"
        self._offset = 0
        self._events: list[dict] = []

    def events(self) -> list[dict]:
        if self.file.exists():
            with open(self.file, "rb") as f:
                f.seek(self._offset)
                data = f.read()
            complete = data[: data.rfind(b"\n") + 1]
            self._events += [json.loads(line) for line in complete.splitlines() if line.strip()]
            self._offset += len(complete)
        return self._events

    def message_ids(self) -> set[str]:
        return {e.get("messageId") for e in self.events()}


def file_destination(path: Path, **extra: object) -> dict:
    return {"type": "file", "path": str(path), "batch": {"max_wait": 0.05}, **extra}


class RawAnswer:
    def __init__(self, data: bytes, closed: bool, seconds: float, answered_after: float | None) -> None:
        self.data = data
        self.closed = closed  # the server closed the connection (EOF or reset)
        self.seconds = seconds  # until it closed, or until we stopped reading
        self.answered_after = answered_after  # seconds after our last byte until its first one

    def answers(self) -> list[tuple[int, bytes, bytes]]:
        """(status, head, body) of every complete answer in what came back, in order."""
        return parse_answers(self.data)

    @property
    def statuses(self) -> list[int]:
        """The status of every complete answer (several for pipelined requests, 100 Continue too)."""
        return [status for status, _, _ in self.answers()]

    def json_bodies(self) -> list[dict]:
        """The JSON bodies of the answers (for our own error bodies)."""
        return [json.loads(body) for _, head, body in self.answers() if b"application/json" in head.lower()]

    def __repr__(self) -> str:
        return (
            f"RawAnswer(closed={self.closed}, seconds={self.seconds:.2f}, answered_after={self.answered_after}, "
            f"data={self.data[:200]!r})"
        )


def raw_exchange(
    port: int, pieces: list[bytes], *, delay: float = 0.0, half_close: bool = False, read_for: float = 5.0,
    answers: int | None = None, answered_while_sending: int = 0,
) -> RawAnswer:
    """Send ``pieces`` (``delay`` seconds apart), optionally shut down our side, then read until the
    server closes, ``read_for`` seconds pass, or (if given) ``answers`` final answers are complete."""
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=read_for)
    data = b""
    closed = False
    sent = answered = None
    try:
        for piece in pieces:
            # Stop sending once the server answered more than the requests already complete (or
            # closed), and read that, as a client would: sending on would only earn a reset.
            if select.select([sock], [], [], 0)[0]:
                chunk = sock.recv(65536)
                if answered is None and chunk:
                    answered = time.monotonic()
                data += chunk
                if not chunk or len(parse_answers(data)) > answered_while_sending:
                    closed = not chunk
                    break
            sock.sendall(piece)
            if delay:
                time.sleep(delay)
        else:
            sent = time.monotonic()
        if closed:
            return RawAnswer(data, closed, time.monotonic() - started, None if answered is None else answered - started)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + read_for
        while answers is None or sum(status >= 200 for status, _, _ in parse_answers(data)) < answers:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            if answered is None:
                answered = time.monotonic()
            data += chunk
    except (BrokenPipeError, ConnectionResetError):
        closed = True  # the server answered (and closed) before we finished sending
        answered = answered or time.monotonic()
    finally:
        sock.close()
    ended = time.monotonic()
    if answered is None:
        return RawAnswer(data, closed, ended - started, None)
    return RawAnswer(data, closed, ended - started, answered - (sent if sent and sent <= answered else started))


def parse_answers(data: bytes) -> list[tuple[int, bytes, bytes]]:
    answers = []
    while data.startswith(b"HTTP/"):
        head, separator, rest = data.partition(b"\r\n\r\n")
        if not separator:
            break
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if status >= 200 and len(rest) < length:
            break
        body, data = (rest[:length], rest[length:]) if status >= 200 else (b"", rest)
        answers.append((status, head, body))
    return answers


class Loader(threading.Thread):
    """Posts batches of unique events to /v1/batch over one keep-alive connection, as an SDK does.

    A batch answered anything but 200 is posted again with the same messageIds after
    ``retry_after`` seconds (``retry=True``), or recorded as refused and never sent again. Each
    event carries ``properties.n``, counting up per user, so that order can be checked."""

    def __init__(
        self, port: int, write_key: str, name: str, *, batch: int = 20, pad: int = 800, users: int = 4,
        retry: bool = True, retry_after: float = 0.05, interval: float = 0.0, timeout: float = 15.0,
        keep_ids: bool = True,
    ) -> None:
        super().__init__(daemon=True, name=f"loader-{name}")
        self.port = port
        self.name_ = name
        self.batch = batch
        self.pad = "x" * pad
        self.users = users
        self.retry = retry
        self.retry_after = retry_after
        self.interval = interval
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", "Authorization": basic(write_key)}
        self.stop_event = threading.Event()
        self.keep_ids = keep_ids  # off for long runs: then only acked_count and acks are kept
        self.acked: list[str] = []
        self.acked_count = 0
        self.refused: list[str] = []  # messageIds of batches answered non-200 and never retried
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()  # connection-level failures
        self.unavailable: list[tuple[str | None, dict]] = []  # (Retry-After, body) of the 503s, first 50
        self.acks: list[tuple[float, int]] = []  # (monotonic time, events) of every 200
        self.failure: BaseException | None = None
        self._n = Counter()
        self._count = 0
        self._conn: http.client.HTTPConnection | None = None

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                started = time.monotonic()
                ids, body = self._next_batch()
                while True:
                    status = self._post(body)
                    if status == 200:
                        if self.keep_ids:
                            self.acked += ids
                        self.acked_count += len(ids)
                        self.acks.append((time.monotonic(), len(ids)))
                        break
                    if not self.retry:
                        if self.keep_ids:
                            self.refused += ids
                        break
                    if self.stop_event.wait(self.retry_after):
                        return  # unacknowledged: may or may not be stored, not counted
                if self.interval:
                    self.stop_event.wait(max(0.0, self.interval - (time.monotonic() - started)))
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.failure = error

    def stop(self) -> None:
        self.stop_event.set()
        self.join(30)
        assert not self.is_alive(), f"{self.name} did not stop"
        if self.failure is not None:
            raise AssertionError(f"{self.name} crashed: {self.failure!r}")

    def _next_batch(self) -> tuple[list[str], bytes]:
        events = []
        for _ in range(self.batch):
            user = f"{self.name_}-u{self._count % self.users}"
            self._count += 1
            self._n[user] += 1
            events.append({
                "type": "track", "userId": user, "event": "Load", "messageId": f"{self.name_}-{self._count}",
                "properties": {"n": self._n[user], "pad": self.pad},
            })
        return [e["messageId"] for e in events], json.dumps({"batch": events}).encode()

    def _post(self, body: bytes) -> int | None:
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self._conn.request("POST", "/v1/batch", body, self.headers)
            answer = self._conn.getresponse()
            data = answer.read()
            self.statuses[answer.status] += 1
            if answer.status == 503 and len(self.unavailable) < 50:
                self.unavailable.append((answer.getheader("Retry-After"), json.loads(data)))
            if answer.status == 200:
                return 200
            if answer.status >= 500 and answer.status != 503:
                self.unavailable.append((answer.getheader("Retry-After"), {"raw": data[:300].decode(errors="replace")}))
            return answer.status
        except (OSError, http.client.HTTPException) as error:
            self.errors[type(error).__name__] += 1
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            return None


def storage_bytes(directory: Path) -> int:
    """Bytes of the collector's SQLite files (database, WAL, shared memory)."""
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += (Path(directory) / f"events.db{suffix}").stat().st_size
        except FileNotFoundError:
            pass
    return total


def integrity(db: Path) -> str:
    conn = sqlite3.connect(str(db), timeout=10)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def stored_message_ids(db: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return {m for (m,) in conn.execute("SELECT message_id FROM events")}
    finally:
        conn.close()


class PortReceiver(Receiver):
    """A Receiver on a port chosen in advance, so that a destination can find it gone (connection
    refused) and back again at the same address."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        self._loop.run_until_complete(site.start())
        self._runner = runner
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        """Close the listening socket and every connection: the port refuses connections after."""
        if not self._thread.is_alive():
            return  # stopped already
        future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        future.result(10)
        super().stop()


def received_events(receiver: Receiver) -> list[dict]:
    """Every event of every successful request, in arrival order (gzip or not)."""
    events: list[dict] = []
    for request in receiver.successful():
        body = request.body
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        data = json.loads(body)
        events += data["batch"] if isinstance(data, dict) and "batch" in data else data
    return events


def first_delivery_order(events: list[dict]) -> dict[str, list[int]]:
    """For each user, properties.n of their events in the order each was first delivered."""
    seen: set[str] = set()
    order: dict[str, list[int]] = {}
    for event in events:
        if event["messageId"] not in seen:
            seen.add(event["messageId"])
            order.setdefault(event["userId"], []).append(event["properties"]["n"])
    return order


class Deliveries:
    """The events a Receiver got, decoded once each (receivers here get tens of thousands)."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self._seen = 0
        self.events: list[dict] = []
        self.ids: set[str] = set()

    def update(self) -> Deliveries:
        with self.receiver._lock:
            new = self.receiver.requests[self._seen:]
            self._seen += len(new)
        for request in new:
            if request.status >= 300:
                continue
            body = request.body
            if body[:2] == b"\x1f\x8b":
                body = gzip.decompress(body)
            data = json.loads(body)
            batch = data["batch"] if isinstance(data, dict) and "batch" in data else data
            self.events += batch
            self.ids.update(e["messageId"] for e in batch)
        return self
