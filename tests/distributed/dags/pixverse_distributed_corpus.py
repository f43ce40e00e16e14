"""The distributed corpus run (make test-distributed): one task speaks a corpus over two accounts into S3.

One ``PixVerseBatchTextToSpeechOperator`` task (``speak``) speaks ``ITEMS`` distinct short texts,
spread over two accounts with job limits 3 and 5, into ``s3://<bucket>/corpus/`` through the
``aws_moto`` connection; retried after a kill. The test reads :func:`corpus` and :data:`ACCOUNTS`
from this file (the one place they are written) and sets the size, the bucket and the poll interval
through the environment every Airflow process shares.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG

from airflow_provider_pixverse.operators.batch import PixVerseBatchTextToSpeechOperator

DAG_ID = "pixverse_distributed_corpus"
TASK_ID = "speak"
ITEMS = int(os.environ.get("PIXVERSE_CORPUS_ITEMS", "300"))
BUCKET = os.environ.get("PIXVERSE_CORPUS_BUCKET", "pixverse-corpus")
PREFIX = "corpus/"
POLL_INTERVAL = float(os.environ.get("PIXVERSE_CORPUS_POLL_INTERVAL", "1"))
# Two accounts of the one token, with their job limits (the sandbox is given the same limits).
ACCOUNTS = {"corpus-a@example.com": 3, "corpus-b@example.com": 5}
RETRIES = 4  # a killed worker costs one try; the rest is headroom for the other faults

_SUBJECTS = ("The harbour", "A lantern", "The orchard", "Our kettle", "The library", "A comet", "The ferry")
_VERBS = ("wakes", "glows", "hums", "drifts", "waits", "sings", "turns")
_ENDINGS = ("before dawn", "in the rain", "at noon", "after supper", "all winter", "by the river")


def corpus(items: int = ITEMS) -> dict[str, str]:
    """Item name -> text: ``items`` distinct short sentences (about 2 s of speech each)."""
    texts = {}
    for index in range(items):
        subject = _SUBJECTS[index % len(_SUBJECTS)]
        verb = _VERBS[index // len(_SUBJECTS) % len(_VERBS)]
        ending = _ENDINGS[index % len(_ENDINGS)]
        texts[f"line-{index:03d}"] = f"Line {index}: {subject} {verb} {ending}."
    return texts


with DAG(
    dag_id=DAG_ID,
    schedule=None,
    catchup=False,
    tags=["pixverse", "test"],
):
    PixVerseBatchTextToSpeechOperator(
        task_id=TASK_ID,
        texts=corpus(),
        voice_id="minimax_english_radiant_girl",
        destination=f"s3://{BUCKET}/{PREFIX}",
        storage_conn_id="aws_moto",
        accounts=ACCOUNTS,
        poll_interval=POLL_INTERVAL,
        wait_timeout=600,
        # Three queues of 100: the task resumes and writes mid-corpus, where the worker and PostgreSQL faults hit.
        parts_per_run=100,
        retries=RETRIES,
        retry_delay=timedelta(seconds=1),
    )
