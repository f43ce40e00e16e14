"""A create task whose first try dies after the create: the retry must not create again."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_pixverse.operators.pixverse import PixVerseCreateSpeechOperator


@task
def record(clip: dict[str, Any], path: str) -> None:
    """Write what the create returned where the test can read it."""
    Path(path).write_text(json.dumps(clip))


with DAG(
    dag_id="pixverse_create_retry",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["pixverse-tests"],
):
    create = PixVerseCreateSpeechOperator(
        task_id="create_speech",
        text="Paid for once.",
        voice_id="minimax_english_radiant_girl",
        deferrable=False,
        poll_interval=0.1,
        retries=1,
        retry_delay=timedelta(seconds=0),
    )
    record(create.output, "{{ dag_run.conf['record_to'] }}")
