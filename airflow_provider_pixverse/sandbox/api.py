"""The documented API under /v2/pixverse, and the media files, as request -> answer."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from airflow_provider_pixverse.sandbox import mp3
from airflow_provider_pixverse.sandbox.credits import NotEnoughCredits
from airflow_provider_pixverse.sandbox.forms import parse_fields
from airflow_provider_pixverse.sandbox.jobs import AccountBusy
from airflow_provider_pixverse.sandbox.responses import Response, error_response, json_response
from airflow_provider_pixverse.sandbox.state import ClipNotFound, SandboxState
from airflow_provider_pixverse.sandbox.validation import ValidationError, validate_create
from airflow_provider_pixverse.sandbox.voices_and_models import models_json, voices_json

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox.records import Headers

API_PREFIX = "/v2/pixverse"
SPEECH = API_PREFIX + "/speech"
MEDIA_PREFIX = "/media/pixverse/audio/speech/"
_MEDIA = re.compile(r"/media/pixverse/audio/speech/(\d+)\.mp3")
_BAD_ID = re.compile(r"[%/?#\\\s\x00-\x1f\x7f]")
LIST_LIMIT = 50  # documented default
LIST_MAX_LIMIT = 100  # the real maximum is unconfirmed: a larger limit is cut down to this
# A media answer is written 1 MiB at a time: at 64 KiB the server's own writes cost it about 0.4 CPU-seconds
# a GB, against 0.26 at 1 MiB (bench/download.py), cores a downloader on the same machine would have had.
MEDIA_CHUNK_BYTES = 1024 * 1024
ENDPOINTS = ("create", "get", "list", "voices", "models", "media", "control", "other")


@dataclass(frozen=True)
class Request:
    """A request as received: the target split, nothing decoded."""

    method: str
    raw_path: str
    headers: Headers
    body: bytes

    @property
    def path(self) -> str:
        """The target without its query."""
        return self.raw_path.split("?", 1)[0]

    def query(self, name: str) -> str | None:
        """A query parameter, decoded."""
        values = parse_qs(self.raw_path.partition("?")[2]).get(name)
        return values[0] if values else None


def authorized(request: Request, token: str) -> bool:
    """Whether the request carries ``Authorization: Bearer <token>``."""
    scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _int_query(request: Request, name: str, default: int, low: int) -> int:
    value = request.query(name)
    if value is None or value == "":
        return default
    if not value.isdigit() or int(value) < low:
        raise ValidationError(f"Parameter {name} ({value}) must be an integer of at least {low}")
    return int(value)


def endpoint(method: str, raw_path: str) -> str:
    """Which endpoint a request is for: one of :data:`ENDPOINTS`, by path (and method for create)."""
    path = raw_path.split("?", 1)[0]
    if path.startswith(MEDIA_PREFIX):
        return "media"
    if path.startswith("/_sandbox/") or path == "/_sandbox":
        return "control"
    if path in (SPEECH, SPEECH + "/"):
        return "list"
    if path == SPEECH + "/create":
        return "create" if method == "POST" else "other"
    if path in (SPEECH + "/voices", SPEECH + "/models"):
        return path.rsplit("/", 1)[1]
    if path.startswith(SPEECH + "/"):
        return "get"
    return "other"


def _create(request: Request, state: SandboxState) -> Response:
    fields = parse_fields(request.body, request.headers.get("Content-Type"))
    if not fields.get("email"):  # as the listing: no account named is refused where several are configured
        fields = {**fields, "email": state.only_account()}
    try:
        clip = state.create(validate_create(fields), charge=True, as_job=True)
    except AccountBusy as busy:
        refused = error_response(429, str(busy), with_code=True)
        refused.headers["Retry-After"] = str(busy.retry_after)
        return refused
    return json_response(200, state.clip_json(clip))


def _get(audio_id: str, state: SandboxState) -> Response:
    if "%" in audio_id:
        return error_response(400, f"Parameter audio_id ({audio_id}) must not be percent-encoded")
    if not audio_id or _BAD_ID.search(audio_id) or ".." in audio_id:
        return error_response(400, f"Parameter audio_id ({audio_id}) is not valid")
    try:
        return json_response(200, state.poll(audio_id))
    except ClipNotFound:
        return error_response(404, f"Speech {audio_id} not found", with_code=False)


def _route(request: Request, state: SandboxState) -> Response:
    path, method = request.path, request.method
    if path == SPEECH + "/create":
        if method != "POST":
            return error_response(405, "Method not allowed, use POST", with_code=True)
        return _create(request, state)
    if method != "GET":
        return error_response(405, "Method not allowed", with_code=True)
    if path in (SPEECH, SPEECH + "/"):
        limit = min(_int_query(request, "limit", LIST_LIMIT, 1), LIST_MAX_LIMIT)
        offset = _int_query(request, "offset", 0, 0)
        return json_response(200, state.listing(request.query("email"), limit, offset))
    if path == SPEECH + "/voices":
        return json_response(200, voices_json(request.query("model"), request.query("language")))
    if path == SPEECH + "/models":
        return json_response(200, models_json())
    if path.startswith(SPEECH + "/"):
        return _get(path[len(SPEECH) + 1 :], state)
    return error_response(404, f"No such endpoint {path}", with_code=True)


def handle_api(request: Request, state: SandboxState, token: str) -> Response:
    """Answer a request under /v2/pixverse."""
    if not authorized(request, token):
        return error_response(401)
    try:
        return _route(request, state)
    except ValidationError as exc:
        return error_response(400, str(exc))
    except NotEnoughCredits as exc:
        return error_response(412, str(exc))


def handle_media(request: Request, state: SandboxState, chunk_size: int = MEDIA_CHUNK_BYTES) -> Response:
    """Serve a completed clip's MP3 (no auth), streamed."""
    match = _MEDIA.fullmatch(request.path)
    clip = state.media(int(match.group(1))) if match else None
    if request.method not in ("GET", "HEAD"):
        return Response(405, b"Method Not Allowed", {"Content-Type": "text/plain", "Allow": "GET, HEAD"})
    if clip is None:
        return Response(404, b"Not Found", {"Content-Type": "text/plain"})
    headers = {
        "Content-Type": "audio/mpeg",
        "Accept-Ranges": "none",
        "Cache-Control": "public, max-age=31536000",
        "ETag": f'"{clip.asset_id}-{clip.layout.size}"',
    }
    body = mp3.iter_layout(clip.layout, chunk_size) if request.method == "GET" else b""
    return Response(200, body, headers, length=clip.layout.size)
