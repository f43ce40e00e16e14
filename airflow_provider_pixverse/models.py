"""The clip model and its status enum: the documented import path for both."""

from __future__ import annotations

from airflow_provider_pixverse._api.clip import SpeechClip
from airflow_provider_pixverse._api.status import AudioStatus

__all__ = ["AudioStatus", "SpeechClip"]
