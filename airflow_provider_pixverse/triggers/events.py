"""The schema of the one event a PixVerse trigger fires, and how a resumed task reads it.

Kept apart from the trigger so that operators and sensors read events without importing the
trigger's HTTP stack while a DAG file is parsed.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_pixverse._api.clip import SpeechClip
from airflow_provider_pixverse._api.errors import error_class_named

SUCCESS = "success"
FAILED = "failed"
ERROR = "error"
TIMEOUT = "timeout"


def event_payload(
    status: str,
    audio_id: str,
    message: str,
    *,
    clip: dict[str, Any] | None = None,
    error_type: str | None = None,
) -> dict[str, Any]:
    """The event's dict; every key is always present."""
    return {"status": status, "audio_id": audio_id, "clip": clip, "message": message, "error_type": error_type}


def clip_from_event(event: dict[str, Any], *, timeout_error: type[BaseException]) -> SpeechClip:
    """The final clip an event carries (COMPLETED or FAILED); raise what an error or timeout event reports."""
    status = event.get("status")
    message = str(event.get("message"))
    if status in (SUCCESS, FAILED):
        return SpeechClip.from_json(event.get("clip"), audio_id=event.get("audio_id"))
    if status == TIMEOUT:
        raise timeout_error(message)
    raise error_class_named(event.get("error_type"))(message)
