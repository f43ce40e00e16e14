"""`make bench`: run the three benchmarks and write their figures to BENCHMARKS.md.

python bench/report.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCHES = {
    "DAG-parse cost": ["bench/parse.py"],
    "Download rate and memory": ["bench/download.py"],
    "Triggerer scale": ["bench/triggers.py"],
}
QUICK = {
    "bench/parse.py": ["--repeat", "3"],
    "bench/download.py": ["--sizes", "1,5", "--repeat", "1"],
    "bench/triggers.py": ["--sizes", "20", "--poll-interval", "0.5"],
}


def machine() -> str:
    with open("/proc/meminfo") as meminfo:
        memory_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    import airflow

    return (
        f"{os.cpu_count()} cores, {memory_kb / 1024**2:.0f} GiB memory, {platform.platform()}, "
        f"Python {platform.python_version()}, Apache Airflow {airflow.__version__}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmarks run, not the figures")
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    args = parser.parse_args()
    sections = []
    started = time.time()
    for title, command in BENCHES.items():
        extra = QUICK[command[0]] if args.quick else []
        full = [sys.executable, *command, *extra]
        print(f"== {title}: {' '.join(command + extra)}", flush=True)
        begun = time.time()
        done = subprocess.run(full, cwd=REPO, capture_output=True, text=True)
        print(done.stdout, flush=True)
        if done.returncode != 0:
            print(done.stderr[-4000:], file=sys.stderr)
            return done.returncode
        sections.append(
            f"## {title}\n\n`python {' '.join(command + extra)}` ({time.time() - begun:.0f} s)\n\n"
            f"```\n{done.stdout.strip()}\n```\n"
        )
    header = (
        "# Benchmarks\n\n"
        f"One full run of `make bench` ({'quick sizes' if args.quick else 'full sizes'}), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {time.time() - started:.0f} s in all.\n\n"
        f"Machine: {machine()}.\n\n"
        "Every figure is measured against a peer in the same run; none of them is a timed assert in the tests.\n\n"
    )
    args.output.write_text(header + "\n".join(sections))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
