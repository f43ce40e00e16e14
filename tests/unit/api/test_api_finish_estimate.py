"""FinishEstimate: when to list an account next, learnt from the clips seen to end (a fake clock: plain numbers)."""

from __future__ import annotations

import pytest

from airflow_provider_pixverse._api.finish_estimate import RETRY_FRACTION, SHRINK, FinishEstimate


def test_with_nothing_learnt_the_next_listing_is_one_interval_after_the_last() -> None:
    estimate = FinishEstimate(poll_interval=10.0)
    assert estimate.next_listing(now=100.0, last_listing=None, created=[100.0]) == 110.0
    assert estimate.next_listing(now=103.0, last_listing=101.0, created=[100.0]) == 111.0


def test_once_learnt_the_next_listing_is_when_the_earliest_clip_is_expected_final() -> None:
    estimate = FinishEstimate(poll_interval=10.0, seconds=3.0)
    assert estimate.next_listing(now=100.0, last_listing=None, created=[100.0, 100.5]) == 103.0
    # Clips longer than the interval: listed when they are expected, not every interval before that.
    assert FinishEstimate(10.0, seconds=60.0).next_listing(now=100.0, last_listing=None, created=[100.0]) == 160.0
    # Never later than max(interval, estimate) after the last listing, whatever the clips' creates say.
    assert FinishEstimate(10.0, seconds=3.0).next_listing(now=100.0, last_listing=100.0, created=[200.0]) == 110.0
    # A clip overdue: listed again a tenth of its expected time after the last listing, not at once.
    assert estimate.next_listing(now=104.0, last_listing=103.0, created=[100.0]) == 103.0 + RETRY_FRACTION * 3.0


def test_a_clip_final_at_its_first_listing_shrinks_the_estimate_and_one_seen_running_splits_the_gap() -> None:
    estimate = FinishEstimate(poll_interval=10.0)
    estimate.observe(created=0.0, seen_final=4.0)
    assert estimate.seconds == pytest.approx(SHRINK * 4.0)
    estimate = FinishEstimate(poll_interval=10.0)
    estimate.observe(created=0.0, seen_final=4.0, seen_running=3.0)
    assert estimate.seconds == pytest.approx(3.5)


def test_the_estimate_settles_near_the_clips_real_time_with_few_listings_per_clip() -> None:
    """Clips of 3 s, an interval of 10 s: listings land just after 3 s, not at 10 s."""
    real, interval = 3.0, 10.0
    estimate = FinishEstimate(poll_interval=interval)
    listings, waits = 0, []
    for _ in range(40):  # one clip after another, each created as the last one's listing freed its slot
        created, last, running = 0.0, None, None
        while True:
            at = estimate.next_listing(now=created if last is None else last, last_listing=last, created=[created])
            listings += 1
            if at >= created + real:
                estimate.observe(created, at, running)
                waits.append(at - created)
                break
            last = running = at
    assert sum(waits[-20:]) / 20 < 1.15 * real  # seen final soon after it is, not an interval later
    assert listings / 40 <= 2.0  # about one listing, now and then a second, per clip
