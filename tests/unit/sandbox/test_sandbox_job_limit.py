"""The account's job limit: at most max_jobs clips QUEUED or GENERATING at once; a create beyond it is 429."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_provider_pixverse.sandbox.jobs import DEFAULT_MAX_JOBS, JobLimits
from airflow_provider_pixverse.sandbox.service import PixVerseSandbox

if TYPE_CHECKING:
    from conftest import Api


def test_the_default_limit_is_a_real_accounts() -> None:
    assert 1 <= DEFAULT_MAX_JOBS <= 8
    assert PixVerseSandbox().state.jobs.default == DEFAULT_MAX_JOBS


def test_a_create_beyond_the_limit_is_refused_busy_with_retry_after_and_makes_nothing(
    api: Api, sandbox: PixVerseSandbox
) -> None:
    sandbox.set_clock(queued_seconds=0.0, generating_seconds=60.0)
    sandbox.set_max_jobs(2)
    accepted = [api.create(text=f"Clip {n}.") for n in range(2)]
    assert [answer.status_code for answer in accepted] == [200, 200]
    refused = api.create(text="One too many.")
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == 429
    assert "busy" in body["error"] and "2 of 2" in body["error"]
    assert refused.headers["Retry-After"] == "30"  # a minute to go: the cap published clients wait at most
    listed = api.get("/speech/").json()["data"]
    assert len(listed) == 2  # the refused create made no job
    assert sandbox.create_outcomes() == {"accepted": 2, "busy": 1, "refused": 0}
    outcomes = [r.to_json()["outcome"] for r in sandbox.requests if r.endpoint == "create"]
    assert outcomes == ["accepted", "accepted", "busy"]
    assert sandbox.jobs_high_water() == 2


def test_retry_after_is_the_time_until_the_first_job_ends(api: Api, sandbox: PixVerseSandbox) -> None:
    sandbox.set_clock(queued_seconds=1.0, generating_seconds=3.0)
    sandbox.set_max_jobs(1)
    assert api.create(text="First.").status_code == 200
    assert api.create(text="Second.").headers["Retry-After"] in ("3", "4")


def test_capacity_frees_up_as_jobs_end(api: Api, sandbox: PixVerseSandbox) -> None:
    sandbox.set_clock(queued_seconds=0.0, generating_seconds=60.0)
    sandbox.set_max_jobs(1)
    first = api.create(text="First.").json()["audio_id"]
    assert api.create(text="Second.").status_code == 429
    sandbox.finish_clip(first)
    assert api.create(text="Second.").status_code == 200


def test_the_creates_own_max_jobs_field_sets_its_limit(api: Api, sandbox: PixVerseSandbox) -> None:
    sandbox.set_clock(queued_seconds=0.0, generating_seconds=60.0)
    sandbox.set_max_jobs(1)
    assert api.create(text="First.").status_code == 200
    assert api.create(text="Second.", maxJobs=2).status_code == 200
    assert api.create(text="Third.", maxJobs=2).status_code == 429


def test_each_account_has_its_own_limit_and_seeded_clips_do_not_count(api: Api, sandbox: PixVerseSandbox) -> None:
    sandbox.set_clock(queued_seconds=0.0, generating_seconds=60.0)
    sandbox.set_max_jobs(1, email="one@example.com")
    for n in range(3):
        sandbox.add_clip(text=f"History {n}.", email="one@example.com", status="GENERATING")
    assert api.create(text="A.", email="one@example.com").status_code == 200
    assert api.create(text="B.", email="one@example.com").status_code == 429
    assert api.create(text="C.", email="two@example.com").status_code == 200  # the default limit
    assert sandbox.jobs_high_water("one@example.com") == 1


def test_a_create_without_email_is_refused_where_several_accounts_are_known_as_the_listing_is(
    api: Api, sandbox: PixVerseSandbox
) -> None:
    sandbox.add_clip(email="one@example.com")
    sandbox.add_clip(email="two@example.com")
    created = api.create(text="Whose?")
    listed = api.get("/speech/")
    assert created.status_code == listed.status_code == 400
    assert created.json()["error"] == listed.json()["error"]
    assert "email is required" in created.json()["error"]
    assert sandbox.create_outcomes()["accepted"] == 0


def test_no_limit_when_told_so(api: Api, sandbox: PixVerseSandbox) -> None:
    sandbox.set_clock(queued_seconds=0.0, generating_seconds=60.0)
    sandbox.set_max_jobs(None)
    assert all(api.create(text=f"Clip {n}.").status_code == 200 for n in range(10))


def test_the_control_surface_sets_and_reports_the_limit(sandbox: PixVerseSandbox) -> None:
    import requests

    control = sandbox.url + "/_sandbox"
    assert requests.post(control + "/max_jobs", json={"max_jobs": 5}, timeout=5).ok
    assert sandbox.state.jobs.default == 5
    assert requests.get(control + "/create_outcomes", timeout=5).json() == {"accepted": 0, "busy": 0, "refused": 0}
    assert requests.get(control + "/jobs", timeout=5).json()["high_water"] == 0


@pytest.mark.parametrize("bad", [0, 9.5, True, "3"])
def test_a_bad_limit_is_refused_naming_it(bad: object) -> None:
    with pytest.raises(ValueError, match=repr(bad)):
        JobLimits().set(bad)  # type: ignore[arg-type]


def test_the_cli_takes_max_jobs() -> None:
    from airflow_provider_pixverse.sandbox.__main__ import parse_args

    assert parse_args(["--max-jobs", "5"]).max_jobs == 5
    assert parse_args(["--max-jobs", "none"]).max_jobs is None
    assert parse_args([]).max_jobs == DEFAULT_MAX_JOBS
