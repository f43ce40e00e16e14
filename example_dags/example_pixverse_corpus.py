"""
A corpus, nightly, in one task: every ``.txt`` object of a folder becomes an MP3 in a bucket, over two accounts.

One ``PixVerseBatchTextToSpeechOperator`` speaks the whole folder: thousands of articles cost one
task instance, not one each (Airflow's own cost per task instance is what dominates a corpus, and
``[core] max_map_length`` caps a mapped task at 1,024 by default). The work is spread over two
PixVerse accounts of one token, each kept within its job limit (3 and 5 jobs at once here); the
triggerer creates the articles as job slots free and waits for them, holding no worker slot, and
the task resumes about once per 500 articles to write what is done.

Each article lands at ``<destination>/<name>.mp3`` (its name is the text object's stem) with the
content key of its request, so a night on which an article did not change pays nothing for it, and
the one-task operator recognises these objects too. ``<destination>/manifest.jsonl`` says, one
JSON line per article, what became of it (done, reused, failed and why), its audio_ids, credits and
duration. ``max_credits`` caps the whole corpus, estimated before the first create.

Needs a ``pixverse_default`` connection and a connection to the object stores (``aws_default``
unless the ``storage_conn_id`` param says otherwise).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_pixverse.operators.batch import PixVerseBatchTextToSpeechOperator

VOICE = "minimax_english_calm_narrator"
MODEL = "speech-2.8-turbo"  # 10 credits per 1,000 characters
# The PixVerse accounts of the token to spread the corpus over, each with its job limit (maxJobs).
ACCOUNTS = {"newsroom-a@example.com": 3, "newsroom-b@example.com": 5}
# What one night may cost at most: 5,000 credits is 500,000 characters on the turbo model.
MAX_CREDITS_PER_NIGHT = 5_000

with DAG(
    dag_id="example_pixverse_corpus",
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
    # [START howto_operator_pixverse_batch_text_to_speech]
    speak = PixVerseBatchTextToSpeechOperator(
        task_id="speak_corpus",
        texts="{{ params.source }}",  # a folder: each *.txt object is an item, named after its stem
        destination="{{ params.destination }}",
        storage_conn_id="{{ params.storage_conn_id }}",
        voice_id=VOICE,
        model=MODEL,
        accounts=ACCOUNTS,
        max_credits=MAX_CREDITS_PER_NIGHT,
        overwrite=True,  # a changed article replaces its MP3
        resubmit_on_failure=1,
        poll_interval=10,
    )
    # [END howto_operator_pixverse_batch_text_to_speech]

    @task
    def report(result: dict[str, Any]) -> None:
        """The corpus's small result: counts, credits, failed names, the manifest's URI."""
        print(
            f"{result['items']} articles: {result['counts']}; {result['credits_charged']} credits "
            f"(estimated {result['credits_estimated']}); manifest {result['manifest']}"
        )

    report(speak.output)
