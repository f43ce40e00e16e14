"""What differs between the supported Airflow versions (2.11 and every 3.x), in one place.

Built on ``airflow.providers.common.compat``: names that moved between versions come from its
``sdk`` module; what it does not cover (the trigger base classes, which features exist) is here.
The rest of the package imports Airflow names from ``airflow.providers.common.compat.sdk`` or from
this module, never behind version checks of its own.
"""

from __future__ import annotations

from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_3_PLUS

# Core, not the Task SDK, on 2.11 and on every 3.x so far; common.compat has no alias for them.
from airflow.triggers.base import BaseTrigger, TriggerEvent

try:
    # 3.0+: event triggers; from 3.3 on, those with a shared_stream_key() share one poll per group.
    from airflow.triggers.base import BaseEventTrigger
except ImportError:  # Airflow 2.11
    BaseEventTrigger = BaseTrigger  # type: ignore[assignment,misc]

HAS_TASK_STATE_STORE: bool = AIRFLOW_V_3_3_PLUS
"""``context["task_state_store"]`` (state that survives task retries) arrived in Airflow 3.3.

Before 3.3 a retry of the create operator cannot find the clip an earlier try created: the
operator logs a warning and creates again."""

HAS_SHARED_STREAMS: bool = AIRFLOW_V_3_3_PLUS
"""From Airflow 3.3 the triggerer runs one ``open_shared_stream()`` per group of event triggers
with the same ``shared_stream_key()``; before, each trigger runs its own ``run()``."""

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "HAS_SHARED_STREAMS",
    "HAS_TASK_STATE_STORE",
    "BaseEventTrigger",
    "BaseTrigger",
    "TriggerEvent",
]
