"""Airflow 2.11's connection form, in its FAB webserver, driven by headless Chromium.

2.11-3.1 build the form from ``PixVerseHook.get_ui_field_behaviour()`` and
``get_connection_form_widgets()``: choosing "PixVerse" must relabel host and password, show the
extra widgets and hide login, schema, port and the raw extra. A behaviour the schema refuses is
dropped with a log warning only, and the form then shows every default field under its default label.

Needs Debian's Chromium (``apt-get install -y chromium``); Playwright drives it and never downloads a
browser of its own. Screenshots land in ``test-output/ui/airflow-2.11/`` at the repository root.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
from e2e.airflow_processes import PASS_THROUGH, AirflowProcess, free_port, run_airflow, stop_all, wait_for
from playwright.sync_api import Page, expect, sync_playwright

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.legacy_ui

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output" / "ui" / "airflow-2.11"
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
USERNAME, PASSWORD = "admin", "pixverse-legacy-ui-password"
STARTUP_TIMEOUT = 120.0
UI_TIMEOUT_MS = 20_000
CONN_ID = "pixverse_ui"
API_URL, TOKEN, EMAIL, TIMEOUT = "http://127.0.0.1:9", "token-from-the-form", "speech@example.com", "42"
# What the form shows for a PixVerse connection, and nothing more.
PIXVERSE_LABELS = {
    "Connection Id",
    "Connection Type",
    "Description",
    "API base URL",
    "API token",
    "Account email",
    "Timeout (seconds)",
    "List page size",
    "List concurrency",
    "Corpus accounts (JSON)",
}


def _chromium() -> str:
    """The Chromium binary; fails (never skips) when it is missing."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run `apt-get install -y chromium` "
            "(or point PIXVERSE_E2E_CHROMIUM at a Chromium binary)"
        )
    return CHROMIUM


def _webserver_env(home: Path, dags: Path, port: int) -> dict[str, str]:
    """A clean environment for an Airflow 2.11 webserver in the throw-away ``home``, on loopback."""
    from cryptography.fernet import Fernet

    env = {key: os.environ[key] for key in (*PASS_THROUGH, "PYTHONPATH") if key in os.environ}
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(port),
        "AIRFLOW__WEBSERVER__WORKERS": "1",
        "AIRFLOW__WEBSERVER__SECRET_KEY": "pixverse-legacy-ui-secret-key-not-for-production",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    return env


def _log_in(page: Page, base_url: str, shot: Callable[[str], None]) -> None:
    """Log in through the FAB login page."""
    page.goto(f"{base_url}/")
    expect(page.get_by_text("Sign In").first).to_be_visible(timeout=UI_TIMEOUT_MS)
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    shot("01-login")
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(f"{base_url}/home", timeout=UI_TIMEOUT_MS)


def _open_add_connection(page: Page, base_url: str) -> None:
    """Admin > Connections > add (the "+" button of the list)."""
    page.get_by_role("link", name="Admin", exact=True).click()
    page.get_by_role("link", name="Connections", exact=True).click()
    page.wait_for_url(f"{base_url}/connection/list/", timeout=UI_TIMEOUT_MS)
    page.locator("a[href$='/connection/add']").click()
    page.wait_for_url(f"{base_url}/connection/add", timeout=UI_TIMEOUT_MS)


def _choose_connection_type(page: Page, name: str) -> None:
    """Pick the connection type in the form's select2 box, as a user does: open it, type, click."""
    page.locator("#conn_type + .select2-container .select2-selection").click()
    page.locator(".select2-container--open .select2-search__field").fill(name)
    page.locator(".select2-results__option").filter(has_text=re.compile(rf"^{re.escape(name)}$")).click()
    expect(page.locator("#select2-conn_type-container")).to_contain_text(name)


def _visible_labels(page: Page) -> set[str]:
    form = page.locator("form#model_form")
    return {label.inner_text().replace("*", "").strip() for label in form.locator("label").all() if label.is_visible()}


@pytest.mark.timeout(300)
def test_pixverse_connection_form_in_the_fab_webserver(tmp_path: Path) -> None:
    """Log in, add a PixVerse connection through the form, check its fields, save it and read it back."""
    chromium = _chromium()
    home, dags, logs = tmp_path / "airflow_home", tmp_path / "dags", tmp_path / "logs"
    for folder in (home, dags, logs):
        folder.mkdir()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    print(f"\nscreenshots: {SCREENSHOTS}\nAirflow logs: {logs}")

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = _webserver_env(home, dags, port)
    run_airflow(["db", "migrate"], env, logs / "db-migrate.log")
    run_airflow(
        [
            "users",
            "create",
            *("--username", USERNAME, "--password", PASSWORD, "--role", "Admin"),
            *("--email", "admin@example.com", "--firstname", "Pix", "--lastname", "Verse"),
        ],
        env,
        logs / "users-create.log",
    )
    started = [AirflowProcess("webserver", ["webserver", "--hostname", "127.0.0.1", "--port", str(port)], env, logs)]
    try:
        started[0].start()
        wait_for(
            "the webserver",
            lambda: requests.get(f"{base_url}/health", timeout=5).ok,
            timeout=STARTUP_TIMEOUT,
            processes=started,
        )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)

            def shot(name: str) -> None:
                page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, animations="disabled")

            try:
                _log_in(page, base_url, shot)
                _open_add_connection(page, base_url)
                page.get_by_label("Connection Id").fill(CONN_ID)
                _choose_connection_type(page, "PixVerse")

                expect(page.locator("label[for='password']")).to_have_text("API token")
                expect(page.locator("label[for='host']")).to_have_text("API base URL")
                expect(page.locator("label[for='extra__pixverse__email']")).to_be_visible()
                visible = _visible_labels(page)
                assert visible == PIXVERSE_LABELS, f"the form shows {sorted(visible)}"
                for hidden in ("login", "schema", "port", "extra"):
                    expect(page.locator(f"#{hidden}")).to_be_hidden()
                    expect(page.locator(f"label[for='{hidden}']")).to_be_hidden()
                expect(page.locator("#host")).to_have_attribute("placeholder", "https://api.useapi.net")
                expect(page.locator("#password")).to_have_attribute("placeholder", "useapi.net API token")
                # Another type's widgets stay hidden.
                expect(page.locator("#extra__smtp__from_email")).to_be_hidden()

                page.get_by_label("API base URL").fill(API_URL)
                page.get_by_label("API token").fill(TOKEN)
                page.get_by_label("Account email").fill(EMAIL)
                page.get_by_label("Timeout (seconds)").fill(TIMEOUT)
                shot("02-connection-form")
                page.get_by_role("button", name="Save").click()
                page.wait_for_url(f"{base_url}/connection/list/", timeout=UI_TIMEOUT_MS)
                expect(page.get_by_text("Added Row")).to_be_visible()
                expect(page.get_by_role("cell", name=CONN_ID, exact=True)).to_be_visible()
                shot("03-connection-saved")
            except BaseException:
                shot("99-failure")
                raise
            finally:
                browser.close()
    finally:
        stop_all(started)

    # What the form saved is what the hook reads: host, token, and the two extras without a prefix.
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "connections", "get", CONN_ID, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (saved,) = json.loads(done.stdout)
    assert (saved["conn_type"], saved["host"], saved["password"]) == ("pixverse", API_URL, TOKEN), saved
    assert saved["extra_dejson"] == {"email": EMAIL, "timeout": TIMEOUT}, saved
