"""The models list (``GET speech/models``: limits and cost), fetched once per connection, account and process."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from airflow_provider_pixverse._api.cost import ModelList, parse_model_list

if TYPE_CHECKING:
    from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

# A process that lives long (a worker running many tasks, dag.test()) reads the list again after this long.
MODEL_LIST_SECONDS = 3600.0

_lock = threading.Lock()
_lists: dict[tuple[str, str, str | None], tuple[float, ModelList]] = {}
_told: set[str] = set()  # the unusable formulas already logged, once per process
log = logging.getLogger(__name__)


def cached_model_list(hook: PixVerseHook, *, email: str | None = None) -> ModelList:
    """The models list for ``hook``'s connection and account ``email`` (default: the connection's), cached."""
    settings = hook.settings
    account = email or settings.email
    key = (hook.pixverse_conn_id, settings.base_url, account)
    now = time.monotonic()
    with _lock:
        cached = _lists.get(key)
    if cached is not None and now - cached[0] < MODEL_LIST_SECONDS:
        return cached[1]
    model_list = parse_model_list(hook.list_models(email=account))
    with _lock:
        _lists[key] = (now, model_list)
        untold = [problem for problem in model_list.formula_problems.values() if problem not in _told]
        _told.update(untold)
    for problem in untold:
        log.warning("%s: that model's cost cannot be estimated (the other models are not concerned)", problem)
    return model_list


def forget_model_lists() -> None:
    """Drop every cached models list (the next use fetches it again)."""
    with _lock:
        _lists.clear()
        _told.clear()
