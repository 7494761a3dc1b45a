"""Success of B per clip group, over its evaluations (seeds 0 GPU, 1 CPU, 2 CPU)."""
import json, sys
DEFAULT_FILES = ["results/skills7/B_eval.json", "results/skills7/B_pickup_eval_seed1_cpu.json",
                 "results/pickup_study/out/B_seed2_h300.json"]
LONG = {"007pickle_pick_001", "007pickle_pick_002", "007pickle_pick_003", "022pickle_pick_5"}
def group(c):
    k = c[4:-3]
    if k in LONG: return "long (ref fails 300-step test)"
    if k.startswith("009"): return "009 ball in hand, dribbled at frame 0"
    if k.startswith("008") and k != "008pickle_pick_000": return "008 ball rolling/bouncing at frame 0"
    return "static ball, within horizon"


def by_group(files):
    """{group: dict(n, s, fell, lost, clips)} over the evaluation JSON files."""
    agg = {}
    for f in files:
        for c in json.load(open(f))["skills"][0]["clips"]:
            g = agg.setdefault(group(c["clip"]), dict(n=0, s=0, fell=0, lost=0, clips=set()))
            n = c["episodes"]; g["n"] += n; g["s"] += c["success"] * n; g["fell"] += c["fell"] * n; g["lost"] += c["ball_lost"] * n
            g["clips"].add(c["clip"])
    return agg


if __name__ == "__main__":
    agg = by_group(sys.argv[1:] or DEFAULT_FILES)
    tot = sum(g["n"] for g in agg.values())
    for k, g in agg.items():
        print(f"{k:40s} clips={len(g['clips']):2d} episodes={g['n']:3d} ({100*g['n']/tot:.0f}% of eps) success={100*g['s']/g['n']:.1f}% fell={100*g['fell']/g['n']:.1f}% ball_lost={100*g['lost']/g['n']:.1f}%  successes={g['s']:.0f}")
    print("total", tot, "success", sum(g['s'] for g in agg.values())/tot)
