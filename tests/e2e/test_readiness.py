"""The e2e readiness waits, against a stand-in server: health of named components, the UI's warm-up."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from e2e.airflow_processes import NotYet, health, wait_until_healthy, warm_ui

if TYPE_CHECKING:
    from collections.abc import Iterator

PAGE = b"""<!doctype html><html><head><base href="/" />
<link rel="icon" href="./static/pin.png" /><script type="module" crossorigin src="./static/assets/app.js"></script>
</head><body><div id="root"></div></body></html>"""


class StandIn(BaseHTTPRequestHandler):
    """The UI's index page and assets (anything else: the page again, as a single-page app answers)."""

    files: ClassVar[dict[str, tuple[str, bytes]]] = {}
    health: ClassVar[dict[str, Any]] = {}
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        if self.path == "/api/v2/monitor/health":
            content_type, body = "application/json", json.dumps(self.health).encode()
        else:
            content_type, body = self.files.get(self.path, ("text/html", PAGE))
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def server() -> Iterator[str]:
    StandIn.files = {
        "/static/assets/app.js": ("text/javascript", b"console.log(1)"),
        "/static/pin.png": ("image/png", b"\x89PNG"),
    }
    StandIn.health = {"metadatabase": {"status": "healthy"}, "scheduler": {"status": "healthy"}, "triggerer": None}
    StandIn.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_warm_ui_fetches_each_page_and_the_assets_it_names(server: str) -> None:
    fetched = warm_ui(server, [], paths=("/",), timeout=5)
    assert fetched == len(PAGE) + len(b"console.log(1)") + len(b"\x89PNG")
    assert StandIn.seen == ["/", "/static/pin.png", "/static/assets/app.js"]


def test_warm_ui_fails_naming_an_asset_that_is_not_served(server: str) -> None:
    del StandIn.files["/static/assets/app.js"]  # now answered with the page: HTML, not a script
    with pytest.raises(AssertionError, match=r"timed out .* the UI pages .*static/assets/app\.js"):
        warm_ui(server, [], paths=("/",), timeout=1)


def test_health_names_what_is_not_healthy_yet(server: str) -> None:
    assert health(server, ("scheduler",))["scheduler"] == {"status": "healthy"}
    with pytest.raises(NotYet, match="triggerer"):
        health(server, ("scheduler", "triggerer"))
    with pytest.raises(AssertionError, match="timed out .* triggerer"):
        wait_until_healthy(server, [], ("triggerer",), timeout=1)
    StandIn.health["triggerer"] = {"status": "healthy"}
    assert wait_until_healthy(server, [], ("scheduler", "triggerer"), timeout=5)["triggerer"]["status"] == "healthy"
