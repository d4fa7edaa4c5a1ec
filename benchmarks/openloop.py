"""Open-loop load: requests sent at a fixed arrival rate, whatever the server's answers do.

wrk is closed-loop (a connection waits for its answer before sending again), so a slow answer delays
the next request and is under-counted ("coordinated omission"). Here request i is due at
start + i/rate; if no connection is free it waits, and its latency is counted from when it was due,
so a server that falls behind shows it. Debian has no wrk2, hence this.

A minimal HTTP/1.1 client on raw asyncio protocols (aiohttp's client costs too much CPU per request
on a 2-core machine shared with the server). One request at a time per keep-alive connection.

    python -m benchmarks.openloop --url http://127.0.0.1:8088 --path /v1/track \
        --bodies FILE --header 'Content-Type: application/json' --rate 5000 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections import deque
from urllib.parse import urlsplit

import uvloop

from benchmarks.payloads import read_bodies


def build_requests(host: str, port: int, path: str, headers: list[str], bodies: list[bytes]) -> list[bytes]:
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n" + "".join(f"{h}\r\n" for h in headers)
    return [head.encode() + b"Content-Length: %d\r\n\r\n" % len(b) + b for b in bodies]


class Connection(asyncio.Protocol):
    def __init__(self, gen: OpenLoop) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need: int | None = None  # bytes of the current response, once its head is read
        self.status = 0
        self.due = 0.0
        self.sent = 0.0
        self.busy = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, request: bytes, due: float) -> None:
        self.due, self.sent, self.busy = due, time.monotonic(), True
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.need is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end]).lower()
                self.status = int(head[9:12])
                at = head.find(b"\r\ncontent-length:")
                if at < 0:
                    raise RuntimeError("response without Content-Length (chunked answers are not supported)")
                eol = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : eol if eol > 0 else len(head)])
                self.need = end + 4 + length
            if len(self.buf) < self.need:
                return
            del self.buf[: self.need]
            self.need = None
            self.busy = False
            self.gen.answered(self)

    def connection_lost(self, exc) -> None:
        self.gen.lost(self)


class OpenLoop:
    def __init__(self, host: str, port: int, requests: list[bytes], rate: float, duration: float,
                 warmup: float, max_connections: int) -> None:
        self.host, self.port = host, port
        self.requests = requests
        self.rate, self.duration, self.warmup = rate, duration, warmup
        self.max_connections = max_connections
        self.idle: deque[Connection] = deque()
        self.waiting: deque[float] = deque()  # due times of requests that found no free connection
        self.connections = 0
        self.opening = 0
        self.next_request = 0
        self.measure_from = 0.0
        self.latency: list[float] = []  # from due time to answer, requests due after the warm-up
        self.service: list[float] = []  # from actual send to answer
        self.lag: list[float] = []  # from due time to actual send
        self.errors = 0
        self.lost = 0
        self.outstanding = 0
        self.max_waiting = 0
        self.oversleep: list[float] = []
        self.measure_until = float("inf")
        self.answered_in_window = 0  # answers that arrived while requests were being sent (after the warm-up)

    async def open(self) -> None:
        self.connections += 1
        self.opening += 1
        try:
            _, conn = await asyncio.get_running_loop().create_connection(
                lambda: Connection(self), self.host, self.port)
        except OSError:
            self.connections -= 1
            self.errors += 1
            return
        finally:
            self.opening -= 1
        self.free(conn)

    def _send(self, conn: Connection, due: float) -> None:
        self.next_request = (self.next_request + 1) % len(self.requests)
        conn.send(self.requests[self.next_request], due)

    def dispatch(self, due: float) -> None:
        self.outstanding += 1
        if self.idle:
            self._send(self.idle.pop(), due)
            return
        self.waiting.append(due)
        self.max_waiting = max(self.max_waiting, len(self.waiting))
        # Grow the pool a few connections at a time: a burst of connects overflows the server's
        # listen backlog, and a dropped SYN costs a 1 s retransmit that has nothing to do with it.
        if (self.opening < min(4, len(self.waiting))
                and self.connections < self.max_connections):
            asyncio.ensure_future(self.open())

    def free(self, conn: Connection) -> None:
        if self.waiting:
            self._send(conn, self.waiting.popleft())
        else:
            self.idle.append(conn)

    def answered(self, conn: Connection) -> None:
        now = time.monotonic()
        self.outstanding -= 1
        if self.measure_from <= now < self.measure_until:
            self.answered_in_window += 1
        if conn.due >= self.measure_from:
            self.latency.append(now - conn.due)
            self.service.append(now - conn.sent)
            self.lag.append(conn.sent - conn.due)
            if not 200 <= conn.status < 300:
                self.errors += 1
        self.free(conn)

    def lost(self, conn: Connection) -> None:
        self.connections -= 1
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.busy:
            self.outstanding -= 1
            self.lost += 1

    async def run(self, initial_connections: int) -> dict:
        for _ in range(0, initial_connections, 16):
            await asyncio.gather(*(self.open() for _ in range(16)))
        start = time.monotonic()
        self.measure_from = start + self.warmup
        self.measure_until = self.measure_from + self.duration
        total = int((self.warmup + self.duration) * self.rate)
        i = 0
        while i < total:
            due_now = min(total, int((time.monotonic() - start) * self.rate) + 1)
            while i < due_now:
                self.dispatch(start + i / self.rate)
                i += 1
            # The event loop's timers are millisecond-grained, and a shorter sleep spins the CPU
            # that the server needs: requests go out in bursts up to ~1 ms late, a delay that is
            # counted in their latency (see "lag_ms" in the output).
            now = time.monotonic()
            wake_at = max(now + 0.001, start + i / self.rate)
            await asyncio.sleep(wake_at - now)
            # How late the sender itself woke up: a loaded generator, not a slow server.
            self.oversleep.append(time.monotonic() - wake_at)
        end_sending = time.monotonic()
        deadline = end_sending + 10
        while self.outstanding and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        measured = len(self.latency)
        return {
            "target_rate": self.rate,
            "duration": self.duration,
            "answered": measured,
            "achieved_rate": measured / self.duration,
            # What the server answered while the load lasted: the rate itself if it kept up, its
            # capacity under this generator if not (achieved_rate also counts the late answers).
            "throughput": self.answered_in_window / self.duration,
            "errors": self.errors,
            "lost": self.lost,
            "unanswered": self.outstanding,
            "connections": self.connections,
            "max_waiting": self.max_waiting,
            "latency_ms": percentiles(self.latency),
            "service_ms": percentiles(self.service),
            "lag_ms": percentiles(self.lag),
            "oversleep_ms": percentiles(self.oversleep),
            "cpu_s": round(sum(os.times()[:2]), 2),
        }


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    s = sorted(samples)
    n = len(s)

    def q(p: float) -> float:
        return round(s[min(n - 1, int(p * n))] * 1000, 3)

    return {"p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "p999": q(0.999), "max": round(s[-1] * 1000, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--path", required=True)
    parser.add_argument("--bodies", required=True, help="file written by payloads.write_bodies")
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=1, help="seconds sent but not measured")
    parser.add_argument("--connections", type=int, default=64, help="opened before starting")
    parser.add_argument("--max-connections", type=int, default=512)
    args = parser.parse_args()
    url = urlsplit(args.url)
    requests = build_requests(url.hostname, url.port, args.path, args.header, read_bodies(args.bodies))
    gen = OpenLoop(url.hostname, url.port, requests, args.rate, args.duration, args.warmup,
                   args.max_connections)
    uvloop.install()
    print(json.dumps(asyncio.run(gen.run(args.connections))))


if __name__ == "__main__":
    main()
