"""
A batch of texts to speech, one mapped task per text, each MP3 landing in S3.

Needs a ``pixverse_default`` connection and an AWS connection (``aws_default`` unless the
``storage_conn_id`` param says otherwise) that can write to the ``destination`` bucket.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_pixverse.operators.pixverse import (
    PixVerseCreateSpeechOperator,
    PixVerseDownloadSpeechOperator,
)

TEXTS = [
    "Good morning, and welcome aboard.",
    "The next station is Central.",
    "Please mind the gap between the train and the platform.",
]

# Seconds between checks of a clip: published clients poll every 10 to 15 s.
POLL_INTERVAL = 10

with DAG(
    dag_id="example_pixverse_batch_s3",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "pixverse"],
    params={
        "destination": Param("s3://my-speech-bucket/announcements/", type="string"),
        "storage_conn_id": Param("aws_default", type="string"),
    },
) as dag:
    # [START howto_operator_pixverse_mapped]
    clips = PixVerseCreateSpeechOperator.partial(
        task_id="create_speech",
        voice_id="minimax_english_radiant_girl",
        model="speech-2.8-turbo",
        poll_interval=POLL_INTERVAL,
        resubmit_on_failure=1,
    ).expand(text=TEXTS)

    PixVerseDownloadSpeechOperator.partial(
        task_id="download_speech",
        destination="{{ params.destination }}",
        storage_conn_id="{{ params.storage_conn_id }}",
    ).expand(audio_id=clips.output.map(lambda clip: clip["audio_id"]))
    # [END howto_operator_pixverse_mapped]
