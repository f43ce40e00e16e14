"""A plain readiness endpoint for the http provider's HttpSensorTrigger, in its own process.

The peer can only wait for "not 404", and it opens a new connection for every poll (a new aiohttp
session each time). The sandbox answers those with a thread per connection, which costs it more than
the peer's own poll at 10,000 clips; this server answers them from one asyncio loop, so the peer's
figures are its own and not the server's:

    GET /ready/<clip>/<ready_ms>   404 until the UNIX time ready_ms (milliseconds), then 200; a clip-sized JSON body
    GET /_times                    [UNIX time of each readiness request so far] (not counted)

    python bench/_ready_server.py [LATENCY_S]   prints "READY url=http://127.0.0.1:<port>", serves until SIGTERM

With ``LATENCY_S``, each readiness answer is sent that many seconds after its request came in.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import ClassVar

LATENCY = 0.0  # seconds before each readiness answer (the command line's first argument)
# About the size of a clip's JSON, as GET speech/{audio_id} answers it.
_BODY = json.dumps({"audio_status": 2, "audio_status_name": "GENERATING", "padding": "x" * 400}).encode()


class _Http(asyncio.Protocol):
    """HTTP/1.1 GETs without bodies, keep-alive; just enough for aiohttp and urllib."""

    received: ClassVar[list[float]] = []  # when each readiness request came in

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = request_line.split(" ")
            path = parts[1] if len(parts) > 1 else "/"
            answer = self._answer(path)
            if LATENCY and path != "/_times":
                asyncio.get_running_loop().call_later(LATENCY, self._send, answer)
            else:
                self._send(answer)

    def _send(self, answer: bytes) -> None:
        if not self.transport.is_closing():  # type: ignore[attr-defined]
            self.transport.write(answer)  # type: ignore[attr-defined]

    def _answer(self, path: str) -> bytes:
        if path == "/_times":
            return _response(200, json.dumps(_Http.received).encode())
        fields = path.strip("/").split("/")
        if len(fields) == 3 and fields[0] == "ready":
            now = time.time()
            _Http.received.append(now)
            ready = now * 1000 >= float(fields[2])
            return _response(200 if ready else 404, _BODY)
        return _response(404, b'{"error": "no such endpoint"}')


def _response(status: int, body: bytes) -> bytes:
    reason = {200: "OK", 404: "Not Found"}[status]
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    # The peer connects for all its clips at once: a deep backlog (capped by net.core.somaxconn).
    server = await loop.create_server(_Http, "127.0.0.1", 0, backlog=65535)
    port = server.sockets[0].getsockname()[1]
    print(f"READY url=http://127.0.0.1:{port}", flush=True)
    await stop.wait()
    server.close()


class ReadyServerProcess:
    """Start this server in its own process (its CPU is not the benchmark's) and read its counters."""

    def __init__(self, latency: float = 0.0) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, str(latency)], stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().split("url=", 1)[1].strip()

    def request_times(self) -> list[float]:
        """When each readiness request came in (UNIX times)."""
        with urllib.request.urlopen(f"{self.url}/_times", timeout=60) as answer:
            return [float(at) for at in json.loads(answer.read())]

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server process so far."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


if __name__ == "__main__":
    LATENCY = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    asyncio.run(_serve())
