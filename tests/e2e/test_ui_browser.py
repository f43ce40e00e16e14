"""In a real Airflow UI, driven by headless Chromium: the PixVerse connection form and the extra link.

Needs Debian's Chromium (``apt-get install -y chromium``); Playwright drives it and never downloads
a browser of its own. Screenshots land in ``test-output/ui/`` at the repository root.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from e2e.airflow_processes import (
    STARTUP_TIMEOUT,
    AirflowApi,
    AirflowProcess,
    airflow_env,
    free_port,
    run_airflow,
    simple_auth_env,
    stop_all,
    wait_for,
    wait_until_healthy,
    warm_ui,
)
from playwright.sync_api import Page, Route, expect, sync_playwright

from airflow_provider_pixverse.sandbox import PixVerseSandbox

if TYPE_CHECKING:
    from collections.abc import Callable

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "example_dags" / "example_pixverse_speech.py"
DAG_ID = "example_pixverse_speech"
SCREENSHOTS = REPO / "test-output" / "ui"
CHROMIUM = os.environ.get("PIXVERSE_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
USERNAME, PASSWORD = "admin", "pixverse-e2e-password"
# The UI's first page: Chromium starts and compiles the UI's 7 MB of JavaScript, slow on a busy machine.
FIRST_PAGE_TIMEOUT_MS = 120_000
UI_TIMEOUT_MS = 30_000  # every later step
TEST_RESULT = re.compile("Test Connection (Successful|Failed)")


def _chromium() -> str:
    """The Chromium binary; fails (never skips) when it is missing."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run `apt-get install -y chromium` "
            "(or point PIXVERSE_E2E_CHROMIUM at a Chromium binary)"
        )
    return CHROMIUM


def _dag_ready(api: AirflowApi) -> bool:
    """Whether the example DAG is parsed; an import error fails at once."""
    errors = api.json("GET", "/importErrors")["import_errors"]
    assert not errors, f"the example DAG does not import: {errors}"
    return api.call("GET", f"/dags/{DAG_ID}").status_code == 200


def _run_state(api: AirflowApi, run_id: str) -> str:
    """The run's state; a failed run fails at once, naming its task states."""
    state = str(api.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"])
    if state == "failed":
        tis = api.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]
        raise AssertionError(f"the run {run_id} failed: {[(ti['task_id'], ti['state']) for ti in tis]}")
    return state


def _audio_id(api: AirflowApi, run_id: str) -> str:
    """The clip id the run's create task returned."""
    path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/create_speech/xcomEntries/return_value"
    value = api.json("GET", path)["value"]
    if isinstance(value, str) and value.startswith('"'):
        value = json.loads(value)
    return str(value)


def _port_zero_to_null(route: Route) -> None:
    """Work around an Airflow 3.3.x bug (apache/airflow#73298) in the connection list's Test button.

    The UI sends ``port: Number(connection.port)``, i.e. ``0`` for a connection with no port, and the
    API then refuses the test (400, "host or port ... differs"). The upstream fix treats 0 as no port
    on the server; this does the same in the request, and changes nothing else.
    """
    body = json.loads(route.request.post_data or "{}")
    if body.get("port") == 0:
        body["port"] = None
    route.continue_(post_data=json.dumps(body))


def _test_connection(page: Page, connection_id: str, *, expect_success: bool) -> str:
    """Press Test on the connection's row in the list; returns the text of the toast that answers."""
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=connection_id, exact=True))
    row.get_by_role("button", name="Test Connection").click()
    toast = page.get_by_role("status").filter(has_text=TEST_RESULT).last
    expect(toast).to_be_visible(timeout=UI_TIMEOUT_MS)
    text = toast.inner_text()
    wanted = "Test Connection Successful" if expect_success else "Test Connection Failed"
    assert wanted in text, f"Test on {connection_id}: expected {wanted!r}, the UI says {text!r}"
    return text


def _log_in(page: Page, base_url: str, shot: Callable[[str], None]) -> None:
    """Log in through the simple auth manager's login page (the browser's first page: given longer)."""
    page.goto(f"{base_url}/", wait_until="commit", timeout=FIRST_PAGE_TIMEOUT_MS)
    expect(page.get_by_text("Sign into Airflow")).to_be_visible(timeout=FIRST_PAGE_TIMEOUT_MS)
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    shot("01-login")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/", timeout=UI_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Admin")).to_be_visible(timeout=UI_TIMEOUT_MS)


def _add_connection(page: Page, base_url: str, sandbox: PixVerseSandbox, shot: Callable[[str], None]) -> None:
    """Add a PixVerse connection through the form, checking its labels and hidden fields on the way."""
    page.goto(f"{base_url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Connection ID").fill("pixverse_ui")
    dialog.get_by_role("combobox", name="Connection Type").fill("PixVerse")
    page.get_by_role("option", name="PixVerse", exact=True).click()
    expect(dialog.get_by_label("API token")).to_be_visible(timeout=UI_TIMEOUT_MS)

    visible = {
        label.inner_text().replace("*", "").strip() for label in dialog.locator("label").all() if label.is_visible()
    }
    assert visible == {"Connection ID", "Connection Type", "Description", "API base URL", "API token"}, visible
    for hidden in ("login", "port", "schema"):
        assert not dialog.locator(f"input[name='{hidden}']").is_visible(), f"the {hidden} field is shown"
    for default_label in ("Login", "Port", "Schema", "Host", "Password"):
        expect(dialog.get_by_text(default_label, exact=True)).to_have_count(0)
    expect(dialog.get_by_label("API base URL")).to_have_attribute("placeholder", "https://api.useapi.net")
    dialog.get_by_label("API base URL").fill(sandbox.url)
    dialog.get_by_label("API token").fill(sandbox.token)
    shot("02-connection-form")
    # The conn-fields sit under "Extra Fields", empty: the hook must do without them.
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    for label in ("Account email", "Timeout (seconds)", "List page size", "List concurrency", "Corpus accounts (JSON)"):
        expect(dialog.get_by_text(label, exact=True)).to_be_visible()
    shot("03-connection-extra-fields")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0, timeout=UI_TIMEOUT_MS)


def _failure_screenshot(page: Page) -> None:
    """A screenshot of the page as the test failed; never hides the failure if the page cannot take one."""
    with contextlib.suppress(Exception):
        page.screenshot(path=str(SCREENSHOTS / "99-failure.png"), timeout=5_000)


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_connection_form_and_extra_link_in_the_browser(tmp_path: Path) -> None:
    """Log in, add and Test a PixVerse connection, then find the 'PixVerse audio' link of a finished run."""
    chromium = _chromium()
    home, dags, logs = tmp_path / "airflow_home", tmp_path / "dags", tmp_path / "logs"
    for folder in (home, dags, logs):
        folder.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    print(f"\nscreenshots: {SCREENSHOTS}\nAirflow logs: {logs}")
    phases: dict[str, float] = {"start": time.monotonic()}

    api_port = free_port()
    base_url = f"http://127.0.0.1:{api_port}"
    sandbox = PixVerseSandbox(queued_seconds=0.5, generating_seconds=1.5).start()
    started: list[AirflowProcess] = []
    try:
        env = airflow_env(
            home,
            dags,
            api_port,
            {
                "AIRFLOW_CONN_PIXVERSE_DEFAULT": sandbox.connection_json(),
                "PIXVERSE_POLL_INTERVAL": "1",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                **simple_auth_env(home, {USERNAME: PASSWORD}),
            },
        )
        run_airflow(["db", "migrate"], env, logs / "db-migrate.log")
        for name, args in (
            ("api-server", ["api-server"]),
            ("scheduler", ["scheduler", "--skip-serve-logs"]),
            ("dag-processor", ["dag-processor"]),
            ("triggerer", ["triggerer", "--skip-serve-logs"]),
        ):
            started.append(AirflowProcess(name, args, env, logs).start())

        def until(what: str, check: Callable[[], Any], timeout: float = STARTUP_TIMEOUT) -> Any:
            return wait_for(what, check, timeout=timeout, processes=started)

        wait_until_healthy(base_url, started, ("scheduler", "dag_processor", "triggerer"))
        api = AirflowApi.login(base_url, USERNAME, PASSWORD)
        until(f"the DAG {DAG_ID} to be parsed", lambda: _dag_ready(api))
        phases["airflow up"] = time.monotonic()
        warm_ui(base_url, started)
        phases["UI warm"] = time.monotonic()

        # The run goes on in the background while the browser works on the connection form.
        api.json("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
        conf = {"destination": f"file://{tmp_path}/speech/"}
        run_id = api.json("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf})["dag_run_id"]

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=CHROMIUM_ARGS, timeout=FIRST_PAGE_TIMEOUT_MS
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)

            def shot(name: str) -> None:
                page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), animations="disabled")

            try:
                _log_in(page, base_url, shot)
                phases["logged in"] = time.monotonic()

                _add_connection(page, base_url, sandbox, shot)
                page.route("**/api/v2/connections/test", _port_zero_to_null)
                sandbox.clear_requests()
                message = _test_connection(page, "pixverse_ui", expect_success=True)
                assert f"Connected to the PixVerse API at {sandbox.url}" in message, message
                shot("04-test-ok")
                assert any(
                    r.kind == "api" and r.headers.get("Authorization") == f"Bearer {sandbox.token}"
                    for r in sandbox.requests
                ), "the Test button did not reach the sandbox with the token"

                # A wrong token: the Test button reports the API's refusal.
                wrong = {"connection_id": "pixverse_ui_wrong_token", "conn_type": "pixverse"}
                api.json("POST", "/connections", json=wrong | {"host": sandbox.url, "password": "not-the-token"})
                page.reload()
                message = _test_connection(page, "pixverse_ui_wrong_token", expect_success=False)
                assert "401" in message, message
                shot("05-test-failed")
                phases["connection form"] = time.monotonic()

                until("the run to succeed", lambda: _run_state(api, run_id) == "success", timeout=180)
                phases["run done"] = time.monotonic()
                audio_id = _audio_id(api, run_id)
                media_url = sandbox.clip(audio_id)["url"]
                assert "/media/pixverse/audio/speech/" in media_url, media_url
                links = api.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/download_speech/links")
                assert links["extra_links"].get("PixVerse audio") == media_url, (
                    f"REST: the download task's extra links are {links}, expected 'PixVerse audio': {media_url}"
                )

                page.goto(f"{base_url}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/download_speech")
                page.get_by_role("link", name="Details", exact=True).click()
                expect(page.get_by_text("Extra Links")).to_be_visible()
                link = page.get_by_role("link", name="PixVerse audio")
                expect(link).to_have_attribute("href", media_url)
                shot("06-extra-link")
                audio = page.request.get(media_url)
                assert audio.ok, f"the extra link's URL answers {audio.status}"
                assert len(audio.body()) == sandbox.clip(audio_id)["file_size"], "the extra link's MP3 is not the clip"
                phases["extra link"] = time.monotonic()
            except BaseException:
                _failure_screenshot(page)
                raise
            finally:
                browser.close()
        names = list(phases)
        print(
            "phases: "
            + ", ".join(f"{b} +{phases[b] - phases[a]:.1f} s" for a, b in itertools.pairwise(names))
            + f"; total {phases[names[-1]] - phases['start']:.1f} s"
        )
    finally:
        stop_all(started)
        sandbox.stop()
