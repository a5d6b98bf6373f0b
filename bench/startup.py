"""How fast the command line answers: ``impact-assets --help`` and ``validate`` of the demo's specs.

Usage:  .venv/bin/python bench/startup.py [--runs 10]

Each command runs ``--runs`` times in a fresh process; the median wall time is printed beside that of
``python -c pass`` in the same run (the interpreter's own start), as a ratio. ``validate`` runs once
first, so Great Expectations' answers about the specs' expectations are in its cache, as they are
after the first validation on any machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("impact-assets"))


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=REPO)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    subprocess.run([CLI, "validate"], check=True, capture_output=True, cwd=REPO)
    reference = median_seconds([sys.executable, "-c", "pass"], args.runs)
    print(f"{'command':<32} {'median':>8} {'vs python -c pass':>18}")
    print(f"{'python -c pass':<32} {reference:>7.3f}s {1:>17.1f}x")
    for command in (["--help"], ["validate"]):
        seconds = median_seconds([CLI, *command], args.runs)
        name = "impact-assets " + " ".join(command)
        print(f"{name:<32} {seconds:>7.3f}s {seconds / reference:>17.1f}x")


if __name__ == "__main__":
    main()
