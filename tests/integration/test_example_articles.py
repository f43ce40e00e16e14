"""The nightly articles example against the sandbox and moto S3: re-runs pay nothing for unchanged articles."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mutagen.mp3 import MP3
from pixverse_testing import run_dag

from airflow_provider_pixverse._api.content import normalise_text
from airflow_provider_pixverse._api.split import split_parts
from airflow_provider_pixverse.model_list import forget_model_lists

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

DAG_FILE = Path(__file__).parents[2] / "example_dags" / "example_pixverse_articles.py"
DAG_ID = "example_pixverse_articles"
LONG = "\n\n".join(f"Section {n}. " + "The council met tonight and agreed on the new bridge. " * 20 for n in range(12))
ARTICLES = {
    "bridge.txt": LONG,  # 12,000+ characters: two parts on the turbo model, joined into one MP3
    "weather.txt": "Rain in the morning, sun in the afternoon, and a mild night ahead.",
    "quoted.txt": "She wrote {{ not a template }} and {% neither is this %} in her column.",
}


def run_night(bucket: Any) -> Any:
    conf = {
        "source": f"s3://{bucket.name}/published/",
        "destination": f"s3://{bucket.name}/spoken/",
        "storage_conn_id": "aws_pixverse_test",
    }
    return run_dag(DAG_FILE, DAG_ID, conf)


def counts(sandbox: PixVerseSandbox) -> tuple[int, float]:
    """Creates sent and credits spent since the last call."""
    creates = sandbox.request_counts()["create"]
    spent = 1_000_000 - (sandbox.credits_left() or 0)
    sandbox.reset_request_counts()
    sandbox.set_credits(1_000_000)
    return creates, spent


def test_nightly_articles_pay_once(
    airflow_db: Path, pixverse_sandbox: PixVerseSandbox, s3_bucket: Any, tmp_path: Path
) -> None:
    forget_model_lists()
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=0)
    pixverse_sandbox.set_credits(1_000_000)
    for name, text in ARTICLES.items():
        s3_bucket.put_object(Key=f"published/{name}", Body=text.encode())

    first = run_night(s3_bucket)
    assert first.state == "success"
    first_creates, first_credits = counts(pixverse_sandbox)
    assert first_creates == 4  # two parts for the long article, one each for the others
    # The estimate is what it cost: 10 credits per 1,000 characters, per started 50, part by part.
    assert first_credits == sum(expected_credits())
    spoken = {obj.key: obj for obj in s3_bucket.objects.filter(Prefix="spoken/")}
    assert sorted(spoken) == ["spoken/bridge.mp3", "spoken/quoted.mp3", "spoken/weather.mp3"]  # no sidecars
    metadata = json.loads(s3_bucket.Object("spoken/bridge.mp3").metadata["pixverse-speech"])
    assert metadata["parts"] == 2 and metadata["text_length"] == len(normalise_text(LONG))
    assert metadata["model"] == "speech-2.8-turbo" and metadata["credits_charged"] == metadata["credits_estimated"]
    local = tmp_path / "bridge.mp3"
    s3_bucket.download_file("spoken/bridge.mp3", str(local))
    assert abs(MP3(local).info.length - metadata["duration"]) < 0.01
    assert "{{ not a template }}" in pixverse_prompts(pixverse_sandbox)  # XCom values are not rendered

    second = run_night(s3_bucket)
    assert second.state == "success"
    assert counts(pixverse_sandbox) == (0, 0)  # nothing changed: no create, no credit

    s3_bucket.put_object(Key="published/weather.txt", Body=b"Snow tonight, and the roads will be icy.")
    third = run_night(s3_bucket)
    assert third.state == "success"
    assert counts(pixverse_sandbox) == (1, 0.5)  # the changed article only: 40 characters, one unit
    print(f"\nexample_pixverse_articles: first run {first_creates} creates, {first_credits} credits; second run 0, 0")


def expected_credits() -> list[float]:
    """The sandbox's price on the turbo model: 0.5 credits per started 50 characters, part by part."""
    return [
        math.ceil(len(part) / 50) * 0.5
        for text in ARTICLES.values()
        for part in split_parts(normalise_text(text), 10_000)
    ]


def pixverse_prompts(sandbox: PixVerseSandbox) -> str:
    from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

    return "\n".join(clip.prompt or "" for clip in PixVerseHook().list_speech())
