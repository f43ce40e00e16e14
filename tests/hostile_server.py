"""A loopback HTTP server that misbehaves on purpose: each test scripts its answers byte by byte.

It speaks just enough HTTP/1.1 to read a request (line, headers, body by Content-Length) and
hands the socket to the test's ``answer(request, sock)``, which writes whatever it likes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@dataclass
class SeenRequest:
    """One request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HostileServer:
    """Serves every connection with ``answer``; ``requests`` records what arrived."""

    answer: Callable[[SeenRequest, socket.socket], None]
    requests: list[SeenRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> HostileServer:
        """Start serving in a thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(sock,), daemon=True).start()

    def _handle(self, sock: socket.socket) -> None:
        with sock, contextlib.suppress(OSError):
            sock.settimeout(10)
            request = _read_request(sock)
            if request is None:
                return
            self.requests.append(request)
            self.answer(request, sock)


def _read_request(sock: socket.socket) -> SeenRequest | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    line, *header_lines = head.decode("latin-1").split("\r\n")
    method, path, _ = line.split(" ", 2)
    headers = {}
    for header in header_lines:
        name, _, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return SeenRequest(method, path, headers, body)


def http_answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    """The bytes of a whole HTTP/1.1 answer (the connection closes after it)."""
    lines = [f"HTTP/1.1 {status} X"]
    merged = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
    lines += [f"{name}: {value}" for name, value in merged.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@contextlib.contextmanager
def hostile_server(answer: Callable[[SeenRequest, socket.socket], None]) -> Iterator[HostileServer]:
    """A running :class:`HostileServer`, stopped on exit."""
    server = HostileServer(answer).start()
    try:
        yield server
    finally:
        server.stop()
