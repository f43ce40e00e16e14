"""The HTTP plumbing: a threading HTTP/1.1 server that routes, injects faults and writes answers."""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse.sandbox import injection
from airflow_provider_pixverse.sandbox.api import API_PREFIX, MEDIA_PREFIX, Request, endpoint, handle_api, handle_media
from airflow_provider_pixverse.sandbox.control import CONTROL_PREFIX, handle_control
from airflow_provider_pixverse.sandbox.records import Headers, RecordedRequest
from airflow_provider_pixverse.sandbox.responses import Response, error_response, reason

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox.protocols import ServedSandbox

log = logging.getLogger(__name__)
_MAX_BODY = 64 * 1024 * 1024


def request_kind(raw_path: str) -> str:
    """api, media or control, by path."""
    if raw_path.startswith(CONTROL_PREFIX + "/") or raw_path == CONTROL_PREFIX:
        return "control"
    if raw_path.startswith(MEDIA_PREFIX):
        return "media"
    return "api"


class SandboxServer(ThreadingHTTPServer):
    """A threading server that can close its open keep-alive connections on stop."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 4096  # thousands of triggers connect at once in the benchmarks

    def __init__(self, address: tuple[str, int], sandbox: ServedSandbox) -> None:
        self.sandbox = sandbox
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, SandboxHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that hang up; report anything else."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def track(self, sock: socket.socket, *, open_: bool) -> None:
        """Remember or forget a client connection."""
        with self._open_lock:
            if open_:
                self._open.add(sock)
            else:
                self._open.discard(sock)

    def close_connections(self) -> None:
        """Shut every client connection still open."""
        with self._open_lock:
            socks = list(self._open)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class SandboxHandler(BaseHTTPRequestHandler):
    """One connection: reads requests, records them, answers them."""

    protocol_version = "HTTP/1.1"
    server_version = "PixVerseSandbox/1.0"
    timeout = 60
    disable_nagle_algorithm = True
    server: SandboxServer

    def setup(self) -> None:
        """Track the connection so stop() can close it."""
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        """Forget the connection."""
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Log to the module logger at debug, not to stderr."""
        log.debug("%s - " + format, self.address_string(), *args)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        sandbox = self.server.sandbox
        body = self._read_body()
        headers = Headers(self.headers.items())
        kind = request_kind(self.path)
        record = RecordedRequest(
            self.command,
            self.path,
            headers,
            body,
            kind,
            self.headers.get("Host"),
            endpoint=endpoint(self.command, self.path),
        )
        sandbox.log.add(record)
        request = Request(self.command, self.path, headers, body)
        response = self._answer(request, kind)
        sandbox.log.answered(record, None if response.drop else response.status)
        self._write(response, kind)

    def _answer(self, request: Request, kind: str) -> Response:
        sandbox = self.server.sandbox
        if kind == "control":
            return handle_control(request, sandbox, self.client_address[0])
        fault = sandbox.faults.take(kind, request.raw_path)
        if fault is not None:
            if fault.kind == "delay":
                time.sleep(float(fault.params.get("seconds", 1.0)))
            replaced = injection.replacement(
                fault, raw_path=request.raw_path, host_header=request.headers.get("Host"), port=sandbox.port
            )
            if replaced is not None:
                return replaced
        if kind == "media":
            response = handle_media(request, sandbox.state)
        elif request.path.startswith(API_PREFIX + "/") or request.path == API_PREFIX:
            response = handle_api(request, sandbox.state, sandbox.token)
        else:
            response = error_response(404, f"No such endpoint {request.path}", with_code=True)
        return injection.alter(fault, response) if fault is not None else response

    def _write(self, response: Response, kind: str) -> None:
        if response.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(response.status, reason(response.status))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(response.content_length))
        if response.close:
            self.close_connection = True  # after the answer, with no warning header: as a broken peer would
        self.end_headers()
        if self.command == "HEAD":
            return
        chunks = [response.body] if isinstance(response.body, bytes) else response.body
        budget = response.send_limit
        for chunk in chunks:
            if budget is not None:
                chunk = chunk[:budget]
                budget -= len(chunk)
            if chunk:
                self.wfile.write(chunk)
                if kind == "media":
                    self.server.sandbox.log.add_media_bytes(len(chunk))
            if budget == 0:
                break

    def _dispatch(self) -> None:
        try:
            self._handle()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            log.exception("sandbox failed to answer %s %s", self.command, self.path)
            self.close_connection = True

    do_GET = do_POST = do_HEAD = do_DELETE = do_PUT = do_PATCH = _dispatch
