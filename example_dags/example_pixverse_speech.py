"""
Text to speech with PixVerse: create a clip, wait for it in the triggerer, land the MP3.

Set up a ``pixverse_default`` connection (the API token as its password) and run it; the MP3
lands in the folder given by the ``destination`` param (any object storage URI works:
``file:///...``, ``s3://bucket/prefix/``, ``gs://...``) and is announced as an asset event
through the asset alias ``pixverse_speech``.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_pixverse.operators.pixverse import (
    PixVerseCreateSpeechOperator,
    PixVerseDownloadSpeechOperator,
)
from airflow_provider_pixverse.sensors.pixverse import PixVerseSpeechSensor

# Seconds between checks of a clip: published clients poll every 10 to 15 s.
POLL_INTERVAL = 10

with DAG(
    dag_id="example_pixverse_speech",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "pixverse"],
    params={
        "text": Param("May the Force be with you.", type="string", minLength=1),
        "voice_id": Param("minimax_english_radiant_girl", type="string"),
        "destination": Param("file:///tmp/pixverse-speech/", type="string"),
    },
    render_template_as_native_obj=True,
) as dag:
    # [START howto_operator_pixverse_create]
    create = PixVerseCreateSpeechOperator(
        task_id="create_speech",
        text="{{ params.text }}",
        voice_id="{{ params.voice_id }}",
        wait_for_completion=False,
    )
    # [END howto_operator_pixverse_create]
    # [START howto_sensor_pixverse_speech]
    wait = PixVerseSpeechSensor(
        task_id="wait_for_speech",
        audio_id=create.output,
        poke_interval=POLL_INTERVAL,
        timeout=20 * 60,
    )
    # [END howto_sensor_pixverse_speech]
    # [START howto_operator_pixverse_download]
    download = PixVerseDownloadSpeechOperator(
        task_id="download_speech",
        audio_id=create.output,
        destination="{{ params.destination }}",
        # Downstream DAGs can run on new speech: schedule=[AssetAlias("pixverse_speech")].
        asset_alias="pixverse_speech",
    )
    # [END howto_operator_pixverse_download]
    wait >> download
