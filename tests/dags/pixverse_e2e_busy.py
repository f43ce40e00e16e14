"""DAG for the e2e busy-account test: 24 mapped creates on an account that runs 3 jobs at once."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_pixverse.operators.pixverse import PixVerseCreateSpeechOperator

DAG_ID = "pixverse_e2e_busy"
TASK_ID = "speak"
CLIPS = 24
POLL_INTERVAL = 2.0  # seconds: the account's shared listing, where the queue sees jobs end
VOICE_ID = "minimax_english_radiant_girl"

with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=True,
    max_active_tasks=8,  # running tasks only: a deferred task (waiting for capacity or its clip) frees its slot
    tags=["pixverse-tests"],
):
    PixVerseCreateSpeechOperator.partial(
        task_id=TASK_ID,
        voice_id=VOICE_ID,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        wait_timeout=1200,
    ).expand(text=[f"Clip {n:02d} of {CLIPS}, queued for a free job slot." for n in range(CLIPS)])
