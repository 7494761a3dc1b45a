"""Per-skill results of one or more evaluations side by side, as a Markdown table, with SkillMimic's success rates.

    python tools/skill_table.py "A=runs/a.eval.json" "B=runs/b.eval.json"          # arms of one round
    python tools/skill_table.py results/round7/B_eval.json                         # one evaluation

Each argument is NAME=EVAL.json or EVAL.json (the JSON of `python -m skillmimic.evaluate --json-out`, one policy).
Per skill and run: success (n/a where the skill has no success test), imitation accuracy and falls; the last
rows are the means over the skills with a success test and over all skills; the last column is the paper's
success where it reports one (skills.PAPER_SUCCESS). A missing or malformed file is one line (`error: ...`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package beside this folder
from skillmimic import skills  # noqa: E402
from skillmimic.cli import run_guarded  # noqa: E402
from skillmimic.errors import UserError  # noqa: E402


def load(arg: str) -> tuple[str, dict[str, dict]]:
    """NAME=EVAL.json or EVAL.json -> (name, {label: that skill's results})."""
    name, _, path = arg.rpartition("=")
    name = name or Path(path).stem
    if not Path(path).is_file():
        raise UserError(f"{path}: no such file (the JSON of python -m skillmimic.evaluate --json-out)")
    try:
        data = json.loads(Path(path).read_text())
        return name, {s["label"]: s for s in data["skills"]}
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path}: not the JSON of one policy's evaluation (python -m skillmimic.evaluate "
                        f"--json-out)") from None


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def table(runs: list[tuple[str, dict[str, dict]]]) -> str:
    """The Markdown table of runs [(name, {label: results})]: a row per skill, success / accuracy / fell per run."""
    labels = sorted({lab for _, r in runs for lab in r}, key=int)
    head = "| skill | " + " | ".join(f"{n}: success / accuracy / fell" for n, _ in runs) + " | paper: success |"
    lines = [head, "|" + "---|" * (len(runs) + 2)]
    for lab in labels:
        cells = []
        for _, r in runs:
            s = r.get(lab)
            cells.append("-" if s is None else f"{_pct(s['success'])} / {_pct(s['accuracy'])} / {_pct(s['fell'])}")
        paper = skills.PAPER_SUCCESS.get(int(lab))
        lines.append(f"| {lab} {skills.skill_name(int(lab))} | " + " | ".join(cells)
                     + f" | {'' if paper is None else f'{paper:.1f}'} |")
    means = []
    for _, r in runs:
        tested = [s["success"] for s in r.values() if s["success"] is not None]
        succ = sum(tested) / len(tested) if tested else None
        means.append(f"{_pct(succ)} / {_pct(sum(s['accuracy'] for s in r.values()) / len(r))} / "
                     f"{_pct(sum(s['fell'] for s in r.values()) / len(r))}")
    lines.append("| mean (success: the tested skills) | " + " | ".join(means) + " | |")
    return "\n".join(lines)


def cli(argv: list[str]) -> None:
    if not argv or any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        if not argv:
            raise UserError("usage: python tools/skill_table.py [NAME=]EVAL.json ...")
        return
    print(table([load(a) for a in argv]))


if __name__ == "__main__":
    run_guarded(lambda: cli(sys.argv[1:]))
