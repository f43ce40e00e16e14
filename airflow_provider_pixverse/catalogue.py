"""The models list (``GET speech/models``: limits and cost), fetched once per connection, account and process."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from airflow_provider_pixverse._api.cost import ModelCatalogue, parse_model_catalogue

if TYPE_CHECKING:
    from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

# A process that lives long (a worker running many tasks, dag.test()) reads the list again after this long.
CATALOGUE_SECONDS = 3600.0

_lock = threading.Lock()
_catalogues: dict[tuple[str, str, str | None], tuple[float, ModelCatalogue]] = {}


def model_catalogue(hook: PixVerseHook, *, email: str | None = None) -> ModelCatalogue:
    """The models list for ``hook``'s connection and account ``email`` (default: the connection's), cached."""
    settings = hook.settings
    account = email or settings.email
    key = (hook.pixverse_conn_id, settings.base_url, account)
    now = time.monotonic()
    with _lock:
        cached = _catalogues.get(key)
    if cached is not None and now - cached[0] < CATALOGUE_SECONDS:
        return cached[1]
    catalogue = parse_model_catalogue(hook.list_models(email=account))
    with _lock:
        _catalogues[key] = (now, catalogue)
    return catalogue


def forget_catalogues() -> None:
    """Drop every cached models list (the next use fetches it again)."""
    with _lock:
        _catalogues.clear()
