from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from pixverse_testing import FakeClock

from airflow_provider_pixverse._api.retry import RetryPolicy
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hook(pixverse_sandbox: PixVerseSandbox, clock: FakeClock) -> PixVerseHook:
    return PixVerseHook(retry_policy=RetryPolicy(jitter=0.0), clock=clock)
