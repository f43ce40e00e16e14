"""`make demo`: run the example DAGs end to end against a local sandbox, writing real MP3s.

First ``example_pixverse_speech`` (create, wait in the triggerer, download), then
``example_pixverse_articles`` twice over a folder of articles: the one-task operator speaks each
article (a long one in two parts, joined into one MP3), and the second night pays nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / ".demo" / "speech"
DAG_ID = "example_pixverse_speech"
ARTICLES_DAG_ID = "example_pixverse_articles"
ARTICLES = REPO / ".demo" / "articles"
SPOKEN = REPO / ".demo" / "spoken"
STARTING_CREDITS = 100_000
_BRIDGE = "The council met tonight and agreed to build the new bridge across the river. "
DEMO_ARTICLES = {
    "weather.txt": "Rain in the morning, sun in the afternoon, and a mild night ahead.",
    "library.txt": "The town library opens its new reading room on Saturday, with a story hour at ten.",
    # Over the turbo model's 10,000 characters: split into two parts, joined into one MP3.
    "bridge.txt": "\n\n".join(f"Part {n}. {_BRIDGE * 12}".strip() for n in range(1, 14)),
}


def start_sandbox() -> tuple[subprocess.Popen[str], str, str]:
    """Start the sandbox on a free port and read its URL and token from its first line."""
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_pixverse.sandbox", "--port", "0", "--generating-seconds", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sandbox.stdout is not None
    line = sandbox.stdout.readline().split()
    fields = dict(part.split("=", 1) for part in line[1:])
    return sandbox, fields["url"], fields["token"]


def control(url: str, path: str, body: dict[str, Any] | None = None, method: str = "GET") -> Any:
    """Call the sandbox's control surface (loopback only, no token)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}/_sandbox/{path}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def speak_articles(url: str, env: dict[str, str]) -> list[tuple[int, float]]:
    """Run the articles example twice; the creates and credits of each run."""
    shutil.rmtree(ARTICLES, ignore_errors=True)
    shutil.rmtree(SPOKEN, ignore_errors=True)
    ARTICLES.mkdir(parents=True)
    for name, text in DEMO_ARTICLES.items():
        (ARTICLES / name).write_text(text, encoding="utf-8")
    # The articles' clips end at once: the first DAG showed the wait; this one shows the paying.
    control(url, "clock", {"queued_seconds": 0, "generating_seconds": 0}, "POST")
    conf = {"source": ARTICLES.as_uri() + "/", "destination": SPOKEN.as_uri() + "/", "storage_conn_id": ""}
    with tempfile.TemporaryDirectory(prefix="pixverse-demo-nights-") as folder:
        result = Path(folder) / "nights.json"
        # Both nights in one process (dag.test(), as `airflow dags test` runs a DAG): Airflow starts once.
        subprocess.run(
            [sys.executable, __file__, "--nights", url, json.dumps(conf), str(result)],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return [tuple(night) for night in json.loads(result.read_text())]


def run_nights(url: str, conf: dict[str, str], result: Path) -> None:
    """Run the articles example twice with ``dag.test()``; write each run's creates and credits to ``result``."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2.11 and early 3.x
        from airflow.models.dagbag import DagBag
    from airflow import __version__

    dag = DagBag(dag_folder=str(REPO / "example_dags" / f"{ARTICLES_DAG_ID}.py")).get_dag(ARTICLES_DAG_ID)
    if int(__version__.split(".")[0]) < 3:
        dag.sync_to_db()  # Airflow 2's dag.test() does not, and the DAG's asset alias must be known
    nights = []
    for night in (1, 2):
        control(url, "credits", {"credits": STARTING_CREDITS}, "POST")
        control(url, "request_counts", method="DELETE")
        dag_run = dag.test(run_conf=conf)
        if dag_run.state != "success":
            raise SystemExit(f"{ARTICLES_DAG_ID} night {night} ended {dag_run.state}")
        creates = control(url, "request_counts")["create"]
        nights.append((creates, STARTING_CREDITS - control(url, "credits")["credits"]))
    result.write_text(json.dumps(nights))


def main() -> int:
    sandbox, url, token = start_sandbox()
    print(f"Sandbox API at {url}")
    try:
        with tempfile.TemporaryDirectory(prefix="pixverse-demo-home-") as home:
            env = {
                **os.environ,
                "AIRFLOW_HOME": home,
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "PIXVERSE_POLL_INTERVAL": "1",
                "AIRFLOW_CONN_PIXVERSE_DEFAULT": json.dumps({"conn_type": "pixverse", "host": url, "password": token}),
            }
            airflow = [sys.executable, "-m", "airflow"]
            subprocess.run([*airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
            conf = {"destination": OUTPUT.as_uri() + "/"}
            subprocess.run([*airflow, "dags", "test", DAG_ID, "--conf", json.dumps(conf)], env=env, check=True)
            print(f"\nRunning {ARTICLES_DAG_ID} twice over {ARTICLES} (PixVerseTextToSpeechOperator, one task each)")
            nights = speak_articles(url, env)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    mp3s = sorted(OUTPUT.glob("*.mp3"), key=lambda path: path.stat().st_mtime)
    if not mp3s:
        print(f"No MP3 was written to {OUTPUT}", file=sys.stderr)
        return 1
    newest = mp3s[-1]
    from mutagen.mp3 import MP3

    info = MP3(newest).info
    print(f"\nThe MP3 landed at {newest}")
    print(
        f"  {newest.stat().st_size} bytes, {info.length:.2f} s of MPEG audio, "
        f"{info.sample_rate} Hz, {info.bitrate} bit/s"
    )
    print(f"\nThe articles were spoken into {SPOKEN}:")
    for mp3 in sorted(SPOKEN.glob("*.mp3")):
        metadata = json.loads(mp3.with_name(mp3.name + ".json").read_text())
        print(
            f"  {mp3.name}: {MP3(mp3).info.length:.1f} s, {metadata['text_length']} characters in "
            f"{metadata['parts']} part(s), {metadata['credits_charged']} credits"
        )
    for night, (creates, credits) in enumerate(nights, 1):
        print(f"  run {night}: {creates} creates, {credits} credits")
    if nights[1] != (0, 0):
        print("The second run should have paid nothing", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--nights"]:
        run_nights(sys.argv[2], json.loads(sys.argv[3]), Path(sys.argv[4]))
        sys.exit(0)
    sys.exit(main())
