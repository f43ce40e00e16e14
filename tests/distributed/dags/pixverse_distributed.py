"""The distributed run (make test-distributed): create clips, wait for them in the triggerers, land them in S3.

``create`` is mapped over the texts and defers while each clip generates; ``download`` is mapped over
the created clips and streams each MP3 into the bucket through the ``aws_moto`` connection. The test
sets the number of clips and the bucket through the environment every Airflow process shares.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG

from airflow_provider_pixverse.operators.pixverse import PixVerseCreateSpeechOperator, PixVerseDownloadSpeechOperator

DAG_ID = "pixverse_distributed"
CLIPS = int(os.environ.get("PIXVERSE_DISTRIBUTED_CLIPS", "100"))
BUCKET = os.environ.get("PIXVERSE_DISTRIBUTED_BUCKET", "pixverse-distributed")
POLL_INTERVAL = float(os.environ.get("PIXVERSE_DISTRIBUTED_POLL_INTERVAL", "5"))


def clip_text(index: int) -> str:
    """The text of clip ``index``: the map index can be read back from the clip's prompt."""
    return f"Clip {index:03d} of the distributed run."


def audio_id_of(clip: dict[str, Any]) -> str:
    """The audio_id of a created clip (the create task's return value)."""
    return str(clip["audio_id"])


with DAG(
    dag_id=DAG_ID,
    schedule=None,
    catchup=False,
    max_active_tasks=256,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=1)},
    tags=["pixverse", "test"],
):
    created = PixVerseCreateSpeechOperator.partial(
        task_id="create",
        voice_id="minimax_english_radiant_girl",
        poll_interval=POLL_INTERVAL,
        wait_timeout=900,
    ).expand(text=[clip_text(index) for index in range(CLIPS)])
    PixVerseDownloadSpeechOperator.partial(
        task_id="download",
        destination=f"s3://{BUCKET}/speech/",
        storage_conn_id="aws_moto",
        poll_interval=POLL_INTERVAL,
        wait_timeout=900,
    ).expand(audio_id=created.output.map(audio_id_of))
