"""DAGs for the sensor tests: one per mode; each creates a clip and waits for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_pixverse.sensors.pixverse import PixVerseSpeechSensor


@task
def create() -> str:
    """Start a clip through the hook (the sandbox's clock makes it take several polls)."""
    from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

    return PixVerseHook().create_speech("Waiting for this takes a few polls.", "minimax_english_radiant_girl")


@task
def record(clip: dict[str, Any], path: str) -> None:
    """Write what the sensor returned where the test can read it."""
    Path(path).write_text(json.dumps(clip))


for mode, deferrable in (("deferrable", True), ("poke", False), ("reschedule", False)):
    with DAG(
        dag_id=f"pixverse_sensor_{mode}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["pixverse-tests"],
    ):
        wait = PixVerseSpeechSensor(
            task_id="wait_for_speech",
            audio_id="{{ ti.xcom_pull(task_ids='create') }}",
            deferrable=deferrable,
            mode="poke" if deferrable else mode,
            poke_interval=0.2,
            timeout=60,
        )
        create() >> wait
        record(wait.output, "{{ dag_run.conf['record_to'] }}")
