"""The /_sandbox control surface: drive a sandbox that runs in another process."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from airflow_provider_pixverse.sandbox.responses import Response, json_response
from airflow_provider_pixverse.sandbox.state import ClipNotFound
from airflow_provider_pixverse.sandbox.validation import DEFAULT_EMAIL

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox.api import Request
    from airflow_provider_pixverse.sandbox.protocols import ControlledSandbox

CONTROL_PREFIX = "/_sandbox"


def _body(request: Request) -> dict[str, Any]:
    data = json.loads(request.body or b"{}")
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _clips(request: Request, sandbox: ControlledSandbox, rest: str) -> Response:
    if not rest and request.method == "POST":
        fields = _body(request)
        count = fields.pop("count", None)
        if count is None:
            return json_response(200, sandbox.add_clip(**fields))
        # Many clips in one call, all on the same clock (benchmarks seed thousands).
        return json_response(200, [sandbox.add_clip(**fields) for _ in range(int(count))])
    if rest.endswith("/finish") and request.method == "POST":
        audio_id = unquote(rest[: -len("/finish")])
        try:
            sandbox.finish_clip(audio_id)
        except ClipNotFound:
            return json_response(404, {"error": f"Speech {audio_id} not found"})
        return json_response(200, sandbox.clip(audio_id))
    audio_id = unquote(rest)
    try:
        if request.method == "DELETE":
            sandbox.delete_clip(audio_id)
            return json_response(200, {"deleted": audio_id})
        if request.method == "GET":
            return json_response(200, sandbox.clip(audio_id))
    except ClipNotFound:
        return json_response(404, {"error": f"Speech {audio_id} not found"})
    return json_response(405, {"error": "method not allowed"})


def _route(request: Request, sandbox: ControlledSandbox) -> Response:
    method, path = request.method, request.path[len(CONTROL_PREFIX) :]
    if path == "/faults" and method == "POST":
        data = _body(request)
        sandbox.add_fault(data.pop("kind"), **data)
        return json_response(200, {"faults": [f.to_json() for f in sandbox.faults.pending()]})
    if path == "/faults" and method == "GET":
        return json_response(200, {"faults": [f.to_json() for f in sandbox.faults.pending()]})
    if path == "/faults" and method == "DELETE":
        sandbox.clear_faults()
        return json_response(200, {"faults": []})
    if path.startswith("/ready/") and method == "GET":
        # For peers that can only wait for "not 404" (the http provider's HttpSensorTrigger):
        # the same clip lookup as GET speech/{audio_id}, answering 404 until the clip is final.
        clip = sandbox.clip(unquote(path[len("/ready/") :]))
        return json_response(200 if clip["audio_status_final"] else 404, clip)
    if path.startswith("/clips"):
        return _clips(request, sandbox, path[len("/clips") :].lstrip("/"))
    if path == "/clock" and method == "POST":
        sandbox.set_clock(**_body(request))
        state = sandbox.state
        return json_response(
            200, {"queued_seconds": state.queued_seconds, "generating_seconds": state.generating_seconds}
        )
    if path == "/fail_next" and method == "POST":
        sandbox.fail_next_jobs(**_body(request))
        return json_response(200, {"ok": True})
    if path == "/requests" and method == "GET":
        return json_response(200, [r.to_json() for r in sandbox.requests])
    if path == "/requests" and method == "DELETE":
        sandbox.clear_requests()
        return json_response(200, [])
    if path == "/stats" and method == "GET":
        return json_response(200, sandbox.stats())
    if path == "/request_counts" and method == "GET":
        return json_response(200, sandbox.request_counts())
    if path == "/request_counts" and method == "DELETE":
        sandbox.reset_request_counts()
        return json_response(200, sandbox.request_counts())
    if path == "/max_jobs" and method == "POST":
        data = _body(request)
        sandbox.set_max_jobs(data.get("max_jobs"), email=data.get("email"))
        return json_response(200, {"ok": True})
    if path == "/jobs" and method == "GET":
        email = request.query("email") or DEFAULT_EMAIL
        return json_response(200, {"email": email, "high_water": sandbox.jobs_high_water(email)})
    if path == "/create_outcomes" and method == "GET":
        return json_response(200, sandbox.create_outcomes())
    if path == "/credits" and method == "POST":
        data = _body(request)
        email = str(data.get("email") or DEFAULT_EMAIL)
        sandbox.set_credits(data.get("credits"), email=email)
        return json_response(200, {"email": email, "credits": sandbox.credits_left(email)})
    if path == "/credits" and method == "GET":
        email = request.query("email") or DEFAULT_EMAIL
        return json_response(200, {"email": email, "credits": sandbox.credits_left(email)})
    return json_response(404, {"error": f"no control endpoint {method} {request.path}"})


def handle_control(request: Request, sandbox: ControlledSandbox, client_host: str) -> Response:
    """Answer a control request; loopback clients only."""
    if not (client_host.startswith("127.") or client_host in ("::1", "localhost")):
        return json_response(403, {"error": "the control surface answers loopback clients only"})
    try:
        return _route(request, sandbox)
    except ClipNotFound as exc:
        return json_response(404, {"error": f"Speech {exc} not found"})
    except (ValueError, TypeError, KeyError) as exc:
        return json_response(400, {"error": f"{type(exc).__name__}: {exc}"})
