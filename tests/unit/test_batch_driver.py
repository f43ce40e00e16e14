"""The corpus's engine against the sandbox: one queue over accounts within their windows, finals by listing."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_pixverse._api.speech_request import SpeechRequest
from airflow_provider_pixverse.batch_driver import CorpusDriver
from airflow_provider_pixverse.batch_records import CorpusRun, FlyingPart, QueuedPart
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
from airflow_provider_pixverse.operators.batch_accounts import AccountWindows

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"
A, B = "a@example.com", "b@example.com"
LOG = logging.getLogger(__name__)


def parts(n: int, *, start: int = 0) -> list[QueuedPart]:
    now = time.time()
    return [
        QueuedPart(f"part-{i}", SpeechRequest.of(f"Text number {i} of the engine's queue.", VOICE), now)
        for i in range(start, start + n)
    ]


def drive(
    windows: AccountWindows,
    queue: list[QueuedPart],
    flying: list[FlyingPart] = (),  # type: ignore[assignment]
    **kwargs: Any,
) -> CorpusRun:
    async def run() -> CorpusRun:
        hook = PixVerseHook()
        try:
            settings: dict[str, Any] = {
                "poll_interval": 0.1,
                "wait_timeout": 60.0,
                "capacity_timeout": 60.0,
                "end_time": time.time() + 120,
                "started": time.time(),
                "until_final": not queue,
                "on_lost_answer": "fail",
                **kwargs,
            }
            return await CorpusDriver(hook, windows, list(queue), list(flying), log=LOG, **settings).run()
        finally:
            await hook.aclose()

    return asyncio.run(run())


def test_one_queue_over_two_accounts_keeps_each_within_its_window_and_the_larger_takes_more(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    pixverse_sandbox.set_max_jobs(8, email=A)
    pixverse_sandbox.set_max_jobs(8, email=B)
    pixverse_sandbox.set_clock(queued_seconds=0.05, generating_seconds=0.25)
    run = drive(AccountWindows([(A, 3), (B, 5)]), parts(40))
    assert len(run.created) == 40 and run.fatal is None and run.busy == 0
    assert pixverse_sandbox.jobs_high_water(A) == 3 and pixverse_sandbox.jobs_high_water(B) == 5
    on_a = sum(1 for audio_id in run.created.values() if f"pixverse:{A}-" in audio_id)
    on_b = 40 - on_a
    assert on_b > on_a >= 3  # the slots pull the work: 5 slots take more than 3
    # It ends once the queue is all created; what still flies is handed back.
    assert 0 < len(run.in_flight) <= 8 and run.queued == []
    assert {part.ref for part in run.in_flight} <= set(run.created)
    assert len(run.events) + len(run.in_flight) == 40


def test_the_finals_come_from_one_listing_per_account_per_interval_not_a_get_per_clip(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    pixverse_sandbox.set_max_jobs(8, email=A)
    pixverse_sandbox.set_clock(queued_seconds=0.05, generating_seconds=0.25)
    first = drive(AccountWindows([(A, 8)]), parts(24))
    pixverse_sandbox.reset_request_counts()
    last = drive(AccountWindows([(A, 8)]), [], first.in_flight)  # nothing to queue: until every part is final
    assert last.in_flight == [] and len(first.events) + len(last.events) == 24
    assert all(event["status"] == "success" and event["ref"].startswith("part-") for event in last.events)
    counts = pixverse_sandbox.request_counts()
    assert counts["get"] == 0 and counts["create"] == 0
    assert 1 <= counts["list"] <= 6  # one listing a poll for every clip in flight: 0.3 s of clips at 0.1 s


def test_a_listing_that_fails_falls_back_to_each_clips_get_and_no_part_fails(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    pixverse_sandbox.set_max_jobs(8, email=A)
    pixverse_sandbox.set_clock(queued_seconds=0.05, generating_seconds=0.2)
    first = drive(AccountWindows([(A, 4)]), parts(4))
    pixverse_sandbox.add_fault("status", code=400, count=-1, path_contains="/speech/?")
    pixverse_sandbox.reset_request_counts()
    last = drive(AccountWindows([(A, 4)]), [], first.in_flight)
    assert sorted(event["status"] for event in first.events + last.events) == ["success"] * 4
    assert pixverse_sandbox.request_counts()["get"] >= len(first.in_flight)


def test_a_clip_still_running_at_its_deadline_ends_with_a_timeout_event_naming_its_part(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    pixverse_sandbox.set_max_jobs(8, email=A)
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=3600)
    first = drive(AccountWindows([(A, 2)]), parts(2), wait_timeout=0.5)
    last = drive(AccountWindows([(A, 2)]), [], first.in_flight)
    assert sorted((event["ref"], event["status"]) for event in last.events) == [
        ("part-0", "timeout"),
        ("part-1", "timeout"),
    ]


def test_a_run_cut_short_and_run_again_adopts_the_jobs_it_made_and_creates_the_rest(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    pixverse_sandbox.set_max_jobs(8, email=A)
    pixverse_sandbox.set_max_jobs(8, email=B)
    pixverse_sandbox.set_clock(queued_seconds=0.05, generating_seconds=0.3)
    queue = parts(16)
    windows = AccountWindows([(A, 3), (B, 2)])

    async def cut_short() -> None:
        hook = PixVerseHook()
        driver = CorpusDriver(
            hook,
            AccountWindows.from_json(windows.to_json()),  # type: ignore[arg-type]
            list(queue),
            [],
            poll_interval=0.1,
            wait_timeout=60,
            capacity_timeout=60,
            end_time=time.time() + 60,
            started=time.time(),
            until_final=False,
            on_lost_answer="fail",
            log=LOG,
        )
        run = asyncio.ensure_future(driver.run())
        while pixverse_sandbox.create_outcomes()["accepted"] < 7:
            await asyncio.sleep(0.005)
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await hook.aclose()

    asyncio.run(cut_short())
    made = pixverse_sandbox.create_outcomes()["accepted"]
    assert 7 <= made < 16
    again = drive(AccountWindows.from_json(windows.to_json()), queue)  # type: ignore[arg-type]
    assert len(again.created) == 16 and len(set(again.created.values())) == 16
    assert pixverse_sandbox.create_outcomes()["accepted"] == 16  # each part created once in all
    assert pixverse_sandbox.jobs_high_water(A) <= 3 and pixverse_sandbox.jobs_high_water(B) <= 2


def test_a_part_the_api_refuses_is_reported_and_the_others_go_on(pixverse_sandbox: PixVerseSandbox) -> None:
    queue = parts(3)
    bad = QueuedPart("bad", SpeechRequest.of("Spoken by no voice.", "no_such_voice"), time.time())
    run = drive(AccountWindows([(None, 3)]), [bad, *queue])
    assert set(run.refused) == {"bad"} and "no_such_voice" in run.refused["bad"]
    assert sorted(run.created) == ["part-0", "part-1", "part-2"]


@pytest.mark.parametrize("status", [401, 402])
def test_a_create_no_other_create_would_survive_ends_the_run_at_once(
    pixverse_sandbox: PixVerseSandbox, status: int
) -> None:
    pixverse_sandbox.add_fault("status", code=status, count=-1, path_contains="/speech/create")
    run = drive(AccountWindows([(None, 3)]), parts(10))
    assert run.fatal is not None and getattr(run.fatal, "http_status", None) == status
    assert pixverse_sandbox.request_counts()["create"] <= 3  # the first window only; the rest never sent
    assert len(run.queued) >= 7 and run.fatal_ref is not None
