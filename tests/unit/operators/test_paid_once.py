"""Paid once, whatever happens: a run killed at any step of its write, and two runs of one speech at once.

A kill is simulated by raising, at a step boundary of the write, an exception that is not an
``Exception`` (as a SIGKILL runs no handler of the task); the next run is a fresh task (another
DAG run: its own task state store), never a retry.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath
from pixverse_testing import MemoryStateStore, RecordingTaskInstance, allow_execute_in_this_thread, api_requests

from airflow_provider_pixverse import storage
from airflow_provider_pixverse.model_list import forget_model_lists
from airflow_provider_pixverse.operators.pixverse import PixVerseTextToSpeechOperator
from airflow_provider_pixverse.speech_claim import Claim, claim_path, create_claim, read_claim

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"
TEXT = "Paid once, whatever happens."
S3_CONN_ID = "aws_pixverse_test"
STEPS = ("streamed", "staged", "published", "released")


class Killed(BaseException):
    """The task's process died here."""


@pytest.fixture(autouse=True)
def _fresh_model_list() -> None:
    forget_model_lists()


def tts(destination: str, **kwargs: Any) -> PixVerseTextToSpeechOperator:
    return PixVerseTextToSpeechOperator(
        task_id="speak",
        text=kwargs.pop("text", TEXT),
        voice_id=kwargs.pop("voice_id", VOICE),
        destination=destination,
        deferrable=False,
        poll_interval=0.05,
        **kwargs,
    )


def run(destination: str, **kwargs: Any) -> tuple[Any, RecordingTaskInstance]:
    ti = RecordingTaskInstance()
    return tts(destination, **kwargs).execute({"ti": ti, "task_state_store": MemoryStateStore()}), ti


def creates(sandbox: PixVerseSandbox) -> int:
    return sum(r.method == "POST" for r in api_requests(sandbox))


def kill_at(monkeypatch: pytest.MonkeyPatch, at: str) -> dict[str, str | None]:
    """Kill the run at step ``at`` of its write, until the returned holder's ``at`` is set to ``None``."""
    killing: dict[str, str | None] = {"at": at}

    def step(name: str) -> None:
        if name == killing["at"]:
            raise Killed(name)

    monkeypatch.setattr(storage, "step", step)
    import airflow_provider_pixverse.operators.speech_destination as destination
    import airflow_provider_pixverse.operators.text_to_speech as text_to_speech

    monkeypatch.setattr(destination, "step", step)
    monkeypatch.setattr(text_to_speech, "step", step)
    return killing


def destinations(tmp_path: Path, s3_bucket: Any, where: str) -> tuple[str, dict[str, Any], Any]:
    if where == "local":
        uri = f"file://{tmp_path}/out/talk.mp3"
        return uri, {}, lambda: (tmp_path / "out" / "talk.mp3").read_bytes()
    uri = f"s3://{s3_bucket.name}/out/talk.mp3"
    return uri, {"storage_conn_id": S3_CONN_ID}, lambda: s3_bucket.Object("out/talk.mp3").get()["Body"].read()


@pytest.fixture(params=["local", "s3"])
def where(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("at", STEPS)
@pytest.mark.parametrize("parts", [1, 2])
def test_a_run_killed_at_any_step_of_its_write_is_finished_by_the_next_run_for_nothing(
    pixverse_sandbox: PixVerseSandbox,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    at: str,
    parts: int,
) -> None:
    s3_bucket = request.getfixturevalue("s3_bucket") if where == "s3" else None
    uri, options, read = destinations(tmp_path, s3_bucket, where)
    if parts == 2:  # two parts joined into one MP3 (eleven-v3 takes 5,000 characters)
        options = {**options, "text": ("Paid once. " * 500).strip(), "model": "eleven-v3", "voice_id": "eleven_rachel"}
    killing = kill_at(monkeypatch, at)
    with pytest.raises(Killed):
        run(uri, **options)
    paid = creates(pixverse_sandbox)
    assert paid == parts
    killing["at"] = None
    returned, ti = run(uri, **options)  # a fresh task: another DAG run
    assert returned == uri
    assert creates(pixverse_sandbox) == paid  # the fresh run paid nothing
    metadata = ti.xcoms["pixverse_speech"]
    assert hashlib.sha256(read()).hexdigest() == metadata["sha256"] and len(metadata["audio_ids"]) == parts
    assert read_claim(ObjectStoragePath(uri, conn_id=options.get("storage_conn_id"))) is None  # none left behind
    _, again = run(uri, **options)
    assert again.xcoms["pixverse_speech"]["reused"] is True and creates(pixverse_sandbox) == paid


def test_two_runs_of_one_speech_at_once_pay_once(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path, request: pytest.FixtureRequest, where: str
) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0.3, generating_seconds=0.3)
    pixverse_sandbox.add_fault("delay", seconds=0.3, count=-1, path_contains="/speech/create")  # a slow create
    s3_bucket = request.getfixturevalue("s3_bucket") if where == "s3" else None
    uri, options, read = destinations(tmp_path, s3_bucket, where)
    results: dict[int, Any] = {}
    start = threading.Barrier(2)

    def one(number: int) -> None:
        allow_execute_in_this_thread()
        start.wait()
        try:
            results[number] = run(uri, **options)
        except BaseException as error:
            results[number] = error

    threads = [threading.Thread(target=one, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(not isinstance(result, BaseException) for result in results.values()), results
    assert creates(pixverse_sandbox) == 1
    (first, ti1), (second, ti2) = results[1], results[2]
    assert first == second == uri
    body = read()
    assert ti1.xcoms["pixverse_speech"]["sha256"] == ti2.xcoms["pixverse_speech"]["sha256"]
    assert hashlib.sha256(body).hexdigest() == ti1.xcoms["pixverse_speech"]["sha256"]
    assert read_claim(ObjectStoragePath(uri, conn_id=options.get("storage_conn_id"))) is None


def test_the_claim_is_exclusive_on_each_store(tmp_path: Path, s3_bucket: Any) -> None:
    for target in (
        ObjectStoragePath(f"file://{tmp_path}/new/a.mp3"),
        ObjectStoragePath(f"s3://{s3_bucket.name}/a.mp3", conn_id=S3_CONN_ID),
    ):
        first = Claim.new("k" * 64, ttl=60, task="first", job=None)
        assert create_claim(target, first)
        assert not create_claim(target, Claim.new("k" * 64, ttl=60, task="second", job=None))
        stored = read_claim(target)
        assert stored is not None and stored.nonce == first.nonce and stored.owner["task"] == "first"
        assert stored.owner["host"] and stored.owner["pid"] == os.getpid() and not stored.stale()
    assert claim_path(ObjectStoragePath(f"file://{tmp_path}/new/a.mp3")).name == ".a.mp3.pixverse-claim"


def test_a_claim_whose_owner_is_gone_or_that_expired_is_taken_over(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    dead = Claim.new("0" * 64, ttl=3600, task="killed", job=None)
    gone = Claim(dead.content_key, dead.nonce, {**dead.owner, "pid": 2**22 + 12345}, dead.claimed_at, dead.expires_at)
    assert gone.stale() and not dead.stale()
    expired = Claim("0" * 64, "e" * 32, {"host": "elsewhere", "pid": 1, "task": "t"}, 0.0, 1.0)
    assert expired.stale()
    for name, stale in (("gone", gone), ("expired", expired)):
        uri = f"file://{tmp_path}/{name}.mp3"
        target = ObjectStoragePath(uri)
        assert create_claim(target, stale)
        # A claim of other content that its owner left: taken over, not waited for.
        returned, _ = run(uri, wait_timeout=30)
        assert returned == uri and read_claim(target) is None
    assert creates(pixverse_sandbox) == 2


def test_a_live_claim_of_this_speech_without_clips_is_waited_for_within_the_wait_timeout(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    from airflow.providers.common.compat.sdk import AirflowTaskTimeout

    from airflow_provider_pixverse.operators.speech_destination import SpeechDestination

    uri = f"file://{tmp_path}/talk.mp3"
    operator = tts(uri, wait_timeout=0.3)
    request = operator.speech_request(TEXT)
    target = SpeechDestination(uri, "join", None, False, operator.log).base(request)
    assert create_claim(target, Claim.new(request.key, ttl=3600, task="another run", job=None))
    with pytest.raises(AirflowTaskTimeout, match="another run.*nothing was sent"):
        operator.execute({"ti": RecordingTaskInstance(), "task_state_store": MemoryStateStore()})
    assert creates(pixverse_sandbox) == 0
