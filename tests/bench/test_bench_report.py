"""`make bench`'s writer: BENCHMARKS.md holds the machine, the commands, tables and PASS/MISS lines, no logs.

Runs bench/report.py at its quick sizes (no figure is asserted), then writes the report again from the
saved results without running anything, which must give the same file.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_pixverse._compat import AIRFLOW_V_3_0_PLUS

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import corpus  # noqa: E402

# What a report line never is: a log line (timestamped, or aiohttp's continuation), a traceback, raw JSON
# or a benchmark's "# ..." progress note.
NOT_REPORT = re.compile(
    r"^(\d{4}-\d\d-\d\d[T ]\d|\[\d{4}-|client_connection:|Traceback|\{|# \S+ N=\d)|\[(warning|error) "
)


@pytest.mark.skipif(
    not AIRFLOW_V_3_0_PLUS, reason="bench/parse.py parses with the Task SDK (airflow.sdk), which Airflow 2.11 lacks"
)
@pytest.mark.timeout(1200)  # the corpus benchmark starts an Airflow and PostgreSQL: about 2.5 min of the 5
def test_report_holds_figures_and_no_logs(tmp_path: Path) -> None:
    corpus_runs = corpus.cannot_run() is None
    output, results = tmp_path / "BENCHMARKS.md", tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "bench/report.py", "--quick", "--output", str(output), "--results", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1100,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    report = output.read_text()

    titles = re.findall(r"^## (.+)$", report, re.M)
    expected = ["DAG-parse cost", "Download rate and memory", "Triggerer scale", "Shared polling", "Corpus operator"]
    assert titles == expected, titles
    assert re.search(r"^Machine: \d+ cores, .*Apache Airflow \d", report, re.M), report[:1000]
    for command in (
        "`python bench/parse.py --repeat 3`",
        "`python bench/download.py --sizes 1,5 --repeat 1`",
        "`python bench/shared_polling.py --quick`",
        "`python bench/corpus.py --quick`",
    ):
        assert command in report, command
    assert report.count("|---:|") >= 5, "the download, trigger and shared-polling tables are missing"
    # Verdicts: parse 2, download 4 (rate and memory locally, rate and bytes per byte on S3), triggers 4,
    # shared polling 9 (5 at one latency, the whole wait at 2.5 and 10 intervals, the rounds at 2 latencies),
    # corpus 6 where PostgreSQL is installed (at N: CPU against the mapped tasks, requests, makespan; at the
    # large N: requests, memory, linear growth; the large N's makespan is not judged, its clips ready at once).
    corpus_verdicts = 6 if corpus_runs else 0
    assert len(re.findall(r"\b(PASS|MISS)\b", report)) == 2 + 4 + 4 + 9 + corpus_verdicts, report
    if not corpus_runs:
        assert "`python bench/corpus.py --quick`: not run, it needs" in report
    assert re.search(r"cores were busy \d+\.\d\d on average", report), "how busy the machine was is not reported"
    logs = [line for line in report.splitlines() if NOT_REPORT.search(line)]
    assert not logs, f"BENCHMARKS.md holds log lines: {logs[:5]}"
    assert len(report) < 16_000, f"a quick report of {len(report)} characters: something more than figures got in"

    # The raw figures and each benchmark's output stay in the results folder.
    names = ("parse", "download", "triggers", "shared_polling", *(("corpus",) if corpus_runs else ()))
    assert {path.name for path in results.iterdir()} >= {
        "run.json",
        *(f"{name}.{ext}" for name in names for ext in ("json", "log")),
    }

    again = tmp_path / "again.md"
    subprocess.run(
        [sys.executable, "bench/report.py", "--from-results", str(results), "--output", str(again)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert again.read_text() == report

    # One benchmark run again on its own: the others' results are kept, and the report says which ran when.
    rerun = tmp_path / "rerun.md"
    only = ["--quick", "--only", "shared_polling", "--results", str(results), "--output", str(rerun)]
    subprocess.run(
        [sys.executable, "bench/report.py", *only],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    rerun_report = rerun.read_text()
    assert re.findall(r"^## (.+)$", rerun_report, re.M) == titles
    assert re.search(r"Run again on their own later .*: shared_polling at \d{4}-", rerun_report), rerun_report[:600]
    assert (
        rerun_report.split("## Shared polling")[0].split("## DAG-parse cost")[1]
        == (report.split("## Shared polling")[0].split("## DAG-parse cost")[1])
    ), "the other benchmarks' sections changed"
