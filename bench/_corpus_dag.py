"""The corpus benchmark's two DAGs (bench/corpus.py copies this file, with its settings, into a throw-away dags folder).

- ``bench_corpus_mapped``: one ``PixVerseTextToSpeechOperator`` task per text (``expand_kwargs``), each
  text sent to an account in proportion to the accounts' job limits, written to ``<destination>/<name>.mp3``.
- ``bench_corpus_batch``: one ``PixVerseBatchTextToSpeechOperator`` task over the accounts, the texts read
  from a folder of ``*.txt`` objects (as the example DAG reads a corpus), written to ``<destination>/<name>.mp3``.

Both get their destination (and the batch its texts folder) from the run's conf, so each run writes to a
fresh folder. The settings are in ``corpus_bench.json`` beside this file, read once at parse time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_pixverse.operators.batch import PixVerseBatchTextToSpeechOperator
from airflow_provider_pixverse.operators.text_to_speech import PixVerseTextToSpeechOperator

SETTINGS = json.loads(Path(__file__).with_name("corpus_bench.json").read_text())
START = pendulum.datetime(2026, 1, 1, tz="UTC")
COMMON = {
    "voice_id": SETTINGS["voice_id"],
    "poll_interval": SETTINGS["poll_interval"],
    "wait_timeout": SETTINGS["wait_timeout"],
    "retries": 0,
}

with DAG(
    dag_id="bench_corpus_mapped",
    schedule=None,
    start_date=START,
    catchup=False,
    is_paused_upon_creation=False,
    max_active_tasks=SETTINGS["parallelism"],  # running tasks: a deferred one frees its slot
    params={"destination": Param("", type="string")},
    tags=["pixverse-bench"],
):
    PixVerseTextToSpeechOperator.partial(
        task_id="speak", max_active_tis_per_dag=SETTINGS["parallelism"], **COMMON
    ).expand_kwargs(
        [
            {
                "text": item["text"],
                "account_email": item["account"],
                "destination": "{{ params.destination }}/" + item["name"] + ".mp3",
            }
            for item in SETTINGS["mapped"]
        ]
    )

with DAG(
    dag_id="bench_corpus_batch",
    schedule=None,
    start_date=START,
    catchup=False,
    is_paused_upon_creation=False,
    params={"texts": Param("", type="string"), "destination": Param("", type="string")},
    tags=["pixverse-bench"],
):
    PixVerseBatchTextToSpeechOperator(
        task_id="speak_corpus",
        texts="{{ params.texts }}",
        destination="{{ params.destination }}",
        accounts=SETTINGS["accounts"],
        **COMMON,
    )
