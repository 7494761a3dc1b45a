"""Samples per second of runs on 1, 2, ... GPUs and the scaling efficiency, from their progress.csv, as a Markdown table.

    python tools/scaling_table.py 1=results/speed/scaling_h100x4/progress_1.csv 2=.../progress_2.csv 4=.../progress_4.csv

Each argument is GPUS=PROGRESS.csv (train_llc.py's or train_hlc.py's progress.csv of a run under torchrun with that
many processes). progress.csv's samples_per_s is the mean since the run's loop started, so the first iterations'
start-up (compiling, the first rollout's allocations) weighs on every row; this table takes the steady rate
instead: the samples between iteration --from-iteration and the last, over the time between them (each row's time
since the start is its samples / samples_per_s). Efficiency at N GPUs: its samples/s / (N x samples/s at 1 GPU),
meaningful only for runs on one machine. A missing or malformed file is one line (`error: ...`).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package beside this folder
from skillmimic.cli import run_guarded  # noqa: E402
from skillmimic.errors import UserError  # noqa: E402


def steady_rate(path: str, from_iteration: int) -> tuple[float, int, int]:
    """A progress.csv's samples/s from row `from_iteration` (1-based) to its last row -> (rate, first, last)."""
    if not Path(path).is_file():
        raise UserError(f"{path}: no such file (a run's progress.csv)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    try:
        it = [int(r["iteration"]) for r in rows]
        samples = [int(r["samples"]) for r in rows]
        elapsed = [s / float(r["samples_per_s"]) for s, r in zip(samples, rows)]
    except (KeyError, ValueError, ZeroDivisionError):
        raise UserError(f"{path}: not a progress.csv (columns iteration, samples, samples_per_s)") from None
    first = next((k for k, i in enumerate(it) if i >= from_iteration), None)
    if first is None or first >= len(rows) - 1:
        raise UserError(f"{path}: needs at least two iterations from {from_iteration} on (it has {len(rows)} rows)")
    rate = (samples[-1] - samples[first]) / (elapsed[-1] - elapsed[first])
    return rate, it[first], it[-1]


def table(runs: list[tuple[int, str]], from_iteration: int) -> str:
    """runs: (GPUs, progress.csv path) -> the Markdown table."""
    rates = {gpus: steady_rate(path, from_iteration) for gpus, path in runs}
    one = rates[1][0] if 1 in rates else None
    lines = ["| GPUs | samples/s | per GPU | efficiency (against 1 GPU) | iterations timed |", "|---|---|---|---|---|"]
    for gpus, (rate, first, last) in sorted(rates.items()):
        eff = "-" if gpus == 1 or one is None else f"{100 * rate / (gpus * one):.1f}%"
        lines.append(f"| {gpus} | {rate:,.0f} | {rate / gpus:,.0f} | {eff} | {first}-{last} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="GPUS=PROGRESS.csv")
    p.add_argument("--from-iteration", type=int, default=7, help="the first iteration timed (default 7)")
    args = p.parse_args(argv)
    runs = []
    for arg in args.runs:
        gpus, sep, path = arg.partition("=")
        if not sep or not gpus.isdigit() or int(gpus) < 1:
            raise UserError(f"{arg}: expected GPUS=PROGRESS.csv with GPUS a positive whole number")
        runs.append((int(gpus), path))
    print(table(runs, args.from_iteration))


if __name__ == "__main__":
    run_guarded(main)
