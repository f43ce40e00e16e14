"""Turning a scheduled fault into the answer it stands for."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse.sandbox.responses import (
    Response,
    error_response,
    html_page,
    html_response,
    json_response,
)

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox.faults import Fault

GARBAGE = b"<<<\x00 this is not JSON \xff>>>"


def _other_host(host_header: str | None, port: int) -> str:
    """localhost for 127.0.0.1 and the other way round: two hosts of one server."""
    host = (host_header or "127.0.0.1").rsplit(":", 1)[0]
    return f"localhost:{port}" if host != "localhost" else f"127.0.0.1:{port}"


def _status(fault: Fault) -> Response:
    code = int(fault.params["code"])
    body = fault.params.get("body")
    if body is None:
        response = error_response(code, fault.params.get("message"))
    elif isinstance(body, str | bytes):
        data = body.encode() if isinstance(body, str) else body
        response = Response(code, data, {"Content-Type": "application/json; charset=utf-8"})
    else:
        response = json_response(code, body)
    retry_after = fault.params.get("retry_after")
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def replacement(fault: Fault, *, raw_path: str, host_header: str | None, port: int) -> Response | None:
    """The answer a fault puts in place of the real one, or None when it only alters it."""
    kind, params = fault.kind, fault.params
    if kind == "status":
        return _status(fault)
    if kind == "html":
        return html_response(int(params.get("code", 502)))
    if kind == "garbage":
        content_type = str(params.get("content_type", "application/json"))
        return Response(int(params.get("code", 200)), GARBAGE, {"Content-Type": content_type})
    if kind == "drop":
        return Response(0, drop=True)
    if kind == "redirect":
        location = params.get("location") or f"http://{_other_host(host_header, port)}{raw_path}"
        return Response(int(params.get("code", 302)), b"", {"Location": str(location)})
    if kind == "media_html":
        content_type = str(params.get("content_type", "text/html; charset=utf-8"))
        return Response(200, html_page(403), {"Content-Type": content_type})
    if kind == "media_json":
        body: Any = params.get("body") or {"error": "AccessDenied", "message": "Request has expired"}
        return Response(200, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return None


def alter(fault: Fault, response: Response) -> Response:
    """Apply a fault that changes how the real answer is sent."""
    if fault.kind == "truncate":
        response.send_limit = int(fault.params.get("after_bytes", 1024))
        response.close = True
    elif fault.kind == "wrong_length":
        delta = int(fault.params.get("delta", 1000))
        actual = response.content_length
        response.length = max(0, actual + delta)
        response.send_limit = min(actual, response.length)
        response.close = True
    return response
