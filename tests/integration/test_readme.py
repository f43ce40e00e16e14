"""The examples of README.md and of the documentation pages, read from the files themselves, run against the sandbox.

Every ``python`` block of the documents in ``DOCUMENTS`` runs in one of three ways:

- a block whose first line names a file (``# dags/x.py``, ``# tests/test_x.py``, ``# conftest.py``;
  ``toml`` blocks too) becomes that file of one throw-away user project, tested with ``pytest`` in a
  fresh interpreter with a clean environment: the provider's pytest plugin and fixtures as a user
  gets them (asked for in the project's ``conftest.py``, as the docs say). Two documents may show the
  same file, with the same text;
- a block that makes operators or sensors is a piece of one DAG: the pieces, in document order,
  make one DAG file that runs with ``dag.test()``;
- any other block runs as a script, with ``pixverse_default`` pointing at the sandbox.

The sandbox's command line output and its HTTP control block are checked against the docs too.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from pixverse_testing import run_dag

from airflow_provider_pixverse._compat import AIRFLOW_V_3_0_PLUS
from airflow_provider_pixverse.sandbox import PixVerseSandbox

REPO = Path(__file__).parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
# The documents whose blocks run, in this order: the operator blocks compose into one DAG in it.
DOCUMENTS = [
    README,
    *(
        DOCS / page
        for page in (
            "index.md",
            "connection.md",
            "hook.md",
            "operators/create.md",
            "sensors/speech.md",
            "operators/download.md",
            "operators/text_to_speech.md",
            "triggers/speech.md",
            "triggers/new_speech.md",
            "errors.md",
            "testing.md",
            "troubleshooting.md",
            "development.md",
        )
    ),
]
# Pages whose python blocks are excerpts, not runnable on their own, and why.
EXCERPTS = {"deploying.md": "a pool for a mapped create of the reader's own texts"}
# A fence: ```python, ```bash, or a MyST directive (```{literalinclude} path), whose body is no code to run.
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>\{[\w-]+\}|[\w-]*)[^\n]*\n(?P<code>.*?)^(?P=indent)```", re.S | re.M
)
FILE_LINE = re.compile(r"#\s*(?P<path>[\w./-]+\.\w+)\s*")
MAKES_TASKS = re.compile(r"\b\w+(?:Operator|Sensor)(?:\.partial)?\(")
PROJECT_LANGS = ("python", "toml")
COMPONENTS_DAG_ID = "readme_components"
BUCKET = "my-bucket"


@dataclass(frozen=True)
class Block:
    """A fenced block of a document."""

    source: str
    line: int
    lang: str
    code: str

    @property
    def where(self) -> str:
        """``file:line``, for test ids and messages."""
        return f"{self.source}:{self.line}"

    @property
    def path(self) -> str | None:
        """The project file the block is, when its first line names one."""
        first = self.code.split("\n", 1)[0]
        match = FILE_LINE.fullmatch(first)
        return match["path"] if match and self.lang in PROJECT_LANGS else None

    @property
    def kind(self) -> str:
        """``file``, ``tasks`` or ``script``: how the block is run."""
        if self.path is not None:
            return "file"
        return "tasks" if MAKES_TASKS.search(self.code) else "script"


def readme_blocks(text: str, source: str = "README.md") -> list[Block]:
    """The fenced blocks of a Markdown text, dedented, with the line each starts on."""
    return [
        Block(source, text.count("\n", 0, m.start()) + 1, m["lang"], textwrap.dedent(m["code"]))
        for m in FENCE.finditer(text)
    ]


BLOCKS = [
    block
    for document in DOCUMENTS
    for block in readme_blocks(document.read_text(encoding="utf-8"), str(document.relative_to(REPO)))
]
PYTHON = [b for b in BLOCKS if b.lang == "python"]
SCRIPTS = [b for b in PYTHON if b.kind == "script"]
TASKS = [b for b in PYTHON if b.kind == "tasks"]
PROJECT = [b for b in BLOCKS if b.kind == "file" and b.lang in PROJECT_LANGS]
# One block per project file: a document may show a file another one shows, with the same text.
PROJECT_FILES = {b.path: b for b in PROJECT}


def test_every_python_block_is_run_one_way() -> None:
    assert SCRIPTS and TASKS and PROJECT
    assert len(SCRIPTS) + len(TASKS) + len([b for b in PROJECT if b.lang == "python"]) == len(PYTHON)
    for block in PROJECT:
        first = PROJECT_FILES[block.path]
        assert block.code == first.code, f"{block.where} and {first.where} show {block.path} differently"
    paths = list(PROJECT_FILES)
    assert any(p.startswith("dags/") for p in paths) and any(p.startswith("tests/") for p in paths)
    assert "conftest.py" in paths, "the user project must ask for the plugin in its conftest.py"
    # A test function outside a project file would be defined and never called.
    for block in SCRIPTS + TASKS:
        assert "def test_" not in block.code, f"{block.where}: a test needs a '# tests/...' first line"


def test_every_page_with_python_blocks_is_run() -> None:
    pages = {
        str(page.relative_to(DOCS))
        for page in DOCS.rglob("*.md")
        if "_build" not in page.parts and any(b.lang == "python" for b in readme_blocks(page.read_text()))
    }
    run = {str(document.relative_to(DOCS)) for document in DOCUMENTS if document != README}
    assert pages - set(EXCERPTS) <= run, f"pages whose python blocks no test runs: {sorted(pages - run)}"


def test_the_readme_is_the_front_page() -> None:
    readme = [b for b in BLOCKS if b.source == "README.md"]
    assert [b.path for b in readme if b.kind == "file"] == [
        "dags/pixverse_speech.py",
        "conftest.py",
        "tests/test_pixverse_speech.py",
    ]
    assert len(README.read_text(encoding="utf-8").splitlines()) < 150


def test_readme_uses_the_public_names() -> None:
    code = "\n".join(b.code for b in PYTHON)
    assert "_api" not in code
    assert "from airflow_provider_pixverse.exceptions import" in code
    assert "from airflow_provider_pixverse.models import" in code
    create_kwargs = {
        keyword.arg
        for block in PYTHON
        for node in ast.walk(ast.parse(block.code))
        if isinstance(node, ast.Call) and "PixVerseCreateSpeechOperator" in ast.unparse(node.func)
        for keyword in node.keywords
    }
    assert "account_email" in create_kwargs
    assert "email" not in create_kwargs, "the create operator's account argument is account_email"
    errors = (DOCS / "errors.md").read_text(encoding="utf-8")
    assert "`airflow_provider_pixverse.exceptions`" in errors


def test_the_cli_prints_what_the_readme_shows() -> None:
    (shown,) = [b.code.splitlines() for b in BLOCKS if b.code.startswith("PIXVERSE_SANDBOX url=")]
    cli = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_pixverse.sandbox"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert cli.stdout is not None
        printed = [cli.stdout.readline().rstrip("\n") for _ in shown]
    finally:
        cli.terminate()
        cli.wait(timeout=10)

    def shape(lines: list[str]) -> list[str]:
        lines = [re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line) for line in lines]
        token = re.search(r"token=(\S+)", lines[0])
        assert token is not None
        return [line.replace(token[1], "TOKEN") for line in lines]

    assert shape(printed) == shape(shown)


@pytest.mark.parametrize("block", SCRIPTS, ids=[b.where for b in SCRIPTS])
def test_script_block(block: Block, pixverse_sandbox: PixVerseSandbox) -> None:
    code = compile(block.code, block.where, "exec")
    if "from airflow.sdk import" in block.code and not AIRFLOW_V_3_0_PLUS:
        # An Airflow 3 example (the page says so): on 2.11 it must fail for that reason alone.
        with pytest.raises(ModuleNotFoundError, match="airflow.sdk"):
            exec(code, {"__name__": "__readme__"})
        return
    exec(code, {"__name__": "__readme__"})


@pytest.fixture
def readme_bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The README's ``s3://my-bucket``, empty, in moto; ``aws_default`` points there."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    extra = {"endpoint_url": moto_endpoint, "region_name": "us-east-1"}
    conn = {"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
    bucket = boto3.resource("s3", endpoint_url=moto_endpoint, region_name="us-east-1").Bucket(BUCKET)
    if bucket.creation_date is None:
        bucket.create()
    bucket.objects.all().delete()
    return bucket


def components_dag(blocks: list[Block]) -> str:
    """One DAG file made of the documents' operator blocks, in document order."""
    body = "\n".join(f"# {b.where}\n{b.code}" for b in blocks)
    return (
        "import pendulum\n"
        "from airflow.providers.common.compat.sdk import DAG\n\n"
        f'with DAG(dag_id="{COMPONENTS_DAG_ID}", schedule=None, '
        'start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):\n'
        f"{textwrap.indent(body, '    ')}"
    )


def test_operator_blocks_compose_into_one_dag(
    airflow_db: Path,
    pixverse_sandbox: PixVerseSandbox,
    readme_bucket: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Clips are final when created: the waits in the README are minutes long, and the waiting
    # itself is tested elsewhere; here the pieces must fit together.
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=0)
    # The blocks use two accounts (the create page names me@example.com); where several are configured
    # the API needs the account named, so the connection names its default one, as a user's would.
    connection = json.loads(pixverse_sandbox.connection_json()) | {"extra": {"email": "sandbox@example.com"}}
    monkeypatch.setenv("AIRFLOW_CONN_PIXVERSE_DEFAULT", json.dumps(connection))
    folder = tmp_path / "readme_dags"
    folder.mkdir()
    dag_file = folder / f"{COMPONENTS_DAG_ID}.py"
    dag_file.write_text(components_dag(TASKS))
    bundles = json.loads(os.environ.get("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", "[]"))
    bundles.append(
        {
            "name": "pixverse_readme",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(folder), "refresh_interval": 0},
        }
    )
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))

    dag_run = run_dag(dag_file, COMPONENTS_DAG_ID, {})

    assert dag_run.state == "success", [(ti.task_id, ti.state) for ti in dag_run.get_task_instances()]
    keys = sorted(obj.key for obj in readme_bucket.objects.all())
    assert [k.split("/")[0] for k in keys] == ["batch", "batch", "narrated", "speech", "speech"], keys
    assert all(k.endswith(".mp3") for k in keys)
    creates = [r for r in pixverse_sandbox.requests if r.kind == "api" and r.method == "POST"]
    assert len(creates) == 5  # create, create_and_wait, two mapped, narrate


def clean_environment(home: Path) -> dict[str, str]:
    """This process's environment without its Airflow settings: a user's shell, HOME elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST_", "AWS_")) and k != "HOME"}
    env["HOME"] = str(home)
    return env


def test_user_project_from_readme(tmp_path: Path) -> None:
    project = tmp_path / "project"
    for path, block in PROJECT_FILES.items():
        assert path is not None
        target = project / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.code)
    (tmp_path / "home").mkdir()
    expected = sum(b.code.count("\ndef test_") for b in PROJECT_FILES.values())

    done = subprocess.run(
        # The plugin comes from the project's conftest.py alone (an environment installed before its
        # entry point was dropped would register it under this name too).
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:pixverse_sandbox",
            "-W",
            "ignore::DeprecationWarning",
        ],
        cwd=project,
        env=clean_environment(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=280,
    )

    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert f"{expected} passed" in done.stdout, done.stdout[-3000:]


def test_control_surface_block(pixverse_sandbox: PixVerseSandbox) -> None:
    (block,) = [b for b in BLOCKS if b.lang == "bash" and "/_sandbox/" in b.code]
    clip = pixverse_sandbox.add_clip(ready_after=60)
    script = re.sub(r"^URL=.*$", f"URL={pixverse_sandbox.url}", block.code, flags=re.M)
    script = script.replace("AUDIO_ID", clip["audio_id"])
    strict_curl = 'curl() { command curl -sS --fail-with-body "$@"; }\n'

    done = subprocess.run(["bash", "-euo", "pipefail", "-c", strict_curl + script], capture_output=True, text=True)

    assert done.returncode == 0, done.stdout + done.stderr
    assert [(f.kind, f.params, f.count) for f in pixverse_sandbox.faults.pending()] == [("status", {"code": 503}, 2)]
    assert pixverse_sandbox.clip(clip["audio_id"])["audio_status_final"]
    assert (pixverse_sandbox.state.queued_seconds, pixverse_sandbox.state.generating_seconds) == (0, 2)
    assert pixverse_sandbox.credits_left() == 10
