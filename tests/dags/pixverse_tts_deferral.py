"""A long text spoken by PixVerseTextToSpeechOperator that defers: its parts waited for in one deferral."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_pixverse.operators.pixverse import PixVerseTextToSpeechOperator

with DAG(
    dag_id="pixverse_tts_deferral",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["pixverse-tests"],
):
    PixVerseTextToSpeechOperator(
        task_id="speak",
        text="{{ dag_run.conf['text'] }}",
        voice_id="minimax_english_radiant_girl",
        model="speech-2.8-turbo",
        destination="{{ dag_run.conf['destination'] }}",
        poll_interval=0.5,
    )
