"""DAG for the e2e watcher test: runs on each new clip of an account, and returns the clip."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_pixverse.triggers.new_speech import PixVerseNewSpeechTrigger

DAG_ID = "pixverse_e2e_new_speech"
ACCOUNT = "watched@example.com"

new_speech = Asset(
    f"pixverse://{ACCOUNT}/speech",
    watchers=[
        AssetWatcher(
            name="pixverse_e2e_new_speech",
            trigger=PixVerseNewSpeechTrigger(account_email=ACCOUNT, poll_interval=1),
        )
    ],
)

with DAG(
    dag_id=DAG_ID,
    schedule=[new_speech],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=True,
    tags=["pixverse-tests"],
):

    @task
    def record(**context: object) -> dict[str, object]:
        """The clip whose end started this run (its XCom, for the test to read)."""
        events = context["triggering_asset_events"][new_speech]  # type: ignore[index]
        return dict(events[-1].extra["payload"])  # Airflow puts the trigger's event under payload

    record()
