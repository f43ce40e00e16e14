"""The one-task operator and a models list with one bad entry: only the task's own model's formula matters."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hostile_server import SeenRequest, hostile_server, http_answer
from pixverse_testing import MemoryStateStore, RecordingTaskInstance, use_connection

from airflow_provider_pixverse.exceptions import PixVerseInvalidInputError
from airflow_provider_pixverse.model_list import forget_model_lists
from airflow_provider_pixverse.operators.pixverse import PixVerseTextToSpeechOperator
from airflow_provider_pixverse.operators.text_to_speech import ESTIMATE_XCOM_KEY

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Iterator

    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"


@pytest.fixture(autouse=True)
def _fresh_model_list() -> None:
    forget_model_lists()


def forward(sandbox: PixVerseSandbox, request: SeenRequest) -> tuple[int, bytes, str]:
    """``request`` sent on to the sandbox: its status, body and content type."""
    headers = {name: value for name, value in request.headers.items() if name in ("authorization", "content-type")}
    sent = urllib.request.Request(
        sandbox.url + request.path, data=request.body or None, headers=headers, method=request.method
    )
    try:
        with urllib.request.urlopen(sent, timeout=10) as answer:
            return answer.status, answer.read(), answer.headers.get("Content-Type", "application/json")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("Content-Type", "application/json")


@pytest.fixture
def models_edited(
    pixverse_sandbox: PixVerseSandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Callable[[dict[str, Any]], None]], None]]:
    """The sandbox behind a loopback proxy that edits its models list with the function it is given."""
    edits: list[Callable[[dict[str, Any]], None]] = []

    def answer(request: SeenRequest, sock: socket.socket) -> None:
        status, body, content_type = forward(pixverse_sandbox, request)
        if request.path.split("?")[0].endswith("/speech/models") and status == 200:
            data = json.loads(body)
            for edit in edits:
                edit(data)
            body = json.dumps(data).encode()
        sock.sendall(http_answer(status, body, {"Content-Type": content_type}))

    with hostile_server(answer) as server:
        use_connection(monkeypatch, "pixverse_default", host=server.url, password=pixverse_sandbox.token)
        yield edits.append


def model_entry(data: dict[str, Any], model: str) -> dict[str, Any]:
    return next(entry for group in data["provider_groups"] for entry in group["models"] if entry["model"] == model)


def run(text: str, tmp_path: Path, **kwargs: Any) -> tuple[Any, RecordingTaskInstance]:
    operator = PixVerseTextToSpeechOperator(
        task_id="speak",
        text=text,
        voice_id=VOICE,
        destination=f"file://{tmp_path}/",
        deferrable=False,
        poll_interval=0.05,
        **kwargs,
    )
    ti = RecordingTaskInstance()
    return operator.execute({"ti": ti, "task_state_store": MemoryStateStore()}), ti


def test_a_bad_formula_on_another_model_costs_nothing(
    models_edited: Callable[[Callable[[dict[str, Any]], None]], None],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def break_eleven_v3(data: dict[str, Any]) -> None:
        model_entry(data, "eleven-v3")["credit_formula"]["unit_credits"] = -1

    models_edited(break_eleven_v3)
    uri, ti = run("x" * 120, tmp_path, max_credits=3)  # speech-2.8-hd: 3 units of 50 at 1 credit
    assert Path(uri.removeprefix("file://")).stat().st_size > 0
    assert ti.xcoms[ESTIMATE_XCOM_KEY]["credits"] == 3
    warned = [r.getMessage() for r in caplog.records if "unusable credit_formula" in r.getMessage()]
    assert len(warned) == 1 and "'eleven-v3'" in warned[0]
    run("Another text.", tmp_path)  # the cached list: the same problem is not logged again
    assert len([r for r in caplog.records if "unusable credit_formula" in r.getMessage()]) == 1


def test_a_bad_formula_on_the_tasks_own_model_is_an_unknown_cost(
    models_edited: Callable[[Callable[[dict[str, Any]], None]], None], tmp_path: Path
) -> None:
    def break_hd(data: dict[str, Any]) -> None:
        model_entry(data, "speech-2.8-hd")["credit_formula"]["round_up"] = "sometimes"

    models_edited(break_hd)
    _, ti = run("Spoken without a cap.", tmp_path)
    assert ti.xcoms[ESTIMATE_XCOM_KEY]["credits"] is None
    with pytest.raises(PixVerseInvalidInputError, match=r"max_credits=5 is set.*'speech-2.8-hd'.*round_up"):
        run("Spoken with a cap.", tmp_path, max_credits=5)
