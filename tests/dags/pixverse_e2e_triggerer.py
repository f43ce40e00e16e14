"""DAG for the e2e triggerer test: one deferrable sensor waits for a clip the test seeded."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_pixverse.sensors.pixverse import PixVerseSpeechSensor

DAG_ID = "pixverse_e2e_triggerer"
TASK_ID = "wait_for_speech"

with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=True,
    tags=["pixverse-tests"],
):
    PixVerseSpeechSensor(
        task_id=TASK_ID,
        audio_id="{{ dag_run.conf['audio_id'] }}",
        deferrable=True,
        poke_interval=5,
        timeout=180,
    )
