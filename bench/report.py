"""`make bench`: run the benchmarks and write their report, BENCHMARKS.md.

    python bench/report.py [--quick] [--output BENCHMARKS.md] [--results DIR] [--only NAME,...] [--args NAME=ARGS ...]
    python bench/report.py --from-results DIR [--output BENCHMARKS.md]

The report is for people: the machine, the commands, the tables and the PASS/MISS lines, nothing else.
Each benchmark saves its figures as JSON in the results folder (``test-output/bench/`` by default, not
committed), with ``run.json`` describing the run; its output and logs go to ``<name>.log`` there and
never into the report. ``--from-results`` writes the report again from a folder of saved results,
without running anything. ``--only`` runs the named benchmarks again (say, after the machine was busy
with other work during one of them) and keeps the others' saved results; the report says which ran when.
``--args NAME=ARGS`` runs that benchmark with these arguments instead of its own (say, the corpus
benchmark at smaller sizes: its full sizes take hours); the report shows the command as run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import corpus  # noqa: E402
import download  # noqa: E402
import parse  # noqa: E402
import shared_polling  # noqa: E402
import triggers  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    script: str
    quick: list[str]
    render: Callable[[Any], str]
    # Why the benchmark cannot run on this machine (a server it needs is not installed), or None.
    cannot_run: Callable[[], str | None] = lambda: None


BENCHES = [
    Bench(
        "parse", "DAG-parse cost", "bench/parse.py", ["--repeat", "3"], lambda data: f"```\n{parse.report(data)}\n```"
    ),
    Bench(
        "download",
        "Download rate and memory",
        "bench/download.py",
        ["--sizes", "1,5", "--repeat", "1"],
        download.format_report,
    ),
    Bench(
        "triggers",
        "Triggerer scale",
        "bench/triggers.py",
        ["--sizes", "20", "--poll-interval", "0.5"],
        lambda data: triggers.format_report([triggers.Result(**row) for row in data]),
    ),
    Bench(
        "shared_polling",
        "Shared polling",
        "bench/shared_polling.py",
        ["--quick"],
        lambda data: shared_polling.format_report([shared_polling.Result(**row) for row in data]),
    ),
    Bench(
        "corpus",
        "Corpus operator",
        "bench/corpus.py",
        ["--quick"],
        corpus.format_report,
        corpus.cannot_run,
    ),
]


def machine() -> str:
    with open("/proc/meminfo") as meminfo:
        memory_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    import airflow

    return (
        f"{os.cpu_count()} cores, {memory_kb / 1024**2:.0f} GiB memory, {platform.platform()}, "
        f"Python {platform.python_version()}, Apache Airflow {airflow.__version__}"
    )


def busy_seconds() -> float:
    """CPU seconds the machine's cores have been busy since boot, whoever kept them busy.

    The benchmarks share the machine with whatever else runs: over a benchmark, this tells how busy it
    was (the benchmark's own work included).
    """
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_all(results: Path, quick: bool, only: set[str] | None = None, args: dict[str, list[str]] | None = None) -> int:
    """Run the benchmarks (all, or ``only`` these), saving figures and ``run.json`` in ``results``; an exit code.

    ``run.json`` is written after each benchmark, so a run that fails later keeps what it measured.
    """
    results.mkdir(parents=True, exist_ok=True)
    started = time.time()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    saved = results / "run.json"
    if only:
        run: dict[str, Any] = json.loads(saved.read_text())
        if run["quick"] != quick:
            print(f"{saved} holds a {'quick' if run['quick'] else 'full'} run: --quick must match", file=sys.stderr)
            return 2
    else:
        run = {"quick": quick, "machine": machine(), "benches": {}, "when": when}
    for bench in BENCHES:
        if only and bench.name not in only:
            continue
        given = (args or {}).get(bench.name)
        command = [bench.script, *(given if given is not None else bench.quick if quick else [])]
        log = results / f"{bench.name}.log"
        reason = bench.cannot_run()
        if reason:
            print(f"== {bench.title}: not run: {reason}", flush=True)
            run["benches"][bench.name] = {"command": command, "seconds": 0.0, "run": when, "not_run": reason}
            saved.write_text(json.dumps(run, indent=2) + "\n")
            continue
        print(f"== {bench.title}: python {' '.join(command)} (output and logs: {log})", flush=True)
        begun, busy_before = time.time(), busy_seconds()
        with log.open("w") as out:
            done = subprocess.run(
                [sys.executable, *command, "--json", str(results / f"{bench.name}.json")],
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            print(f"{bench.script} exited {done.returncode}; the end of {log}:\n{tail}", file=sys.stderr)
            return done.returncode
        seconds = time.time() - begun
        run["benches"][bench.name] = {
            "command": command,
            "seconds": seconds,
            "busy_cores": (busy_seconds() - busy_before) / seconds,
            "run": when,
        }
        run["seconds"] = sum(meta["seconds"] for meta in run["benches"].values())
        saved.write_text(json.dumps(run, indent=2) + "\n")
        print(bench.render(json.loads((results / f"{bench.name}.json").read_text())) + "\n", flush=True)
    return 0


def render(results: Path) -> str:
    """BENCHMARKS.md from a folder of saved results."""
    run = json.loads((results / "run.json").read_text())
    again = {name: meta["run"] for name, meta in run["benches"].items() if meta.get("run", run["when"]) != run["when"]}
    rerun = (
        " Run again on their own later (`python bench/report.py --only NAME`): "
        + ", ".join(f"{name} at {stamp}" for name, stamp in again.items())
        + "."
        if again
        else ""
    )
    sections = [
        "# Benchmarks\n\n"
        f"One full run of `make bench` ({'quick sizes' if run['quick'] else 'full sizes'}), "
        f"{run['when']}, {run['seconds']:.0f} s in all.{rerun}\n\n"
        f"Machine: {run['machine']}.\n\n"
        "Every figure is measured against a peer in the same run; none of them is a timed assert in the tests. "
        "`bench/report.py` keeps the benchmarks' raw figures and logs out of this report, in `test-output/bench/`.\n"
    ]
    for bench in BENCHES:
        meta = run["benches"][bench.name]
        if "not_run" in meta:
            sections.append(f"## {bench.title}\n\n`python {' '.join(meta['command'])}`: not run, {meta['not_run']}.\n")
            continue
        data = json.loads((results / f"{bench.name}.json").read_text())
        busy = f"; the machine's cores were busy {meta['busy_cores']:.2f} on average, this benchmark included"
        sections.append(
            f"## {bench.title}\n\n`python {' '.join(meta['command'])}` "
            f"({meta['seconds']:.0f} s{busy if 'busy_cores' in meta else ''})\n\n"
            f"{bench.render(data)}\n"
        )
    return "\n".join(sections)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmarks run, not the figures")
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--results", type=Path, default=REPO / "test-output" / "bench", help="raw figures and logs")
    parser.add_argument("--from-results", type=Path, help="write the report from these saved results; run nothing")
    parser.add_argument(
        "--only",
        help="run only these benchmarks (comma-separated: "
        + ", ".join(bench.name for bench in BENCHES)
        + "), keeping the others' results saved in --results",
    )
    parser.add_argument(
        "--args",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="run benchmark NAME with ARGS (one string, split as a shell would) instead of its own arguments",
    )
    args = parser.parse_args()
    results = args.from_results or args.results
    given: dict[str, list[str]] = {}
    for one in args.args:
        name, _, rest = one.partition("=")
        if name not in {bench.name for bench in BENCHES}:
            parser.error(f"--args: unknown benchmark {name!r}")
        given[name] = shlex.split(rest)
    only = set(args.only.split(",")) if args.only else None
    if only and not only <= {bench.name for bench in BENCHES}:
        parser.error(f"--only: unknown benchmark among {sorted(only)}")
    if args.from_results is None:
        code = run_all(results, args.quick, only, given)
        if code:
            return code
    args.output.write_text(render(results))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
