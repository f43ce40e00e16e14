"""DAG for the e2e shared-polling test: 200 mapped creates of one account, each waiting in the triggerer."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_pixverse.operators.pixverse import PixVerseCreateSpeechOperator

DAG_ID = "pixverse_e2e_shared"
TASK_ID = "speak"
CLIPS = 200
POLL_INTERVAL = 5.0  # seconds: the shared poll's interval, one group round per interval
VOICE_ID = "minimax_english_radiant_girl"

with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=True,
    # Running tasks only: a deferred task frees its slot, so a few slots carry all 200 into the triggerer.
    max_active_tasks=8,
    tags=["pixverse-tests"],
):
    PixVerseCreateSpeechOperator.partial(
        task_id=TASK_ID,
        voice_id=VOICE_ID,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        wait_timeout=1200,
    ).expand(text=[f"Clip {n:03d} of {CLIPS}, waiting in the shared poll." for n in range(CLIPS)])
