"""
Articles to speech, nightly: every ``.txt`` file in a folder of object storage becomes an MP3 in a bucket.

One mapped ``PixVerseTextToSpeechOperator`` per article: create, wait (in the triggerer), land the
MP3, in one task. The listing passes each article's path, not its text: the task reads the text
itself, so no article goes through XCom, and none is rendered as a template (Airflow renders a
mapped value from XCom, and an article may well contain ``{{``).

Each MP3 is stored with the content key of its request (text, voice, model, settings), so a night
on which an article did not change pays nothing for it: the task finds the MP3, checks its bytes,
and sends no create. A changed article is spoken again and replaces its MP3 (``overwrite=True``);
a long one is split into parts and joined into one MP3. ``max_credits`` caps what one article may
cost, and the estimate is logged before anything is sent.

Needs a ``pixverse_default`` connection and a connection to the object stores (``aws_default``
unless the ``storage_conn_id`` param says otherwise). ``source`` and ``destination`` may be any
object storage URIs Airflow can read and write: ``s3://...``, ``gs://...``, ``file:///...``.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, ObjectStoragePath, Param, task

from airflow_provider_pixverse.operators.pixverse import PixVerseTextToSpeechOperator

VOICE = "minimax_english_calm_narrator"
MODEL = "speech-2.8-turbo"  # 10 credits per 1,000 characters
# What one article may cost at most: 200 credits is 20,000 characters on the turbo model.
MAX_CREDITS_PER_ARTICLE = 200
# Articles spoken at once: each may create 2 parts at once, and an account runs 1 to 8 jobs at once.
ARTICLES_AT_ONCE = 2
# Seconds between checks of a clip: published clients poll every 10 to 15 s.
POLL_INTERVAL = 10

with DAG(
    dag_id="example_pixverse_articles",
    schedule="0 2 * * *",  # nightly
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["example", "pixverse"],
    params={
        "source": Param("s3://my-articles/published/", type="string"),
        "destination": Param("s3://my-speech-bucket/articles/", type="string"),
        "storage_conn_id": Param("aws_default", type="string"),
    },
) as dag:

    @task
    def list_articles(source: str, destination: str, storage_conn_id: str) -> list[dict[str, object]]:
        """One entry per article: the text object itself (read by the task that speaks it) and its MP3's URI."""
        folder = ObjectStoragePath(source, conn_id=storage_conn_id or None)
        return [
            {"text": path, "destination": f"{destination.rstrip('/')}/{path.stem}.mp3"}
            for path in sorted(folder.iterdir(), key=lambda p: p.name)
            if path.suffix == ".txt" and path.is_file()
        ]

    # [START howto_operator_pixverse_text_to_speech]
    PixVerseTextToSpeechOperator.partial(
        task_id="speak_article",
        voice_id=VOICE,
        model=MODEL,
        storage_conn_id="{{ params.storage_conn_id }}",
        overwrite=True,  # a changed article replaces its MP3
        max_credits=MAX_CREDITS_PER_ARTICLE,
        resubmit_on_failure=1,
        poll_interval=POLL_INTERVAL,
        max_active_tis_per_dag=ARTICLES_AT_ONCE,
        # Downstream DAGs can run on new speech: schedule=[AssetAlias("pixverse_articles")].
        asset_alias="pixverse_articles",
    ).expand_kwargs(
        list_articles(
            source="{{ params.source }}",
            destination="{{ params.destination }}",
            storage_conn_id="{{ params.storage_conn_id }}",
        )
    )
    # [END howto_operator_pixverse_text_to_speech]
