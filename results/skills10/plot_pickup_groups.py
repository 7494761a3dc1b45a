"""The pickup's teachers per clip group, round 10 (docs/llc_recipe.md, "All skills, round 10"): success by group for
B2 and B3, each read with the fitted ball starts on and off (64 episodes, seed 0, one H200). From the repository's
root:

    python results/skills10/plot_pickup_groups.py docs/skills_round10_pickup_groups.png
"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pickup_study"))
from groups import by_group  # noqa: E402

EVALS = {  # label: evaluation JSON (the same 64 episodes, seed 0)
    "B2, recorded ball (trained on it)": "results/skills9/B2_eval.json",
    "B2, fitted ball starts": "results/skills10/B2_eval_starts_on.json",
    "B3, recorded ball": "results/skills10/B3_eval_starts_off.json",
    "B3, fitted ball starts (trained on them)": "results/skills10/B3_eval.json",
}
GROUPS = ["static ball, within horizon", "008 ball rolling/bouncing at frame 0", "long (ref fails 300-step test)",
          "009 ball in hand, dribbled at frame 0"]
NAMES = ["20 still-ball clips", "10 rolling/bouncing", "4 long", "5 dribbled", "all 39"]

fig, ax = plt.subplots(figsize=(9, 4))
width = 0.8 / len(EVALS)
for i, (label, path) in enumerate(EVALS.items()):
    agg = by_group([path])
    shares = [100 * agg[g]["s"] / agg[g]["n"] for g in GROUPS]
    shares.append(100 * sum(g["s"] for g in agg.values()) / sum(g["n"] for g in agg.values()))
    xs = [x + (i - (len(EVALS) - 1) / 2) * width for x in range(len(NAMES))]
    bars = ax.bar(xs, shares, width, label=label)
    ax.bar_label(bars, fmt="%.0f", fontsize=7)
ax.set_xticks(range(len(NAMES)), NAMES)
ax.set_ylabel("pickup success % (64 episodes)")
ax.set_ylim(0, 100)
ax.set_title("Round 10: the pickup's teacher trained 26M samples on the fitted ball starts (B2 -> B3)")
ax.legend(fontsize=8, loc="upper right")
fig.tight_layout()
fig.savefig(sys.argv[1] if len(sys.argv) > 1 else "skills_round10_pickup_groups.png", dpi=110)
