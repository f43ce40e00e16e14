"""
Run a DAG whenever a clip of a PixVerse account is ready, wherever it was made (Airflow 3.0+).

The asset's watcher, :class:`PixVerseNewSpeechTrigger`, runs in the triggerer and fires one asset
event per clip of the account that ends COMPLETED; the event's extra holds the clip under
``payload`` (``audio_id``, ``url``, ``duration``, ...). Each event starts a run of this DAG,
which lands the MP3 in object storage. Put your account in ``ACCOUNT``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, Param, task

from airflow_provider_pixverse.operators.pixverse import PixVerseDownloadSpeechOperator
from airflow_provider_pixverse.triggers.new_speech import PixVerseNewSpeechTrigger

ACCOUNT = "sandbox@example.com"

# [START howto_trigger_pixverse_new_speech]
new_speech = Asset(
    f"pixverse://{ACCOUNT}/speech",
    watchers=[
        AssetWatcher(
            name="pixverse_new_speech",
            trigger=PixVerseNewSpeechTrigger(account_email=ACCOUNT, poll_interval=30),
        )
    ],
)
# [END howto_trigger_pixverse_new_speech]

with DAG(
    dag_id="example_pixverse_on_new_speech",
    schedule=[new_speech],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "pixverse"],
    params={"destination": Param("file:///tmp/pixverse-new-speech/", type="string")},
):
    # [START howto_trigger_pixverse_new_speech_payload]
    @task
    def ready_clip(**context: object) -> str:
        """The audio_id of the clip whose end started this run."""
        events = context["triggering_asset_events"][new_speech]  # type: ignore[index]
        clip = events[-1].extra["payload"]  # the trigger's event: the clip as a JSON dict
        print(f"Clip {clip['audio_id']} is ready: {clip.get('duration')} s at {clip.get('url')}")
        return str(clip["audio_id"])

    # [END howto_trigger_pixverse_new_speech_payload]

    PixVerseDownloadSpeechOperator(
        task_id="download_speech", audio_id=ready_clip(), destination="{{ params.destination }}"
    )
