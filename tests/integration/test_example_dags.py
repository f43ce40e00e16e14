"""The example DAGs users copy: they parse, and they run end to end against the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mutagen.mp3 import MP3
from pixverse_testing import dag_bag, run_dag

from airflow_provider_pixverse._compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    import pytest

    from airflow_provider_pixverse.sandbox import PixVerseSandbox

EXAMPLES = Path(__file__).parents[2] / "example_dags"


def test_examples_parse_without_errors() -> None:
    bag = dag_bag(EXAMPLES)
    expected = {
        "example_pixverse_speech",
        "example_pixverse_batch_s3",
        "example_pixverse_articles",
        "example_pixverse_corpus",
    }
    if AIRFLOW_V_3_0_PLUS:
        assert bag.import_errors == {}
        expected.add("example_pixverse_on_new_speech")
    else:  # event-driven scheduling (AssetWatcher) arrived in Airflow 3.0
        (failed,) = bag.import_errors
        assert failed.endswith("example_pixverse_on_new_speech.py")
    assert set(bag.dag_ids) == expected


def test_create_wait_download_to_local_storage(
    airflow_db: Path, pixverse_sandbox: PixVerseSandbox, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Clips finish before the wait's first look: the examples poll every 10 s, as users' DAGs would.
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=0)
    dag_run = run_dag(
        EXAMPLES / "example_pixverse_speech.py",
        "example_pixverse_speech",
        {"destination": f"file://{tmp_path}/speech/", "text": "Testing the example, one two three."},
    )
    assert dag_run.state == "success"
    (mp3,) = (tmp_path / "speech").iterdir()
    info = MP3(mp3).info
    assert info.length > 1 and info.sample_rate == 44100
    assert [r.method for r in pixverse_sandbox.requests if r.kind == "api"].count("POST") == 1
    # The create (wait_for_completion=False) has no media URL: its extra link must not log a missing XCom.
    assert "XCom not found" not in "".join(capfd.readouterr())


def test_mapped_batch_into_s3(airflow_db: Path, pixverse_sandbox: PixVerseSandbox, s3_bucket: Any) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=0)
    dag_run = run_dag(
        EXAMPLES / "example_pixverse_batch_s3.py",
        "example_pixverse_batch_s3",
        {"destination": f"s3://{s3_bucket.name}/announcements/", "storage_conn_id": "aws_pixverse_test"},
    )
    assert dag_run.state == "success"
    objects = sorted(obj.key for obj in s3_bucket.objects.all())
    assert len(objects) == 3
    assert all(key.startswith("announcements/PixVerse_Speech_") and key.endswith(".mp3") for key in objects)
    creates = [r for r in pixverse_sandbox.requests if r.kind == "api" and r.method == "POST"]
    assert len(creates) == 3


def test_a_corpus_over_two_accounts_into_s3(
    airflow_db: Path, pixverse_sandbox: PixVerseSandbox, s3_bucket: Any
) -> None:
    import json

    from airflow_provider_pixverse._compat import HAS_TASK_STATE_STORE
    from airflow_provider_pixverse.model_list import forget_model_lists

    forget_model_lists()
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=0)
    articles = {f"article-{n}": f"Article {n}: the council met and agreed on bridge number {n}." for n in range(10)}
    articles["again"] = articles["article-0"]  # a duplicate: one create, two objects
    for name, text in articles.items():
        s3_bucket.put_object(Key=f"published/{name}.txt", Body=text.encode())
    conf = {
        "source": f"s3://{s3_bucket.name}/published/",
        "destination": f"s3://{s3_bucket.name}/spoken/",
        "storage_conn_id": "aws_pixverse_test",
    }
    dag_run = run_dag(EXAMPLES / "example_pixverse_corpus.py", "example_pixverse_corpus", conf)
    assert dag_run.state == "success"
    assert pixverse_sandbox.create_outcomes()["accepted"] == 10
    for email, limit in (("newsroom-a@example.com", 3), ("newsroom-b@example.com", 5)):
        assert 1 <= pixverse_sandbox.jobs_high_water(email) <= limit  # both accounts got work, within their limits
    spoken = sorted(obj.key for obj in s3_bucket.objects.filter(Prefix="spoken/"))
    assert spoken == sorted([*(f"spoken/{name}.mp3" for name in articles), "spoken/manifest.jsonl"])
    same = [s3_bucket.Object(f"spoken/{name}.mp3").get()["Body"].read() for name in ("article-0", "again")]
    assert same[0] == same[1] and same[0].startswith(b"ID3")
    lines = s3_bucket.Object("spoken/manifest.jsonl").get()["Body"].read().decode().splitlines()
    entries = {entry["name"]: entry for entry in map(json.loads, lines)}
    # Airflow 2.11's dag.test resumes a task with the event alone (it drops the deferral's kwargs, which
    # carry the corpus's state before 3.3): the task plans again and finds what it wrote as "reused".
    written = {"done"} if HAS_TASK_STATE_STORE else {"done", "reused"}
    assert set(entries) == set(articles) and {entry["status"] for entry in entries.values()} <= written

    again = run_dag(EXAMPLES / "example_pixverse_corpus.py", "example_pixverse_corpus", conf)
    assert again.state == "success"
    assert pixverse_sandbox.create_outcomes()["accepted"] == 10  # a second night: nothing changed, nothing sent
