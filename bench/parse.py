"""DAG-parse benchmark: what importing the provider adds to parsing a DAG file, against the http provider.

Three DAG files of the same shape (three tasks chained) are written to a temp dir: a baseline with
``EmptyOperator`` only (Airflow's own cost), ours (create -> sensor -> download) and the peer
(``HttpOperator`` -> ``HttpSensor`` -> ``HttpOperator``). Each is loaded in a fresh interpreter that
has already imported ``airflow`` and ``airflow.sdk`` (as the DAG processor has), and the wall time
and RSS growth of loading the file are measured. The runs are interleaved in a random order per round.
Added cost = median(kind) - median(baseline); target: ours added <= 0.25 x the http provider's added.

    python bench/parse.py [--repeat 30] [--json BENCHMARKS-parse.json] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_RATIO = 0.25
KINDS = ("baseline", "pixverse", "http")

HEADER = """\
from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG
"""

DAG_FILES = {
    "baseline": HEADER
    + """from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(dag_id="bench_parse_baseline", schedule=None, start_date=datetime(2025, 1, 1), catchup=False) as dag:
    create = EmptyOperator(task_id="create")
    wait = EmptyOperator(task_id="wait")
    download = EmptyOperator(task_id="download")
    create >> wait >> download
""",
    "pixverse": HEADER
    + """from airflow_provider_pixverse.operators.pixverse import (
    PixVerseCreateSpeechOperator,
    PixVerseDownloadSpeechOperator,
)
from airflow_provider_pixverse.sensors.pixverse import PixVerseSpeechSensor

with DAG(dag_id="bench_parse_pixverse", schedule=None, start_date=datetime(2025, 1, 1), catchup=False) as dag:
    create = PixVerseCreateSpeechOperator(task_id="create", text="Hello from Airflow.", voice_id="voice-1")
    wait = PixVerseSpeechSensor(task_id="wait", audio_id="{{ ti.xcom_pull(task_ids='create') }}")
    download = PixVerseDownloadSpeechOperator(
        task_id="download",
        audio_id="{{ ti.xcom_pull(task_ids='create') }}",
        destination="file:///tmp/x/",
    )
    create >> wait >> download
""",
    "http": HEADER
    + """from airflow.providers.http.operators.http import HttpOperator
from airflow.providers.http.sensors.http import HttpSensor

with DAG(dag_id="bench_parse_http", schedule=None, start_date=datetime(2025, 1, 1), catchup=False) as dag:
    create = HttpOperator(task_id="create", http_conn_id="http_default", endpoint="speech", method="POST", data={})
    wait = HttpSensor(task_id="wait", http_conn_id="http_default", endpoint="speech/{{ ti.xcom_pull('create') }}")
    download = HttpOperator(
        task_id="download", http_conn_id="http_default", endpoint="media/{{ ti.xcom_pull('create') }}", method="GET"
    )
    create >> wait >> download
""",
}

# Runs in the fresh interpreter: Airflow and the Task SDK are already paid for, then one DAG file is loaded.
CHILD = r"""
import gc, importlib.util, json, sys, time
import airflow
import airflow.sdk
from airflow.sdk import DAG

def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

gc.collect()
modules_before = len(sys.modules)
rss_before = rss_kb()
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("bench_parse_dag", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
seconds = time.perf_counter() - start
rss_after = rss_kb()
dags = [value for value in vars(module).values() if isinstance(value, DAG)]
print(json.dumps({
    "seconds": seconds,
    "rss_kb": rss_after - rss_before,
    "modules": len(sys.modules) - modules_before,
    "tasks": sum(len(dag.tasks) for dag in dags),
}))
"""


def child_env(airflow_home: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(AIRFLOW_HOME=airflow_home, AIRFLOW__CORE__LOAD_EXAMPLES="False")
    return env


def parse_once(dag_file: Path, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(dag_file)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"parsing {dag_file.name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["tasks"] != 3:
        raise RuntimeError(f"{dag_file.name}: expected a DAG with 3 tasks, got {result['tasks']}")
    return result


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {"median": statistics.median(ordered), "q1": q1, "q3": q3, "min": ordered[0], "max": ordered[-1]}


def bootstrap_ratio(
    samples: dict[str, list[float]], rng: random.Random, rounds: int = 2000
) -> tuple[float, float] | None:
    """A 90% bootstrap interval of (median ours - median baseline) / (median peer - median baseline)."""
    ratios = []
    for _ in range(rounds):
        medians = {kind: statistics.median(rng.choices(values, k=len(values))) for kind, values in samples.items()}
        peer = medians["http"] - medians["baseline"]
        if peer > 0:
            ratios.append((medians["pixverse"] - medians["baseline"]) / peer)
    if len(ratios) < rounds // 2:
        return None
    ratios.sort()
    return ratios[int(0.05 * len(ratios))], ratios[int(0.95 * len(ratios)) - 1]


def run(repeat: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    samples: dict[str, dict[str, list[float]]] = {kind: {"seconds": [], "rss_kb": [], "modules": []} for kind in KINDS}
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as tmp:
        folder = Path(tmp)
        airflow_home = folder / "airflow-home"
        airflow_home.mkdir()
        env = child_env(str(airflow_home))
        files = {}
        for kind, source in DAG_FILES.items():
            files[kind] = folder / f"bench_parse_{kind}.py"
            files[kind].write_text(source)
        for kind in KINDS:  # warm-up: byte-code caches and the page cache, not measured
            parse_once(files[kind], env)
        for _ in range(repeat):
            order = list(KINDS)
            rng.shuffle(order)
            for kind in order:
                result = parse_once(files[kind], env)
                for metric in samples[kind]:
                    samples[kind][metric].append(result[metric])

    stats = {kind: {metric: summary(values) for metric, values in metrics.items()} for kind, metrics in samples.items()}
    targets = {}
    for metric in ("seconds", "rss_kb"):
        base = stats["baseline"][metric]["median"]
        ours = stats["pixverse"][metric]["median"] - base
        peer = stats["http"][metric]["median"] - base
        ratio = ours / peer if peer > 0 else None
        interval = bootstrap_ratio({kind: samples[kind][metric] for kind in KINDS}, rng)
        targets[metric] = {
            "ours_added": ours,
            "peer_added": peer,
            "ratio": ratio,
            "ratio_90ci": interval,
            "target": TARGET_RATIO,
            "verdict": "PASS" if ratio is not None and ratio <= TARGET_RATIO else "MISS",
        }
    return {
        "benchmark": "dag-parse",
        "repeat": repeat,
        "seed": seed,
        "python": sys.version.split()[0],
        "airflow": airflow_version(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "stats": stats,
        "targets": targets,
        "samples": samples,
    }


def airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow")


def report(results: dict[str, Any]) -> str:
    stats, targets = results["stats"], results["targets"]
    lines = [
        f"DAG-parse cost: {results['repeat']} fresh interpreters per DAG, Airflow {results['airflow']}, "
        f"Python {results['python']}",
        "",
        f"{'DAG':<10} {'time ms: median':>16} {'IQR':>17} {'min..max':>17}"
        f" {'RSS MiB: median':>16} {'IQR':>13} {'modules':>8}",
    ]
    for kind in KINDS:
        sec, rss, mods = stats[kind]["seconds"], stats[kind]["rss_kb"], stats[kind]["modules"]
        lines.append(
            f"{kind:<10} {sec['median'] * 1e3:>16.1f} {sec['q1'] * 1e3:>8.1f}..{sec['q3'] * 1e3:<7.1f}"
            f" {sec['min'] * 1e3:>8.1f}..{sec['max'] * 1e3:<7.1f}"
            f" {rss['median'] / 1024:>16.2f} {rss['q1'] / 1024:>6.2f}..{rss['q3'] / 1024:<5.2f}"
            f" {mods['median']:>8.0f}"
        )
    lines.append("")
    units = {"seconds": ("time", 1e3, "ms"), "rss_kb": ("RSS", 1 / 1024, "MiB")}
    for metric, target in targets.items():
        name, scale, unit = units[metric]
        ratio = "n/a (peer adds nothing)" if target["ratio"] is None else f"{target['ratio']:.3f}"
        interval = target["ratio_90ci"]
        ci = "" if interval is None else f" (90% bootstrap {interval[0]:.3f}..{interval[1]:.3f})"
        lines.append(
            f"{name}: added by pixverse {target['ours_added'] * scale:.2f} {unit}, by http "
            f"{target['peer_added'] * scale:.2f} {unit}; ratio {ratio}{ci}"
        )
        lines.append(f"  {target['verdict']}: {name} added by the provider <= {TARGET_RATIO} x the http provider's")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=30, help="fresh interpreters per DAG kind (default 30)")
    parser.add_argument("--json", type=Path, help="write the results (stats, targets, raw samples) here")
    parser.add_argument("--seed", type=int, default=0, help="seed for the run order and the bootstrap")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    results = run(args.repeat, args.seed)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
