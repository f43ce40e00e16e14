"""PixVerseCreateSpeechOperator(reuse_from=...): a recent clip of the same speech is taken, not paid for again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from pixverse_testing import RecordingTaskInstance, api_requests

from airflow_provider_pixverse.operators.pixverse import AUDIO_ID_STATE_KEY, PixVerseCreateSpeechOperator

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"


class Store(dict[str, Any]):
    def set(self, key: str, value: Any) -> None:
        self[key] = value

    def delete(self, key: str) -> None:
        self.pop(key, None)


def create(text: str, store: Store | None = None, **kwargs: Any) -> Any:
    operator = PixVerseCreateSpeechOperator(
        task_id="c", text=text, voice_id=VOICE, deferrable=False, poll_interval=0.05, **kwargs
    )
    return operator.execute(
        {"ti": RecordingTaskInstance(), "task_state_store": store if store is not None else Store()}
    )


def posts(sandbox: PixVerseSandbox) -> int:
    return sum(r.method == "POST" for r in api_requests(sandbox))


def test_a_recent_clip_of_the_same_speech_is_taken(pixverse_sandbox: PixVerseSandbox) -> None:
    older = pixverse_sandbox.add_clip(text="Same words.", voice_id=VOICE, status="COMPLETED")
    newer = pixverse_sandbox.add_clip(text="Same words.", voice_id=VOICE, status="COMPLETED")
    pixverse_sandbox.add_clip(text="Same words.", voice_id=VOICE, status="FAILED")  # newest, but FAILED
    store = Store()
    clip = create("  Same words.\n", store, reuse_from=50)
    assert clip["audio_id"] == newer["audio_id"] != older["audio_id"]
    assert store[AUDIO_ID_STATE_KEY] == newer["audio_id"]
    assert posts(pixverse_sandbox) == 0


@pytest.mark.parametrize(
    ("seeded", "asked"),
    [
        ({"voice_id": "minimax_english_calm_narrator"}, {}),
        ({"model": "speech-2.8-turbo"}, {}),
        ({}, {"model": "speech-2.8-turbo"}),
        ({"language_code": "en"}, {"language_code": "es"}),
        ({"text": "Other words."}, {}),
    ],
)
def test_another_speech_is_created(
    pixverse_sandbox: PixVerseSandbox, seeded: dict[str, Any], asked: dict[str, Any]
) -> None:
    pixverse_sandbox.add_clip(**{"text": "Same words.", "voice_id": VOICE, "status": "COMPLETED", **seeded})
    create("Same words.", reuse_from=50, **asked)
    assert posts(pixverse_sandbox) == 1


def test_off_unless_asked(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.add_clip(text="Same words.", voice_id=VOICE, status="COMPLETED")
    create("Same words.")
    assert posts(pixverse_sandbox) == 1
    assert pixverse_sandbox.request_counts()["list"] == 0  # no listing either


def test_only_the_newest_clips_are_searched(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.add_clip(text="Same words.", voice_id=VOICE, status="COMPLETED")
    for n in range(3):
        pixverse_sandbox.add_clip(text=f"Filler {n}.", voice_id=VOICE, status="COMPLETED")
    create("Same words.", reuse_from=3)
    assert posts(pixverse_sandbox) == 1
