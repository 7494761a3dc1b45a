"""One line per evaluation: each skill's success with a success test and the mean, as `python -m skillmimic.evaluate
--json-out` wrote them, so that a lent machine's call shows a piece's result in its output (tools/round_piece.sh),
with no file to fetch and read before the next call (a machine goes back 30 s after a call ends).

    python tools/eval_line.py run/YH.eval.json run/YL.eval.json
    -> YH: success % 001 14.1, 005 90.6, ..., 031 40.6; mean 41.1; fell % (all skills) 60.6

An evaluation of a folder of policies (a run's kept files, `--checkpoint RUN/policies`: a "curve") is a line per
file, named by the JSON's stem and the file's: `YH.kept_pick_40 iter_000040.pt (10,485,760 samples): success % ...`.
A high-level policy's (`python -m skillmimic.evaluate_task --json-out`, a `hlc` arm's) is its task's line:
`HT: task throwing: success 12.5%, fell 3.1%, timed out 84.4% (64 episodes)`.

The standard library only (it runs before, or without, the installed wheels). A missing or malformed file is one
line on stderr (`eval_line.py: ...`), the other files' lines printed, exit status 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def summary(name: str, skills: list[dict]) -> str:
    """One policy's per-skill results (the evaluation's "skills") as one line named `name`."""
    tested = [(s["label"], 100 * s["success"]) for s in skills if s.get("success") is not None]
    fell = [100 * s["fell"] for s in skills]
    parts = ", ".join(f"{label} {rate:.1f}" for label, rate in tested)
    mean = f"; mean {sum(r for _, r in tested) / len(tested):.1f}" if tested else "none (no skill with a test)"
    return f"{name}: success % {parts}{mean}; fell % (all skills) {sum(fell) / max(len(fell), 1):.1f}"


def task_summary(name: str, data: dict) -> str:
    """A high-level policy's evaluation (`python -m skillmimic.evaluate_task --json-out`) as one line."""
    return (f"{name}: task {data['task']}: success {100 * data['success']:.1f}%, fell {100 * data['fell']:.1f}%, "
            f"timed out {100 * data['timed_out']:.1f}% ({data['episodes']} episodes)")


def lines(path: Path) -> list[str]:
    """The evaluation at `path` as one line, named by the file's stem less `.eval`; a folder's evaluation (its
    "curve") as one line per policy file; a task's (a high-level policy's) as one line."""
    data = json.loads(path.read_text())
    name = path.name.removesuffix(".json").removesuffix(".eval")
    if "task" in data:
        return [task_summary(name, data)]
    if "curve" in data:
        return [summary(f"{name} {point['policy']} ({point.get('samples') or 0:,} samples)", point["skills"])
                for point in data["curve"]]
    return [summary(name, data["skills"])]


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: eval_line.py EVAL.json ...", file=sys.stderr)
        return 2
    status = 0
    for arg in argv:
        try:
            print("\n".join(lines(Path(arg))))
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"eval_line.py: {arg}: not an evaluation's JSON ({type(e).__name__}: {e})", file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
