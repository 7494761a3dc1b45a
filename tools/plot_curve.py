"""Plot a learning curve: reward against samples (a run's progress.csv) and success / accuracy against samples
(the JSON of `python -m skillmimic.evaluate --checkpoint RUN/policies --json-out curve.json`).

    python tools/plot_curve.py runs/llc_layup/progress.csv curve.json docs/llc_layup_curve.png

Needs matplotlib (a development tool, not a dependency of the package: `pip install matplotlib`).
"""

from __future__ import annotations

import csv
import json
import sys


def main(progress_csv: str, curve_json: str, out_png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: dict[int, dict] = {}
    with open(progress_csv) as f:
        for r in csv.DictReader(f):
            rows[int(r["iteration"])] = r  # a resumed run may repeat iterations: the last one counts
    its = sorted(rows)
    samples = [int(rows[i]["samples"]) / 1e6 for i in its]
    curve = json.load(open(curve_json))["curve"]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4))
    ax0.plot(samples, [float(rows[i]["mean_reward"]) for i in its])
    ax0.set(xlabel="samples (millions)", ylabel="mean reward per step", title="training reward")
    labels = [s["label"] + " " + s["skill"] for s in curve[0]["skills"]]
    x = [c["samples"] / 1e6 for c in curve]
    for k, name in enumerate(labels):
        succ = [c["skills"][k]["success"] for c in curve]
        if succ[0] is not None:
            ax1.plot(x, [100 * v for v in succ], "o-", label=f"{name}: success")
        ax1.plot(x, [100 * c["skills"][k]["accuracy"] for c in curve], "s--", label=f"{name}: accuracy")
    ax1.set(xlabel="samples (millions)", ylabel="%", ylim=(-2, 102), title="evaluation (policy mean action)")
    ax1.legend()
    for ax in (ax0, ax1):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    print(f"wrote {out_png}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
